"""A dying daemon: `kill -9` at random points under mixed load (deploys,
versions, aliases, layers, sync and async invokes), round after round on one
data directory. After each restart every acknowledged write is there, the
dead daemon's spawner, sandbox processes and cgroups are gone, nothing is
mounted under the data directory, and a new invocation works; at the end
every accepted async event has run. Then a simulated host reboot: the data
directory survives, every process and cgroup is gone, the daemon starts clean.

LAMB_CHAOS_ROUNDS sets the rounds (50), LAMB_CHAOS_SEED the kill points
(printed; random by default). The figures go to docs/reliability.md."""

import json
import os
import random
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from conftest import (ACCESS_KEY, BUILD, ROLE, ROOT, SECRET_KEY, Daemon, bash_runtime, cgroup_parent_dirs, function_daemon,
                      make_zip, sandbox_cgroups, wait_for)
from test_engine import zip_dir
from test_load import report

HELLO = ROOT / "examples" / "hello-provided" / "build"
ROUNDS = int(os.environ.get("LAMB_CHAOS_ROUNDS", "50"))

pytestmark = pytest.mark.skipif(
    not (BUILD / "provided.al2023" / "usr").is_dir() or not (HELLO / "bootstrap").exists(),
    reason="the runtime trees or examples/hello-provided are not built (make rootfs examples)",
)

# A Runtime API client in bash: logs "handled <request id>", sleeps $SLEEP.
SLOW = bash_runtime(rb'''
  sleep "${SLEEP:-0}"; echo "handled $id"; resp="{}"
''')


def client(d):
    return boto3.client(
        "lambda", endpoint_url=d.endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2,
                      read_timeout=20, max_pool_connections=16),
    )


