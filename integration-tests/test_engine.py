"""The invocation engine, end to end: a real daemon running real sandboxes
over the runtime trees in rootfs/build (`make rootfs`), driven by boto3.

Python, Node and provided functions; awslambdaric started by
AWS_LAMBDA_EXEC_WRAPPER; warm reuse and the idle TTL; timeout, out of
memory, crash, init errors, oversized responses; throttling under reserved
concurrency; alias weights; the log tail, `lamb logs` and /metrics."""

import base64
import io
import json
import re
import subprocess
import sys
import time
import urllib.request
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, ROOT, bash_runtime, deploy, function_daemon, wait_for

EXAMPLES = ROOT / "examples"
IDLE_TTL_S = 3
AWSLAMBDARIC = "awslambdaric==4.2.2"

pytestmark = pytest.mark.skipif(
    not all((BUILD / r / "usr").is_dir() for r in ("provided.al2023", "python3.11", "nodejs18.x")),
    reason="the runtime trees are not built (make rootfs)",
)


@pytest.fixture(scope="module")
def engine():
    with function_daemon("lamb-engine-", "--idle-ttl", f"{IDLE_TTL_S}s", metrics=True) as d:
        yield d


@pytest.fixture(scope="module")
def lam(engine):
    return engine.lambda_client()


def zip_dir(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(Path(path).rglob("*")):
            if f.is_file():
                info = zipfile.ZipInfo(str(f.relative_to(path)))
                info.external_attr = (0o100000 | (f.stat().st_mode & 0o777)) << 16
                z.writestr(info, f.read_bytes())
    return buf.getvalue()


def call(lam, name, payload=None, **kw):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kw)
    body = r["Payload"].read()
    return r, json.loads(body) if body else None


PY_COUNTER = b'''
import os, time
count = 0
def handler(event, context):
    global count
    count += 1
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit") is not None:
        os._exit(event["exit"])
    if event.get("alloc_mb"):
        hog = [bytearray(1024 * 1024) for _ in range(event["alloc_mb"])]
    if event.get("big"):
        return "x" * event["big"]
    if event.get("fail"):
        raise ValueError("boom")
    print("counting", count)
    return {"count": count, "client_context": getattr(context.client_context, "custom", None)}
'''

# A Runtime API client in bash over /dev/tcp, one connection per request:
# echoes the /next headers it got.
BASH_BOOTSTRAP = bash_runtime(rb'''
  echo "bash handled $id"
  resp="{${headers}\"event\":$body,\"version\":\"$AWS_LAMBDA_FUNCTION_VERSION\",\"cwd\":\"$PWD\",\"uid\":$(id -u)}"
''')


def test_provided_static_bootstrap_cold_then_warm(lam):
    built = EXAMPLES / "hello-provided" / "build" / "bootstrap"
    if not built.exists():
        pytest.skip("examples/hello-provided is not built (make examples)")
    deploy(lam, "e-provided", zip_dir(built.parent), "provided.al2023", "bootstrap", MemorySize=128)
    counts = []
    for _ in range(3):
        r, body = call(lam, "e-provided", {"name": "Ada"}, LogType="Tail")
        assert r["StatusCode"] == 200 and "FunctionError" not in r
        assert r["ExecutedVersion"] == "$LATEST"
        counts.append(body["invocations"])
        tail = base64.b64decode(r["LogResult"]).decode()
        assert re.search(r"^START RequestId: \S+ Version: \$LATEST$", tail, re.M)
        report = re.search(r"^REPORT RequestId: (\S+)\tDuration: \d+\.\d\d ms\tBilled Duration: \d+ ms\t"
                           r"Memory Size: 128 MB\tMax Memory Used: \d+ MB\t(Init Duration: \d+\.\d\d ms\t)?$",
                           tail, re.M)
        assert report, tail
        assert report.group(1) == r["ResponseMetadata"]["RequestId"]
        assert bool(report.group(2)) == (len(counts) == 1), "Init Duration on the cold start only"
    assert counts == [1, 2, 3]


