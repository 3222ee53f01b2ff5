"""A function's recursion and runtime management configs through boto3
(issue 14): defaults, round trips, bad values refused, and gone with the
function."""

import pytest
from botocore.exceptions import ClientError

from conftest import create, error_code


def test_recursion_config(lam):
    create(lam, "set-rec")
    assert lam.get_function_recursion_config(FunctionName="set-rec")["RecursiveLoop"] == "Terminate"
    assert lam.put_function_recursion_config(FunctionName="set-rec", RecursiveLoop="Allow")["RecursiveLoop"] == "Allow"
    assert lam.get_function_recursion_config(FunctionName="set-rec")["RecursiveLoop"] == "Allow"
    with pytest.raises(ClientError) as e:
        lam.put_function_recursion_config(FunctionName="set-rec", RecursiveLoop="Sometimes")
    assert error_code(e) == "ValidationException"
    assert lam.get_function_recursion_config(FunctionName="set-rec")["RecursiveLoop"] == "Allow"
    with pytest.raises(ClientError) as e:
        lam.get_function_recursion_config(FunctionName="set-missing")
    assert error_code(e) == "ResourceNotFoundException"
    lam.delete_function(FunctionName="set-rec")
    create(lam, "set-rec")
    assert lam.get_function_recursion_config(FunctionName="set-rec")["RecursiveLoop"] == "Terminate"


def test_runtime_management_config(lam):
    fn = create(lam, "set-rt")
    got = lam.get_runtime_management_config(FunctionName="set-rt")
    assert (got["UpdateRuntimeOn"], got["FunctionArn"]) == ("Auto", fn["FunctionArn"])
    arn = "arn:aws:lambda:us-east-1::runtime:0123456789abcdef"
    put = lam.put_runtime_management_config(FunctionName="set-rt", UpdateRuntimeOn="Manual", RuntimeVersionArn=arn)
    assert (put["UpdateRuntimeOn"], put["RuntimeVersionArn"]) == ("Manual", arn)
    got = lam.get_runtime_management_config(FunctionName="set-rt")
    assert (got["UpdateRuntimeOn"], got["RuntimeVersionArn"]) == ("Manual", arn)
    with pytest.raises(ClientError) as e:
        lam.put_runtime_management_config(FunctionName="set-rt", UpdateRuntimeOn="Manual")
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.get_runtime_management_config(FunctionName="set-rt", Qualifier="9")
    assert error_code(e) == "ResourceNotFoundException"
    lam.publish_version(FunctionName="set-rt")
    assert lam.get_runtime_management_config(FunctionName="set-rt", Qualifier="1")["UpdateRuntimeOn"] == "Auto"
