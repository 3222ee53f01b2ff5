"""A RabbitMQ queue as an event source, end to end: a real broker
(`rabbitmq-server` from Debian, on free ports with its own node directory),
a real daemon (`--rabbitmq local=amqp://...`), and a Python function that
records each batch it gets on a served file system. Batches of at most
BatchSize within the batching window in Lambda's `aws:rmq` shape; a failing
batch redelivered; a disabled mapping that stops polling; a broker restart
survived; the five EventSourceMapping operations through boto3."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, Daemon, free_port, make_zip, wait_for
from test_engine import BUILD

pika = pytest.importorskip("pika")

RMQ = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
BROKER_ARN = "arn:aws:mq:us-east-1:000000000000:broker:local:b-0123"
FS_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/out"

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

FUNCTION = b'''
import base64, json, os
OUT = "/mnt/out/batches.jsonl"
def handler(event, context):
    msgs = []
    for key, items in event["rmqMessagesByQueue"].items():
        for m in items:
            msgs.append({"key": key, "data": base64.b64decode(m["data"]).decode(),
                         "redelivered": m["redelivered"], "props": m["basicProperties"]})
    bodies = [m["data"] for m in msgs]
    marker = "/mnt/out/failed-once"
    if "fail-once" in bodies and not os.path.exists(marker):
        open(marker, "w").close()
        with open(OUT, "a") as f:
            f.write(json.dumps({"failed": bodies}) + "\\n")
        raise RuntimeError("failing this batch once")
    with open(OUT, "a") as f:
        f.write(json.dumps({"source": event["eventSource"], "arn": event["eventSourceArn"],
                            "messages": msgs}) + "\\n")
    return {"n": len(msgs)}
'''


class Broker:
    """One rabbitmq-server node on free ports; restart keeps its data."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.port = free_port()
        self.epmd_port = free_port()
        (tmp / "enabled_plugins").write_text("[].\n")
        self.proc = None

    def env(self):
        env = dict(os.environ)
        t = str(self.tmp)
        env.update(
            HOME=t, RABBITMQ_NODENAME="lambit@localhost", RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_DIST_PORT=str(free_port()),
            ERL_EPMD_PORT=str(self.epmd_port), RABBITMQ_MNESIA_BASE=f"{t}/mnesia",
            RABBITMQ_LOG_BASE=f"{t}/log", RABBITMQ_ENABLED_PLUGINS_FILE=f"{t}/enabled_plugins",
            RABBITMQ_CONFIG_FILE=f"{t}/rabbitmq", RABBITMQ_ADVANCED_CONFIG_FILE=f"{t}/advanced.config",
            RABBITMQ_CONF_ENV_FILE=f"{t}/rabbitmq-env.conf",
        )
        return env

    def start(self):
        log = open(self.tmp / "server.out", "ab")
        self.proc = subprocess.Popen([str(RMQ)], env=self.env(), stdout=log, stderr=log, start_new_session=True)
        deadline = time.time() + 90
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited: " + (self.tmp / "server.out").read_text()[-2000:])
            try:
                self.connect().close()
                return
            except pika.exceptions.AMQPConnectionError:
                time.sleep(0.5)
        raise RuntimeError("rabbitmq-server did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def connect(self):
        return pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", self.port, connection_attempts=1))

    def publish(self, *bodies):
        c = self.connect()
        ch = c.channel()
        for b in bodies:
            ch.basic_publish("", "jobs", b.encode(), pika.BasicProperties(
                content_type="text/plain", delivery_mode=2, headers={"origin": "test", "n": 7}))
        c.close()

    def depth(self):
        c = self.connect()
        n = c.channel().queue_declare("jobs", durable=True, passive=True).method.message_count
        c.close()
        return n


def ensure_rabbitmq():
    if RMQ.exists():
        return
    if shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "rabbitmq-server"],
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), capture_output=True, timeout=600)
    if not RMQ.exists():
        pytest.skip("rabbitmq-server is not installed and could not be (apt-get install rabbitmq-server)")


@pytest.fixture(scope="module")
def setup():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    ensure_rabbitmq()
    with tempfile.TemporaryDirectory(prefix="lamb-rmq-") as tmp:
        tmp = Path(tmp)
        (tmp / "rmq").mkdir()
        (tmp / "out").mkdir()
        broker = Broker(tmp / "rmq")
        broker.start()
        d = Daemon(tmp)
        d.runtimes_dir = BUILD
        d.extra_args = ["--filesystem", f"out={tmp / 'out'}",
                        "--rabbitmq", f"local=amqp://guest:guest@127.0.0.1:{broker.port}"]
        try:
            c = broker.connect()
            c.channel().queue_declare("jobs", durable=True)
            c.close()
            d.start()
            yield d, broker, tmp / "out"
        finally:
            assert d.stop() == 0
            broker.stop()
            subprocess.run(["epmd", "-port", str(broker.epmd_port), "-kill"], capture_output=True,
                           env=dict(os.environ, ERL_EPMD_PORT=str(broker.epmd_port)))


