"""SQS queues as event sources, end to end: a real AWS-compatible server
(moto's server mode, on 127.0.0.1 on a free port), a real daemon
(`--aws-endpoint sqs=...`) and a Python function that records each batch
it gets on a served file system. Batches within BatchSize and the batching
window in Lambda's `aws:sqs` shape, deleted on success; a partial batch
response; a poison message left to the queue's redrive policy (its
dead-letter queue); FIFO group order; filtering; a mapping disabled and
re-enabled; moto stopped and started again under load (moto keeps its
state in memory, so the queue is recreated, and the mapping, polling all
along, finds it again); the EventSourceMapping API's answers and refusals.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, Daemon, free_port, make_zip, wait_for
from test_engine import BUILD

FS_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/out"
MOTO_ACCOUNT = "123456789012"

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

FUNCTION = b'''
import json, os
def handler(event, context):
    recs = event["Records"]
    bodies = [r.get("body") for r in recs]
    failed = []
    stopped_groups = set()
    for r in recs:
        b = r.get("body") or ""
        group = r.get("attributes", {}).get("MessageGroupId")
        if group in stopped_groups:
            # FIFO: after a failure, the rest of its group is failed too (AWS's advice).
            failed.append(r["messageId"])
        elif b.startswith("flaky"):
            marker = "/mnt/out/seen-" + b
            if not os.path.exists(marker):
                open(marker, "w").close()
                failed.append(r["messageId"])
                if group:
                    stopped_groups.add(group)
    crash = any(b and b.startswith("crash") for b in bodies)
    with open("/mnt/out/" + context.function_name + ".jsonl", "a") as f:
        f.write(json.dumps({"bodies": bodies, "records": recs, "failed": failed, "crash": crash}) + "\\n")
    if crash:
        raise RuntimeError("crashing on purpose")
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
'''


class Moto:
    """moto's server on a free port of 127.0.0.1; state lives in memory, so
    a restart starts empty."""

    def __init__(self, tmp: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "moto.log"
        self.proc = None

    def start(self):
        bin_dir = Path(sys.executable).parent
        log = open(self.log, "ab")
        self.proc = subprocess.Popen([str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=log, stderr=log, start_new_session=True)

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("moto_server exited: " + self.log.read_text()[-2000:])
            try:
                return urllib.request.urlopen(self.url + "/moto-api/", timeout=1).status == 200
            except OSError:
                return False
        wait_for(up, timeout=60, what="moto_server listening")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None

    def client(self, service):
        return boto3.client(service, endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


def moto_or_skip():
    try:
        import moto  # noqa: F401
    except ImportError:
        pytest.skip("moto is not installed (pip install -r integration-tests/requirements.txt)")


@contextlib.contextmanager
def moto_daemon(prefix, services):
    """A daemon serving the `out` file system, reading `services` from a
    moto server of its own: (daemon, moto, out directory)."""
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    moto_or_skip()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        tmp = Path(tmp)
        (tmp / "out").mkdir()
        m = Moto(tmp)
        m.start()
        d = Daemon(tmp)
        d.runtimes_dir = BUILD
        d.extra_args = ["--filesystem", f"out={tmp / 'out'}"]
        for service in services:
            d.extra_args += ["--aws-endpoint", f"{service}={m.url}"]
        try:
            d.start()
            yield d, m, tmp / "out"
        finally:
            assert d.stop() == 0
            m.stop()


@pytest.fixture(scope="module")
def env():
    with moto_daemon("lamb-esm-sqs-", ["sqs"]) as env:
        yield env


def make_function(d, name, code=FUNCTION):
    """A python3.11 function of `code` with the `out` file system at /mnt/out."""
    d.lambda_client().create_function(
        FunctionName=name, Role=ROLE, Runtime="python3.11", Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": code})}, Timeout=30,
        FileSystemConfigs=[{"Arn": FS_ARN, "LocalMountPath": "/mnt/out"}])


def queue_arn(name):
    return f"arn:aws:sqs:us-east-1:{MOTO_ACCOUNT}:{name}"


def batches(out, function):
    """What `function` wrote of each batch it got, in order."""
    f = out / f"{function}.jsonl"
    if not f.exists():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def succeeded(out, function):
    """Bodies of records that succeeded, in delivery order."""
    return [b for x in batches(out, function) if not x["crash"]
            for b, r in zip(x["bodies"], x["records"]) if r["messageId"] not in x["failed"]]


def delivered(out, function):
    return [b for x in batches(out, function) for b in x["bodies"]]


def depth(sqs, url):
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])


def enabled(lam, uuid):
    return lam.get_event_source_mapping(UUID=uuid)["State"] == "Enabled"


def test_sqs_batches_event_shape_and_api(env):
    d, moto, out = env
    lam, sqs = d.lambda_client(), moto.client("sqs")
    make_function(d, "sqs-batches")
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]

    def refused(code, **kw):
        with pytest.raises(ClientError) as e:
            lam.create_event_source_mapping(FunctionName="sqs-batches", EventSourceArn=queue_arn("jobs"), **kw)
        assert e.value.response["Error"]["Code"] == code, e.value.response
    refused("InvalidParameterValueException", BatchSize=100)  # over 10 without a window
    refused("InvalidParameterValueException", StartingPosition="LATEST")
    refused("InvalidParameterValueException", FilterCriteria={"Filters": [{"Pattern": "{not json"}]})
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName="sqs-batches", EventSourceArn="arn:aws:s3:::bucket")
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"

    m = lam.create_event_source_mapping(FunctionName="sqs-batches", EventSourceArn=queue_arn("jobs"),
                                        BatchSize=5, MaximumBatchingWindowInSeconds=1)
    assert m["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert m["State"] == "Creating" and m["StateTransitionReason"] == "USER_INITIATED"
    assert m["BatchSize"] == 5 and m["MaximumBatchingWindowInSeconds"] == 1
    assert m["FunctionResponseTypes"] == [] and "StartingPosition" not in m and "Queues" not in m
    assert m["LastProcessingResult"] == "No records processed"
    uuid = m["UUID"]
    assert enabled(lam, uuid)
    refused("ResourceConflictException")

    sent = [f"m{i}" for i in range(12)]
    for i, b in enumerate(sent):
        sqs.send_message(QueueUrl=url, MessageBody=b,
                         MessageAttributes={"n": {"DataType": "Number", "StringValue": str(i)}})
    wait_for(lambda: sorted(succeeded(out, "sqs-batches")) == sorted(sent), what="12 messages delivered")
    got = batches(out, "sqs-batches")
    assert all(1 <= len(b["bodies"]) <= 5 for b in got)
    r = got[0]["records"][0]
    assert r["eventSource"] == "aws:sqs" and r["eventSourceARN"] == queue_arn("jobs")
    assert r["awsRegion"] == "us-east-1" and r["messageId"] and r["receiptHandle"] and r["md5OfBody"]
    assert r["attributes"]["ApproximateReceiveCount"] == "1" and "SentTimestamp" in r["attributes"]
    assert r["messageAttributes"]["n"]["dataType"] == "Number"
    assert r["messageAttributes"]["n"]["stringListValues"] == []
    wait_for(lambda: depth(sqs, url) == 0, what="the queue emptied (deleted on success)")
    assert delivered(out, "sqs-batches").count("m0") == 1
    wait_for(lambda: lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK",
             what="LastProcessingResult OK")

    u = lam.update_event_source_mapping(UUID=uuid, BatchSize=3)
    assert u["State"] == "Updating" and u["BatchSize"] == 3
    with pytest.raises(ClientError) as e:
        lam.update_event_source_mapping(UUID=uuid, BatchSize=20, MaximumBatchingWindowInSeconds=0)
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert lam.get_event_source_mapping(UUID=uuid)["BatchSize"] == 3
    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"


def test_sqs_partial_batch_failure(env):
    d, moto, out = env
    lam, sqs = d.lambda_client(), moto.client("sqs")
    make_function(d, "sqs-partial")
    # The visibility timeout outlasts a batch (a cold start included), as
    # AWS advises: a message coming back while its batch still runs would
    # run twice.
    url = sqs.create_queue(QueueName="partial", Attributes={"VisibilityTimeout": "5"})["QueueUrl"]
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "MessageBody": b} for i, b in enumerate(["ok-1", "flaky-1", "ok-2", "ok-3"])])
    lam.create_event_source_mapping(FunctionName="sqs-partial", EventSourceArn=queue_arn("partial"),
                                    BatchSize=10, MaximumBatchingWindowInSeconds=1,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    wait_for(lambda: sorted(succeeded(out, "sqs-partial")) == ["flaky-1", "ok-1", "ok-2", "ok-3"],
             what="every message done")
    wait_for(lambda: depth(sqs, url) == 0, what="the queue emptied")
    got = delivered(out, "sqs-partial")
    # The reported failure alone came back; the rest was deleted at once.
    assert got.count("flaky-1") == 2
    assert all(got.count(b) == 1 for b in ["ok-1", "ok-2", "ok-3"])


def test_sqs_poison_message_goes_to_the_dead_letter_queue(env):
    d, moto, out = env
    lam, sqs = d.lambda_client(), moto.client("sqs")
    make_function(d, "sqs-poison")
    dlq = sqs.create_queue(QueueName="poison-dlq")["QueueUrl"]
    url = sqs.create_queue(QueueName="poisoned", Attributes={
        "VisibilityTimeout": "5",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn("poison-dlq"), "maxReceiveCount": "2"}),
    })["QueueUrl"]
    uuid = lam.create_event_source_mapping(FunctionName="sqs-poison", EventSourceArn=queue_arn("poisoned"),
                                           BatchSize=1)["UUID"]
    sqs.send_message(QueueUrl=url, MessageBody="crash-1")
    sqs.send_message(QueueUrl=url, MessageBody="fine-1")

    def in_dlq():
        msgs = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
        return [m["Body"] for m in msgs]
    assert wait_for(in_dlq, what="the poison message in the DLQ") == ["crash-1"]
    assert delivered(out, "sqs-poison").count("crash-1") == 2  # maxReceiveCount
    assert "fine-1" in succeeded(out, "sqs-poison")
    # A failed batch shows as the mapping's last result until one succeeds.
    assert lam.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] in ("OK", "PROBLEM: Function call failed")


def test_sqs_fifo_keeps_group_order(env):
    d, moto, out = env
    lam, sqs = d.lambda_client(), moto.client("sqs")
    make_function(d, "sqs-fifo")
    url = sqs.create_queue(QueueName="orders.fifo", Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true", "VisibilityTimeout": "5"})["QueueUrl"]
    sent = {"a": [], "b": []}
    for i in range(15):
        for g in ("a", "b"):
            sent[g].append(f"{g}{i}")
            sqs.send_message(QueueUrl=url, MessageBody=f"{g}{i}", MessageGroupId=g)
    m = lam.create_event_source_mapping(FunctionName="sqs-fifo", EventSourceArn=queue_arn("orders.fifo"),
                                        BatchSize=3, FunctionResponseTypes=["ReportBatchItemFailures"])
    with pytest.raises(ClientError) as e:
        lam.update_event_source_mapping(UUID=m["UUID"], BatchSize=11, MaximumBatchingWindowInSeconds=1)
    assert e.value.response["Error"]["Code"] == "ValidationException"  # FIFO: at most 10
    everything = sorted(sent["a"] + sent["b"])
    wait_for(lambda: sorted(succeeded(out, "sqs-fifo")) == everything, what="every FIFO message done")
    done = succeeded(out, "sqs-fifo")
    for g in ("a", "b"):
        assert [b for b in done if b in sent[g]] == sent[g], f"group {g} out of order"
    # A failure in a group is retried after the visibility timeout. (moto's
    # FIFO redelivery after a visibility timeout skips a group's first
    # messages, unlike SQS, so the order across a failure is not checked.)
    sqs.send_message(QueueUrl=url, MessageBody="flaky-a99", MessageGroupId="a")
    wait_for(lambda: "flaky-a99" in succeeded(out, "sqs-fifo"), what="the failed FIFO message retried")
    assert delivered(out, "sqs-fifo").count("flaky-a99") == 2


def test_sqs_filtering(env):
    d, moto, out = env
    lam, sqs = d.lambda_client(), moto.client("sqs")
    make_function(d, "sqs-filter")
    url = sqs.create_queue(QueueName="filtered")["QueueUrl"]
    lam.create_event_source_mapping(
        FunctionName="sqs-filter", EventSourceArn=queue_arn("filtered"), BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FilterCriteria={"Filters": [
            {"Pattern": json.dumps({"body": {"kind": ["order"], "total": [{"numeric": [">", 100]}]}})},
            {"Pattern": json.dumps({"body": [{"prefix": "urgent:"}]})},
        ]})
    bodies = [json.dumps({"kind": "order", "total": 150}), json.dumps({"kind": "order", "total": 5}),
              json.dumps({"kind": "refund", "total": 500}), "urgent: call back", "not urgent", "last"]
    for b in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=b)
    wait_for(lambda: depth(sqs, url) == 0, what="every message handled (filtered ones deleted)")
    wait_for(lambda: len(delivered(out, "sqs-filter")) == 2, what="the matching messages delivered")
    assert sorted(delivered(out, "sqs-filter")) == sorted([bodies[0], bodies[3]])


def test_sqs_disable_reenable_and_moto_restart_under_load(env):
    d, moto, out = env
    lam, sqs = d.lambda_client(), moto.client("sqs")
    make_function(d, "sqs-life")
    url = sqs.create_queue(QueueName="life")["QueueUrl"]
    uuid = lam.create_event_source_mapping(FunctionName="sqs-life", EventSourceArn=queue_arn("life"),
                                           BatchSize=10)["UUID"]
    sqs.send_message(QueueUrl=url, MessageBody="first")
    wait_for(lambda: "first" in succeeded(out, "sqs-life"), what="the first message")

    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    # The supervisor's next pass stops the pollers: once it says so, nothing
    # reads the queue, so the message below stays there however long it waits.
    wait_for(lambda: any("event source mapping stopped" in line and uuid in line
                         for line in d.log.read_text(errors="replace").splitlines()),
             what="the disabled mapping's pollers stopped")
    sqs.send_message(QueueUrl=url, MessageBody="while-disabled")
    time.sleep(3)  # a poller left running would have taken it by now
    assert "while-disabled" not in delivered(out, "sqs-life")
    assert depth(sqs, url) == 1
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    wait_for(lambda: "while-disabled" in succeeded(out, "sqs-life"), what="delivery after re-enabling")

    # Under load: a sender keeps sending while moto stops and starts again.
    # moto's state is in memory, so the queue is gone after the restart and
    # the sender recreates it; the mapping keeps polling throughout and
    # reads the new queue. Messages sent before the restart and not yet
    # delivered are lost with moto's memory, not by lamb: only what was sent
    # after the queue came back is checked.
    stop = threading.Event()
    after = []

    def sender():
        i = 0
        while not stop.is_set():
            try:
                c = moto.client("sqs")
                q = c.create_queue(QueueName="life")["QueueUrl"]
                body = f"load-{i}"
                c.send_message(QueueUrl=q, MessageBody=body)
                if restarted.is_set():
                    after.append(body)
                i += 1
            except Exception:
                time.sleep(0.1)
    restarted = threading.Event()
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    wait_for(lambda: any(b.startswith("load-") for b in succeeded(out, "sqs-life")), what="load flowing")
    moto.stop()
    time.sleep(1)
    moto.start()
    restarted.set()
    wait_for(lambda: len(after) >= 5, what="messages sent after moto's restart")
    stop.set()
    t.join()
    wait_for(lambda: set(after) <= set(succeeded(out, "sqs-life")), timeout=90,
             what="every message sent after moto's restart delivered")
    lam.delete_event_source_mapping(UUID=uuid)


def test_sqs_mapping_of_a_missing_function_or_bad_endpoint_flag(env):
    d, moto, out = env
    lam = d.lambda_client()
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName="nope", EventSourceArn=queue_arn("jobs"))
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    p = d.lamb("serve", "--aws-endpoint", "nosuch=http://127.0.0.1:1", check=False)
    assert p.returncode != 0 and "--aws-endpoint" in p.stderr
