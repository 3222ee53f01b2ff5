"""A hostile function against the daemon's own resources (issue 10, part 3):
its memory (output without a newline, the log tail), its disk (log streams,
a served file system's quota), its root-run file watcher (planted symlinks,
FIFOs, huge sparse files) and the host side of a served directory
(set-id binaries, device nodes, uids shared across functions).

Every check is on a bound or an event, never on how long something took."""

import base64
import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ROLE, Daemon, make_zip, wait_for
from test_engine import BUILD

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/shared"
MOUNT = "/mnt/shared"
QUOTA_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/quota"
QUOTA_MB = 64
LINE_BYTES = 256 * 1024


@pytest.fixture(scope="module")
def hostile():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-hostile-") as tmp:
        # Searchable by everyone: the set-id check runs a planted file as nobody.
        os.chmod(tmp, 0o755)
        shared = Path(tmp) / "shared"
        shared.mkdir()
        (Path(tmp) / "quota").mkdir()
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--log-max-streams", "3",
                        "--filesystem", f"shared={shared}",
                        "--filesystem", f"quota={tmp}/quota,size={QUOTA_MB}M"]
        d.start()
        try:
            yield d, shared
        finally:
            assert d.stop() == 0


def python_function(lam, name, code, **kw):
    args = dict(FunctionName=name, Role=ROLE, Runtime="python3.11", Handler="index.handler",
                Code={"ZipFile": make_zip({"index.py": code})}, Timeout=300, MemorySize=128)
    args.update(kw)
    lam.create_function(**args)


def invoke(lam, name, event, **kw):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(event).encode(), **kw)
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, body
    return r, body


def peak_rss_kb(pid):
    """The process's high-water mark of resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


PRINTER = b"""
import sys
def handler(event, context):
    chunk = b"x" * (1 << 20)
    out = sys.stdout.buffer
    for _ in range(event["mb"]):
        out.write(chunk)
    out.write(b"THE-END")
    out.flush()
    return "printed"
"""


def test_output_without_newline_does_not_grow_the_daemon(hostile):
    d, _ = hostile
    lam = d.lambda_client()
    python_function(lam, "h-printer", PRINTER)
    invoke(lam, "h-printer", {"mb": 1})  # cold start and warm-up outside the measure
    before = peak_rss_kb(d.proc.pid)
    mb = 300
    r, body = invoke(lam, "h-printer", {"mb": mb}, LogType="Tail")
    grown_mb = (peak_rss_kb(d.proc.pid) - before) / 1024
    assert body == "printed"
    # Before the bound, the daemon held the whole line, then a copy for the tail.
    assert grown_mb < 64, f"the daemon grew by {grown_mb:.0f} MB for {mb} MB of output"
    tail = base64.b64decode(r["LogResult"])
    assert len(tail) <= 4096
    assert b"THE-END\n" in tail and b"END RequestId: " in tail and tail.endswith(b"\t\n")
    # The log holds the output in lines of at most Lambda's 256 KB.
    files = list((d.data_dir / "logs" / "h-printer").iterdir())
    assert files
    longest = max(len(line) for f in files for line in f.read_bytes().split(b"\n"))
    assert longest == LINE_BYTES


RECORDER = b"""
import json, os
def handler(event, context):
    obj = event["Records"][0]["s3"]["object"]
    os.makedirs("/mnt/shared/seen", exist_ok=True)
    path = "/mnt/shared/seen/" + context.aws_request_id
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f)
    os.rename(path + ".tmp", path + ".json")
"""

PLANTER = b"""
import os
def handler(event, context):
    root = "/mnt/shared/plant"
    for i in range(event["n"]):
        d = f"{root}/d{i}"
        # A file the watcher will look at by path, then its directory swapped
        # for a symlink to a host directory holding a root-only file.
        with open(f"{d}/key.in", "w") as f:
            f.write("decoy")
        os.rename(d, f"{root}/moved{i}")
        os.symlink(event["secret_dir"], d)
    # A FIFO (opened and closed for writing) and a 1 TB sparse file.
    fifo = f"{root}/pipe.in"
    os.mkfifo(fifo)
    r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    os.close(os.open(fifo, os.O_WRONLY))
    os.close(r)
    with open(f"{root}/huge.in", "w") as f:
        f.truncate(1 << 40)
    return "planted"
