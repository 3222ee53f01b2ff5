"""Resource-based policies through boto3: AddPermission, GetPolicy and
RemovePermission per function and qualifier, their RevisionId, and the layer
version permissions (issue 14). Their enforcement on function URLs is in
test_urls.py; AWS's recorded answers in test_recorded.py."""

import json

import pytest
from botocore.exceptions import ClientError

from conftest import create, error_code, make_zip


def code(excinfo):
    return error_code(excinfo)


def test_function_policy_lifecycle(lam):
    create(lam, "pol-fn")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName="pol-fn")
    assert code(e) == "ResourceNotFoundException"
    added = lam.add_permission(FunctionName="pol-fn", StatementId="sns", Action="lambda:InvokeFunction",
                               Principal="sns.amazonaws.com", SourceArn="arn:aws:sns:us-east-1:123456789012:t",
                               SourceAccount="123456789012")
    statement = json.loads(added["Statement"])
    assert statement == {
        "Sid": "sns", "Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "lambda:InvokeFunction", "Resource": lam.get_function(FunctionName="pol-fn")
        ["Configuration"]["FunctionArn"],
        "Condition": {"StringEquals": {"AWS:SourceAccount": "123456789012"},
                      "ArnLike": {"AWS:SourceArn": "arn:aws:sns:us-east-1:123456789012:t"}},
    }
    got = lam.get_policy(FunctionName="pol-fn")
    policy = json.loads(got["Policy"])
    assert policy["Version"] == "2012-10-17" and policy["Statement"] == [statement]
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName="pol-fn", StatementId="sns", Action="lambda:InvokeFunction", Principal="*")
    assert code(e) == "ResourceConflictException"
    # A stale RevisionId changes nothing.
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName="pol-fn", StatementId="other", Action="lambda:InvokeFunction",
                           Principal="123456789012", RevisionId="stale")
    assert code(e) == "PreconditionFailedException"
    again = lam.get_policy(FunctionName="pol-fn")
    assert (again["Policy"], again["RevisionId"]) == (got["Policy"], got["RevisionId"])
    lam.add_permission(FunctionName="pol-fn", StatementId="other", Action="lambda:InvokeFunction",
                       Principal="123456789012", RevisionId=got["RevisionId"])
    after = lam.get_policy(FunctionName="pol-fn")
    assert after["RevisionId"] != got["RevisionId"]
    with pytest.raises(ClientError) as e:
        lam.remove_permission(FunctionName="pol-fn", StatementId="other", RevisionId=got["RevisionId"])
    assert code(e) == "PreconditionFailedException"
    lam.remove_permission(FunctionName="pol-fn", StatementId="other", RevisionId=after["RevisionId"])
    lam.remove_permission(FunctionName="pol-fn", StatementId="sns")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName="pol-fn")
    assert code(e) == "ResourceNotFoundException", "the last statement removed takes the policy"


def test_policies_per_qualifier(lam):
    fn = create(lam, "pol-q")
    lam.publish_version(FunctionName="pol-q")
    lam.create_alias(FunctionName="pol-q", Name="live", FunctionVersion="1")
    added = json.loads(lam.add_permission(FunctionName="pol-q", Qualifier="live", StatementId="a",
                                          Action="lambda:InvokeFunction", Principal="*")["Statement"])
    assert added["Resource"] == fn["FunctionArn"] + ":live"
    assert len(json.loads(lam.get_policy(FunctionName="pol-q:live")["Policy"])["Statement"]) == 1
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName="pol-q")
    assert code(e) == "ResourceNotFoundException", "the alias's policy is its own"
    with pytest.raises(ClientError) as e:
        lam.add_permission(FunctionName="pol-q", Qualifier="7", StatementId="a", Action="lambda:InvokeFunction",
                           Principal="*")
    assert code(e) == "ResourceNotFoundException"
    # Deleting the alias takes its policy: a new alias of that name has none.
    lam.delete_alias(FunctionName="pol-q", Name="live")
    lam.create_alias(FunctionName="pol-q", Name="live", FunctionVersion="1")
    with pytest.raises(ClientError) as e:
        lam.get_policy(FunctionName="pol-q", Qualifier="live")
    assert code(e) == "ResourceNotFoundException"
    lam.add_permission(FunctionName="pol-q", Qualifier="live", StatementId="a", Action="lambda:InvokeFunction",
                       Principal="*")
    # Deleting the function takes its policies: a new one of that name has none.
    lam.delete_function(FunctionName="pol-q")
    create(lam, "pol-q")
    lam.publish_version(FunctionName="pol-q")
    lam.create_alias(FunctionName="pol-q", Name="live", FunctionVersion="1")
    with pytest.raises(ClientError):
        lam.get_policy(FunctionName="pol-q", Qualifier="live")


def test_layer_version_policy(lam):
    v = lam.publish_layer_version(LayerName="pol-layer", Content={"ZipFile": make_zip({"a": b"a"})})
    added = lam.add_layer_version_permission(LayerName="pol-layer", VersionNumber=v["Version"], StatementId="acct",
                                             Action="lambda:GetLayerVersion", Principal="123456789012")
    assert json.loads(added["Statement"])["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    got = lam.get_layer_version_policy(LayerName="pol-layer", VersionNumber=v["Version"])
    assert got["RevisionId"] == added["RevisionId"]
    with pytest.raises(ClientError) as e:
        lam.add_layer_version_permission(LayerName="pol-layer", VersionNumber=v["Version"], StatementId="x",
                                         Action="lambda:InvokeFunction", Principal="*")
    assert code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        lam.add_layer_version_permission(LayerName="pol-layer", VersionNumber=99, StatementId="x",
                                         Action="lambda:GetLayerVersion", Principal="*")
    assert code(e) == "ResourceNotFoundException"
    lam.remove_layer_version_permission(LayerName="pol-layer", VersionNumber=v["Version"], StatementId="acct")
    with pytest.raises(ClientError) as e:
        lam.get_layer_version_policy(LayerName="pol-layer", VersionNumber=v["Version"])
    assert code(e) == "ResourceNotFoundException"


def test_concurrent_add_permissions_all_land(lam, daemon):
    """Each AddPermission without a RevisionId lands however many run at
    once: the daemon retries a write that another one raced."""
    from concurrent.futures import ThreadPoolExecutor
    create(lam, "pol-race")
    clients = [daemon.lambda_client() for _ in range(16)]

    def add(i):
        return clients[i].add_permission(FunctionName="pol-race", StatementId=f"s{i}",
                                         Action="lambda:InvokeFunction", Principal="123456789012")

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(add, range(16)))
    sids = {s["Sid"] for s in json.loads(lam.get_policy(FunctionName="pol-race")["Policy"])["Statement"]}
    assert sids == {f"s{i}" for i in range(16)}
