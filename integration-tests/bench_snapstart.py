"""The SnapStart benchmark (`make bench`, or run alone as root with the
integration tests' venv): a daemon (`$LAMB_BIN`, else target/release/lamb,
else target/debug/lamb) over rootfs/build, the FastAPI + Mangum example
(examples/fastapi-snapstart, `make examples`) at 128 and 1792 MB, and its
section of docs/benchmarks.md (or $BENCH_OUT) between its markers:

- cold: `$LATEST` invoked through the API, a new sandbox each time (an
  environment variable changed before each call, outside the clock), so
  each call imports FastAPI and builds the app;
- restored: published SnapStart versions (one per run, all snapshotted
  first), each invoked once, so each call restores a snapshot;
- warm: each version once more right after its restore, in the sandbox
  the restore left: the function's own cost, which a restored call pays
  too.

Each figure is the client's Invoke round trip (on the same machine),
100 ms idle before each call, and the REPORT's Init or Restore Duration.
Restored and warm calls alternate between two clients, boto3 and a lean
one (the same SigV4 signature from botocore, sent on a kept-alive
http.client connection), so that boto3's own cost shows apart from lamb's.
For restored calls the daemon's debug log (`LAMB_LOG`, set here) gives the
breakdown: the restore's steps (`snapstart: restored`) and the call's
(`snapstart: restored invocation answered`); and the sandbox's cgroup
(cpuacct) and its processes' run time (/proc/PID/task/*/schedstat) give the
CPU each restored and warm call cost the sandbox, `lamb init` apart from
the runtime.
"""

import base64
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

here = Path(__file__).resolve().parent
root = here.parent
if "LAMB_BIN" not in os.environ:
    release = root / "target" / "release" / "lamb"
    os.environ["LAMB_BIN"] = str(release if release.exists() else root / "target" / "debug" / "lamb")
sys.path.insert(0, str(here))

from bench_doc import replace_section  # noqa: E402
from conftest import ACCESS_KEY, BUILD, ROLE, SECRET_KEY, Daemon, make_zip, sandbox_cgroups, wait_for  # noqa: E402
from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

# The breakdown's lines (engine/snapstart.rs and engine/run.rs).
os.environ.setdefault(
    "LAMB_LOG",
    "info,netlink_packet_route=error,lamb_daemon::engine::snapstart=debug,lamb_daemon::engine::run=debug",
)

RUNS = int(os.environ.get("SNAPSTART_BENCH_RUNS", "15"))
APP = root / "examples" / "fastapi-snapstart"
EVENT = (APP / "event.json").read_bytes()


def bundle():
    files = {}
    for p in sorted((APP / "build").rglob("*")):
        if p.is_file():
            files[str(p.relative_to(APP / "build"))] = (p.read_bytes(), p.stat().st_mode & 0o777)
    return make_zip(files)


class Lean:
    """Invoke without boto3: botocore's SigV4 signature and one kept-alive
    connection, what any lean client pays."""

    def __init__(self, endpoint):
        self.host = endpoint.removeprefix("http://")
        self.conn = http.client.HTTPConnection(self.host)
        self.signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1")

    def invoke(self, FunctionName, Qualifier, Payload, LogType):  # noqa: N803 (boto3's names)
        path = f"/2015-03-31/functions/{FunctionName}/invocations?Qualifier={Qualifier}"
        req = AWSRequest("POST", f"http://{self.host}{path}", data=Payload, headers={"X-Amz-Log-Type": LogType})
        self.signer.add_auth(req)
        try:
            self.conn.request("POST", path, body=Payload, headers=dict(req.headers))
            resp = self.conn.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The daemon closed the idle connection (the snapshots take a
            # while): nothing was sent that it read; a new one.
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host)
            self.conn.request("POST", path, body=Payload, headers=dict(req.headers))
            resp = self.conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body)
        out = {"Payload": _Body(body), "LogResult": resp.getheader("X-Amz-Log-Result")}
        if resp.getheader("X-Amz-Function-Error"):
            out["FunctionError"] = resp.getheader("X-Amz-Function-Error")
        return out


class _Body:
    def __init__(self, data):
        self.data = data

    def read(self):
        return self.data


