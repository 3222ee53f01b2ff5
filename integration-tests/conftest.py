"""Fixtures: a real `lamb serve` on a free port with a temp data dir and a
temp runtimes dir, clients for it (boto3, the aws CLI, `lamb`), and bundle
builders."""

import base64
import hashlib
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import weakref
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LAMB = os.environ.get("LAMB_BIN", str(ROOT / "target" / "debug" / "lamb"))
ACCESS_KEY = "LAMBTESTACCESSKEY"
SECRET_KEY = "lamb-test-secret-key-0123456789"
RUNTIMES = ["provided", "provided.al2", "provided.al2023", "python3.11", "python3.13", "python3.14",
            "nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x", "java21", "ruby3.3"]
ROLE = "arn:aws:iam::000000000000:role/lamb-test"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cgroup_parent(data_dir):
    """The cgroup parent `lamb serve` derives from its data directory
    (`lamb_daemon::data_dir::cgroup_parent`): `lamb-` and 12 hex digits of
    the SHA-256 of the canonical path."""
    return "lamb-" + hashlib.sha256(str(Path(data_dir).resolve()).encode()).hexdigest()[:12]


def cgroup_parent_dirs(parent):
    """The daemon's parent cgroup `parent` in every hierarchy (the v2 root
    and each v1 controller), whether it exists there or not."""
    return [Path("/sys/fs/cgroup") / parent] + [c / parent for c in Path("/sys/fs/cgroup").iterdir() if c.is_dir()]


