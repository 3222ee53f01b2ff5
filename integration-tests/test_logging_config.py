"""LoggingConfig end to end: `LogFormat: JSON` reaches the runtime client
(AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL from ApplicationLogLevel) and
turns START/REPORT, the timeout and runtime-exit lines into the platform.*
records (platform.initStart first on a cold start), filtered by
SystemLogLevel, in the LogResult tail and in `lamb logs`; bad levels are
refused. Every language's client logs JSON at the application level."""

import base64
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, ROOT, deploy, error_code, function_daemon, make_zip

APP = b'''
import logging, os
log = logging.getLogger()

def handler(event, context):
    log.debug("a debug line")
    log.info("an info line")
    log.error("an error line")
    return {"format": os.environ.get("AWS_LAMBDA_LOG_FORMAT"), "level": os.environ.get("AWS_LAMBDA_LOG_LEVEL")}
'''


@pytest.fixture(scope="module")
def logging_daemon():
    with function_daemon("lamb-logcfg-") as d:
        yield d


def invoke(lam, name, payload=b"{}", error=None):
    r = lam.invoke(FunctionName=name, Payload=payload, LogType="Tail")
    assert r.get("FunctionError") == error
    return json.loads(r["Payload"].read()), base64.b64decode(r["LogResult"]).decode()


def records(text):
    """The JSON lines of a log, parsed; other lines are left out."""
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_json_format_gives_platform_records_and_json_application_logs(logging_daemon):
    lam = logging_daemon.lambda_client()
    deploy(lam, "json-logs", {"app.py": APP}, LoggingConfig={"LogFormat": "JSON"})
    config = lam.get_function_configuration(FunctionName="json-logs")["LoggingConfig"]
    assert config == {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "SystemLogLevel": "INFO",
                      "LogGroup": "/aws/lambda/json-logs"}
    payload, tail = invoke(lam, "json-logs")
    assert payload == {"format": "JSON", "level": "INFO"}
    recs = records(tail)
    types = [r.get("type") for r in recs if "type" in r]
    assert types == ["platform.initStart", "platform.start", "platform.report"], tail
    init = recs[0]["record"]
    assert init["initializationType"] == "on-demand" and init["phase"] == "init", init
    assert (init["runtimeVersion"], init["functionName"], init["functionVersion"]) == ("python:3.11", "json-logs", "$LATEST")
    assert init["runtimeVersionArn"].startswith("arn:aws:lambda:"), init
    _, warm = invoke(lam, "json-logs")
    assert [r["type"] for r in records(warm) if "type" in r] == ["platform.start", "platform.report"], warm
    assert "START RequestId" not in tail and "REPORT RequestId" not in tail and "END RequestId" not in tail
    report = recs[-1]["record"]
    assert report["status"] == "success" and report["metrics"]["memorySizeMB"] == 256, report
    assert "initDurationMs" in report["metrics"]
    app = [r for r in recs if "level" in r]
    assert [(r["level"], r["message"]) for r in app] == [("INFO", "an info line"), ("ERROR", "an error line")], tail
    out = logging_daemon.lamb("logs", "json-logs").stdout
    assert '"type":"platform.start"' in out and '"type":"platform.report"' in out, out


def test_levels_filter_application_and_system_logs(logging_daemon):
    lam = logging_daemon.lambda_client()
    deploy(lam, "quiet-logs", {"app.py": APP},
           LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "ERROR", "SystemLogLevel": "WARN"})
    payload, tail = invoke(lam, "quiet-logs")
    assert payload == {"format": "JSON", "level": "ERROR"}
    recs = records(tail)
    assert [r.get("type") for r in recs if "type" in r] == [], tail
    assert [r["message"] for r in recs if "level" in r] == ["an error line"], tail
    lam.update_function_configuration(FunctionName="quiet-logs",
                                      LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "DEBUG"})
    lam.get_waiter("function_updated_v2").wait(FunctionName="quiet-logs")
    _, tail = invoke(lam, "quiet-logs")
    types = [r.get("type") for r in records(tail) if "type" in r]
    assert types == ["platform.initStart", "platform.start", "platform.runtimeDone", "platform.report"], tail


def test_text_format_keeps_the_plain_lines(logging_daemon):
    lam = logging_daemon.lambda_client()
    deploy(lam, "text-logs", {"app.py": APP})
    payload, tail = invoke(lam, "text-logs")
    assert payload == {"format": "Text", "level": None}
    assert "START RequestId" in tail and "END RequestId" in tail and "REPORT RequestId" in tail
    assert "an error line" in tail and "a debug line" not in tail


# A level outside the API model's enum is the model's ValidationException,
# as AWS answers every model constraint; a level with Text is Lambda's own
# InvalidParameterValueException.
@pytest.mark.parametrize("config, code", [
    ({"LogFormat": "JSON", "ApplicationLogLevel": "LOUD"}, "ValidationException"),
    ({"LogFormat": "JSON", "SystemLogLevel": "ERROR"}, "ValidationException"),
    ({"LogFormat": "Text", "ApplicationLogLevel": "DEBUG"}, "InvalidParameterValueException"),
])
def test_bad_levels_are_refused(logging_daemon, config, code):
    lam = logging_daemon.lambda_client()
    with pytest.raises(ClientError) as e:
        deploy(lam, "bad-logs", {"app.py": APP}, LoggingConfig=config)
    assert error_code(e) == code
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName="bad-logs")
    assert error_code(e) == "ResourceNotFoundException"


