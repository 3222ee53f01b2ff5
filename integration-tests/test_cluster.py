"""Cluster mode (docs/cluster.md): three `lamb serve` nodes, each in a
network namespace of its own with its own address (veths on a bridge the
test makes; traffic stays on this machine), sharing one PostgreSQL.

The nodes share the registry (`--registry`, the same PostgreSQL) and with
it the code (docs/registry.md): the test's function is created through node
a only, and b and c fetch its bundle by digest at their first call. Each
node serves its own directory at
/mnt/gate with a file naming the node, so an answer says which node ran it.
Every wait is for an event (a file a function writes, a node's row, a
lease's holder), never a fixed time."""

import json
import os
import random
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import ACCESS_KEY, BUILD, LAMB, ROLE, SECRET_KEY, Daemon, make_zip, public_url, url_id_of, wait_for
from postgres import Postgres, bin_dir

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="root-only test: lamb serve runs as root only"),
    pytest.mark.skipif(not (BUILD / "python3.11" / "usr").is_dir(),
                       reason="the python3.11 runtime tree is not built (make rootfs)"),
]

GATE_ARN = "arn:aws:elasticfilesystem:us-east-1:000000000000:access-point/gate"
# Answers the node it ran on and its sandbox; with a token, says it started
# and waits for its gate (or every gate's) first.
FUNCTION = b'''
import os, time, uuid
SANDBOX = str(uuid.uuid4())
def handler(event, context):
    token = event.get("token")
    if token:
        open("/mnt/gate/started-" + token, "w").close()
        while not any(os.path.exists("/mnt/gate/open-" + t) for t in (token, "all")):
            time.sleep(0.02)
    if event.get("done"):
        open("/mnt/gate/done-" + event["done"], "w").close()
    return {"node": open("/mnt/gate/node").read(), "sandbox": SANDBOX, "token": token,
            "color": os.environ.get("COLOR")}
'''
CLUSTER_PORT = 9090
METRICS_PORT = 9091


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=60)


class Net:
    """A bridge on the host and one network namespace per node, each with
    a veth on the bridge and an address of its own."""

    def __init__(self):
        tag = f"{os.getpid() % 10000:04d}{random.randrange(100):02d}"
        self.bridge = f"lcb{tag}"
        self.prefix = f"10.213.{random.randrange(1, 250)}"
        self.host_ip = f"{self.prefix}.1"
        self.namespaces = []
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        self.tag = tag

    def add(self, i):
        """Namespace i: its name, its address and its host-side veth."""
        ns, host_veth = f"lcn{self.tag}{i}", f"lcv{self.tag}{i}"
        ip = f"{self.prefix}.{10 + i}"
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", host_veth, "master", self.bridge, "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns, ip, host_veth

    def remove(self):
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class ClusterPostgres(Postgres):
    """The test PostgreSQL, also listening on the bridge for the nodes."""

    def __init__(self, root, bindir, net):
        super().__init__(root, bindir)
        self.net = net

    def start(self):
        # As Postgres.start, with the bridge's address beside 127.0.0.1.
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", f"listen_addresses=127.0.0.1,{self.net.host_ip}",
             "-c", f"unix_socket_directories={self.socket_dir}",
             "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=log, stderr=log, start_new_session=True, **self._popen_args(),
        )
        log.close()
        wait_for(lambda: self.proc.poll() is not None or subprocess.run(
            [str(self.bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode == 0,
            what="postgres accepting connections")
        assert self.proc.poll() is None, self.log.read_text()

    def open_to_nodes(self):
        with open(self.data / "pg_hba.conf", "a") as f:
            f.write(f"host all all {self.net.prefix}.0/24 trust\n")
        self.restart()

    def fresh_database(self):
        """A new empty database for the next cluster, which `node_url` and
        `status_url` name from now on."""
        self.db = f"cluster{random.randrange(10**9)}"
        self.psql(f"CREATE DATABASE {self.db}")

    @property
    def node_url(self):
        return f"postgres://lamb@{self.net.host_ip}:{self.port}/{self.db}"

    @property
    def status_url(self):
        return f"postgres://lamb@127.0.0.1:{self.port}/{self.db}"


class Node(Daemon):
    """One `lamb serve` in its own network namespace (entered with nsenter,
    which changes only the network namespace: `ip netns exec` would also
    remount /sys and hide the cgroup hierarchies)."""

    def __init__(self, tmp, name, ns, ip, host_veth, pg, secret, args):
        super().__init__(tmp)
        self.name, self.ns, self.ip, self.host_veth = name, ns, ip, host_veth
        self.runtimes_dir = BUILD
        self.endpoint = f"http://{ip}:{self.port}"
        self.cluster_addr = f"{ip}:{CLUSTER_PORT}"
        self.gate = tmp / "gate"
        self.gate.mkdir()
        (self.gate / "node").write_text(name)
        self.extra_args = [
            "--registry", pg.node_url,
            "--network", "none", "--filesystem", f"gate={self.gate}",
            "--cluster-listen", self.cluster_addr, "--cluster-secret", str(secret),
            "--metrics-listen", f"{ip}:{METRICS_PORT}", *args,
        ]

    def start(self):
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", LAMB, "serve",
             "--listen", f"{self.ip}:{self.port}", "--url-listen", f"{self.ip}:{self.url_port}",
             "--data-dir", str(self.data_dir), "--runtimes-dir", str(self.runtimes_dir),
             "--allow-deprecated-runtimes", *self.extra_args],
            env=self.env(), stdout=log, stderr=log,
        )

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"lamb serve exited {self.proc.returncode}: {self.log.read_text()}")
            try:
                urllib.request.urlopen(self.endpoint + "/lamb/status", timeout=1)
            except urllib.error.HTTPError:
                return True  # answering (403: unsigned)
            except OSError:
                return False
        wait_for(up, what=f"node {self.name} listening")

    def client(self, attempts=1):
        return boto3.client(
            "lambda", endpoint_url=self.endpoint, region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
            config=Config(retries={"max_attempts": attempts, "mode": "standard"}, read_timeout=900),
        )

    def deploy(self):
        """Creates the function through this node, for the whole cluster."""
        self.client().create_function(
            FunctionName="where", Role=ROLE, Runtime="python3.11", Handler="app.handler",
            Code={"ZipFile": make_zip({"app.py": FUNCTION})}, MemorySize=128, Timeout=900,
            FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])

    def invoke(self, payload=None, attempts=1):
        r = self.client(attempts).invoke(FunctionName="where", Payload=json.dumps(payload or {}).encode())
        assert r["StatusCode"] == 200 and "FunctionError" not in r, r
        return json.loads(r["Payload"].read())

    def kill_9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None