def test_provided_bootstrap_built_with_the_aws_rust_runtime(lam):
    """examples/hello-rust: an unmodified public runtime library (lambda_runtime)."""
    built = EXAMPLES / "hello-rust" / "build" / "bootstrap"
    if not built.exists():
        pytest.skip("examples/hello-rust is not built (make examples)")
    deploy(lam, "e-rust", zip_dir(built.parent), "provided.al2023", "bootstrap", MemorySize=128)
    bodies = [call(lam, "e-rust", {"name": n})[1] for n in ("Ada", "Lin", "Bo")]
    assert [b["message"] for b in bodies] == ["Hello, Ada!", "Hello, Lin!", "Hello, Bo!"]
    assert [b["invocations"] for b in bodies] == [1, 2, 3], "warm reuse"
    assert all(b["function"] == "e-rust" for b in bodies)
    r, body = call(lam, "e-rust", {"name": "Cy", "fail": True})
    assert r["FunctionError"] == "Unhandled"
    assert "asked to fail for Cy" in body["errorMessage"], body


def test_provided_headers_env_and_client_context(lam):
    deploy(lam, "e-bash", {"bootstrap": (BASH_BOOTSTRAP, 0o755)}, "provided.al2", "h", MemorySize=128)
    ctx = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    r, body = call(lam, "e-bash", {"a": 1}, ClientContext=ctx)
    assert "FunctionError" not in r, body
    assert body["event"] == {"a": 1}
    assert body["lambda-runtime-aws-request-id"] == r["ResponseMetadata"]["RequestId"]
    assert body["content-type"] == "application/json"
    assert json.loads(body["lambda-runtime-client-context"]) == {"custom": {"k": "v"}}
    assert body["lambda-runtime-invoked-function-arn"].endswith(":function:e-bash")
    assert int(body["lambda-runtime-deadline-ms"]) > time.time() * 1000
    assert body["lambda-runtime-trace-id"].startswith("Root=1-")
    assert body["cwd"] == "/var/task" and body["uid"] >= 20000


def test_provided_without_bootstrap_is_an_invalid_entrypoint(lam):
    deploy(lam, "e-noboot", {"README": b"no bootstrap here"}, "provided", "h", MemorySize=128)
    r, body = call(lam, "e-noboot")
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.InvalidEntrypoint"
    assert "/var/task/bootstrap /opt/bootstrap" in body["errorMessage"]


def gauge(engine, name):
    """One of the daemon's unlabelled gauges from /metrics."""
    text = urllib.request.urlopen(engine.metrics_endpoint + "/metrics", timeout=5).read().decode()
    return int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))


def test_python_warm_reuse_and_idle_ttl(lam, engine):
    deploy(lam, "e-py", {"app.py": PY_COUNTER}, "python3.11", "app.handler", MemorySize=1024)
    assert [call(lam, "e-py")[1]["count"] for _ in range(3)] == [1, 2, 3]
    # Idle for the TTL: every sandbox (this one and earlier tests') is destroyed.
    wait_for(lambda: gauge(engine, "lamb_sandboxes_live") == 0, timeout=IDLE_TTL_S + 60)
    assert call(lam, "e-py")[1]["count"] == 1, "a new sandbox after the idle TTL"


def test_node_hello(lam):
    deploy(lam, "e-node", zip_dir(EXAMPLES / "hello-node"), "nodejs18.x", "index.handler", MemorySize=1024)
    bodies = [call(lam, "e-node", {"name": "Ada"})[1] for _ in range(2)]
    assert [b["invocations"] for b in bodies] == [1, 2]
    assert bodies[0]["message"] == "Hello, Ada!"


