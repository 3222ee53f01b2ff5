"""Several daemons on one machine. Each owns the sandboxes of its data
directory (a cgroup parent derived from it), so starting, stopping (SIGTERM
or kill -9) and restarting one never touches another's calls in flight; a
second daemon on a data directory in use exits at once, having changed
nothing; after a kill -9 the restart's sweep removes everything the dead
daemon left, and nothing of the other's.

Every call in flight is an event, not a sleep: the function writes a marker
in a served directory and waits there until the test opens its gate."""

import json
import os
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from conftest import ACCESS_KEY, BUILD, LAMB, ROLE, SECRET_KEY, Daemon, free_port, make_zip, sandbox_cgroups, wait_for
from test_chaos import alive, children, leftover_mounts, mounts_under, procs_in

GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

# Says it started (a file named after its token), waits for its own gate
# (or every gate's, opened when the module ends), answers its token.
GATED = b'''
import os, time
def handler(event, context):
    token = event["token"]
    open("/mnt/gate/started-" + token, "w").close()
    while not any(os.path.exists("/mnt/gate/open-" + t) for t in (token, "all")):
        time.sleep(0.02)
    return {"token": token}
'''


class Call:
    """One synchronous invocation in a thread, held at its gate."""

    def __init__(self, daemon, token):
        self.daemon, self.token, self.result = daemon, token, None
        lam = boto3.client(
            "lambda", endpoint_url=daemon.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=900),
        )

        def run():
            try:
                r = lam.invoke(FunctionName="gated", Payload=json.dumps({"token": token}).encode())
                self.result = (r["StatusCode"], r.get("FunctionError"), json.loads(r["Payload"].read()))
            except Exception as e:  # noqa: BLE001 - a killed daemon's call fails somehow; the test says which matter
                self.result = ("failed", repr(e))
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        wait_for(lambda: (daemon.gate / f"started-{token}").exists() or self.result, timeout=120)
        assert (daemon.gate / f"started-{token}").exists(), f"the call never started: {self.result}"

    def finish(self):
        """Opens the gate; answers what the call answered."""
        (self.daemon.gate / f"open-{self.token}").touch()
        self.thread.join(timeout=120)
        assert not self.thread.is_alive(), "the call hung"
        return self.result

    def completes(self):
        result = self.finish()
        assert result == (200, None, {"token": self.token}), result


def gated_daemon(tmp: Path):
    d = Daemon(tmp)
    d.runtimes_dir = BUILD
    d.gate = tmp / "gate"
    d.gate.mkdir()
    d.extra_args = ["--filesystem", f"gate={d.gate}"]
    return d


def deploy(d):
    d.lambda_client().create_function(
        FunctionName="gated", Role=ROLE, Runtime="python3.11", Handler="app.handler",
        Code={"ZipFile": make_zip({"app.py": GATED})}, MemorySize=128, Timeout=900,
        FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])


@pytest.fixture(scope="module")
def pair():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-multi-a-") as ta, \
            tempfile.TemporaryDirectory(prefix="lamb-multi-b-") as tb:
        a, b = gated_daemon(Path(ta)), gated_daemon(Path(tb))
        try:
            for d in (a, b):
                d.start()
                deploy(d)
            yield a, b
        finally:
            for d in (a, b):
                (d.gate / "open-all").touch()
                if d.proc:
                    d.stop()


def untouched(d, cgroups):
    """The sandbox cgroups of `d`'s call in flight are all still there, with processes."""
    assert cgroups and all(c.exists() for c in cgroups), "the other daemon's sandbox was removed"
    assert procs_in(cgroups), "the other daemon's sandbox lost its processes"
    assert d.proc.poll() is None


def parent_dirs(parent):
    """The cgroup parent's directories, in every hierarchy."""
    return [c / parent for c in [Path("/sys/fs/cgroup"), *Path("/sys/fs/cgroup").iterdir()] if (c / parent).is_dir()]


def kill_9(d, spawner_too=False):
    """SIGKILL to the daemon (its spawner first when `spawner_too`, so that
    nothing cleans up and the restart's sweep has it all to do)."""
    spawners = children(d.proc.pid)
    assert spawners, "the daemon has its spawner"
    if spawner_too:
        for p in spawners:
            os.kill(p, signal.SIGKILL)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.proc = None
    return spawners


