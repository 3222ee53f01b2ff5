"""Kinesis and DynamoDB streams as event sources, end to end: moto's server
(see test_esm_sqs.py), a real daemon (`--aws-endpoint kinesis=...`,
`dynamodbstreams=...`, `sqs=...` for on-failure destinations) and a Python
function that records each batch. Per-shard order; checkpoints that
survive `kill -9` of the daemon (nothing skipped; at most the batches in
flight run twice) with a ParallelizationFactor of 2; StartingPosition LATEST and AT_TIMESTAMP;
BisectBatchOnFunctionError with MaximumRetryAttempts sending the poison
record's batch info to an SQS on-failure destination; a partial batch
response retried from the failed record; DynamoDB stream events filtered
by eventName; tumbling windows: a running count passed through `state` to
each window's final invocation, an answer without a state retried, a window
read again whole after `kill -9`, and one ended early past 1 MB of state."""

import calendar
import json
import time

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, make_zip, wait_for
from test_engine import BUILD
import test_esm_sqs as esm_sqs
from test_esm_sqs import FS_ARN, MOTO_ACCOUNT, batches, moto_daemon, queue_arn

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

FUNCTION = b'''
import base64, json, os
def handler(event, context):
    recs = event["Records"]
    items = []
    for r in recs:
        if "kinesis" in r:
            items.append({"id": r["kinesis"]["sequenceNumber"], "key": r["kinesis"]["partitionKey"],
                          "body": base64.b64decode(r["kinesis"]["data"]).decode()})
        else:
            items.append({"id": r["dynamodb"]["SequenceNumber"], "key": r["eventName"],
                          "body": json.dumps(r["dynamodb"].get("Keys"))})
    failed = []
    for it in items:
        if it["body"].startswith("flaky"):
            marker = "/mnt/out/seen-" + it["body"]
            if not os.path.exists(marker):
                open(marker, "w").close()
                failed.append(it["id"])
    crash = any(it["body"].startswith("crash") for it in items)
    with open("/mnt/out/" + context.function_name + ".jsonl", "a") as f:
        f.write(json.dumps({"items": items, "records": recs, "failed": failed, "crash": crash}) + "\\n")
    if crash:
        raise RuntimeError("crashing on purpose")
    return {"batchItemFailures": [{"itemIdentifier": i} for i in failed]}
'''


# A tumbling window's function: counts the window's records in its state and
# logs each invocation (the state without its padding); a "nostate-" record's
# first invocation answers no state (a failed invocation: Lambda retries it
# with the same state); a "big-" record pads the state past 1 MB.
WINDOW_FUNCTION = b'''
import base64, json, os
def handler(event, context):
    got = [base64.b64decode(r["kinesis"]["data"]).decode() for r in event["Records"]]
    state = dict(event["state"])
    padded = bool(state.pop("pad", ""))
    count = state.get("count", 0) + len(got)
    answer = {"state": {"count": count}, "batchItemFailures": []}
    for b in got:
        marker = "/mnt/out/seen-" + b
        if b.startswith("nostate-") and not os.path.exists(marker):
            open(marker, "w").close()
            answer = {"batchItemFailures": []}
        if b.startswith("big-"):
            answer["state"]["pad"] = "x" * (1100 * 1024)
    line = {k: event[k] for k in ("window", "shardId", "eventSourceARN",
                                  "isFinalInvokeForWindow", "isWindowTerminatedEarly")}
    line.update(state=state, padded=padded, bodies=got, ok="state" in answer)
    with open("/mnt/out/" + context.function_name + ".jsonl", "a") as f:
        f.write(json.dumps(line) + "\\n")
    return answer
'''


@pytest.fixture(scope="module")
def env():
    with moto_daemon("lamb-esm-streams-", ["sqs", "kinesis", "dynamodbstreams"]) as env:
        yield env


def make_function(d, name):
    esm_sqs.make_function(d, name, FUNCTION)


def stream_arn(name):
    return f"arn:aws:kinesis:us-east-1:{MOTO_ACCOUNT}:stream/{name}"


def succeeded(out, function):
    return [it for b in batches(out, function) if not b["crash"] for it in b["items"] if it["id"] not in b["failed"]]


def bodies(items):
    return [it["body"] for it in items]


