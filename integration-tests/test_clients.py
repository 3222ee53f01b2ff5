"""The aws CLI and the `lamb` command against the same daemon, and a
restart of the daemon in the middle."""

import json
import os
import stat

import pytest

from conftest import BOOTSTRAP, ROLE


def test_aws_cli(daemon, tmp_path):
    z = tmp_path / "fn.zip"
    z.write_bytes(BOOTSTRAP)
    out = daemon.aws("create-function", "--function-name", "cli-fn", "--runtime", "provided.al2023",
                     "--handler", "h", "--role", ROLE, "--zip-file", f"fileb://{z}")
    assert out["FunctionName"] == "cli-fn"
    daemon.aws("wait", "function-active-v2", "--function-name", "cli-fn")
    assert daemon.aws("get-function", "--function-name", "cli-fn")["Configuration"]["State"] == "Active"
    daemon.aws("update-function-configuration", "--function-name", "cli-fn", "--timeout", "30")
    daemon.aws("wait", "function-updated-v2", "--function-name", "cli-fn")
    v = daemon.aws("publish-version", "--function-name", "cli-fn")
    daemon.aws("create-alias", "--function-name", "cli-fn", "--name", "prod", "--function-version", v["Version"])
    assert daemon.aws("list-aliases", "--function-name", "cli-fn")["Aliases"][0]["Name"] == "prod"
    layer = daemon.aws("publish-layer-version", "--layer-name", "cli-layer", "--zip-file", f"fileb://{z}")
    assert layer["Version"] == 1
    daemon.aws("put-function-concurrency", "--function-name", "cli-fn", "--reserved-concurrent-executions", "2")
    names = [f["FunctionName"] for f in daemon.aws("list-functions")["Functions"]]
    assert "cli-fn" in names
    p = daemon.aws("get-function", "--function-name", "cli-nope", check=False)
    assert p.returncode != 0 and "ResourceNotFoundException" in p.stderr
    daemon.aws("delete-function", "--function-name", "cli-fn")


def test_lamb_command(daemon, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "bootstrap").write_text("#!/bin/sh\necho hi\n")
    os.chmod(code / "bootstrap", 0o755)
    (code / "big.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # exercises the progress path
    p = daemon.lamb("deploy", "lamb-fn", "--runtime", "provided.al2023", "--handler", "h", "--code", str(code),
                    "--memory", "256", "--timeout", "5", "--env", "KEY=value")
    assert "created lamb-fn" in p.stdout
    p = daemon.lamb("deploy", "lamb-fn", "--runtime", "provided.al2023", "--handler", "h", "--code", str(code),
                    "--publish")
    assert "updated lamb-fn" in p.stdout and "version 1" in p.stdout
    # The directory was zipped with its executable bit.
    lam = daemon.lambda_client()
    cfg = lam.get_function(FunctionName="lamb-fn")["Configuration"]
    assert cfg["MemorySize"] == 256 and cfg["Environment"]["Variables"] == {"KEY": "value"}
    unpacked = daemon.data_dir / "code"
    modes = [os.stat(d / "bootstrap").st_mode for d in unpacked.iterdir() if (d / "bootstrap").exists()]
    assert modes and all(m & stat.S_IXUSR for m in modes)

    assert "lamb-fn" in daemon.lamb("ls").stdout
    listed = json.loads(daemon.lamb("ls", "--json").stdout)
    assert "lamb-fn" in [f["FunctionName"] for f in listed["Functions"]]
    assert "provided.al2023" in daemon.lamb("get", "lamb-fn").stdout
    assert json.loads(daemon.lamb("get", "lamb-fn:1", "--json").stdout)["Configuration"]["Version"] == "1"
    daemon.lamb("deploy", "lamb-fn", "--runtime", "provided.al2023", "--handler", "h2", "--code", str(code))
    assert "version 2" in daemon.lamb("publish", "lamb-fn").stdout
    daemon.lamb("alias", "set", "lamb-fn", "live", "1")
    daemon.lamb("alias", "set", "lamb-fn", "live", "1", "--weight", "2=0.3")
    alias = lam.get_alias(FunctionName="lamb-fn", Name="live")
    assert alias["RoutingConfig"]["AdditionalVersionWeights"] == {"2": 0.3}
    arn = daemon.lamb("layer", "publish", "lamb-layer", str(code)).stdout.strip()
    assert arn.endswith(":layer:lamb-layer:1")
    assert "lamb-layer" in daemon.lamb("layer", "ls").stdout
    daemon.lamb("concurrency", "lamb-fn", "4")
    assert lam.get_function_concurrency(FunctionName="lamb-fn")["ReservedConcurrentExecutions"] == 4
    daemon.lamb("concurrency", "lamb-fn", "none")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="lamb-fn")

    logs = daemon.data_dir / "logs" / "lamb-fn"
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "stream-1").write_text("START RequestId: 1\nEND RequestId: 1\n")
    assert daemon.lamb("logs", "lamb-fn").stdout.splitlines() == ["START RequestId: 1", "END RequestId: 1"]

    status = json.loads(daemon.lamb("status", "--json").stdout)
    assert status["Functions"] >= 1 and "provided.al2023" in status["Runtimes"]
    assert status["CgroupVersion"] in ("v1", "v2")

    # Invocation: without the engine, a clear one-line error and exit 1.
    p = daemon.lamb("invoke", "lamb-fn", "--payload", '{"a":1}', check=False)
    assert p.returncode != 0 and len(p.stderr.strip().splitlines()) == 1

    # Errors: one line, non-zero exit.
    p = daemon.lamb("get", "lamb-nope", check=False)
    assert p.returncode == 1
    assert p.stderr.strip().count("\n") == 0 and "ResourceNotFoundException" in p.stderr
    p = daemon.lamb("ls", check=False, env={"LAMB_SECRET_ACCESS_KEY": "wrong"})
    assert p.returncode == 1 and "InvalidSignatureException" in p.stderr

    daemon.lamb("rm", "lamb-fn")
    assert daemon.lamb("get", "lamb-fn", check=False).returncode == 1


