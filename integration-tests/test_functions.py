"""Functions and versions through boto3: every operation and its errors."""

import hashlib
import base64

import pytest
from botocore.exceptions import ClientError

from conftest import BOOTSTRAP, ROLE, create, error_code, make_zip


def test_create_get_update_delete(lam):
    out = create(lam, "fn-basic", Environment={"Variables": {"GREETING": "hi"}}, MemorySize=256, Timeout=10,
                 Tags={"team": "a"})
    assert out["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert out["CodeSha256"] == base64.b64encode(hashlib.sha256(BOOTSTRAP).digest()).decode()
    assert out["CodeSize"] == len(BOOTSTRAP)
    assert out["Version"] == "$LATEST"
    assert out["FunctionArn"].endswith(":function:fn-basic")
    lam.get_waiter("function_active_v2").wait(FunctionName="fn-basic", WaiterConfig={"Delay": 1, "MaxAttempts": 5})

    got = lam.get_function(FunctionName="fn-basic")
    assert got["Configuration"]["MemorySize"] == 256
    assert got["Configuration"]["Environment"]["Variables"] == {"GREETING": "hi"}
    assert got["Tags"] == {"team": "a"}
    assert got["Code"]["RepositoryType"] == "S3"

    cfg = lam.get_function_configuration(FunctionName="fn-basic", Qualifier="$LATEST")
    assert cfg["Timeout"] == 10

    upd = lam.update_function_configuration(FunctionName="fn-basic", Timeout=20, Description="d")
    assert upd["Timeout"] == 20 and upd["Description"] == "d"
    lam.get_waiter("function_updated_v2").wait(FunctionName="fn-basic", WaiterConfig={"Delay": 1, "MaxAttempts": 5})

    new_zip = make_zip({"bootstrap": (b"#!/bin/sh\necho v2\n", 0o755)})
    code = lam.update_function_code(FunctionName="fn-basic", ZipFile=new_zip, Publish=True)
    assert code["Version"] == "1"
    assert code["CodeSize"] == len(new_zip)

    by_arn = lam.get_function(FunctionName=code["FunctionArn"])
    assert by_arn["Configuration"]["Version"] == "1"

    lam.delete_function(FunctionName="fn-basic")
    with pytest.raises(ClientError) as e:
        lam.get_function(FunctionName="fn-basic")
    assert error_code(e) == "ResourceNotFoundException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_create_errors(lam):
    create(lam, "fn-dup")
    with pytest.raises(ClientError) as e:
        create(lam, "fn-dup")
    assert error_code(e) == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        create(lam, "fn-bad-runtime", Runtime="cobol85")
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        create(lam, "fn-bad-mem", MemorySize=100000)
    # A range of the API model: AWS answers ValidationException.
    assert error_code(e) == "ValidationException"
    with pytest.raises(ClientError) as e:
        lam.create_function(FunctionName="fn-s3", Role=ROLE, Runtime="provided.al2023", Handler="h",
                            Code={"S3Bucket": "bucket", "S3Key": "key"})
    assert error_code(e) == "InvalidParameterValueException"
    assert "S3" in e.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as e:
        create(lam, "fn-reserved-env", Environment={"Variables": {"AWS_REGION": "x"}})
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName="fn-missing", Timeout=5)
    assert error_code(e) == "ResourceNotFoundException"


def test_revision_preconditions(lam):
    out = create(lam, "fn-rev")
    with pytest.raises(ClientError) as e:
        lam.update_function_configuration(FunctionName="fn-rev", Timeout=5, RevisionId="not-it")
    assert error_code(e) == "PreconditionFailedException"
    ok = lam.update_function_configuration(FunctionName="fn-rev", Timeout=5, RevisionId=out["RevisionId"])
    assert ok["Timeout"] == 5


def test_publish_and_versions(lam):
    out = create(lam, "fn-ver")
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName="fn-ver", CodeSha256="AAAA")
    assert error_code(e) == "InvalidParameterValueException"
    with pytest.raises(ClientError) as e:
        lam.publish_version(FunctionName="fn-ver", RevisionId="wrong")
    assert error_code(e) == "PreconditionFailedException"
    v1 = lam.publish_version(FunctionName="fn-ver", CodeSha256=out["CodeSha256"])
    assert v1["Version"] == "1"
    assert v1["FunctionArn"].endswith(":fn-ver:1")
    # Unchanged since version 1: the same version comes back.
    assert lam.publish_version(FunctionName="fn-ver")["Version"] == "1"
    lam.update_function_configuration(FunctionName="fn-ver", Timeout=9)
    assert lam.publish_version(FunctionName="fn-ver")["Version"] == "2"
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="fn-ver")["Versions"]]
    assert versions == ["$LATEST", "1", "2"]
    lam.delete_function(FunctionName="fn-ver", Qualifier="1")
    versions = [v["Version"] for v in lam.list_versions_by_function(FunctionName="fn-ver")["Versions"]]
    assert versions == ["$LATEST", "2"]
    with pytest.raises(ClientError) as e:
        lam.delete_function(FunctionName="fn-ver", Qualifier="$LATEST")
    assert error_code(e) == "InvalidParameterValueException"


def test_list_functions_paginates(lam):
    for i in range(5):
        create(lam, f"fn-page-{i}")
    names = []
    marker = None
    while True:
        kw = {"MaxItems": 2}
        if marker:
            kw["Marker"] = marker
        page = lam.list_functions(**kw)
        assert len(page["Functions"]) <= 2
        names += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert {f"fn-page-{i}" for i in range(5)} <= set(names)
    assert len(names) == len(set(names))
    paginated = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate() for f in p["Functions"]]
    assert set(paginated) == set(names)


def test_hostile_bundles_store_nothing(lam, daemon):
    code_dir = daemon.data_dir / "code"
    before = set(p.name for p in code_dir.iterdir())
    hostile = [
        make_zip({"../escape": b"x"}),
        make_zip({"/etc/evil": b"x"}),
        make_zip({"a/../../b": b"x"}),
        b"PK\x03\x04 this is not a zip",
        make_zip({"big": b"\0" * (300 * 1024 * 1024)}),  # 300 MB unzipped: a bomb
    ]
    for i, z in enumerate(hostile):
        with pytest.raises(ClientError) as e:
            create(lam, f"fn-hostile-{i}", Code={"ZipFile": z})
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 413, 502), e.value.response
        with pytest.raises(ClientError):
            lam.get_function(FunctionName=f"fn-hostile-{i}")
    assert set(p.name for p in code_dir.iterdir()) == before