def make_stream(moto, name, shards=1):
    k = moto.client("kinesis")
    k.create_stream(StreamName=name, ShardCount=shards)
    wait_for(lambda: k.describe_stream(StreamName=name)["StreamDescription"]["StreamStatus"] == "ACTIVE",
             what="the stream active")
    return k


def test_kinesis_shard_order_and_checkpoints_across_kill_9(env):
    d, moto, out = env
    lam = d.lambda_client()
    make_function(d, "kin-order")
    k = make_stream(moto, "orders", shards=2)

    def put(prefix, n):
        sent = []
        for i in range(n):
            key = f"p{i % 3}"
            body = f"{prefix}-{key}-{i}"
            k.put_record(StreamName="orders", Data=body.encode(), PartitionKey=key)
            sent.append(body)
        return sent

    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName="kin-order", EventSourceArn=stream_arn("orders"))
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"  # no StartingPosition
    sent = put("a", 30)
    m = lam.create_event_source_mapping(FunctionName="kin-order", EventSourceArn=stream_arn("orders"),
                                        StartingPosition="TRIM_HORIZON", BatchSize=5, ParallelizationFactor=2)
    assert m["State"] == "Creating" and m["StartingPosition"] == "TRIM_HORIZON"
    assert m["MaximumRetryAttempts"] == -1 and m["MaximumRecordAgeInSeconds"] == -1
    assert m["BisectBatchOnFunctionError"] is False and m["ParallelizationFactor"] == 2
    wait_for(lambda: sorted(set(bodies(succeeded(out, "kin-order")))) == sorted(sent), what="30 records")
    r = batches(out, "kin-order")[0]["records"][0]
    assert r["eventSource"] == "aws:kinesis" and r["eventName"] == "aws:kinesis:record"
    assert r["eventSourceARN"] == stream_arn("orders") and r["invokeIdentityArn"] == ROLE
    assert r["eventID"] == f"shardId-{r['eventID'].split('-')[1].split(':')[0]}:{r['kinesis']['sequenceNumber']}"
    assert r["kinesis"]["kinesisSchemaVersion"] == "1.0" and r["awsRegion"] == "us-east-1"
    assert all(len(b["items"]) <= 5 for b in batches(out, "kin-order"))

    # kill -9 while records flow, then a restart resumes from the checkpoints.
    more = put("b", 40)
    wait_for(lambda: any(b.startswith("b-") for b in bodies(succeeded(out, "kin-order"))),
             what="the second wave started")
    d.proc.kill()
    d.proc.wait()
    d.proc = None
    d.start()
    everything = sent + more
    wait_for(lambda: sorted(set(bodies(succeeded(out, "kin-order")))) == sorted(everything), timeout=90,
             what="every record after the restart")
    done = bodies(succeeded(out, "kin-order"))
    # Per partition key (so per shard), the first delivery of each record is in order.
    for key in ("p0", "p1", "p2"):
        want = [b for b in everything if f"-{key}-" in b]
        firsts = []
        for b in done:
            if b in want and b not in firsts:
                firsts.append(b)
        assert firsts == want, key
    # At least once: only batches in flight at the kill run twice (two
    # shards, two batches of 5 each at once).
    assert len(done) - len(set(done)) <= 2 * 2 * 5


