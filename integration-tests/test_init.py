"""Init as Lambda runs it: at a full core whatever the memory, then the
memory-proportional quota for invocations; and an init past the 10 s limit
tried again within the first invocation ("suppressed init").

The function's init waits at a gate (a directory served at /mnt/gate) the
test opens, so the quota is read from the host while init is running, and
the init timeout happens for certain: every wait is for an event."""

import base64
import json
import os
import threading
from pathlib import Path

import pytest

from conftest import deploy, function_daemon, sandbox_cgroups, wait_for

GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"
GATE = [{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}]

# Init imports a module heavy enough to want the CPU, says it is in init,
# and waits for the gate; the handler answers at once.
APP = b'''
import os, time
import asyncio, email.mime.multipart, decimal, json  # the heavy imports
open("/mnt/gate/in-init-" + os.urandom(8).hex(), "w").close()
while not os.path.exists("/mnt/gate/open"):
    time.sleep(0.02)

def handler(event, context):
    return {"ok": True}
'''

PERIOD_US = 100_000


@pytest.fixture(scope="module")
def gated(tmp_path_factory):
    gate = tmp_path_factory.mktemp("gate")
    # The function runs as an unprivileged uid and marks its init here.
    os.chmod(gate, 0o777)
    with function_daemon("lamb-init-", "--filesystem", f"gate={gate}") as d:
        d.gate = Path(gate)
        yield d


def shut(gate):
    """Closes the gate and forgets earlier inits."""
    for f in gate.iterdir():
        f.unlink()


