"""`/tmp` on disk, end to end through boto3: sized by EphemeralStorage, full
with ENOSPC rather than a kill, apart from memory, empty in a new sandbox,
and nothing left (mount, loop device) after `kill -9` and the next start."""

import json
import os
import re
import signal
from pathlib import Path

import boto3
from botocore.config import Config

from conftest import ACCESS_KEY, SECRET_KEY, deploy, function_daemon, sandbox_cgroups, wait_for

# Writes MB megabytes to /tmp/fill in 1 MB writes; says how far it got, the
# errno it stopped on, and /tmp's size. A marker says whether this sandbox's
# /tmp was used before.
WRITER = b'''
import errno, os

def handler(event, context):
    seen = os.path.exists("/tmp/marker")
    open("/tmp/marker", "w").close()
    written, error, chunk = 0, None, b"x" * (1 << 20)
    try:
        with open("/tmp/fill", "wb") as f:
            for _ in range(event.get("mb", 0)):
                f.write(chunk)
                f.flush()
                written += 1
    except OSError as e:
        error = errno.errorcode.get(e.errno, str(e.errno))
    if os.path.exists("/tmp/fill"):
        os.remove("/tmp/fill")
    st = os.statvfs("/tmp")
    return {"written_mb": written, "error": error, "seen": seen, "size_mb": st.f_blocks * st.f_frsize >> 20}
'''


def slow_client(d):
    # At 128 MB a function gets 7% of a core: 1.5 GB of writes take a while.
    return boto3.client(
        "lambda", endpoint_url=d.endpoint, region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=600),
    )


def invoke(lam, name, event):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return body


def loop_backing_files(path):
    """The backing files under `path` of the loop devices attached now."""
    found = []
    for dev in Path("/sys/block").iterdir():
        try:
            backing = (dev / "loop" / "backing_file").read_text().strip()
        except OSError:
            continue
        if backing.startswith(str(path)):
            found.append(backing)
    return found


def mounts_under(path):
    prefix = str(path) + "/"
    return [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            if line.split()[4].startswith(prefix)]


def test_tmp_is_disk_sized_by_ephemeral_storage():
    with function_daemon("lamb-tmp-") as d:
        lam = slow_client(d)
        deploy(lam, "tmp-big", {"app.py": WRITER}, MemorySize=128, Timeout=600,
               EphemeralStorage={"Size": 2048})
        big = invoke(lam, "tmp-big", {"mb": 1536})
        assert big["written_mb"] == 1536 and big["error"] is None, big
        assert 1900 < big["size_mb"] <= 2048, big
        deploy(lam, "tmp-full", {"app.py": WRITER}, MemorySize=128, Timeout=600)
        full = invoke(lam, "tmp-full", {"mb": 600})
        assert full["error"] == "ENOSPC" and 450 < full["written_mb"] < 512, full
        # The same sandbox answers again: the full /tmp killed nothing.
        assert invoke(lam, "tmp-full", {})["seen"] is True


def test_a_new_sandbox_sees_an_empty_tmp():
    with function_daemon("lamb-tmp-", "--idle-ttl", "1s") as d:
        lam = d.lambda_client()
        deploy(lam, "tmp-fresh", {"app.py": WRITER})
        assert invoke(lam, "tmp-fresh", {})["seen"] is False
        # The idle sandbox is destroyed after its TTL; the next call starts a new one.
        wait_for(lambda: not sandbox_cgroups(d.cgroup_parent), timeout=60, what="the idle sandbox's end")
        assert invoke(lam, "tmp-fresh", {})["seen"] is False


def test_kill_9_leaves_no_tmp_mount_or_loop_device_after_the_next_start():
    with function_daemon("lamb-tmp-") as d:
        lam = d.lambda_client()
        deploy(lam, "tmp-kill", {"app.py": WRITER})
        invoke(lam, "tmp-kill", {"mb": 1})
        state = d.data_dir / "sandboxes"
        assert mounts_under(state) and loop_backing_files(state), "a /tmp was mounted"
        # The spawner first, so that nothing cleans up before the next start's sweep.
        spawners = {int(c) for t in Path(f"/proc/{d.proc.pid}/task").iterdir()
                    for c in (t / "children").read_text().split()}
        for pid in spawners:
            os.kill(pid, signal.SIGKILL)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        d.proc = None
        assert mounts_under(state), "the killed spawner left its mounts"
        d.start()
        # What the new spawner made since is its own: only the dead one's must be gone.
        # Images are `lamb-tmp-<spawner pid>-<n>` (the templates' folder is not one).
        dead = {p for p in os.listdir(state) if re.fullmatch(r"lamb-tmp-\d+-\d+", p) and
                int(p.split("-")[2]) in spawners}
        assert not dead, dead
        mine = [m for m in mounts_under(state) if any(f"/lamb-tmp-{p}-" in m for p in spawners)]
        assert not mine, mine
        wait_for(lambda: not [f for f in loop_backing_files(state) if any(f"/lamb-tmp-{p}-" in f for p in spawners)],
                 timeout=30, what="the dead spawner's loop devices to clear")
        assert invoke(lam, "tmp-kill", {})["seen"] is False