def sandbox_cgroups(parent):
    """Every sandbox cgroup directory under `parent`, in every hierarchy (the
    v2 root and each v1 controller), read without tripping over ones the
    spawner removes meanwhile."""
    found = []
    for root in cgroup_parent_dirs(parent):
        try:
            found += [Path(e.path) for e in os.scandir(root) if e.name.startswith("lamb-") and e.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            pass
    return found


def sandbox_procs(cg):
    """Host PIDs in sandbox cgroup directory `cg` and in its CPU groups (lamb
    init's and the function's, docs/sandbox.md): on pure cgroup v2 the
    sandbox's cgroup itself holds no process."""
    pids = []
    for d in (cg, cg / "init", cg / "function"):
        try:
            pids += [int(p) for p in (d / "cgroup.procs").read_text().split()]
        except OSError:
            pass
    return pids


# Every daemon a test may be using: a failing test's report carries the end
# of their logs, so that a failure in CI explains itself.
LIVE_DAEMONS = weakref.WeakSet()
LOG_LINES_ON_FAILURE = 40
LOG_LINE_CHARS = 400


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for d in list(LIVE_DAEMONS):
        try:
            lines = d.log.read_text(errors="replace").splitlines()[-LOG_LINES_ON_FAILURE:]
        except OSError:
            continue
        text = "\n".join(line[:LOG_LINE_CHARS] for line in lines)
        report.sections.append((f"lamb serve log ({d.log})", text))


class Daemon:
    """One `lamb serve` process; restart keeps the data directory."""

    def __init__(self, tmp: Path, env_keys: bool = True):
        # env_keys=False: no LAMB_* keys, so the daemon makes its credentials file.
        self.env_keys = env_keys
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.runtimes_dir = tmp / "runtimes"
        for r in RUNTIMES:
            (self.runtimes_dir / r).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # Function URLs: a port of its own, so that daemons run side by side.
        self.url_port = free_port()
        self.url_endpoint = f"http://127.0.0.1:{self.url_port}"
        self.proc = None
        self.log = tmp / "daemon.log"
        # More `lamb serve` flags (the engine tests' short TTL, real runtimes).
        self.extra_args = []
        # The modules' functions use provided, python3.11 and nodejs18.x, past
        # or nearing AWS's block dates; the suite must not start failing on
        # the day one passes. test_runtimes.py checks refusals without it.
        self.allow_deprecated_runtimes = True
        # A session of its own, as a terminal or a service manager gives it:
        # the test may then signal its whole process group.
        self.own_session = False
        # The `lamb` executable this daemon runs.
        self.lamb_bin = LAMB

    @property
    def cgroup_parent(self):
        """The parent cgroup of this daemon's sandboxes (one per data directory)."""
        return cgroup_parent(self.data_dir)

    def env(self):
        env = dict(os.environ)
        env.update(
            LAMB_ACCESS_KEY_ID=ACCESS_KEY,
            LAMB_SECRET_ACCESS_KEY=SECRET_KEY,
            LAMB_ENDPOINT=self.endpoint,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
        )
        if not self.env_keys:
            env.pop("LAMB_ACCESS_KEY_ID")
            env.pop("LAMB_SECRET_ACCESS_KEY")
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_PROFILE", None)
        return env

    def prewarm_args(self):
        """`--prewarm` from $LAMB_TEST_PREWARM (`on` or `off`), so that the
        suites run on either cold-start path; a test's own flag wins."""
        mode = os.environ.get("LAMB_TEST_PREWARM")
        if not mode or "--prewarm" in self.extra_args:
            return []
        return ["--prewarm", mode]

    def start(self):
        LIVE_DAEMONS.add(self)
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.lamb_bin, "serve", "--listen", f"127.0.0.1:{self.port}", "--url-listen", f"127.0.0.1:{self.url_port}",
             "--data-dir", str(self.data_dir),
             "--runtimes-dir", str(self.runtimes_dir), *self.extra_args, *self.prewarm_args(),
             *(["--allow-deprecated-runtimes"] if self.allow_deprecated_runtimes else [])],
            env=self.env(), stdout=log, stderr=log, start_new_session=self.own_session,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lamb serve exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                urllib.request.urlopen(self.endpoint + "/lamb/status", timeout=1)
            except urllib.error.HTTPError:
                return  # answering (403: unsigned), so up
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("lamb serve did not start listening")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def restart(self):
        assert self.stop() == 0
        self.start()

    def lambda_client(self):
        return boto3.client(
            "lambda", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}),
        )

    def aws(self, *args, check=True, env=None):
        """The aws CLI (v1, from the venv); answers parsed JSON or ''."""
        cmd = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", self.endpoint,
               "--output", "json", "lambda", *args]
        e = self.env()
        if env is not None:
            for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                e.pop(k, None)
            e.update(env)
        p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed {p.returncode}: {p.stderr}")
        if check:
            return json.loads(p.stdout) if p.stdout.strip() else ""
        return p

    def lamb(self, *args, check=True, env=None):
        e = self.env()
        if env is not None:
            e.update(env)
        p = subprocess.run([LAMB, *args], env=e, capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise AssertionError(f"lamb {' '.join(args)} failed {p.returncode}: {p.stderr}")
        return p


# The file system that `function_daemon(..., gate=True)` serves, as a
# function's FileSystemConfigs names it.
GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"


@contextlib.contextmanager
def function_daemon(prefix, *args, metrics=False, gate=False, lamb_bin=LAMB, own_session=False):
    """A root daemon that runs functions (the runtime trees in BUILD), with
    `args` for `lamb serve`, in a fresh data directory; skips the test when
    not root, and checks that SIGTERM stops the daemon cleanly (a test that
    stopped it itself sets `d.proc` to None). `lamb_bin` and `own_session`:
    as Daemon's. `metrics`:
    /metrics served on a port of its own, at `d.metrics_endpoint`. `gate`: a
    directory of the test's served to functions (`--filesystem gate=...`,
    mounted through GATE_ARN), at `d.gate`, for functions that wait until
    the test opens it."""
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = list(args)
        d.lamb_bin = lamb_bin
        d.own_session = own_session
        if gate:
            d.gate = Path(tempfile.mkdtemp(prefix="gate-", dir=tmp))
            d.extra_args += ["--filesystem", f"gate={d.gate}"]
        if metrics:
            port = free_port()
            d.metrics_endpoint = f"http://127.0.0.1:{port}"
            d.extra_args += ["--metrics-listen", f"127.0.0.1:{port}"]
        d.start()
        try:
            yield d
        finally:
            assert d.stop() == 0


@pytest.fixture(scope="module")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-it-") as tmp:
        d = Daemon(Path(tmp))
        d.start()
        try:
            yield d
        finally:
            rc = d.stop()
            assert rc == 0, f"lamb serve exited {rc} on SIGTERM"


@pytest.fixture(scope="module")
def lam(daemon):
    return daemon.lambda_client()


def wait_for(pred, timeout=60, every=0.1, what=None):
    """Polls `pred` until it answers something true, and answers that; fails
    after `timeout` seconds, naming `what` it waited for. Tests wait for
    events this way, never for a fixed time, so a fast or a slow machine
    passes alike."""
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or getattr(pred, '__name__', pred)}")
        time.sleep(every)


