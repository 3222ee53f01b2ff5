"""LoggingConfig end to end: `LogFormat: JSON` reaches the runtime client
(AWS_LAMBDA_LOG_FORMAT, AWS_LAMBDA_LOG_LEVEL from ApplicationLogLevel) and
turns START/REPORT into the platform.* records, filtered by SystemLogLevel,
in the LogResult tail and in `lamb logs`; bad levels are refused."""

import base64
import json

import pytest
from botocore.exceptions import ClientError

from conftest import deploy, error_code, function_daemon

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


def invoke(lam, name):
    r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert r.get("FunctionError") is None
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
    assert types == ["platform.start", "platform.report"], tail
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
    assert types == ["platform.start", "platform.runtimeDone", "platform.report"], tail


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
    assert [r["type"] for r in recs if "type" in r] == ["platform.start", "platform.report"], tail
