"""Function URLs end to end: the control-plane operations through boto3,
then real HTTP requests to the URL listener (by Host and by path) invoking
a Python function in a real sandbox: JSON, strings, status codes, cookies,
binary bodies, function errors, throttles, CORS and AWS_IAM (SigV4)."""

import http.client
import io
import json
import re
import socket
import subprocess
import urllib.request

import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from conftest import (ACCESS_KEY, BUILD, LAMB, SECRET_KEY, deploy, function_daemon, public_url, url_id_of,
                      wait_for)


pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the runtime trees are not built (make rootfs)",
)

FORGED = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 8\r\n\r\npoisoned"

APP = b'''
import base64, json

FORGED = %s

def handler(event, context):
    path = event["rawPath"]
    if path.endswith("/echo"):
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
    if path == "/string":
        return "hello"
    if path == "/object":
        return {"answer": 42}
    if path == "/status":
        return {"statusCode": 418, "headers": {"x-kind": "teapot"}, "body": "short and stout"}
    if path == "/cookies":
        return {"statusCode": 200, "cookies": ["a=1", "b=2; Max-Age=10"], "body": "ok"}
    if path == "/binary":
        raw = base64.b64decode(event["body"]) if event["isBase64Encoded"] else event.get("body", "").encode()
        return {"statusCode": 200, "headers": {"content-type": "application/octet-stream"},
                "body": base64.b64encode(raw[::-1]).decode(), "isBase64Encoded": True}
    if path == "/fail":
        raise RuntimeError("boom")
    if path == "/forged":
        # Framing of its own: a body longer than its Content-Length whose
        # tail is a whole response, and headers about the connection.
        return {"statusCode": 200, "body": "ok" + FORGED,
                "headers": {"Content-Length": "2", "Transfer-Encoding": "identity", "Upgrade": "h2c",
                            "Connection": "keep-alive, X-Named", "X-Named": "1", "Keep-Alive": "timeout=600",
                            "Trailer": "x-t", "TE": "trailers", "Proxy-Connection": "keep-alive", "X-Kept": "yes"}}
    if path == "/interim":
        return {"statusCode": int(event["queryStringParameters"]["s"]), "body": "x"}
    return {"statusCode": 404, "body": "no route " + path}
''' % repr(FORGED).encode()


@pytest.fixture(scope="module")
def daemon():
    with function_daemon("lamb-urls-", metrics=True) as d:
        yield d


@pytest.fixture(scope="module")
def lam(daemon):
    return daemon.lambda_client()


def request(daemon, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", daemon.url_port, timeout=60)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    out = (r.status, r.getheaders(), r.read())
    c.close()
    return out


def header(headers, name):
    return [v for k, v in headers if k.lower() == name]


@pytest.fixture(scope="module")
def url_id(daemon, lam):
    deploy(lam, "u-app", {"app.py": APP})
    cfg = public_url(lam, "u-app", Cors={"AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"],
                                         "AllowHeaders": ["x-custom"], "MaxAge": 300, "ExposeHeaders": ["x-kind"]})
    return url_id_of(cfg["FunctionUrl"])


def test_config_operations(lam, url_id):
    got = lam.get_function_url_config(FunctionName="u-app")
    assert got["AuthType"] == "NONE" and got["Cors"]["MaxAge"] == 300
    assert got["FunctionArn"].endswith(":function:u-app") and "LastModifiedTime" in got
    assert url_id in got["FunctionUrl"]
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName="u-app", AuthType="NONE")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    listed = lam.list_function_url_configs(FunctionName="u-app")["FunctionUrlConfigs"]
    assert [c["FunctionUrl"] for c in listed] == [got["FunctionUrl"]]
    upd = lam.update_function_url_config(FunctionName="u-app", Cors={"AllowOrigins": ["https://app.example"],
                                                                     "AllowMethods": ["GET", "POST"],
                                                                     "AllowHeaders": ["x-custom"], "MaxAge": 600,
                                                                     "ExposeHeaders": ["x-kind"]})
    assert upd["Cors"]["MaxAge"] == 600 and upd["AuthType"] == "NONE"
    with pytest.raises(ClientError) as e:
        lam.get_function_url_config(FunctionName="u-app", Qualifier="nosuch")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.create_function_url_config(FunctionName="u-app", AuthType="OPEN")
    assert e.value.response["Error"]["Code"] in ("InvalidParameterValueException", "ValidationException")


