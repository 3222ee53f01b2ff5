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

Each figure is the client's Invoke round trip (boto3, on the same machine),
100 ms idle before each call, and the REPORT's Init or Restore Duration.
"""

import base64
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

from conftest import BUILD, ROLE, Daemon, make_zip, wait_for  # noqa: E402

RUNS = int(os.environ.get("SNAPSTART_BENCH_RUNS", "15"))
APP = root / "examples" / "fastapi-snapstart"
EVENT = (APP / "event.json").read_bytes()


def bundle():
    files = {}
    for p in sorted((APP / "build").rglob("*")):
        if p.is_file():
            files[str(p.relative_to(APP / "build"))] = (p.read_bytes(), p.stat().st_mode & 0o777)
    return make_zip(files)


def invoke(lam, name, qualifier):
    time.sleep(0.1)
    start = time.monotonic()
    r = lam.invoke(FunctionName=name, Qualifier=qualifier, Payload=EVENT, LogType="Tail")
    ms = (time.monotonic() - start) * 1000
    body = json.loads(r["Payload"].read())
    assert "FunctionError" not in r and body.get("statusCode") == 200, body
    log = base64.b64decode(r["LogResult"]).decode()
    found = re.search(r"(Init|Restore) Duration: ([0-9.]+) ms", log)
    if not found:
        return ms, "Warm", 0.0
    return ms, found.group(1), float(found.group(2))


def cold(lam, name):
    out = []
    for i in range(RUNS):
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": {"RUN": str(i)}})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        ms, kind, init = invoke(lam, name, "$LATEST")
        assert kind == "Init"
        out.append((ms, init))
    return out


def restored(lam, name):
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
    out, warm = [], []
    for v in versions:
        ms, kind, restore = invoke(lam, name, v)
        assert kind == "Restore"
        out.append((ms, restore))
        ms, kind, _ = invoke(lam, name, v)
        assert kind == "Warm"
        warm.append(ms)
    return out, warm


def stats(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]  # noqa: E731
    return f"{xs[0]:.1f} | {statistics.median(xs):.1f} | {q(0.9):.1f} | {xs[-1]:.1f}"


def main():
    if os.geteuid() != 0:
        sys.exit("bench_snapstart.py: the daemon runs as root only")
    if not (APP / "build" / "app.py").exists():
        sys.exit("bench_snapstart.py: make examples first")
    out_doc = Path(os.environ.get("BENCH_OUT", root / "docs" / "benchmarks.md"))
    rows = []
    code = bundle()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="lamb-snap-bench-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--idle-ttl", "2s", "--memory-capacity", "1000000"]
        d.start()
        try:
            lam = d.lambda_client()
            for mb in (128, 1792):
                name = f"fastapi-{mb}"
                lam.create_function(FunctionName=name, Role=ROLE, Runtime="python3.13", Handler="app.handler",
                                    Code={"ZipFile": code}, MemorySize=mb, Timeout=30,
                                    SnapStart={"ApplyOn": "PublishedVersions"})
                runs = cold(lam, name)
                rows.append((f"FastAPI + Mangum, {mb} MB, cold", [r[0] for r in runs], [r[1] for r in runs]))
                runs, warm = restored(lam, name)
                rows.append((f"FastAPI + Mangum, {mb} MB, restored", [r[0] for r in runs], [r[1] for r in runs]))
                rows.append((f"FastAPI + Mangum, {mb} MB, warm (after its restore)", warm, None))
                lam.delete_function(FunctionName=name)
        finally:
            d.stop()
    binary = "release" if "release" in os.environ["LAMB_BIN"] else "debug"
    lines = [
        f"## SnapStart (issue 16), {time.strftime('%Y-%m-%d')}",
        "",
        f"`integration-tests/bench_snapstart.py` ({binary} build, {os.cpu_count()} CPUs): the FastAPI + Mangum "
        "example (examples/fastapi-snapstart, python3.13) answering an HTTP API `GET /hello` event. cold: "
        "`$LATEST` in a new sandbox each call; restored: a published SnapStart version's snapshot each call "
        "(one version per run, all snapshotted first). Invoke is the client's round trip through the API "
        f"(boto3), 100 ms idle before each of {RUNS} calls; Init/Restore is the REPORT's figure (ms). "
        f"The machine's load average was {load:.1f} at the start.",
        "",
        "| series | Invoke min | p50 | p90 | max | Init/Restore min | p50 | p90 | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, invoke_ms, phase_ms in rows:
        phase = stats(phase_ms) if phase_ms else "- | - | - | -"
        lines.append(f"| {label} | {stats(invoke_ms)} | {phase} |")
    section = "\n".join(lines)
    print(section)
    start, end = "<!-- snapstart-bench:start -->", "<!-- snapstart-bench:end -->"
    text = out_doc.read_text() if out_doc.exists() else "# Benchmarks\n"
    block = f"{start}\n{section}\n{end}"
    a, b = text.find(start), text.find(end)
    text = text[:a] + block + text[b + len(end):] if 0 <= a < b else text.rstrip() + "\n\n" + block + "\n"
    out_doc.write_text(text)


if __name__ == "__main__":
    main()