def test_function_error_timeout_crash_and_size(lam):
    deploy(lam, "e-fail", {"app.py": PY_COUNTER}, "python3.11", "app.handler", Timeout=1, MemorySize=1024)
    r, body = call(lam, "e-fail", {"fail": True})
    assert r["FunctionError"] == "Unhandled" and body["errorType"] == "ValueError"
    assert call(lam, "e-fail")[1]["count"] == 2, "a handled error keeps the sandbox"

    r, body = call(lam, "e-fail", {"sleep": 3})
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    rid = r["ResponseMetadata"]["RequestId"]
    assert body == {"errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {rid} Error: Task timed out after 1.00 seconds"}
    assert call(lam, "e-fail")[1]["count"] == 1, "the next call after a timeout starts cold"

    r, body = call(lam, "e-fail", {"exit": 3})
    rid = r["ResponseMetadata"]["RequestId"]
    assert r["FunctionError"] == "Unhandled"
    assert body == {"errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {rid} Error: Runtime exited with error: exit status 3"}
    assert call(lam, "e-fail")[1]["count"] == 1, "a crashed sandbox is replaced"

    r, body = call(lam, "e-fail", {"big": 7 * 1024 * 1024})
    assert r["FunctionError"] == "Unhandled" and body["errorType"] == "Function.ResponseSizeTooLarge"


PY_PRYING = b'''
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)

def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return type(e).__name__

def attach_to_init():
    if libc.ptrace(16, 1, None, None) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
    os.waitpid(1, 0x40000000)  # __WALL: init stops, then goes on
    libc.ptrace(17, 1, None, None)  # PTRACE_DETACH

def handler(event, context):
    mountinfo = open("/proc/self/mountinfo").read()
    return {
        "mem": attempt(lambda: open("/proc/1/mem", "r+b").close()),
        "ptrace": attempt(attach_to_init),
        "environ": attempt(lambda: open("/proc/1/environ", "rb").read()),
        "config": len(open("/proc/config.gz", "rb").read()) if os.path.exists("/proc/config.gz") else 0,
        "uevent": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 15).close()),
        "vsock": attempt(lambda: socket.socket(40, socket.SOCK_STREAM).close()),
        "host_paths": [p for p in event["paths"] if p in mountinfo],
    }
'''


def test_a_function_cannot_reach_init_or_read_the_host(lam, engine):
    """Init is not dumpable (no ptrace, no /proc/1/mem, so no forged frames to
    the daemon); mountinfo names neither the data directory nor the runtimes;
    /proc/config.gz is masked; uevent and vsock sockets are refused."""
    deploy(lam, "e-prying", {"app.py": PY_PRYING}, "python3.11", "app.handler", MemorySize=1024)
    paths = [str(engine.data_dir), str(BUILD.resolve())]
    _, body = call(lam, "e-prying", {"paths": paths})
    assert body == {"mem": "PermissionError", "ptrace": "PermissionError", "environ": "PermissionError",
                    "config": 0, "uevent": "PermissionError", "vsock": "PermissionError",
                    "host_paths": []}, body


PY_FORK_BOMB = b'''
import os, time
def handler(event, context):
    print("bombing", flush=True)
    while True:
        try:
            if os.fork() == 0:
                hog = bytearray(1 << 20)
                time.sleep(1000)
        except OSError:
            time.sleep(0.01)
'''


def sandbox_init_of(function, code=None):
    """The host PID of the `lamb init` serving `function`, if one runs: by
    the environment it started with, or, for a pre-initialised sandbox
    (started before it had a function, docs/prewarm.md), by `code`, its
    `app.py` at /var/task seen through its root."""
    marker = f"AWS_LAMBDA_FUNCTION_NAME={function}".encode()
    for proc in Path("/proc").iterdir():
        try:
            if not (proc / "cmdline").read_bytes().startswith(b"/.lamb/lamb\0init"):
                continue
            if marker in (proc / "environ").read_bytes().split(b"\0"):
                return int(proc.name)
            if code is not None and (proc / "root/var/task/app.py").read_bytes() == code:
                return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


def hold_in_pid_namespace(pid):
    """A process forked into `pid`'s PID namespace by this test: once killed it
    stays a zombie until the test reaps it, and the namespace's PID 1 cannot
    finish exiting until then, so the sandbox's death is held on cue, as a
    fork bomb at its memory limit holds it for minutes."""
    import ctypes
    import os
    import threading
    libc = ctypes.CDLL(None, use_errno=True)
    held = []

    def fork_inside():
        fd = os.open(f"/proc/{pid}/ns/pid", os.O_RDONLY)
        assert libc.setns(fd, 0x20000000) == 0, ctypes.get_errno()  # CLONE_NEWPID, this thread only
        os.close(fd)
        held.append(subprocess.Popen(["sleep", "1000"]))
    t = threading.Thread(target=fork_inside)
    t.start()
    t.join()
    return held[0]