def test_json_event_by_path_and_host(daemon, url_id):
    status, headers, body = request(daemon, "POST", f"/{url_id}/a/echo?x=1&x=2&y=z",
                                    body=b'{"k": "v"}',
                                    headers={"content-type": "application/json", "cookie": "c1=v1; c2=v2",
                                             "x-multi": "one"})
    assert status == 200, body
    event = json.loads(body)
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["rawPath"] == "/a/echo" and event["rawQueryString"] == "x=1&x=2&y=z"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "z"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["headers"]["x-multi"] == "one" and "cookie" not in event["headers"]
    assert event["body"] == '{"k": "v"}' and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["apiId"] == url_id and ctx["domainPrefix"] == url_id
    assert ctx["http"]["method"] == "POST" and ctx["http"]["sourceIp"] == "127.0.0.1"
    assert ctx["stage"] == "$default" and isinstance(ctx["timeEpoch"], int)
    assert "authorizer" not in ctx and "pathParameters" not in event
    # The Host form: <url-id>.lambda-url.localhost
    status, _, body = request(daemon, "GET", "/echo",
                              headers={"host": f"{url_id}.lambda-url.localhost:{daemon.url_port}"})
    assert status == 200 and json.loads(body)["rawPath"] == "/echo"


def test_answers(daemon, url_id):
    status, headers, body = request(daemon, "GET", f"/{url_id}/string")
    assert (status, body) == (200, b'"hello"')
    assert header(headers, "content-type") == ["application/json"]
    status, _, body = request(daemon, "GET", f"/{url_id}/object")
    assert status == 200 and json.loads(body) == {"answer": 42}
    status, headers, body = request(daemon, "GET", f"/{url_id}/status")
    assert (status, body) == (418, b"short and stout") and header(headers, "x-kind") == ["teapot"]
    status, headers, body = request(daemon, "GET", f"/{url_id}/cookies")
    assert status == 200 and sorted(header(headers, "set-cookie")) == ["a=1", "b=2; Max-Age=10"]
    status, _, body = request(daemon, "GET", f"/{url_id}/fail")
    assert status == 502
    status, _, _ = request(daemon, "GET", "/0123456789abcdef0123456789abcdef/echo")
    assert status == 404


class _Reader(io.BufferedReader):
    """A socket's reader that the responses read off it one after another
    share: http.client closes its reader after each response."""

    def close(self):
        pass


class _Stream:
    def __init__(self, sock):
        self.reader = _Reader(socket.SocketIO(sock, "rb"))

    def makefile(self, *args, **kwargs):
        return self.reader


