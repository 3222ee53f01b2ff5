"""Every managed runtime end to end: a real daemon over the runtime trees in
rootfs/build (`make rootfs`), driven by boto3.

For each of python3.11/3.13/3.14, nodejs18.x/20.x/22.x/24.x, java21 and ruby3.3:
a function that uses a layer, an environment variable and its context
answers, raises (Lambda's error shape per language) and times out; its
interpreter's major.minor matches the runtime's name. awslambdaric through
AWS_LAMBDA_EXEC_WRAPPER on every Python. Without --allow-deprecated-runtimes
the runtimes past AWS's block dates are refused with AWS's error; MemorySize
in 1 MB steps."""

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import BUILD, ROLE, ROOT, Daemon, function_daemon, make_zip
JAVA_CLIENT_SRC = ROOT / "rootfs" / "runtime-clients" / "java" / "src"
AWSLAMBDARIC = "awslambdaric==4.2.2"
DEPRECATED_MSG = ("The runtime parameter of {} is no longer supported for creating or updating AWS Lambda "
                  "functions. We recommend you use a supported runtime while creating or updating functions.")

PY_APP = b'''
import os, sys, time
import greeting_layer
def handler(event, context):
    if event.get("mode") == "fail":
        raise ValueError("boom")
    if event.get("mode") == "sleep":
        time.sleep(30)
    return {"greeting": os.environ["GREETING"], "layer": greeting_layer.WORD,
            "function_name": context.function_name, "memory": int(context.memory_limit_in_mb),
            "request_id": context.aws_request_id, "remaining_ok": context.get_remaining_time_in_millis() > 0,
            "version": "%d.%d" % sys.version_info[:2]}
'''
PY_LAYER = {"python/greeting_layer.py": b'WORD = "from-layer"\n'}

NODE_APP = b'''
const layer = require('greeting-layer');
exports.handler = async (event, context) => {
  if (event.mode === 'fail') throw new TypeError('boom');
  if (event.mode === 'sleep') await new Promise((r) => setTimeout(r, 30000));
  return { greeting: process.env.GREETING, layer: layer.WORD, function_name: context.functionName,
           memory: Number(context.memoryLimitInMB), request_id: context.awsRequestId,
           remaining_ok: context.getRemainingTimeInMillis() > 0, version: process.versions.node.split('.')[0] };
};
'''
NODE_LAYER = {"nodejs/node_modules/greeting-layer/index.js": b"exports.WORD = 'from-layer';\n"}

RUBY_APP = b'''
require 'greeting_layer'
def handler(event:, context:)
  raise ArgumentError, 'boom' if event['mode'] == 'fail'
  sleep 30 if event['mode'] == 'sleep'
  { 'greeting' => ENV['GREETING'], 'layer' => GreetingLayer::WORD, 'function_name' => context.function_name,
    'memory' => context.memory_limit_in_mb.to_i, 'request_id' => context.aws_request_id,
    'remaining_ok' => context.get_remaining_time_in_millis > 0, 'version' => RUBY_VERSION.split('.').first(2).join('.') }
end
'''
RUBY_LAYER = {"ruby/lib/greeting_layer.rb": b"module GreetingLayer\n  WORD = 'from-layer'\nend\n"}

JAVA_APP = '''
package app;
import com.amazonaws.services.lambda.runtime.Context;
import java.util.*;
public class App {
    public Map<String, Object> handle(Map<String, Object> event, Context c) throws Exception {
        if ("fail".equals(event.get("mode"))) throw new IllegalStateException("boom");
        if ("sleep".equals(event.get("mode"))) Thread.sleep(30000);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("greeting", System.getenv("GREETING"));
        out.put("layer", greeting.Word.WORD);
        out.put("function_name", c.getFunctionName());
        out.put("memory", c.getMemoryLimitInMB());
        out.put("request_id", c.getAwsRequestId());
        out.put("remaining_ok", c.getRemainingTimeInMillis() > 0);
        out.put("version", System.getProperty("java.specification.version"));
        return out;
    }
}
'''
JAVA_LAYER = 'package greeting;\npublic class Word { public static final String WORD = "from-layer"; }\n'