def children(pid):
    out = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out |= {int(c) for c in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def alive(pid):
    """True while `pid` runs (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def procs_in(cgroups):
    """Processes of any of the named sandbox cgroups, from /proc."""
    names = {p.name for p in cgroups}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/cgroup").read_text()
        except OSError:
            continue
        if any(f"/{n}" in text for n in names):
            found.append(int(entry))
    return found


def mounts_under(path):
    prefix = str(path)
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)]


def leftover_mounts(d):
    """Mounts under a running daemon's data directory that are not its own
    spawner's /tmp file systems made ahead (`lamb-tmp-<spawner pid>-N`):
    what an earlier daemon of that directory left."""
    live = children(d.proc.pid)
    return [m for m in mounts_under(d.data_dir) if not any(f"/lamb-tmp-{p}-" in m for p in live)]


def handled(d, name):
    """Request ids a function's runs logged, read from the log files."""
    ids = set()
    for f in (d.data_dir / "logs" / name).rglob("*"):
        if f.is_file():
            text = f.read_text(errors="replace")
            ids |= set(re.findall(r"(?:request|handled) ([0-9a-f-]{36})", text))
    return ids


class Acked:
    """What the API acknowledged; all of it must survive a kill."""

    def __init__(self):
        self.lock = threading.Lock()
        self.functions = set()
        self.versions = {}  # (function, version) -> Description it was published with
        self.aliases = {}  # (function, alias) -> version
        self.layers = set()  # (layer, version)
        self.events = set()  # accepted async request ids
        self.sync_ok = 0
        self.ops = 0


def load(d, acked, stop, rnd, code):
    """Writers and callers until `stop`; errors once the daemon is gone are expected."""
    lam = client(d)
    rng = random.Random(rnd)

    def guarded(fn):
        def run():
            while not stop.is_set():
                try:
                    fn()
                except (ClientError, BotoCoreError, OSError):
                    if stop.is_set():
                        return
                    time.sleep(0.02)
        return run

    def write():
        op = rng.random()
        with acked.lock:
            fns = sorted(acked.functions)
        if op < 0.3 or not fns:
            name = f"chaos-{rnd}-{rng.randrange(10**6)}"
            lam.create_function(FunctionName=name, Role=ROLE, Runtime="provided.al2023", Handler="bootstrap",
                                Code={"ZipFile": code}, MemorySize=512, Timeout=10)
            with acked.lock:
                acked.functions.add(name)
        elif op < 0.6:
            name = rng.choice(fns)
            desc = f"round {rnd} {rng.randrange(10**6)}"
            lam.update_function_configuration(FunctionName=name, Description=desc)
            v = lam.publish_version(FunctionName=name)
            with acked.lock:
                acked.versions[(name, v["Version"])] = v["Description"]
        elif op < 0.8:
            with acked.lock:
                vs = sorted(acked.versions)
            if not vs:
                return
            name, version = rng.choice(vs)
            alias = f"a{rnd}x{rng.randrange(10**6)}"
            lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
            with acked.lock:
                acked.aliases[(name, alias)] = version
        else:
            layer = f"chaos-layer-{rng.randrange(3)}"
            v = lam.publish_layer_version(LayerName=layer, Content={"ZipFile": make_zip({"f": str(rnd).encode()})})
            with acked.lock:
                acked.layers.add((layer, v["Version"]))
        with acked.lock:
            acked.ops += 1

    def sync_invoke():
        with acked.lock:
            fns = sorted(acked.functions)
        name = rng.choice(fns) if fns and rng.random() < 0.5 else "chaos-probe"
        r = lam.invoke(FunctionName=name, Payload=b'{"name":"chaos"}')
        assert "FunctionError" not in r, r["Payload"].read()
        with acked.lock:
            acked.sync_ok += 1

    def async_invoke():
        r = lam.invoke(FunctionName="chaos-async", InvocationType="Event", Payload=b'{"name":"async"}')
        assert r["StatusCode"] == 202
        with acked.lock:
            acked.events.add(r["ResponseMetadata"]["RequestId"])

    return [threading.Thread(target=guarded(f)) for f in (write, sync_invoke, sync_invoke, async_invoke)]


def check_acked(lam, acked, functions=None):
    """Every acknowledged write (of `functions`, or all) is there."""
    with acked.lock:
        fns = set(acked.functions) if functions is None else set(functions)
        versions = {k: v for k, v in acked.versions.items() if k[0] in fns}
        aliases = {k: v for k, v in acked.aliases.items() if k[0] in fns}
        layers = set(acked.layers)
    for name in fns:
        lam.get_function_configuration(FunctionName=name)
    for (name, version), desc in versions.items():
        assert lam.get_function_configuration(FunctionName=name, Qualifier=version)["Description"] == desc
    for (name, alias), version in aliases.items():
        assert lam.get_alias(FunctionName=name, Name=alias)["FunctionVersion"] == version
    for layer in {lay for lay, _ in layers}:
        # ListLayerVersions answers 50 at a time, newest first: read every page.
        pages = lam.get_paginator("list_layer_versions").paginate(LayerName=layer)
        have = {v["Version"] for page in pages for v in page["LayerVersions"]}
        want = {v for lay, v in layers if lay == layer}
        assert want <= have, (layer, want - have)


def test_kill_9_under_mixed_load():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    seed = int(os.environ.get("LAMB_CHAOS_SEED") or random.randrange(10**6))
    print(f"LAMB_CHAOS_SEED={seed}")
    rng = random.Random(seed)
    code = zip_dir(HELLO)
    acked = Acked()
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="lamb-chaos-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--async-retry-delays", "1s,2s", "--idle-ttl", "30s"]
        d.start()
        try:
            lam = client(d)
            for name in ("chaos-probe", "chaos-async"):
                lam.create_function(FunctionName=name, Role=ROLE, Runtime="provided.al2023",
                                    Handler="bootstrap", Code={"ZipFile": code}, MemorySize=512, Timeout=10)
            swept = {"cgroups": 0, "spawners": 0}
            killed_at = []
            for rnd in range(ROUNDS):
                before = set(acked.functions)
                stop = threading.Event()
                threads = load(d, acked, stop, rnd, code)
                spawners = children(d.proc.pid)
                assert spawners, "the daemon has its spawner"
                for t in threads:
                    t.start()
                delay = rng.uniform(0.2, 1.5)
                time.sleep(delay)
                killed_at.append(round(delay, 2))
                d.proc.send_signal(signal.SIGKILL)
                d.proc.wait()
                d.proc = None
                old = sandbox_cgroups(d.cgroup_parent)
                stop.set()
                for t in threads:
                    t.join(timeout=30)
                assert not any(t.is_alive() for t in threads), "a client hung on a dead daemon"
                d.start()
                lam = client(d)
                # The dead daemon's spawner and sandboxes: gone once the new one swept.
                wait_for(lambda: not any(alive(p) for p in spawners), timeout=20)
                wait_for(lambda: not any(p.exists() for p in old), timeout=20)
                assert not procs_in(old), "a process of the dead daemon's sandboxes remains"
                assert not leftover_mounts(d), leftover_mounts(d)
                swept["cgroups"] += len(old)
                swept["spawners"] += len(spawners)
                # What this round acknowledged (and the last round's, again), then a new call.
                check_acked(lam, acked, set(acked.functions) - before | {n for n in before if n.startswith(f"chaos-{rnd - 1}-")})
                r = lam.invoke(FunctionName="chaos-probe", Payload=b'{"name":"after"}')
                assert r["StatusCode"] == 200 and "FunctionError" not in r
            check_acked(lam, acked)
            missing = lambda: acked.events - handled(d, "chaos-async")  # noqa: E731
            wait_for(lambda: not missing(), timeout=180, every=1)
            events = json.loads(d.lamb("events", "chaos-async", "--json").stdout)["Events"]
            assert not [e for e in events if e["Status"] == "failed"], events
            report("kill_9_under_mixed_load", {
                "rounds": ROUNDS, "seed": seed, "seconds": round(time.time() - t0, 1), "writes_acked": acked.ops,
                "functions": len(acked.functions), "versions": len(acked.versions),
                "aliases": len(acked.aliases), "layer_versions": len(acked.layers),
                "sync_ok": acked.sync_ok, "events_accepted": len(acked.events),
                "events_delivered": len(acked.events - missing()), "old_cgroups_swept": swept["cgroups"],
                "spawners_gone": swept["spawners"], "kill_delay_s": [min(killed_at), max(killed_at)],
                "lost": 0,
            })
        finally:
            if d.proc:
                assert d.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "service-stop"])
