"""Sandboxes on the network (`lamb serve --network nat`, docs/network.md):
outbound through NAT, host ports, the Lambda API at host.lamb.internal, and
the refusals. Traffic stays on this machine: the "internet" is a network
namespace the test makes (198.51.100.0/30, in a documentation range), with
a private address (10.99.0.2/30) beside it for --egress-allow; the fixture
refuses to shadow a route this machine already has (its package registries
may sit in another documentation range)."""

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import BUILD, Daemon, deploy, function_daemon, sandbox_cgroups, sandbox_procs, wait_for

INTERNET_NS = f"lamb-test-inet-{os.getpid()}"
HOST_SIDE = f"lti{os.getpid() % 100000}"
HOST_IP = "198.51.100.1"
INTERNET = "198.51.100.2"
PRIVATE = "10.99.0.2"
WEB_PORT = 8080

APP = rb'''
import json, socket, threading, urllib.request

def connect(host, port):
    try:
        socket.create_connection((host, port), timeout=5).close()
        return "connected"
    except OSError as e:
        return f"failed: errno {e.errno}: {e}"

def serve(sock):
    while True:
        conn, _ = sock.accept()
        conn.close()

LISTENER = []

def handler(event, context):
    op = event["op"]
    if op == "get":
        try:
            return urllib.request.urlopen(event["url"], timeout=5).read().decode()
        except urllib.error.HTTPError as e:
            return f"http {e.code}"
    if op == "connect":
        return connect(event["host"], event["port"])
    if op == "resolve":
        return socket.gethostbyname(event["name"])
    if op == "file":
        return open(event["path"]).read()
    if op == "address":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect(("198.51.100.2", 9))
        return s.getsockname()[0]
    if op == "listen":
        if not LISTENER:
            s = socket.socket()
            s.bind(("0.0.0.0", 7000))
            s.listen(16)
            threading.Thread(target=serve, args=(s,), daemon=True).start()
            LISTENER.append(s)
        return connect("127.0.0.1", 7000)
    if op == "sql":
        import pg8000.native
        con = pg8000.native.Connection("postgres", host="host.lamb.internal", port=event["port"])
        try:
            return [[list(r) for r in (con.run(q) or [])] for q in event["queries"]]
        finally:
            con.close()
    raise ValueError(op)
'''

# What `connect` answers when lamb's rules reject (EHOSTUNREACH): a refusal
# of ours, told apart from a timeout or a closed port.
REJECTED = "errno 113"

