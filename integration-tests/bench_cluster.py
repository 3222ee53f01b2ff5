"""The cluster benchmark (`make bench`, or run alone as root with the
integration tests' venv): nodes made as test_cluster.py makes them (each a
`lamb serve`, `$LAMB_BIN` else target/release/lamb else target/debug/lamb,
in a network namespace of its own, one PostgreSQL the script starts), the
static `provided` example (examples/hello-provided, `make examples`), and a
lean client: one signed Invoke request sent again and again on a kept-alive
connection (no SDK in the clock). Prints one JSON line per series and, with
`--out FILE`, writes its section of docs/benchmarks.md between its markers.

- forward: warm calls of node a's sandbox received by a itself and by b
  (which has no capacity, so it forwards every call to a), interleaved one
  for one, CLUSTER_BENCH_CALLS of each (default 2000);
- spread: warm calls per second with CLUSTER_BENCH_CALLERS callers (default
  4, each a process with its own connection) for CLUSTER_BENCH_SECONDS
  (default 10): all through one node (a cluster of one), against spread
  over three nodes, round robin. All nodes share this machine's cores, so
  this shows what the cluster's own machinery costs or allows here, not
  what three machines would give;
- cold: cold starts of the same function through a cluster node (its
  registry and admission in PostgreSQL) against a node of its own (SQLite,
  no cluster), interleaved one for one, CLUSTER_BENCH_COLD (default 30) of
  each, a configuration change and 100 ms idle before each call: each
  cold start also misses both nodes' read caches (a write clears them);
- scale: cold starts for scale, the same two nodes, interleaved, the
  function's configuration unchanged (read caches warm): both nodes run
  with `--idle-ttl` SCALE_TTL_MS (default 100), so the sandbox of each call
  is destroyed before the next, 3 x SCALE_TTL_MS idle before each call;
  each call's cold start is checked on the node's `lamb_cold_starts_total`
  (a call that found a sandbox is not counted). A pre-initialised sandbox
  expires as the function's does, so these go the plain path.
"""

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

here = Path(__file__).resolve().parent
root = here.parent
if "LAMB_BIN" not in os.environ:
    release = root / "target" / "release" / "lamb"
    os.environ["LAMB_BIN"] = str(release if release.exists() else root / "target" / "debug" / "lamb")
sys.path.insert(0, str(here))

import http.client  # noqa: E402
import urllib.request  # noqa: E402

from botocore.auth import SigV4Auth  # noqa: E402
from botocore.awsrequest import AWSRequest  # noqa: E402
from botocore.credentials import Credentials  # noqa: E402

from bench_doc import replace_section  # noqa: E402
from conftest import ACCESS_KEY, ROLE, SECRET_KEY, make_zip, wait_for  # noqa: E402
from postgres import bin_dir  # noqa: E402
from test_cluster import METRICS_PORT, ClusterPostgres, Net, Node, node_state  # noqa: E402

CALLS = int(os.environ.get("CLUSTER_BENCH_CALLS", "2000"))
CALLERS = int(os.environ.get("CLUSTER_BENCH_CALLERS", "4"))
SECONDS = float(os.environ.get("CLUSTER_BENCH_SECONDS", "10"))
COLD = int(os.environ.get("CLUSTER_BENCH_COLD", "30"))
CPU_BLOCK = 250
SCALE_TTL_MS = int(os.environ.get("CLUSTER_BENCH_SCALE_TTL_MS", "100"))
BOOTSTRAP = root / "examples" / "hello-provided" / "build" / "bootstrap"


