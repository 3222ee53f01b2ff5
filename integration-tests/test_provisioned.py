"""Provisioned concurrency end to end with boto3 against a real daemon and
real sandboxes: Put, Get, List and Delete with AWS's shapes and errors
(the recorded answers of test_provisioned_concurrency_exceptions among
them), sandboxes initialised ahead with
AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency and no Init
Duration, kept past the idle TTL, counted against the account and in the
function's reserved concurrency (a 429 once the provisioned sandbox and an
on-demand one fill it), following their alias, restored by a restarted
daemon, released on delete, and a failed init reported as FAILED."""

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, GATE_ARN, deploy, error_code, function_daemon, sandbox_cgroups, wait_for

IDLE_TTL_S = 2

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(), reason="the runtime trees are not built (make rootfs)"
)

HANDLER = b'''
import os, uuid
# One per sandbox: tells which sandbox answered.
SANDBOX = uuid.uuid4().hex
def handler(event, context):
    return {"type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "sandbox": SANDBOX,
            "version": os.environ["AWS_LAMBDA_FUNCTION_VERSION"]}
'''


# The daemon's gate directory (conftest's function_daemon): a gated
# invocation says it runs there and waits for the test to open the gate.
GATED = b'''
import os, time
def handler(event, context):
    open("/mnt/gate/running-" + context.aws_request_id, "w").close()
    while not os.path.exists("/mnt/gate/open"):
        time.sleep(0.02)
    return {"type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"]}
'''


@pytest.fixture(scope="module")
def daemon_():
    with function_daemon("lamb-prov-", "--idle-ttl", f"{IDLE_TTL_S}s", gate=True) as d:
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
    return json.loads(r["Payload"].read()), base64.b64decode(r["LogResult"]).decode()


def sandboxes(d):
    """The names of the daemon's live sandbox cgroups (each hierarchy has them)."""
    return {p.name for p in sandbox_cgroups(d.cgroup_parent)}


def status(lam, name, qualifier):
    return lam.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)


def wait_ready(lam, name, qualifier, n):
    def ready():
        s = status(lam, name, qualifier)
        assert s["Status"] != "FAILED", s
        return s if s["Status"] == "READY" else None
    s = wait_for(ready, what=f"{name}:{qualifier} READY")
    assert s["AllocatedProvisionedConcurrentExecutions"] == n
    assert s["AvailableProvisionedConcurrentExecutions"] == n
    assert s["RequestedProvisionedConcurrentExecutions"] == n
    return s