SERVER = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
'''


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def internet():
    """A network namespace standing in for the internet, routed from the
    host, with an HTTP server on 8080 that answers the client's address;
    also on a private address, to show --egress-allow."""
    if os.geteuid() != 0:
        pytest.skip("root-only test: lamb serve runs as root only")
    for net in ("198.51.100.0/30", "10.99.0.0/30"):
        assert not routes_over(net), f"this machine routes {net} already: the test would shadow it"
    sh("ip", "netns", "add", INTERNET_NS)
    server = None
    try:
        sh("ip", "link", "add", HOST_SIDE, "type", "veth", "peer", "name", "eth0", "netns", INTERNET_NS)
        sh("ip", "addr", "add", f"{HOST_IP}/30", "dev", HOST_SIDE)
        sh("ip", "addr", "add", "10.99.0.1/30", "dev", HOST_SIDE)
        sh("ip", "link", "set", HOST_SIDE, "up")
        inside = ["ip", "netns", "exec", INTERNET_NS]
        sh(*inside, "ip", "addr", "add", f"{INTERNET}/30", "dev", "eth0")
        sh(*inside, "ip", "addr", "add", f"{PRIVATE}/30", "dev", "eth0")
        sh(*inside, "ip", "link", "set", "eth0", "up")
        sh(*inside, "ip", "link", "set", "lo", "up")
        sh(*inside, "ip", "route", "add", "default", "via", HOST_IP)
        server = subprocess.Popen([*inside, sys.executable, "-c", SERVER, str(WEB_PORT)])
        wait_for(lambda: http_from_host(f"http://{INTERNET}:{WEB_PORT}/"), timeout=20, what="the test's web server")
        yield
    finally:
        if server:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", HOST_SIDE], capture_output=True)
        subprocess.run(["ip", "netns", "del", INTERNET_NS], capture_output=True)


def routes_over(net):
    """This machine's routes (every table, but default routes) that overlap `net`."""
    out = json.loads(subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], check=True,
                                    capture_output=True, text=True).stdout)
    net = ipaddress.ip_network(net)
    found = []
    for route in out:
        dst = route.get("dst", "default")
        if dst != "default" and ipaddress.ip_network(dst, strict=False).overlaps(net):
            found.append(dst)
    return found


def http_from_host(url):
    try:
        return urllib.request.urlopen(url, timeout=2).read().decode()
    except OSError:
        return None


def call(lam, function, **event):
    out = lam.invoke(FunctionName=function, Payload=json.dumps(event).encode())
    body = json.loads(out["Payload"].read())
    assert "FunctionError" not in out, body
    return body


def deploy_app(lam, name, extra=None, timeout=30):
    files = {"app.py": APP}
    files.update(extra or {})
    deploy(lam, name, files, Timeout=timeout)


def links():
    """This machine's links: {name: ifindex}."""
    out = json.loads(subprocess.run(["ip", "-j", "link"], check=True, capture_output=True, text=True).stdout)
    return {link["ifname"]: link["ifindex"] for link in out}


def names(d):
    """A daemon's bridge, veth prefix and nftables table (lamb_sandbox::network::Names)."""
    h = d.cgroup_parent.removeprefix("lamb-")
    return f"lamb{h[:10]}", f"lv{h[:8]}", f"lamb-{h}"


def veths(d):
    prefix = names(d)[1]
    return {n: i for n, i in links().items() if n.startswith(prefix)}


def nft_tables():
    out = subprocess.run(["nft", "list", "tables"], check=True, capture_output=True, text=True).stdout
    return [line.split()[-1] for line in out.splitlines()]


def bridge_subnet(d):
    out = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", names(d)[0]], check=True,
                                    capture_output=True, text=True).stdout)
    info = out[0]["addr_info"][0]
    return info["local"], info["prefixlen"]


def assert_network_gone(d):
    bridge, _, table = names(d)
    assert bridge not in links()
    assert not veths(d)
    assert table not in nft_tables()


def test_outbound_through_nat_dns_and_the_api(internet):
    with function_daemon("lamb-net-") as d:
        lam = d.lambda_client()
        deploy_app(lam, "net")
        gateway, prefix = bridge_subnet(d)
        # The web server sees the host's address: the sandbox's was masqueraded.
        assert call(lam, "net", op="get", url=f"http://{INTERNET}:{WEB_PORT}/") == HOST_IP
        own = call(lam, "net", op="address")
        assert own != gateway and own.split(".")[:2] == gateway.split(".")[:2]
        assert call(lam, "net", op="resolve", name="host.lamb.internal") == gateway
        assert call(lam, "net", op="file", path="/etc/resolv.conf") == f"nameserver {gateway}\n"
        # The Lambda API, through host.lamb.internal: unsigned, so 403, but reached.
        assert call(lam, "net", op="get", url=f"http://host.lamb.internal:{d.port}/lamb/status") == "http 403"
    assert_network_gone(d)


def test_refusals(internet):
    """Sandbox to sandbox, an unnamed host port, the metadata address, a
    private address until --egress-allow opens it."""
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(4)
    unnamed = listener.getsockname()[1]
    try:
        with function_daemon("lamb-net-refuse-", "--freeze-grace", "1h") as d:
            lam = d.lambda_client()
            deploy_app(lam, "a")
            deploy_app(lam, "b")
            assert call(lam, "a", op="listen") == "connected"
            a = call(lam, "a", op="address")
            # A's listener answers inside A, on its own address too.
            assert call(lam, "a", op="connect", host=a, port=7000) == "connected"
            assert REJECTED in call(lam, "b", op="connect", host=a, port=7000)
            # Listening on every address of the host does not open a port to sandboxes.
            assert REJECTED in call(lam, "b", op="connect", host="host.lamb.internal", port=unnamed)
            assert REJECTED in call(lam, "b", op="connect", host="169.254.169.254", port=80)
            assert REJECTED in call(lam, "b", op="connect", host=PRIVATE, port=WEB_PORT)
            assert call(lam, "b", op="connect", host=INTERNET, port=WEB_PORT) == "connected"
        with function_daemon("lamb-net-allow-", "--egress-allow", "10.99.0.0/30") as d:
            lam = d.lambda_client()
            deploy_app(lam, "b")
            assert call(lam, "b", op="connect", host=PRIVATE, port=WEB_PORT) == "connected"
            assert REJECTED in call(lam, "b", op="connect", host="169.254.169.254", port=80)
    finally:
        listener.close()


def sandbox_pid(d):
    """The first process of one of the daemon's sandboxes."""
    for cg in sandbox_cgroups(d.cgroup_parent):
        procs = sandbox_procs(cg)
        if procs:
            return procs[0]
    return None


SPOOF = r'''
import socket, sys
src, dst, port, marker = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
for source, payload in ((src, b"spoofed"), (None, marker.encode())):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if source:
        s.bind((source, 0))
    s.sendto(payload, (dst, port))
    s.close()
