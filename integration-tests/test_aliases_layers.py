"""Aliases with routing, layers, concurrency, account settings and tags."""

import pytest
from botocore.exceptions import ClientError

from conftest import create, error_code, make_zip

LAYER_ZIP = make_zip({"python/lib.py": b"X = 1\n"})


def test_aliases(lam):
    create(lam, "fn-alias")
    v1 = lam.publish_version(FunctionName="fn-alias")["Version"]
    lam.update_function_configuration(FunctionName="fn-alias", Timeout=7)
    v2 = lam.publish_version(FunctionName="fn-alias")["Version"]
    a = lam.create_alias(FunctionName="fn-alias", Name="live", FunctionVersion=v1,
                         RoutingConfig={"AdditionalVersionWeights": {v2: 0.25}})
    assert a["AliasArn"].endswith(":function:fn-alias:live")
    assert a["RoutingConfig"]["AdditionalVersionWeights"] == {v2: 0.25}
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName="fn-alias", Name="live", FunctionVersion=v1)
    assert error_code(e) == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName="fn-alias", Name="bad", FunctionVersion=v1,
                         RoutingConfig={"AdditionalVersionWeights": {v2: 1.5}})
    # As AWS answers test_notfound_and_invalid_routingconfigs (a weight over 1.0).
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        lam.create_alias(FunctionName="fn-alias", Name="ghost", FunctionVersion="99")
    assert error_code(e) in ("ResourceNotFoundException", "InvalidParameterValueException")
    got = lam.get_alias(FunctionName="fn-alias", Name="live")
    with pytest.raises(ClientError) as e:
        lam.update_alias(FunctionName="fn-alias", Name="live", FunctionVersion=v2, RevisionId="nope")
    assert error_code(e) == "PreconditionFailedException"
    up = lam.update_alias(FunctionName="fn-alias", Name="live", FunctionVersion=v2, RevisionId=got["RevisionId"],
                          RoutingConfig={"AdditionalVersionWeights": {}})
    assert up["FunctionVersion"] == v2
    cfg = lam.get_function_configuration(FunctionName="fn-alias", Qualifier="live")
    assert cfg["Version"] == v2
    lam.create_alias(FunctionName="fn-alias", Name="old", FunctionVersion=v1)
    names = sorted(a["Name"] for a in lam.list_aliases(FunctionName="fn-alias")["Aliases"])
    assert names == ["live", "old"]
    # A version an alias routes to cannot be deleted.
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName="fn-alias", Qualifier=v1)
    assert error_code(e) == "ResourceConflictException"
    lam.delete_alias(FunctionName="fn-alias", Name="old")
    with pytest.raises(ClientError) as e:
        lam.get_alias(FunctionName="fn-alias", Name="old")
    assert error_code(e) == "ResourceNotFoundException"


def test_layers(lam):
    l1 = lam.publish_layer_version(LayerName="lib", Content={"ZipFile": LAYER_ZIP},
                                   CompatibleRuntimes=["python3.11"], Description="first")
    assert l1["Version"] == 1
    assert l1["LayerVersionArn"].endswith(":layer:lib:1")
    l2 = lam.publish_layer_version(LayerName="lib", Content={"ZipFile": LAYER_ZIP})
    assert l2["Version"] == 2
    assert lam.get_layer_version(LayerName="lib", VersionNumber=1)["Description"] == "first"
    assert lam.get_layer_version_by_arn(Arn=l1["LayerVersionArn"])["Version"] == 1
    layers = lam.list_layers()["Layers"]
    assert [x["LayerName"] for x in layers if x["LayerName"] == "lib"] == ["lib"]
    assert [v["Version"] for v in lam.list_layer_versions(LayerName="lib")["LayerVersions"]] == [2, 1]
    fn = create(lam, "fn-layered", Runtime="python3.11", Handler="app.handler", Layers=[l1["LayerVersionArn"]])
    assert fn["Layers"][0]["Arn"] == l1["LayerVersionArn"]
    with pytest.raises(ClientError) as e:
        create(lam, "fn-layer-missing", Layers=[l1["LayerVersionArn"][:-1] + "9"])
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.publish_layer_version(LayerName="lib", Content={"S3Bucket": "bucket", "S3Key": "key"})
    assert error_code(e) == "InvalidParameterValueException"
    lam.delete_layer_version(LayerName="lib", VersionNumber=2)
    with pytest.raises(ClientError) as e:
        lam.get_layer_version(LayerName="lib", VersionNumber=2)
    assert error_code(e) == "ResourceNotFoundException"


def test_concurrency_and_account(lam):
    create(lam, "fn-conc")
    assert lam.put_function_concurrency(FunctionName="fn-conc", ReservedConcurrentExecutions=10)[
        "ReservedConcurrentExecutions"] == 10
    assert lam.get_function_concurrency(FunctionName="fn-conc")["ReservedConcurrentExecutions"] == 10
    assert lam.get_function(FunctionName="fn-conc")["Concurrency"]["ReservedConcurrentExecutions"] == 10
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName="fn-conc", ReservedConcurrentExecutions=999)
    assert error_code(e) == "InvalidParameterValueException"
    settings = lam.get_account_settings()
    assert settings["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert settings["AccountLimit"]["UnreservedConcurrentExecutions"] <= 990
    assert settings["AccountUsage"]["FunctionCount"] >= 1
    lam.delete_function_concurrency(FunctionName="fn-conc")
    assert "ReservedConcurrentExecutions" not in lam.get_function_concurrency(FunctionName="fn-conc")
    with pytest.raises(ClientError) as e:
        lam.put_function_concurrency(FunctionName="fn-nope", ReservedConcurrentExecutions=1)
    assert error_code(e) == "ResourceNotFoundException"


def test_tags(lam):
    arn = create(lam, "fn-tags")["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags={"a": "1", "b": "2"})
    assert lam.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "2"}
    lam.untag_resource(Resource=arn, TagKeys=["a"])
    assert lam.list_tags(Resource=arn)["Tags"] == {"b": "2"}
    with pytest.raises(ClientError) as e:
        lam.tag_resource(Resource=arn, Tags={"aws:x": "1"})
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.list_tags(Resource=arn.replace("fn-tags", "fn-untagged-missing"))
    assert error_code(e) == "ResourceNotFoundException"
