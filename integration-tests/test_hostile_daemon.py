"""A hostile function against the daemon's own resources (issue 10, part 3):
its memory (output without a newline, the log tail), its disk (log streams,
a served file system's quota), its root-run file watcher (planted symlinks,
FIFOs, huge sparse files) and the host side of a served directory
(set-id binaries, device nodes, uids shared across functions).

Every check is on a bound or an event, never on how long something took."""

import base64
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
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--cgroup-parent", "lamb-it-hostile", "--filesystem", f"shared={shared}"]
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