def test_a_stop_signalled_to_the_whole_process_group_leaves_nothing(sig):
    """Ctrl-C in `lamb serve`'s terminal (SIGINT) and a service manager's
    stop (SIGTERM to every process of the unit) signal the spawner and the
    sandboxes too: the daemon stops cleanly, the function is not signalled
    (its sandbox leads a session of its own), and the spawner outlives the
    daemon to leave no sandbox, cgroup or mount behind."""
    with function_daemon("lamb-pgrp-", own_session=True) as d:
        lam = client(d)
        lam.create_function(FunctionName="g-hello", Role=ROLE, Runtime="provided.al2023", Handler="bootstrap",
                            Code={"ZipFile": zip_dir(HELLO)}, MemorySize=128, Timeout=10)
        assert lam.invoke(FunctionName="g-hello", Payload=b"{}")["StatusCode"] == 200
        sandboxes = sandbox_cgroups(d.cgroup_parent)
        assert sandboxes, "a warm sandbox waits"
        function_pids = procs_in(sandboxes)
        assert function_pids
        assert all(os.getsid(p) != d.proc.pid for p in function_pids), "each sandbox has a session of its own"
        spawners = children(d.proc.pid)
        os.killpg(d.proc.pid, sig)
        assert d.proc.wait(timeout=30) == 0, f"lamb serve exited {d.proc.returncode} on {sig!r}"
        d.proc = None
        wait_for(lambda: not any(alive(p) for p in spawners), what="the spawner's exit after its clean-up")
        assert not any(alive(p) for p in function_pids)
        assert not sandbox_cgroups(d.cgroup_parent)
        assert not [p for p in cgroup_parent_dirs(d.cgroup_parent) if p.is_dir()], "the spawner removed the parent cgroup"
        assert not mounts_under(d.data_dir)


