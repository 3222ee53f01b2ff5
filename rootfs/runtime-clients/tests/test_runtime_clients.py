"""Tests of lamb's own runtime clients (python3.11, nodejs18.x) and of the
examples, run on the host against a fake Runtime API.

Each test starts a client's `bootstrap` from this repository (with
LAMBDA_RUNTIME_DIR pointing at rootfs/runtime-clients/<runtime>) in a
subprocess, with Lambda's environment and a temporary task root, feeds it
events and checks what it posts back and what it logs.

    rootfs/runtime-clients/tests/run.sh          # or: python3 -m pytest <this dir>
"""

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_runtime_api import Event, FakeRuntimeApi  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENTS = os.path.dirname(HERE)
REPO = os.path.dirname(os.path.dirname(CLIENTS))
EXAMPLES = os.path.join(REPO, "examples")
PY = os.path.join(CLIENTS, "python")
NODE = os.path.join(CLIENTS, "nodejs")
# What init sets AWS_EXECUTION_ENV to for the clients run on the host (in a
# built tree the bootstraps default it from /var/runtime/runtime-name).
EXEC_ENV = {PY: "AWS_Lambda_python3.11", NODE: "AWS_Lambda_nodejs18.x"}

ISO_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


class Sandbox:
    """A client process, its fake Runtime API and its log."""

    def __init__(self, runtime_dir, task_root, handler, env=None, argv=None, cwd=None, prewarm=False):
        self.api = FakeRuntimeApi().start()
        self.runtime_dir = runtime_dir
        self.task_root = task_root
        base = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "_HANDLER": handler,
            "AWS_LAMBDA_RUNTIME_API": self.api.address,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": runtime_dir,
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
            "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if runtime_dir in EXEC_ENV:
            base["AWS_EXECUTION_ENV"] = EXEC_ENV[runtime_dir]
        base.update(env or {})
        fd, self.log_path = tempfile.mkstemp(prefix="lamb-client-log-")
        self.log_file = os.fdopen(fd, "wb")
        # A pre-initialised sandbox (docs/prewarm.md): the client starts with
        # a socket at LAMB_PREWARM_FD, says `ready` on it and waits for its
        # environment ([`assign`]).
        self.prewarm, theirs = socket.socketpair() if prewarm else (None, None)
        self.env = dict(base)
        if theirs is not None:
            base["LAMB_PREWARM_FD"] = str(theirs.fileno())
        self.proc = subprocess.Popen(
            argv or [os.path.join(runtime_dir, "bootstrap")],
            cwd=cwd or task_root,
            env=base,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            pass_fds=(theirs.fileno(),) if theirs is not None else (),
        )
        if theirs is not None:
            theirs.close()

    def ready(self, timeout=15.0):
        """A pre-initialised client's `ready`: it waits for its function."""
        self.prewarm.settimeout(timeout)
        assert self.prewarm.recv(64) == b"ready\n"

    def assign(self):
        """Gives a waiting client its environment, as init does."""
        self.prewarm.sendall(b"".join(b"%s=%s\0" % (k.encode(), v.encode()) for k, v in self.env.items()))
        self.prewarm.close()

    def invoke(self, *events, timeout=15.0):
        """Push events (payloads or Event objects); return their posts in order."""
        evs = [e if isinstance(e, Event) else Event(e) for e in events]
        before = len(self.api.posts)
        for ev in evs:
            self.api.push(ev)
        posts = self.api.wait_posts(before + len(evs), timeout)
        new = posts[before:]
        by_id = {p.request_id: p for p in new}
        if any(p.kind == "init_error" for p in new):
            return new
        return [by_id[ev.request_id] for ev in evs]

    def init_error(self, timeout=15.0):
        posts = self.api.wait_posts(1, timeout)
        errs = [p for p in posts if p.kind == "init_error"]
        assert errs, posts
        return errs[0]

    def wait_exit(self, timeout=10.0):
        return self.proc.wait(timeout)

    def log(self):
        self.log_file.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        if self.prewarm is not None:
            self.prewarm.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.api.stop()
        self.log_file.close()
        os.unlink(self.log_path)


@pytest.fixture
def task(tmp_path):
    d = tmp_path / "task"
    d.mkdir()
    return d


@pytest.fixture
def sandbox(task):
    boxes = []

    def start(runtime_dir, handler, files=None, env=None, argv=None, task_root=None, cwd=None, prewarm=False):
        for name, text in (files or {}).items():
            p = task / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text)
        box = Sandbox(runtime_dir, str(task_root or task), handler, env, argv, cwd, prewarm)
        boxes.append(box)
        return box

    yield start
    for b in boxes:
        b.close()


# ====================================================================== Python


PY_HANDLERS = """
import json, logging, os, sys, time
from decimal import Decimal

counter = 0

def count(event, context):
    global counter
    counter += 1
    return {"counter": counter, "pid": os.getpid(), "event": event}

def boom(event, context):
    raise ValueError("boom " + event.get("why", ""))

def ctx(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": None if context.client_context is None else {
            "installation_id": context.client_context.client.installation_id,
            "app_title": context.client_context.client.app_title,
            "custom": context.client_context.custom,
            "env": context.client_context.env,
        },
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "exec_env": os.environ.get("AWS_EXECUTION_ENV"),
        "sys_path": sys.path[:4],
        "cwd": os.getcwd(),
        "wrapped": os.environ.get("WRAPPED"),
    }

def logs(event, context):
    print("printed line")
    logging.getLogger().setLevel(logging.INFO)
    logging.getLogger().info("info %s", "line")
    logging.getLogger("child").warning("warned")
    sys.stderr.write("to stderr\\n")
    context.log("via context\\n")
    return "ok"

def unserialisable(event, context):
    return {"a": {1, 2}}

def idna(event, context):
    return sorted(m for m in ("encodings.idna", "stringprep", "unicodedata") if m in sys.modules)

def decimals(event, context):
    return {"int": Decimal("3"), "frac": Decimal("1.5")}

def raw(event, context):
    return b"raw bytes"

def echo(event, context):
    return event
"""


def test_python_response_and_warm_state(sandbox):
    box = sandbox(PY, "app.count", {"app.py": PY_HANDLERS})
    posts = box.invoke({"n": 1}, {"n": 2}, {"n": 3})
    bodies = [p.json() for p in posts]
    assert [p.kind for p in posts] == ["response"] * 3
    assert [b["counter"] for b in bodies] == [1, 2, 3]
    assert len({b["pid"] for b in bodies}) == 1
    assert bodies[1]["event"] == {"n": 2}
    assert posts[0].headers["Content-Type"] == "application/json"
    assert box.proc.poll() is None