class Caller:
    """One kept-alive connection to a node's API sending one signed Invoke."""

    def __init__(self, node):
        self.host, self.port = node.ip, node.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        self.conn.connect()
        self.sign()

    def sign(self):
        # Signed again now and then (outside the clock): a signature's date
        # is valid for minutes.
        url = f"http://{self.host}:{self.port}/2015-03-31/functions/hello/invocations"
        req = AWSRequest(method="POST", url=url, data=b"{}")
        SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "lambda", "us-east-1").add_auth(req)
        self.headers = dict(req.headers.items())
        self.signed_at = time.monotonic()

    def call(self):
        if time.monotonic() - self.signed_at > 60:
            self.sign()
        t0 = time.perf_counter()
        self.conn.request("POST", "/2015-03-31/functions/hello/invocations", body=b"{}", headers=self.headers)
        r = self.conn.getresponse()
        body = r.read()
        took = time.perf_counter() - t0
        assert r.status == 200 and not r.getheader("x-amz-function-error"), (r.status, body)
        return took


def figures(times):
    ms = sorted(t * 1000 for t in times)
    return {"min_ms": round(ms[0], 3), "p50_ms": round(ms[len(ms) // 2], 3),
            "p90_ms": round(ms[len(ms) * 9 // 10], 3), "p99_ms": round(ms[len(ms) * 99 // 100], 3)}


class Cluster:
    """Nodes on a fresh database of the one PostgreSQL."""

    def __init__(self, net, pg, secret, flags, single=(), single_args=()):
        """`flags`: the cluster's nodes (name, extra arguments); `single`:
        names of nodes started apart, each alone on a SQLite registry, with
        `single_args`."""
        pg.fresh_database()
        self.tmps, self.nodes, self.singles = [], [], []
        for i, (name, args) in enumerate([*flags, *((n, None) for n in single)]):
            tmp = tempfile.TemporaryDirectory(prefix=f"lamb-bench-node-{name}-")
            self.tmps.append(tmp)
            if len(net.namespaces) <= i:
                net.add(i)
            node = Node(Path(tmp.name), name, net.namespaces[i], f"{net.prefix}.{10 + i}",
                        f"lcv{net.tag}{i}", pg, secret, args or [])
            if args is None:
                node.extra_args = ["--network", "none", "--filesystem", f"gate={node.gate}",
                                   "--metrics-listen", f"{node.ip}:{METRICS_PORT}", *single_args]
            node.start()
            (self.nodes if args is not None else self.singles).append(node)
        wait_for(lambda: all(node_state(pg, n) == "alive" for n in self.nodes), what="the nodes alive")
        for node in [self.nodes[0], *self.singles]:
            node.client().create_function(
                FunctionName="hello", Role=ROLE, Runtime="provided.al2023", Handler="hello", MemorySize=128,
                Code={"ZipFile": make_zip({"bootstrap": (BOOTSTRAP.read_bytes(), 0o755)})})

    def stop(self):
        for n in [*self.nodes, *self.singles]:
            n.stop()
            os.system(f"umount -l {n.gate} 2>/dev/null")
        for t in self.tmps:
            t.cleanup()


def forward_series(net, pg, secret):
    c = Cluster(net, pg, secret, [("a", []), ("b", ["--cluster-capacity", "0"])])
    try:
        local, forwarded = Caller(c.nodes[0]), Caller(c.nodes[1])
        for _ in range(50):  # warm: the sandbox, the connections, the caches
            local.call()
            forwarded.call()
        times = {"local": [], "forwarded": []}
        for _ in range(CALLS):
            times["local"].append(local.call())
            times["forwarded"].append(forwarded.call())
        # CPU per call of each daemon: blocks of one path's calls alone
        # (the sandbox's and PostgreSQL's work is the same on both paths),
        # the two paths' blocks alternated so both see the same load.
        cpu = {k: [0.0] * len(c.nodes) for k in times}
        callers = {"local": Caller(c.nodes[0]), "forwarded": Caller(c.nodes[1])}
        for _ in range(CALLS // CPU_BLOCK):
            for k, caller in callers.items():
                before = [cpu_s(n) for n in c.nodes]
                for _ in range(CPU_BLOCK):
                    caller.call()
                cpu[k] = [t + cpu_s(n) - b for t, n, b in zip(cpu[k], c.nodes, before)]
        calls = CALLS // CPU_BLOCK * CPU_BLOCK
        cpu = {k: {f"{n.name}_us": round(t * 1e6 / calls, 1) for n, t in zip(c.nodes, v)} for k, v in cpu.items()}
        return {"series": "forward", "calls": CALLS, "load": os.getloadavg()[0],
                **{k: figures(v) for k, v in times.items()}, "cpu_per_call": cpu}
    finally:
        c.stop()


def cpu_s(node):
    """The CPU time (user and system) the node's daemon has used, in
    seconds (counted in clock ticks, so per call over many calls only): its
    own threads, not its sandboxes'."""
    fields = Path(f"/proc/{node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cold_series(net, pg, secret):
    c = Cluster(net, pg, secret, [("a", [])], single=["s"])
    try:
        nodes = {"cluster": c.nodes[0], "single": c.singles[0]}
        callers = {k: Caller(n) for k, n in nodes.items()}
        clients = {k: n.client() for k, n in nodes.items()}
        times = {k: [] for k in nodes}
        for i in range(COLD + 1):
            for k in nodes:
                # A new revision: the next call starts a new sandbox.
                clients[k].update_function_configuration(FunctionName="hello", Description=f"cold {i}")
                time.sleep(0.1)
                took = callers[k].call()
                if i:  # the first of each warms the connections and caches
                    times[k].append(took)
        return {"series": "cold", "calls": COLD, "load": os.getloadavg()[0],
                **{k: figures(v) for k, v in times.items()}}
    finally:
        c.stop()


def scale_series(net, pg, secret):
    ttl = ["--idle-ttl", f"{SCALE_TTL_MS}ms"]
    c = Cluster(net, pg, secret, [("a", ttl)], single=["s"], single_args=ttl)
    try:
        nodes = {"cluster": c.nodes[0], "single": c.singles[0]}
        callers = {k: Caller(n) for k, n in nodes.items()}
        times = {k: [] for k in nodes}
        found_warm = {k: 0 for k in nodes}
        for i in range(COLD + 1):
            for k, node in nodes.items():
                # The last call's sandbox expires and is destroyed.
                time.sleep(3 * SCALE_TTL_MS / 1000)
                before = cold_starts(node)
                took = callers[k].call()
                if cold_starts(node) == before:
                    found_warm[k] += 1
                elif i:  # the first of each warms the connections and caches
                    times[k].append(took)
        return {"series": "scale", "calls": COLD, "idle_ttl_ms": SCALE_TTL_MS, "load": os.getloadavg()[0],
                "found_warm": found_warm, **{k: figures(v) for k, v in times.items()}}
    finally:
        c.stop()


def cold_starts(node):
    """The node's `lamb_cold_starts_total`, summed over functions."""
    text = urllib.request.urlopen(f"http://{node.ip}:{METRICS_PORT}/metrics", timeout=10).read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("lamb_cold_starts_total"))


def caller_loop(host, port, deadline, out):
    class N:
        pass
    n = N()
    n.ip, n.port = host, port
    caller, count = Caller(n), 0
    while time.monotonic() < deadline:
        caller.call()
        count += 1
    out.put(count)


def throughput(nodes):
    # Every caller warm first, so each node holds its sandboxes.
    for i in range(CALLERS):
        Caller(nodes[i % len(nodes)]).call()
    out = multiprocessing.Queue()
    deadline = time.monotonic() + 1 + SECONDS
    procs = [multiprocessing.Process(target=caller_loop, args=(nodes[i % len(nodes)].ip, nodes[i % len(nodes)].port,
                                                                 deadline, out)) for i in range(CALLERS)]
    for p in procs:
        p.start()
    counts = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return round(sum(counts) / (SECONDS + 1), 1)


def spread_series(net, pg, secret):
    result = {"series": "spread", "callers": CALLERS, "seconds": SECONDS}
    for label, names in (("one_node", "a"), ("three_nodes", "abc")):
        c = Cluster(net, pg, secret, [(n, []) for n in names])
        try:
            result[label + "_per_s"] = throughput(c.nodes)
        finally:
            c.stop()
    result["load"] = os.getloadavg()[0]
    return result


# The two daemons of the cold series, as their table rows name them.
NODES = {"cluster": "through a cluster node (PostgreSQL registry and admission)",
         "single": "through a node of its own (SQLite, no cluster)"}


def cold_row(series, node, v, calls):
    """One row of a cold-start table: `node`'s figures `v` over `calls` calls."""
    return (f"| {series}, {NODES[node]} ({calls} calls) | {v['min_ms']} ms | {v['p50_ms']} ms | "
            f"{v['p90_ms']} ms | {v['p99_ms']} ms |")


def section(results):
    f, s, cold, scale = results
    lines = [f"Measured {time.strftime('%Y-%m-%d')} by `integration-tests/bench_cluster.py` (load average "
             f"{f['load']:.1f}); warm static `provided` calls, a lean keep-alive client.", "",
             "| series | min | p50 | p90 | p99 |", "|---|---|---|---|---|"]
    for k in ("local", "forwarded"):
        v = f[k]
        lines.append(f"| {k} ({f['calls']} calls, interleaved) | {v['min_ms']} ms | {v['p50_ms']} ms | "
                     f"{v['p90_ms']} ms | {v['p99_ms']} ms |")
    cpu = f["cpu_per_call"]
    lines += ["", "CPU per call of each daemon (user and system, its own threads; the calls of one path alone): "
              + "; ".join(f"{k}: " + ", ".join(f"node {n[:-3]} {us} µs" for n, us in cpu[k].items())
                          for k in ("local", "forwarded")) + "."]
    lines += ["", f"{s['callers']} callers for {s['seconds']} s: {s['one_node_per_s']} calls/s through one node, "
              f"{s['three_nodes_per_s']} calls/s spread over three nodes (all on this machine's cores).", "",
              "Cold starts (a configuration change and 100 ms idle before each call), interleaved:", "",
              "| series | min | p50 | p90 | p99 |", "|---|---|---|---|---|"]
    lines += [cold_row("cold", k, cold[k], cold["calls"]) for k in NODES]
    lines += ["", f"Cold starts for scale (configuration unchanged, `--idle-ttl {scale['idle_ttl_ms']}ms` on both "
              f"nodes, {3 * scale['idle_ttl_ms']} ms idle before each call), interleaved:", "",
              "| series | min | p50 | p90 | p99 |", "|---|---|---|---|---|"]
    lines += [cold_row("cold for scale", k, scale[k], scale["calls"] - scale["found_warm"][k]) for k in NODES]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", help="a Markdown file whose section between the markers is replaced")
    ap.add_argument("--only", choices=["forward", "spread", "cold", "scale"])
    args = ap.parse_args()
    assert os.geteuid() == 0, "the nodes run as root only"
    assert BOOTSTRAP.exists(), "make examples first"
    net = Net()
    pgroot = Path(tempfile.mkdtemp(prefix="lamb-bench-pg-"))
    pg = ClusterPostgres(pgroot, bin_dir(), net)
    secret_dir = tempfile.TemporaryDirectory(prefix="lamb-bench-secret-")
    secret = Path(secret_dir.name) / "secret"
    secret.write_text(os.urandom(32).hex())
    secret.chmod(0o600)
    try:
        pg.init()
        pg.open_to_nodes()
        results = []
        if args.only in (None, "forward"):
            results.append(forward_series(net, pg, secret))
            print(json.dumps(results[-1]), flush=True)
        if args.only in (None, "spread"):
            results.append(spread_series(net, pg, secret))
            print(json.dumps(results[-1]), flush=True)
        if args.only in (None, "cold"):
            results.append(cold_series(net, pg, secret))
            print(json.dumps(results[-1]), flush=True)
        if args.only in (None, "scale"):
            results.append(scale_series(net, pg, secret))
            print(json.dumps(results[-1]), flush=True)
        if args.out and len(results) == 4:
            replace_section(args.out, "cluster-bench", section(results))
    finally:
        pg.stop()
        os.system(f"rm -rf {pgroot}")
        net.remove()
        secret_dir.cleanup()


if __name__ == "__main__":
    main()
