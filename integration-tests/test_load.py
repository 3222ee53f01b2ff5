"""Load: the account concurrency limit held exactly under twice as many
parallel callers (the rest 429, none hang), and a long run of invocations
across 50 functions with no growth in the daemon's memory, descriptors,
the host's mounts or lamb's cgroups (real daemon, real sandboxes).

LAMB_LOAD_INVOCATIONS sets the long run's length: 10,000 in `make test`,
100,000 in `make soak`. The figures go to docs/reliability.md."""

import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, BUILD, LAMB, ROLE, ROOT, SECRET_KEY, Daemon, bash_runtime, make_zip, sandbox_cgroups, wait_for
from test_engine import zip_dir

import boto3

HELLO = ROOT / "examples" / "hello-provided" / "build"
LIMIT = 20
IDLE_TTL_S = 2
INVOCATIONS = int(os.environ.get("LAMB_LOAD_INVOCATIONS", "10000"))
FUNCTIONS = 50
# An idle spawner keeps at most 2 /tmp file systems made ahead for each of the
# 4 sizes last asked for (lamb-sandbox's tmp_disk.rs).
IDLE_TMP_MOUNTS = 8
GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"

pytestmark = pytest.mark.skipif(
    not (BUILD / "provided.al2" / "usr").is_dir() or not (HELLO / "bootstrap").exists(),
    reason="the runtime trees or examples/hello-provided are not built (make rootfs examples)",
)

# A Runtime API client in bash: each invocation waits at a gate the test
# opens (a file in the directory served at /mnt/gate) and answers the
# wall-clock times it started and ended, so the test can count the overlap.
# Every caller of a wave reaches admission while the gate is shut, however
# fast or slow the machine.
SLEEPER = bash_runtime(rb'''
  start=$EPOCHREALTIME; while [ ! -e /mnt/gate/open ]; do sleep 0.02; done; end=$EPOCHREALTIME
  resp="{\"start\":$start,\"end\":$end}"
''')


def sample(d, parent):
    pid = d.proc.pid
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
    mountinfo = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    tmp_mounts = sorted(m for m in mountinfo if m.startswith(f"{d.data_dir}/") and "/lamb-tmp-" in m)
    return {
        "rss_mb": round(rss_kb / 1024, 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        # The spawner's /tmp file systems made ahead come and go with what
        # it was last asked for: counted apart, and bounded when idle.
        "mounts": sum(1 for m in mountinfo if "/lamb-tmp-" not in m),
        # This daemon's only: another's on the same machine is not its doing.
        "tmp_mounts": len(tmp_mounts),
        "tmp_mount_points": " ".join(tmp_mounts),
        "cgroups": len(sandbox_cgroups(parent)),
    }


def start_daemon(tmp, *extra):
    d = Daemon(Path(tmp))
    d.runtimes_dir = BUILD
    d.extra_args = ["--idle-ttl", f"{IDLE_TTL_S}s", *extra]
    d.start()
    return d


def client(d, pool=64):
    return boto3.client(
        "lambda", endpoint_url=d.endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                      read_timeout=30, max_pool_connections=pool),
    )


