"""Async invocations end to end: the durable queue, retries with back-off,
destinations with Lambda's invocation record, event age expiry, the event
invoke config API, `lamb events`, and no event lost when the daemon is
killed with SIGKILL under async load (real daemon, real sandboxes)."""

import json
import os
import re
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, ROLE, Daemon, deploy, make_zip, sandbox_cgroups, wait_for


pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the runtime trees are not built (make rootfs)",
)

ARN = "arn:aws:lambda:us-east-1:000000000000:function:"

# Prints what it got (the destination's record, or the event) so the logs
# are the record of every run; fails when the event says so.
PY_APP = b'''
import json
def handler(event, context):
    print("GOT " + json.dumps(event, sort_keys=True))
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": event.get("n") if isinstance(event, dict) else None}
'''


@pytest.fixture(scope="module")
def engine():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-async-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        # A directory the functions see at /mnt/gate: the test opens the gate
        # that held functions wait on, so what runs when is the test's choice.
        d.gate = Path(tmp) / "gate"
        d.gate.mkdir()
        # No freezing: a frozen sandbox (cgroup v1) holds up the clean-up that
        # the spawner of a killed daemon does, and so the restart's sweep.
        d.extra_args = ["--async-retry-delays", "1s,2s",
                        "--freeze-grace", "1h", "--filesystem", f"gate={d.gate}"]
        d.start()
        try:
            yield d
        finally:
            if d.proc:
                d.stop()


@pytest.fixture(scope="module")
def lam(engine):
    return engine.lambda_client()


def got(engine, name):
    """Every event a function printed, parsed."""
    out = engine.lamb("logs", name).stdout
    return [json.loads(m) for m in re.findall(r"GOT (\{.*\})", out)]


def send(lam, name, payload):
    r = lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload).encode())
    assert r["StatusCode"] == 202
    return r["ResponseMetadata"]["RequestId"]


