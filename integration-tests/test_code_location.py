"""Code.Location and Content.Location (issue 14): a presigned URL on the API
listener that serves the original zip with no SigV4 header, as an S3 URL
does; fetched with urllib, curl and the URL the aws CLI prints. An altered
or expired URL is 403."""

import hashlib
import hmac
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

from conftest import SECRET_KEY, create, make_zip

CODE = make_zip({"bootstrap": (b"#!/bin/sh\necho located\n", 0o755), "data.txt": b"x" * 1000})


def fetch(url):
    """(status, body) of a plain GET."""
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_code_location_serves_the_original_zip(lam, daemon, tmp_path):
    create(lam, "loc-fn", Code={"ZipFile": CODE})
    got = lam.get_function(FunctionName="loc-fn")
    assert got["Code"]["RepositoryType"] == "S3"
    url = got["Code"]["Location"]
    assert url.startswith(daemon.endpoint + "/"), url
    assert fetch(url) == (200, CODE)
    # The aws CLI's URL, fetched by curl as the README shows.
    printed = daemon.aws("get-function", "--function-name", "loc-fn")["Code"]["Location"]
    out = tmp_path / "code.zip"
    subprocess.run(["curl", "-sSf", "-o", str(out), printed], check=True, timeout=60)
    assert out.read_bytes() == CODE


def test_content_location_serves_the_layer_zip(lam):
    layer = lam.publish_layer_version(LayerName="loc-layer", Content={"ZipFile": CODE})
    assert fetch(layer["Content"]["Location"]) == (200, CODE)
    again = lam.get_layer_version(LayerName="loc-layer", VersionNumber=layer["Version"])
    assert fetch(again["Content"]["Location"]) == (200, CODE)
    by_arn = lam.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])
    assert fetch(by_arn["Content"]["Location"]) == (200, CODE)


def test_altered_or_expired_urls_are_refused(lam):
    create(lam, "loc-refused", Code={"ZipFile": make_zip({"bootstrap": (b"#!/bin/sh\n", 0o755)})})
    url = lam.get_function(FunctionName="loc-refused")["Code"]["Location"]
    parts = urlsplit(url)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    status, body = fetch(f"{base}?Expires={int(q['Expires']) + 3600}&Signature={q['Signature']}")
    assert status == 403 and b"AccessDenied" in body, "a later expiry with the old signature"
    flipped = ("0" if q["Signature"][0] != "0" else "1") + q["Signature"][1:]
    assert fetch(f"{base}?Expires={q['Expires']}&Signature={flipped}")[0] == 403
    assert fetch(base)[0] == 403, "no signature at all"
    # Signed as the daemon signs (its documented scheme, with the test's
    # key), but an hour in the past: expired.
    kind, name = parts.path.split("/")[-2:]
    expires = int(time.time()) - 3600
    sig = hmac.new(f"lamb code location {SECRET_KEY}".encode(),
                   f"{kind}/{name.removesuffix('.zip')}/{expires}".encode(), hashlib.sha256).hexdigest()
    status, body = fetch(f"{base}?Expires={expires}&Signature={sig}")
    assert status == 403 and b"expired" in body
