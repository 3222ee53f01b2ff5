"""File systems and file triggers, end to end: a served directory mounted
into a real sandbox (FileSystemConfigs), `lamb trigger add` watching it, and
examples/thumbnail turning each image dropped there into a thumbnail beside
it and a row in a SQLite file on the same mount. The events go through the
durable async queue; the trigger survives a restart of the daemon."""

import json
import os
import sqlite3
import struct
import tempfile
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, Daemon, wait_for
from test_engine import BUILD, EXAMPLES, zip_dir

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the python3.11 runtime tree is not built (make rootfs)",
)

ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/photos"
MOUNT = "/mnt/photos"


@pytest.fixture(scope="module")
def served():
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-fs-") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--filesystem", f"photos={photos}"]
        d.start()
        try:
            yield d, photos
        finally:
            assert d.stop() == 0


def ppm(width, height):
    px = bytes(v for y in range(height) for x in range(width) for v in (x * 255 // width, y * 255 // height, 90))
    return b"P6\n%d %d\n255\n" % (width, height) + px


def rows(photos):
    db = photos / "thumbnails.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as c:
            return c.execute("SELECT key, width, height, thumbnail, thumb_width, thumb_height, etag "
                             "FROM images ORDER BY key").fetchall()
    except sqlite3.OperationalError:
        return []


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_file_system_configs_are_validated(served):
    d, photos = served
    lam = d.lambda_client()
    code = zip_dir(EXAMPLES / "thumbnail")
    base = dict(Role=ROLE, Runtime="python3.11", Handler="lambda_function.lambda_handler", Code={"ZipFile": code})
    # The mount path's pattern is the API model's: ValidationException, as AWS
    # answers constraint violations; the rest are lamb's own checks.
    for fsc, words, code in [
        ([{"Arn": ARN, "LocalMountPath": "/data"}], "localMountPath", "ValidationException"),
        ([{"Arn": ARN.replace("photos", "nope"), "LocalMountPath": MOUNT}], "no file system named nope",
         "InvalidParameterValueException"),
        ([{"Arn": "arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-1",
           "LocalMountPath": MOUNT}], "not an access point of this lamb", "InvalidParameterValueException"),
    ]:
        with pytest.raises(ClientError) as e:
            lam.create_function(FunctionName="fs-bad", FileSystemConfigs=fsc, **base)
        assert e.value.response["Error"]["Code"] == code
        assert words in e.value.response["Error"]["Message"]
    # Served as group 990, setgid, group-writable.
    st = photos.stat()
    assert st.st_gid == 990 and st.st_mode & 0o2070 == 0o2070


def test_function_writes_through_the_mount(served):
    d, photos = served
    lam = d.lambda_client()
    code = b"""
import os
def handler(event, context):
    p = os.path.join("/mnt/photos", event["name"])
    with open(p, "w") as f:
        f.write("from the sandbox")
    return {"uid": os.getuid(), "files": sorted(os.listdir("/mnt/photos"))}
"""
    from conftest import make_zip
    lam.create_function(FunctionName="fs-writer", Role=ROLE, Runtime="python3.11",
                        Handler="index.handler", Code={"ZipFile": make_zip({"index.py": code})},
                        FileSystemConfigs=[{"Arn": ARN, "LocalMountPath": MOUNT}])
    conf = lam.get_function_configuration(FunctionName="fs-writer")
    assert conf["FileSystemConfigs"] == [{"Arn": ARN, "LocalMountPath": MOUNT}]
    r = lam.invoke(FunctionName="fs-writer", Payload=json.dumps({"name": "hello.txt"}).encode())
    out = json.loads(r["Payload"].read())
    assert "FunctionError" not in r, out
    assert out["uid"] >= 20000 and "hello.txt" in out["files"]
    made = photos / "hello.txt"
    assert made.read_text() == "from the sandbox"
    assert made.stat().st_gid == 990 and made.stat().st_mode & 0o060 == 0o060
    # Removing the configuration removes the mount.
    lam.update_function_configuration(FunctionName="fs-writer", FileSystemConfigs=[])
    r = lam.invoke(FunctionName="fs-writer", Payload=json.dumps({"name": "again.txt"}).encode())
    assert r.get("FunctionError") == "Unhandled"
    assert not (photos / "again.txt").exists()


def test_thumbnail_example_end_to_end(served):
    d, photos = served
    lam = d.lambda_client()
    lam.create_function(FunctionName="thumbnail", Role=ROLE, Runtime="python3.11",
                        Handler="lambda_function.lambda_handler", Code={"ZipFile": zip_dir(EXAMPLES / "thumbnail")},
                        Timeout=60, MemorySize=256,
                        FileSystemConfigs=[{"Arn": ARN, "LocalMountPath": MOUNT}])
    bad = d.lamb("trigger", "add", "thumbnail", "--dir", "/", check=False)
    assert bad.returncode != 0 and "no served file system" in bad.stderr
    added = json.loads(d.lamb("--json", "trigger", "add", "thumbnail", "--dir", str(photos),
                              "--suffix", ".ppm").stdout)
    assert added["FileSystem"] == "photos" and added["Suffix"] == ".ppm"
    listed = json.loads(d.lamb("--json", "trigger", "ls").stdout)["Triggers"]
    assert [t["Id"] for t in listed] == [added["Id"]]

    # Written in place, in a directory made after the trigger (recursive).
    (photos / "in").mkdir()
    (photos / "in" / "cat photo.ppm").write_bytes(ppm(200, 120))
    # Moved in from elsewhere on the same file system.
    tmp = photos / "upload.tmp"
    tmp.write_bytes(ppm(30, 90))
    os.rename(tmp, photos / "dog.ppm")

    got = wait_for(lambda: len(rows(photos)) == 2 and rows(photos), what="two metadata rows")
    assert [r[0] for r in got] == ["dog.ppm", "in/cat photo.ppm"]
    assert got[1][1:6] == (200, 120, "in/cat photo.thumb.png", 64, 38)
    assert got[0][1:6] == (30, 90, "dog.thumb.png", 21, 64)
    assert len(got[1][6]) == 32  # eTag: hex MD5
    assert png_size(photos / "in" / "cat photo.thumb.png") == (64, 38)
    assert png_size(photos / "dog.thumb.png") == (21, 64)
    # What the function wrote did not trigger it again.
    time.sleep(2)
    assert len(rows(photos)) == 2

    # The trigger is in the registry: it fires after a restart.
    d.restart()
    (photos / "bird.ppm").write_bytes(ppm(64, 64))
    wait_for(lambda: any(r[0] == "bird.ppm" for r in rows(photos)), what="the row of bird.ppm after a restart")

    d.lamb("trigger", "rm", added["Id"])
    assert json.loads(d.lamb("--json", "trigger", "ls").stdout)["Triggers"] == []
    (photos / "fish.ppm").write_bytes(ppm(8, 8))
    time.sleep(3)
    assert not any(r[0] == "fish.ppm" for r in rows(photos))
    assert not (photos / "fish.thumb.png").exists()
