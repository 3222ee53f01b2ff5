"""`lamb serve --userns`: every sandbox in its own user namespace. A Python
function, invoked cold and warm, runs as its usual uid inside while the host
sees an unprivileged uid of the sandbox slot's own range."""

import json
import os
import tempfile
from pathlib import Path

import pytest

from conftest import BUILD, ROLE, Daemon, make_zip

USERNS_BASE = 1_000_000
CGROUP_PARENT = "lamb-uns"

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
        d.extra_args = ["--userns", "--cgroup-parent", CGROUP_PARENT]
        d.start()
        try:
            yield d
        finally:
            assert d.stop() == 0


def sandbox_pids():
    """Host PIDs of every process in the daemon's sandbox cgroups (v1 or v2)."""
    v1 = Path("/sys/fs/cgroup/pids") / CGROUP_PARENT
    parent = v1 if v1.is_dir() else Path("/sys/fs/cgroup") / CGROUP_PARENT
    return [int(p) for f in parent.glob("lamb-*/cgroup.procs") for p in f.read_text().split()]


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
    for pid in sandbox_pids():
        status = Path(f"/proc/{pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        outside.update(int(u) for u in uid_line.split()[1:])
    assert outside, "the sandbox is alive between calls"
    assert min(outside) >= USERNS_BASE, f"no process of the sandbox is a host uid: {outside}"
    assert base + inside_uid in outside, f"the function's uid maps to {base + inside_uid}: {outside}"
