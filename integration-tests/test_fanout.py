"""Fan-out (issue 11): a function invokes another, RequestResponse and Event,
with only what the runtime gives it: the SDK in the runtime (boto3; the
JavaScript SDK v3's @aws-sdk/client-lambda), the session credentials and
`AWS_ENDPOINT_URL_LAMBDA` in its environment, and the sandbox network that
reaches the API at host.lamb.internal (real daemon, real sandboxes; no
endpoint, key or region in the function's code)."""

import json
import uuid

import pytest

from conftest import deploy, function_daemon, wait_for

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"

# Doubles n; prints the marker of an Event invocation so that the host sees
# it ran.
CALLEE = b'''
def handler(event, context):
    if event.get("marker"):
        print("FANOUT " + event["marker"])
    return {"n": event["n"] * 2, "by": context.function_name}
'''

PY_CALLER = b'''
import json
import boto3

def handler(event, context):
    client = boto3.client("lambda")
    r = client.invoke(FunctionName=event["callee"], Payload=json.dumps({"n": event["n"]}))
    e = client.invoke(FunctionName=event["callee"], InvocationType="Event",
                      Payload=json.dumps({"n": event["n"], "marker": event["marker"]}))
    return {"sync": json.loads(r["Payload"].read()), "sync_status": r["StatusCode"],
            "sync_error": r.get("FunctionError"), "event_status": e["StatusCode"]}
'''

NODE_CALLER = b'''
const { LambdaClient, InvokeCommand } = require("@aws-sdk/client-lambda");

exports.handler = async (event) => {
  const client = new LambdaClient({});
  const json = (v) => Buffer.from(JSON.stringify(v));
  const r = await client.send(new InvokeCommand({ FunctionName: event.callee, Payload: json({ n: event.n }) }));
  const e = await client.send(new InvokeCommand({
    FunctionName: event.callee, InvocationType: "Event",
    Payload: json({ n: event.n, marker: event.marker }),
  }));
  return { sync: JSON.parse(Buffer.from(r.Payload).toString()), sync_status: r.StatusCode,
           sync_error: r.FunctionError || null, event_status: e.StatusCode };
};
'''


@pytest.fixture(scope="module")
def d():
    with function_daemon("lamb-fanout-") as daemon:
        yield daemon


@pytest.fixture(scope="module")
def lam(d):
    lam = d.lambda_client()
    deploy(lam, "fanout-callee", {"app.py": CALLEE})
    return lam


def logged(d, name, word):
    """Whether `word` is in function `name`'s log streams."""
    logs = d.data_dir / "logs" / name
    return any(word in f.read_text(errors="replace") for f in logs.rglob("*") if f.is_file())


def fan_out(d, lam, caller):
    marker = uuid.uuid4().hex
    r = lam.invoke(FunctionName=caller,
                   Payload=json.dumps({"callee": "fanout-callee", "n": 21, "marker": marker}))
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    assert body == {"sync": {"n": 42, "by": "fanout-callee"}, "sync_status": 200, "sync_error": None,
                    "event_status": 202}, body
    # The Event invocation ran too.
    wait_for(lambda: logged(d, "fanout-callee", "FANOUT " + marker), what="the Event invocation's log line")
    # Both calls were made with the caller's credentials, and logged so.
    calls = [line for line in d.log.read_text(errors="replace").splitlines()
             if "call with a function's credentials" in line and f"function={ARN}{caller} " in line + " "]
    assert len(calls) >= 2, calls


def test_python_fans_out_with_boto3(d, lam):
    deploy(lam, "fanout-py", {"app.py": PY_CALLER}, Timeout=60)
    fan_out(d, lam, "fanout-py")


def test_node_fans_out_with_the_javascript_sdk(d, lam):
    deploy(lam, "fanout-node", {"index.js": NODE_CALLER}, runtime="nodejs18.x", handler="index.handler",
           Timeout=60)
    fan_out(d, lam, "fanout-node")
