"""Container image functions (`PackageType: Image`) from a real registry:
Debian's `docker-registry` (the Distribution registry) on 127.0.0.1 with its
own config and storage, images written here as OCI manifests over the
project's runtime trees and pushed over the registry's HTTP API, and a small
proxy in front of the registry that the test controls: it holds a pull at a
chosen blob until told, then passes it or cuts the connection (a registry
that dies mid-pull), so every wait is for an event, never a sleep."""

import base64
import gzip
import hashlib
import http.client
import http.server
import io
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import BUILD, ROLE, ROOT, Daemon, function_daemon, free_port, wait_for

REGISTRY_BIN = shutil.which("docker-registry")
AWSLAMBDARIC = "awslambdaric==4.2.2"
HELLO = ROOT / "examples" / "hello-provided" / "build" / "bootstrap"
IMAGE_MAX_MB = 200

pytestmark = [
    pytest.mark.skipif(REGISTRY_BIN is None, reason="docker-registry is not installed (make deps)"),
    pytest.mark.skipif(
        not all((BUILD / r / "usr").is_dir() for r in ("python3.11", "nodejs18.x")),
        reason="the runtime trees are not built (make rootfs)",
    ),
    pytest.mark.skipif(not HELLO.is_file(), reason="examples/hello-provided is not built (make examples)"),
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# AWS's base images start this with the handler as CMD.
ENTRYPOINT_SH = b"""#!/bin/sh
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
exec /var/runtime/bootstrap
"""

PY_APP = b"""import os

def handler(event, context):
    return {
        "which": "WHICH",
        "cwd": os.getcwd(),
        "uid": os.getuid(),
        "env": {k: os.environ.get(k) for k in ("IMAGE_VAR", "SHARED", "FUNC_VAR", "_HANDLER", "AWS_REGION")},
        "exists": {p: os.path.lexists(p) for p in event.get("paths", [])},
    }

def other(event, context):
    return {"other": True, "cwd": os.getcwd()}
"""

NODE_APP = b"""export const handler = async (event) => ({ node: process.version, got: event });
"""


def sha(data):
    return hashlib.sha256(data).hexdigest()


# --- images -----------------------------------------------------------------

def tar_bytes(add, compress):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        add(t)
    raw = buf.getvalue()
    return (gzip.compress(raw, compresslevel=1), raw) if compress else (raw, raw)


def files_layer(files, compress=True):
    """A layer of `{path: bytes | (bytes, mode) | ("symlink"|"hardlink"|"char", target)}`."""
    def add(t):
        for path, spec in files.items():
            info = tarfile.TarInfo(path)
            if isinstance(spec, tuple) and spec[0] in ("symlink", "hardlink", "char"):
                info.type = {"symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE, "char": tarfile.CHRTYPE}[spec[0]]
                info.linkname = spec[1] if spec[0] != "char" else ""
                t.addfile(info)
                continue
            data, mode = spec if isinstance(spec, tuple) else (spec, 0o644)
            if path.endswith("/"):
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
                continue
            info.size, info.mode = len(data), mode
            t.addfile(info, io.BytesIO(data))
    return tar_bytes(add, compress)


_TREES = {}


def tree_layer(runtime):
    """A runtime tree as one uncompressed layer (built once per module)."""
    if runtime not in _TREES:
        def skip_devices(info):
            return None if info.isdev() else info
        _TREES[runtime] = tar_bytes(lambda t: t.add(BUILD / runtime, arcname=".", filter=skip_devices), False)
    return _TREES[runtime]


class Registry:
    """`docker-registry serve` on a port of its own; the test pushes to it
    over the Distribution API."""

    def __init__(self, tmp: Path, user=None, password=None, tls=None):
        self.port = free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.auth = {}
        self.ssl = ssl.create_default_context(cafile=str(tls[0])) if tls else None
        self.cafile = tls[0] if tls else None
        config = tmp / "registry.yml"
        text = (
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n"
            f"    rootdirectory: {tmp / 'registry-data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{self.port}\n"
        )
        if tls:
            text += f"  tls:\n    certificate: {tls[1]}\n    key: {tls[2]}\n"
        if user:
            (tmp / "htpasswd").write_text(f"{user}:{bcrypt(password)}\n")
            text += f"auth:\n  htpasswd:\n    realm: lamb-test\n    path: {tmp / 'htpasswd'}\n"
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.auth = {"Authorization": f"Basic {token}"}
        config.write_text(text)
        self.log = open(tmp / "registry.log", "ab")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(config)], stdout=self.log, stderr=self.log)
        wait_for(self.up, timeout=30, what="the registry")

    def up(self):
        try:
            return self._request("GET", self.url + "/v2/").status == 200
        except OSError:
            return False

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=15)

    def _request(self, method, url, data=None, headers=None):
        req = urllib.request.Request(url, data=data, method=method, headers={**self.auth, **(headers or {})})
        return urllib.request.urlopen(req, timeout=60, context=self.ssl)

    def push_blob(self, repo, data):
        digest = "sha256:" + sha(data)
        r = self._request("POST", f"{self.url}/v2/{repo}/blobs/uploads/")
        loc = urllib.parse.urljoin(self.url, r.headers["Location"])
        loc += ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest)
        self._request("PUT", loc, data, {"Content-Type": "application/octet-stream"})
        return digest

    def push_manifest(self, repo, ref, body, media):
        self._request("PUT", f"{self.url}/v2/{repo}/manifests/{ref}", body, {"Content-Type": media})
        return sha(body)

    def push_image(self, repo, tag, layers, config=None, arch="amd64"):
        """Pushes `layers` ((blob, uncompressed) pairs, lowest first) with an
        image config; answers (manifest hex digest, manifest size, layer digests)."""
        descs, diff_ids = [], []
        for blob, raw in layers:
            descs.append({"mediaType": LAYER_GZIP if blob is not raw else LAYER_TAR,
                          "digest": self.push_blob(repo, blob), "size": len(blob)})
            diff_ids.append("sha256:" + sha(raw))
        cfg = json.dumps({"architecture": arch, "os": "linux", "config": config or {},
                          "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self.push_blob(repo, cfg), "size": len(cfg)},
            "layers": descs,
        }).encode()
        return self.push_manifest(repo, tag, manifest, OCI_MANIFEST), len(manifest), [d["digest"] for d in descs]

    def push_index(self, repo, tag, manifests):
        """An index of (hex digest, size, arch) manifests."""
        body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": "sha256:" + d, "size": n,
             "platform": {"architecture": arch, "os": "linux"}} for d, n, arch in manifests]}).encode()
        return self.push_manifest(repo, tag, body, OCI_INDEX)