def make_zip(files):
    """files: {name: bytes | (bytes, mode)}"""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            mode = 0o644
            if isinstance(data, tuple):
                data, mode = data
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            z.writestr(info, data)
    return buf.getvalue()


BOOTSTRAP = make_zip({"bootstrap": (b"#!/bin/sh\necho hello\n", 0o755)})

# The runtime trees `make rootfs` builds, for a daemon's --runtimes-dir.
BUILD = ROOT / "rootfs" / "build"


def deploy(lam, name, files, runtime="python3.11", handler="app.handler", **kw):
    """Creates function `name` from `files` ({name: bytes | (bytes, mode)})
    or a zip's bytes: 256 MB and 10 s unless `kw` says otherwise."""
    code = files if isinstance(files, bytes) else make_zip(files)
    args = dict(FunctionName=name, Role=ROLE, Runtime=runtime, Handler=handler,
                Code={"ZipFile": code}, MemorySize=256, Timeout=10)
    args.update(kw)
    return lam.create_function(**args)


def bash_runtime(handle):
    """A custom runtime's bootstrap in bash over /dev/tcp, one connection per
    request: takes each event from /next (its request id in $id, its body in
    $body, the lambda-runtime-* and content-type headers as JSON members in
    $headers), runs the bash `handle` (bytes), which sets $resp, and posts
    $resp as the response."""
    return rb'''#!/bin/bash
api=$AWS_LAMBDA_RUNTIME_API; host=${api%:*}; port=${api#*:}
while true; do
  exec 3<>"/dev/tcp/$host/$port"
  printf 'GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$api" >&3
  id=""; len=0; headers=""
  while IFS= read -r line <&3; do
    line=${line%$'\r'}; [ -z "$line" ] && break
    name=${line%%:*}; value=${line#*: }
    case "${name,,}" in
      lambda-runtime-aws-request-id) id=$value ;;
      content-length) len=$value ;;
    esac
    case "${name,,}" in lambda-runtime-*|content-type)
      value=${value//\\/\\\\}; value=${value//\"/\\\"}
      headers="$headers\"${name,,}\":\"$value\"," ;;
    esac
  done
  body=$(head -c "$len" <&3); exec 3<&-
''' + handle.strip(b"\n") + rb'''
  exec 3<>"/dev/tcp/$host/$port"
  printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$id" "$api" "${#resp}" "$resp" >&3
  cat <&3 >/dev/null; exec 3<&-
done
'''


def create(lam, name, **kw):
    args = dict(FunctionName=name, Role=ROLE, Runtime="provided.al2023", Handler="h",
                Code={"ZipFile": BOOTSTRAP})
    args.update(kw)
    return lam.create_function(**args)


def public_url(lam, name, qualifier=None, **kw):
    """Creates an AuthType NONE function URL and grants public access to it
    as AWS's console and `aws lambda add-permission` users do: since October
    2025 a NONE URL answers only when the policy allows both
    lambda:InvokeFunctionUrl and lambda:InvokeFunction to everyone."""
    q = {"Qualifier": qualifier} if qualifier else {}
    cfg = lam.create_function_url_config(FunctionName=name, AuthType="NONE", **q, **kw)
    lam.add_permission(FunctionName=name, StatementId="FunctionURLAllowPublicAccess", Principal="*",
                       Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE", **q)
    lam.add_permission(FunctionName=name, StatementId="FunctionURLInvokeAllowPublicAccess", Principal="*",
                       Action="lambda:InvokeFunction", InvokedViaFunctionUrl=True, **q)
    return cfg


def url_id_of(function_url):
    """The URL id in a FunctionUrl: the host's first label
    (`<id>.lambda-url.<host>`) or the path's first segment (`<host>/<id>/`)."""
    parts = urlsplit(function_url)
    if ".lambda-url." in parts.hostname:
        return parts.hostname.split(".")[0]
    return parts.path.strip("/").split("/")[0]


def error_code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def b64(b):
    return base64.b64encode(b).decode()