def test_kinesis_bisect_retries_and_on_failure_destination(env):
    d, moto, out = env
    lam = d.lambda_client()
    make_function(d, "kin-bisect")
    k = make_stream(moto, "bisect")
    sqs = moto.client("sqs")
    dest = sqs.create_queue(QueueName="kin-failures")["QueueUrl"]
    sent = ["r0", "r1", "r2", "crash-3", "r4", "r5", "r6", "r7"]
    for b in sent:
        k.put_record(StreamName="bisect", Data=b.encode(), PartitionKey="one")
    m = lam.create_event_source_mapping(
        FunctionName="kin-bisect", EventSourceArn=stream_arn("bisect"), StartingPosition="TRIM_HORIZON",
        BatchSize=8, MaximumBatchingWindowInSeconds=1, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": queue_arn("kin-failures")}})
    assert m["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn("kin-failures")

    def failure():
        msgs = sqs.receive_message(QueueUrl=dest, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(x["Body"]) for x in msgs]
    got = wait_for(failure, what="the on-failure record")
    assert len(got) == 1
    info = got[0]["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["streamArn"] == stream_arn("bisect")
    assert info["startSequenceNumber"] == info["endSequenceNumber"]
    assert got[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert got[0]["requestContext"]["functionArn"].endswith(":function:kin-bisect")
    wait_for(lambda: set(bodies(succeeded(out, "kin-bisect"))) == set(sent) - {"crash-3"},
             what="every other record")
    crashed = [b for b in batches(out, "kin-bisect") if b["crash"] and bodies(b["items"]) == ["crash-3"]]
    assert len(crashed) == 2  # the first try and MaximumRetryAttempts=1


def test_kinesis_partial_batch_response_retries_from_the_failed_record(env):
    d, moto, out = env
    lam = d.lambda_client()
    make_function(d, "kin-partial")
    k = make_stream(moto, "partial")
    sent = ["x0", "x1", "flaky-x2", "x3", "x4"]
    for b in sent:
        k.put_record(StreamName="partial", Data=b.encode(), PartitionKey="one")
    lam.create_event_source_mapping(FunctionName="kin-partial", EventSourceArn=stream_arn("partial"),
                                    StartingPosition="TRIM_HORIZON", BatchSize=10, MaximumBatchingWindowInSeconds=1,
                                    FunctionResponseTypes=["ReportBatchItemFailures"])
    wait_for(lambda: set(bodies(succeeded(out, "kin-partial"))) == set(sent), what="every record done")
    seen = [b for x in batches(out, "kin-partial") for b in bodies(x["items"])]
    assert seen.count("x0") == 1 and seen.count("x1") == 1
    assert seen.count("flaky-x2") == 2 and seen.count("x3") == 2


def test_kinesis_starting_positions(env):
    d, moto, out = env
    lam = d.lambda_client()
    make_function(d, "kin-latest")
    make_function(d, "kin-at")
    k = make_stream(moto, "positions")
    k.put_record(StreamName="positions", Data=b"old", PartitionKey="one")
    time.sleep(1.1)  # arrival timestamps apart from the next records'
    at = time.time()
    time.sleep(1.1)
    k.put_record(StreamName="positions", Data=b"after-ts", PartitionKey="one")
    lam.create_event_source_mapping(FunctionName="kin-at", EventSourceArn=stream_arn("positions"),
                                    StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=at)
    lam.create_event_source_mapping(FunctionName="kin-latest", EventSourceArn=stream_arn("positions"),
                                    StartingPosition="LATEST")
    wait_for(lambda: "after-ts" in bodies(succeeded(out, "kin-at")), what="AT_TIMESTAMP's first record")
    assert "old" not in bodies(succeeded(out, "kin-at"))
    n = [0]

    def latest_flows():
        # LATEST starts wherever the reader first asks: keep writing until one arrives.
        n[0] += 1
        k.put_record(StreamName="positions", Data=f"new-{n[0]}".encode(), PartitionKey="one")
        return any(b.startswith("new-") for b in bodies(succeeded(out, "kin-latest")))
    wait_for(latest_flows, every=0.5, what="LATEST's records")
    got = bodies(succeeded(out, "kin-latest"))
    assert "old" not in got and "after-ts" not in got


def test_dynamodb_stream_events_and_filter(env):
    d, moto, out = env
    lam = d.lambda_client()
    make_function(d, "ddb-changes")
    ddb = moto.client("dynamodb")
    t = ddb.create_table(TableName="items", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                         BillingMode="PAY_PER_REQUEST",
                         StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    arn = t["TableDescription"]["LatestStreamArn"]
    with pytest.raises(ClientError) as e:
        lam.create_event_source_mapping(FunctionName="ddb-changes", EventSourceArn=arn,
                                        StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=time.time())
    assert e.value.response["Error"]["Code"] == "InvalidParameterValueException"
    lam.create_event_source_mapping(FunctionName="ddb-changes", EventSourceArn=arn, StartingPosition="TRIM_HORIZON",
                                    FilterCriteria={"Filters": [{"Pattern": json.dumps(
                                        {"eventName": ["INSERT", "MODIFY"]})}]})
    ddb.put_item(TableName="items", Item={"id": {"S": "a"}, "n": {"N": "1"}})
    ddb.put_item(TableName="items", Item={"id": {"S": "b"}, "n": {"N": "2"}})
    ddb.update_item(TableName="items", Key={"id": {"S": "a"}}, UpdateExpression="SET n = :v",
                    ExpressionAttributeValues={":v": {"N": "3"}})
    ddb.delete_item(TableName="items", Key={"id": {"S": "b"}})
    ddb.put_item(TableName="items", Item={"id": {"S": "c"}})
    # The shard is read in order: once four records are in, the REMOVE
    # (before the last INSERT) was either let through among them or filtered.
    wait_for(lambda: len(succeeded(out, "ddb-changes")) >= 4, what="the stream's records")
    items = succeeded(out, "ddb-changes")
    assert [it["key"] for it in items] == ["INSERT", "INSERT", "MODIFY", "INSERT"]
    r = [x for b in batches(out, "ddb-changes") for x in b["records"]][2]
    assert r["eventSource"] == "aws:dynamodb" and r["eventSourceARN"] == arn and r["awsRegion"] == "us-east-1"
    assert r["dynamodb"]["Keys"] == {"id": {"S": "a"}}
    assert r["dynamodb"]["NewImage"]["n"] == {"N": "3"} and r["dynamodb"]["OldImage"]["n"] == {"N": "1"}
    assert r["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_kinesis_tumbling_window_state_reaches_the_final_invocation(env):
    d, moto, out = env
    lam = d.lambda_client()
    lam.create_function(
        FunctionName="kin-window", Role=ROLE, Runtime="python3.11", Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": WINDOW_FUNCTION})}, Timeout=30,
        FileSystemConfigs=[{"Arn": FS_ARN, "LocalMountPath": "/mnt/out"}])
    k = make_stream(moto, "windows")
    sent = ["w0", "w1", "nostate-w2", "w3", "w4"]
    for b in sent:
        k.put_record(StreamName="windows", Data=b.encode(), PartitionKey="one")
    # One record an invocation, so a window's records pass their count on.
    m = lam.create_event_source_mapping(FunctionName="kin-window", EventSourceArn=stream_arn("windows"),
                                        StartingPosition="TRIM_HORIZON", BatchSize=1, TumblingWindowInSeconds=2)
    assert m["TumblingWindowInSeconds"] == 2
    assert lam.get_event_source_mapping(UUID=m["UUID"])["TumblingWindowInSeconds"] == 2

    def calls():
        return batches(out, "kin-window")

    def finals():
        return [c for c in calls() if c["isFinalInvokeForWindow"]]
    # Records may fall in one window or two (they arrive when they arrive):
    # wait until the final invocations' states count them all.
    wait_for(lambda: sum(c["state"].get("count", 0) for c in finals()) == len(sent), timeout=90,
             what="final invocations carrying every record")
    shard = k.list_shards(StreamName="windows")["Shards"][0]["ShardId"]
    aggregations = [c for c in calls() if not c["isFinalInvokeForWindow"]]
    for c in calls():
        assert c["shardId"] == shard and c["eventSourceARN"] == stream_arn("windows")
        assert c["isWindowTerminatedEarly"] is False
        start, end = (calendar.timegm(time.strptime(c["window"][x], "%Y-%m-%dT%H:%M:%SZ")) for x in ("start", "end"))
        assert end - start == 2 and start % 2 == 0, c["window"]
    # Each record counted once: the answer without a state failed, and its
    # retry came with the same state as the failed try.
    counted = [b for c in aggregations if c["ok"] for b in c["bodies"]]
    assert counted == sent
    tries = [c for c in aggregations if c["bodies"] == ["nostate-w2"]]
    assert [c["ok"] for c in tries] == [False, True] and tries[0]["state"] == tries[1]["state"]
    # Within a window the state is the running count; a window's final
    # invocation has no records and the window's total.
    windows = sorted({json.dumps(c["window"]) for c in aggregations})
    for w in windows:
        mine = [c for c in aggregations if json.dumps(c["window"]) == w and c["ok"]]
        assert [c["state"].get("count", 0) for c in mine] == list(range(len(mine))), w
        final = [c for c in finals() if json.dumps(c["window"]) == w]
        assert len(final) == 1 and final[0]["bodies"] == [], w
        assert final[0]["state"] == {"count": len(mine)}, w
    assert len(finals()) == len(windows)


def test_kinesis_tumbling_window_read_again_after_kill_9(env):
    """The state lives in memory and the checkpoint moves only when a window
    closed: a daemon killed in the middle of a window reads that window again
    from its first record with a fresh state, so its final invocation still
    counts every record of it once."""
    d, moto, out = env
    lam = d.lambda_client()
    lam.create_function(
        FunctionName="kin-window-kill", Role=ROLE, Runtime="python3.11", Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": WINDOW_FUNCTION})}, Timeout=30,
        FileSystemConfigs=[{"Arn": FS_ARN, "LocalMountPath": "/mnt/out"}])
    k = make_stream(moto, "windows-kill")
    sent = ["k0", "k1", "k2", "k3"]
    for b in sent[:2]:
        k.put_record(StreamName="windows-kill", Data=b.encode(), PartitionKey="one")
    lam.create_event_source_mapping(FunctionName="kin-window-kill", EventSourceArn=stream_arn("windows-kill"),
                                    StartingPosition="TRIM_HORIZON", BatchSize=1, TumblingWindowInSeconds=10)
    calls = lambda: batches(out, "kin-window-kill")  # noqa: E731
    wait_for(lambda: any(c["bodies"] == ["k1"] for c in calls()), what="the window's first records")
    d.proc.kill()
    d.proc.wait()
    d.proc = None
    d.start()
    for b in sent[2:]:
        k.put_record(StreamName="windows-kill", Data=b.encode(), PartitionKey="one")
    finals = lambda: [c for c in calls() if c["isFinalInvokeForWindow"]]  # noqa: E731
    wait_for(lambda: sum(c["state"]["count"] for c in finals()) == len(sent), timeout=90,
             what="final invocations counting every record once")
    for f in finals():
        mine = {b for c in calls() if c["window"] == f["window"] for b in c["bodies"]}
        assert f["state"]["count"] == len(mine), (f, mine)
    assert {b for c in calls() for b in c["bodies"]} == set(sent)


def test_kinesis_tumbling_window_ends_early_past_1_mb_of_state(env):
    d, moto, out = env
    lam = d.lambda_client()
    lam.create_function(
        FunctionName="kin-window-big", Role=ROLE, Runtime="python3.11", Handler="index.handler",
        Code={"ZipFile": make_zip({"index.py": WINDOW_FUNCTION})}, Timeout=30,
        FileSystemConfigs=[{"Arn": FS_ARN, "LocalMountPath": "/mnt/out"}])
    k = make_stream(moto, "windows-big")
    sent = ["b0", "big-b1", "b2"]
    for b in sent:
        k.put_record(StreamName="windows-big", Data=b.encode(), PartitionKey="one")
    lam.create_event_source_mapping(FunctionName="kin-window-big", EventSourceArn=stream_arn("windows-big"),
                                    StartingPosition="TRIM_HORIZON", BatchSize=1, TumblingWindowInSeconds=2)
    calls = lambda: batches(out, "kin-window-big")  # noqa: E731
    finals = lambda: [c for c in calls() if c["isFinalInvokeForWindow"]]  # noqa: E731
    wait_for(lambda: sum(c["state"]["count"] for c in finals()) == len(sent), timeout=90,
             what="final invocations counting every record")
    log = calls()
    early = [i for i, c in enumerate(log) if c["isWindowTerminatedEarly"]]
    assert len(early) == 1, log
    e = log[early[0]]
    # The early end comes right after the invocation that grew the state,
    # in its window, with that state; the window goes on with a fresh one.
    assert log[early[0] - 1]["bodies"] == ["big-b1"] and log[early[0] - 1]["window"] == e["window"]
    assert e["isFinalInvokeForWindow"] and e["padded"] and e["bodies"] == []
    assert e["state"]["count"] == log[early[0] - 1]["state"].get("count", 0) + 1
    after = log[early[0] + 1]
    if after["window"] == e["window"]:
        assert after["state"] == {} and not after["padded"]
    assert not any(c["padded"] for c in log[early[0] + 1:])
