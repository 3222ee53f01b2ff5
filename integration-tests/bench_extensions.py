"""Cold and warm latency of a Python function with one extension (the
example built with AWS's `lambda-extension` crate, subscribed to platform
and function telemetry) against the same function without it, in the same
daemon and run, interleaved. Prints a Markdown section for
docs/benchmarks.md. Needs root, `make rootfs` and `make examples`:

    integration-tests/.venv/bin/python integration-tests/bench_extensions.py [COLD_RUNS] [WARM_RUNS]
"""

import statistics
import sys
import time

from conftest import LAMB, ROLE, function_daemon, make_zip
from test_extensions import APP, TELEMETRY_EXTENSION


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def timed_invoke(lam, name):
    start = time.perf_counter()
    r = lam.invoke(FunctionName=name, Payload=b"{}")
    r["Payload"].read()
    assert "FunctionError" not in r, name
    return (time.perf_counter() - start) * 1000


def main():
    cold_runs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    warm_runs = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with function_daemon("lamb-bench-ext-") as d:
        lam = d.lambda_client()
        layer = lam.publish_layer_version(
            LayerName="telemetry",
            Content={"ZipFile": make_zip({"extensions/telemetry-extension": (TELEMETRY_EXTENSION.read_bytes(), 0o755)})},
        )["LayerVersionArn"]
        variants = {"without": [], "with one extension": [layer]}
        code = make_zip({"app.py": APP})
        cold = {v: [] for v in variants}
        for i in range(cold_runs):
            for v, layers in variants.items():
                name = f"b{i}-{'ext' if layers else 'plain'}"
                lam.create_function(FunctionName=name, Role=ROLE, Runtime="python3.11", Handler="app.handler",
                                    Code={"ZipFile": code}, MemorySize=1024, Layers=layers)
                cold[v].append(timed_invoke(lam, name))
                lam.delete_function(FunctionName=name)
        warm = {v: [] for v in variants}
        for v, layers in variants.items():
            lam.create_function(FunctionName=f"w-{len(layers)}", Role=ROLE, Runtime="python3.11",
                                Handler="app.handler", Code={"ZipFile": code}, MemorySize=1024, Layers=layers)
            timed_invoke(lam, f"w-{len(layers)}")
        for _ in range(warm_runs):
            for v, layers in variants.items():
                warm[v].append(timed_invoke(lam, f"w-{len(layers)}"))
    print(f"## Extensions: one extension against none (python3.11, 1024 MB, `{LAMB.split('/')[-2]}` build)\n")
    print(f"Same daemon, interleaved; {cold_runs} cold starts and {warm_runs} warm invocations each, "
          "milliseconds from boto3's call to the whole answer.\n")
    print("| | cold median | cold p90 | warm median | warm p90 |")
    print("|---|---|---|---|---|")
    for v in variants:
        print(f"| {v} | {statistics.median(cold[v]):.1f} | {percentile(cold[v], 90):.1f} "
              f"| {statistics.median(warm[v]):.2f} | {percentile(warm[v], 90):.2f} |")


if __name__ == "__main__":
    main()
