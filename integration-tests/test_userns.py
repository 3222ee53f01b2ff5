"""`lamb serve --userns`: every sandbox in its own user namespace. A Python
function, invoked cold and warm, runs as its usual uid inside while the host
sees an unprivileged uid of the sandbox slot's own range."""

import json
import os
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, ROLE, Daemon, make_zip, sandbox_cgroups, sandbox_procs

USERNS_BASE = 1_000_000

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

PY_IDS = b'''
count = 0
def handler(event, context):
    global count
    count += 1
    import os
    with open("/proc/self/uid_map") as f:
        uid_map = f.read().split()
    with open("/dev/urandom", "rb") as f:
        random_bytes = len(f.read(8))
    return {"count": count, "uid": os.getuid(), "gid": os.getgid(), "uid_map": uid_map,
            "random_bytes": random_bytes}
'''


@pytest.fixture(scope="module")
def userns_daemon():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-userns-") as tmp:
        # Root inside a user namespace is an unprivileged uid outside: the
        # overlay and bind mounts reach the data directory with its permissions.
        os.chmod(tmp, 0o755)
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--userns"]
        d.start()
        try:
            yield d
        finally:
            assert d.stop() == 0


def sandbox_pids(d):
    """Host PIDs of every process in the daemon's sandbox cgroups (v1 or v2)."""
    return {p for cg in sandbox_cgroups(d.cgroup_parent) for p in sandbox_procs(cg)}


def test_python_cold_and_warm_in_a_user_namespace(userns_daemon):
    lam = userns_daemon.lambda_client()
    lam.create_function(FunctionName="uns-py", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": PY_IDS})}, MemorySize=256, Timeout=10)
    bodies = []
    for _ in range(2):
        r = lam.invoke(FunctionName="uns-py", Payload=b"{}")
        assert "FunctionError" not in r, r["Payload"].read()
        bodies.append(json.loads(r["Payload"].read()))
    cold, warm = bodies
    assert [cold["count"], warm["count"]] == [1, 2], "the second call is warm"
    inside_uid = cold["uid"]
    assert 20_000 <= inside_uid < 65_536 and cold["gid"] == 990, cold
    base = int(cold["uid_map"][1])
    assert cold["uid_map"][0] == "0" and cold["uid_map"][2] == "65536", cold
    assert base >= USERNS_BASE and (base - USERNS_BASE) % 65536 == 0, cold
    assert cold["random_bytes"] == 8

    outside = set()
    for pid in sandbox_pids(userns_daemon):
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        outside.update(int(u) for u in uid_line.split()[1:])
    assert outside, "the sandbox is alive between calls"
    assert min(outside) >= USERNS_BASE, f"no process of the sandbox is a host uid: {outside}"
    assert base + inside_uid in outside, f"the function's uid maps to {base + inside_uid}: {outside}"


def test_the_data_directory_is_searchable_but_closed(userns_daemon):
    """With --userns the data directory stays searchable (0711: a sandbox's
    set-up, an unprivileged uid on the host, reaches code and layers through
    it), but lists nothing, and the registry, its WAL and the logs stay closed."""
    from test_data_dir import APP, SECRET, as_nobody, readable_by_nobody
    lam = userns_daemon.lambda_client()
    lam.create_function(FunctionName="uns-secret", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": APP})}, MemorySize=128, Timeout=10,
                        Environment={"Variables": {"SECRET": SECRET}})
    r = lam.invoke(FunctionName="uns-secret", Payload=b"{}")
    assert "FunctionError" not in r, r["Payload"].read()
    data = userns_daemon.data_dir
    logs = [p for p in (data / "logs" / "uns-secret").rglob("*") if p.is_file()]
    assert logs and (data / "lamb.db-wal").is_file()
    readable = [str(p) for p in [data / "lamb.db", data / "lamb.db-wal", *logs] if readable_by_nobody(p)]
    assert not readable, f"nobody reads {readable}"
    for d in (data, data / "code", data / "layers", data / "logs"):
        assert as_nobody("ls", str(d)).returncode != 0, f"nobody lists {d}"
