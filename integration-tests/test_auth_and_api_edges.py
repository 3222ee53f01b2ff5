"""Authentication, body limits, unimplemented operations and the invoke
route, with raw HTTP requests signed (or not) by botocore."""

import datetime
import json
import socket
import urllib.error
import urllib.request
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, SECRET_KEY, create, error_code


def send(daemon, method, path, body=b"", headers=None, key=ACCESS_KEY, secret=SECRET_KEY, sign=True,
         tamper_body=None):
    url = daemon.endpoint + path
    req = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    if sign:
        SigV4Auth(Credentials(key, secret), "lambda", "us-east-1").add_auth(req)
    prepared = req.prepare()
    data = tamper_body if tamper_body is not None else prepared.body
    r = urllib.request.Request(url, data=data or None, method=method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(r, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def lower(h):
    return {k.lower(): v for k, v in h.items()}


def test_signed_request_passes(daemon):
    status, headers, _ = send(daemon, "GET", "/2015-03-31/functions")
    assert status == 200
    assert "x-amzn-requestid" in lower(headers)


@pytest.mark.parametrize("case,expected", [
    ("unsigned", "MissingAuthenticationTokenException"),
    ("wrong key", "UnrecognizedClientException"),
    ("wrong secret", "InvalidSignatureException"),
    ("tampered body", "InvalidSignatureException"),
])
def test_refused_requests(daemon, case, expected):
    body = json.dumps({"FunctionName": "x"}).encode()
    kw = {}
    if case == "unsigned":
        kw["sign"] = False
    elif case == "wrong key":
        kw["key"] = "SOMEONEELSE"
    elif case == "wrong secret":
        kw["secret"] = "not-the-secret"
    elif case == "tampered body":
        kw["tamper_body"] = json.dumps({"FunctionName": "y"}).encode()
    status, headers, raw = send(daemon, "POST", "/2015-03-31/functions", body,
                                {"Content-Type": "application/json"}, **kw)
    assert status == 403
    assert lower(headers)["x-amzn-errortype"] == expected
    doc = json.loads(raw)
    assert doc["Type"] == "User" and doc["message"]


def test_stale_date_is_refused(daemon):
    url = daemon.endpoint + "/2015-03-31/functions"
    req = AWSRequest(method="GET", url=url)
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    with mock.patch("botocore.auth.get_current_datetime", return_value=old):
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(req)
    assert req.headers["X-Amz-Date"] == old.strftime("%Y%m%dT%H%M%SZ")
    r = urllib.request.Request(url, method="GET", headers=dict(req.prepare().headers))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(r, timeout=10)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_oversized_body_refused_before_read(daemon):
    # Declares 100 MB and sends none of it: the answer must still come.
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=10) as s:
        s.sendall(b"POST /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\n\r\n")
        head = s.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head
    # The code AWS answers in test_lambda_api::TestLambdaSizeLimits::test_oversized_request_create_lambda.
    assert "RequestEntityTooLargeException" in head


def test_unimplemented_operations_are_named(daemon, lam):
    with pytest.raises(ClientError) as e:
        lam.invoke_async(FunctionName="f", InvokeArgs=b"{}")
    assert "InvokeAsync" in e.value.response["Error"]["Message"]
    # Event source mappings read SQS, Kinesis, DynamoDB Streams and RabbitMQ:
    # a Kafka cluster is refused by name.
    kafka = "arn:aws:kafka:us-east-1:000000000000:cluster/c/0123"
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName="f", EventSourceArn=kafka, Topics=["t"])
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert kafka in e.value.response["Error"]["Message"]
    status, headers, raw = send(daemon, "GET", "/no/such/path")
    assert status == 400
    assert lower(headers)["x-amzn-errortype"] == "UnknownOperationException"
    assert "/no/such/path" in json.loads(raw)["message"]
    status, headers, _ = send(daemon, "PATCH", "/2015-03-31/functions")
    assert status == 400 and lower(headers)["x-amzn-errortype"] == "UnknownOperationException"


def test_invoke_route(lam):
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="fn-not-there", Payload=b"{}")
    assert error_code(e) == "ResourceNotFoundException"
    create(lam, "fn-invoke")
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="fn-invoke", Qualifier="nosuchalias", Payload=b"{}")
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="fn-invoke", Payload=b"[" + b"1," * (3 * 1024 * 1024) + b"1]")
    assert error_code(e) == "RequestTooLargeException"
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="fn-invoke", Payload=b"{not json")
    assert error_code(e) == "InvalidRequestContentException"
    dry = lam.invoke(FunctionName="fn-invoke", InvocationType="DryRun")
    assert dry["StatusCode"] == 204