def test_credentials_file_when_no_env(tmp_path):
    """Without LAMB_* keys the daemon creates <data-dir>/credentials (0600)
    and `lamb`, as root on the same box, reads it."""
    if os.geteuid() != 0:
        pytest.skip("root-only")
    from conftest import Daemon
    d = Daemon(tmp_path, env_keys=False)
    d.start()
    try:
        creds = d.data_dir / "credentials"
        assert stat.S_IMODE(os.stat(creds).st_mode) == 0o600
        assert "aws_secret_access_key" in creds.read_text()
        p = d.lamb("status", "--client-data-dir", str(d.data_dir))
        assert "Functions" in p.stdout
        # The aws CLI reads the same file.
        out = d.aws("list-functions", env={"AWS_SHARED_CREDENTIALS_FILE": str(creds)})
        assert out["Functions"] == []
    finally:
        assert d.stop() == 0


def test_restart_keeps_everything(daemon, lam):
    lam.create_function(FunctionName="fn-durable", Role=ROLE, Runtime="provided.al2023", Handler="h",
                        Code={"ZipFile": BOOTSTRAP}, Tags={"k": "v"})
    v = lam.publish_version(FunctionName="fn-durable")["Version"]
    lam.create_alias(FunctionName="fn-durable", Name="stable", FunctionVersion=v)
    layer = lam.publish_layer_version(LayerName="durable-layer", Content={"ZipFile": BOOTSTRAP})
    lam.put_function_concurrency(FunctionName="fn-durable", ReservedConcurrentExecutions=3)
    before = lam.get_function(FunctionName="fn-durable")

    daemon.restart()
    lam = daemon.lambda_client()

    after = lam.get_function(FunctionName="fn-durable")
    assert after["Configuration"] == before["Configuration"]
    assert after["Tags"] == {"k": "v"}
    assert after["Concurrency"]["ReservedConcurrentExecutions"] == 3
    assert lam.get_alias(FunctionName="fn-durable", Name="stable")["FunctionVersion"] == v
    assert lam.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])["Version"] == 1
    assert (daemon.data_dir / "code").exists()