@pytest.mark.parametrize("victim_index", [0, 1], ids=["a-stops", "b-stops"])
def test_each_starts_and_stops_while_the_other_serves(pair, victim_index):
    victim, survivor = pair[victim_index], pair[1 - victim_index]
    held = Call(survivor, f"held-{victim_index}")
    cgroups = sandbox_cgroups(survivor.cgroup_parent)
    assert victim.cgroup_parent != survivor.cgroup_parent

    # SIGTERM, and a start while the other's call is in flight.
    Call(victim, f"v{victim_index}-term").completes()
    assert victim.stop() == 0
    untouched(survivor, cgroups)
    victim.start()
    untouched(survivor, cgroups)

    # kill -9 of the daemon alone, with a call in flight: its spawner removes
    # its sandboxes; the restart at once waits for that, then sweeps.
    doomed = Call(victim, f"v{victim_index}-kill")
    old = sandbox_cgroups(victim.cgroup_parent)
    spawners = kill_9(victim)
    victim.start()
    assert not any(alive(p) for p in spawners), "the restart waited for the dead daemon's spawner"
    assert not any(c.exists() for c in old) and not procs_in(old)
    doomed.finish()
    untouched(survivor, cgroups)

    # kill -9 of the spawner and the daemon: the restart's sweep removes every
    # cgroup, process and mount they left, and nothing of the other's.
    crashed = Call(victim, f"v{victim_index}-crash")
    old = sandbox_cgroups(victim.cgroup_parent)
    kill_9(victim, spawner_too=True)
    assert any(c.exists() for c in old), "the crash left sandbox cgroups for the sweep"
    victim.start()
    assert not any(c.exists() for c in old), [c for c in old if c.exists()]
    assert not procs_in(old), "a process of the dead daemon's sandboxes remains"
    # The new spawner's own /tmp file systems, made ahead, are its to keep.
    left = leftover_mounts(victim)
    assert not left, left
    crashed.finish()
    untouched(survivor, cgroups)

    Call(victim, f"v{victim_index}-after").completes()
    held.completes()


def test_a_restart_waits_for_the_dead_daemons_spawner(pair):
    """The daemon's lock ends with the daemon (its spawner, a fork, closed
    its copy), the spawner's lock with the spawner: a restart after a
    kill -9 is not refused, but waits until the old spawner has destroyed
    its sandboxes. The old spawner is stopped (SIGSTOP) meanwhile, so the
    wait is seen, however fast the machine."""
    b = pair[1]
    doomed = Call(b, "doomed-wait")
    old = sandbox_cgroups(b.cgroup_parent)
    spawners = children(b.proc.pid)
    for p in spawners:
        os.kill(p, signal.SIGSTOP)
    try:
        kill_9(b)
        logged = b.log.stat().st_size  # the log spans every start of b
        started = threading.Thread(target=b.start)
        started.start()
        wait_for(lambda: b.proc and b"waiting for a dead daemon's spawner" in b.log.read_bytes()[logged:], timeout=30)
        assert b.proc.poll() is None, "the restart was refused"
        assert all(c.exists() for c in old), "nothing was swept while the old spawner held its lock"
    finally:
        for p in spawners:
            os.kill(p, signal.SIGCONT)
    started.join(timeout=60)
    assert not started.is_alive() and b.proc.poll() is None
    assert not any(alive(p) for p in spawners) and not any(c.exists() for c in old)
    doomed.finish()
    Call(b, "after-wait").completes()


def snapshot(d):
    """What a refused daemon must not change."""
    data = d.data_dir
    return {
        "mode": data.stat().st_mode & 0o777,
        "files": {p.name: (p.stat().st_mode, p.stat().st_mtime_ns, p.stat().st_size)
                  for p in data.iterdir() if p.is_file() and not p.name.startswith("lamb.db")},
        "locks": [(data / n).read_text() for n in ("lock", "spawner.lock") if (data / n).exists()],
        "sandboxes": sorted(os.listdir(data / "sandboxes")),
        "cgroups": sorted(sandbox_cgroups(d.cgroup_parent)),
        "mounts": mounts_under(d.tmp),
    }


def test_a_second_daemon_on_a_used_data_directory_is_refused(pair):
    a = pair[0]
    held = Call(a, "held-refused")
    # Loosened on purpose: a refused daemon must not even fix the mode.
    os.chmod(a.data_dir, 0o755)
    before = snapshot(a)
    try:
        p = subprocess.run(
            [LAMB, "serve", "--listen", f"127.0.0.1:{free_port()}", "--url-listen", f"127.0.0.1:{free_port()}",
             "--data-dir", str(a.data_dir), "--runtimes-dir", str(BUILD)],
            env=a.env(), capture_output=True, text=True, timeout=60)
        assert p.returncode != 0, p.stderr
        assert str(a.data_dir.resolve()) in p.stderr and f"pid {a.proc.pid}" in p.stderr, p.stderr
        assert snapshot(a) == before
    finally:
        os.chmod(a.data_dir, 0o700)
    untouched(a, before["cgroups"])
    held.completes()


def test_a_daemon_that_cannot_bind_kills_nothing(pair):
    a = pair[0]
    held = Call(a, "held-bind")
    cgroups = sandbox_cgroups(a.cgroup_parent)
    with tempfile.TemporaryDirectory(prefix="lamb-multi-c-") as tc:
        c = Daemon(Path(tc))
        c.runtimes_dir = BUILD
        p = subprocess.run(
            [LAMB, "serve", "--listen", f"127.0.0.1:{a.port}", "--url-listen", f"127.0.0.1:{free_port()}",
             "--data-dir", str(c.data_dir), "--runtimes-dir", str(BUILD)],
            env=c.env(), capture_output=True, text=True, timeout=60)
        assert p.returncode != 0 and "listen on" in p.stderr, p.stderr
        # Its spawner, gone with it, removed its own (empty) parent cgroup.
        wait_for(lambda: not parent_dirs(c.cgroup_parent), timeout=30)
    untouched(a, cgroups)
    held.completes()
