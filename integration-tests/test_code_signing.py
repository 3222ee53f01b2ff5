"""Code signing configs through boto3 (issue 14): their lifecycle, a
function's config, the functions that use one, and the errors. lamb checks
no signature: a config changes no deployment (README)."""

import pytest
from botocore.exceptions import ClientError

from conftest import create, error_code

PROFILE = "arn:aws:signer:us-east-1:123456789012:/signing-profiles/p/abcdef"


def test_code_signing_config_lifecycle(lam):
    made = lam.create_code_signing_config(Description="d", AllowedPublishers={"SigningProfileVersionArns": [PROFILE]})
    c = made["CodeSigningConfig"]
    arn = c["CodeSigningConfigArn"]
    assert c["CodeSigningConfigId"].startswith("csc-") and len(c["CodeSigningConfigId"]) == 21
    assert arn.endswith(":code-signing-config:" + c["CodeSigningConfigId"])
    assert c["CodeSigningPolicies"] == {"UntrustedArtifactOnDeployment": "Warn"}
    assert lam.get_code_signing_config(CodeSigningConfigArn=arn)["CodeSigningConfig"] == c
    upd = lam.update_code_signing_config(CodeSigningConfigArn=arn,
                                         CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Enforce"})
    assert upd["CodeSigningConfig"]["CodeSigningPolicies"]["UntrustedArtifactOnDeployment"] == "Enforce"
    assert upd["CodeSigningConfig"]["Description"] == "d"
    assert arn in [x["CodeSigningConfigArn"] for x in lam.list_code_signing_configs()["CodeSigningConfigs"]]

    fn = create(lam, "csc-fn")
    assert lam.get_function_code_signing_config(FunctionName="csc-fn")["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert "CodeSigningConfigArn" not in lam.get_function_code_signing_config(FunctionName="csc-fn")
    put = lam.put_function_code_signing_config(FunctionName="csc-fn", CodeSigningConfigArn=arn)
    assert (put["CodeSigningConfigArn"], put["FunctionName"]) == (arn, "csc-fn")
    got = lam.get_function_code_signing_config(FunctionName="csc-fn")
    assert got["CodeSigningConfigArn"] == arn
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == [fn["FunctionArn"]]
    with pytest.raises(ClientError) as e:
        lam.delete_code_signing_config(CodeSigningConfigArn=arn)
    assert error_code(e) == "ResourceConflictException", "in use by csc-fn"
    lam.delete_function_code_signing_config(FunctionName="csc-fn")
    assert lam.list_functions_by_code_signing_config(CodeSigningConfigArn=arn)["FunctionArns"] == []
    lam.delete_code_signing_config(CodeSigningConfigArn=arn)
    with pytest.raises(ClientError) as e:
        lam.get_code_signing_config(CodeSigningConfigArn=arn)
    assert error_code(e) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.put_function_code_signing_config(FunctionName="csc-fn", CodeSigningConfigArn=arn)
    assert error_code(e) == "CodeSigningConfigNotFoundException"
    with pytest.raises(ClientError) as e:
        lam.put_function_code_signing_config(FunctionName="csc-missing", CodeSigningConfigArn=arn)
    assert error_code(e) == "ResourceNotFoundException"


def test_a_bad_policy_changes_nothing(lam):
    before = lam.list_code_signing_configs()["CodeSigningConfigs"]
    with pytest.raises(ClientError) as e:
        lam.create_code_signing_config(AllowedPublishers={"SigningProfileVersionArns": [PROFILE]},
                                       CodeSigningPolicies={"UntrustedArtifactOnDeployment": "Ignore"})
    assert error_code(e) == "ValidationException"
    assert lam.list_code_signing_configs()["CodeSigningConfigs"] == before
