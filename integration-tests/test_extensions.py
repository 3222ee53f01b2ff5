"""Lambda extensions end to end: external extensions from a layer's
/opt/extensions, an internal one registered from the function's own
process, one that crashes, one that never calls next again, and one that
holds the invocation after the caller has its answer."""

import base64
import http.client
import json

import pytest

from conftest import BUILD, ROOT, ROLE, function_daemon, make_zip, public_url, url_id_of, wait_for

# The example extension built with AWS's `lambda-extension` crate
# (`make examples`): it prints every telemetry record it receives.
TELEMETRY_EXTENSION = ROOT / "examples" / "telemetry-extension" / "build" / "extensions" / "telemetry-extension"


@pytest.fixture(scope="module")
def engine():
    if not (BUILD / "python3.11" / "var" / "runtime" / "bootstrap").exists():
        pytest.skip("the python3.11 tree is not built (make rootfs)")
    with function_daemon("lamb-extensions-") as d:
        yield d


@pytest.fixture(scope="module")
def lam(engine):
    return engine.lambda_client()

# An external extension in Python (the runtime's interpreter, as Lambda's
# Python extensions use it). $EXT_MODE says how it misbehaves.
EXTENSION = rb'''#!/usr/bin/env python3
import json, os, sys, time, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
name = os.path.basename(__file__)
mode = os.environ.get("EXT_MODE", "ok")
if mode == "crash":
    sys.exit(3)
def call(method, path, body=None, headers=None):
    r = urllib.request.Request("http://" + api + path, data=body, method=method, headers=headers or {})
    return urllib.request.urlopen(r)
r = call("POST", "/2020-01-01/extension/register", json.dumps({"events": ["INVOKE", "SHUTDOWN"]}).encode(),
         {"Lambda-Extension-Name": name})
ext_id = r.headers["Lambda-Extension-Identifier"]
info = json.loads(r.read())
print("[%s] registered for %s" % (name, info["functionName"]), flush=True)
while True:
    ev = json.loads(call("GET", "/2020-01-01/extension/event/next",
                         headers={"Lambda-Extension-Identifier": ext_id}).read())
    if ev["eventType"] == "SHUTDOWN":
        print("[%s] SHUTDOWN %s" % (name, ev["shutdownReason"]), flush=True)
        break
    if mode == "hang":
        time.sleep(3600)
    if mode == "gate":
        print("[%s] holding %s" % (name, ev["requestId"]), flush=True)
        while not os.path.exists("/mnt/gate/open"):
            time.sleep(0.05)
    if mode == "crash-on-invoke":
        sys.exit(4)
    print("[%s] INVOKE %s %s" % (name, ev["requestId"], ev["tracing"]["type"]), flush=True)
'''

LAYER = make_zip({"extensions/watcher": (EXTENSION, 0o755)})

APP = b'''
import os, time
def handler(event, context):
    print("handler ran")
    if os.environ.get("EXT_MODE") == "crash-on-invoke":
        time.sleep(3600)  # the extension's crash ends this, not an answer
    return {"ok": True}
'''

# An internal extension: registered from the runtime's process at import,
# its events taken on a thread of the function.
INTERNAL_APP = b'''
import json, os, threading, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
def call(method, path, body=None, headers=None):
    r = urllib.request.Request("http://" + api + path, data=body, method=method, headers=headers or {})
    return urllib.request.urlopen(r)
r = call("POST", "/2020-01-01/extension/register", json.dumps({"events": ["INVOKE"]}).encode(),
         {"Lambda-Extension-Name": "inner"})
ext_id = r.headers["Lambda-Extension-Identifier"]
def loop():
    while True:
        ev = json.loads(call("GET", "/2020-01-01/extension/event/next",
                             headers={"Lambda-Extension-Identifier": ext_id}).read())
        print("[inner] INVOKE %s" % ev["requestId"], flush=True)
threading.Thread(target=loop, daemon=True).start()
def handler(event, context):
    return {"ok": True}
'''


def layered(lam, name, mode="ok", timeout=10, app=APP):
    layer = lam.publish_layer_version(LayerName="watcher", Content={"ZipFile": LAYER})
    lam.create_function(FunctionName=name, Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": app})}, Timeout=timeout, MemorySize=256,
                        Layers=[layer["LayerVersionArn"]], Environment={"Variables": {"EXT_MODE": mode}})


def invoke(lam, name):
    r = lam.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    return r, json.loads(r["Payload"].read()), base64.b64decode(r["LogResult"]).decode()


def test_an_external_extension_sees_every_invocation_before_it_completes(lam, engine):
    layered(lam, "ext-ok")
    for _ in range(2):
        r, body, _ = invoke(lam, "ext-ok")
        assert "FunctionError" not in r, body
        assert body == {"ok": True}
        request_id = r["ResponseMetadata"]["RequestId"]
        # The extension prints before it calls next again, and the
        # invocation completes only then: its line is before this
        # invocation's END.
        assert_before_end(engine, "ext-ok", request_id, f"[watcher] INVOKE {request_id} X-Amzn-Trace-Id")


