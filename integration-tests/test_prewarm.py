"""Pre-initialised runtime sandboxes (`lamb serve --prewarm`, docs/prewarm.md):
a cold start on a waiting sandbox answers what a plain cold start answers
(environment, context, request id, cwd, ids, limits, /tmp, mounts, logs),
with the function's memory limit; the waiting sandboxes stay within
--memory-capacity and go after --idle-ttl; one whose runtime died while it
waited is let go, never handed a function. Root only, real runtime trees."""

import base64
import json
import os
import re
import signal
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import BUILD, deploy, function_daemon, sandbox_cgroups, sandbox_procs, wait_for

PY_PROBE = b'''
import ctypes, json, os, resource, sys

def privileges():
    status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
    keys = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
    out = {k: status[k].strip() for k in keys}
    try:
        open("/proc/1/environ").read()
        out["init_environ"] = "readable"
    except OSError as e:
        out["init_environ"] = type(e).__name__
    libc = ctypes.CDLL(None, use_errno=True)
    out["mount"] = libc.mount(b"none", b"/tmp", b"tmpfs", 0, None) == 0 or ctypes.get_errno()
    out["setuid0"] = libc.setuid(0) == 0 or ctypes.get_errno()
    return out

def handler(event, context):
    big = bytearray(event["allocate_mb"] << 20)
    big[-1] = 1
    print("probe says hello")
    return {
        "env": dict(os.environ),
        "context": {k: getattr(context, k) for k in (
            "function_name", "function_version", "invoked_function_arn", "memory_limit_in_mb",
            "aws_request_id", "log_group_name", "log_stream_name")},
        "remaining": context.get_remaining_time_in_millis() > 0,
        "cwd": os.getcwd(), "uid": os.getuid(), "gid": os.getgid(), "pid": os.getpid(), "ppid": os.getppid(),
        "rlimits": [resource.getrlimit(r) for r in (resource.RLIMIT_NOFILE, resource.RLIMIT_NPROC)],
        "tmp": sorted(os.listdir("/tmp")), "tmp_bytes": os.statvfs("/tmp").f_blocks * os.statvfs("/tmp").f_frsize,
        "tmp_writable": os.access("/tmp", os.W_OK),
        "mountinfo": open("/proc/self/mountinfo").read(),
        "sys_path": sys.path, "argv": sys.argv, "modules": sorted(sys.modules),
        "fds": sorted(os.listdir("/proc/self/fd")),
        "task": sorted(os.listdir("/var/task")),
        "privileges": privileges(),
    }
'''

NODE_PROBE = b'''
const fs = require('fs');
// What Node.js had loaded of its bundled undici (fetch, WebSocket) before
// this module: nothing, on either path (the runtime client's ES import of
// node:http loaded it on Node.js 22 and later, ~35 ms of every start).
const undiciBeforeImport = process.moduleLoadList.filter((m) => m.includes('undici'));
exports.handler = async (event, context) => {
  const big = Buffer.alloc(event.allocate_mb << 20, 1);
  console.log('probe says hello', big.length > 0);
  return {
    env: process.env, cwd: process.cwd(), uid: process.getuid(), gid: process.getgid(),
    pid: process.pid, ppid: process.ppid, argv: process.argv, execArgv: process.execArgv,
    context: {
      function_name: context.functionName, function_version: context.functionVersion,
      invoked_function_arn: context.invokedFunctionArn, memory_limit_in_mb: context.memoryLimitInMB,
      aws_request_id: context.awsRequestId, log_group_name: context.logGroupName,
      log_stream_name: context.logStreamName,
    },
    remaining: context.getRemainingTimeInMillis() > 0,
    mountinfo: fs.readFileSync('/proc/self/mountinfo', 'utf8'),
    tmp: fs.readdirSync('/tmp').sort(),
    task: fs.readdirSync('/var/task').sort(),
    heap: require('v8').getHeapStatistics().heap_size_limit,
    undici_before_import: undiciBeforeImport,
  };
};
'''

# What differs between any two cold starts, on either path: a sandbox's
# credentials, log stream, trace id and request id. Checked for their
# presence and shape below, not their values.
PER_SANDBOX = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_LAMBDA_LOG_STREAM_NAME",
               "_X_AMZN_TRACE_ID"}


def metrics(d):
    return urllib.request.urlopen(d.metrics_endpoint + "/metrics", timeout=10).read().decode()