def test_python_exception_error_body(sandbox, task):
    box = sandbox(PY, "app.boom", {"app.py": PY_HANDLERS})
    ev = Event({"why": "here"})
    (post,) = box.invoke(ev)
    assert post.kind == "error"
    body = post.json()
    assert list(body) == ["errorMessage", "errorType", "requestId", "stackTrace"]
    assert body["errorMessage"] == "boom here"
    assert body["errorType"] == "ValueError"
    assert body["requestId"] == ev.request_id
    assert isinstance(body["stackTrace"], list) and len(body["stackTrace"]) == 1
    frame = body["stackTrace"][0]
    assert frame.startswith('  File "%s", line ' % (task / "app.py"))
    assert "in boom\n" in frame and 'raise ValueError("boom " + event.get("why", ""))' in frame
    assert "bootstrap.py" not in json.dumps(body)
    assert "Lambda-Runtime-Function-XRay-Error-Cause" in post.headers
    log = box.log()
    assert "[ERROR] ValueError: boom here\rTraceback (most recent call last):\r" in log
    # The environment stays up after a function error.
    (again,) = box.invoke(Event({"why": "again"}))
    assert again.json()["errorMessage"] == "boom again"


@pytest.mark.parametrize(
    "handler,files,error_type,message",
    [
        (
            "nope.handler",
            {},
            "Runtime.ImportModuleError",
            "Unable to import module 'nope': No module named 'nope'",
        ),
        (
            "app.missing",
            {"app.py": PY_HANDLERS},
            "Runtime.HandlerNotFound",
            "Handler 'missing' missing on module 'app'",
        ),
        (
            "nodots",
            {},
            "Runtime.MalformedHandlerName",
            "Bad handler 'nodots': not enough values to unpack (expected 2, got 1)",
        ),
        (
            "bad.handler",
            {"bad.py": "def handler(:\n"},
            "Runtime.UserCodeSyntaxError",
            None,
        ),
        (
            "sys.handler",
            {},
            "Runtime.BuiltInModuleConflict",
            "Cannot use built-in module sys as a handler module",
        ),
        (
            "broken.handler",
            {"broken.py": "import missing_dependency_xyz\n"},
            "Runtime.ImportModuleError",
            "Unable to import module 'broken': No module named 'missing_dependency_xyz'",
        ),
    ],
)
def test_python_init_errors(sandbox, handler, files, error_type, message):
    box = sandbox(PY, handler, files)
    post = box.init_error()
    body = post.json()
    assert body["errorType"] == error_type
    if message is not None:
        assert body["errorMessage"] == message
    else:
        assert body["errorMessage"].startswith("Syntax error in module 'bad': ")
    assert body["requestId"] == ""
    assert isinstance(body["stackTrace"], list)
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == error_type
    assert box.wait_exit() == 1
    assert "[ERROR] %s: " % error_type in box.log()


def test_python_exception_at_import_is_init_error(sandbox):
    box = sandbox(PY, "app.handler", {"app.py": "raise RuntimeError('no config')\n"})
    body = box.init_error().json()
    assert body["errorType"] == "RuntimeError"
    assert body["errorMessage"] == "no config"
    assert any("app.py" in f for f in body["stackTrace"])


