"""SnapStart end to end with boto3 against a real daemon and real sandboxes:
`SnapStart` in the configuration as AWS shows it (`OptimizationStatus` On
only on published versions) and its refusals; a published version `Pending`
until its snapshot is made, then `Active`; an invocation of it restored
(the before-snapshot hooks, then the after-restore hooks, in AWS's order;
`AWS_LAMBDA_INITIALIZATION_TYPE=snap-start`; `Restore Duration` instead of
`Init Duration`) with the same environment, context and request id as a
plain cold start; two restores not sharing their random numbers; snapshots
made again by a restarted daemon; none made past --memory-capacity; and an
extension's Telemetry API subscription getting the restore's records."""

import base64
import json

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, GATE_ARN, deploy, error_code, function_daemon, sandbox_cgroups, wait_for

IDLE_TTL_S = 2
RUNTIME = "python3.13"

pytestmark = pytest.mark.skipif(
    not (BUILD / RUNTIME / "var" / "runtime" / "snapshot_restore_py.py").is_file(),
    reason="the python runtime trees are not built with SnapStart's hooks (make rootfs)",
)

HANDLER = b'''
import os, random, uuid
from snapshot_restore_py import register_before_snapshot, register_after_restore

# One per sandbox: tells which sandbox answered.
SANDBOX = uuid.uuid4().hex
calls = []

@register_before_snapshot
def before_1():
    calls.append("before-1")

register_before_snapshot(lambda tag: calls.append(tag), "before-2")

@register_after_restore
def after(tag="after-1"):
    calls.append(tag)

register_after_restore(after, tag="after-2")

def status():
    """What isolates the process, from /proc/self/status."""
    keep = ("Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp")
    with open("/proc/self/status") as f:
        return {k: v.strip() for k, _, v in (line.partition(":") for line in f) if k in keep}

def handler(event, context):
    return {"status": status(), "hostname": os.uname().nodename, "calls": calls, "sandbox": SANDBOX, "random": random.random(), "env": dict(os.environ),
            "request_id": context.aws_request_id, "memory": context.memory_limit_in_mb,
            "function_name": context.function_name, "function_version": context.function_version,
            "arn": context.invoked_function_arn, "log_group": context.log_group_name}
'''

SNAP = {"ApplyOn": "PublishedVersions"}

# The daemon's gate directory (conftest's function_daemon): a gated
# init waits for the test to open the gate.
GATED = b'''
import os, time
while not os.path.exists("/mnt/gate/open"):
    time.sleep(0.02)
def handler(event, context):
    return {"type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
'''


@pytest.fixture(scope="module")
def daemon_():
    with function_daemon("lamb-snap-", "--idle-ttl", f"{IDLE_TTL_S}s", gate=True) as d:
        yield d


@pytest.fixture(scope="module")
def gate(daemon_):
    return daemon_.gate


@pytest.fixture(scope="module")
def lam(daemon_):
    return daemon_.lambda_client()


def call(lam, name, qualifier=None):
    kw = {"Qualifier": qualifier} if qualifier else {}
    r = lam.invoke(FunctionName=name, Payload=b"{}", LogType="Tail", **kw)
    assert "FunctionError" not in r, r["Payload"].read()
    out = json.loads(r["Payload"].read())
    return out, base64.b64decode(r["LogResult"]).decode(), r["ResponseMetadata"]["RequestId"]


def active(lam, name, version):
    c = lam.get_function_configuration(FunctionName=name, Qualifier=version)
    assert c["State"] != "Failed", c
    return c["State"] == "Active" and c