class Call:
    """One synchronous invocation through `via`, in a thread."""

    def __init__(self, via, token):
        self.token, self.result = token, None

        def run():
            try:
                self.result = ("ok", via.invoke({"token": token}))
            except ClientError as e:
                self.result = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
            except Exception as e:  # noqa: BLE001 - a dead node's call fails somehow; the test says which matter
                self.result = ("failed", repr(e))
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self):
        self.thread.join(timeout=300)
        assert not self.thread.is_alive(), "the call hung"
        return self.result


def started(nodes, token):
    return [n for n in nodes if (n.gate / f"started-{token}").exists()]


def status(pg):
    p = subprocess.run([LAMB, "cluster", "status", "--database", pg.status_url], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def node_state(pg, node):
    """`alive`, `dead` or None (no row) as `lamb cluster status` shows it."""
    for line in status(pg).splitlines():
        if line.startswith(node.cluster_addr + " "):
            return line.split()[2]
    return None


def heartbeat_age(pg, node):
    """Seconds since the node's last heartbeat, as `lamb cluster status` shows it."""
    for line in status(pg).splitlines():
        if line.startswith(node.cluster_addr + " "):
            return float(line.split()[4].rstrip("s"))
    return float("inf")


def holder(pg, lease):
    for line in status(pg).splitlines():
        if line.startswith(f"{lease} run on: "):
            return line.split(": ", 1)[1].split(" ")[0]
    raise AssertionError(f"no {lease} line")


@pytest.fixture(scope="module")
def net():
    n = Net()
    try:
        yield n
    finally:
        n.remove()


@pytest.fixture(scope="module")
def pg(net):
    root = Path(tempfile.mkdtemp(prefix="lamb-pg-cluster-"))
    server = ClusterPostgres(root, bin_dir(), net)
    server.init()
    server.open_to_nodes()
    try:
        yield server
    finally:
        server.stop()
        subprocess.run(["rm", "-rf", str(root)])


@pytest.fixture(scope="module")
def secret():
    with tempfile.TemporaryDirectory(prefix="lamb-cluster-secret-") as tmp:
        path = Path(tmp) / "secret"
        path.write_text(os.urandom(32).hex())
        path.chmod(0o600)
        yield path


@pytest.fixture
def cluster(net, pg, secret, request):
    """Three nodes a, b, c; `request.param`: each node's extra flags."""
    flags = getattr(request, "param", {})
    pg.fresh_database()
    tmps, nodes = [], []
    try:
        for i, name in enumerate("abc"):
            tmp = tempfile.TemporaryDirectory(prefix=f"lamb-node-{name}-")
            tmps.append(tmp)
            if len(net.namespaces) <= i:
                net.add(i)
            ns, ip, veth = net.namespaces[i], f"{net.prefix}.{10 + i}", f"lcv{net.tag}{i}"
            node = Node(Path(tmp.name), name, ns, ip, veth, pg, secret, flags.get(name, []))
            node.start()
            nodes.append(node)
        nodes[0].deploy()
        wait_for(lambda: all(node_state(pg, n) == "alive" for n in nodes), what="three alive nodes")
        yield nodes
    finally:
        for n in nodes:
            (n.gate / "open-all").touch()
            subprocess.run(["ip", "link", "set", n.host_veth, "up"], capture_output=True)
            if n.proc:
                n.stop()
            # A killed node leaves its served directory mounted over itself
            # (its next start would unmount it; there is none).
            subprocess.run(["umount", "-l", str(n.gate)], capture_output=True)
        for t in tmps:
            t.cleanup()


# b and c take nothing themselves: whatever they receive runs on a.
ONLY_A = {"b": ["--cluster-capacity", "0"], "c": ["--cluster-capacity", "0"]}


@pytest.mark.parametrize("cluster", [ONLY_A], indirect=True)
def test_a_call_through_any_node_runs_where_there_is_capacity_and_stays_warm(cluster, pg):
    a, b, c = cluster
    first = b.invoke()
    assert first["node"] == "a"
    # The same warm sandbox of a, whichever node receives the call.
    assert c.invoke() == first
    assert a.invoke() == first
    assert b.invoke() == first
    assert status(pg).count(" alive ") == 3
    # a's row shows its warm sandbox of the function from its next heartbeat.
    wait_for(lambda: any(line.startswith(a.cluster_addr) and line.endswith(" where:$LATEST=1")
                         for line in status(pg).splitlines()), what="a's warm sandbox in the status")


@pytest.mark.parametrize("cluster", [{n: ["--concurrency-limit", "4"] for n in "abc"}], indirect=True)
def test_the_account_limit_holds_across_the_cluster(cluster):
    # Twice the limit, spread over the three nodes: the nodes' own limits
    # (4 each) would let all 8 run; the cluster's lets exactly 4.
    calls = [Call(cluster[i % 3], f"limit-{i}") for i in range(8)]
    wait_for(lambda: sum(1 for c in calls if c.result) >= 4, timeout=300, what="four refusals")
    for n in cluster:
        (n.gate / "open-all").touch()
    results = [c.join() for c in calls]
    ran = [r for r in results if r[0] == "ok"]
    throttled = [r for r in results if r == (429, "TooManyRequestsException")]
    assert len(ran) == 4 and len(throttled) == 4, results


@pytest.mark.parametrize("cluster", [ONLY_A], indirect=True)
def test_a_killed_node_fails_its_forwarded_calls_retryably_and_its_leases_move(cluster, pg):
    a, b, c = cluster
    call = Call(b, "killed")
    wait_for(lambda: started([a], "killed"), what="the forwarded call running on a")
    a.kill_9()
    assert call.join() == (500, "ServiceException")
    wait_for(lambda: node_state(pg, a) == "dead", what="a seen dead")
    for lease in ("schedules", "mappings"):
        wait_for(lambda: holder(pg, lease) in (b.cluster_addr, c.cluster_addr), what=f"{lease} held by a live node")
    # With a gone, b's calls run elsewhere (b and c are full, so here).
    assert b.invoke()["node"] in ("b", "c")


def test_a_partitioned_node_loses_its_leases_and_rejoins(cluster, pg):
    a, b, c = cluster
    by_addr = {n.cluster_addr: n for n in cluster}
    held = wait_for(lambda: by_addr.get(holder(pg, "schedules")), what="a schedules holder")
    subprocess.run(["ip", "link", "set", held.host_veth, "down"], check=True)
    try:
        wait_for(lambda: node_state(pg, held) == "dead", what="the partitioned node seen dead")
        wait_for(lambda: holder(pg, "schedules") not in (held.cluster_addr, "nobody"),
                 what="the schedules lease moved")
        others = [n for n in cluster if n is not held]
        for n in others:
            assert n.invoke()["node"] in {o.name for o in others}
    finally:
        subprocess.run(["ip", "link", "set", held.host_veth, "up"], check=True)
    wait_for(lambda: node_state(pg, held) == "alive", what="the partitioned node back")
    assert held.invoke()["node"]


def test_nodes_carry_on_after_postgresql_restarts(cluster, pg):
    for n in cluster:
        n.invoke()
    pg.restart()
    # A call in the outage may fail, retryably; each node serves again on its own.
    for n in cluster:
        def serves():
            try:
                return n.invoke()
            except ClientError as e:
                assert e.response["Error"]["Code"] == "ServiceException", e.response
                return None
        wait_for(serves, what=f"node {n.name} serving after the restart")
    wait_for(lambda: all(node_state(pg, n) == "alive" for n in cluster), what="every node alive")


def test_a_forward_without_the_secret_is_refused(cluster):
    a = cluster[0]
    req = urllib.request.Request(f"http://{a.cluster_addr}/cluster/v1/invoke", data=b"{}", method="POST",
                                 headers={"x-lamb-cluster-node": "intruder", "x-lamb-cluster-date": str(int(time.time())),
                                          "x-lamb-cluster-signature": "00" * 32})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 403


@pytest.mark.parametrize("cluster", [ONLY_A], indirect=True)
def test_a_rolling_restart_fails_no_call_a_client_cannot_retry(cluster):
    # Callers through b and c (whose calls run on a while a is up) keep
    # calling while every node in turn stops (SIGTERM) and starts again. A
    # call may fail only with a retryable error: a 500 ServiceException, or
    # the connection refused or reset by the node restarting.
    stop = threading.Event()
    outcomes = []

    def caller(via):
        while not stop.is_set():
            try:
                via.invoke()
                outcomes.append("ok")
            except ClientError as e:
                outcomes.append(e.response["Error"]["Code"])
            except (ConnectionError, OSError, botocore.exceptions.EndpointConnectionError,
                    botocore.exceptions.ConnectionClosedError):
                outcomes.append("connection")

    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in cluster[1:]]
    for t in threads:
        t.start()
    try:
        for n in cluster:
            before = outcomes.count("ok")
            assert n.stop() == 0
            n.start()
            wait_for(lambda: outcomes.count("ok") > before, what=f"calls served after {n.name}'s restart")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=300)
    assert set(outcomes) <= {"ok", "ServiceException", "connection"}, sorted(set(outcomes))
    assert outcomes.count("ok") > 0