def bcrypt(password):
    """An htpasswd bcrypt hash, through the C library's crypt (libxcrypt)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt
        except ImportError:
            pytest.skip("no crypt module to hash an htpasswd entry")
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


class HoldingProxy(http.server.ThreadingHTTPServer):
    """Forwards GETs to the registry; a GET of the held blob sends its headers
    and half its body, sets `reached`, and waits for `release`: then sends
    the rest, or, with `cut`, closes the connection mid-body."""

    daemon_threads = True

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        self.held = None
        self.cut = False
        self.reached = threading.Event()
        self.release = threading.Event()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def hold(self, digest, cut=False):
        self.held, self.cut = digest, cut
        self.reached.clear()
        self.release.clear()

    def let_go(self):
        self.held = None
        self.release.set()


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        up = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        up.request("GET", self.path, headers=headers)
        r = up.getresponse()
        body = r.read()
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        held = self.server.held
        if held and self.path.endswith("/blobs/" + held):
            half = len(body) // 2
            self.wfile.write(body[:half])
            self.wfile.flush()
            self.server.reached.set()
            self.server.release.wait()
            if self.server.cut:
                self.close_connection = True
                self.connection.shutdown(2)
                return
            body = body[half:]
        self.wfile.write(body)


# --- fixtures ---------------------------------------------------------------

@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def proxy(registry):
    p = HoldingProxy(registry.port)
    yield p
    p.let_go()
    p.shutdown()


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    """A registry that wants a password: the daemon has it for 127.0.0.1 from
    --registry-auth, and a wrong one for localhost from a Docker config."""
    reg = Registry(tmp_path_factory.mktemp("private"), "lamb", "s3cret")
    yield reg
    reg.stop()


def private_ca(tmp):
    """A certificate authority and a server certificate it signed for
    127.0.0.1, made by openssl: (CA certificate, server chain, server key)."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=tmp)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=lamb test CA",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
        "-out", "server.csr")
    (tmp / "ext.cnf").write_text("basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-days", "2", "-extfile", "ext.cnf", "-out", "server.pem")
    return tmp / "ca.pem", tmp / "server.pem", tmp / "server.key"


