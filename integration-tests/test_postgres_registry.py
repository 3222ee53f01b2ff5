"""`lamb serve --registry postgres://...`: the daemon keeps its registry in
a PostgreSQL the harness starts (postgres.py), driven through boto3:
functions, versions, aliases, layers, a function URL, async events, what
PostgreSQL then holds, a second node running code uploaded through the
first (bundles shared by digest), and a `kill -9` of the daemon under async
load that loses no event (the restarted node takes back its earlier run's
leases)."""

import base64
import json
import os
import re
import signal
import tempfile
import urllib.request
from pathlib import Path

import pytest

from conftest import BUILD, Daemon, deploy, make_zip, public_url, sandbox_cgroups, url_id_of, wait_for
from postgres import postgres

pytestmark = pytest.mark.skipif(
    not (BUILD / "python3.11" / "usr").is_dir(),
    reason="the runtime trees are not built (make rootfs)",
)

APP = b'''
import json, os
def handler(event, context):
    print("GOT " + json.dumps(event, sort_keys=True), flush=True)
    import layered
    return {"layer": layered.X, "version": context.function_version, "event": event}
'''
LAYER = make_zip({"python/layered.py": b"X = 'from the layer'\n"})

# Events from HELD on wait at a gate the test opens, so that at the kill some
# events have run, some are running and the rest are queued (test_async.py).
HELD = 10
GATED_APP = b'''
import json, os, time
def handler(event, context):
    if event["n"] >= %d:
        print("WAIT " + json.dumps(event, sort_keys=True), flush=True)
        while not os.path.exists("/mnt/gate/open"):
            time.sleep(0.05)
    print("GOT " + json.dumps(event, sort_keys=True), flush=True)
    return {"ok": event["n"]}
''' % HELD
GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"


@pytest.fixture(scope="module")
def pg():
    with postgres() as server:
        yield server