def test_function_framing_does_not_split_the_response(daemon, url_id):
    # Two requests pipelined on one connection: the first function answers
    # Content-Length: 2 with a body holding a whole forged response. Each
    # request must get exactly its own answer, and then the connection ends.
    s = socket.create_connection(("127.0.0.1", daemon.url_port), timeout=60)
    s.sendall(f"GET /{url_id}/forged HTTP/1.1\r\nHost: x\r\n\r\n"
              f"GET /{url_id}/string HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    stream = _Stream(s)
    first = http.client.HTTPResponse(stream)
    first.begin()
    assert (first.status, first.read()) == (200, ("ok" + FORGED).encode())
    assert first.getheader("x-kept") == "yes"
    for dropped in ("upgrade", "keep-alive", "x-named", "trailer", "te", "proxy-connection", "transfer-encoding"):
        assert first.getheader(dropped) is None, dropped
    second = http.client.HTTPResponse(stream)
    second.begin()
    assert (second.status, second.read()) == (200, b'"hello"')
    assert stream.reader.read() == b""
    s.close()


def test_interim_status_is_a_bad_gateway(daemon, url_id):
    for code in (100, 101, 103, 199, 600):
        status, _, body = request(daemon, "GET", f"/{url_id}/interim?s={code}")
        assert status == 502, (code, body)
    status, _, body = request(daemon, "GET", f"/{url_id}/interim?s=204")
    assert status == 204


def test_binary_round_trip(daemon, url_id):
    data = bytes(range(256)) * 4
    status, headers, body = request(daemon, "PUT", f"/{url_id}/binary", body=data,
                                    headers={"content-type": "application/octet-stream"})
    assert status == 200
    assert body == data[::-1]
    assert header(headers, "content-type") == ["application/octet-stream"]


def test_cors(daemon, url_id):
    status, headers, body = request(daemon, "OPTIONS", f"/{url_id}/echo",
                                    headers={"origin": "https://app.example",
                                             "access-control-request-method": "POST"})
    assert status == 200 and body == b""
    assert header(headers, "access-control-allow-origin") == ["https://app.example"]
    assert header(headers, "access-control-allow-methods") == ["GET,POST"]
    assert header(headers, "access-control-max-age") == ["600"]
    _, headers, _ = request(daemon, "GET", f"/{url_id}/status", headers={"origin": "https://app.example"})
    assert header(headers, "access-control-expose-headers") == ["x-kind"]
    _, headers, _ = request(daemon, "OPTIONS", f"/{url_id}/echo",
                            headers={"origin": "https://evil.example", "access-control-request-method": "GET"})
    assert header(headers, "access-control-allow-origin") == []


def test_throttled(daemon, lam):
    deploy(lam, "u-throttled", {"app.py": APP})
    cfg = public_url(lam, "u-throttled")
    lam.put_function_concurrency(FunctionName="u-throttled", ReservedConcurrentExecutions=0)
    uid = url_id_of(cfg["FunctionUrl"])
    status, _, _ = request(daemon, "GET", f"/{uid}/string")
    assert status == 429


def test_iam_auth_and_alias(daemon, lam):
    deploy(lam, "u-iam", {"app.py": APP})
    v = lam.publish_version(FunctionName="u-iam")["Version"]
    lam.create_alias(FunctionName="u-iam", Name="live", FunctionVersion=v)
    cfg = lam.create_function_url_config(FunctionName="u-iam", Qualifier="live", AuthType="AWS_IAM")
    assert cfg["FunctionArn"].endswith(":function:u-iam:live")
    with pytest.raises(ClientError):
        lam.create_function_url_config(FunctionName="u-iam", Qualifier="1", AuthType="NONE")
    uid = url_id_of(cfg["FunctionUrl"])
    url = f"{daemon.url_endpoint}/{uid}/echo?q=1"
    status, _, body = request(daemon, "GET", f"/{uid}/echo?q=1")
    assert status == 403 and json.loads(body) == {"Message": "Forbidden"}
    bad = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(ACCESS_KEY, "wrong-secret"), "lambda", "us-east-1").add_auth(bad)
    status, _, _ = request(daemon, "GET", f"/{uid}/echo?q=1", headers=dict(bad.headers))
    assert status == 403
    good = AWSRequest(method="GET", url=url)
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(good)
    status, _, body = request(daemon, "GET", f"/{uid}/echo?q=1", headers=dict(good.headers))
    assert status == 200, body
    event = json.loads(body)
    assert event["requestContext"]["authorizer"]["iam"]["accessKey"] == ACCESS_KEY
    # Refused on the head alone: the client sends none of its 5 MB body.
    s = socket.create_connection(("127.0.0.1", daemon.url_port), timeout=60)
    s.sendall(f"POST /{uid}/echo HTTP/1.1\r\nHost: x\r\nContent-Length: {5 << 20}\r\n\r\n".encode())
    answer = http.client.HTTPResponse(s)
    answer.begin()
    assert (answer.status, answer.read()) == (403, b'{"Message":"Forbidden"}')
    assert s.recv(1) == b"", "the connection is closed"
    s.close()
    lam.delete_function_url_config(FunctionName="u-iam", Qualifier="live")
    status, _, _ = request(daemon, "GET", f"/{uid}/echo")
    assert status == 404


