"""A function's session credentials and the AWS SDKs in the runtimes (issue
11): every sandbox gets `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
`AWS_SESSION_TOKEN` minted for its function and `AWS_ENDPOINT_URL_LAMBDA`;
the API takes them (SigV4 with `X-Amz-Security-Token`) for Lambda's API only,
logs each call naming the function, and refuses them once expired, after a
restart, or at another daemon; boto3 and the JavaScript SDK v3 are in the
runtimes, below the function's own code and layers (real daemon, real
sandboxes, boto3 on the host)."""

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import BUILD, LAMB, ROLE, deploy, function_daemon, make_zip

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr" / "local" / "lib" / "python3.11" / "dist-packages" / "boto3").is_dir()
    or not (BUILD / "nodejs18.x" / "var" / "runtime" / "node_modules" / "@aws-sdk").is_dir(),
    reason="the runtime trees are not built with the AWS SDKs (make rootfs)",
)

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"
SDK_PIN = next(line.split("==")[1].split()[0]
               for line in (Path(__file__).resolve().parent.parent / "rootfs" / "sdk" / "boto3" /
                            "requirements.txt").read_text().splitlines()
               if line.startswith("boto3=="))

ENV_APP = b'''
import os
def handler(event, context):
    names = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
             "AWS_ENDPOINT_URL_LAMBDA", "AWS_REGION", "AWS_DEFAULT_REGION"]
    return {n: os.environ.get(n) for n in names}
'''

# Which boto3 the function imports, and from where.
WHICH_BOTO3 = b'''
import boto3
def handler(event, context):
    return {"file": boto3.__file__, "marker": getattr(boto3, "MARKER", None),
            "version": getattr(boto3, "__version__", None)}
'''

# What a Lambda client made with no arguments would use, with nothing
# reached over the network.
PY_CLIENT_APP = b'''
import boto3
def handler(event, context):
    client = boto3.client("lambda")
    return {"endpoint": client.meta.endpoint_url, "region": client.meta.region_name,
            "key": client._request_signer._credentials.access_key}
'''

NODE_APP = b'''
exports.handler = async () => {
  const lambda = require("@aws-sdk/client-lambda");
  const names = ["client-s3", "client-dynamodb", "lib-dynamodb", "client-sqs", "client-sts",
                 "credential-providers"];
  for (const n of names) require("@aws-sdk/" + n);
  const out = {client: typeof lambda.LambdaClient, path: require.resolve("@aws-sdk/client-lambda"),
               marker: lambda.MARKER || null};
  if (!lambda.MARKER) {
    const client = new lambda.LambdaClient({});
    out.key = (await client.config.credentials()).accessKeyId;
    out.region = await client.config.region();
    out.env_key = process.env.AWS_ACCESS_KEY_ID;
  }
  return out;
};
'''


@pytest.fixture(scope="module")
def d():
    with function_daemon("lamb-creds-") as daemon:
        yield daemon


@pytest.fixture(scope="module")
def lam(d):
    return d.lambda_client()


def invoke(lam, name, payload=None):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}))
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return body


@pytest.fixture(scope="module")
def function_env(lam):
    deploy(lam, "creds-env", {"app.py": ENV_APP})
    return invoke(lam, "creds-env")