def test_a_fork_bomb_s_slow_death_holds_up_no_other_cold_start(lam):
    """A fork bomb at 128 MB times out (or its runtime is killed for memory
    first: which comes first is the machine's pace, and either destroys the
    sandbox); while its sandbox's teardown is held (the test keeps a process
    of its namespace unreaped), another function is deployed, cold started
    and answers. Before the spawner reaped from its loop, that cold start
    waited for the bomb's death."""
    import os
    deploy(lam, "e-bomb", {"app.py": PY_FORK_BOMB}, "python3.11", "app.handler", MemorySize=128, Timeout=3)
    with ThreadPoolExecutor(1) as pool:
        bombing = pool.submit(call, lam, "e-bomb")
        init = wait_for(lambda: sandbox_init_of("e-bomb", PY_FORK_BOMB))
        held = hold_in_pid_namespace(init)
        _, body = bombing.result()
    try:
        assert body["errorType"] in ("Sandbox.Timedout", "Runtime.ExitError"), body
        # The sandbox is being destroyed: the held process is dead, not reaped.
        wait_for(lambda: os.waitid(os.P_PID, held.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG))
        deploy(lam, "e-after-bomb", {"app.py": PY_COUNTER}, "python3.11", "app.handler", MemorySize=1024)
        _, body = call(lam, "e-after-bomb")
        assert body["count"] == 1, body
        # The spawner reaps the bomb's PID 1 once it has exited: not before the test lets it.
        assert Path(f"/proc/{init}").exists(), "the bomb's death was held all along"
    finally:
        held.wait()
    wait_for(lambda: not Path(f"/proc/{init}").exists())