def test_python_context_and_headers(sandbox, task):
    box = sandbox(PY, "app.ctx", {"app.py": PY_HANDLERS})
    deadline = int(time.time() * 1000) + 5000
    cc = {"client": {"installation_id": "inst-1", "app_title": "App"}, "custom": {"k": "v"}, "env": {"e": 1}}
    ident = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    ev = Event(
        {},
        deadline_ms=deadline,
        headers={
            "Lambda-Runtime-Client-Context": json.dumps(cc),
            "Lambda-Runtime-Cognito-Identity": json.dumps(ident),
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
        },
    )
    (post,) = box.invoke(ev)
    b = post.json()
    assert b["function_name"] == "fn"
    assert b["function_version"] == "$LATEST"
    assert b["invoked_function_arn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert b["memory_limit_in_mb"] == "256"
    assert b["aws_request_id"] == ev.request_id
    assert b["log_group_name"] == "/aws/lambda/fn"
    assert b["log_stream_name"].startswith("2024/01/01/[$LATEST]")
    assert 3000 < b["remaining"] <= 5000
    assert b["identity"] == ["id-1", "pool-1"]
    assert b["client_context"] == {"installation_id": "inst-1", "app_title": "App", "custom": {"k": "v"}, "env": {"e": 1}}
    assert b["trace"] == "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"
    assert b["exec_env"] == "AWS_Lambda_python3.11"
    ver = "python%d.%d" % sys.version_info[:2]
    assert b["sys_path"] == [str(task), "/opt/python/lib/%s/site-packages" % ver, "/opt/python", PY]
    assert b["cwd"] == str(task)
    # Without the optional headers: no client context, an empty identity, no trace id.
    (post,) = box.invoke(Event({}, deadline_ms=int(time.time() * 1000) - 10))
    b = post.json()
    assert b["client_context"] is None
    assert b["identity"] == [None, None]
    assert b["trace"] is None
    assert b["remaining"] == 0


def test_python_bad_client_context(sandbox):
    box = sandbox(PY, "app.ctx", {"app.py": PY_HANDLERS})
    (post,) = box.invoke(Event({}, headers={"Lambda-Runtime-Client-Context": "{not json"}))
    body = post.json()
    assert body["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert body["errorMessage"].startswith("Unable to parse Client Context JSON: ")


def test_python_logging_format(sandbox):
    box = sandbox(PY, "app.logs", {"app.py": PY_HANDLERS})
    ev = Event({})
    (post,) = box.invoke(ev)
    assert post.json() == "ok"
    log = box.log()
    lines = log.splitlines()
    assert "printed line" in lines
    assert "to stderr" in lines
    assert "via context" in lines
    rid = re.escape(ev.request_id)
    assert any(re.fullmatch(r"\[INFO\]\t%s\t%s\tinfo line" % (ISO_TIME, rid), l) for l in lines), log
    assert any(re.fullmatch(r"\[WARNING\]\t%s\t%s\twarned" % (ISO_TIME, rid), l) for l in lines), log


def test_python_log_level_and_json_format(sandbox):
    box = sandbox(
        PY,
        "app.logs",
        {"app.py": PY_HANDLERS.replace("logging.getLogger().setLevel(logging.INFO)", "pass")},
        env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"},
    )
    ev = Event({})
    box.invoke(ev)
    records = [json.loads(l) for l in box.log().splitlines() if l.startswith("{")]
    info = [r for r in records if r["message"] == "info line"]
    assert info and info[0]["level"] == "INFO" and info[0]["requestId"] == ev.request_id
    assert re.fullmatch(ISO_TIME, info[0]["timestamp"])
    assert [r["level"] for r in records if r["message"] == "warned"] == ["WARN"]


def test_python_marshalling(sandbox):
    box = sandbox(PY, "app.unserialisable", {"app.py": PY_HANDLERS})
    ev = Event({})
    (post,) = box.invoke(ev)
    assert post.kind == "error"
    assert post.json() == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": ev.request_id,
        "stackTrace": [],
    }


def test_python_decimal_bytes_and_raw_events(sandbox, task):
    (task / "app.py").write_text(PY_HANDLERS)
    box = sandbox(PY, "app.decimals")
    (post,) = box.invoke({})
    assert post.json() == {"int": 3, "frac": 1.5}
    box2 = sandbox(PY, "app.raw")
    (post,) = box2.invoke({})
    assert post.body == b"raw bytes"
    box3 = sandbox(PY, "app.echo")
    posts = box3.invoke(Event(b'"just a string"'), Event(b"not json", content_type="application/octet-stream"))
    assert posts[0].json() == "just a string"
    # An event that is not JSON reaches the handler as bytes.
    assert posts[1].body == b"not json"


def test_python_nested_handler_paths(sandbox):
    files = {
        "pkg/__init__.py": "",
        "pkg/sub/__init__.py": "",
        "pkg/sub/mod.py": "def h(e, c):\n    return 'pkg.sub.mod'\n",
        "dir/inner/mod2.py": "def h(e, c):\n    return 'dir/inner.mod2'\n",
    }
    box = sandbox(PY, "pkg.sub.mod.h", files)
    assert box.invoke({})[0].json() == "pkg.sub.mod"
    box2 = sandbox(PY, "pkg/sub/mod.h")
    assert box2.invoke({})[0].json() == "pkg.sub.mod"
    box3 = sandbox(PY, "dir/inner/mod2.h")
    assert box3.invoke({})[0].json() == "dir/inner.mod2"


def test_python_connects_without_the_idna_codec(sandbox):
    # socket.create_connection's getaddrinfo would import the idna codec
    # (with stringprep and unicodedata) at the first /next: milliseconds of
    # every cold start, and modules the function never imported.
    box = sandbox(PY, "app.idna", {"app.py": PY_HANDLERS})
    (post,) = box.invoke({})
    assert post.json() == []


def test_python_handler_exit_ends_process(sandbox):
    box = sandbox(PY, "app.h", {"app.py": "import sys\ndef h(e, c):\n    sys.exit(3)\n"})
    box.api.push(Event({}))
    assert box.wait_exit() == 3
    assert box.api.posts == []


SNAPSTART_APP = """
import random
from snapshot_restore_py import register_before_snapshot, register_after_restore

calls = []

@register_before_snapshot
def first():
    calls.append("before-first")

register_before_snapshot(lambda tag: calls.append("before-" + tag), "second")

@register_after_restore
def one(kind="one"):
    calls.append("after-" + kind)

register_after_restore(one, kind="two")

def h(event, context):
    return {"calls": calls, "random": random.random()}
"""


def test_python_snapstart_hooks_run_in_order_around_the_restore(sandbox):
    env = {"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"}
    box = sandbox(PY, "app.h", {"app.py": SNAPSTART_APP}, env=env)
    with box.api.cond:
        assert box.api.cond.wait_for(lambda: box.api.restore_calls, 15)
    # Parked in /restore/next: no /invocation/next before the restore.
    assert box.api.next_calls == []
    box.api.restored.set()
    (post,) = box.invoke({})
    body = post.json()
    # Before-snapshot hooks last registered first, after-restore in order.
    assert body["calls"] == ["before-second", "before-first", "after-one", "after-two"]


def test_python_snapstart_failing_hooks(sandbox):
    app = "from snapshot_restore_py import register_after_restore as r\n@r\ndef bad():\n    raise ValueError('x')\n"
    app += "def h(e, c):\n    return 1\n"
    box = sandbox(PY, "app.h", {"app.py": app}, env={"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
    box.api.restored.set()
    assert box.wait_exit() == 1
    (err,) = [p for p in box.api.posts if p.kind == "restore_error"]
    assert err.json()["errorType"] == "Runtime.AfterRestoreError"
    assert err.headers["Lambda-Runtime-Function-Error-Type"] == "Runtime.AfterRestoreError"
    before = "from snapshot_restore_py import register_before_snapshot as r\nr(lambda: 1 / 0)\ndef h(e, c):\n    return 1\n"
    box = sandbox(PY, "b.h", {"b.py": before}, env={"AWS_LAMBDA_INITIALIZATION_TYPE": "snap-start"})
    assert box.init_error().json()["errorType"] == "Runtime.BeforeSnapshotError"
    assert box.api.restore_calls == []


# ======================================================================== Node


NODE_HANDLERS = r"""
let counter = 0;
exports.count = async (event, context) => {
  counter += 1;
  return { counter, pid: process.pid, event };
};
exports.boom = async (event) => {
  throw new TypeError('boom ' + (event.why || ''));
};
exports.syncThrow = (event) => {
  throw new Error('sync boom');
};
exports.cbOk = (event, context, callback) => {
  callback(null, { via: 'callback', n: event.n });
};
exports.cbErr = (event, context, callback) => {
  callback('plain string failure');
};
exports.cbErrObj = (event, context, callback) => {
  const e = new RangeError('out of range');
  callback(e);
};
exports.waits = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  globalThis.timerFired = false;
  setTimeout(() => { globalThis.timerFired = true; console.log('timer fired'); }, 400);
  callback(null, { started: Date.now() });
};
exports.timerState = async () => ({ timerFired: globalThis.timerFired });
exports.succeed = (event, context) => { context.succeed({ via: 'succeed' }); };
exports.fail = (event, context) => { context.fail(new Error('via fail')); };
exports.done = (event, context) => { context.done(null, 'via done'); };
exports.syncNoCallback = (event) => { const x = 1; };
exports.ctx = async (event, context) => ({
  functionName: context.functionName,
  functionVersion: context.functionVersion,
  invokedFunctionArn: context.invokedFunctionArn,
  memoryLimitInMB: context.memoryLimitInMB,
  awsRequestId: context.awsRequestId,
  logGroupName: context.logGroupName,
  logStreamName: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  identity: context.identity === undefined ? null : context.identity,
  clientContext: context.clientContext === undefined ? null : context.clientContext,
  waits: context.callbackWaitsForEmptyEventLoop,
  trace: process.env._X_AMZN_TRACE_ID || null,
  execEnv: process.env.AWS_EXECUTION_ENV,
  nodePath: process.env.NODE_PATH,
  cwd: process.cwd(),
  wrapped: process.env.WRAPPED || null,
});
exports.logs = async () => {
  console.log('hello %s', 'log');
  console.info('info');
  console.warn('warn');
  console.error('err');
  console.debug('debug');
  console.log('two\nlines');
  process.stdout.write('raw stdout\n');
  return 'ok';
};
exports.circular = async () => { const a = {}; a.a = a; return a; };
exports.undef = async () => undefined;
exports.nested = { deeper: { fn: async () => 'nested property' } };
exports.notAFunction = 42;
exports.crash = async () => { setTimeout(() => { throw new Error('late crash'); }, 10); return new Promise(() => {}); };
exports.pending = async () => new Promise(() => {});
"""


def node_box(sandbox, handler, files=None, **kw):
    return sandbox(NODE, handler, files if files is not None else {"app.js": NODE_HANDLERS}, **kw)


def test_node_response_and_warm_state(sandbox):
    box = node_box(sandbox, "app.count")
    posts = box.invoke({"n": 1}, {"n": 2}, {"n": 3})
    bodies = [p.json() for p in posts]
    assert [b["counter"] for b in bodies] == [1, 2, 3]
    assert len({b["pid"] for b in bodies}) == 1
    assert bodies[2]["event"] == {"n": 3}
    assert box.proc.poll() is None


NODE_STREAMING = r"""
exports.plain = awslambda.streamifyResponse(async (event, stream) => {
  stream.setContentType('text/plain');
  stream.write('a');
  stream.write('b');
  stream.end();
});
exports.http = awslambda.streamifyResponse(async (event, stream) => {
  stream = awslambda.HttpResponseStream.from(stream, { statusCode: 201, headers: { 'x-a': 'b' } });
  stream.write('body');
  stream.end();
});
exports.fails = awslambda.streamifyResponse(async (event, stream) => {
  stream.write('partial');
  throw new TypeError('mid-stream');
});
exports.leftOpen = awslambda.streamifyResponse(async (event, stream) => {
  stream.write('open');
});
"""


def test_node_streamed_responses(sandbox):
    box = node_box(sandbox, "app.plain", {"app.js": NODE_STREAMING})
    (post,) = box.invoke({})
    assert post.kind == "response"
    assert post.headers["Lambda-Runtime-Function-Response-Mode"] == "streaming"
    assert post.headers["Content-Type"] == "text/plain"
    assert post.chunks == [b"a", b"b"] and post.trailers == {}
    # The next event is asked for after the stream: still serving.
    assert box.invoke({})[0].chunks == [b"a", b"b"]
    (http,) = node_box(sandbox, "app.http", {"app.js": NODE_STREAMING}).invoke({})
    assert http.headers["Content-Type"] == "application/vnd.awslambda.http-integration-response"
    assert http.body == b'{"statusCode":201,"headers":{"x-a":"b"}}' + b"\0" * 8 + b"body"
    (open_,) = node_box(sandbox, "app.leftOpen", {"app.js": NODE_STREAMING}).invoke({})
    assert open_.body == b"open" and open_.trailers == {}


def test_node_stream_errors_travel_in_trailers(sandbox):
    box = node_box(sandbox, "app.fails", {"app.js": NODE_STREAMING})
    (post,) = box.invoke({})
    assert post.body == b"partial"
    assert post.trailers["lambda-runtime-function-error-type"] == "TypeError"
    error = json.loads(base64.b64decode(post.trailers["lambda-runtime-function-error-body"]))
    assert (error["errorType"], error["errorMessage"]) == ("TypeError", "mid-stream")
    assert box.invoke({})[0].body == b"partial"


def test_node_thrown_errors(sandbox):
    box = node_box(sandbox, "app.boom")
    ev = Event({"why": "here"})
    (post,) = box.invoke(ev)
    assert post.kind == "error"
    body = post.json()
    assert body["errorType"] == "TypeError"
    assert body["errorMessage"] == "boom here"
    assert body["trace"][0] == "TypeError: boom here"
    assert any("app.js" in line for line in body["trace"])
    log = box.log()
    assert re.search(r"%s\t%s\tERROR\tInvoke Error \t\{\"errorType\":\"TypeError\",\"errorMessage\":\"boom here\"" % (ISO_TIME, ev.request_id), log), log
    # Still serving.
    assert box.invoke(Event({"why": "2"}))[0].json()["errorMessage"] == "boom 2"
    box2 = node_box(sandbox, "app.syncThrow")
    assert box2.invoke({})[0].json()["errorMessage"] == "sync boom"


def test_node_callback_handlers(sandbox):
    box = node_box(sandbox, "app.cbOk")
    assert box.invoke({"n": 7})[0].json() == {"via": "callback", "n": 7}
    box = node_box(sandbox, "app.cbErr")
    (post,) = box.invoke({})
    assert post.kind == "error"
    assert post.json() == {"errorType": "string", "errorMessage": "plain string failure", "trace": []}
    box = node_box(sandbox, "app.cbErrObj")
    body = box.invoke({})[0].json()
    assert body["errorType"] == "RangeError" and body["errorMessage"] == "out of range"
    for handler, expected in [("app.succeed", {"via": "succeed"}), ("app.done", "via done")]:
        assert node_box(sandbox, handler).invoke({})[0].json() == expected
    (post,) = node_box(sandbox, "app.fail").invoke({})
    assert post.kind == "error" and post.json()["errorMessage"] == "via fail"
    # A sync handler that never calls back answers null once the loop is empty.
    (post,) = node_box(sandbox, "app.syncNoCallback").invoke({})
    assert post.kind == "response" and post.body == b"null"
    # An async handler returning undefined answers null too.
    (post,) = node_box(sandbox, "app.undef").invoke({})
    assert post.body == b"null"


def test_node_callback_waits_for_empty_event_loop(sandbox):
    box = node_box(sandbox, "app.waits")
    (post,) = box.invoke({"wait": True})
    started = post.json()["started"]
    assert post.at * 1000 - started >= 350, "the response must wait for the 400 ms timer"
    assert box.invoke(Event({}, headers={}))[0].kind == "response"
    # With callbackWaitsForEmptyEventLoop = false the response goes at once.
    box2 = node_box(sandbox, "app.waits")
    (post,) = box2.invoke({"wait": False})
    assert post.at * 1000 - post.json()["started"] < 350


def test_node_prewarmed_client_warms_http_and_leaves_no_handle(sandbox):
    # Waiting for its function, the client has made its first HTTP request
    # (to a path the Runtime API answers 404), and nothing else; given its
    # environment, a callback handler's answer still waits for an empty
    # event loop: the warm-up's socket is closed.
    box = node_box(sandbox, "app.waits", prewarm=True)
    box.ready()
    assert box.api.unknown == [("POST", "/2018-06-01/runtime/prewarm")]
    assert box.api.next_calls == [] and box.api.posts == []
    box.assign()
    (post,) = box.invoke({"wait": True})
    assert post.at * 1000 - post.json()["started"] >= 350, "the response must wait for the 400 ms timer"
    (post,) = box.invoke({"n": 2})
    assert post.kind == "response"


def test_node_pending_async_handler_fails(sandbox):
    box = node_box(sandbox, "app.pending")
    (post,) = box.invoke({})
    assert post.kind == "error"
    assert post.json()["errorType"] == "Runtime.NodeJsExit"


def test_node_uncaught_exception_during_invoke(sandbox):
    box = node_box(sandbox, "app.crash")
    (post,) = box.invoke({})
    assert post.kind == "error"
    assert post.json()["errorMessage"] == "late crash"
    assert box.wait_exit() == 129


def test_node_marshalling(sandbox):
    (post,) = node_box(sandbox, "app.circular").invoke({})
    assert post.kind == "error"
    assert post.json()["errorMessage"] == "Unable to stringify response body"


@pytest.mark.parametrize(
    "handler,files,error_type,message",
    [
        ("nope.handler", {}, "Runtime.ImportModuleError", "Error: Cannot find module 'nope'"),
        ("app.missing", None, "Runtime.HandlerNotFound", "app.missing is undefined or not exported"),
        ("app.notAFunction", None, "Runtime.HandlerNotFound", "app.notAFunction is not a function"),
        ("nodots", {}, "Runtime.MalformedHandlerName", "Bad handler"),
        ("../up.handler", {}, "Runtime.MalformedHandlerName", "'../up.handler' is not a valid handler name."),
        ("bad.handler", {"bad.js": "exports.handler = (;\n"}, "Runtime.UserCodeSyntaxError", "SyntaxError: "),
        ("thrower.handler", {"thrower.js": "throw new Error('no config');\n"}, "Error", "no config"),
    ],
)
def test_node_init_errors(sandbox, handler, files, error_type, message):
    box = node_box(sandbox, handler, files)
    post = box.init_error()
    body = post.json()
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message), body
    assert isinstance(body["trace"], list) and body["trace"][0].startswith(error_type)
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == error_type
    assert box.wait_exit() == 129
    assert re.search(r"%s\tundefined\tERROR\tUncaught Exception \t\{\"errorType\":\"%s\"" % (ISO_TIME, re.escape(error_type)), box.log())


def test_node_context_and_headers(sandbox, task):
    box = node_box(sandbox, "app.ctx")
    deadline = int(time.time() * 1000) + 5000
    cc = {"client": {"installation_id": "inst-1"}, "custom": {"k": "v"}, "env": {"e": 1}}
    ident = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    ev = Event(
        {},
        deadline_ms=deadline,
        headers={
            "Lambda-Runtime-Client-Context": json.dumps(cc),
            "Lambda-Runtime-Cognito-Identity": json.dumps(ident),
            "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
        },
    )
    (post,) = box.invoke(ev)
    b = post.json()
    assert b["functionName"] == "fn"
    assert b["functionVersion"] == "$LATEST"
    assert b["invokedFunctionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert b["memoryLimitInMB"] == "256"
    assert b["awsRequestId"] == ev.request_id
    assert b["logGroupName"] == "/aws/lambda/fn"
    assert b["logStreamName"].startswith("2024/01/01/[$LATEST]")
    assert 3000 < b["remaining"] <= 5000
    assert b["identity"] == ident
    assert b["clientContext"] == cc
    assert b["waits"] is True
    assert b["trace"] == "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"
    assert b["execEnv"] == "AWS_Lambda_nodejs18.x"
    assert b["nodePath"] == (
        "/opt/nodejs/node18/node_modules:/opt/nodejs/node_modules:"
        "%s/node_modules:%s:%s" % (NODE, NODE, task)
    )
    assert b["cwd"] == str(task)
    (post,) = box.invoke({})
    b = post.json()
    assert b["identity"] is None and b["clientContext"] is None and b["trace"] is None


def test_node_console_format(sandbox):
    box = node_box(sandbox, "app.logs")
    ev = Event({})
    assert box.invoke(ev)[0].json() == "ok"
    lines = box.log().split("\n")  # not splitlines(): a CR is part of a record
    rid = re.escape(ev.request_id)
    for level, msg in [("INFO", "hello log"), ("INFO", "info"), ("WARN", "warn"), ("ERROR", "err"), ("DEBUG", "debug"), ("INFO", "two\rlines")]:
        assert any(re.fullmatch(r"%s\t%s\t%s\t%s" % (ISO_TIME, rid, level, re.escape(msg)), l) for l in lines), (level, msg, lines)
    assert "raw stdout" in lines


def test_node_log_level_and_json(sandbox):
    box = node_box(sandbox, "app.logs", env={"AWS_LAMBDA_LOG_LEVEL": "WARN", "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    ev = Event({})
    box.invoke(ev)
    records = [json.loads(l) for l in box.log().splitlines() if l.startswith("{")]
    assert [(r["level"], r["message"]) for r in records] == [("WARN", "warn"), ("ERROR", "err")]
    assert all(r["requestId"] == ev.request_id for r in records)


def test_node_module_forms(sandbox, task):
    files = {
        "app.js": NODE_HANDLERS,
        "dir/sub/file.js": "exports.fn = async () => 'dir/sub/file.fn';\n",
        "esm.mjs": "export const handler = async (e) => ({ esm: true, e });\n",
        "cjs.cjs": "module.exports.handler = async () => 'cjs';\n",
        "typed/package.json": '{"type": "module"}',
        "typed/mod.js": "export async function handler() { return 'type module'; }\n",
        "node_modules/from-node-modules/index.js": "exports.handler = async () => 'node_modules';\n",
    }
    cases = [
        ("dir/sub/file.fn", "dir/sub/file.fn"),
        ("app.nested.deeper.fn", "nested property"),
        ("esm.handler", {"esm": True, "e": {"x": 1}}),
        ("cjs.handler", "cjs"),
        ("typed/mod.handler", "type module"),
        ("from-node-modules.handler", "node_modules"),
    ]
    for i, (handler, expected) in enumerate(cases):
        box = node_box(sandbox, handler, files if i == 0 else {})
        (post,) = box.invoke({"x": 1})
        assert post.kind == "response", (handler, post, box.log())
        assert post.json() == expected, handler


# ======================================================================== Java

JAVA_SRC = os.path.join(CLIENTS, "java", "src")

JAVA_HANDLERS = {
    "example/Count.java": """
package example;
import com.amazonaws.services.lambda.runtime.Context;
import java.util.*;
public class Count {
    static int inits = 0;
    static { inits++; }
    private int count = 0;
    public Map<String, Object> handle(Map<String, Object> event, Context context) {
        count++;
        if (Boolean.TRUE.equals(event.get("fail"))) {
            throw new IllegalStateException("boom " + count, new RuntimeException("root cause"));
        }
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("count", count);
        out.put("inits", inits);
        out.put("echo", event);
        return out;
    }
}
""",
    "example/Ctx.java": """
package example;
import com.amazonaws.services.lambda.runtime.*;
import java.util.*;
public class Ctx implements RequestHandler<Object, Map<String, Object>> {
    public Map<String, Object> handleRequest(Object event, Context c) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("request_id", c.getAwsRequestId());
        out.put("arn", c.getInvokedFunctionArn());
        out.put("function_name", c.getFunctionName());
        out.put("version", c.getFunctionVersion());
        out.put("memory", c.getMemoryLimitInMB());
        out.put("log_group", c.getLogGroupName());
        out.put("remaining", c.getRemainingTimeInMillis());
        out.put("identity", c.getIdentity().getIdentityId());
        ClientContext cc = c.getClientContext();
        out.put("custom", cc == null ? null : cc.getCustom());
        out.put("installation", cc == null ? null : cc.getClient().getInstallationId());
        out.put("trace", System.getProperty("com.amazonaws.xray.traceHeader"));
        out.put("exec_env", System.getenv("AWS_EXECUTION_ENV"));
        c.getLogger().log("logged by the context\\n");
        System.out.println("printed");
        return out;
    }
}
""",
    "example/Logs.java": """
package example;
import com.amazonaws.services.lambda.runtime.*;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
public class Logs {
    public String handle(Object in, Context c) {
        LambdaLogger l = c.getLogger();
        l.log("debug line", LogLevel.DEBUG);
        l.log("info line", LogLevel.INFO);
        l.log("warn line", LogLevel.WARN);
        l.log("no level");
        System.out.println("printed");
        return "ok";
    }
}
""",
    "example/Pojo.java": """
package example;
import java.io.*;
import java.util.*;
public class Pojo {
    public static class In { public String name; private int age; public void setAge(int a) { age = a; } public int getAge() { return age; } }
    public static class Out { public String greeting; public List<Integer> nums = List.of(1, 2); public double ratio = 0.5; }
    public static Out greet(In in) { Out o = new Out(); o.greeting = "hi " + in.name + " " + in.age; return o; }
    public String upper(String s) { return s.toUpperCase(); }
    public void stream(InputStream in, OutputStream out) throws IOException { out.write(("<" + new String(in.readAllBytes()) + ">").getBytes()); }
}
""",
}


@pytest.fixture(scope="session")
def java_runtime(tmp_path_factory):
    """The Java client compiled as rootfs/build.sh does (host javac, --release
    17) with its bootstrap, and the test handlers compiled against it."""
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no JDK on the host")
    rt = tmp_path_factory.mktemp("java-runtime")
    shutil.copy(os.path.join(CLIENTS, "java", "bootstrap"), rt / "bootstrap")
    srcs = [os.path.join(d, f) for d, _, fs in os.walk(JAVA_SRC) for f in fs if f.endswith(".java")]
    subprocess.run(["javac", "-nowarn", "--release", "17", "-d", str(rt / "lib"), *srcs], check=True)
    code = tmp_path_factory.mktemp("java-code")
    for name, text in JAVA_HANDLERS.items():
        (code / name).parent.mkdir(parents=True, exist_ok=True)
        (code / name).write_text(text)
    subprocess.run(["javac", "-nowarn", "--release", "17", "-cp", str(rt / "lib"), "-d", str(code / "classes"),
                    *[str(code / n) for n in JAVA_HANDLERS]], check=True)
    return str(rt), str(code / "classes")


def java_box(sandbox, java_runtime, handler, **kw):
    rt, classes = java_runtime
    return sandbox(rt, handler, task_root=classes, env=dict({"AWS_EXECUTION_ENV": "AWS_Lambda_java21"}, **kw))


def test_java_response_warm_state_and_error_body(sandbox, java_runtime):
    box = java_box(sandbox, java_runtime, "example.Count::handle")
    posts = box.invoke({"a": [1, 2.5, "x", None, True]}, {"b": {"c": "d\n\u00e9"}})
    assert [p.kind for p in posts] == ["response", "response"]
    assert posts[0].json() == {"count": 1, "inits": 1, "echo": {"a": [1, 2.5, "x", None, True]}}
    assert posts[1].json() == {"count": 2, "inits": 1, "echo": {"b": {"c": "d\n\u00e9"}}}
    (post,) = box.invoke({"fail": True})
    assert post.kind == "error"
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == "java.lang.IllegalStateException"
    b = post.json()
    assert b["errorMessage"] == "boom 3"
    assert b["errorType"] == "java.lang.IllegalStateException"
    assert b["stackTrace"][0].startswith("example.Count.handle(Count.java")
    assert b["cause"]["errorMessage"] == "root cause"
    # The environment lives on after a function error.
    assert box.invoke({})[0].json()["count"] == 4


def test_java_context_and_headers(sandbox, java_runtime):
    box = java_box(sandbox, java_runtime, "example.Ctx")
    deadline = int(time.time() * 1000) + 5000
    cc = {"client": {"installation_id": "inst-1"}, "custom": {"k": "v"}, "env": {}}
    ev = Event({}, deadline_ms=deadline, headers={
        "Lambda-Runtime-Client-Context": json.dumps(cc),
        "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id-1"}),
        "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
    })
    (post,) = box.invoke(ev)
    b = post.json()
    assert b["request_id"] == ev.request_id
    assert b["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert (b["function_name"], b["version"], b["memory"]) == ("fn", "$LATEST", 256)
    assert b["log_group"] == "/aws/lambda/fn"
    assert 0 < b["remaining"] <= 5000
    assert (b["identity"], b["custom"], b["installation"]) == ("id-1", {"k": "v"}, "inst-1")
    assert b["trace"] == "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"
    assert b["exec_env"] == "AWS_Lambda_java21"
    assert "logged by the context" in box.log() and "printed" in box.log()
    (post,) = box.invoke(Event({}))
    assert post.json()["custom"] is None and post.json()["trace"] is None


def test_java_pojo_string_and_stream_handlers(sandbox, java_runtime):
    box = java_box(sandbox, java_runtime, "example.Pojo::greet")
    (post,) = box.invoke({"name": "Ada", "age": 36, "unknown": 1})
    assert post.json() == {"greeting": "hi Ada 36", "nums": [1, 2], "ratio": 0.5}
    box = java_box(sandbox, java_runtime, "example.Pojo::upper")
    assert box.invoke("abc")[0].json() == "ABC"
    box = java_box(sandbox, java_runtime, "example.Pojo::stream")
    (post,) = box.invoke({"x": 1})
    assert post.body == b'<{"x": 1}>'


def test_java_log_level_and_json_format(sandbox, java_runtime):
    box = java_box(sandbox, java_runtime, "example.Logs::handle",
                   AWS_LAMBDA_LOG_FORMAT="JSON", AWS_LAMBDA_LOG_LEVEL="INFO")
    ev = Event({})
    assert box.invoke(ev)[0].json() == "ok"
    records = [json.loads(l) for l in box.log().splitlines() if l.startswith("{")]
    assert [(r["level"], r["message"]) for r in records] == [("INFO", "info line"), ("WARN", "warn line"), ("UNDEFINED", "no level")]
    assert all(r["AWSRequestId"] == ev.request_id and re.fullmatch(ISO_TIME, r["timestamp"]) for r in records)
    assert "printed" in box.log().splitlines()


def test_java_text_format_logs_every_level(sandbox, java_runtime):
    box = java_box(sandbox, java_runtime, "example.Logs::handle")
    box.invoke(Event({}))
    log = box.log()
    assert "debug line" in log and "no level" in log and "{" not in log


@pytest.mark.parametrize(
    "handler,error_type,message",
    [
        ("example.Missing::handle", "java.lang.ClassNotFoundException", "Class not found: example.Missing"),
        ("example.Count::nope", "java.lang.NoSuchMethodException", "No public method named nope"),
        ("example.Count", "java.lang.NoSuchMethodException", "No public method named handleRequest"),
    ],
)
def test_java_init_errors(sandbox, java_runtime, handler, error_type, message):
    box = java_box(sandbox, java_runtime, handler)
    post = box.init_error()
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == error_type
    assert post.json()["errorType"] == error_type
    assert message in post.json()["errorMessage"]
    assert box.wait_exit() == 1


# ======================================================================== Ruby
# No Ruby on the host: the Ruby client runs in its built tree (as root).

RUBY_HANDLERS = {
    "app.rb": """
$count = 0
def handler(event:, context:)
  $count += 1
  raise ArgumentError, "boom #{$count}" if event.is_a?(Hash) && event['fail']
  { 'count' => $count, 'echo' => event }
end

def ctx(event:, context:)
  puts "line one\\nline two"
  { 'request_id' => context.aws_request_id, 'arn' => context.invoked_function_arn,
    'function_name' => context.function_name, 'memory' => context.memory_limit_in_mb,
    'version' => context.function_version, 'log_group' => context.log_group_name,
    'remaining' => context.get_remaining_time_in_millis, 'identity' => context.identity,
    'client_context' => context.client_context, 'trace' => ENV['_X_AMZN_TRACE_ID'],
    'exec_env' => ENV['AWS_EXECUTION_ENV'], 'load_path' => $LOAD_PATH.first(3) }
end

module Outer
  class Inner
    def self.call(event:, context:)
      'nested'
    end
  end
end
""",
    "bad.rb": "def handler(event:, context:\n",
    "logs.rb": """
require 'logger'
LOGGER = Logger.new($stdout)
def handler(event:, context:)
  LOGGER.debug('debug line')
  LOGGER.info('info line')
  LOGGER.warn('warn line')
  puts 'printed'
  'ok'
end
""",
}


def tree_box(sandbox, task, runtime, code, handler, env=None, entry="/var/runtime/bootstrap"):
    """A client started in its runtime's built tree: a chroot as the sandbox
    user, with `code` bind-mounted at /var/task. Needs root."""
    root = os.path.join(ROOTFS, runtime)
    tools = [shutil.which(t) for t in ("unshare", "chroot", "mount", "sh")]
    if os.geteuid() != 0 or None in tools:
        pytest.skip("needs root, unshare, chroot and mount")
    if not os.access(os.path.join(root, "var", "runtime", "bootstrap"), os.X_OK):
        pytest.skip("no %s tree with a runtime client: run rootfs/build.sh %s" % (runtime, runtime))
    unshare, chroot, mount, sh = tools
    script = 'set -e; %s --bind "$1" "$2/var/task"; mount -t proc proc "$2/proc"; exec %s --userspec=993:990 "$2" /bin/sh -c \'cd /var/task && exec "$0"\' "$3"' % (
        mount,
        chroot,
    )
    return sandbox(
        "/var/runtime",
        handler,
        task_root="/var/task",
        cwd="/",
        env=dict({"PATH": LAMBDA_PATH}, **(env or {})),
        argv=[unshare, "--mount", "--propagation", "private", sh, "-c", script, "sh", str(code), root, entry],
    )


def ruby_box(sandbox, task, handler, env=None):
    for name, text in RUBY_HANDLERS.items():
        (task / name).write_text(text)
    return tree_box(sandbox, task, "ruby3.3", task, handler, env=env)


def test_ruby_response_warm_state_and_error_body(sandbox, task):
    box = ruby_box(sandbox, task, "app.handler")
    posts = box.invoke({"a": [1, 2.5, None]}, "text", timeout=30)
    assert [p.json() for p in posts] == [{"count": 1, "echo": {"a": [1, 2.5, None]}}, {"count": 2, "echo": "text"}]
    (post,) = box.invoke({"fail": True}, timeout=30)
    assert post.kind == "error"
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == "Function<ArgumentError>"
    b = post.json()
    assert (b["errorMessage"], b["errorType"]) == ("boom 3", "Function<ArgumentError>")
    assert "/var/task/app.rb:5" in b["stackTrace"][0]
    assert "Error raised from handler method\r{" in box.log()
    assert box.invoke({}, timeout=30)[0].json()["count"] == 4


def test_ruby_context_and_headers(sandbox, task):
    box = ruby_box(sandbox, task, "app.ctx")
    deadline = int(time.time() * 1000) + 5000
    ev = Event({}, deadline_ms=deadline, headers={
        "Lambda-Runtime-Client-Context": json.dumps({"custom": {"k": "v"}}),
        "Lambda-Runtime-Cognito-Identity": json.dumps({"cognitoIdentityId": "id-1"}),
        "Lambda-Runtime-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1",
    })
    (post,) = box.invoke(ev, timeout=30)
    b = post.json()
    assert b["request_id"] == ev.request_id
    assert b["arn"] == "arn:aws:lambda:us-east-1:000000000000:function:fn"
    assert (b["function_name"], b["memory"], b["version"]) == ("fn", "256", "$LATEST")
    assert b["log_group"] == "/aws/lambda/fn"
    assert 0 < b["remaining"] <= 5000
    assert b["identity"] == {"cognitoIdentityId": "id-1"}
    assert b["client_context"] == {"custom": {"k": "v"}}
    assert b["trace"] == "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Sampled=1"
    assert b["exec_env"] == "AWS_Lambda_ruby3.3"
    assert b["load_path"] == ["/var/task", "/var/runtime/lib", "/opt/ruby/lib"]
    assert "line one\nline two" in box.log()
    box2 = ruby_box(sandbox, task, "app.Outer::Inner.call")
    assert box2.invoke({}, timeout=30)[0].json() == "nested"


def test_ruby_log_level_and_json_format(sandbox, task):
    box = ruby_box(sandbox, task, "logs.handler", env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "INFO"})
    ev = Event({})
    assert box.invoke(ev, timeout=30)[0].json() == "ok"
    records = [json.loads(l) for l in box.log().splitlines() if l.startswith("{")]
    assert [(r["level"], r["message"]) for r in records] == [("INFO", "info line"), ("WARN", "warn line")]
    assert all(r["requestId"] == ev.request_id and re.fullmatch(ISO_TIME, r["timestamp"]) for r in records)
    assert "printed" in box.log().splitlines()


@pytest.mark.parametrize(
    "handler,error_type,message",
    [
        ("missing.handler", "Init<LoadError>", "cannot load such file"),
        ("app.nope", "Init<NoMethodError>", "Handler 'nope' not found"),
        ("bad.handler", "Init<SyntaxError>", ""),
        ("nodot", "Init<ArgumentError>", "Bad handler nodot"),
    ],
)
def test_ruby_init_errors(sandbox, task, handler, error_type, message):
    box = ruby_box(sandbox, task, handler)
    post = box.init_error(timeout=30)
    assert post.headers["Lambda-Runtime-Function-Error-Type"] == error_type
    assert post.json()["errorType"] == error_type
    assert message in post.json()["errorMessage"]
    assert box.wait_exit() == 1


# ============================================================ wrapper, examples


@pytest.mark.parametrize(
    "runtime_dir,handler,files,option,client",
    [
        (PY, "app.ctx", {"app.py": PY_HANDLERS}, "-B", "bootstrap.py"),
        (NODE, "app.ctx", {"app.js": NODE_HANDLERS}, "--no-warnings", "index.mjs"),
    ],
)
def test_exec_wrapper_gets_the_interpreter_command_line(sandbox, tmp_path, runtime_dir, handler, files, option, client):
    """As on Lambda, the runtime's bootstrap runs `$AWS_LAMBDA_EXEC_WRAPPER`
    with the interpreter's command line; Lambda's documented example wrapper
    inserts an interpreter option before the last argument."""
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(
        "#!/bin/bash\n"
        'args=("$@")\n'
        'export WRAPPED="yes:$(basename "${args[-1]}")"\n'
        f'exec "${{args[@]:0:$#-1}}" {option} "${{args[@]: -1}}"\n'
    )
    wrapper.chmod(0o755)
    box = sandbox(runtime_dir, handler, files, env={"AWS_LAMBDA_EXEC_WRAPPER": str(wrapper)})
    (post,) = box.invoke({})
    assert post.json()["wrapped"] == f"yes:{client}"


def test_example_hello_python(sandbox):
    box = sandbox(PY, "lambda_function.lambda_handler", task_root=os.path.join(EXAMPLES, "hello-python"))
    posts = box.invoke({"name": "Ada"}, {}, {"name": "Lin"})
    bodies = [p.json() for p in posts]
    assert [b["message"] for b in bodies] == ["Hello, Ada!", "Hello, world!", "Hello, Lin!"]
    assert [b["invocations"] for b in bodies] == [1, 2, 3]
    assert re.search(r"\[INFO\]\t%s\t\S+\tinvocation 2 in this environment" % ISO_TIME, box.log())


def test_example_hello_node(sandbox):
    box = sandbox(NODE, "index.handler", task_root=os.path.join(EXAMPLES, "hello-node"))
    posts = box.invoke({"name": "Ada"}, {}, {"name": "Lin"})
    bodies = [p.json() for p in posts]
    assert [b["message"] for b in bodies] == ["Hello, Ada!", "Hello, world!", "Hello, Lin!"]
    assert [b["invocations"] for b in bodies] == [1, 2, 3]
    assert bodies[0]["runtime"] == "nodejs18.x"
    assert re.search(r"%s\t\S+\tINFO\tinvocation 3 in this environment" % ISO_TIME, box.log())


@pytest.fixture(scope="session")
def provided_bootstrap(tmp_path_factory):
    if shutil.which(os.environ.get("CC", "gcc")) is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("provided") / "bootstrap"
    subprocess.run([os.path.join(EXAMPLES, "hello-provided", "build.sh"), str(out)], check=True)
    return str(out)


def test_example_hello_provided(sandbox, task, provided_bootstrap):
    shutil.copy(provided_bootstrap, task / "bootstrap")
    box = sandbox(str(task), "bootstrap", argv=[str(task / "bootstrap")])
    posts = box.invoke({"name": "Ada"}, {"other": "name"}, {"name": 'Lin "Q"'})
    bodies = [p.json() for p in posts]
    assert [b["message"] for b in bodies] == ["Hello, Ada!", "Hello, world!", 'Hello, Lin "Q"!']
    assert [b["invocations"] for b in bodies] == [1, 2, 3]
    assert bodies[0]["requestId"] == posts[0].request_id
    (post,) = box.invoke({"fail": True})
    assert post.kind == "error"
    assert post.json()["errorType"] == "HelloError"
    assert box.invoke({})[0].json()["invocations"] == 5
    assert "hello-provided: invocation 5 in this environment" in box.log()


# ================================================= inside the built rootfs trees

ROOTFS = os.path.join(REPO, "rootfs", "build")
LAMBDA_PATH = "/usr/local/bin:/usr/bin/:/bin:/opt/bin"


@pytest.mark.parametrize(
    "runtime,example,handler",
    [
        ("python3.11", "hello-python", "lambda_function.lambda_handler"),
        ("python3.13", "hello-python", "lambda_function.lambda_handler"),
        ("python3.14", "hello-python", "lambda_function.lambda_handler"),
        ("nodejs18.x", "hello-node", "index.handler"),
        ("nodejs20.x", "hello-node", "index.handler"),
        ("nodejs22.x", "hello-node", "index.handler"),
        ("nodejs24.x", "hello-node", "index.handler"),
        ("provided.al2023", "hello-provided", "bootstrap"),
        ("ruby3.3", "hello-ruby", "lambda_function.lambda_handler"),
        ("java21", "hello-java", "example.Hello::handleRequest"),
    ],
)
def test_example_in_rootfs(sandbox, task, runtime, example, handler, request):
    """The example on its runtime's real tree (rootfs/build.sh), as the
    sandbox user in a chroot with the code bind-mounted at /var/task: Debian's
    Python 3.11 and Node 18 rather than the host's. Needs root."""
    root = os.path.join(ROOTFS, runtime)
    tools = [shutil.which(t) for t in ("unshare", "chroot", "mount", "sh")]
    if os.geteuid() != 0 or None in tools:
        pytest.skip("needs root, unshare, chroot and mount")
    if not os.path.isdir(os.path.join(root, "var", "task")):
        pytest.skip("no %s tree: run rootfs/build.sh %s" % (runtime, runtime))
    if runtime.startswith("provided"):
        shutil.copy(request.getfixturevalue("provided_bootstrap"), task / "bootstrap")
        code, entry = str(task), "/var/task/bootstrap"
    elif runtime == "java21":
        subprocess.run([os.path.join(EXAMPLES, example, "build.sh"), str(task)], check=True)
        code, entry = str(task), "/var/runtime/bootstrap"
    else:
        if not os.access(os.path.join(root, "var", "runtime", "bootstrap"), os.X_OK):
            pytest.skip("the %s tree has no /var/runtime/bootstrap: rebuild it" % runtime)
        code, entry = os.path.join(EXAMPLES, example), "/var/runtime/bootstrap"
    unshare, chroot, mount, sh = tools
    script = 'set -e; %s --bind "$1" "$2/var/task"; mount -t proc proc "$2/proc"; exec %s --userspec=993:990 "$2" /bin/sh -c \'cd /var/task && exec "$0"\' "$3"' % (
        mount,
        chroot,
    )
    box = sandbox(
        "/var/runtime",
        handler,
        task_root="/var/task",
        cwd="/",
        env={"PATH": LAMBDA_PATH, "AWS_LAMBDA_FUNCTION_NAME": example},
        argv=[unshare, "--mount", "--propagation", "private", sh, "-c", script, "sh", code, root, entry],
    )
    posts = box.invoke({"name": "Ada"}, {}, timeout=30)
    bodies = [p.json() for p in posts]
    assert [b["message"] for b in bodies] == ["Hello, Ada!", "Hello, world!"], box.log()
    assert [b["invocations"] for b in bodies] == [1, 2]
    if "runtime" in bodies[0]:
        # The shared client knows which tree it is in (runtime-name).
        assert bodies[0]["runtime"] == runtime