def java_bundles():
    """The Java function's classes and its layer's jar, compiled with the
    host's javac against the interfaces lamb's Java runtime provides."""
    if shutil.which("javac") is None:
        pytest.skip("no javac on the host")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        (src / "app").mkdir(parents=True)
        (src / "greeting").mkdir()
        (src / "app" / "App.java").write_text(JAVA_APP)
        (src / "greeting" / "Word.java").write_text(JAVA_LAYER)
        subprocess.run(["javac", "-nowarn", "--release", "17", "-implicit:none", "-sourcepath",
                        f"{src}:{JAVA_CLIENT_SRC}", "-d", str(out), str(src / "app" / "App.java"),
                        str(src / "greeting" / "Word.java")], check=True)
        jar = io.BytesIO()
        with zipfile.ZipFile(jar, "w") as z:
            z.write(out / "greeting" / "Word.class", "greeting/Word.class")
        code = make_zip({"app/App.class": (out / "app" / "App.class").read_bytes()})
        return code, make_zip({"java/lib/greeting.jar": jar.getvalue()})


# runtime -> (handler, how the interpreter reports its version, error type)
CASES = {
    "python3.11": ("app.handler", "3.11", "ValueError"),
    "python3.13": ("app.handler", "3.13", "ValueError"),
    "python3.14": ("app.handler", "3.14", "ValueError"),
    "nodejs18.x": ("index.handler", "18", "TypeError"),
    "nodejs20.x": ("index.handler", "20", "TypeError"),
    "nodejs22.x": ("index.handler", "22", "TypeError"),
    "nodejs24.x": ("index.handler", "24", "TypeError"),
    "ruby3.3": ("app.handler", "3.3", "Function<ArgumentError>"),
    "java21": ("app.App::handle", "21", "java.lang.IllegalStateException"),
}


def bundles(runtime):
    if runtime.startswith("python"):
        return make_zip({"app.py": PY_APP}), make_zip(PY_LAYER)
    if runtime.startswith("nodejs"):
        return make_zip({"index.js": NODE_APP}), make_zip(NODE_LAYER)
    if runtime.startswith("ruby"):
        return make_zip({"app.rb": RUBY_APP}), make_zip(RUBY_LAYER)
    return java_bundles()


def need_tree(runtime):
    if not (BUILD / runtime / "var" / "runtime" / "bootstrap").exists():
        pytest.skip(f"the {runtime} tree is not built (make rootfs)")


@pytest.fixture(scope="module")
def engine():
    with function_daemon("lamb-runtimes-") as d:
        yield d


@pytest.fixture(scope="module")
def lam(engine):
    return engine.lambda_client()


def call(lam, name, payload):
    """The answer and its parsed payload; the payload carries the log's tail
    under `_log` when the function failed, so an assertion shows why."""
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode(), LogType="Tail")
    body = json.loads(r["Payload"].read())
    if "FunctionError" in r and isinstance(body, dict):
        body["_log"] = base64.b64decode(r.get("LogResult", "")).decode(errors="replace")
    return r, body


