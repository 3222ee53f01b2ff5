"""Container image functions against zip functions of the same runtime: cold
starts of the static `provided.al2023` hello as a zip on the runtime tree and
as an image of that tree plus the binary (its layers already unpacked), in
the same daemon and run, interleaved; and the first pull of a ~100 MB image
(the python3.11 tree as one layer) from a local `docker-registry`, beside a
plain HTTP download of the same blob. Prints a Markdown section for
docs/benchmarks.md. Needs root, docker-registry, `make rootfs` and `make
examples`:

    integration-tests/.venv/bin/python integration-tests/bench_images.py [COLD_RUNS]
"""

import re
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from conftest import LAMB, ROLE, function_daemon, make_zip
from test_images import HELLO, Registry, files_layer, tree_layer


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed_invoke(lam, name):
    start = time.perf_counter()
    r = lam.invoke(FunctionName=name, Payload=b'{"name": "bench"}')
    r["Payload"].read()
    assert "FunctionError" not in r, name
    return (time.perf_counter() - start) * 1000


def wait_active(lam, name):
    while True:
        c = lam.get_function_configuration(FunctionName=name)
        if c["State"] != "Pending":
            assert c["State"] == "Active", c.get("StateReason")
            return
        time.sleep(0.005)


def main():
    cold_runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with tempfile.TemporaryDirectory(prefix="lamb-bench-img-") as tmp:
        reg = Registry(Path(tmp))
        host = f"127.0.0.1:{reg.port}"
        try:
            with function_daemon("lamb-bench-img-", "--insecure-registry", host) as d:
                lam = d.lambda_client()
                # First pull: ~100 MB in one layer, nothing stored yet.
                big, _, big_layers = reg.push_image("big", "1", [tree_layer("python3.11")],
                                                    {"Entrypoint": ["/bin/true"]})
                size = len(tree_layer("python3.11")[0])
                start = time.perf_counter()
                lam.create_function(FunctionName="big", Role=ROLE, PackageType="Image",
                                    Code={"ImageUri": f"{host}/big:1"})
                wait_active(lam, "big")
                pull_s = time.perf_counter() - start
                start = time.perf_counter()
                urllib.request.urlopen(f"{reg.url}/v2/big/blobs/{big_layers[0]}").read()
                download_s = time.perf_counter() - start
                # The daemon's own account of the layer: download, then unpack.
                hex_ = big_layers[0].split(":")[1]
                line = next(ln for ln in d.log.read_text().splitlines()
                            if "image layer unpacked" in ln and hex_ in ln)
                phases = dict(re.findall(r"(download_ms|unpack_ms|entries)=(\d+)", line))

                reg.push_image("hello", "1", [tree_layer("provided.al2023"),
                                              files_layer({"var/task/bootstrap": (HELLO.read_bytes(), 0o755)})],
                               {"Entrypoint": ["/var/task/bootstrap"]})
                zip_code = make_zip({"bootstrap": (HELLO.read_bytes(), 0o755)})
                cold = {"zip": [], "image": []}
                for i in range(cold_runs):
                    lam.create_function(FunctionName=f"z{i}", Role=ROLE, Runtime="provided.al2023",
                                        Handler="bootstrap", Code={"ZipFile": zip_code})
                    lam.create_function(FunctionName=f"i{i}", Role=ROLE, PackageType="Image",
                                        Code={"ImageUri": f"{host}/hello:1"})
                    wait_active(lam, f"i{i}")
                    pair = [("zip", f"z{i}"), ("image", f"i{i}")]
                    for kind, name in (pair if i % 2 == 0 else pair[::-1]):
                        cold[kind].append(timed_invoke(lam, name))
                    for _, name in pair:
                        lam.delete_function(FunctionName=name)
        finally:
            reg.stop()
    print(f"## Container images (issue 15, `{LAMB.split('/')[-2]}` build)\n")
    print(f"Same daemon, interleaved; {cold_runs} cold starts each of the static provided.al2023 hello, "
          "milliseconds from boto3's call to the whole answer, the image's layers already unpacked.\n")
    print("| Package | p50 | p90 | min |")
    print("|---|---|---|---|")
    for kind, xs in cold.items():
        print(f"| {kind} | {percentile(xs, 50):.2f} | {percentile(xs, 90):.2f} | {min(xs):.2f} |")
    print(f"\nFirst pull of a {size / 1e6:.0f} MB single-layer image (the python3.11 tree, uncompressed tar) "
          f"from docker-registry on loopback, CreateFunction to `Active`: {pull_s:.2f} s; "
          f"a plain HTTP GET of the same blob: {download_s:.2f} s. The daemon's log: download and digest "
          f"{phases['download_ms']} ms, unpack of {phases['entries']} entries {phases['unpack_ms']} ms; "
          "the rest is syncfs, the rename and the registry round trips.")


if __name__ == "__main__":
    main()