def batches(out):
    f = out / "batches.jsonl"
    if not f.exists():
        return []
    return [json.loads(line) for line in f.read_text().splitlines() if line.strip()]


def delivered(out):
    return [m["data"] for b in batches(out) if "messages" in b for m in b["messages"]]


def test_rabbitmq_queue_feeds_function_in_batches(setup):
    d, broker, out = setup
    lam = d.lambda_client()
    lam.create_function(FunctionName="rmq-consumer", Role=ROLE, Runtime="python3.11", Handler="index.handler",
                        Code={"ZipFile": make_zip({"index.py": FUNCTION})}, Timeout=30,
                        FileSystemConfigs=[{"Arn": FS_ARN, "LocalMountPath": "/mnt/out"}])

    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName="rmq-consumer", Queues=["jobs"],
                                        EventSourceArn=BROKER_ARN.replace(":local:", ":nope:"))
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName="nope", Queues=["jobs"], EventSourceArn=BROKER_ARN)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    m = lam.create_event_source_mapping(FunctionName="rmq-consumer", EventSourceArn=BROKER_ARN, Queues=["jobs"],
                                        BatchSize=5, MaximumBatchingWindowInSeconds=1)
    assert m["ResponseMetadata"]["HTTPStatusCode"] == 202
    uuid = m["UUID"]
    assert m["State"] == "Creating" and m["BatchSize"] == 5 and m["Queues"] == ["jobs"]
    assert lam.get_event_source_mapping(UUID=m["UUID"])["State"] == "Enabled"
    assert m["FunctionArn"].endswith(":function:rmq-consumer")
    assert lam.get_event_source_mapping(UUID=uuid)["UUID"] == uuid
    listed = lam.list_event_source_mappings(FunctionName="rmq-consumer")["EventSourceMappings"]
    assert [x["UUID"] for x in listed] == [uuid]

    # Batches of at most 5, every message once.
    sent = [f"m{i}" for i in range(12)]
    broker.publish(*sent)
    wait_for(lambda: sorted(delivered(out)) == sorted(sent), what="12 messages delivered")
    got = [b for b in batches(out) if "messages" in b]
    assert all(1 <= len(b["messages"]) <= 5 for b in got)
    assert len(got) >= 3
    first = got[0]
    assert first["source"] == "aws:rmq" and first["arn"] == BROKER_ARN
    msg = first["messages"][0]
    assert msg["key"] == "jobs::/" and msg["redelivered"] is False
    assert msg["props"]["contentType"] == "text/plain" and msg["props"]["deliveryMode"] == 2
    assert msg["props"]["headers"]["n"] == 7
    assert bytes(msg["props"]["headers"]["origin"]["bytes"]) == b"test"
    assert msg["props"]["bodySize"] == len(msg["data"])

    # A failing batch is not acknowledged: the broker redelivers it.
    broker.publish("fail-once")
    wait_for(lambda: "fail-once" in delivered(out), what="the failed batch redelivered")
    assert any("failed" in b for b in batches(out))
    retried = [m for b in batches(out) if "messages" in b for m in b["messages"] if m["data"] == "fail-once"]
    assert len(retried) == 1 and retried[0]["redelivered"] is True
    assert broker.depth() == 0

    # Disabled: the queue is not read.
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    time.sleep(1.5)
    broker.publish("while-disabled")
    time.sleep(3)
    assert "while-disabled" not in delivered(out)
    assert broker.depth() == 1
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)
    wait_for(lambda: "while-disabled" in delivered(out), what="delivery after re-enabling")

    # The broker goes away and comes back.
    broker.stop()
    time.sleep(2)
    broker.start()
    broker.publish("after-restart")
    wait_for(lambda: "after-restart" in delivered(out), timeout=90, what="delivery after a broker restart")

    # The mapping survives a daemon restart.
    d.restart()
    broker.publish("after-daemon-restart")
    wait_for(lambda: "after-daemon-restart" in delivered(out), what="delivery after a daemon restart")

    assert lam.delete_event_source_mapping(UUID=uuid)["State"] == "Deleting"
    with pytest.raises(ClientError) as e:
        lam.get_event_source_mapping(UUID=uuid)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    time.sleep(1.5)
    broker.publish("after-delete")
    time.sleep(3)
    assert "after-delete" not in delivered(out)
    assert all(delivered(out).count(x) == 1 for x in sent)
