"""The data directory is closed to other local users: the registry and its
WAL (functions' environment variables), the keys, the code and the logs
cannot be read by `nobody`, after a first start and after a start on a
directory someone made world-readable."""

import configparser
import os
import subprocess
import tempfile
from pathlib import Path

import boto3
import pytest

from conftest import BUILD, LAMB, ROLE, Daemon, make_zip

SECRET = "lamb-secret-e1b0c2"

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

APP = b'''
import os
def handler(event, context):
    print("the secret is " + os.environ["SECRET"])
    return {"ok": True}
'''


def as_nobody(*cmd):
    """Runs `cmd` as nobody, with no supplementary groups."""
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *cmd],
                          capture_output=True, timeout=30)


def readable_by_nobody(path):
    return as_nobody("cat", str(path)).returncode == 0


def secrets(d):
    """Every file that holds a secret or the function's code or output (the
    WAL while the daemon runs: a clean stop checkpoints and removes it)."""
    data = d.data_dir
    files = [data / "lamb.db", data / "credentials", data / "session-key"]
    files += [data / "lamb.db-wal"] if d.proc else []
    files += [p for p in (data / "code").rglob("app.py")]
    files += [p for p in (data / "logs").rglob("*") if p.is_file()]
    assert all(p.is_file() for p in files), files
    assert any("code" in p.parts for p in files) and any("logs" in p.parts for p in files), files
    return files


def closed(d):
    files = secrets(d)
    readable = [str(p) for p in files if readable_by_nobody(p)]
    assert not readable, f"nobody reads {readable}"
    found = as_nobody("grep", "-rl", SECRET, str(d.data_dir))
    assert found.returncode != 0 and not found.stdout, found.stdout


@pytest.fixture(scope="module")
def daemon():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-datadir-") as tmp:
        # Open above the data directory, as /var/lib is: only lamb's own modes protect it.
        os.chmod(tmp, 0o755)
        d = Daemon(Path(tmp), env_keys=False)
        d.runtimes_dir = BUILD
        d.start()
        try:
            yield d
        finally:
            if d.proc:
                assert d.stop() == 0


def test_nobody_reads_nothing_after_a_start(daemon):
    # The daemon made its own keys (the credentials file is one of the secrets).
    keys = configparser.ConfigParser()
    keys.read(daemon.data_dir / "credentials")
    lam = boto3.client("lambda", endpoint_url=daemon.endpoint, region_name="us-east-1",
                       aws_access_key_id=keys["default"]["aws_access_key_id"],
                       aws_secret_access_key=keys["default"]["aws_secret_access_key"])
    lam.create_function(FunctionName="secretive", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": APP})}, MemorySize=128, Timeout=10,
                        Environment={"Variables": {"SECRET": SECRET}})
    r = lam.invoke(FunctionName="secretive", Payload=b"{}")
    assert r["StatusCode"] == 200 and "FunctionError" not in r
    closed(daemon)


def test_a_world_readable_directory_is_closed_at_start(daemon):
    assert daemon.stop() == 0
    # What an older lamb (or a careless chmod) left: every directory 0755, every file 0644.
    for root, dirs, files in os.walk(daemon.data_dir):
        os.chmod(root, 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    assert all(readable_by_nobody(p) for p in secrets(daemon)), "the test loosened the directory"
    daemon.start()
    closed(daemon)


def test_a_daemon_refused_for_a_bad_flag_changes_nothing(daemon):
    assert daemon.stop() == 0
    os.chmod(daemon.data_dir, 0o755)
    try:
        p = subprocess.run([LAMB, "serve", "--data-dir", str(daemon.data_dir), "--filesystem", "no-equals-sign"],
                           env=daemon.env(), capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "no-equals-sign" in p.stderr, p.stderr
        assert daemon.data_dir.stat().st_mode & 0o777 == 0o755, "the refused daemon fixed the mode"
    finally:
        os.chmod(daemon.data_dir, 0o700)