@pytest.fixture(scope="module")
def node(pg):
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    with tempfile.TemporaryDirectory(prefix="lamb-pgreg-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.gate = Path(tmp) / "gate"
        d.gate.mkdir()
        d.extra_args = ["--registry", pg.url, "--async-retry-delays", "1s,2s", "--freeze-grace", "1h",
                        "--filesystem", f"gate={d.gate}"]
        d.start()
        try:
            yield d
        finally:
            if d.proc:
                assert d.stop() == 0, "lamb serve exited uncleanly on SIGTERM"


def logged(node, name, word):
    """The `n` of every event a function logged with `word`, read from the
    log files: they are the record while the daemon is down."""
    text = "".join(f.read_text(errors="replace") for f in (node.data_dir / "logs" / name).rglob("*")
                   if f.is_file())
    return {json.loads(m)["n"] for m in re.findall(word + r" (\{.*\})", text)}


def test_a_bad_registry_url_is_refused(node):
    p = node.lamb("serve", "--registry", "mysql://x", "--data-dir", str(node.tmp / "other"), check=False)
    assert p.returncode != 0 and "postgres://" in p.stderr


def test_control_plane_and_invoke_on_postgres(node, pg):
    lam = node.lambda_client()
    layer = lam.publish_layer_version(LayerName="pg-layer", Content={"ZipFile": LAYER},
                                      CompatibleRuntimes=["python3.11"])
    assert layer["Version"] == 1
    deploy(lam, "pg-fn", {"app.py": APP}, Layers=[layer["LayerVersionArn"]])
    v1 = lam.publish_version(FunctionName="pg-fn")["Version"]
    lam.update_function_configuration(FunctionName="pg-fn", Description="two")
    wait_for(lambda: lam.get_function(FunctionName="pg-fn")["Configuration"]["LastUpdateStatus"] == "Successful")
    v2 = lam.publish_version(FunctionName="pg-fn")["Version"]
    assert (v1, v2) == ("1", "2")
    lam.create_alias(FunctionName="pg-fn", Name="live", FunctionVersion=v1)
    r = lam.invoke(FunctionName="pg-fn", Qualifier="live", Payload=b'{"k": 1}')
    body = json.loads(r["Payload"].read())
    assert body == {"layer": "from the layer", "version": "1", "event": {"k": 1}}
    # What the API answered is in PostgreSQL, in the registry's tables.
    assert pg.psql("SELECT version FROM function_versions WHERE function = 'pg-fn' ORDER BY version").split() \
        == ["0", "1", "2"]
    assert pg.psql("SELECT version FROM aliases WHERE function = 'pg-fn' AND name = 'live'").strip() == "1"
    # A function URL is found by its id in PostgreSQL too.
    cfg = public_url(lam, "pg-fn")
    url = f"{node.url_endpoint}/{url_id_of(cfg['FunctionUrl'])}/"
    with urllib.request.urlopen(urllib.request.Request(url, data=b"hi", method="POST"), timeout=60) as resp:
        assert json.loads(resp.read())["layer"] == "from the layer"
    # Deleting the function removes its rows (the cascade of SQLite's schema).
    lam.delete_function(FunctionName="pg-fn")
    assert pg.psql("SELECT count(*) FROM function_versions WHERE function = 'pg-fn'").strip() == "0"
    assert pg.psql("SELECT count(*) FROM function_urls WHERE function = 'pg-fn'").strip() == "0"


def test_a_second_node_runs_code_uploaded_through_the_first(node, pg):
    """Code and layers are stored once in PostgreSQL by digest: a node that
    never saw the upload unpacks them into its own store on first use."""
    lam = node.lambda_client()
    layer = lam.publish_layer_version(LayerName="pg-layer2", Content={"ZipFile": LAYER})
    fn = deploy(lam, "pg-two", {"app.py": APP}, Layers=[layer["LayerVersionArn"]])
    digest = base64.b64decode(fn["CodeSha256"]).hex()
    assert pg.psql("SELECT count(*) FROM shared_bundles WHERE kind = 'code' AND digest = '%s'" % digest).strip() \
        == "1"
    with tempfile.TemporaryDirectory(prefix="lamb-pgreg2-") as tmp:
        other = Daemon(Path(tmp))
        other.runtimes_dir = BUILD
        other.extra_args = ["--registry", pg.url]
        other.start()
        try:
            assert not (other.data_dir / "code" / digest).exists()
            r = other.lambda_client().invoke(FunctionName="pg-two", Payload=b'{"via": "other"}')
            body = json.loads(r["Payload"].read())
            assert body == {"layer": "from the layer", "version": "$LATEST", "event": {"via": "other"}}
            assert (other.data_dir / "code" / digest).is_dir()
        finally:
            assert other.stop() == 0


def test_a_shared_bundle_nothing_refers_to_goes_after_its_grace(node, pg):
    """A deletion collects the shared bundles no version or layer refers to
    once their grace (15 minutes since last shared) has passed; the grace is
    made past by setting `shared_at` back, never by waiting."""
    lam = node.lambda_client()

    def rows(fn):
        digest = base64.b64decode(fn["CodeSha256"]).hex()
        return pg.psql(f"SELECT count(*) FROM shared_bundles WHERE kind = 'code' AND digest = '{digest}'").strip()

    gone = deploy(lam, "pg-gc-gone", {"app.py": APP + b"\n# gone\n"})
    kept = deploy(lam, "pg-gc-kept", {"app.py": APP + b"\n# kept\n"})
    young = deploy(lam, "pg-gc-young", {"app.py": APP + b"\n# young\n"})
    pg.psql("UPDATE shared_bundles SET shared_at = now() - interval '1 hour' WHERE digest IN ('%s', '%s')" % tuple(
        base64.b64decode(f["CodeSha256"]).hex() for f in (gone, kept)))
    lam.delete_function(FunctionName="pg-gc-young")
    # Unreferenced but young: kept; old but referenced: kept.
    assert (rows(young), rows(kept)) == ("1", "1")
    lam.delete_function(FunctionName="pg-gc-gone")
    assert (rows(gone), rows(kept), rows(young)) == ("0", "1", "1")
    lam.delete_function(FunctionName="pg-gc-kept")


def test_kill_9_under_async_load_loses_nothing(node, pg):
    """Events queued in PostgreSQL; the daemon is killed with SIGKILL while
    some have run, some are running (leased to it) and the rest wait; the
    restarted node takes back its earlier run's leases and every event runs."""
    lam = node.lambda_client()
    lam.create_function(FunctionName="pg-many", Role="arn:aws:iam::000000000000:role/lamb-test",
                        Runtime="python3.11", Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": GATED_APP})}, MemorySize=256, Timeout=900,
                        FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])
    n = 60
    for i in range(n):
        r = lam.invoke(FunctionName="pg-many", InvocationType="Event", Payload=json.dumps({"n": i}).encode())
        assert r["StatusCode"] == 202
    wait_for(lambda: logged(node, "pg-many", "GOT") == set(range(HELD)) and logged(node, "pg-many", "WAIT"),
             timeout=120)
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait()
    node.proc = None
    running = logged(node, "pg-many", "WAIT")
    leased = int(pg.psql("SELECT count(*) FROM async_events WHERE status = 'running'"))
    assert running and leased >= len(running), "the dead run held leases in PostgreSQL"
    wait_for(lambda: not sandbox_cgroups(node.cgroup_parent), timeout=30)
    (node.gate / "open").touch()
    node.start()
    wait_for(lambda: logged(node, "pg-many", "GOT") == set(range(n)), timeout=240, every=1)
    wait_for(lambda: pg.psql("SELECT count(*) FROM async_events WHERE function = 'pg-many'").strip() == "0",
             timeout=60)