def test_none_url_answers_only_what_the_policy_opens(daemon, lam):
    """AuthType NONE is public only when the function's resource-based
    policy grants both lambda:InvokeFunctionUrl and lambda:InvokeFunction to
    everyone, as AWS requires of new URLs since October 2025; else 403."""
    deploy(lam, "u-policy", {"app.py": APP})
    uid = url_id_of(lam.create_function_url_config(FunctionName="u-policy", AuthType="NONE")["FunctionUrl"])
    status, _, body = request(daemon, "GET", f"/{uid}/string")
    assert (status, json.loads(body)) == (403, {"Message": "Forbidden"})
    lam.add_permission(FunctionName="u-policy", StatementId="url", Principal="*",
                       Action="lambda:InvokeFunctionUrl", FunctionUrlAuthType="NONE")
    assert request(daemon, "GET", f"/{uid}/string")[0] == 403, "InvokeFunctionUrl alone opens nothing"
    # An account's grant, or a condition an anonymous caller cannot meet, is not public.
    lam.add_permission(FunctionName="u-policy", StatementId="acct", Principal="123456789012",
                       Action="lambda:InvokeFunction")
    lam.add_permission(FunctionName="u-policy", StatementId="s3", Principal="*", Action="lambda:InvokeFunction",
                       SourceArn="arn:aws:s3:::bucket")
    assert request(daemon, "GET", f"/{uid}/string")[0] == 403
    lam.add_permission(FunctionName="u-policy", StatementId="invoke", Principal="*",
                       Action="lambda:InvokeFunction", InvokedViaFunctionUrl=True)
    status, _, body = request(daemon, "GET", f"/{uid}/string")
    assert (status, body) == (200, b'"hello"')
    policy = json.loads(lam.get_policy(FunctionName="u-policy")["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["url", "acct", "s3", "invoke"]
    lam.remove_permission(FunctionName="u-policy", StatementId="url")
    assert request(daemon, "GET", f"/{uid}/string")[0] == 403


def test_function_url_works_as_answered(daemon, lam, url_id):
    """The FunctionUrl, used verbatim, reaches the function from Python's
    and Node's own resolvers on a box with no DNS (issue 14)."""
    url = lam.get_function_url_config(FunctionName="u-app")["FunctionUrl"]
    assert url == f"http://127.0.0.1:{daemon.url_port}/{url_id}/"
    with urllib.request.urlopen(url + "string", timeout=60) as r:
        assert (r.status, r.read()) == (200, b'"hello"')
    r = requests.get(url + "object", timeout=60)
    assert (r.status_code, r.json()) == (200, {"answer": 42})
    node = subprocess.run(
        ["node", "-e", "fetch(process.argv[1]).then(async r => console.log(r.status, await r.text()))",
         url + "string"], capture_output=True, text=True, timeout=60)
    assert node.stdout.strip() == '200 "hello"', node.stderr


def test_url_base_shapes_the_answered_url():
    with function_daemon("lamb-urlbase-", "--url-base", "http://{id}.fn.example:8443/") as d:
        c = d.lambda_client()
        deploy(c, "u-base", {"app.py": APP})
        cfg = c.create_function_url_config(FunctionName="u-base", AuthType="AWS_IAM")
        assert re.fullmatch(r"http://[a-z0-9]{32}\.fn\.example:8443/", cfg["FunctionUrl"]), cfg
    bad = subprocess.run([LAMB, "serve", "--url-base", "ftp://x/"], capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "not an http:// or https:// URL" in bad.stderr


def gauge(daemon, name):
    """One of the daemon's unlabelled gauges, from its metrics listener."""
    text = urllib.request.urlopen(daemon.metrics_endpoint + "/metrics", timeout=10).read().decode()
    return int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))


def functions_sandboxes(daemon):
    """(frozen, live) sandboxes of functions, from one reading of the
    gauges: the prewarmed ones waiting for a function (docs/prewarm.md,
    live and never frozen) left out."""
    text = urllib.request.urlopen(daemon.metrics_endpoint + "/metrics", timeout=10).read().decode()
    read = {name: int(re.search(rf"^{name} (\d+)$", text, re.M).group(1))
            for name in ("lamb_sandboxes_frozen", "lamb_sandboxes_live", "lamb_sandboxes_prewarmed")}
    return read["lamb_sandboxes_frozen"], read["lamb_sandboxes_live"] - read["lamb_sandboxes_prewarmed"]


def test_metrics_are_off_the_api(daemon):
    # The API serves nothing unsigned; the metrics listener serves metrics.
    status, _, _ = request_api(daemon, "GET", "/metrics")
    assert status == 403
    text = urllib.request.urlopen(daemon.metrics_endpoint + "/metrics", timeout=10).read().decode()
    assert "lamb_sandboxes_live" in text


def request_api(daemon, method, path):
    c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    c.request(method, path)
    r = c.getresponse()
    out = (r.status, r.getheaders(), r.read())
    c.close()
    return out


def test_deleting_a_function_destroys_its_idle_sandboxes(daemon, lam):
    # This daemon keeps idle sandboxes for the default 10 minutes: only the
    # deletion can take this one away within the wait.
    deploy(lam, "u-doomed", {"app.py": APP})
    lam.publish_version(FunctionName="u-doomed")
    for qualifier in ("$LATEST", "1"):
        assert lam.invoke(FunctionName="u-doomed", Qualifier=qualifier, Payload=b'{"rawPath": "/string"}')["StatusCode"] == 200
    # Both idle and frozen, back in their pools.
    wait_for(lambda: len(set(functions_sandboxes(daemon))) == 1, what="every sandbox of a function frozen")
    live = functions_sandboxes(daemon)[1]
    assert live >= 2
    lam.delete_function(FunctionName="u-doomed", Qualifier="1")
    wait_for(lambda: functions_sandboxes(daemon)[1] == live - 1)
    lam.delete_function(FunctionName="u-doomed")
    wait_for(lambda: functions_sandboxes(daemon)[1] == live - 2)