'''

UDP_LOG = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", int(sys.argv[1])))
with open(sys.argv[2], "a", buffering=1) as log:
    while True:
        data, peer = s.recvfrom(100)
        log.write(f"{peer[0]} {data.decode()}\n")
'''


def test_a_spoofed_source_is_dropped(internet, tmp_path):
    """Root in the sandbox's namespace (the test, with nsenter) adds another
    address to eth0 and sends from it: the datagram never arrives, while
    one from the sandbox's own address, sent after it, does."""
    log = tmp_path / "udp.log"
    receiver = subprocess.Popen(["ip", "netns", "exec", INTERNET_NS, sys.executable, "-c", UDP_LOG, "9999", str(log)])
    try:
        with function_daemon("lamb-net-spoof-", "--freeze-grace", "1h") as d:
            lam = d.lambda_client()
            deploy_app(lam, "s")
            own = call(lam, "s", op="address")
            gateway, _ = bridge_subnet(d)
            pid = sandbox_pid(d)
            enter = ["nsenter", f"--net=/proc/{pid}/ns/net"]
            other = gateway.rsplit(".", 1)[0] + ".200"
            for i, spoofed in enumerate([other, "198.51.100.77"]):
                sh(*enter, "ip", "addr", "add", f"{spoofed}/32", "dev", "eth0")
                marker = f"marker-{i}"
                sh(*enter, sys.executable, "-c", SPOOF, spoofed, INTERNET, "9999", marker)
                wait_for(lambda: log.exists() and marker in log.read_text(), timeout=20, what=marker)
                lines = log.read_text().splitlines()
                assert f"{HOST_IP} {marker}" in lines, lines
                assert not any("spoofed" in line for line in lines), lines
            assert own
    finally:
        receiver.kill()
        receiver.wait()


PG_PORT = 55432
PG8000 = ["pg8000==1.31.6", "scramp==1.5.0", "asn1crypto==1.5.1", "python-dateutil==2.9.0.post0", "six==1.17.0"]