"""


def seen(shared):
    d = shared / "seen"
    return [json.loads(p.read_text()) for p in d.glob("*.json")] if d.is_dir() else []


def test_file_triggers_follow_nothing_a_function_plants(hostile):
    d, shared = hostile
    lam = d.lambda_client()
    fs = [{"Arn": ARN, "LocalMountPath": MOUNT}]
    python_function(lam, "h-recorder", RECORDER, FileSystemConfigs=fs)
    python_function(lam, "h-planter", PLANTER, FileSystemConfigs=fs)
    # A root-only file outside the served directory.
    secret_dir = d.tmp / "secret"
    secret_dir.mkdir(mode=0o700)
    secret = b"root-only secret " * 1000
    (secret_dir / "key.in").write_bytes(secret)
    os.chmod(secret_dir / "key.in", 0o600)
    n = 40
    plant = shared / "plant"
    plant.mkdir()
    for i in range(n):
        (plant / f"d{i}").mkdir()
    os.chmod(plant, 0o2777)
    for i in range(n):
        os.chmod(plant / f"d{i}", 0o2777)
    d.lamb("trigger", "add", "h-recorder", "--dir", str(plant), "--suffix", ".in")
    # The watcher handles events in order: once this one fires, the
    # directories above are watched.
    (plant / "ready.in").write_bytes(b"ready")
    wait_for(lambda: any(o["key"] == "plant/ready.in" for o in seen(shared)), timeout=120)

    invoke(lam, "h-planter", {"n": n, "secret_dir": str(secret_dir)})
    # A later regular file still fires: the FIFO did not hang the watcher,
    # nor did the sparse file stall it.
    (plant / "after.in").write_bytes(b"after")
    keys = lambda: {o["key"] for o in seen(shared)}  # noqa: E731
    wait_for(lambda: {"plant/after.in", "plant/huge.in"} <= keys(), timeout=120)
    events = seen(shared)
    leak = hashlib.md5(secret).hexdigest()
    assert not [o for o in events if o["eTag"].startswith(leak) or o["size"] == len(secret)], events
    assert not [o for o in events if o["key"] == "plant/pipe.in"]
    huge = [o for o in events if o["key"] == "plant/huge.in"]
    # The sparse file's eTag is over its first 16 MiB only (docs/limits.md).
    zeros = hashlib.md5(bytes(16 << 20)).hexdigest()
    assert [(o["size"], o["eTag"]) for o in huge] == [(1 << 40, f"{zeros}-{(1 << 40) >> 24}")]


SETID = b"""
import errno, os, shutil, stat
def handler(event, context):
    made = "/mnt/shared/" + event["name"]
    shutil.copy("/mnt/shared/id-tool", made)
    os.chmod(made, 0o6755)
    try:
        os.mknod("/mnt/shared/dev-null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        mknod = "made"
    except OSError as e:
        mknod = errno.errorcode[e.errno]
    return {"uid": os.getuid(), "mknod": mknod}
"""


def mounts_at(path):
    """How many mounts sit on `path` (the mount point field of mountinfo)."""
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return sum(1 for line in lines if line.split()[4] == str(path))


def test_set_id_bits_and_device_nodes_have_no_effect_on_the_host(hostile):
    d, shared = hostile
    lam = d.lambda_client()
    fs = [{"Arn": ARN, "LocalMountPath": MOUNT}]
    python_function(lam, "h-setid", SETID, FileSystemConfigs=fs)
    tool = shared / "id-tool"
    tool.write_bytes(Path("/usr/bin/id").read_bytes())
    os.chmod(tool, 0o755)
    _, out = invoke(lam, "h-setid", {"name": "suid-id"})
    assert out["mknod"] == "EPERM"
    planted = shared / "suid-id"
    assert planted.stat().st_uid == out["uid"] and planted.stat().st_mode & 0o6000
    # A local user running it stays who they are: the host side is nosuid.
    nobody = 65534
    ran = subprocess.run([str(planted), "-u"], user=nobody, group=nobody, capture_output=True, text=True,
                         check=True)
    assert int(ran.stdout) == nobody, f"the planted binary ran as uid {ran.stdout.strip()}"
    assert os.statvfs(shared).f_flag & os.ST_NOSUID
    # And nodev: a device node there (root could make one) opens nothing.
    node = shared / "host-null"
    os.mknod(node, 0o20666, os.makedev(1, 3))
    with pytest.raises(PermissionError):
        open(node, "rb").close()


UID = b"""
import os
def handler(event, context):
    return os.getuid()
"""


def test_live_sandboxes_of_two_functions_never_share_a_uid(hostile):
    d, _ = hostile
    lam = d.lambda_client()
    uids = {}
    for name in ("h-uid-a", "h-uid-b"):
        python_function(lam, name, UID)
        uids[name] = invoke(lam, name, {})[1]
    # Both sandboxes are still alive (idle): warm calls answer the same uids.
    for name, uid in uids.items():
        assert invoke(lam, name, {})[1] == uid
    assert uids["h-uid-a"] != uids["h-uid-b"], uids


WRITER = b"""
import errno, os
def handler(event, context):
    written = 0
    chunk = b"q" * (1 << 20)
    try:
        with open("/mnt/quota/big", "wb") as f:
            for _ in range(event["mb"]):
                f.write(chunk)
                f.flush()
                written += len(chunk)
            os.fsync(f.fileno())
    except OSError as e:
        return {"error": errno.errorcode[e.errno], "written": written}
    return {"error": None, "written": written}
"""


def test_a_served_file_system_with_a_size_gives_enospc(hostile):
    d, _ = hostile
    lam = d.lambda_client()
    quota = d.tmp / "quota"
    python_function(lam, "h-filler", WRITER, FileSystemConfigs=[{"Arn": QUOTA_ARN, "LocalMountPath": "/mnt/quota"}])
    _, out = invoke(lam, "h-filler", {"mb": 2 * QUOTA_MB})
    assert out["error"] == "ENOSPC" and out["written"] < QUOTA_MB << 20, out
    # The host holds at most the image.
    image = d.data_dir / "filesystems" / "quota.ext4"
    assert image.stat().st_blocks * 512 <= QUOTA_MB << 20
    assert os.statvfs(quota).f_blocks * os.statvfs(quota).f_frsize <= QUOTA_MB << 20
    assert mounts_at(quota) == 1


def test_served_mounts_go_with_the_daemon_even_after_kill_9():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-mounts-") as tmp:
        served, sized = Path(tmp) / "served", Path(tmp) / "sized"
        served.mkdir()
        sized.mkdir()
        (served / "kept").write_text("kept")
        # A set-uid file from before the start (as a killed daemon leaves
        # them) loses its bit at the start.
        before = served / "before"
        before.write_bytes(b"x")
        os.chmod(before, 0o4755)
        d = Daemon(Path(tmp))
        d.extra_args = ["--filesystem", f"a={served}",
                        "--filesystem", f"b={sized},size=32M"]
        d.start()
        assert mounts_at(served) == 1 and mounts_at(sized) == 1
        assert before.stat().st_mode & 0o7777 == 0o755
        (sized / "in-image").write_text("in the image")
        d.proc.kill()
        d.proc.wait()
        d.proc = None
        # A killed daemon leaves its mounts; the next start removes them
        # before mounting again (one mount each, not two).
        assert mounts_at(served) == 1
        d.start()
        assert mounts_at(served) == 1 and mounts_at(sized) == 1
        assert (sized / "in-image").read_text() == "in the image"
        during = served / "during"
        during.write_bytes(b"x")
        os.chmod(during, 0o6755)
        assert d.stop() == 0
        assert mounts_at(served) == 0 and mounts_at(sized) == 0
        # Stripped at the stop too: the host side is no longer nosuid.
        assert during.stat().st_mode & 0o7777 == 0o755
        assert (served / "kept").read_text() == "kept" and not (sized / "in-image").exists()
        # A size-limited file system starts empty: a used directory is refused.
        other = Path(tmp) / "used"
        other.mkdir()
        (other / "file").write_text("x")
        d.extra_args = ["--filesystem", f"c={other},size=32M"]
        with pytest.raises(RuntimeError, match="is not empty"):
            d.start()


def test_log_streams_are_pruned_by_count_and_age(hostile):
    d, _ = hostile
    lam = d.lambda_client()
    python_function(lam, "h-streams", UID)
    logs = d.data_dir / "logs" / "h-streams"
    for i in range(5):
        # A new configuration, a new sandbox, a new stream.
        lam.update_function_configuration(FunctionName="h-streams", Environment={"Variables": {"ROUND": str(i)}})
        wait_for(lambda: lam.get_function(FunctionName="h-streams")["Configuration"]["LastUpdateStatus"]
                 == "Successful")
        invoke(lam, "h-streams", {})
    # A stream a month old, from before the daemon started.
    old = logs / "2020-01-01-[$LATEST]00000000000000000000000000000000"
    old.write_text("old\n")
    month_ago = old.stat().st_mtime - 30 * 86400
    os.utime(old, (month_ago, month_ago))
    # Streams are files named after the stream, rotated segments `.N` beside.
    streams = lambda: {p.name.split(".")[0] for p in logs.iterdir()}  # noqa: E731
    wait_for(lambda: len(streams()) <= 3 and not old.exists(), timeout=60)
    # The newest stream is among those kept: the last call's lines are there.
    newest = max(logs.iterdir(), key=lambda p: p.stat().st_mtime)
    assert "REPORT RequestId:" in newest.read_text()