NODE_APP = b'''
export const handler = async () => {
  console.debug("a debug line");
  console.info("an info line");
  console.warn("a warn line");
  return { format: process.env.AWS_LAMBDA_LOG_FORMAT, level: process.env.AWS_LAMBDA_LOG_LEVEL };
};
'''


def test_the_node_client_logs_json_at_the_application_level(logging_daemon):
    lam = logging_daemon.lambda_client()
    deploy(lam, "node-json-logs", {"index.mjs": NODE_APP}, runtime="nodejs20.x", handler="index.handler",
           LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "WARN"})
    payload, tail = invoke(lam, "node-json-logs")
    assert payload == {"format": "JSON", "level": "WARN"}
    recs = records(tail)
    assert [(r["level"], r["message"]) for r in recs if "level" in r] == [("WARN", "a warn line")], tail
    assert [r["type"] for r in recs if "type" in r] == ["platform.initStart", "platform.start", "platform.report"], tail


ENDINGS = b'''
import os, time

def handler(event, context):
    if event.get("mode") == "sleep":
        time.sleep(30)
    os._exit(3)
'''


def test_timeouts_and_exits_are_statuses_of_the_json_records(logging_daemon):
    lam = logging_daemon.lambda_client()
    deploy(lam, "json-endings", {"app.py": ENDINGS}, Timeout=1,
           LoggingConfig={"LogFormat": "JSON", "SystemLogLevel": "DEBUG"})
    for payload, status in [(b'{"mode": "sleep"}', "timeout"), (b"{}", "failure")]:
        _, tail = invoke(lam, "json-endings", payload, error="Unhandled")
        assert "Task timed out" not in tail and "Runtime exited" not in tail, tail
        recs = {r["type"]: r["record"] for r in records(tail) if "type" in r}
        assert recs["platform.runtimeDone"]["status"] == status, tail
        assert recs["platform.report"]["status"] == status, tail
    assert recs["platform.report"]["errorType"] == "Runtime.ExitError", tail
    deploy(lam, "text-endings", {"app.py": ENDINGS}, Timeout=1)
    _, tail = invoke(lam, "text-endings", b'{"mode": "sleep"}', error="Unhandled")
    assert "Task timed out after 1.00 seconds" in tail, tail
    _, tail = invoke(lam, "text-endings", b"{}", error="Unhandled")
    assert "Runtime exited with error: exit status 3" in tail, tail


JAVA_APP = '''
package app;
import com.amazonaws.services.lambda.runtime.*;
import com.amazonaws.services.lambda.runtime.logging.LogLevel;
public class Logs {
    public String handle(Object in, Context c) {
        c.getLogger().log("a debug line", LogLevel.DEBUG);
        c.getLogger().log("an info line", LogLevel.INFO);
        c.getLogger().log("a warn line", LogLevel.WARN);
        return "ok";
    }
}
'''

RUBY_APP = b'''
require 'logger'
LOG = Logger.new($stdout)
def handler(event:, context:)
  LOG.debug('a debug line')
  LOG.info('an info line')
  LOG.warn('a warn line')
  'ok'
end
'''


def java_code():
    """The Java handler's classes, compiled with the host's javac against
    the interfaces lamb's Java runtime provides."""
    if shutil.which("javac") is None:
        pytest.skip("no javac on the host")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        (src / "app").mkdir(parents=True)
        (src / "app" / "Logs.java").write_text(JAVA_APP)
        client = ROOT / "rootfs" / "runtime-clients" / "java" / "src"
        subprocess.run(["javac", "-nowarn", "--release", "17", "-implicit:none", "-sourcepath",
                        f"{src}:{client}", "-d", str(out), str(src / "app" / "Logs.java")], check=True)
        return make_zip({"app/Logs.class": (out / "app" / "Logs.class").read_bytes()})


@pytest.mark.parametrize("runtime, handler, request_id_key", [
    ("java21", "app.Logs::handle", "AWSRequestId"),
    ("ruby3.3", "app.handler", "requestId"),
])
def test_java_and_ruby_clients_log_json_at_the_application_level(logging_daemon, runtime, handler, request_id_key):
    if not (BUILD / runtime / "var" / "runtime" / "bootstrap").exists():
        pytest.skip(f"the {runtime} tree is not built (make rootfs)")
    lam = logging_daemon.lambda_client()
    code = java_code() if runtime == "java21" else make_zip({"app.rb": RUBY_APP})
    name = f"{runtime.replace('.', '-')}-json-logs"
    deploy(lam, name, code, runtime=runtime, handler=handler, Timeout=30,
           LoggingConfig={"LogFormat": "JSON", "ApplicationLogLevel": "INFO"})
    r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert r.get("FunctionError") is None
    assert json.loads(r["Payload"].read()) == "ok"
    tail = base64.b64decode(r["LogResult"]).decode()
    app = [rec for rec in records(tail) if "level" in rec]
    assert [(rec["level"], rec["message"]) for rec in app] == [("INFO", "an info line"), ("WARN", "a warn line")], tail
    assert all(rec[request_id_key] == r["ResponseMetadata"]["RequestId"] for rec in app), tail