def metric(d, name, function=None):
    label = f'{{function="{function}"}}' if function else ""
    m = re.search(rf"^{re.escape(name + label)} (\d+)$", metrics(d), re.M)
    return int(m.group(1)) if m else 0


def mounts(text):
    """mountinfo as a set: without mount ids, device numbers and the
    descriptor and loop device numbers, which differ between any two starts."""
    lines = set()
    for line in text.splitlines():
        fields = line.split(" ")
        rest = " ".join(fields[3:])
        rest = re.sub(r"/proc/self/fd/\d+", "/proc/self/fd/N", rest)
        lines.add(re.sub(r"/dev/loop\d+", "/dev/loopN", rest))
    return lines


def comparable(answer):
    a = dict(answer)
    env = dict(a.pop("env"))
    for k in PER_SANDBOX & env.keys():
        env[k] = "<per sandbox>"
    a["env"] = env
    ctx = dict(a.pop("context"))
    ctx["aws_request_id"] = "<per request>"
    ctx["log_stream_name"] = "<per sandbox>"
    a["context"] = ctx
    a["mountinfo"] = sorted(mounts(a["mountinfo"]))
    # A uid of the sandbox range, whichever slot was free.
    assert 20000 <= a.pop("uid") < 21000
    return a


def log_shape(tail):
    """The log tail's lines with ids, times, durations and memory numbers masked."""
    text = base64.b64decode(tail).decode()
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", "<time>", text)
    text = re.sub(r"\d+(\.\d+)? (ms|MB)", r"<n> \2", text)
    return text