def test_event_invoke_config_api(lam):
    deploy(lam, "a-cfg", {"app.py": PY_APP})
    deploy(lam, "a-cfg-dest", {"app.py": PY_APP})
    with pytest.raises(ClientError) as e:
        lam.get_function_event_invoke_config(FunctionName="a-cfg")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    c = lam.put_function_event_invoke_config(FunctionName="a-cfg", MaximumRetryAttempts=1)
    assert c["FunctionArn"] == ARN + "a-cfg:$LATEST" and c["MaximumRetryAttempts"] == 1
    assert "MaximumEventAgeInSeconds" not in c
    c = lam.update_function_event_invoke_config(
        FunctionName="a-cfg", MaximumEventAgeInSeconds=300,
        DestinationConfig={"OnFailure": {"Destination": ARN + "a-cfg-dest"}})
    assert c["MaximumRetryAttempts"] == 1 and c["MaximumEventAgeInSeconds"] == 300
    assert c["DestinationConfig"]["OnFailure"]["Destination"] == ARN + "a-cfg-dest"
    got_c = lam.get_function_event_invoke_config(FunctionName="a-cfg")
    assert got_c["MaximumEventAgeInSeconds"] == 300
    listed = lam.list_function_event_invoke_configs(FunctionName="a-cfg")["FunctionEventInvokeConfigs"]
    assert [x["FunctionArn"] for x in listed] == [ARN + "a-cfg:$LATEST"]
    # The model's ranges are ValidationException, Lambda's own checks
    # InvalidParameterValueException (as AWS answers in the recorded
    # test_lambda_eventinvokeconfig_exceptions).
    for bad, code in ((dict(MaximumRetryAttempts=3), "ValidationException"),
                      (dict(MaximumEventAgeInSeconds=21601), "ValidationException"),
                      (dict(DestinationConfig={"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}}),
                       "InvalidParameterValueException"),
                      (dict(DestinationConfig={"OnSuccess": {"Destination": ARN + "a-cfg"}}),
                       "InvalidParameterValueException")):
        with pytest.raises(ClientError) as e:
            lam.put_function_event_invoke_config(FunctionName="a-cfg", **bad)
        assert e.value.response["Error"]["Code"] == code, bad
    lam.delete_function_event_invoke_config(FunctionName="a-cfg")
    assert lam.list_function_event_invoke_configs(FunctionName="a-cfg")["FunctionEventInvokeConfigs"] == []


def test_payload_limit(lam):
    deploy(lam, "a-big", {"app.py": PY_APP})
    big = b'"' + b"x" * (1024 * 1024) + b'"'
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="a-big", InvocationType="Event", Payload=big)
    assert e.value.response["Error"]["Code"] == "RequestTooLargeException"


def test_success_goes_to_on_success(lam, engine):
    deploy(lam, "a-ok", {"app.py": PY_APP})
    deploy(lam, "a-ok-dest", {"app.py": PY_APP})
    lam.put_function_event_invoke_config(
        FunctionName="a-ok", DestinationConfig={"OnSuccess": {"Destination": ARN + "a-ok-dest"}})
    rid = send(lam, "a-ok", {"n": 7})
    recs = wait_for(lambda: got(engine, "a-ok-dest"))
    rec = recs[0]
    assert rec["version"] == "1.0" and rec["timestamp"].endswith("Z")
    assert rec["requestContext"] == {"requestId": rid, "functionArn": ARN + "a-ok:$LATEST",
                                     "condition": "Success", "approximateInvokeCount": 1}
    assert rec["requestPayload"] == {"n": 7}
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["responsePayload"] == {"ok": 7}
    assert got(engine, "a-ok") == [{"n": 7}]
    wait_for(lambda: json.loads(engine.lamb("events", "a-ok", "--json").stdout)["Events"] == [])


def test_failure_retries_then_on_failure(lam, engine):
    deploy(lam, "a-fail", {"app.py": PY_APP})
    deploy(lam, "a-fail-dest", {"app.py": PY_APP})
    lam.put_function_event_invoke_config(
        FunctionName="a-fail", DestinationConfig={"OnFailure": {"Destination": ARN + "a-fail-dest"}})
    t0 = time.time()
    rid = send(lam, "a-fail", {"fail": True, "n": 1})
    rec = wait_for(lambda: got(engine, "a-fail-dest"), timeout=60)[0]
    # Three runs (the first and two retries), 1 s then 2 s apart.
    assert time.time() - t0 >= 3
    assert len(got(engine, "a-fail")) == 3
    ctx = rec["requestContext"]
    assert ctx["requestId"] == rid and ctx["condition"] == "RetriesExhausted"
    assert ctx["approximateInvokeCount"] == 3
    assert rec["responseContext"]["functionError"] == "Unhandled"
    assert rec["responsePayload"]["errorType"] == "ValueError"
    # Kept as failed, listed by `lamb events`.
    events = json.loads(engine.lamb("events", "a-fail", "--json").stdout)["Events"]
    assert [(e["RequestId"], e["Status"], e["Attempts"]) for e in events] == [(rid, "failed", 3)]
    assert "asked to fail" in events[0]["Error"]
    table = engine.lamb("events", "a-fail").stdout
    assert rid in table and "failed" in table


def test_no_retries_when_configured(lam, engine):
    deploy(lam, "a-once", {"app.py": PY_APP})
    lam.put_function_event_invoke_config(FunctionName="a-once", MaximumRetryAttempts=0)
    send(lam, "a-once", {"fail": True})
    wait_for(lambda: json.loads(engine.lamb("events", "a-once", "--json").stdout)["Events"][0]["Status"] == "failed")
    assert len(got(engine, "a-once")) == 1


def test_throttled_events_wait_and_expire(lam, engine):
    """Reserved concurrency 0 throttles every run: events wait (no attempt is
    counted) until their maximum age, then go to OnFailure."""
    deploy(lam, "a-old", {"app.py": PY_APP})
    deploy(lam, "a-old-dest", {"app.py": PY_APP})
    lam.put_function_concurrency(FunctionName="a-old", ReservedConcurrentExecutions=0)
    lam.put_function_event_invoke_config(
        FunctionName="a-old", MaximumEventAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": ARN + "a-old-dest"}})
    rid = send(lam, "a-old", {"n": 1})
    time.sleep(3)
    events = json.loads(engine.lamb("events", "a-old", "--json").stdout)["Events"]
    assert len(events) == 1 and events[0]["Attempts"] == 0 and events[0]["Status"] in ("queued", "running")
    rec = wait_for(lambda: got(engine, "a-old-dest"), timeout=90, every=2)[0]
    assert rec["requestContext"]["condition"] == "EventAgeExceeded"
    assert rec["requestContext"]["requestId"] == rid
    assert got(engine, "a-old") == []


# Events from HELD on wait at a gate the test opens: when the daemon is
# killed, some events have run, some are running and the rest are queued,
# however fast or slow the machine is.
HELD = 20
GATED_APP = b'''
import json, os, time
def handler(event, context):
    if event["n"] >= %d:
        print("WAIT " + json.dumps(event, sort_keys=True), flush=True)
        while not os.path.exists("/mnt/gate/open"):
            time.sleep(0.05)
    print("GOT " + json.dumps(event, sort_keys=True), flush=True)
    return {"ok": event["n"]}
''' % HELD
GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"


def logged(engine, name, word):
    """The `n` of every event a function logged with `word`, read from the
    log files: they are the record while the daemon is down."""
    text = "".join(f.read_text(errors="replace") for f in (engine.data_dir / "logs" / name).rglob("*")
                   if f.is_file())
    return {json.loads(m)["n"] for m in re.findall(word + r" (\{.*\})", text)}


def test_kill_9_loses_nothing(lam, engine):
    """Hundreds of events queued; the daemon is killed with SIGKILL while
    some have run, some are running and the rest wait in the queue; after a
    restart on the same data dir every one runs."""
    lam.create_function(FunctionName="a-many", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": GATED_APP})}, MemorySize=256, Timeout=900,
                        FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])
    n = 300
    for i in range(n):
        send(lam, "a-many", {"n": i})
    # Every event before the gate has run and some event waits at it.
    wait_for(lambda: logged(engine, "a-many", "GOT") == set(range(HELD)) and logged(engine, "a-many", "WAIT"),
             timeout=120)
    engine.proc.send_signal(signal.SIGKILL)
    engine.proc.wait()
    engine.proc = None
    before = logged(engine, "a-many", "GOT")
    assert before == set(range(HELD)), "only the events before the gate ran"
    running = logged(engine, "a-many", "WAIT")
    assert running and len(running) < n - HELD, "some events were running and others queued at the kill"
    # The dead daemon's spawner removes its sandboxes; then open the gate and restart.
    wait_for(lambda: not sandbox_cgroups(engine.cgroup_parent), timeout=30)
    (engine.gate / "open").touch()
    engine.start()

    def all_seen():
        return {e["n"] for e in got(engine, "a-many")} == set(range(n))
    wait_for(all_seen, timeout=240, every=2)
    wait_for(lambda: json.loads(engine.lamb("events", "a-many", "--json").stdout)["Events"] == [], timeout=60)


def test_kill_9_under_concurrent_accepts_loses_no_accepted_event(lam, engine):
    """Many callers send Event invocations at once, so their writes share
    commits (the registry's group commit); the daemon is killed with SIGKILL
    while they send. Every event answered 202 before the kill runs after a
    restart: an answer comes only after its event's commit."""
    lam.create_function(FunctionName="a-burst", Role=ROLE, Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": PY_APP})}, MemorySize=256, Timeout=60)
    # Two at a time: most events still wait in the queue at the kill.
    lam.put_function_concurrency(FunctionName="a-burst", ReservedConcurrentExecutions=2)
    accepted, lock, stop = set(), threading.Lock(), threading.Event()

    def caller(k):
        client = engine.lambda_client()
        for i in range(100_000):
            if stop.is_set():
                return
            try:
                send(client, "a-burst", {"n": k * 100_000 + i})
            except Exception:
                return  # the daemon is gone: this call's fate is unknown, it was not accepted
            with lock:
                accepted.add(k * 100_000 + i)

    callers = [threading.Thread(target=caller, args=(k,)) for k in range(16)]
    for t in callers:
        t.start()
    wait_for(lambda: len(accepted) >= 300, timeout=120)
    engine.proc.send_signal(signal.SIGKILL)
    engine.proc.wait()
    engine.proc = None
    stop.set()
    for t in callers:
        t.join()
    wait_for(lambda: not sandbox_cgroups(engine.cgroup_parent), timeout=30)
    engine.start()
    lam.delete_function_concurrency(FunctionName="a-burst")

    def missing():
        return accepted - {e["n"] for e in got(engine, "a-burst")}
    wait_for(lambda: not missing(), timeout=300, every=2)
