"""The SQS event source benchmark (`make bench`, or run alone as root with
the integration tests' venv): moto's server on a free port, a daemon
(`$LAMB_BIN`, else target/release/lamb, else target/debug/lamb) reading it,
and two measures written into docs/benchmarks.md (or $BENCH_OUT) between
its markers:

- messages per second from a queue through a static function
  (examples/hello-provided) at BatchSize 10 and 100: the queue is filled
  first, then the mapping is created and the clock runs until the queue is
  empty (every message deleted after its batch succeeded);
- the latency from SendMessage to the function's start, one message at a
  time, without a batching window and with a 1 s window: a Python function
  compares its clock with the message's SentTimestamp.
"""

import json
import os
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
from conftest import ROLE, Daemon, make_zip, wait_for  # noqa: E402
from test_engine import BUILD  # noqa: E402
from test_esm_sqs import FS_ARN, Moto, depth, queue_arn  # noqa: E402

MESSAGES = int(os.environ.get("ESM_BENCH_MESSAGES", "1000"))
LATENCY_SAMPLES = int(os.environ.get("ESM_BENCH_SAMPLES", "15"))
LATENCY_FUNCTION = b'''
import json, time
def handler(event, context):
    now = time.time() * 1000
    with open("/mnt/out/latency.jsonl", "a") as f:
        for r in event["Records"]:
            f.write(json.dumps({"body": r["body"], "ms": now - int(r["attributes"]["SentTimestamp"])}) + "\\n")
'''


def fill(sqs, url, n):
    for i in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": json.dumps({"n": i + j})} for j in range(min(10, n - i))])


def cpu_seconds(pid):
    """User and system CPU seconds of a process and its waited-for children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def throughput(d, moto, batch):
    lam, sqs = d.lambda_client(), moto.client("sqs")
    name = f"bench-b{batch}"
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    fill(sqs, url, MESSAGES)
    start = time.monotonic()
    cpu = cpu_seconds(moto.proc.pid), cpu_seconds(d.proc.pid)
    lam.create_event_source_mapping(FunctionName="bench-static", EventSourceArn=queue_arn(name), BatchSize=batch,
                                    MaximumBatchingWindowInSeconds=1 if batch > 10 else 0)
    wait_for(lambda: depth(sqs, url) == 0, timeout=1800, every=0.5, what="the queue drained")
    secs = time.monotonic() - start
    cpu = cpu_seconds(moto.proc.pid) - cpu[0], cpu_seconds(d.proc.pid) - cpu[1]
    for m in lam.list_event_source_mappings(FunctionName="bench-static")["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=m["UUID"])
    return MESSAGES / secs, secs, cpu


def latency(d, moto, out, window):
    lam, sqs = d.lambda_client(), moto.client("sqs")
    name = f"latency-w{window}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    uuid = lam.create_event_source_mapping(FunctionName="bench-latency", EventSourceArn=queue_arn(name),
                                           BatchSize=10, MaximumBatchingWindowInSeconds=window)["UUID"]
    log = out / "latency.jsonl"

    def seen(body):
        if not log.exists():
            return None
        for line in log.read_text().splitlines():
            x = json.loads(line)
            if x["body"] == body:
                return x["ms"]
        return None
    # A first message warms the function up (its cold start is not the
    # event source's latency).
    sqs.send_message(QueueUrl=url, MessageBody=f"warm-{window}")
    wait_for(lambda: seen(f"warm-{window}") is not None, timeout=120, what="the warm-up message")
    samples = []
    for i in range(LATENCY_SAMPLES):
        body = f"w{window}-{i}"
        sqs.send_message(QueueUrl=url, MessageBody=body)
        samples.append(wait_for(lambda: seen(body), timeout=120, every=0.01, what=body))
    lam.delete_event_source_mapping(UUID=uuid)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.9) - 1]


def main():
    if os.geteuid() != 0:
        sys.exit("bench_esm.py: the daemon runs as root only")
    static = root / "examples" / "hello-provided" / "build" / "bootstrap"
    if not static.exists():
        sys.exit("bench_esm.py: make examples first")
    out_doc = Path(os.environ.get("BENCH_OUT", root / "docs" / "benchmarks.md"))
    with tempfile.TemporaryDirectory(prefix="lamb-esm-bench-") as tmp:
        tmp = Path(tmp)
        (tmp / "out").mkdir()
        moto = Moto(tmp)
        moto.start()
        d = Daemon(tmp)
        d.runtimes_dir = BUILD
        d.extra_args = ["--filesystem", f"out={tmp / 'out'}", "--aws-endpoint", f"sqs={moto.url}"]
        d.start()
        try:
            lam = d.lambda_client()
            lam.create_function(FunctionName="bench-static", Role=ROLE, Runtime="provided.al2023",
                                Handler="bootstrap", Code={"ZipFile": make_zip({"bootstrap": (static.read_bytes(), 0o755)})})
            lam.create_function(FunctionName="bench-latency", Role=ROLE, Runtime="python3.11",
                                Handler="index.handler", Code={"ZipFile": make_zip({"index.py": LATENCY_FUNCTION})},
                                FileSystemConfigs=[{"Arn": FS_ARN, "LocalMountPath": "/mnt/out"}])
            rates = {b: throughput(d, moto, b) for b in (10, 100)}
            lat = {w: latency(d, moto, tmp / "out", w) for w in (0, 1)}
        finally:
            d.stop()
            moto.stop()
    binary = "release" if "release" in os.environ["LAMB_BIN"] else "debug"
    lines = [
        f"## SQS event source mappings (issue 19), {time.strftime('%Y-%m-%d')}",
        "",
        f"`integration-tests/bench_esm.py` ({binary} build; moto's server as SQS on the same machine, "
        f"{os.cpu_count()} CPUs). Throughput: {MESSAGES} messages queued first, then the mapping created; "
        "the clock stops when the queue is empty. The function is examples/hello-provided (static C). "
        "Latency: SendMessage to the Python function's start (its clock against SentTimestamp), one message "
        f"at a time, {LATENCY_SAMPLES} samples after a warm-up. The CPU seconds tell which side limits the rate: "
        "moto's server answers each ReceiveMessage by scanning the queue in Python, one core at most, so when "
        "its CPU time is near the wall time the rate is moto's, and the batch size cannot raise it.",
        "",
        "| measure | result |",
        "|---|---|",
    ]
    for b, (rate, secs, (moto_cpu, lamb_cpu)) in rates.items():
        lines.append(f"| BatchSize {b} | {rate:.0f} messages/s ({MESSAGES} in {secs:.1f} s; CPU: moto "
                     f"{moto_cpu:.0f} s, the daemon {lamb_cpu:.0f} s) |")
    for w, (p50, p90) in lat.items():
        label = "no batching window" if w == 0 else f"MaximumBatchingWindowInSeconds {w}"
        lines.append(f"| send to invoke, {label} | median {p50:.0f} ms, p90 {p90:.0f} ms |")
    section = "\n".join(lines)
    print(section)
    replace_section(out_doc, "esm-bench", section)


if __name__ == "__main__":
    main()