def assert_before_end(engine, function, request_id, line):
    """`line` is in the log before the invocation's END: the extension that
    prints it is back in next only after, and the invocation completes
    then (the caller's log tail ends at the answer, which may come first)."""
    end = f"END RequestId: {request_id}"
    logs = wait_for(lambda: (out := engine.lamb("logs", function).stdout) and end in out and out,
                    what="the invocation's END")
    assert line in logs and logs.index(line) < logs.index(end), logs


def test_an_internal_extension_registers_from_the_function(lam, engine):
    lam.create_function(FunctionName="ext-inner", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": INTERNAL_APP})}, MemorySize=256)
    r, body, _ = invoke(lam, "ext-inner")
    assert body == {"ok": True}
    request_id = r["ResponseMetadata"]["RequestId"]
    assert_before_end(engine, "ext-inner", request_id, f"[inner] INVOKE {request_id}")


def test_an_extension_that_crashes_fails_init(lam):
    layered(lam, "ext-crash", mode="crash")
    r, body, tail = invoke(lam, "ext-crash")
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Extension.Crash", body
    assert "Extension.Crash" in tail


def test_an_extension_that_crashes_in_an_invocation_fails_it_and_its_sandbox(lam):
    layered(lam, "ext-crash-invoke", mode="crash-on-invoke")
    for _ in range(2):
        # The second invocation gets a new sandbox (Init again), whose
        # extension crashes the same way.
        r, body, tail = invoke(lam, "ext-crash-invoke")
        assert r["FunctionError"] == "Unhandled"
        assert body == {"errorType": "Extension.Crash", "errorMessage": "exit status 4"}, body
        assert "[watcher] registered" in tail, tail


def test_an_extension_that_never_calls_next_times_the_invocation_out(lam, engine):
    layered(lam, "ext-hang", mode="hang", timeout=2)
    # The caller has the runtime's answer, as on Lambda; the invocation,
    # held by the extension, times out and its sandbox goes.
    r, body, _ = invoke(lam, "ext-hang")
    assert body == {"ok": True}, body
    request_id = r["ResponseMetadata"]["RequestId"]
    wait_for(lambda: f"{request_id} Task timed out after 2.00 seconds" in engine.lamb("logs", "ext-hang").stdout,
             what="the held invocation's timeout in the log")
    _, _, tail = invoke(lam, "ext-hang")
    assert "[watcher] registered" in tail, tail


def test_the_caller_has_its_answer_while_an_extension_holds_the_invocation(tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    gate.chmod(0o777)
    with function_daemon("lamb-extensions-gate-", "--filesystem", f"gate={gate}") as d:
        lam = d.lambda_client()
        layer = lam.publish_layer_version(LayerName="watcher", Content={"ZipFile": LAYER})
        lam.create_function(FunctionName="ext-gate", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                            Code={"ZipFile": make_zip({"app.py": APP})}, Timeout=60, MemorySize=256,
                            Layers=[layer["LayerVersionArn"]], Environment={"Variables": {"EXT_MODE": "gate"}},
                            FileSystemConfigs=[{"Arn": "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate",
                                                "LocalMountPath": "/mnt/gate"}])
        r, body, _ = invoke(lam, "ext-gate")
        # The answer is here while the gate is shut: the extension still
        # holds the invocation, which has no END or REPORT yet.
        assert body == {"ok": True}, body
        request_id = r["ResponseMetadata"]["RequestId"]
        logs = wait_for(lambda: (out := d.lamb("logs", "ext-gate").stdout) and f"holding {request_id}" in out and out,
                        what="the extension holding the invocation")
        assert f"REPORT RequestId: {request_id}" not in logs, logs
        (gate / "open").write_text("")
        wait_for(lambda: f"REPORT RequestId: {request_id}" in d.lamb("logs", "ext-gate").stdout,
                 what="the REPORT once the extension is back in next")


def test_the_lambda_extension_crate_gets_telemetry(lam, engine):
    if not TELEMETRY_EXTENSION.exists():
        pytest.skip("the example extension is not built (make examples)")
    layer = lam.publish_layer_version(
        LayerName="telemetry",
        Content={"ZipFile": make_zip({"extensions/telemetry-extension": (TELEMETRY_EXTENSION.read_bytes(), 0o755)})})
    lam.create_function(FunctionName="ext-telemetry", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": APP})}, MemorySize=256,
                        Layers=[layer["LayerVersionArn"]])
    first, body, _ = invoke(lam, "ext-telemetry")
    assert body == {"ok": True}
    first_id = first["ResponseMetadata"]["RequestId"]

    # Records are delivered in batches after the invocation (the crate
    # buffers for up to a second); each invocation lets a frozen sandbox
    # deliver what is due.
    def delivered():
        invoke(lam, "ext-telemetry")
        logs = engine.lamb("logs", "ext-telemetry").stdout
        want = ["[telemetry] platform.initStart", "[telemetry] platform.initRuntimeDone",
                f"[telemetry] platform.start {first_id}", f"[telemetry] platform.runtimeDone {first_id} Success",
                f"[telemetry] platform.report {first_id} durationMs=", "memorySizeMB=256",
                "[telemetry] function handler ran"]
        return all(w in logs for w in want) and logs
    wait_for(delivered, timeout=60, every=0.5, what="the telemetry records in the log")


def test_an_idle_sandbox_gives_its_extensions_the_shutdown(lam):
    with function_daemon("lamb-extensions-ttl-", "--idle-ttl", "1s") as d:
        short = d.lambda_client()
        layered(short, "ext-ttl")
        r, body, _ = invoke(short, "ext-ttl")
        assert body == {"ok": True}

        def shut_down():
            return "[watcher] SHUTDOWN spindown" in d.lamb("logs", "ext-ttl").stdout
        wait_for(shut_down, timeout=60, every=0.2, what="the extension's SHUTDOWN line in the log")


# The AWS Lambda Web Adapter (`make examples`) and a small web server.
WEB_ADAPTER = ROOT / "examples" / "web-adapter" / "build" / "extensions" / "lambda-adapter"
# What the adapter's layer ships as /opt/bootstrap: the exec wrapper that
# starts the handler (a script that starts the web server) as the runtime.
ADAPTER_WRAPPER = b'#!/bin/bash\nexec -- "${LAMBDA_TASK_ROOT}/${_HANDLER}"\n'
WEB_SERVER = b"""
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "server": "python"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

HTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
"""


def test_the_web_adapter_serves_a_web_app_behind_a_function_url(lam, engine):
    if not WEB_ADAPTER.exists():
        pytest.skip("the web adapter is not built (make examples)")
    layer = lam.publish_layer_version(LayerName="web-adapter", Content={"ZipFile": make_zip({
        "extensions/lambda-adapter": (WEB_ADAPTER.read_bytes(), 0o755),
        "bootstrap": (ADAPTER_WRAPPER, 0o755),
    })})
    code = make_zip({"run.sh": (b"#!/bin/sh\nexec python3 /var/task/server.py\n", 0o755), "server.py": WEB_SERVER})
    lam.create_function(FunctionName="ext-web", Role=ROLE, Runtime="python3.11", Handler="run.sh",
                        Code={"ZipFile": code}, MemorySize=256, Layers=[layer["LayerVersionArn"]],
                        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/opt/bootstrap"}})
    url_id = url_id_of(public_url(lam, "ext-web")["FunctionUrl"])
    for path in ["/hello?x=1", "/again"]:
        c = http.client.HTTPConnection("127.0.0.1", engine.url_port, timeout=60)
        c.request("GET", f"/{url_id}{path}")
        r = c.getresponse()
        body = r.read()
        c.close()
        assert r.status == 200, body
        assert json.loads(body) == {"path": path, "server": "python"}


# An internal extension started by the runtime's exec wrapper: a process of
# the runtime's own (its name is no file of /opt/extensions), registered
# before the wrapper starts the interpreter.
WRAPPED_EXTENSION = b'''
import json, os, sys, urllib.request
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
def call(method, path, body=None, headers=None):
    r = urllib.request.Request("http://" + api + path, data=body, method=method, headers=headers or {})
    return urllib.request.urlopen(r)
r = call("POST", "/2020-01-01/extension/register", json.dumps({"events": ["INVOKE"]}).encode(),
         {"Lambda-Extension-Name": "wrapped"})
ext_id = r.headers["Lambda-Extension-Identifier"]
open("/tmp/wrapped-registered", "w").close()
while True:
    ev = json.loads(call("GET", "/2020-01-01/extension/event/next",
                         headers={"Lambda-Extension-Identifier": ext_id}).read())
    print("[wrapped] INVOKE %s" % ev["requestId"], flush=True)
'''
WRAPPER = b'''#!/bin/sh
python3 /var/task/wrapped.py &
while [ ! -e /tmp/wrapped-registered ]; do sleep 0.01; done
exec "$@"
'''


def test_an_internal_extension_from_the_exec_wrapper(lam, engine):
    code = make_zip({"app.py": APP, "wrapped.py": WRAPPED_EXTENSION, "wrapper.sh": (WRAPPER, 0o755)})
    lam.create_function(FunctionName="ext-wrapped", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": code}, MemorySize=256,
                        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}})
    for _ in range(2):
        r, body, _ = invoke(lam, "ext-wrapped")
        assert body == {"ok": True}
        request_id = r["ResponseMetadata"]["RequestId"]
        assert_before_end(engine, "ext-wrapped", request_id, f"[wrapped] INVOKE {request_id}")