@pytest.mark.parametrize("runtime", list(CASES))
def test_runtime_end_to_end(lam, runtime):
    need_tree(runtime)
    handler, version, error_type = CASES[runtime]
    code, layer = bundles(runtime)
    arn = lam.publish_layer_version(LayerName=f"greeting-{runtime.replace('.', '-')}", Content={"ZipFile": layer},
                                    CompatibleRuntimes=[runtime])["LayerVersionArn"]
    name = f"rt-{runtime.replace('.', '-')}"
    # 1024 MB: the JVM's init within the 10 s init limit on a busy 2-core box.
    lam.create_function(FunctionName=name, Role=ROLE, Runtime=runtime, Handler=handler, Code={"ZipFile": code},
                        Layers=[arn], MemorySize=1024, Timeout=3,
                        Environment={"Variables": {"GREETING": "hello"}})
    r, body = call(lam, name, {})
    assert "FunctionError" not in r, body
    assert body["greeting"] == "hello"
    assert body["layer"] == "from-layer"
    assert (body["function_name"], body["memory"]) == (name, 1024)
    assert body["request_id"] == r["ResponseMetadata"]["RequestId"]
    assert body["remaining_ok"] is True
    assert body["version"] == version
    r, body = call(lam, name, {"mode": "fail"})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == error_type and body["errorMessage"] == "boom", body
    r, body = call(lam, name, {"mode": "sleep"})
    assert r["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout", body
    assert body["errorMessage"].endswith("Task timed out after 3.00 seconds")
    # A fresh environment after the timeout answers again.
    r, body = call(lam, name, {})
    assert "FunctionError" not in r and body["layer"] == "from-layer", body
    layers = lam.list_layers(CompatibleRuntime=runtime)["Layers"]
    assert [l["LayerName"] for l in layers] == [f"greeting-{runtime.replace('.', '-')}"]


@pytest.mark.parametrize("runtime", ["python3.11", "python3.13", "python3.14"])
def test_awslambdaric_through_exec_wrapper(lam, runtime, tmp_path):
    """AWS's own Python client, installed from PyPI for that Python, started
    by the function's AWS_LAMBDA_EXEC_WRAPPER instead of lamb's."""
    need_tree(runtime)
    layer = tmp_path / "layer"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(layer / "python"), "--only-binary=:all:", "--python-version", runtime[len("python"):],
           "--platform", "manylinux2014_x86_64", AWSLAMBDARIC]
    p = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"cannot fetch {AWSLAMBDARIC} for {runtime}: {p.stderr[-300:]}")
    files = {str(f.relative_to(layer)): f.read_bytes() for f in layer.rglob("*") if f.is_file()}
    arn = lam.publish_layer_version(LayerName=f"ric-{runtime.replace('.', '-')}",
                                    Content={"ZipFile": make_zip(files)})["LayerVersionArn"]
    wrapper = b'#!/bin/sh\necho "wrapper got: $*"\nexec python3 -m awslambdaric "$_HANDLER"\n'
    app = b'import sys\ndef handler(event, context):\n    return {"v": "%d.%d" % sys.version_info[:2], "id": context.aws_request_id}\n'
    name = f"ric-{runtime.replace('.', '-')}"
    lam.create_function(FunctionName=name, Role=ROLE, Runtime=runtime, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": app, "wrapper.sh": (wrapper, 0o755)})},
                        Layers=[arn], MemorySize=1024, Timeout=10,
                        Environment={"Variables": {"AWS_LAMBDA_EXEC_WRAPPER": "/var/task/wrapper.sh"}})
    r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    body = json.loads(r["Payload"].read())
    tail = base64.b64decode(r["LogResult"]).decode()
    assert "FunctionError" not in r, (body, tail)
    assert body == {"v": runtime[len("python"):], "id": r["ResponseMetadata"]["RequestId"]}
    assert "wrapper got: python3 /var/runtime/bootstrap.py" in tail


@pytest.fixture(scope="module")
def strict():
    """A daemon without --allow-deprecated-runtimes, over empty runtime dirs
    (validation only), and a client that leaves validation to it."""
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-strict-") as tmp:
        d = Daemon(Path(tmp))
        d.allow_deprecated_runtimes = False
        d.start()
        try:
            import boto3
            from conftest import ACCESS_KEY, SECRET_KEY
            yield boto3.client("lambda", endpoint_url=d.endpoint, region_name="us-east-1",
                               aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                               config=Config(retries={"max_attempts": 1}, parameter_validation=False))
        finally:
            assert d.stop() == 0


def create(lam, name, runtime, **kw):
    return lam.create_function(FunctionName=name, Role=ROLE, Runtime=runtime, Handler="app.handler",
                               Code={"ZipFile": make_zip({"app.py": b""})}, **kw)