def published(lam, name):
    deploy(lam, name, {"app.py": HANDLER}, MemorySize=128)
    wait_for(lambda: lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active")
    return lam.publish_version(FunctionName=name)["Version"]


def test_recorded_answers_and_refusals(lam):
    v = published(lam, "pc-errors")
    # test_provisioned_concurrency_exceptions: get_provisioned_latest.
    with pytest.raises(ClientError) as e:
        status(lam, "pc-errors", "$LATEST")
    assert e.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "The function resource provided must be an alias or a published version.",
    }
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # get_provisioned_config_doesnotexist.
    with pytest.raises(ClientError) as e:
        status(lam, "pc-errors", v)
    assert e.value.response["Error"] == {
        "Code": "ProvisionedConcurrencyConfigNotFoundException",
        "Message": "No Provisioned Concurrency Config found for this function",
    }
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert e.value.response["Type"] == "User"
    # list_provisioned_noconfigs.
    assert lam.list_provisioned_concurrency_configs(FunctionName="pc-errors")["ProvisionedConcurrencyConfigs"] == []

    def refused(qualifier, n, function="pc-errors"):
        with pytest.raises(ClientError) as e:
            lam.put_provisioned_concurrency_config(
                FunctionName=function, Qualifier=qualifier, ProvisionedConcurrentExecutions=n)
        return error_code(e), e.value.response["Error"]["Message"]

    assert refused("$LATEST", 1) == (
        "InvalidParameterValueException",
        "Provisioned Concurrency Configs cannot be applied to unpublished function versions.")
    assert refused("7", 1)[0] == "ResourceNotFoundException"
    assert refused("nope", 1)[0] == "ResourceNotFoundException"
    assert refused(v, 1, function="pc-missing")[0] == "ResourceNotFoundException"
    # The unreserved pool keeps its minimum of 100 of the account's 1000.
    assert refused(v, 901) == (
        "InvalidParameterValueException",
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below "
        "its minimum value of [100].")
    lam.put_function_concurrency(FunctionName="pc-errors", ReservedConcurrentExecutions=1)
    assert refused(v, 2) == (
        "InvalidParameterValueException",
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function")
    lam.delete_function_concurrency(FunctionName="pc-errors")
    # Not both an alias and the version it routes to.
    lam.create_alias(FunctionName="pc-errors", Name="live", FunctionVersion=v)
    lam.put_provisioned_concurrency_config(FunctionName="pc-errors", Qualifier=v, ProvisionedConcurrentExecutions=1)
    assert refused("live", 1) == (
        "ResourceConflictException",
        "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version")
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName="pc-errors", ReservedConcurrentExecutions=0)
    assert error_code(e) == "InvalidParameterValueException"
    # Nothing refused was stored.
    configs = lam.list_provisioned_concurrency_configs(FunctionName="pc-errors")["ProvisionedConcurrencyConfigs"]
    assert [c["FunctionArn"].rsplit(":", 1)[1] for c in configs] == [v]
    # Deleting is idempotent, as on AWS; a deleted function's go with it.
    lam.delete_provisioned_concurrency_config(FunctionName="pc-errors", Qualifier="live")
    lam.delete_function(FunctionName="pc-errors")


def test_provisioned_sandboxes_live_through_the_ttl_follow_the_alias_and_survive_a_restart(lam, daemon_):
    d = daemon_
    v1 = published(lam, "pc-fn")
    lam.create_alias(FunctionName="pc-fn", Name="live", FunctionVersion=v1)
    put = lam.put_provisioned_concurrency_config(FunctionName="pc-fn", Qualifier="live",
                                                 ProvisionedConcurrentExecutions=1)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert put["RequestedProvisionedConcurrentExecutions"] == 1
    assert put["Status"] in ("IN_PROGRESS", "READY")
    assert len(put["LastModified"]) == len("2019-11-21T19:32:12+0000")
    wait_ready(lam, "pc-fn", "live", 1)
    # Initialised ahead of any invocation (the first test's go with their
    # deleted function).
    provisioned = wait_for(lambda: s if len(s := sandboxes(d)) == 1 else None, what="one sandbox")
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == settings["ConcurrentExecutions"] - 1
    [item] = lam.list_provisioned_concurrency_configs(FunctionName="pc-fn")["ProvisionedConcurrencyConfigs"]
    assert item["FunctionArn"].endswith(":function:pc-fn:live")
    assert item["Status"] == "READY"

    first, log = call(lam, "pc-fn", "live")
    assert first["type"] == "provisioned-concurrency"
    assert "REPORT RequestId" in log and "Init Duration" not in log, log

    # An on-demand sandbox of another function: cold (Init Duration), and
    # reaped by the idle TTL while the provisioned one stays.
    published(lam, "pc-other")
    other, log = call(lam, "pc-other")
    assert other["type"] == "on-demand"
    assert "Init Duration" in log, log
    # Nothing but the TTL takes the on-demand sandbox (it may be gone
    # already); by then the provisioned one has been idle longer.
    wait_for(lambda: sandboxes(d) == provisioned, what="the idle TTL reaping the on-demand sandbox")
    again, log = call(lam, "pc-fn", "live")
    assert again["sandbox"] == first["sandbox"], "the provisioned sandbox did not survive the TTL"
    assert "Init Duration" not in log, log

    # Updating the alias moves its provisioned concurrency to the new version.
    lam.update_function_configuration(FunctionName="pc-fn", Description="v2")
    wait_for(lambda: lam.get_function(FunctionName="pc-fn")["Configuration"]["LastUpdateStatus"] == "Successful")
    v2 = lam.publish_version(FunctionName="pc-fn")["Version"]
    lam.update_alias(FunctionName="pc-fn", Name="live", FunctionVersion=v2)
    wait_ready(lam, "pc-fn", "live", 1)
    moved, log = call(lam, "pc-fn", "live")
    assert (moved["version"], moved["type"]) == (v2, "provisioned-concurrency")
    assert "Init Duration" not in log, log
    wait_for(lambda: len(sandboxes(d)) == 1, what="the old version's sandbox released")

    # A restarted daemon makes them again.
    d.restart()
    wait_ready(lam, "pc-fn", "live", 1)
    restored, log = call(lam, "pc-fn", "live")
    assert restored["type"] == "provisioned-concurrency"
    assert restored["sandbox"] != moved["sandbox"]
    assert "Init Duration" not in log, log

    # Deleting the configuration releases them.
    lam.delete_provisioned_concurrency_config(FunctionName="pc-fn", Qualifier="live")
    with pytest.raises(ClientError) as e:
        status(lam, "pc-fn", "live")
    assert error_code(e) == "ProvisionedConcurrencyConfigNotFoundException"
    wait_for(lambda: not sandboxes(d), what="the provisioned sandbox released")
    settings = lam.get_account_settings()["AccountLimit"]
    assert settings["UnreservedConcurrentExecutions"] == settings["ConcurrentExecutions"]
    # Invocations of the alias now run on demand.
    assert call(lam, "pc-fn", "live")[0]["type"] == "on-demand"