@pytest.fixture(scope="module")
def secure(tmp_path_factory):
    """A registry over HTTPS with a certificate of a private CA, which the
    daemon trusts through --registry-ca."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    tmp = tmp_path_factory.mktemp("secure")
    reg = Registry(tmp, tls=private_ca(tmp))
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def d(proxy, private, secure, tmp_path_factory):
    docker = tmp_path_factory.mktemp("docker") / "config.json"
    wrong = base64.b64encode(b"lamb:wrong").decode()
    docker.write_text(json.dumps({"auths": {f"localhost:{private.port}": {"auth": wrong}}}))
    with function_daemon("lamb-images-", "--insecure-registry", f"127.0.0.1:{proxy.port}",
                         "--insecure-registry", f"127.0.0.1:{private.port}",
                         "--insecure-registry", f"localhost:{private.port}",
                         "--registry-auth", f"127.0.0.1:{private.port}=lamb:s3cret",
                         "--docker-config", str(docker),
                         "--registry-ca", str(secure.cafile),
                         # Reachable in a test: 10 GB is Lambda's limit.
                         "--image-max-mb", str(IMAGE_MAX_MB)) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def lam(d):
    return d.lambda_client()


@pytest.fixture(scope="module")
def host(proxy):
    return f"127.0.0.1:{proxy.port}"


def image_layers(d):
    root = d.data_dir / "image-layers"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def half_written(names):
    """Staging directories and scratch blobs (`.tmp-`): what a failed or
    interrupted pull must not leave. (A `.trash-` one is the collector's,
    removing a layer no function uses any more, at the end of a pull.)"""
    return [n for n in names if n.startswith(".tmp-")]


def create_image(lam, name, uri, **kw):
    return lam.create_function(FunctionName=name, Role=ROLE, PackageType="Image", Code={"ImageUri": uri}, **kw)


def settled(lam, name):
    """The configuration once the pull is over (Pending/InProgress no more)."""
    def done():
        c = lam.get_function_configuration(FunctionName=name)
        return c if c["State"] != "Pending" and c["LastUpdateStatus"] != "InProgress" else None
    return wait_for(done, timeout=120, what=f"{name}'s image pull")


def why(c):
    return {k: c.get(k) for k in ("State", "StateReason", "LastUpdateStatus", "LastUpdateStatusReason")}


def call(lam, name, payload=None):
    r = lam.invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), LogType="Tail")
    body = json.loads(r["Payload"].read())
    return r, body


def python_image(registry, tag, which, extra_layers=()):
    app = files_layer({
        "lambda-entrypoint.sh": (ENTRYPOINT_SH, 0o755),
        "var/task/app.py": PY_APP.replace(b"WHICH", which.encode()),
    })
    return registry.push_image("py", tag, [tree_layer("python3.11"), app, *extra_layers], {
        "Entrypoint": ["/lambda-entrypoint.sh"], "Cmd": ["app.handler"], "WorkingDir": "/var/task",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LAMBDA_TASK_ROOT=/var/task",
                "PYTHONPATH=/var/runtime:/var/task", "IMAGE_VAR=from-image", "SHARED=image",
                "AWS_REGION=image-must-not-win"],
        "User": "1234:1234",
    })


# --- tests ------------------------------------------------------------------

def test_refusals_are_awss(lam, host):
    for kw, msg in [
        (dict(Runtime="python3.11", Handler="app.handler"), "Please don't provide Handler or Runtime or Layer"),
        (dict(Code={"ZipFile": b"PK"}), "Please don't provide ZipFile"),
        (dict(Code={}), "Please provide ImageUri"),
        (dict(Code={"ImageUri": "no-registry"}), "is not valid"),
    ]:
        args = dict(FunctionName="i-bad", Role=ROLE, PackageType="Image", Code={"ImageUri": f"{host}/py:v1"})
        args.update(kw)
        with pytest.raises(ClientError) as e:
            lam.create_function(**args)
        assert e.value.response["Error"]["Code"] == "InvalidParameterValueException", kw
        assert msg in e.value.response["Error"]["Message"], (kw, e.value.response["Error"]["Message"])
    with pytest.raises(ClientError):
        lam.get_function(FunctionName="i-bad")


def test_python_image_from_an_aws_style_entrypoint(lam, d, registry, host):
    whiteouts = files_layer({"data/.wh.a": b"", "opq/.wh..wh..opq": b"", "opq/y": b"y"})
    base = files_layer({"data/a": b"a", "data/b": b"b", "opq/x": b"x"})
    digest, _, layers = python_image(registry, "v1", "v1", [base, whiteouts])
    c = create_image(lam, "i-py", f"{host}/py:v1", Environment={"Variables": {"FUNC_VAR": "f", "SHARED": "function"}})
    assert c["PackageType"] == "Image" and c["State"] == "Pending"
    assert c["StateReasonCode"] == "Creating"
    assert "Runtime" not in c and "Handler" not in c
    c = settled(lam, "i-py")
    assert c["State"] == "Active" and c["LastUpdateStatus"] == "Successful", why(c)
    assert c["CodeSha256"] == digest
    code = lam.get_function(FunctionName="i-py")["Code"]
    assert code["RepositoryType"] == "ECR" and code["ImageUri"] == f"{host}/py:v1"
    assert code["ResolvedImageUri"] == f"{host}/py@sha256:{digest}"
    r, body = call(lam, "i-py", {"paths": ["/data/a", "/data/b", "/opq/x", "/opq/y"]})
    assert "FunctionError" not in r, body
    assert body["which"] == "v1" and body["cwd"] == "/var/task"
    # The image's Env under the function's; Lambda's own variables win; User ignored.
    assert body["env"] == {"IMAGE_VAR": "from-image", "SHARED": "function", "FUNC_VAR": "f",
                           "_HANDLER": "app.handler", "AWS_REGION": "us-east-1"}
    assert body["uid"] != 1234
    assert body["exists"] == {"/data/a": False, "/data/b": True, "/opq/x": False, "/opq/y": True}
    assert set(x.split(":")[1] for x in layers) <= set(image_layers(d))


def test_image_config_overrides(lam, host):
    create_image(lam, "i-cfg", f"{host}/py:v1",
                 ImageConfig={"Command": ["app.other"], "WorkingDirectory": "/tmp"})
    c = settled(lam, "i-cfg")
    assert c["ImageConfigResponse"]["ImageConfig"] == {"Command": ["app.other"], "WorkingDirectory": "/tmp"}
    assert call(lam, "i-cfg")[1] == {"other": True, "cwd": "/tmp"}
    c = lam.update_function_configuration(FunctionName="i-cfg", ImageConfig={"Command": ["app.handler"]})
    wait_for(lambda: lam.get_function_configuration(FunctionName="i-cfg")["LastUpdateStatus"] == "Successful")
    assert call(lam, "i-cfg")[1]["cwd"] == "/var/task"


def test_awslambdaric_shares_the_python_layer(lam, d, registry, host, tmp_path):
    target = tmp_path / "ric"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
           "--target", str(target), "--only-binary=:all:", "--python-version", "3.11",
           "--platform", "manylinux2014_x86_64", AWSLAMBDARIC]
    p = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        pytest.skip(f"cannot fetch {AWSLAMBDARIC}: {p.stderr[-300:]}")

    def add(t):
        t.add(target, arcname="var/task")
        info = tarfile.TarInfo("var/task/app.py")
        data = PY_APP.replace(b"WHICH", b"ric")
        info.size, info.mode = len(data), 0o644
        t.addfile(info, io.BytesIO(data))
    ric = tar_bytes(add, True)
    python_layer = sha(tree_layer("python3.11")[0])
    before = os.stat(d.data_dir / "image-layers" / python_layer).st_ino
    registry.push_image("ric", "1", [tree_layer("python3.11"), ric], {
        "Entrypoint": ["/usr/bin/python3", "-m", "awslambdaric"], "Cmd": ["app.handler"],
        "WorkingDir": "/var/task"})
    create_image(lam, "i-ric", f"{host}/ric:1")
    assert settled(lam, "i-ric")["State"] == "Active"
    r, body = call(lam, "i-ric")
    assert "FunctionError" not in r, body
    assert body["which"] == "ric"
    # The python tree was not unpacked again: the same directory.
    assert os.stat(d.data_dir / "image-layers" / python_layer).st_ino == before


def test_node_image_through_lambs_client(lam, registry, host):
    app = files_layer({"lambda-entrypoint.sh": (ENTRYPOINT_SH, 0o755), "var/task/index.mjs": NODE_APP})
    registry.push_image("node", "1", [tree_layer("nodejs18.x"), app], {
        "Entrypoint": ["/lambda-entrypoint.sh"], "Cmd": ["index.handler"], "WorkingDir": "/var/task",
        "Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]})
    create_image(lam, "i-node", f"{host}/node:1")
    assert settled(lam, "i-node")["State"] == "Active"
    r, body = call(lam, "i-node", {"x": 1})
    assert "FunctionError" not in r, body
    assert body["node"].startswith("v18.") and body["got"] == {"x": 1}


def provided_image(registry, repo, tag, arch="amd64"):
    layer = files_layer({"var/task/bootstrap": (HELLO.read_bytes(), 0o755)})
    return registry.push_image(repo, tag, [layer], {"Entrypoint": ["/var/task/bootstrap"]}, arch=arch)


def test_static_binary_from_a_multi_arch_index(lam, registry, host):
    amd = provided_image(registry, "hello", "amd64")
    arm = registry.push_image("hello", "arm64", [files_layer({"not-for-this-box": b"x"})], {}, arch="arm64")
    registry.push_index("hello", "multi", [(arm[0], arm[1], "arm64"), (amd[0], amd[1], "amd64")])
    create_image(lam, "i-hello", f"{host}/hello:multi")
    c = settled(lam, "i-hello")
    assert c["State"] == "Active" and c["CodeSha256"] == amd[0]
    r, body = call(lam, "i-hello", {"name": "image"})
    assert body.get("message") == "Hello, image!", (body, base64.b64decode(r["LogResult"]))
    # The function's architecture picks from the index; an image without it fails.
    create_image(lam, "i-arm", f"{host}/hello:multi", Architectures=["arm64"])
    assert settled(lam, "i-arm")["CodeSha256"] == arm[0]
    create_image(lam, "i-arm-only", f"{host}/hello:amd64", Architectures=["arm64"])
    c = settled(lam, "i-arm-only")
    assert c["State"] == "Failed" and c["StateReasonCode"] == "InvalidImage", why(c)


def test_update_to_a_new_tag(lam, registry, host):
    create_image(lam, "i-upd", f"{host}/py:v1")
    assert settled(lam, "i-upd")["State"] == "Active"
    assert call(lam, "i-upd")[1]["which"] == "v1"
    v2, _, _ = python_image(registry, "v2", "v2")
    c = lam.update_function_code(FunctionName="i-upd", ImageUri=f"{host}/py:v2")
    assert c["LastUpdateStatus"] == "InProgress"
    c = settled(lam, "i-upd")
    assert c["LastUpdateStatus"] == "Successful" and c["CodeSha256"] == v2
    assert call(lam, "i-upd")[1]["which"] == "v2"
    # A tag that is not there: the update fails, the function keeps running v2.
    lam.update_function_code(FunctionName="i-upd", ImageUri=f"{host}/py:nope")
    c = settled(lam, "i-upd")
    assert c["LastUpdateStatus"] == "Failed" and c["LastUpdateStatusReasonCode"] == "ImageDeleted", why(c)
    assert call(lam, "i-upd")[1]["which"] == "v2"


@pytest.mark.parametrize("name,files", [
    ("traversal", {"../../escaped": b"x"}),
    ("symlink-escape", {"up": ("symlink", "../../../../etc")}),
    ("device-node", {"dev/kmsg": ("char", "")}),
    ("link-outside", {"h": ("hardlink", "../../etc/shadow")}),
])
def test_hostile_layers_fail_the_function_and_leave_nothing(lam, d, registry, host, name, files):
    _, _, layers = registry.push_image("hostile", name, [files_layer(files)], {"Entrypoint": ["/x"]})
    create_image(lam, f"i-{name}", f"{host}/hostile:{name}")
    c = settled(lam, f"i-{name}")
    assert c["State"] == "Failed" and c["StateReasonCode"] == "InvalidImage", why(c)
    stored = image_layers(d)
    assert layers[0].split(":")[1] not in stored
    assert not half_written(stored), stored
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName=f"i-{name}")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"


def test_private_registry_credentials(lam, private):
    provided_image(private, "secret", "1")
    create_image(lam, "i-private", f"127.0.0.1:{private.port}/secret:1")
    assert settled(lam, "i-private")["State"] == "Active"
    assert call(lam, "i-private", {"name": "private"})[1]["message"] == "Hello, private!"
    create_image(lam, "i-wrong", f"localhost:{private.port}/secret:1")
    c = settled(lam, "i-wrong")
    assert c["State"] == "Failed" and c["StateReasonCode"] == "ImageAccessDenied", why(c)
    assert "refused the credentials" in c["StateReason"], why(c)


def test_oversized_image_fails(lam, d, registry, host):
    # Two layers within the limit each, over it together (gzip: a few MB pushed).
    half = (IMAGE_MAX_MB // 2 + 1) << 20
    a = files_layer({"a": bytes(half)})
    b = files_layer({"b": bytes(half)})
    _, _, layers = registry.push_image("big", "1", [a, b], {"Entrypoint": ["/x"]})
    create_image(lam, "i-big", f"{host}/big:1")
    c = settled(lam, "i-big")
    assert c["State"] == "Failed" and c["StateReasonCode"] == "InvalidImage", why(c)
    assert "unpacks to more than" in c["StateReason"], why(c)
    stored = image_layers(d)
    assert layers[1].split(":")[1] not in stored and not half_written(stored), stored


def test_https_registry_with_a_private_ca(lam, secure):
    provided_image(secure, "tls", "1")
    create_image(lam, "i-tls", f"127.0.0.1:{secure.port}/tls:1")
    c = settled(lam, "i-tls")
    assert c["State"] == "Active", why(c)
    assert call(lam, "i-tls", {"name": "tls"})[1]["message"] == "Hello, tls!"


def test_missing_image_fails(lam, host):
    create_image(lam, "i-missing", f"{host}/nothing:here")
    c = settled(lam, "i-missing")
    assert c["State"] == "Failed" and c["StateReasonCode"] == "ImageDeleted", why(c)


def fresh_layer(tag):
    """A layer no other image has, large enough to be held mid-body."""
    return files_layer({"var/task/bootstrap": (HELLO.read_bytes(), 0o755),
                        f"var/task/{tag}": os.urandom(1 << 20)}, compress=False)


def test_registry_dying_mid_pull(lam, d, registry, proxy, host):
    layer = fresh_layer("dying")
    _, _, layers = registry.push_image("mid", "dying", [layer], {"Entrypoint": ["/var/task/bootstrap"]})
    proxy.hold(layers[0], cut=True)
    create_image(lam, "i-dying", f"{host}/mid:dying")
    assert proxy.reached.wait(60)
    assert lam.get_function_configuration(FunctionName="i-dying")["State"] == "Pending"
    # As AWS during an update: no version, configuration or code change.
    for op in (lambda: lam.publish_version(FunctionName="i-dying"),
               lambda: lam.update_function_configuration(FunctionName="i-dying", Timeout=9),
               lambda: lam.update_function_code(FunctionName="i-dying", ImageUri=f"{host}/mid:other")):
        with pytest.raises(ClientError) as e:
            op()
        assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    with pytest.raises(ClientError) as e:
        lam.invoke(FunctionName="i-dying")
    assert e.value.response["Error"]["Code"] == "ResourceConflictException"
    proxy.let_go()
    c = settled(lam, "i-dying")
    assert c["State"] == "Failed" and c["StateReasonCode"] == "ImageAccessDenied", why(c)
    stored = image_layers(d)
    assert layers[0].split(":")[1] not in stored and not half_written(stored), stored


def test_daemon_killed_mid_pull_resumes(lam, d, registry, proxy, host):
    layer = fresh_layer("killed")
    _, _, layers = registry.push_image("mid", "killed", [layer], {"Entrypoint": ["/var/task/bootstrap"]})
    proxy.hold(layers[0])
    create_image(lam, "i-killed", f"{host}/mid:killed")
    assert proxy.reached.wait(60)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d.proc = None
    proxy.let_go()
    assert layers[0].split(":")[1] not in image_layers(d)
    d.start()
    lam = d.lambda_client()
    c = settled(lam, "i-killed")
    assert c["State"] == "Active", why(c)
    assert call(lam, "i-killed", {"name": "again"})[1]["message"] == "Hello, again!"
    assert not half_written(image_layers(d))


def test_daemon_stopped_mid_pull_stops_and_resumes(lam, d, registry, proxy, host):
    layer = fresh_layer("stopped")
    _, _, layers = registry.push_image("mid", "stopped", [layer], {"Entrypoint": ["/var/task/bootstrap"]})
    proxy.hold(layers[0])
    create_image(lam, "i-stopped", f"{host}/mid:stopped")
    assert proxy.reached.wait(60)
    # SIGTERM with the registry silent mid-blob: the stop does not wait
    # for the pull's read timeout (Daemon.stop allows 15 s, then fails).
    assert d.stop() == 0
    proxy.let_go()
    d.start()
    lam = d.lambda_client()
    assert settled(lam, "i-stopped")["State"] == "Active"
    assert call(lam, "i-stopped", {"name": "stopped"})[1]["message"] == "Hello, stopped!"


def test_image_in_a_user_namespace(registry, host):
    """`--userns`: the image's layers and the loader init runs on are reached
    by an unprivileged uid outside."""
    provided_image(registry, "hello", "userns")
    with tempfile.TemporaryDirectory(prefix="lamb-images-userns-") as tmp:
        os.chmod(tmp, 0o755)
        run_in_user_namespaces(Path(tmp), host)


def run_in_user_namespaces(tmp, host):
    u = Daemon(tmp)
    u.runtimes_dir = BUILD
    u.extra_args = ["--userns", "--insecure-registry", host]
    u.start()
    try:
        lam = u.lambda_client()
        create_image(lam, "i-userns", f"{host}/hello:userns")
        assert settled(lam, "i-userns")["State"] == "Active"
        r, body = call(lam, "i-userns", {"name": "userns"})
        assert body.get("message") == "Hello, userns!", (body, base64.b64decode(r["LogResult"]))
    finally:
        assert u.stop() == 0


def test_garbage_collection(d):
    lam = d.lambda_client()
    assert image_layers(d)
    for f in lam.list_functions()["Functions"]:
        lam.delete_function(FunctionName=f["FunctionName"])
    assert image_layers(d) == []