def session_client(d, creds, endpoint=None):
    return boto3.client(
        "lambda", endpoint_url=endpoint or d.endpoint, region_name="us-east-1",
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=creds["AWS_SESSION_TOKEN"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def refused(client):
    """The 403 a call with `client`'s credentials gets: (status, code)."""
    with pytest.raises(ClientError) as e:
        client.list_functions()
    return e.value.response["ResponseMetadata"]["HTTPStatusCode"], e.value.response["Error"]["Code"]


def minted(d, function, expires_in):
    """Session credentials from `lamb session-credentials` (the daemon's key,
    read from its data directory), as the function's environment names them."""
    p = subprocess.run([LAMB, "session-credentials", "--data-dir", str(d.data_dir),
                        "--function-arn", ARN + function, "--role", ROLE,
                        "--expires-in", str(expires_in)],
                       capture_output=True, text=True, timeout=60, check=True)
    c = json.loads(p.stdout)
    return {"AWS_ACCESS_KEY_ID": c["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"]}


def test_the_function_sees_its_session_and_the_endpoint(d, function_env):
    env = function_env
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and len(env["AWS_ACCESS_KEY_ID"]) == 20, env
    assert len(env["AWS_SECRET_ACCESS_KEY"]) == 40
    assert env["AWS_SESSION_TOKEN"]
    assert env["AWS_ENDPOINT_URL_LAMBDA"] == f"http://host.lamb.internal:{d.port}"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_the_host_calls_the_api_with_a_functions_credentials(d, function_env):
    c = session_client(d, function_env)
    names = [f["FunctionName"] for f in c.list_functions()["Functions"]]
    assert "creds-env" in names
    assert c.get_function(FunctionName="creds-env")["Configuration"]["Role"] == ROLE
    assert c.invoke(FunctionName="creds-env")["StatusCode"] == 200
    # Every call is logged naming the function whose credentials made it.
    key = function_env["AWS_ACCESS_KEY_ID"]
    lines = [line for line in d.log.read_text(errors="replace").splitlines()
             if "call with a function's credentials" in line and key in line]
    assert len(lines) >= 3, lines
    assert all(f"function={ARN}creds-env" in line for line in lines), lines


def test_a_functions_credentials_do_not_reach_lambs_own_endpoints(d, function_env):
    creds = botocore.credentials.Credentials(function_env["AWS_ACCESS_KEY_ID"],
                                             function_env["AWS_SECRET_ACCESS_KEY"],
                                             function_env["AWS_SESSION_TOKEN"])
    for path in ["/lamb/status", "/lamb/schedules", "/2015-03-31/functions/creds-env/lamb-logs"]:
        req = botocore.awsrequest.AWSRequest(method="GET", url=d.endpoint + path)
        botocore.auth.SigV4Auth(creds, "lambda", "us-east-1").add_auth(req)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(req.url, headers=dict(req.headers.items())),
                                   timeout=30)
        assert e.value.code == 403, path
        assert e.value.headers["x-amzn-errortype"] == "AccessDeniedException", path
    # The administrator's keys still reach them.
    assert d.lamb("status").returncode == 0


def test_an_expired_session_is_refused(d):
    assert refused(session_client(d, minted(d, "creds-env", -60))) == (403, "ExpiredTokenException")
    # The same path mints working ones: the refusal is the expiry's.
    assert session_client(d, minted(d, "creds-env", 900)).list_functions()["Functions"]


def test_another_daemon_refuses_the_session():
    with function_daemon("lamb-creds-a-") as a, function_daemon("lamb-creds-b-") as b:
        creds = minted(a, "f", 900)
        assert session_client(a, creds).list_functions() is not None
        assert refused(session_client(b, creds)) == (403, "UnrecognizedClientException")


def test_a_restart_revokes_every_session():
    with function_daemon("lamb-creds-r-") as r:
        creds = minted(r, "f", 900)
        assert session_client(r, creds).list_functions() is not None
        r.restart()
        assert refused(session_client(r, creds)) == (403, "UnrecognizedClientException")
        # The daemon's own keys are not sessions: they survive the restart.
        assert r.lambda_client().list_functions() is not None


def built(runtime, sdk_path):
    """Skips the test when the runtime's tree (with its SDK) is not built."""
    if not (BUILD / runtime / sdk_path).is_dir():
        pytest.skip(f"{runtime} is not built with its SDK (make rootfs)")


@pytest.mark.parametrize("runtime", ["python3.11", "python3.13", "python3.14"])
def test_boto3_imports_with_nothing_bundled(lam, runtime):
    version = runtime.removeprefix("python")
    built(runtime, f"usr/local/lib/python{version}/dist-packages/boto3")
    tag = runtime.replace(".", "")
    deploy(lam, f"creds-boto3-{tag}", {"app.py": WHICH_BOTO3}, runtime=runtime)
    got = invoke(lam, f"creds-boto3-{tag}")
    assert got["version"] == SDK_PIN, got
    assert got["file"].startswith(f"/usr/local/lib/python{version}/dist-packages/boto3/"), got
    # A client made with no arguments takes the endpoint, region and session
    # from the environment.
    deploy(lam, f"creds-boto3-client-{tag}", {"app.py": PY_CLIENT_APP}, runtime=runtime)
    got = invoke(lam, f"creds-boto3-client-{tag}")
    assert got["endpoint"].startswith("http://host.lamb.internal:"), got
    assert got["region"] == "us-east-1" and got["key"].startswith("ASIA"), got


def test_the_functions_own_boto3_wins_then_a_layers(lam):
    fake = b'MARKER = "%s"\n__version__ = "0.0.0"\n'
    deploy(lam, "creds-bundled", {"app.py": WHICH_BOTO3, "boto3/__init__.py": fake % b"bundled"})
    got = invoke(lam, "creds-bundled")
    assert (got["marker"], got["file"]) == ("bundled", "/var/task/boto3/__init__.py"), got
    layer = lam.publish_layer_version(
        LayerName="creds-boto3-layer",
        Content={"ZipFile": make_zip({"python/boto3/__init__.py": fake % b"layer"})},
    )["LayerVersionArn"]
    deploy(lam, "creds-layered", {"app.py": WHICH_BOTO3}, Layers=[layer])
    got = invoke(lam, "creds-layered")
    assert (got["marker"], got["file"]) == ("layer", "/opt/python/boto3/__init__.py"), got


@pytest.mark.parametrize("runtime", ["nodejs18.x", "nodejs20.x", "nodejs22.x", "nodejs24.x"])
def test_the_javascript_sdk_loads_with_nothing_bundled(lam, runtime):
    built(runtime, "var/runtime/node_modules/@aws-sdk/client-lambda")
    name = "creds-node-" + runtime.replace(".", "")
    deploy(lam, name, {"index.js": NODE_APP}, runtime=runtime, handler="index.handler")
    got = invoke(lam, name)
    assert got["client"] == "function", got
    assert got["path"].startswith("/var/runtime/node_modules/@aws-sdk/client-lambda/"), got
    # A client made with no arguments finds the session and the region (and
    # its config files' home: the sandbox's uid has no passwd entry).
    assert got["key"] == got["env_key"] and got["key"].startswith("ASIA"), got
    assert got["region"] == "us-east-1", got


def test_a_bundled_javascript_sdk_wins(lam):
    fake = {"node_modules/@aws-sdk/client-lambda/package.json": b'{"name": "@aws-sdk/client-lambda", "main": "index.js"}',
            "node_modules/@aws-sdk/client-lambda/index.js":
                b'exports.MARKER = "bundled"; exports.LambdaClient = function () {};'}
    deploy(lam, "creds-node-bundled", {"index.js": NODE_APP, **fake}, runtime="nodejs18.x",
           handler="index.handler")
    got = invoke(lam, "creds-node-bundled")
    assert (got["marker"], got["path"]) == ("bundled", "/var/task/node_modules/@aws-sdk/client-lambda/index.js"), got
