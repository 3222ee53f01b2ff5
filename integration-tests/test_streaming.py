"""Response streaming end to end: a Node.js function written with
`awslambda.streamifyResponse` in a real sandbox, read through boto3's
`invoke_with_response_stream` (AWS's event-stream encoding) and through a
`RESPONSE_STREAM` function URL with http.client, chunk by chunk.

That a chunk arrives before the function ends is shown by events, not
timing: the function writes its first chunk, then waits at a gate file (in a
directory served with `--filesystem`) that the test opens only once it has
read that chunk; a daemon that buffered the stream would deliver nothing
until the function's timeout, and then no second chunk."""

import base64
import http.client
import json
import os
import tempfile
import uuid
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, Daemon, deploy, public_url, url_id_of

pytestmark = pytest.mark.skipif(
    not (BUILD / "nodejs18.x" / "usr").is_dir(),
    reason="the runtime trees are not built (make rootfs)",
)

GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"

STREAMER = b'''
const fs = require('fs');

// Resolves once the test creates /mnt/gate/<name>.
function gate(name) {
  return new Promise((resolve) => {
    const look = () => (fs.existsSync('/mnt/gate/' + name) ? resolve() : setTimeout(look, 20));
    look();
  });
}

exports.handler = awslambda.streamifyResponse(async (event, stream) => {
  const url = event.rawPath !== undefined;
  const args = url ? Object.fromEntries(new URLSearchParams(event.rawQueryString)) : event;
  if (args.failfirst) {
    throw new Error('failed before a byte');
  }
  if (args.http) {
    stream = awslambda.HttpResponseStream.from(stream, {
      statusCode: 201,
      headers: { 'content-type': 'text/plain', 'x-kind': 'streamed' },
      cookies: ['a=1'],
    });
  } else {
    stream.setContentType('text/plain');
  }
  stream.write('first;');
  if (args.gate) {
    await gate(args.gate);
  }
  if (args.fail) {
    throw new Error('failed mid-stream');
  }
  stream.write('second;');
  stream.end();
});
'''

BUFFERED = b'''
def handler(event, context):
    return {"whole": True}
'''


@pytest.fixture(scope="module")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-stream-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.gate = Path(tmp) / "gate"
        d.gate.mkdir()
        d.extra_args = ["--filesystem", f"gate={d.gate}"]
        d.start()
        try:
            yield d
        finally:
            assert d.stop() == 0


@pytest.fixture(scope="module")
def lam(daemon):
    return daemon.lambda_client()


@pytest.fixture(scope="module")
def streamer(lam):
    deploy(lam, "streamer", {"index.js": STREAMER}, runtime="nodejs18.x", handler="index.handler",
           Timeout=60, FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])
    return "streamer"


def gate_name():
    return uuid.uuid4().hex


def test_chunks_arrive_while_the_function_runs(daemon, lam, streamer):
    g = gate_name()
    resp = lam.invoke_with_response_stream(FunctionName=streamer, Payload=json.dumps({"gate": g}))
    assert resp["StatusCode"] == 200
    assert resp["ExecutedVersion"] == "$LATEST"
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    events = iter(resp["EventStream"])
    assert next(events) == {"PayloadChunk": {"Payload": b"first;"}}
    # The function waits at the gate until now: that chunk came before its end.
    (daemon.gate / g).touch()
    assert list(events) == [{"PayloadChunk": {"Payload": b"second;"}}, {"InvokeComplete": {}}]


def test_an_error_mid_stream_is_the_invoke_completes_error(lam, streamer):
    resp = lam.invoke_with_response_stream(FunctionName=streamer, Payload=json.dumps({"fail": True}),
                                           LogType="Tail")
    events = list(resp["EventStream"])
    assert events[0] == {"PayloadChunk": {"Payload": b"first;"}}
    done = events[-1]["InvokeComplete"]
    # The function's error type, where Invoke's X-Amz-Function-Error says Unhandled.
    assert done["ErrorCode"] == "Error"
    details = json.loads(done["ErrorDetails"])
    assert details["errorType"] == "Error" and details["errorMessage"] == "failed mid-stream"
    assert "failed mid-stream" in base64.b64decode(done["LogResult"]).decode()


def test_a_buffered_function_streams_its_payload_as_one_chunk(lam):
    deploy(lam, "whole", {"app.py": BUFFERED})
    resp = lam.invoke_with_response_stream(FunctionName="whole", Payload=b"{}")
    assert list(resp["EventStream"]) == [{"PayloadChunk": {"Payload": b'{"whole": true}'}}, {"InvokeComplete": {}}]


def test_plain_invoke_of_a_streaming_function_gets_the_whole_stream(lam, streamer):
    out = lam.invoke(FunctionName=streamer, Payload=b"{}")
    assert "FunctionError" not in out
    assert out["Payload"].read() == b"first;second;"


def test_bad_requests_are_refused(lam, streamer):
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName="missing", Payload=b"{}")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.invoke_with_response_stream(FunctionName=streamer, Payload=b"{", InvocationType="RequestResponse")
    assert e.value.response["Error"]["Code"] == "InvalidRequestContentException"
    dry = lam.invoke_with_response_stream(FunctionName=streamer, Payload=b"{}", InvocationType="DryRun")
    assert dry["StatusCode"] == 204


@pytest.fixture(scope="module")
def url(lam, streamer):
    """The streamer's RESPONSE_STREAM URL without auth, as the path prefix
    of the URL listener (`/<url-id>`)."""
    cfg = public_url(lam, streamer, InvokeMode="RESPONSE_STREAM")
    assert lam.get_function_url_config(FunctionName=streamer)["InvokeMode"] == "RESPONSE_STREAM"
    return f"/{url_id_of(cfg['FunctionUrl'])}"


def test_url_streams_chunked_after_the_http_prelude(daemon, url):
    g = gate_name()
    conn = http.client.HTTPConnection("127.0.0.1", daemon.url_port, timeout=90)
    conn.request("GET", f"{url}/s?http=1&gate={g}")
    resp = conn.getresponse()
    assert resp.status == 201
    assert resp.getheader("x-kind") == "streamed"
    assert resp.getheader("content-type") == "text/plain"
    assert resp.getheader("set-cookie") == "a=1"
    assert resp.getheader("transfer-encoding") == "chunked"
    # read1: what has arrived, without waiting for the end of the body.
    assert resp.read1() == b"first;"
    (daemon.gate / g).touch()
    assert resp.read() == b"second;"


def test_url_stream_without_prelude_is_a_200_of_its_content_type(daemon, url):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.url_port, timeout=90)
    conn.request("GET", f"{url}/plain")
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("content-type")) == (200, "text/plain")
    assert resp.read() == b"first;second;"


def test_url_stream_failing_before_its_first_byte_is_a_bad_gateway(daemon, url):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.url_port, timeout=90)
    conn.request("GET", f"{url}/x?failfirst=1")
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())) == (502, {"Message": "Internal Server Error"})