def test_a_failing_init_makes_the_configuration_failed(lam):
    deploy(lam, "pc-broken", {"app.py": b"raise RuntimeError('no init for you')\n"}, MemorySize=128)
    wait_for(lambda: lam.get_function(FunctionName="pc-broken")["Configuration"]["State"] == "Active")
    v = lam.publish_version(FunctionName="pc-broken")["Version"]
    lam.put_provisioned_concurrency_config(FunctionName="pc-broken", Qualifier=v, ProvisionedConcurrentExecutions=1)
    s = wait_for(lambda: (s := status(lam, "pc-broken", v))["Status"] == "FAILED" and s, what="FAILED")
    assert s["StatusReason"] == "FUNCTION_ERROR_INIT_FAILURE"
    assert s["AllocatedProvisionedConcurrentExecutions"] == 0


def test_provisioned_invocations_count_in_the_function_s_concurrency(lam, gate):
    deploy(lam, "pc-gated", {"app.py": GATED}, MemorySize=128, Timeout=60,
           FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])
    wait_for(lambda: lam.get_function(FunctionName="pc-gated")["Configuration"]["State"] == "Active")
    v = lam.publish_version(FunctionName="pc-gated")["Version"]
    lam.put_function_concurrency(FunctionName="pc-gated", ReservedConcurrentExecutions=2)
    lam.put_provisioned_concurrency_config(FunctionName="pc-gated", Qualifier=v, ProvisionedConcurrentExecutions=1)
    wait_ready(lam, "pc-gated", v, 1)

    def held():
        r = lam.invoke(FunctionName="pc-gated", Qualifier=v, Payload=b"{}")
        return json.loads(r["Payload"].read())

    with ThreadPoolExecutor(2) as pool:
        calls = [pool.submit(held) for _ in range(2)]
        wait_for(lambda: len(list(gate.glob("running-*"))) == 2, what="two invocations running")
        # The provisioned one and the one on demand fill the reservation.
        with pytest.raises(ClientError) as e:
            lam.invoke(FunctionName="pc-gated", Qualifier=v, Payload=b"{}")
        assert error_code(e) == "TooManyRequestsException"
        assert e.value.response.get("Reason") == "ReservedFunctionConcurrentInvocationLimitExceeded"
        (gate / "open").touch()
        types = sorted(c.result()["type"] for c in calls)
    assert types == ["on-demand", "provisioned-concurrency"]
    lam.delete_function(FunctionName="pc-gated")
