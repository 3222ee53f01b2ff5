"""Which executable each sandbox's PID 1 runs (docs/sandbox.md, "lamb init's
executable"): the `lamb-init` binary built beside `lamb` from the same init
code, mounted at /.lamb/lamb; else `lamb` itself, whose `lamb init` is the
same code. A `lamb-init` of other code (left from an earlier build, say) is
not used, and the daemon says so."""

import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest

from conftest import LAMB, ROOT, bash_runtime, deploy, function_daemon, wait_for

# Answers the size of the executable at /.lamb/lamb, as the function sees it.
SIZE = bash_runtime(rb'''
  resp="{\"size\": $(stat -L -c %s /.lamb/lamb)}"
''')


def size_seen_by_a_function(d, name):
    lam = d.lambda_client()
    deploy(lam, name, {"bootstrap": (SIZE, 0o755)}, runtime="provided.al2", handler="h")
    out = lam.invoke(FunctionName=name, Payload=b"{}")
    assert out["StatusCode"] == 200 and "FunctionError" not in out, out
    return json.loads(out["Payload"].read())["size"]


def test_sandboxes_run_the_lamb_init_built_beside_lamb():
    small = Path(LAMB).with_name("lamb-init")
    assert small.is_file(), "cargo builds lamb-init with lamb"
    with function_daemon("lamb-initbin-") as d:
        assert size_seen_by_a_function(d, "init-bin") == small.stat().st_size


def test_a_lamb_init_of_other_code_is_not_used():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    # A hard link keeps lamb's own path (current_exe) in a directory of the
    # test's, beside a lamb-init that answers another fingerprint.
    scratch = ROOT / "target" / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    bindir = Path(tempfile.mkdtemp(prefix="lamb-initbin-", dir=scratch))
    try:
        os.chmod(bindir, 0o755)
        try:
            os.link(LAMB, bindir / "lamb")
        except OSError:
            shutil.copy2(LAMB, bindir / "lamb")
        stale = bindir / "lamb-init"
        stale.write_text("#!/bin/sh\necho lamb-init 0.0.0 0000000000000000\n")
        stale.chmod(stale.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        with function_daemon("lamb-initbin-", lamb_bin=str(bindir / "lamb")) as d:
            assert size_seen_by_a_function(d, "init-stale") == Path(LAMB).stat().st_size
            wait_for(lambda: "is not this lamb's" in d.log.read_text(), what="the daemon's warning")
    finally:
        shutil.rmtree(bindir, ignore_errors=True)