@contextmanager
def postgres():
    """A PostgreSQL of the test's own on 127.0.0.1:PG_PORT, trusting local
    connections, in a directory its user may reach."""
    pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not pg_bin:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql)")
    bin_dir = pg_bin[-1]
    with tempfile.TemporaryDirectory(prefix="lamb-net-pg-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o755)
        with _postgres(bin_dir, tmp):
            yield


@contextmanager
def _postgres(bin_dir, tmp):
    data = tmp / "pg"
    data.mkdir()
    shutil.chown(data, "postgres", "postgres")
    as_pg = ["runuser", "-u", "postgres", "--"]
    sh(*as_pg, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    sock_dir = tmp / "pgsock"
    sock_dir.mkdir()
    shutil.chown(sock_dir, "postgres", "postgres")
    sh(*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(sock_dir / "pg.log"), "-o",
       f"-c listen_addresses=127.0.0.1 -p {PG_PORT} -k {sock_dir}", "start")
    try:
        yield
    finally:
        subprocess.run([*as_pg, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True)


def pg8000_files(tmp):
    """pg8000 and what it needs, from PyPI, as files for the function's bundle."""
    target = tmp / "deps"
    # Pinned with its dependencies, which --no-deps keeps pip from resolving
    # against the venv's own packages.
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                                "--no-deps", "--target", str(target), *PG8000], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr
    return {str(p.relative_to(target)): p.read_bytes() for p in target.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_postgres_through_a_host_port(tmp_path):
    files = pg8000_files(tmp_path)
    with postgres():
        with function_daemon("lamb-net-pg-", "--host-port", str(PG_PORT)) as d:
            lam = d.lambda_client()
            deploy_app(lam, "pg", files)
            rows = call(lam, "pg", op="sql", port=PG_PORT, queries=[
                "CREATE TABLE t (id int, name text)",
                "INSERT INTO t VALUES (1, 'lamb')",
                "SELECT id, name FROM t",
            ])
            assert rows[-1] == [[1, "lamb"]]
        # Without --host-port the same port is refused.
        with function_daemon("lamb-net-pg-closed-") as d:
            lam = d.lambda_client()
            deploy_app(lam, "pg")
            assert REJECTED in call(lam, "pg", op="connect", host="host.lamb.internal", port=PG_PORT)


def test_network_none_is_loopback_only(internet):
    with function_daemon("lamb-net-none-", "--network", "none") as d:
        lam = d.lambda_client()
        deploy_app(lam, "n")
        assert "failed" in call(lam, "n", op="connect", host=INTERNET, port=WEB_PORT)
        assert "host.lamb.internal" not in call(lam, "n", op="file", path="/etc/hosts")
        assert not veths(d)
        assert names(d)[0] not in links()


def test_userns_sandboxes_have_the_network_too(internet):
    with tempfile.TemporaryDirectory(prefix="lamb-net-userns-") as tmp:
        # Root in a sandbox's user namespace is nobody outside: the data directory's parent must be searchable.
        os.chmod(tmp, 0o755)
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.extra_args = ["--userns"]
        d.start()
        try:
            userns_calls(d)
        finally:
            assert d.stop() == 0
        assert_network_gone(d)


def userns_calls(d):
    lam = d.lambda_client()
    deploy_app(lam, "u")
    assert call(lam, "u", op="get", url=f"http://{INTERNET}:{WEB_PORT}/") == HOST_IP
    assert REJECTED in call(lam, "u", op="connect", host="169.254.169.254", port=80)
    assert "host.lamb.internal" in call(lam, "u", op="file", path="/etc/hosts")


def test_two_daemons_keep_to_their_own(internet):
    with function_daemon("lamb-net-one-") as one, function_daemon("lamb-net-two-") as two:
        assert bridge_subnet(one) != bridge_subnet(two)
        for d in (one, two):
            lam = d.lambda_client()
            deploy_app(lam, "f")
            assert call(lam, "f", op="get", url=f"http://{INTERNET}:{WEB_PORT}/") == HOST_IP
        # An explicit subnet over the other daemon's is refused at start, changing nothing.
        with tempfile.TemporaryDirectory(prefix="lamb-net-three-") as tmp:
            three = Daemon(Path(tmp))
            three.runtimes_dir = BUILD
            three.extra_args = ["--subnet", "{}/{}".format(*bridge_subnet(one)).replace(".1/", ".0/")]
            with pytest.raises(RuntimeError, match="overlaps the host's route"):
                three.start()
            assert_network_gone(three)
        before = veths(one)
        two.stop()
        assert_network_gone(two)
        assert veths(one) == before, "stopping one daemon left the other's veths alone"
        lam = one.lambda_client()
        assert call(lam, "f", op="get", url=f"http://{INTERNET}:{WEB_PORT}/") == HOST_IP


def test_kill_9_under_load_then_restart(internet):
    """The daemon and its spawner killed under load, as by a crash: the
    restart sweeps their veths, bridge and table and makes its own, once."""
    with tempfile.TemporaryDirectory(prefix="lamb-net-kill-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.start()
        try:
            lam = d.lambda_client()
            deploy_app(lam, "k")
            stop = threading.Event()
            errors = []

            def load():
                client = d.lambda_client()
                while not stop.is_set():
                    try:
                        client.invoke(FunctionName="k", Payload=json.dumps(
                            {"op": "get", "url": f"http://{INTERNET}:{WEB_PORT}/"}).encode())
                    except Exception as e:  # the daemon dies under it
                        errors.append(e)
                        return

            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            wait_for(lambda: len(sandbox_cgroups(d.cgroup_parent)) >= 2, timeout=60, what="sandboxes under load")
            old = veths(d)
            assert old, "the sandboxes have veths"
            spawner = int((Path(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read_text().split() or [0])[0])
            os.kill(spawner, signal.SIGKILL)
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            d.proc = None
            stop.set()
            for t in threads:
                t.join()
            assert names(d)[2] in nft_tables(), "the killed daemon's table is left for the sweep"
            d.start()
            assert call(lam, "k", op="get", url=f"http://{INTERNET}:{WEB_PORT}/") == HOST_IP
            now = veths(d)
            assert not set(old.values()) & set(now.values()), "a killed daemon's veth survived the restart"
            assert nft_tables().count(names(d)[2]) == 1
            assert sum(1 for n in links() if n == names(d)[0]) == 1
        finally:
            if d.proc:
                assert d.stop() == 0
        assert_network_gone(d)


def test_a_killed_daemons_spawner_removes_the_network(internet):
    """`kill -9` of the daemon alone: its spawner reads end of file and
    removes the veths, the bridge and the table before it exits."""
    with tempfile.TemporaryDirectory(prefix="lamb-net-orphan-") as tmp:
        d = Daemon(Path(tmp))
        d.runtimes_dir = BUILD
        d.start()
        try:
            lam = d.lambda_client()
            deploy_app(lam, "o")
            assert call(lam, "o", op="get", url=f"http://{INTERNET}:{WEB_PORT}/") == HOST_IP
            assert veths(d) and names(d)[2] in nft_tables()
            spawners = [int(p) for p in Path(f"/proc/{d.proc.pid}/task/{d.proc.pid}/children").read_text().split()]
            d.proc.send_signal(signal.SIGKILL)
            d.proc.wait()
            d.proc = None
            wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in spawners), timeout=30, what="the spawner's exit")
            assert_network_gone(d)
        finally:
            if d.proc:
                d.stop()