def cpu_of(parent):
    """The CPU quota (µs per period) and weight of every live sandbox of the
    daemon: v2's cpu.max and cpu.weight, or v1's cpu.cfs_quota_us and
    cpu.shares given as a v2 weight (1024 shares = weight 100)."""
    found = []
    for cg in sandbox_cgroups(parent):
        # The quota is on the function's group (lamb init has its own,
        # docs/sandbox.md), the weight on the sandbox's cgroup.
        quota = cg / "function" if (cg / "function").is_dir() else cg
        try:
            if (cg / "cpu.max").exists():
                q, period = (quota / "cpu.max").read_text().split()
                assert int(period) == PERIOD_US
                found.append((int(q), int((cg / "cpu.weight").read_text())))
            elif (cg / "cpu.cfs_quota_us").exists():
                assert int((quota / "cpu.cfs_period_us").read_text()) == PERIOD_US
                shares = int((cg / "cpu.shares").read_text())
                found.append((int((quota / "cpu.cfs_quota_us").read_text()), -(-shares * 100 // 1024)))
        except FileNotFoundError:
            pass
    return found


def invoke_in_background(lam, name):
    out = {}

    def call():
        r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
        out["status"] = r["StatusCode"]
        out["error"] = r.get("FunctionError")
        out["payload"] = json.loads(r["Payload"].read())
        out["tail"] = base64.b64decode(r["LogResult"]).decode()
    t = threading.Thread(target=call)
    t.start()
    return t, out


def test_init_runs_at_a_full_core_and_invocations_at_their_share(gated):
    lam = gated.lambda_client()
    shut(gated.gate)
    deploy(lam, "full-core", {"app.py": APP}, MemorySize=128, Timeout=30, FileSystemConfigs=GATE)
    t, out = invoke_in_background(lam, "full-core")
    wait_for(lambda: list(gated.gate.glob("in-init-*")), what="the function's init to run")
    # Init is running, held at the gate: one vCPU's quota and weight at 128 MB.
    assert cpu_of(gated.cgroup_parent) == [(PERIOD_US, 100)]
    (gated.gate / "open").touch()
    t.join(timeout=120)
    assert out["error"] is None, out
    assert out["payload"] == {"ok": True}
    assert "Init Duration" in out["tail"], out["tail"]
    # The sandbox is idle in its pool now, at the memory's share of a core.
    assert cpu_of(gated.cgroup_parent) == [(128 * PERIOD_US // 1769, 128 * 100 // 1769)]


def test_an_init_past_ten_seconds_is_retried_within_the_invocation(gated):
    lam = gated.lambda_client()
    shut(gated.gate)
    deploy(lam, "slow-init", {"app.py": APP}, MemorySize=128, Timeout=60, FileSystemConfigs=GATE)
    t, out = invoke_in_background(lam, "slow-init")
    logs = gated.data_dir / "logs" / "slow-init"

    def init_timed_out():
        for f in logs.glob("*") if logs.exists() else []:
            if "\tPhase: init\tStatus: timeout\t" in f.read_text(errors="replace"):
                return True
        return False
    # The daemon gave up on the first init (10 s); the retry's init passes.
    wait_for(init_timed_out, timeout=120, what="the INIT_REPORT of the init timeout")
    (gated.gate / "open").touch()
    t.join(timeout=120)
    assert out["error"] is None, out
    assert out["payload"] == {"ok": True}
    tail = out["tail"]
    assert tail.startswith("INIT_REPORT Init Duration: ") and "\tPhase: init\tStatus: timeout\t" in tail, tail
    report = tail[tail.index("REPORT RequestId: "):]
    # The retried init is billed as the invocation's: no Init Duration.
    assert "Init Duration" not in report and "Status:" not in report, report
    # Two sandboxes' inits ran; the second is the one kept.
    assert len(list(gated.gate.glob("in-init-*"))) >= 2


# What the function sees of its cgroup placement, and whether it can reach
# init's descriptor of the function group's cgroup.procs.
PLACED = b'''
import os
def handler(event, context):
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    try:
        with open("/proc/1/fd/4", "w") as f:
            f.write("0")
        wrote = "yes"
    except OSError as e:
        wrote = e.strerror
    return {"fds": fds, "wrote": wrote, "cgroup": open("/proc/self/cgroup").read()}
'''


def cgroup_pids(cg):
    return [int(p) for p in (cg / "cgroup.procs").read_text().split()]


def cmdline(pid):
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def runs(pid, function):
    """Whether process `pid` belongs to `function` (its environment says so)."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"AWS_LAMBDA_FUNCTION_NAME={function}".encode() in env


def test_init_and_the_function_sit_in_their_own_cpu_groups(gated):
    lam = gated.lambda_client()
    deploy(lam, "placed", {"app.py": PLACED}, MemorySize=128)
    for _ in range(50):
        r = lam.invoke(FunctionName="placed", Payload=b"{}")
        seen = json.loads(r["Payload"].read())
        assert "FunctionError" not in r, seen
    # The function holds no cgroup file, and init's is not its to open.
    assert not [t for t in seen["fds"].values() if "cgroup" in t], seen
    assert seen["wrote"] != "yes", seen
    # Its cgroup namespace is rooted at init's group: the function's is a sibling.
    # (v1: the cpu hierarchy's line; pure v2: the one line.)
    lines = seen["cgroup"].splitlines()
    cpu = [l for l in lines if l.split(":")[1] in ("cpu", "cpu,cpuacct")] or [l for l in lines if l.startswith("0::")]
    assert cpu and all(l.endswith(":/../function") for l in cpu), seen["cgroup"]
    split = [cg for cg in sandbox_cgroups(gated.cgroup_parent)
             if (cg / "function").is_dir() and any(runs(p, "placed") for p in cgroup_pids(cg / "function"))]
    assert len(split) == 1, split
    cg = split[0]
    init = cgroup_pids(cg / "init")
    assert len(init) == 1 and " init " in cmdline(init[0]), [cmdline(p) for p in init]
    function = cgroup_pids(cg / "function")
    assert any("python" in cmdline(p) for p in function), [cmdline(p) for p in function]
    assert cgroup_pids(cg) == [], "the sandbox's own cpu cgroup holds no process"
    # Init relayed 50 invocations in its own group, under its own bound.
    stat = dict(line.split() for line in (cg / "init" / "cpu.stat").read_text().splitlines())
    assert int(stat["nr_periods"]) >= 1, stat