def publish_active(lam, name):
    v = lam.publish_version(FunctionName=name)
    assert v["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
    assert v["State"] in ("Pending", "Active")
    return wait_for(lambda: active(lam, name, v["Version"]), what="the snapshot")["Version"]


def test_configuration_shows_snapstart_and_refuses_what_aws_refuses(lam):
    c = deploy(lam, "snap-config", {"app.py": HANDLER}, runtime=RUNTIME, SnapStart=SNAP)
    assert c["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
    got = lam.get_function(FunctionName="snap-config")["Configuration"]
    assert got["SnapStart"] == c["SnapStart"]
    off = lam.update_function_configuration(FunctionName="snap-config", SnapStart={"ApplyOn": "None"})
    assert off["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
    lam.get_waiter("function_updated_v2").wait(FunctionName="snap-config")
    v = lam.publish_version(FunctionName="snap-config")
    assert (v["SnapStart"]["OptimizationStatus"], v["State"]) == ("Off", "Active")

    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName="snap-config", SnapStart={"ApplyOn": "Always"})
    assert error_code(e) == "ValidationException"
    assert "snapStart.applyOn" in str(e.value)
    with pytest.raises(ClientError) as e:
        deploy(lam, "snap-old-python", {"app.py": HANDLER}, runtime="python3.11", SnapStart=SNAP)
    assert error_code(e) == "InvalidParameterValueException"
    assert "python3.11 is not supported for SnapStart enabled functions." in str(e.value)
    # A refusal changes nothing.
    got = lam.get_function_configuration(FunctionName="snap-config")
    assert got["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}


def test_a_restored_version_runs_the_hooks_and_answers_as_a_cold_start(lam):
    deploy(lam, "snap-fn", {"app.py": HANDLER}, runtime=RUNTIME, SnapStart=SNAP)
    version = publish_active(lam, "snap-fn")

    restored, log, request_id = call(lam, "snap-fn", version)
    assert restored["calls"] == ["before-2", "before-1", "after-1", "after-2"]
    assert restored["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "snap-start"
    report = [line for line in log.splitlines() if line.startswith("REPORT")][0]
    assert "Restore Duration: " in report and "Billed Restore Duration: " in report, report
    assert "Init Duration" not in report, report

    cold, log, cold_id = call(lam, "snap-fn")
    assert cold["calls"] == [] and cold["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert "Init Duration: " in log and "Restore Duration" not in log
    # The same answer as a plain cold start, but for what names the version,
    # the sandbox's own log stream and session, and the init type.
    assert (restored["request_id"], cold["request_id"]) == (request_id, cold_id)
    for key in ("memory", "function_name", "log_group"):
        assert restored[key] == cold[key], key
    assert (restored["function_version"], cold["function_version"]) == (version, "$LATEST")
    assert restored["arn"].endswith(f":snap-fn:{version}")
    differ = {"AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_LOG_STREAM_NAME",
              "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "_X_AMZN_TRACE_ID"}
    same = lambda env: {k: v for k, v in env.items() if k not in differ}  # noqa: E731
    assert same(restored["env"]) == same(cold["env"])
    # Isolated as a plain cold start: no capability, no new privileges,
    # seccomp, the sandbox's own uid.
    assert restored["status"]["CapEff"] == restored["status"]["CapBnd"] == "0000000000000000"
    assert (restored["status"]["NoNewPrivs"], restored["status"]["Seccomp"]) == ("1", "2")
    for key in ("Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
        assert restored["status"][key] == cold["status"][key], key
    assert restored["status"]["Uid"].split()[0] != "0"
    assert restored["hostname"] == cold["hostname"]

    # The restored sandbox is warm afterwards: no second restore.
    again, log, _ = call(lam, "snap-fn", version)
    assert again["sandbox"] == restored["sandbox"] and "Restore Duration" not in log


# An internal extension (a thread of the function) registered for INVOKE,
# subscribed to the Telemetry API's platform records on a port of its own;
# the handler answers the record types received so far, once the restore's
# report is among them, and the events the extension got.
TELEMETRY_APP = b'''
import json, os, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
api = os.environ["AWS_LAMBDA_RUNTIME_API"]
records, events = [], []
class Sink(BaseHTTPRequestHandler):
    def do_POST(self):
        records.extend(r["type"] for r in json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
server = HTTPServer(("127.0.0.1", 4243), Sink)
threading.Thread(target=server.serve_forever, daemon=True).start()
def call(method, path, body=None, headers=None):
    r = urllib.request.Request("http://" + api + path, data=body, method=method, headers=headers or {})
    return urllib.request.urlopen(r)
r = call("POST", "/2020-01-01/extension/register", json.dumps({"events": ["INVOKE"]}).encode(),
         {"Lambda-Extension-Name": "watcher"})
ext_id = r.headers["Lambda-Extension-Identifier"]
call("PUT", "/2022-07-01/telemetry", json.dumps({"schemaVersion": "2022-12-13", "types": ["platform"],
     "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25},
     "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/"}}).encode(),
     {"Lambda-Extension-Identifier": ext_id})
def loop():
    while True:
        ev = json.loads(call("GET", "/2020-01-01/extension/event/next",
                             headers={"Lambda-Extension-Identifier": ext_id}).read())
        events.append(ev["eventType"])
threading.Thread(target=loop, daemon=True).start()
def handler(event, context):
    deadline = time.time() + 3
    while "platform.restoreReport" not in records and time.time() < deadline:
        time.sleep(0.01)
    return {"records": list(records), "events": list(events)}
'''


def test_an_extension_gets_the_restore_records_and_no_event_for_the_restore(lam):
    deploy(lam, "snap-telemetry", {"app.py": TELEMETRY_APP}, runtime=RUNTIME, SnapStart=SNAP)
    version = publish_active(lam, "snap-telemetry")
    out, log, _ = call(lam, "snap-telemetry", version)
    assert "Restore Duration" in log
    restore = [t for t in out["records"] if t.startswith("platform.restore")]
    assert restore == ["platform.restoreStart", "platform.restoreRuntimeDone", "platform.restoreReport"], out
    # Init's records came before the snapshot, the restore's after it.
    assert out["records"].index("platform.initReport") < out["records"].index("platform.restoreStart"), out
    # The invocation is the extension's first event (Lambda has no RESTORE
    # event); it may still be on its way as the handler answers.
    assert out["events"] in ([], ["INVOKE"]), out


def test_a_pending_version_is_not_invoked(lam, gate):
    deploy(lam, "snap-gated", {"app.py": GATED}, runtime=RUNTIME, SnapStart=SNAP,
           FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])
    # $LATEST's own cold start would wait at the gate too: only the version
    # is published, and its snapshot's init waits there.
    v = lam.publish_version(FunctionName="snap-gated")
    assert (v["State"], v["StateReasonCode"]) == ("Pending", "Creating")
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="snap-gated", Qualifier=v["Version"], Payload=b"{}")
    assert error_code(e) == "SnapStartNotReadyException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    (gate / "open").touch()
    wait_for(lambda: active(lam, "snap-gated", v["Version"]), what="the snapshot")
    out, log, _ = call(lam, "snap-gated", v["Version"])
    assert out == {"type": "snap-start"} and "Restore Duration" in log


def test_two_restores_do_not_share_random_numbers():
    # A daemon of its own: it counts its sandboxes.
    with function_daemon("lamb-snap-rand-", "--idle-ttl", f"{IDLE_TTL_S}s") as d:
        lam = d.lambda_client()
        deploy(lam, "snap-random", {"app.py": HANDLER}, runtime=RUNTIME, SnapStart=SNAP)
        version = publish_active(lam, "snap-random")
        first, _, _ = call(lam, "snap-random", version)
        # The restored sandbox expires; the snapshot made to replace it stays.
        count = lambda: len({p.name for p in sandbox_cgroups(d.cgroup_parent)})  # noqa: E731
        wait_for(lambda: count() == 2, what="the refilled snapshot")
        wait_for(lambda: count() == 1, what="the restored sandbox's expiry")
        second, log, _ = call(lam, "snap-random", version)
        assert "Restore Duration" in log
        assert second["sandbox"] != first["sandbox"]
        assert second["random"] != first["random"]
        assert second["calls"] == first["calls"] == ["before-2", "before-1", "after-1", "after-2"]
        # A deleted function's snapshots go with it.
        lam.delete_function(FunctionName="snap-random")
        wait_for(lambda: count() == 0, what="the snapshots' removal")


def test_a_restarted_daemon_makes_the_snapshots_again(lam, daemon_):
    deploy(lam, "snap-restart", {"app.py": HANDLER}, runtime=RUNTIME, SnapStart=SNAP)
    version = publish_active(lam, "snap-restart")
    daemon_.restart()
    lam = daemon_.lambda_client()
    wait_for(lambda: active(lam, "snap-restart", version), what="the snapshot after the restart")
    out, log, _ = call(lam, "snap-restart", version)
    assert out["calls"] == ["before-2", "before-1", "after-1", "after-2"]
    assert "Restore Duration" in log


def test_no_snapshot_is_made_past_the_memory_capacity():
    with function_daemon("lamb-snap-cap-", "--memory-capacity", "200") as d:
        lam = d.lambda_client()
        deploy(lam, "snap-big", {"app.py": HANDLER}, runtime=RUNTIME, SnapStart=SNAP, MemorySize=256)
        v = lam.publish_version(FunctionName="snap-big")["Version"]

        def failed():
            c = lam.get_function_configuration(FunctionName="snap-big", Qualifier=v)
            return c["State"] == "Failed" and c

        c = wait_for(failed, what="the version to fail")
        assert c["StateReasonCode"] == "FunctionError"
        assert "memory" in c["StateReason"]
        assert not sandbox_cgroups(d.cgroup_parent)