def report(name, figures):
    """One line per test in the pytest output (-s) and a file for the docs."""
    line = json.dumps({"test": name, **figures}, sort_keys=True)
    print(line)
    out = os.environ.get("LAMB_RELIABILITY_OUT")
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def test_twice_the_concurrency_limit():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-load-") as tmp:
        gate = Path(tmp) / "gate"
        gate.mkdir()
        d = start_daemon(tmp, "--concurrency-limit", str(LIMIT), "--filesystem", f"gate={gate}")
        parent = d.cgroup_parent
        try:
            lam = client(d)
            lam.create_function(FunctionName="sleeper", Role=ROLE, Runtime="provided.al2", Handler="h",
                                Code={"ZipFile": make_zip({"bootstrap": (SLEEPER, 0o755)})},
                                MemorySize=256, Timeout=300,
                                FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])

            def wave():
                """2 x LIMIT callers at once; the gate opens once LIMIT of them were refused."""
                (gate / "open").unlink(missing_ok=True)
                barrier = threading.Barrier(2 * LIMIT)
                results = [None] * (2 * LIMIT)

                def caller(i):
                    barrier.wait(timeout=60)
                    t0 = time.time()
                    try:
                        r = lam.invoke(FunctionName="sleeper", Payload=b"{}")
                        results[i] = (r["StatusCode"], json.loads(r["Payload"].read()), time.time() - t0, t0)
                    except ClientError as e:
                        results[i] = (e.response["ResponseMetadata"]["HTTPStatusCode"], None, time.time() - t0, t0)
                threads = [threading.Thread(target=caller, args=(i,)) for i in range(2 * LIMIT)]
                for t in threads:
                    t.start()
                wait_for(lambda: sum(1 for r in results if r and r[0] == 429) >= LIMIT, timeout=120)
                (gate / "open").touch()
                for t in threads:
                    t.join(timeout=120)
                assert not any(t.is_alive() for t in threads), "a caller hung"
                return results

            # A first wave brings the daemon's thread pools and caches up to
            # size; the idle baseline is taken once its sandboxes expired.
            wave()
            wait_for(lambda: not sandbox_cgroups(parent), timeout=30)
            time.sleep(1)
            idle = sample(d, parent)
            waves = []
            for _ in range(3):
                results = wave()
                codes = [r[0] for r in results]
                ok = [r for r in results if r[0] == 200]
                first = min(r[3] for r in results)
                late = max(r[3] for r in results) - first
                assert codes.count(200) == LIMIT and codes.count(429) == LIMIT, (
                    codes, late, sorted((round(r[3] - first, 3), r[0], round(r[2], 3)) for r in results))
                # The refusals came while every admitted run held its slot.
                first_end = min(r[1]["end"] for r in ok)
                assert all(r[3] + r[2] <= first_end for r in results if r[0] == 429), "a 429 came after a run ended"
                # The overlap of the runs themselves, from the sandboxes' clocks.
                edges = sorted([(r[1]["start"], 1) for r in ok] + [(r[1]["end"], -1) for r in ok])
                running = peak = 0
                for _, step in edges:
                    running += step
                    peak = max(peak, running)
                assert peak == LIMIT, f"{peak} ran at once, not {LIMIT}"
                waves.append({"ok": codes.count(200), "throttled": codes.count(429), "peak": peak})
            loaded = sample(d, parent)
            wait_for(lambda: not sandbox_cgroups(parent), timeout=30)
            time.sleep(1)
            # The spawner removes used /tmp images while idle: wait for that, not a set time.
            wait_for(lambda: sample(d, parent)["tmp_mounts"] <= IDLE_TMP_MOUNTS, timeout=30,
                     what="the used /tmp images removed")
            after = sample(d, parent)
            report("twice_the_concurrency_limit",
                   {"limit": LIMIT, "callers": 2 * LIMIT, "waves": waves, "idle": idle, "loaded": loaded,
                    "after": after})
            assert after["fds"] <= idle["fds"] + 4, (idle, after)
            assert after["rss_mb"] <= idle["rss_mb"] * 1.25 + 8, (idle, after)
            assert after["mounts"] == idle["mounts"] and after["cgroups"] == 0, (idle, after)
            assert after["tmp_mounts"] <= IDLE_TMP_MOUNTS, after["tmp_mount_points"]
        finally:
            assert d.stop() == 0


def test_long_run_across_50_functions():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-load-") as tmp:
        # 1792 MB is about one vCPU: at 128 MB the CPU quota throttles a
        # busy warm sandbox. The capacity is bookkeeping; they use little.
        d = start_daemon(tmp, "--memory-capacity", "1000000")
        parent = d.cgroup_parent
        try:
            lam = client(d)
            code = zip_dir(HELLO)
            names = [f"load-{i:02}" for i in range(FUNCTIONS)]
            for n in names:
                lam.create_function(FunctionName=n, Role=ROLE, Runtime="provided.al2023", Handler="bootstrap",
                                    Code={"ZipFile": code}, MemorySize=1792, Timeout=10)
            idle_before = sample(d, parent)

            def run(total):
                args = [LAMB, "load-engine", "--total", str(total), "--callers", "8"]
                for n in names:
                    args += ["--function", n]
                p = subprocess.run(args, env=d.env(), capture_output=True, text=True, timeout=900)
                assert p.returncode == 0, p.stderr
                got = json.loads(p.stdout)
                assert got["ok"] == total and got["errors"] == got["throttled"] == got["failed"] == 0, got
                return got

            run(2000)  # warm-up: every function's sandboxes exist
            samples = [sample(d, parent)]
            chunks = 4
            seconds = 0.0
            for _ in range(chunks):
                seconds += run(INVOCATIONS // chunks)["seconds"]
                samples.append(sample(d, parent))
            start, middle, end = samples[0], samples[chunks // 2], samples[-1]
            wait_for(lambda: not sandbox_cgroups(parent), timeout=60)
            time.sleep(1)
            # The spawner removes used /tmp images while idle: wait for that, not a set time.
            wait_for(lambda: sample(d, parent)["tmp_mounts"] <= IDLE_TMP_MOUNTS, timeout=30,
                     what="the used /tmp images removed")
            idle_after = sample(d, parent)
            report("long_run_across_50_functions",
                   {"invocations": INVOCATIONS // chunks * chunks, "functions": FUNCTIONS, "callers": 8,
                    "seconds": round(seconds, 1), "per_second": round(INVOCATIONS / seconds),
                    "idle_before": idle_before, "start": start, "middle": middle, "end": end,
                    "idle_after": idle_after})
            assert end["fds"] <= start["fds"] + 8, samples
            assert end["rss_mb"] <= start["rss_mb"] * 1.2 + 8, samples
            assert end["rss_mb"] <= middle["rss_mb"] * 1.1 + 4, samples
            assert end["mounts"] <= start["mounts"] + 2 and end["cgroups"] <= start["cgroups"] + 8, samples
            # Idle again: every sandbox gone, nothing left of them.
            assert idle_after["mounts"] == idle_before["mounts"] and idle_after["cgroups"] == 0, idle_after
            assert idle_after["tmp_mounts"] <= IDLE_TMP_MOUNTS, idle_after["tmp_mount_points"]
            assert idle_after["fds"] <= idle_before["fds"] + 4, (idle_before, idle_after)
        finally:
            assert d.stop() == 0