def sandbox_cpu(parent):
    """CPU time (ns) so far of each sandbox of the daemon: its cgroup's
    `cpuacct.usage` and, by command name, its processes' run time; and
    whether it is frozen (a snapshot)."""
    out = {}
    for cg in sandbox_cgroups(parent):
        if not (cg / "cpuacct.usage").exists():
            continue
        try:
            state = next(Path("/sys/fs/cgroup").glob(f"*/{parent}/{cg.name}/freezer.state"), None)
            frozen = state is not None and state.read_text().strip() == "FROZEN"
            total = int((cg / "cpuacct.usage").read_text())
            procs = (cg / "cgroup.procs").read_text().split()
        except (FileNotFoundError, ValueError):
            continue
        by_comm = {}
        for pid in procs:
            try:
                comm = Path(f"/proc/{pid}/comm").read_text().strip()
                for task in Path(f"/proc/{pid}/task").iterdir():
                    ran = int((task / "schedstat").read_text().split()[0])
                    by_comm[comm] = by_comm.get(comm, 0) + ran
            except (FileNotFoundError, ProcessLookupError, ValueError):
                # A thread or process that ended meanwhile.
                continue
        out[cg.name] = (total, by_comm, frozen)
    return out


def thawed(before, after):
    """The sandbox a restore thawed between two `sandbox_cpu` readings
    (not a refill's, still initialising, nor another version's snapshot)."""
    return next((n for n, v in before.items() if v[2] and n in after and not after[n][2]), None)


def cpu_spent(before, after, sandbox):
    """(ms of the sandbox's cgroup, ms of its `lamb init`, ms of the rest)
    between two `sandbox_cpu` readings."""
    (total0, comms0, _), (total, comms, _) = before[sandbox], after[sandbox]
    spent = (total - total0) / 1e6
    init = sum(v - comms0.get(c, 0) for c, v in comms.items() if c == "lamb") / 1e6
    return spent, init, spent - init


def invoke(lam, name, qualifier, parent=None, cpu=None, sandbox=None):
    """One call: (ms, Init/Restore/Warm, its duration); with `parent`, the
    CPU the call cost its sandbox (the one restored, else `sandbox`) is
    appended to `cpu`, and the sandbox's name returned last."""
    time.sleep(0.1)
    before = sandbox_cpu(parent) if parent else None
    start = time.monotonic()
    r = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=EVENT, LogType="Tail")
    ms = (time.monotonic() - start) * 1000
    if parent:
        after = sandbox_cpu(parent)
        sandbox = sandbox or thawed(before, after)
        if sandbox in before and sandbox in after:
            cpu.append(cpu_spent(before, after, sandbox))
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r and body.get("statusCode") == 200, body
    log = base64.b64decode(r["LogResult"]).decode()
    found = re.search(r"(Init|Restore) Duration: ([0-9.]+) ms", log)
    if not found:
        return ms, "Warm", 0.0, sandbox
    return ms, found.group(1), float(found.group(2)), sandbox


def cold(lam, name):
    out = []
    for i in range(RUNS):
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"RUN": str(i)}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        ms, kind, init, _ = invoke(lam, name, "$LATEST")
        assert kind == "Init"
        out.append((ms, init))
    return out


def restored(lam, lean, name, parent):
    versions = []
    for i in range(RUNS):
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"VERSION_RUN": str(i)}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        versions.append(lam.publish_version(FunctionName=name)["Version"])

    def all_active():
        states = [lam.get_function_configuration(FunctionName=name, Qualifier=v)["State"] for v in versions]
        assert "Failed" not in states, states
        return all(s == "Active" for s in states)

    wait_for(all_active, timeout=600, every=0.5, what="every snapshot")
    # By client: boto3 and the lean one, taking turns.
    out = {"boto3": [], "lean": []}
    warm = {"boto3": [], "lean": []}
    cpu = {"restored": [], "warm": []}
    for i, v in enumerate(versions):
        which, client = ("boto3", lam) if i % 2 == 0 else ("lean", lean)
        ms, kind, restore, sandbox = invoke(client, name, v, parent, cpu["restored"])
        assert kind == "Restore"
        out[which].append((ms, restore))
        ms, kind, _, _ = invoke(client, name, v, parent, cpu["warm"], sandbox)
        assert kind == "Warm"
        warm[which].append(ms)
    return out, warm, cpu


def breakdown(log, name):
    """The restored calls' steps of `name` from the daemon's debug log (µs
    since the restore began, and since the engine took the call)."""
    steps = {}
    for line in log.splitlines():
        if f"function={name} " not in line + " " or "snapstart: restored" not in line:
            continue
        for key, value in re.findall(r"(\w+)_us=(\d+)", line):
            steps.setdefault(key, []).append(int(value) / 1000)
    return steps


def stats(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]  # noqa: E731
    return f"{xs[0]:.1f} | {statistics.median(xs):.1f} | {q(0.9):.1f} | {xs[-1]:.1f}"


def p50_p90(xs):
    """`p50 (p90)`, one table cell."""
    xs = sorted(xs)
    return f"{statistics.median(xs):.1f} ({xs[min(len(xs) - 1, int(round(0.9 * (len(xs) - 1))))]:.1f})"


