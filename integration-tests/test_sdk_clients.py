"""The AWS SDK for JavaScript v3 (`@aws-sdk/client-lambda`, pinned in
js/package-lock.json) and the AWS SDK for Rust (`aws-sdk-lambda`, the
scenario binary in rust-sdk/) against the real daemon: each creates a
Node.js streaming function, publishes it, aliases it, invokes it plainly and
with InvokeWithResponseStream through the alias, and deletes it; and, apart,
adds, reads and removes a resource-policy statement.

`make sdk-clients` installs both (`make test` does it first)."""

import subprocess
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, ROLE, deploy, function_daemon, make_zip

HERE = Path(__file__).resolve().parent
JS = HERE / "js"
RUST = HERE / "rust-sdk" / "target" / "debug" / "lamb-rust-sdk-scenario"

pytestmark = pytest.mark.skipif(
    not (BUILD / "nodejs18.x" / "usr").is_dir(),
    reason="the runtime trees are not built (make rootfs)",
)

STREAMER = b'''
exports.handler = awslambda.streamifyResponse(async (event, stream) => {
  stream.setContentType('text/plain');
  stream.write('first;');
  stream.write('second;');
  stream.end();
});
'''

CLIENTS = {
    "js": (["node", str(JS / "scenario.mjs")], JS / "node_modules" / "@aws-sdk" / "client-lambda"),
    "rust": ([str(RUST)], RUST),
}


@pytest.fixture(scope="module")
def daemon():
    with function_daemon("lamb-sdk-") as d:
        yield d


@pytest.fixture(scope="module")
def code(tmp_path_factory):
    path = tmp_path_factory.mktemp("sdk") / "code.zip"
    path.write_bytes(make_zip({"index.js": STREAMER}))
    return path


def scenario(daemon, client, *args):
    """Runs one client's scenario; {step: what came back}."""
    argv, installed = CLIENTS[client]
    if not installed.exists():
        pytest.skip(f"the {client} SDK client is not installed (make sdk-clients)")
    env = daemon.env()
    env["LAMB_ROLE"] = ROLE
    proc = subprocess.run([*argv, *map(str, args)], env=env, capture_output=True, text=True, timeout=300)
    steps = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert proc.returncode == 0, f"{client} scenario failed: {proc.stdout}{proc.stderr}"
    return steps


@pytest.mark.parametrize("client", ["js", "rust"])
def test_create_publish_alias_invoke_stream_delete(daemon, code, client):
    name = f"sdk-{client}"
    steps = scenario(daemon, client, "core", name, code)
    arn = f"arn:aws:lambda:us-east-1:000000000000:function:{name}"
    assert steps["create"] == arn
    assert steps["publish"] == "1"
    assert steps["alias"] == f"{arn}:live"
    assert steps["invoke"] == "1 first;second;"
    assert steps["stream"] == "first;second; complete=none"
    assert steps["delete"] == "ok"
    with pytest.raises(ClientError):
        daemon.lambda_client().get_function(FunctionName=name)


@pytest.mark.parametrize("client", ["js", "rust"])
def test_permissions(daemon, client):
    lam = daemon.lambda_client()
    name = f"sdk-policy-{client}"
    deploy(lam, name, {"index.js": STREAMER}, runtime="nodejs18.x", handler="index.handler")
    steps = scenario(daemon, client, "permissions", name, "-")
    assert '"Sid":"sdk-test"' in steps["add_permission"].replace(" ", "")
    assert "s3.amazonaws.com" in steps["get_policy"]
    assert steps["remove_permission"] == "ok"