@pytest.mark.parametrize("runtime", ["provided", "python3.7", "nodejs12.x", "go1.x"])
def test_deprecated_runtime_refused_without_the_flag(strict, runtime):
    """Past AWS's block-create date (all long past, whatever the clock says):
    refused with AWS's exact error, before anything else, nothing created."""
    with pytest.raises(ClientError) as e:
        create(strict, "old", runtime)
    err = e.value.response["Error"]
    assert err["Code"] == "InvalidParameterValueException"
    assert err["Message"] == DEPRECATED_MSG.format(runtime)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        strict.get_function(FunctionName="old")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_deprecated_runtimes_before_their_block_date_still_create(strict):
    """nodejs18.x (deprecated 2025-09-01) and nodejs20.x (2026-04-30) are
    created until AWS's block-create date, 2027-02-01."""
    import datetime
    if datetime.date.today() >= datetime.date(2027, 2, 1):
        pytest.skip("past the block-create date of nodejs18.x and nodejs20.x")
    for rt in ["nodejs18.x", "nodejs20.x"]:
        create(strict, f"dep-{rt.replace('.', '-')}", rt)


def test_runtime_enum_and_uninstalled_runtimes(strict):
    with pytest.raises(ClientError) as e:
        create(strict, "f", "PYTHON3.9")
    msg = e.value.response["Error"]["Message"]
    assert msg.startswith("Value PYTHON3.9 at 'runtime' failed to satisfy constraint: Member must satisfy enum "
                          "value set: [nodejs20.x, python3.14, provided.al2023, python3.12,")
    assert msg.endswith("] or be a valid ARN")
    # Lambda's, but no Debian suite ships Python 3.12: not installed here.
    with pytest.raises(ClientError) as e:
        create(strict, "f", "python3.12")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert "python3.12 is not available on this lamb box" in e.value.response["Error"]["Message"]
    for rt in ["python3.13", "python3.14", "nodejs22.x", "nodejs24.x", "java21", "ruby3.3", "provided.al2023"]:
        create(strict, f"ok-{rt.replace('.', '-')}", rt)
    # A layer may name any of Lambda's runtimes, installed here or not.
    content = {"ZipFile": make_zip({"python/x.py": b""})}
    v = strict.publish_layer_version(LayerName="l", Content=content, CompatibleRuntimes=["python3.12", "dotnet8"])
    assert v["CompatibleRuntimes"] == ["python3.12", "dotnet8"]
    assert [x["LayerName"] for x in strict.list_layers(CompatibleRuntime="python3.12")["Layers"]] == ["l"]
    with pytest.raises(ClientError) as e:
        strict.publish_layer_version(LayerName="l", Content=content, CompatibleRuntimes=["invalidruntime"])
    assert e.value.response["Error"]["Message"].startswith(
        "1 validation error detected: Value '[invalidruntime]' at 'compatibleRuntimes' failed to satisfy "
        "constraint: Member must satisfy enum value set: [nodejs20.x,")


def test_memory_in_one_mb_steps(strict):
    for mb in (127, 3009):
        with pytest.raises(ClientError) as e:
            create(strict, f"m{mb}", "python3.13", MemorySize=mb)
        err = e.value.response["Error"]
        # Below 128 the API model refuses (ValidationException, as AWS answers
        # its constraints); past 3008 this box's own limit does.
        assert err["Code"] == ("ValidationException" if mb == 127 else "InvalidParameterValueException")
        bound = "greater than or equal to 128" if mb == 127 else "less than or equal to 3008"
        assert err["Message"] == (f"1 validation error detected: Value '{mb}' at 'memorySize' failed to "
                                  f"satisfy constraint: Member must have value {bound}")
    assert create(strict, "m200", "python3.13", MemorySize=200)["MemorySize"] == 200
    cfg = strict.update_function_configuration(FunctionName="m200", MemorySize=1769)
    assert cfg["MemorySize"] == 1769