def main():
    if os.geteuid() != 0:
        sys.exit("bench_snapstart.py: the daemon runs as root only")
    if not (APP / "build" / "app.py").exists():
        sys.exit("bench_snapstart.py: make examples first")
    out_doc = Path(os.environ.get("BENCH_OUT", root / "docs" / "benchmarks.md"))
    rows, steps_rows, cpu_rows = [], [], []
    code = bundle()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lamb-snap-bench-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--idle-ttl", "2s", "--memory-capacity", "1000000"]
        d.start()
        try:
            lam = d.lambda_client()
            lean = Lean(d.endpoint)
            for mb in (128, 1792):
                name = f"fastapi-{mb}"
                lam.create_function(FunctionName=name, Role=ROLE, Runtime="python3.13", Handler="app.handler",
                                    Code={"ZipFile": code}, MemorySize=mb, Timeout=30,
                                    SnapStart={"ApplyOn": "PublishedVersions"})
                runs = cold(lam, name)
                rows.append((f"FastAPI + Mangum, {mb} MB, cold", [r[0] for r in runs], [r[1] for r in runs]))
                runs, warm, cpu = restored(lam, lean, name, d.cgroup_parent)
                for client in ("boto3", "lean"):
                    rows.append((f"FastAPI + Mangum, {mb} MB, restored ({client})",
                                 [r[0] for r in runs[client]], [r[1] for r in runs[client]]))
                    rows.append((f"FastAPI + Mangum, {mb} MB, warm after its restore ({client})", warm[client], None))
                for kind in ("restored", "warm"):
                    cpu_rows.append((f"{mb} MB, {kind}", cpu[kind]))
                lam.delete_function(FunctionName=name)
                steps_rows.append((mb, breakdown(d.log.read_text(errors="replace"), name)))
        finally:
            d.stop()
    binary = "release" if "release" in os.environ["LAMB_BIN"] else "debug"
    lines = [
        f"## SnapStart (issue 16), {time.strftime('%Y-%m-%d')}",
        "",
        f"`integration-tests/bench_snapstart.py` ({binary} build, {os.cpu_count()} CPUs): the FastAPI + Mangum "
        "example (examples/fastapi-snapstart, python3.13) answering an HTTP API `GET /hello` event. cold: "
        "`$LATEST` in a new sandbox each call; restored: a published SnapStart version's snapshot each call "
        "(one version per run, all snapshotted first; restored and warm calls alternate between boto3 and a lean "
        "client, botocore's signature on a kept-alive connection). Invoke is the client's round trip through the "
        f"API, 100 ms idle before each of {RUNS} calls; Init/Restore is the REPORT's figure (ms). "
        f"The machine's load average was {load:.1f} at the start.",
        "",
        "| series | Invoke min | p50 | p90 | max | Init/Restore min | p50 | p90 | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, invoke_ms, phase_ms in rows:
        phase = stats(phase_ms) if phase_ms else "- | - | - | -"
        lines.append(f"| {label} | {stats(invoke_ms)} | {phase} |")
    lines += [
        "",
        "A restored call inside the daemon (ms, p50 (p90) over the restored calls, from the daemon's "
        "debug log). thawed: the freezer's thaw, since the restore began; init quota: init's CPU quota and weight "
        "written; runtime ready: `Restore` sent, init's answer to `restore/next`, the runtime's reseed and "
        "after-restore hooks and its first `/next` (the REPORT's Restore Duration); invocation quota: the "
        "memory's quota written back; until restored: since the engine took the call (admission and the "
        "snapshot's take included); answered: the engine's whole call, the handler's work and the answer "
        "included.",
        "",
        "| MB | thawed | init quota | runtime ready | invocation quota | until restored | answered |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = ("thawed", "init_quota", "runtime_ready", "invocation_quota", "until_restored", "answered")
    for mb, steps in steps_rows:
        cells = " | ".join(p50_p90(steps[k]) if steps.get(k) else "-" for k in keys)
        lines.append(f"| {mb} | {cells} |")
    lines += [
        "",
        "CPU each call cost its sandbox (ms, p50 (p90)): its cgroup's cpuacct, and of it "
        "`lamb init`'s threads and the runtime's (python) by their schedstat run time.",
        "",
        "| call | sandbox cgroup | lamb init | runtime |",
        "|---|---|---|---|",
    ]
    for label, spent in cpu_rows:
        cells = " | ".join(p50_p90([c[i] for c in spent]) for i in range(3))
        lines.append(f"| {label} | {cells} |")
    section = "\n".join(lines)
    print(section)
    replace_section(out_doc, "snapstart-bench", section)


if __name__ == "__main__":
    main()