def test_out_of_memory_at_128_mb(lam):
    deploy(lam, "e-oom", {"app.py": PY_COUNTER}, "python3.11", "app.handler", MemorySize=128, Timeout=30)
    r, body = call(lam, "e-oom", {"alloc_mb": 400}, LogType="Tail")
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ExitError"
    assert body["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    tail = base64.b64decode(r["LogResult"]).decode()
    assert "Runtime exited with error: signal: killed\nRuntime.ExitError\n" in tail
    assert call(lam, "e-oom")[1]["count"] == 1


def test_init_error_reaches_the_caller(lam):
    deploy(lam, "e-initerr", {"app.py": b"raise RuntimeError('bad init')\n"}, "python3.11", "app.handler", MemorySize=1024)
    r, body = call(lam, "e-initerr")
    assert r["StatusCode"] == 200 and r["FunctionError"] == "Unhandled"
    assert "bad init" in json.dumps(body)


def test_reserved_concurrency_throttles_parallel_calls(lam):
    deploy(lam, "e-busy", {"app.py": PY_COUNTER}, "python3.11", "app.handler", MemorySize=1024)
    lam.put_function_concurrency(FunctionName="e-busy", ReservedConcurrentExecutions=2)

    def one(_):
        try:
            r, _body = call(lam, "e-busy", {"sleep": 2})
            return "ok" if "FunctionError" not in r else "error"
        except ClientError as e:
            assert e.response["Error"]["Code"] == "TooManyRequestsException"
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 429
            return "throttled"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    assert results.count("ok") == 2, results
    assert len([x for x in results if x != "ok"]) == 4

    lam.put_function_concurrency(FunctionName="e-busy", ReservedConcurrentExecutions=0)
    with pytest.raises(ClientError) as e:
        call(lam, "e-busy")
    assert e.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert e.value.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded"
    lam.delete_function_concurrency(FunctionName="e-busy")
    assert call(lam, "e-busy")[0]["StatusCode"] == 200


def test_alias_weights(lam):
    # A full vCPU and a long timeout: 400 calls through a bash bootstrap must
    # not trip over CPU quota or the 3 s default on a busy machine.
    deploy(lam, "e-alias", {"bootstrap": (BASH_BOOTSTRAP, 0o755)}, "provided.al2023", "h", MemorySize=1792, Timeout=30)
    v1 = lam.publish_version(FunctionName="e-alias")["Version"]
    lam.update_function_configuration(FunctionName="e-alias", Description="second")
    v2 = lam.publish_version(FunctionName="e-alias")["Version"]
    lam.create_alias(FunctionName="e-alias", Name="live", FunctionVersion=v1,
                     RoutingConfig={"AdditionalVersionWeights": {v2: 0.4}})
    n = 400
    seen = {v1: 0, v2: 0}
    for _ in range(n):
        r, body = call(lam, "e-alias", Qualifier="live")
        assert body["version"] == r["ExecutedVersion"]
        assert body["lambda-runtime-invoked-function-arn"].endswith(":e-alias:live")
        seen[r["ExecutedVersion"]] += 1
    # 0.4 * 400 = 160, sd = sqrt(400 * 0.4 * 0.6) ~ 9.8: 4.5 sd either way.
    assert 116 <= seen[v2] <= 204, seen


def test_awslambdaric_through_exec_wrapper(lam, engine, tmp_path):
    layer = tmp_path / "layer"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(layer / "python"), "--only-binary=:all:", "--python-version", "3.11",
           "--platform", "manylinux2014_x86_64", AWSLAMBDARIC]
    p = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"cannot fetch {AWSLAMBDARIC}: {p.stderr[-300:]}")
    arn = lam.publish_layer_version(LayerName="awslambdaric", Content={"ZipFile": zip_dir(layer)},
                                    CompatibleRuntimes=["python3.11"])["LayerVersionArn"]
    # The runtime starts `$AWS_LAMBDA_EXEC_WRAPPER python3 /var/runtime/bootstrap.py`,
    # as Lambda's does; this wrapper says what it was given and starts the
    # unmodified client instead.
    wrapper = b'#!/bin/sh\necho "wrapper got: $*"\nexec python3 -m awslambdaric "$_HANDLER"\n'
    deploy(lam, "e-ric", {"app.py": PY_COUNTER, "wrapper.sh": (wrapper, 0o755)}, "python3.11", "app.handler", MemorySize=1024,
           Layers=[arn],
           Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}})
    ctx = base64.b64encode(json.dumps({"custom": {"who": "ric"}}).encode()).decode()
    r, body = call(lam, "e-ric", {}, LogType="Tail", ClientContext=ctx)
    tail = base64.b64decode(r["LogResult"]).decode()
    assert "FunctionError" not in r, (body, tail)
    assert body == {"count": 1, "client_context": {"who": "ric"}}
    assert "wrapper got: python3 /var/runtime/bootstrap.py" in tail
    assert call(lam, "e-ric")[1]["count"] == 2
    r, body = call(lam, "e-ric", {"fail": True})
    assert r["FunctionError"] == "Unhandled" and body["errorType"] == "ValueError"


def test_logs_and_metrics(lam, engine):
    deploy(lam, "e-logs", {"app.py": PY_COUNTER}, "python3.11", "app.handler", MemorySize=1024)
    call(lam, "e-logs")
    call(lam, "e-logs")
    out = engine.lamb("logs", "e-logs").stdout
    assert out.count("START RequestId:") == 2 and out.count("REPORT RequestId:") == 2
    assert "counting 2" in out
    # Past the freeze grace: the idle sandbox is frozen.
    wait_for(lambda: gauge(engine, "lamb_sandboxes_frozen") >= 1, timeout=30)
    text = urllib.request.urlopen(engine.metrics_endpoint + "/metrics", timeout=5).read().decode()
    assert 'lamb_invocations_total{function="e-logs"} 2' in text
    assert 'lamb_cold_starts_total{function="e-logs"} 1' in text
    assert 'lamb_invocation_duration_seconds_count{function="e-logs"} 2' in text
    assert 'lamb_init_duration_seconds_count{function="e-logs"} 1' in text
    assert re.search(r'^lamb_throttles_total\{function="e-busy"\} [1-9]', text, re.M)
    frozen = int(re.search(r"^lamb_sandboxes_frozen (\d+)$", text, re.M).group(1))
    live = int(re.search(r"^lamb_sandboxes_live (\d+)$", text, re.M).group(1))
    assert 1 <= frozen <= live