@pytest.mark.parametrize("cluster", [ONLY_A], indirect=True)
def test_warm_invoke_forwarded_against_local(cluster):
    """Figures for docs/benchmarks.md ("Cluster"), printed as one JSON line
    (-s): warm invocations of a's sandbox, received by a itself and by b
    (which forwards). Only the answers are asserted: timings depend on the
    machine."""
    a, b, _ = cluster
    n = int(os.environ.get("LAMB_CLUSTER_BENCH_CALLS", "200"))
    sandbox = a.invoke()["sandbox"]
    figures = {}
    for name, via in (("local", a), ("forwarded", b)):
        client = via.client()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            r = client.invoke(FunctionName="where", Payload=b"{}")
            body = json.loads(r["Payload"].read())
            times.append(time.perf_counter() - t0)
            assert body["sandbox"] == sandbox
        times.sort()
        figures[name] = {"p50_ms": round(times[n // 2] * 1000, 3), "p99_ms": round(times[n * 99 // 100] * 1000, 3)}
    line = json.dumps({"test": "cluster_forward", "calls": n, **figures})
    print(line)
    if os.environ.get("LAMB_RELIABILITY_OUT"):
        with open(os.environ["LAMB_RELIABILITY_OUT"], "a") as f:
            f.write(line + "\n")


# Streams the node and sandbox it runs on, then waits at its gate (in the
# running node's served directory) before its second chunk.
STREAMER = b'''
const fs = require('fs');
const SANDBOX = require('crypto').randomUUID();
exports.handler = awslambda.streamifyResponse(async (event, stream) => {
  stream.setContentType('text/plain');
  stream.write(fs.readFileSync('/mnt/gate/node', 'utf8') + ' ' + SANDBOX + ';');
  if (event.gate) {
    while (!fs.existsSync('/mnt/gate/' + event.gate)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  stream.write('second;');
  stream.end();
});
'''


def url_call(node, url_id, path="/x"):
    """A GET of the function URL `url_id` through `node`'s URL listener."""
    with urllib.request.urlopen(f"http://{node.ip}:{node.url_port}/{url_id}{path}", timeout=300) as r:
        return r.status, r.headers.get("content-type"), json.loads(r.read())


@pytest.mark.parametrize("cluster", [ONLY_A], indirect=True)
def test_a_function_url_through_b_runs_on_as_warm_sandbox(cluster):
    """b has no capacity: the URL call it receives runs on a's warm sandbox,
    answered as a answers it."""
    a, b, _ = cluster
    url_id = url_id_of(public_url(a.client(), "where")["FunctionUrl"])
    local = url_call(a, url_id)
    assert local[0] == 200 and local[2]["node"] == "a"
    assert url_call(b, url_id) == local
    assert url_call(a, url_id) == local


@pytest.mark.skipif(not (BUILD / "nodejs18.x" / "usr").is_dir(), reason="the nodejs18.x runtime tree is not built")
@pytest.mark.parametrize("cluster", [ONLY_A], indirect=True)
def test_a_streamed_call_through_b_is_relayed_chunk_by_chunk_from_as_sandbox(cluster):
    """InvokeWithResponseStream through b runs on a's warm sandbox and its
    chunks reach the client as the function writes them: the function
    waits at a gate the test opens only after reading the first chunk
    through b, so a relay that buffered would deliver nothing."""
    a, b, _ = cluster
    a.client().create_function(
        FunctionName="streamer", Role=ROLE, Runtime="nodejs18.x", Handler="index.handler",
        Code={"ZipFile": make_zip({"index.js": STREAMER})}, MemorySize=128, Timeout=60,
        FileSystemConfigs=[{"Arn": GATE_ARN, "LocalMountPath": "/mnt/gate"}])

    def chunks(via, payload):
        resp = via.client().invoke_with_response_stream(FunctionName="streamer", Payload=json.dumps(payload))
        assert resp["StatusCode"] == 200 and resp["ExecutedVersion"] == "$LATEST"
        return resp, iter(resp["EventStream"])

    _, local = chunks(a, {})
    local = list(local)
    first = local[0]["PayloadChunk"]["Payload"]
    assert first.startswith(b"a ") and local[1:] == [{"PayloadChunk": {"Payload": b"second;"}}, {"InvokeComplete": {}}]
    gate = f"gate-{random.randrange(10**9)}"
    resp, events = chunks(b, {"gate": gate})
    assert resp["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/vnd.amazon.eventstream"
    assert next(events) == {"PayloadChunk": {"Payload": first}}
    (a.gate / gate).touch()
    assert list(events) == local[1:]

ONLY_B = {"a": ["--cluster-capacity", "0"], "c": ["--cluster-capacity", "0"]}


@pytest.mark.parametrize("cluster", [ONLY_B], indirect=True)
def test_an_update_through_one_node_is_seen_by_a_call_through_another(cluster):
    """b keeps what its calls read from the registry (docs/registry.md, "The
    read cache"); a's update reaches it through PostgreSQL's announcement,
    so b's next calls run the new configuration, never the one it kept."""
    a, b, _ = cluster
    first = b.invoke()
    assert first["node"] == "b" and first["color"] is None
    assert b.invoke()["sandbox"] == first["sandbox"]
    a.client().update_function_configuration(
        FunctionName="where", Environment={"Variables": {"COLOR": "blue"}})
    # The announcement is asynchronous (a commit, then a notification):
    # wait for it, as a client of Lambda waits after an update.
    after = wait_for(lambda: (r := b.invoke())["color"] == "blue" and r,
                     what="b to run the configuration updated through a")
    assert after["node"] == "b" and after["sandbox"] != first["sandbox"]
    # And it stays seen: the old configuration does not come back.
    assert all(b.invoke()["color"] == "blue" for _ in range(5))


def test_created_through_one_node_warm_wherever_the_call_arrives(cluster, pg):
    a, b, c = cluster
    # Created through a (its code put through b and c too: the code store is
    # not shared yet); the first call, through a, runs there and stays warm.
    first = a.invoke()
    assert first["node"] == "a"
    wait_for(lambda: any(line.startswith(a.cluster_addr) and line.endswith(" where:$LATEST=1")
                         for line in status(pg).splitlines()), what="a's warm sandbox in the status")
    # b and c read the nodes at each heartbeat, after writing their own row:
    # one written since a showed warm means they know of a's sandbox.
    seen = time.time()

    def beat_since(n):
        asked = time.time()  # before the read: the read's "now" is later still
        return heartbeat_age(pg, n) < asked - seen
    for n in (b, c):
        wait_for(lambda: beat_since(n), what=f"{n.name}'s next heartbeat")
    # b and c hold no sandbox of the version: they send the call to a's.
    assert b.invoke() == first
    assert c.invoke() == first


def test_every_accepted_event_runs_when_a_node_is_killed_under_async_load(cluster):
    # Events go in through every node; a is killed halfway, the others go on
    # accepting. The events a had claimed are put back in the queue once a
    # is seen dead (its heartbeat's end, not the queue's 16-minute lease),
    # and b and c run them with the rest. None accepted is lost; a stays dead.
    a, b, c = cluster
    accepted = []
    for i in range(30):
        via = [a, b, c][i % 3] if i < 15 else [b, c][i % 2]
        token = f"event-{i}"
        r = via.client().invoke(FunctionName="where", InvocationType="Event",
                                Payload=json.dumps({"done": token}).encode())
        assert r["StatusCode"] == 202
        accepted.append(token)
        if i == 14:
            a.kill_9()
    for token in accepted:
        wait_for(lambda: any((n.gate / f"done-{token}").exists() for n in (a, b, c)), timeout=120,
                 what=f"{token} run on some node")


def provisioned_sandboxes(node):
    """The node's provisioned concurrency sandboxes, as its /metrics says."""
    text = urllib.request.urlopen(f"http://{node.ip}:{METRICS_PORT}/metrics", timeout=10).read().decode()
    for line in text.splitlines():
        if line.startswith("lamb_sandboxes_provisioned "):
            return int(line.split()[1])
    raise AssertionError("no lamb_sandboxes_provisioned in /metrics")


def provisioned_config(node):
    return node.client().get_provisioned_concurrency_config(FunctionName="where", Qualifier="live")


def ready_with(node, n):
    cfg = provisioned_config(node)
    return cfg["Status"] == "READY" and cfg["AllocatedProvisionedConcurrentExecutions"] == n


def test_provisioned_concurrency_is_exact_across_the_cluster(cluster, pg):
    a, b, c = cluster
    version = a.client().publish_version(FunctionName="where")["Version"]
    a.client().create_alias(FunctionName="where", Name="live", FunctionVersion=version)
    b.client().put_provisioned_concurrency_config(
        FunctionName="where", Qualifier="live", ProvisionedConcurrentExecutions=3)
    # READY through every node, from the cluster's sum; 3 sandboxes in all,
    # one per node (each node keeps its share, not the whole count).
    for n in cluster:
        wait_for(lambda: ready_with(n, 3), timeout=300, what=f"READY with 3 through {n.name}")
    assert {n.name: provisioned_sandboxes(n) for n in cluster} == {"a": 1, "b": 1, "c": 1}
    assert "provisioned where:live:" in status(pg)
    # The routing sees them as warm: a call of the alias through any node
    # runs on one of them, here on the receiving node's own.
    for n in cluster:
        r = n.client().invoke(FunctionName="where", Qualifier="live", Payload=b"{}")
        assert json.loads(r["Payload"].read())["node"] == n.name
    # kill -9 of a node holding one: its share moves to the live nodes.
    c.kill_9()
    wait_for(lambda: node_state(pg, c) == "dead", what="c seen dead")
    wait_for(lambda: provisioned_sandboxes(a) + provisioned_sandboxes(b) == 3, timeout=300,
             what="c's provisioned sandbox made again on a or b")
    for n in (a, b):
        wait_for(lambda: ready_with(n, 3), timeout=300, what=f"READY with 3 again through {n.name}")
    assert provisioned_sandboxes(a) + provisioned_sandboxes(b) == 3