def invoke(lam, name, payload):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload), LogType="Tail")
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    assert body["context"]["aws_request_id"] == r["ResponseMetadata"]["RequestId"]
    assert body["context"]["log_stream_name"] == body["env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    return body, log_shape(r["LogResult"])


def plain_then_prewarmed(d, lam, name, payload):
    """A plain cold start of `name` (its runtime's pool is empty until a
    first cold start), then, once a sandbox waits, a cold start on it."""
    plain = invoke(lam, name, payload)
    assert metric(d, "lamb_prewarmed_starts_total", name) == 0
    # One waiting sandbox per runtime used on the daemon, each made after its
    # cold start's answer (docs/prewarm.md): this one's too.
    d.pools = getattr(d, "pools", set()) | {name}
    wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") >= len(d.pools), what="a waiting sandbox")
    # A new revision: the warm sandbox is not used again, the next start is cold.
    lam.update_function_configuration(FunctionName=name, Description="again")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    prewarmed = invoke(lam, name, payload)
    assert metric(d, "lamb_prewarmed_starts_total", name) == 1
    return plain, prewarmed


@pytest.fixture(scope="module")
def prewarm_daemon():
    with function_daemon("lamb-prewarm-", "--prewarm", "on", metrics=True) as d:
        yield d


@pytest.mark.parametrize("runtime,files,handler", [
    ("python3.13", {"app.py": PY_PROBE}, "app.handler"),
    ("nodejs22.x", {"index.js": NODE_PROBE}, "index.handler"),
])
def test_a_prewarmed_cold_start_answers_as_a_plain_one(prewarm_daemon, runtime, files, handler):
    if not (BUILD / runtime / "var" / "runtime").is_dir():
        pytest.skip(f"{runtime} is not built (make rootfs)")
    d = prewarm_daemon
    lam = d.lambda_client()
    name = f"prewarm-probe-{runtime.replace('.', '-')}"
    # More than the waiting sandbox's 128 MB: its limit must become the function's.
    deploy(lam, name, files, runtime=runtime, handler=handler, MemorySize=512,
           Environment={"Variables": {"GREETING": "hello", "EMPTY": ""}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    (plain, plain_log), (pre, pre_log) = plain_then_prewarmed(d, lam, name, {"allocate_mb": 300})
    for answer in (plain, pre):
        assert answer["env"]["GREETING"] == "hello" and answer["env"]["EMPTY"] == ""
        assert answer["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
        assert "LAMB_PREWARM_FD" not in answer["env"]
        assert answer["cwd"] == "/var/task"
        assert answer["task"] == sorted(files)
        assert answer.get("undici_before_import", []) == [], answer["undici_before_import"]
        assert any(" /var/task " in line and "lowerdir=/proc/self/fd/" in line
                   for line in answer["mountinfo"].splitlines())
    if "privileges" in pre:
        p = pre["privileges"]
        assert all(int(p[k], 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")), p
        assert p["NoNewPrivs"] == "1" and p["Seccomp"] == "2", p
        assert p["init_environ"] == "PermissionError", p
        assert p["mount"] is not True and p["setuid0"] is not True, p
    pre, plain = comparable(pre), comparable(plain)
    assert pre.keys() == plain.keys()
    for key in plain:
        assert pre[key] == plain[key], key
    assert "probe says hello" in pre_log
    assert pre_log == plain_log, f"plain:\n{plain_log}\nprewarmed:\n{pre_log}"


def test_a_function_with_a_startup_variable_starts_the_plain_way(prewarm_daemon):
    d = prewarm_daemon
    lam = d.lambda_client()
    deploy(lam, "prewarm-startup-var", {"app.py": PY_PROBE}, runtime="python3.13",
           Environment={"Variables": {"PYTHONDONTWRITEBYTECODE": "1"}})
    lam.get_waiter("function_active_v2").wait(FunctionName="prewarm-startup-var")
    wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") >= 1, what="a waiting sandbox")
    body, _ = invoke(lam, "prewarm-startup-var", {"allocate_mb": 1})
    assert body["env"]["PYTHONDONTWRITEBYTECODE"] == "1"
    assert metric(d, "lamb_prewarmed_starts_total", "prewarm-startup-var") == 0


def cgroup_limits_mb(d):
    """The memory limits of the daemon's live sandboxes, from their cgroups."""
    total = 0
    for cg in sandbox_cgroups(d.cgroup_parent):
        for name in ("memory.max", "memory.limit_in_bytes"):
            try:
                total += int((cg / name).read_text()) >> 20
            except (FileNotFoundError, ValueError):
                pass
    return total


def test_the_waiting_sandboxes_stay_within_the_memory_capacity():
    with function_daemon("lamb-prewarm-cap-", "--prewarm", "on", "--memory-capacity", "384", metrics=True) as d:
        lam = d.lambda_client()
        for i, runtime in enumerate(["python3.13", "python3.11", "python3.13"]):
            name = f"prewarm-cap-{i}"
            deploy(lam, name, {"app.py": PY_PROBE}, runtime=runtime, MemorySize=256)
            lam.get_waiter("function_active_v2").wait(FunctionName=name)
            invoke(lam, name, {"allocate_mb": 1})
            # After each cold start the pool refills when, and only when, it fits.
            for _ in range(20):
                assert metric(d, "lamb_memory_reserved_bytes") <= 384 << 20
                assert cgroup_limits_mb(d) <= 384
        # 256 MB warm and one waiting 128 MB sandbox fill 384 MB exactly.
        wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") == 1, what="one waiting sandbox")
        assert metric(d, "lamb_memory_reserved_bytes") <= 384 << 20
        assert cgroup_limits_mb(d) <= 384


def test_the_waiting_sandboxes_go_after_the_idle_ttl():
    with function_daemon("lamb-prewarm-ttl-", "--prewarm", "on", "--idle-ttl", "2s", metrics=True) as d:
        lam = d.lambda_client()
        deploy(lam, "prewarm-ttl", {"app.py": PY_PROBE}, runtime="python3.13")
        lam.get_waiter("function_active_v2").wait(FunctionName="prewarm-ttl")
        invoke(lam, "prewarm-ttl", {"allocate_mb": 1})
        wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") >= 1, what="a waiting sandbox")
        wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") == 0 and metric(d, "lamb_sandboxes_live") == 0,
                 what="the pool drained")
        wait_for(lambda: not sandbox_cgroups(d.cgroup_parent), what="no sandbox cgroup left")
        # Drained, it is not refilled until a cold start of the runtime.
        assert metric(d, "lamb_sandboxes_prewarmed") == 0


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return []


def cgroup_pids(cg):
    return sandbox_procs(cg)


def waiting_sandboxes(d):
    """The cgroups of the daemon's waiting sandboxes: those whose init was
    started with --prewarm (each hierarchy's directory of one sandbox)."""
    return [cg for cg in sandbox_cgroups(d.cgroup_parent)
            if any(b"--prewarm" in cmdline(pid) for pid in cgroup_pids(cg))]


def kill_waiting_runtime(d):
    """SIGKILLs, from the host, the runtime of the one waiting sandbox (every
    process of its cgroup but init), as the OOM killer or a crash would end
    it, and answers the cgroup."""
    [cg] = {cg.name: cg for cg in waiting_sandboxes(d)}.values()
    runtime = [pid for pid in cgroup_pids(cg) if b"init" not in cmdline(pid)[1:2]]
    assert runtime, cgroup_pids(cg)
    for pid in runtime:
        os.kill(pid, signal.SIGKILL)
    return cg


def one_waiting_python(d, lam, name):
    deploy(lam, name, {"app.py": PY_PROBE}, runtime="python3.13", MemorySize=512)
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    invoke(lam, name, {"allocate_mb": 1})
    wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") == 1, what="a waiting sandbox")
    wait_for(lambda: waiting_sandboxes(d), what="the waiting sandbox's processes")


def test_a_waiting_sandbox_whose_runtime_died_is_not_given_a_function():
    with function_daemon("lamb-prewarm-died-", "--prewarm", "on", metrics=True) as d:
        lam = d.lambda_client()
        one_waiting_python(d, lam, "prewarm-died")
        cg = kill_waiting_runtime(d)
        # Its init reports the end and ends with it: the sandbox is dead.
        wait_for(lambda: not cgroup_pids(cg), what="the waiting sandbox's end")
        # A new revision: the next start is cold, and its pool's sandbox is dead.
        lam.update_function_configuration(FunctionName="prewarm-died", Description="again")
        lam.get_waiter("function_updated_v2").wait(FunctionName="prewarm-died",
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        body, log = invoke(lam, "prewarm-died", {"allocate_mb": 1})
        assert body["env"]["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
        assert "probe says hello" in log and "Runtime.ExitError" not in log
        assert metric(d, "lamb_prewarmed_starts_total", "prewarm-died") == 0
        assert metric(d, "lamb_cold_starts_total", "prewarm-died") == 2


def test_the_pool_lets_go_of_a_waiting_sandbox_whose_runtime_died():
    with function_daemon("lamb-prewarm-gone-", "--prewarm", "on", metrics=True) as d:
        lam = d.lambda_client()
        one_waiting_python(d, lam, "prewarm-gone")
        cg = kill_waiting_runtime(d)
        # Noticed while it waits, without a cold start asking for it.
        wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") == 0, what="the dead sandbox let go")
        wait_for(lambda: not cg.exists(), what="its cgroup removed")
        assert metric(d, "lamb_sandboxes_live") == 1  # the function's own, warm
        assert metric(d, "lamb_memory_reserved_bytes") == 512 << 20


PY_HOLDS = b"""
import os, time

def handler(event, context):
    if event.get("hold"):
        open("/tmp/running", "w").close()
        while not os.path.exists("/tmp/go"):
            time.sleep(0.01)
    return "answered"
"""


def running_holder(d):
    """The cgroup name and the /tmp (seen from the host through its
    process's root) of the sandbox whose handler holds (it made
    /tmp/running)."""
    for cg in sandbox_cgroups(d.cgroup_parent):
        for pid in cgroup_pids(cg):
            tmp = Path(f"/proc/{pid}/root/tmp")
            if (tmp / "running").exists():
                return cg.name, tmp
    return None


def test_the_pool_refills_after_the_answer():
    # A runtime starting beside a cold start would take a core from it: the
    # waiting sandbox taken, none is made until the invocation answered.
    with function_daemon("lamb-prewarm-refill-", "--prewarm", "on", metrics=True) as d:
        lam = d.lambda_client()
        deploy(lam, "prewarm-refill", {"app.py": PY_HOLDS}, runtime="python3.13", Timeout=60)
        lam.get_waiter("function_active_v2").wait(FunctionName="prewarm-refill")
        assert json.loads(lam.invoke(FunctionName="prewarm-refill", Payload=b"{}")["Payload"].read()) == "answered"
        wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") == 1, what="a waiting sandbox")
        lam.update_function_configuration(FunctionName="prewarm-refill", Description="again")
        lam.get_waiter("function_updated_v2").wait(FunctionName="prewarm-refill",
                                                   WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(lambda: lam.invoke(FunctionName="prewarm-refill", Payload=b'{"hold": true}'))
            held, tmp = wait_for(lambda: running_holder(d), what="the handler holding, on the waiting sandbox")
            assert metric(d, "lamb_prewarmed_starts_total", "prewarm-refill") == 1
            # At most the first start's warm sandbox and the held one (its
            # init started as a waiting one's): nothing waits and nothing
            # is being made.
            assert metric(d, "lamb_sandboxes_prewarmed") == 0
            assert {cg.name for cg in waiting_sandboxes(d)} == {held}
            assert len({cg.name for cg in sandbox_cgroups(d.cgroup_parent)}) <= 2
            (tmp / "go").touch()
            assert json.loads(answer.result(timeout=60)["Payload"].read()) == "answered"
        # One or more: two cold starts of the runtime are a rate, whose
        # depth depends on the refill time measured (docs/prewarm.md).
        wait_for(lambda: metric(d, "lamb_sandboxes_prewarmed") >= 1, what="the pool refilled after the answer")


def holders(d):
    """The /tmp (seen from the host) of each sandbox whose handler holds,
    by the sandbox's cgroup name (one directory in each hierarchy)."""
    return {cg.name: tmp for cg in sandbox_cgroups(d.cgroup_parent) for pid in cgroup_pids(cg)
            for tmp in [Path(f"/proc/{pid}/root/tmp")] if (tmp / "running").exists()}


def burst(d, name, n):
    """`n` cold starts of `name` at once: `n` calls that hold until all
    `n` run (each on a sandbox of its own), then go."""
    clients = [d.lambda_client() for _ in range(n)]  # made here: boto3 makes none safely in threads

    def all_holding():
        for call in calls:
            if call.done():  # none answers before the test lets it go
                raise AssertionError(f"a call ended while holding: {call.result()}")
        h = holders(d)
        return len(h) == n and h

    with ThreadPoolExecutor(n) as pool:
        calls = [pool.submit(c.invoke, FunctionName=name, Payload=b'{"hold": true}') for c in clients]
        running = wait_for(all_holding, what=f"{n} handlers holding")
        for tmp in running.values():
            (tmp / "go").touch()
        for call in calls:
            assert json.loads(call.result(timeout=60)["Payload"].read()) == "answered"


BURST = 8
# The burst's warm sandboxes (128 MB each) and two waiting ones.
BURST_CAPACITY_MB = (BURST + 2) * 128


def test_a_burst_of_cold_starts_deepens_the_pool_within_the_memory_capacity_and_it_shrinks_back():
    with function_daemon("lamb-prewarm-burst-", "--prewarm", "on", "--memory-capacity", str(BURST_CAPACITY_MB),
                         "--idle-ttl", "60s", metrics=True) as d:
        lam = d.lambda_client()
        deploy(lam, "prewarm-burst", {"app.py": PY_HOLDS}, runtime="python3.13", MemorySize=128, Timeout=60)
        lam.get_waiter("function_active_v2").wait(FunctionName="prewarm-burst")
        burst(d, "prewarm-burst", BURST)
        assert metric(d, "lamb_cold_starts_total", "prewarm-burst") == BURST

        def within_capacity():
            assert metric(d, "lamb_memory_reserved_bytes") <= BURST_CAPACITY_MB << 20
            assert cgroup_limits_mb(d) <= BURST_CAPACITY_MB
            waiting = metric(d, "lamb_sandboxes_prewarmed")
            assert waiting <= 2, "never more than the memory left by the warm sandboxes"
            return waiting

        # Eight cold starts at once are a rate: more than one waits (one
        # was the rule before), as many as the memory holds.
        wait_for(lambda: within_capacity() == 2, what="two waiting sandboxes")
        # The demand gone, the pool keeps one (until --idle-ttl, whose
        # drain test_the_waiting_sandboxes_go_after_the_idle_ttl checks).
        wait_for(lambda: within_capacity() == 1, what="the pool back to one waiting sandbox")
        for _ in range(20):
            assert within_capacity() == 1


def test_prewarm_off_starts_every_runtime_the_plain_way():
    with function_daemon("lamb-prewarm-off-", "--prewarm", "off", metrics=True) as d:
        lam = d.lambda_client()
        deploy(lam, "prewarm-off", {"app.py": PY_PROBE}, runtime="python3.13")
        lam.get_waiter("function_active_v2").wait(FunctionName="prewarm-off")
        invoke(lam, "prewarm-off", {"allocate_mb": 1})
        lam.update_function_configuration(FunctionName="prewarm-off", Description="again")
        lam.get_waiter("function_updated_v2").wait(FunctionName="prewarm-off")
        invoke(lam, "prewarm-off", {"allocate_mb": 1})
        assert metric(d, "lamb_cold_starts_total", "prewarm-off") == 2
        assert metric(d, "lamb_prewarmed_starts_total", "prewarm-off") == 0
        assert metric(d, "lamb_sandboxes_prewarmed") == 0