def test_host_reboot_starts_clean():
    """Every process (daemon, spawner, sandboxes) killed at once, the cgroups
    and mounts gone as after a reboot; the data directory survives."""
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-reboot-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--async-retry-delays", "1s,2s"]
        d.start()
        try:
            lam = client(d)
            code = zip_dir(HELLO)
            lam.create_function(FunctionName="r-hello", Role=ROLE, Runtime="provided.al2023", Handler="bootstrap",
                                Code={"ZipFile": code}, MemorySize=512, Timeout=10)
            v = lam.publish_version(FunctionName="r-hello")["Version"]
            lam.create_alias(FunctionName="r-hello", Name="live", FunctionVersion=v)
            layer = lam.publish_layer_version(LayerName="r-layer", Content={"ZipFile": make_zip({"f": b"x"})})
            lam.create_function(FunctionName="r-slow", Role=ROLE, Runtime="provided.al2", Handler="h",
                                Code={"ZipFile": make_zip({"bootstrap": (SLOW, 0o755)})}, MemorySize=256,
                                Timeout=10, Environment={"Variables": {"SLEEP": "0.5"}})
            lam.put_function_concurrency(FunctionName="r-slow", ReservedConcurrentExecutions=1)
            assert lam.invoke(FunctionName="r-hello:live", Payload=b"{}")["StatusCode"] == 200
            accepted = {lam.invoke(FunctionName="r-slow", InvocationType="Event", Payload=b"{}")
                        ["ResponseMetadata"]["RequestId"] for _ in range(10)}
            # One at a time, half a second each: once the first is handled,
            # the rest are still queued or running, however fast the machine.
            wait_for(lambda: handled(d, "r-slow"), timeout=60)
            assert len(handled(d, "r-slow")) < len(accepted), "all ran before the reboot; it proves nothing"
            # The reboot: the spawner first (so that nothing cleans up), the daemon, every sandbox process.
            spawners = children(d.proc.pid)
            old = sandbox_cgroups(d.cgroup_parent)
            assert old, "sandboxes were running"
            for p in spawners:
                os.kill(p, signal.SIGKILL)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            d.proc = None
            for cg in old:
                if (cg / "freezer.state").exists():
                    (cg / "freezer.state").write_text("THAWED")
            for pid in procs_in(old):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_for(lambda: not procs_in(old), timeout=10)
            for cg in sorted(old, key=lambda p: -len(str(p))):
                # A sandbox's CPU groups first (lamb init's and the function's: docs/sandbox.md).
                for group in ("init", "function"):
                    wait_for(lambda: _rmdir(cg / group), timeout=10)
                wait_for(lambda: _rmdir(cg), timeout=10)
            for target in sorted(mounts_under(d.data_dir), key=len, reverse=True):
                os.system(f"umount -l '{target}'")
            leftovers = sandbox_dirs(d)
            d.start()
            lam = client(d)
            # Everything there, the stale sandbox state gone, new calls work, the queue drains.
            assert lam.get_alias(FunctionName="r-hello", Name="live")["FunctionVersion"] == v
            have = {x["Version"] for x in lam.list_layer_versions(LayerName="r-layer")["LayerVersions"]}
            assert layer["Version"] in have
            r = lam.invoke(FunctionName="r-hello:live", Payload=b"{}")
            assert r["StatusCode"] == 200 and "FunctionError" not in r
            assert not leftovers & sandbox_dirs(d), leftovers & sandbox_dirs(d)
            wait_for(lambda: accepted <= handled(d, "r-slow"), timeout=60, every=0.5)
            report("host_reboot_starts_clean", {"events_accepted": len(accepted),
                                                "events_delivered": len(accepted & handled(d, "r-slow")),
                                                "stale_sandbox_dirs": len(leftovers), "lost": 0})
        finally:
            if d.proc:
                assert d.stop() == 0


def sandbox_dirs(d):
    """The per-sandbox state directories (not the shared root and top layers)."""
    base = d.data_dir / "sandboxes"
    names = os.listdir(base) if base.exists() else []
    return {n for n in names if re.fullmatch(r"lamb-[0-9a-f]{16}", n)}


def _rmdir(path):
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True
