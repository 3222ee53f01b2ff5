#!/usr/bin/env bash
# The invocation engine's benchmark (`make bench`): starts a release daemon
# over the runtime trees in rootfs/build, runs `lamb bench-engine` against it
# and writes its Markdown section into docs/benchmarks.md (or $BENCH_OUT),
# replacing the one an earlier run wrote.
# Needs root, `make rootfs` and `make examples`. Extra arguments go to
# bench-engine (--cold-runs N, --warm-runs N, --seconds S; --init-only runs
# only the init series: Python and Node hello cold at 128 and 1792 MB beside
# their bare interpreters; --network-only only the network series: cold
# starts with --network nat against none, and outbound HTTP through NAT;
# --async-only only the async series: Event invocations accepted and
# executed per second through the durable queue, --async-callers N;
# --prewarm-only only the prewarm series: Python and Node hello cold at 128
# and 1792 MB with --prewarm on against off).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
lamb="${LAMB_BIN:-$root/target/release/lamb}"
out="${BENCH_OUT:-$root/docs/benchmarks.md}"
[ "$(id -u)" = 0 ] || { echo "bench.sh: the daemon runs as root only" >&2; exit 1; }
[ -x "$lamb" ] || { echo "bench.sh: no lamb binary at $lamb (cargo build --release -p lamb)" >&2; exit 1; }
[ -x "$root/examples/hello-provided/build/bootstrap" ] || { echo "bench.sh: make examples first" >&2; exit 1; }
tmp="$(mktemp -d /tmp/lamb-bench.XXXXXX)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LAMB_ACCESS_KEY_ID=LAMBBENCHKEY LAMB_SECRET_ACCESS_KEY=lamb-bench-secret LAMB_ENDPOINT="http://127.0.0.1:$port"
# --allow-deprecated-runtimes: the benchmark's python3.11 (blocked from
# 2027-07-31) keeps the figures comparable with earlier runs.
"$lamb" serve --listen "127.0.0.1:$port" --data-dir "$tmp/data" --runtimes-dir "$root/rootfs/build" \
    --idle-ttl 2s --memory-capacity 1000000 --allow-deprecated-runtimes >"$tmp/daemon.log" 2>&1 &
daemon=$!
# The network series: a second daemon with --network none, and a web server
# in a network namespace of this machine standing in for the internet
# (198.51.100.0/30, in a documentation range), so that no request leaves it.
port_none=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$lamb" serve --listen "127.0.0.1:$port_none" --url-listen "127.0.0.1:0" --data-dir "$tmp/data-none" \
    --runtimes-dir "$root/rootfs/build" --idle-ttl 2s --memory-capacity 1000000 --allow-deprecated-runtimes \
    --network none >"$tmp/daemon-none.log" 2>&1 &
daemon_none=$!
# The prewarm series: a third daemon with --prewarm off (the first runs with
# the default, on).
port_off=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$lamb" serve --listen "127.0.0.1:$port_off" --url-listen "127.0.0.1:0" --data-dir "$tmp/data-off" \
    --runtimes-dir "$root/rootfs/build" --idle-ttl 2s --memory-capacity 1000000 --allow-deprecated-runtimes \
    --prewarm off >"$tmp/daemon-off.log" 2>&1 &
daemon_off=$!
netns="lamb-bench-web-$$"; veth="lbw$(($$ % 100000))"
ip netns add "$netns"
ip link add "$veth" type veth peer name eth0 netns "$netns"
ip addr add 198.51.100.1/30 dev "$veth"; ip link set "$veth" up
ip -n "$netns" addr add 198.51.100.2/30 dev eth0; ip -n "$netns" link set eth0 up; ip -n "$netns" link set lo up
ip -n "$netns" route add default via 198.51.100.1
ip netns exec "$netns" python3 -c '
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("0.0.0.0", 8080), H).serve_forever()' &
web=$!
cleanup() {
    kill -TERM "$daemon" "$daemon_none" "$daemon_off" 2>/dev/null || true
    wait "$daemon" "$daemon_none" "$daemon_off" 2>/dev/null || true
    kill "$web" 2>/dev/null || true; ip link del "$veth" 2>/dev/null || true; ip netns del "$netns" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
for _ in $(seq 1 100); do "$lamb" status >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 100); do LAMB_ENDPOINT="http://127.0.0.1:$port_none" "$lamb" status >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 100); do LAMB_ENDPOINT="http://127.0.0.1:$port_off" "$lamb" status >/dev/null 2>&1 && break; sleep 0.1; done
for _ in $(seq 1 100); do curl -sf http://198.51.100.2:8080/ >/dev/null && break; sleep 0.1; done
section="$("$lamb" bench-engine --provided "$root/examples/hello-provided/build" \
    --python "$root/examples/hello-python" --node "$root/examples/hello-node" --runtimes-dir "$root/rootfs/build" \
    --none-endpoint "http://127.0.0.1:$port_none" --web http://198.51.100.2:8080/ \
    --prewarm-off-endpoint "http://127.0.0.1:$port_off" "$@")"
printf '%s\n' "$section"
# Replace the engine's section between its markers (or append it once).
printf '%s\n' "$section" | python3 "$here/bench_doc.py" "$out" engine-bench
