//! `lamb bench-engine`: the invocation engine measured through the HTTP API
//! on loopback, signed like any client: cold starts (back to back and with
//! 100 ms idle between calls), warm latency and warm throughput with 1, 8
//! and 64 callers, and, for orientation, the bare runtimes started without
//! a sandbox; the init series (issue 12): Python and Node hello cold at
//! 128 MB and at 1792 MB beside their bare interpreters started in the same
//! runtime trees in the same run (init runs at one full core whatever the
//! memory, so the two sizes should match); the network series (issue 11),
//! given a second daemon with `--network none` and a web server in a network
//! namespace: cold starts with `--network nat` against `none`, interleaved,
//! and a function's own HTTP requests through NAT against the same client
//! on the host; the async series (issue 16): Event invocations of the static
//! function at 1792 MB from many keep-alive callers at once, accepted (202,
//! the event durable in the queue) and executed per second (`--async-only`
//! runs only it);
//! the prewarm series (issue 16), given a third daemon with
//! `--prewarm off`: Python and Node hello cold at 128 and 1792 MB on both.
//! Prints a Markdown section for `docs/benchmarks.md`.

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lamb_cli::client::{Call, Client, Keys};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The static `provided` bootstrap's bundle directory.
    #[arg(long)]
    provided: PathBuf,
    /// The Python hello world's bundle directory.
    #[arg(long)]
    python: PathBuf,
    /// The Node.js hello world's bundle directory, for the init series.
    #[arg(long)]
    node: Option<PathBuf>,
    /// Run the init series only.
    #[arg(long, requires = "node")]
    init_only: bool,
    /// The runtime trees, for the bare-runtime orientation numbers.
    #[arg(long)]
    runtimes_dir: PathBuf,
    /// Cold starts per series.
    #[arg(long, default_value_t = 100)]
    cold_runs: usize,
    /// Warm invocations for the latency series.
    #[arg(long, default_value_t = 2000)]
    warm_runs: usize,
    /// Seconds per throughput series.
    #[arg(long, default_value_t = 3)]
    seconds: u64,
    /// A second daemon, started with `--network none`, for the network series
    /// (this one runs with `--network nat`).
    #[arg(long, requires = "web")]
    none_endpoint: Option<String>,
    /// A web server on another network namespace of this machine, reached
    /// through NAT from sandboxes and routed from the host (`http://ADDR:PORT/`).
    #[arg(long)]
    web: Option<String>,
    /// Run the network series only.
    #[arg(long, requires = "none_endpoint")]
    network_only: bool,
    /// Run the async series only.
    #[arg(long)]
    async_only: bool,
    /// Concurrent callers of the async series: each accept waits for a sync
    /// of the WAL, which its group shares, so the rate grows with callers.
    #[arg(long, default_value_t = 64)]
    async_callers: usize,
    /// A third daemon, started with `--prewarm off`, for the prewarm series
    /// (this one runs with `--prewarm on`).
    #[arg(long, requires = "node")]
    prewarm_off_endpoint: Option<String>,
    /// Run the prewarm series only.
    #[arg(long, requires = "prewarm_off_endpoint")]
    prewarm_only: bool,
}

const FUNCTIONS: &str = "/2015-03-31/functions";

fn invoke(c: &Client, name: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let a = c.send(Call::new("POST", &[FUNCTIONS, name, "invocations"]).raw(b"{\"name\":\"bench\"}".to_vec()))?;
    let d = t.elapsed();
    if a.header("x-amz-function-error").is_some() {
        bail!("{name} failed: {}", String::from_utf8_lossy(&a.body));
    }
    Ok(d)
}

fn deploy(c: &Client, name: &str, runtime: &str, handler: &str, dir: &Path, memory: u32) -> anyhow::Result<()> {
    let zip = lamb_cli::bundle::zip_dir(dir)?;
    let _ = c.send(Call::new("DELETE", &[FUNCTIONS, name]));
    c.send(Call::new("POST", &[FUNCTIONS]).json(&json!({
        "FunctionName": name, "Role": "arn:aws:iam::000000000000:role/bench", "Runtime": runtime,
        "Handler": handler, "MemorySize": memory, "Timeout": 30, "Code": {"ZipFile": STANDARD.encode(zip)},
    })))
    .with_context(|| format!("deploy {name}"))?;
    Ok(())
}

/// A new configuration revision: the next call starts a new sandbox.
fn touch(c: &Client, name: &str, n: usize) -> anyhow::Result<()> {
    c.send(Call::new("PUT", &[FUNCTIONS, name, "configuration"]).json(&json!({"Description": format!("run {n}")})))?;
    Ok(())
}

struct Stats {
    runs: usize,
    p50: f64,
    p90: f64,
    p99: f64,
    min: f64,
    max: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        runs: ms.len(),
        p50: at(0.5),
        p90: at(0.9),
        p99: at(0.99),
        min: ms[0],
        max: ms[ms.len() - 1],
    }
}

fn row(what: &str, s: &Stats) -> String {
    format!(
        "| {what} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        s.runs, s.min, s.p50, s.p90, s.p99, s.max
    )
}

fn cold(c: &Client, name: &str, runs: usize, gap: Duration) -> anyhow::Result<Stats> {
    let mut ms = Vec::with_capacity(runs);
    for i in 0..runs {
        touch(c, name, i)?;
        std::thread::sleep(gap);
        ms.push(invoke(c, name)?.as_secs_f64() * 1000.0);
    }
    Ok(stats(ms))
}

fn warm(c: &Client, name: &str, runs: usize) -> anyhow::Result<Stats> {
    for _ in 0..50 {
        invoke(c, name)?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        ms.push(invoke(c, name)?.as_secs_f64() * 1000.0);
    }
    Ok(stats(ms))
}

fn throughput(endpoint: &str, keys: &Keys, name: &str, callers: usize, secs: u64) -> anyhow::Result<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let counting = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..callers {
        let c = Client::new(endpoint, keys.clone())?;
        let (stop, done, counting, name) = (stop.clone(), done.clone(), counting.clone(), name.to_owned());
        threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
            while !stop.load(Ordering::Relaxed) {
                invoke(&c, &name)?;
                if counting.load(Ordering::Relaxed) {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(())
        }));
    }
    // Warm-up: every caller's sandbox exists before counting starts.
    std::thread::sleep(Duration::from_secs(1));
    counting.store(true, Ordering::Relaxed);
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let n = done.load(Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("a caller panicked"))??;
    }
    Ok(n as f64 / elapsed)
}

/// How many events of `name` are still in the async queue (queued or
/// running), and how many failed.
fn queue_depth(c: &Client, name: &str) -> anyhow::Result<(usize, usize)> {
    let v = c.send(Call::new("GET", &[FUNCTIONS, name, "lamb-events"]))?.json()?;
    let events = v["Events"].as_array().cloned().unwrap_or_default();
    let failed = events.iter().filter(|e| e["Status"] == "failed").count();
    Ok((events.len() - failed, failed))
}

/// The async series: `callers` keep-alive clients send Event invocations of
/// `name` for `secs` (each answered 202 once durable in the queue); then the
/// queue is read back until empty. Answers (accepted/s, executed/s), the
/// second over the whole time from the first send to the empty queue.
fn async_rate(endpoint: &str, keys: &Keys, name: &str, callers: usize, secs: u64) -> anyhow::Result<(f64, f64)> {
    let accepted = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let c = Client::new(endpoint, keys.clone())?;
            let (accepted, name) = (accepted.clone(), name.to_owned());
            Ok(std::thread::spawn(move || -> anyhow::Result<()> {
                while Instant::now() < end {
                    let call = Call::new("POST", &[FUNCTIONS, &name, "invocations"])
                        .header("x-amz-invocation-type", "Event")
                        .raw(b"{\"name\":\"bench\"}".to_vec());
                    let a = c.send(call)?;
                    if a.status != 202 {
                        bail!("an Event invocation answered {}", a.status);
                    }
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            }))
        })
        .collect::<anyhow::Result<_>>()?;
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("a caller panicked"))??;
    }
    let sent = start.elapsed().as_secs_f64();
    let n = accepted.load(Ordering::Relaxed) as f64;
    let c = Client::new(endpoint, keys.clone())?;
    loop {
        let (left, failed) = queue_depth(&c, name)?;
        if failed > 0 {
            bail!("{failed} async events failed");
        }
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((n / sent, n / start.elapsed().as_secs_f64()))
}

/// The async series' section.
fn async_series(c: &Client, args: &Args, endpoint: &str, keys: &Keys) -> anyhow::Result<()> {
    let name = "bench-async";
    deploy(c, name, "provided.al2023", "bootstrap", &args.provided, 1792)?;
    // Warm-up: the worker's sandboxes exist before the measured run.
    async_rate(endpoint, keys, name, args.async_callers, 1)?;
    let (accepted, executed) = async_rate(endpoint, keys, name, args.async_callers, args.seconds)?;
    println!("### Async invocations: accepted and executed per second\n");
    println!(
        "Event invocations of the static `provided` function at 1792 MB from {} keep-alive",
        args.async_callers
    );
    println!(
        "callers for {}s (each 202 answered once the event is synced to the durable queue), then the",
        args.seconds
    );
    println!("queue read back until empty; executed/s counts from the first send to the empty queue.\n");
    println!("| series | per second |\n|---|---|");
    println!("| accepted (202) | {accepted:.0} |");
    println!("| executed | {executed:.0} |");
    Ok(())
}

/// Runs `argv` with `chroot` into `root` (the runtime without a sandbox).
fn bare(root: &Path, argv: &[&str], runs: usize) -> anyhow::Result<Stats> {
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        Command::new("/usr/sbin/chroot")
            .arg(root)
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("chroot")?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(stats(ms))
}

/// One hello world of the init series and its bare interpreter.
struct Hello<'a> {
    runtime: &'a str,
    handler: &'a str,
    dir: &'a Path,
    bare: &'a [&'a str],
}

/// The init series: each hello cold (a new sandbox per call, 100 ms idle
/// before each) at 128 and 1792 MB, then its interpreter alone, chrooted
/// into the same tree, in the same run.
fn init_series(c: &Client, args: &Args, node: &Path) -> anyhow::Result<()> {
    let runs = args.cold_runs.min(30);
    let hellos = [
        Hello {
            runtime: "python3.13",
            handler: "lambda_function.lambda_handler",
            dir: &args.python,
            bare: &["/usr/bin/python3", "-c", "pass"],
        },
        Hello {
            runtime: "nodejs24.x",
            handler: "index.handler",
            dir: node,
            bare: &["/usr/bin/node", "-e", "0"],
        },
    ];
    let mut rows = Vec::new();
    for h in &hellos {
        for memory in [128, 1792] {
            let name = format!("bench-init-{}-{memory}", h.runtime.replace('.', "-"));
            deploy(c, &name, h.runtime, h.handler, h.dir, memory)?;
            let s = cold(c, &name, runs, Duration::from_millis(100))?;
            rows.push(row(&format!("cold, {} hello, {memory} MB", h.runtime), &s));
        }
        let s = bare(&args.runtimes_dir.join(h.runtime), h.bare, runs)?;
        rows.push(row(
            &format!("bare `{}` in the {} tree", h.bare.join(" "), h.runtime),
            &s,
        ));
    }
    println!("### Init at full speed: cold starts at 128 and 1792 MB\n");
    println!("Each hello world cold ({runs} calls, a new sandbox for each, 100 ms idle before each),");
    println!("through the HTTP API, at 128 MB and at 1792 MB, then its interpreter alone (chroot into");
    println!("the same runtime tree, no sandbox) in the same run (ms).\n");
    println!("| series | runs | min | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    Ok(())
}

/// The prewarm series (issue 16, docs/prewarm.md): Python and Node.js hello
/// cold at 128 and 1792 MB on this daemon (`--prewarm on`) and on the one at
/// `off_endpoint` (`--prewarm off`), interleaved so that both see the same
/// machine; 100 ms idle before each call, in which the pool refills.
fn prewarm_series(c: &Client, args: &Args, off_endpoint: &str, keys: &Keys, node: &Path) -> anyhow::Result<()> {
    let off = Client::new(off_endpoint, keys.clone())?;
    let runs = args.cold_runs.min(30);
    let hellos = [
        ("python3.13", "lambda_function.lambda_handler", args.python.as_path()),
        ("nodejs24.x", "index.handler", node),
    ];
    let mut rows = Vec::new();
    for (runtime, handler, dir) in hellos {
        for memory in [128, 1792] {
            let name = format!("bench-prewarm-{}-{memory}", runtime.replace('.', "-"));
            deploy(c, &name, runtime, handler, dir, memory)?;
            deploy(&off, &name, runtime, handler, dir, memory)?;
            let (mut on_ms, mut off_ms) = (Vec::new(), Vec::new());
            // One first cold start each: a runtime's pool fills after its first.
            for client in [c, &off] {
                touch(client, &name, 0)?;
                invoke(client, &name)?;
            }
            for i in 1..=runs {
                for (client, ms) in [(&off, &mut off_ms), (c, &mut on_ms)] {
                    touch(client, &name, i)?;
                    std::thread::sleep(Duration::from_millis(100));
                    ms.push(invoke(client, &name)?.as_secs_f64() * 1000.0);
                }
            }
            rows.push(row(
                &format!("cold, {runtime} hello, {memory} MB, --prewarm on"),
                &stats(on_ms),
            ));
            rows.push(row(
                &format!("cold, {runtime} hello, {memory} MB, --prewarm off"),
                &stats(off_ms),
            ));
        }
    }
    println!("### Pre-initialised runtime sandboxes: --prewarm on against off\n");
    println!("Each hello world cold ({runs} calls, a new revision before each, 100 ms idle before each),");
    println!("through the HTTP API, on a daemon with `--prewarm on` and one with `--prewarm off`,");
    println!("interleaved, after one first cold start each (docs/prewarm.md) (ms).\n");
    println!("| series | runs | min | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    Ok(())
}

/// Sends keep-alive GETs to `URL` for `SECONDS` on one connection and
/// answers how many a second: run by a function in its sandbox and by the
/// same interpreter on the host, so that only the path differs.
const HTTP_CLIENT: &str = r#"
import http.client, time, urllib.parse
def requests_per_second(url, seconds):
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    n, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        conn.request("GET", u.path or "/")
        conn.getresponse().read()
        n += 1
    return n / seconds
def lambda_handler(event, context):
    return requests_per_second(event["url"], event["seconds"])
if __name__ == "__main__":
    import sys
    print(requests_per_second(sys.argv[1], float(sys.argv[2])))
"#;

/// Cold starts on this daemon (`--network nat`) and on the one at
/// `none_endpoint`, interleaved so that both see the same machine, then a
/// function's outbound requests per second against the host's.
fn network_series(c: &Client, args: &Args, none_endpoint: &str, keys: &Keys, web: &str) -> anyhow::Result<()> {
    let none = Client::new(none_endpoint, keys.clone())?;
    let bundles = [
        (
            "provided",
            "provided.al2023",
            "bootstrap",
            &args.provided,
            128,
            args.cold_runs / 2,
        ),
        (
            "python",
            "python3.11",
            "lambda_function.lambda_handler",
            &args.python,
            1792,
            args.cold_runs.min(30),
        ),
    ];
    let mut rows = Vec::new();
    for (label, runtime, handler, dir, memory, runs) in bundles {
        let name = format!("bench-net-{label}");
        deploy(c, &name, runtime, handler, dir, memory)?;
        deploy(&none, &name, runtime, handler, dir, memory)?;
        let (mut nat_ms, mut none_ms) = (Vec::new(), Vec::new());
        for i in 0..runs {
            for (client, ms) in [(c, &mut nat_ms), (&none, &mut none_ms)] {
                touch(client, &name, i)?;
                std::thread::sleep(Duration::from_millis(100));
                ms.push(invoke(client, &name)?.as_secs_f64() * 1000.0);
            }
        }
        rows.push(row(&format!("cold, {label}, --network nat"), &stats(nat_ms)));
        rows.push(row(&format!("cold, {label}, --network none"), &stats(none_ms)));
    }
    let dir = std::env::temp_dir().join(format!("lamb-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("lambda_function.py"), HTTP_CLIENT)?;
    // 3008 MB, the most an account may give: 1.7 vCPUs of quota, near the machine's two, so that
    // the sandbox's CPU quota does not hold its client back where the host's runs free.
    deploy(
        c,
        "bench-net-http",
        "python3.11",
        "lambda_function.lambda_handler",
        &dir,
        3008,
    )?;
    let event = json!({"url": web, "seconds": args.seconds}).to_string();
    let answer = c.send(Call::new("POST", &[FUNCTIONS, "bench-net-http", "invocations"]).raw(event.into_bytes()))?;
    let sandbox: f64 = serde_json::from_slice(&answer.body).context("the function's requests per second")?;
    let script = args.runtimes_dir.join("python3.11/tmp/lamb-bench-http.py");
    std::fs::write(&script, HTTP_CLIENT)?;
    let host = Command::new("/usr/sbin/chroot")
        .arg(args.runtimes_dir.join("python3.11"))
        .args([
            "/usr/bin/python3",
            "/tmp/lamb-bench-http.py",
            web,
            &args.seconds.to_string(),
        ])
        .env_clear()
        .output()
        .context("the host's client")?;
    let _ = std::fs::remove_file(&script);
    let _ = std::fs::remove_dir_all(&dir);
    let host: f64 = String::from_utf8_lossy(&host.stdout)
        .trim()
        .parse()
        .context("the host's requests per second")?;
    println!("### Network: --network nat against none\n");
    println!("Cold starts on two daemons of the same build, one with `--network nat` (the default) and one");
    println!("with `--network none`, interleaved call by call, 100 ms idle before each (ms):\n");
    println!("| series | runs | min | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    let seconds = args.seconds;
    println!("\nA function's own outbound HTTP (keep-alive GETs on one connection, {seconds}s, python3.11");
    println!("at 3008 MB, 1.7 vCPUs of quota) to a server in another network namespace,");
    println!("through the sandbox's veth and NAT, against the same interpreter and script on the host");
    println!("(chroot, host network):\n");
    println!("| client | requests/s |\n|---|---|");
    println!("| in a sandbox, through NAT | {sandbox:.0} |");
    println!("| on the host | {host:.0} |");
    Ok(())
}

pub fn run(args: Args, endpoint: &str, keys: Keys) -> anyhow::Result<()> {
    let c = Client::new(endpoint, keys.clone())?;
    if let (true, Some(node)) = (args.init_only, &args.node) {
        return init_series(&c, &args, node);
    }
    if let (true, Some(none), Some(web)) = (args.network_only, &args.none_endpoint, &args.web) {
        return network_series(&c, &args, none, &keys, web);
    }
    if args.async_only {
        return async_series(&c, &args, endpoint, &keys);
    }
    if let (true, Some(off), Some(node)) = (args.prewarm_only, &args.prewarm_off_endpoint, &args.node) {
        return prewarm_series(&c, &args, off, &keys, node);
    }
    deploy(
        &c,
        "bench-provided",
        "provided.al2023",
        "bootstrap",
        &args.provided,
        128,
    )?;
    // The warm series at 1792 MB too: at 128 MB a warm sandbox called back
    // to back outruns its CPU quota (docs/benchmarks.md, "Warm p99").
    deploy(
        &c,
        "bench-provided-1792",
        "provided.al2023",
        "bootstrap",
        &args.provided,
        1792,
    )?;
    deploy(
        &c,
        "bench-python",
        "python3.11",
        "lambda_function.lambda_handler",
        &args.python,
        1792,
    )?;
    let gap = Duration::from_millis(100);
    // Between series: the sandboxes the cold series left expire (--idle-ttl
    // 2s) and their network namespaces are torn down, before the next one.
    let settle = || std::thread::sleep(Duration::from_secs(6));
    let python_runs = args.cold_runs.min(30);
    let rows = [
        row(
            "cold, provided (static C), back to back",
            &cold(&c, "bench-provided", args.cold_runs, Duration::ZERO)?,
        ),
        row(
            "cold, provided (static C), 100 ms idle before each",
            &cold(&c, "bench-provided", args.cold_runs / 2, gap)?,
        ),
        row(
            "cold, python3.11 hello, back to back",
            &cold(&c, "bench-python", python_runs, Duration::ZERO)?,
        ),
        row(
            "cold, python3.11 hello, 100 ms idle before each",
            &cold(&c, "bench-python", python_runs, gap)?,
        ),
        {
            settle();
            row(
                "warm, provided (static C), 128 MB, 1 caller",
                &warm(&c, "bench-provided", args.warm_runs)?,
            )
        },
        row(
            "warm, provided (static C), 1792 MB, 1 caller",
            &warm(&c, "bench-provided-1792", args.warm_runs)?,
        ),
        row(
            "warm, python3.11 hello, 1 caller",
            &warm(&c, "bench-python", args.warm_runs / 2)?,
        ),
    ];
    let task = args.runtimes_dir.join("provided.al2023");
    let staged = task.join("tmp/lamb-bench-bootstrap");
    std::fs::copy(args.provided.join("bootstrap"), &staged).context("stage the bootstrap for the bare run")?;
    let bare_provided = bare(&task, &["/tmp/lamb-bench-bootstrap"], 200);
    let _ = std::fs::remove_file(&staged);
    let py_imports = "import json, urllib.request, http.client, logging, traceback, decimal";
    let bare_python = bare(
        &args.runtimes_dir.join("python3.11"),
        &["/usr/bin/python3", "-c", py_imports],
        50,
    )?;
    let mut tput = Vec::new();
    for callers in [1, 8, 64] {
        tput.push((
            callers,
            throughput(endpoint, &keys, "bench-provided", callers, args.seconds)?,
        ));
    }
    println!("## Invocation engine, through the HTTP API (loopback, SigV4)\n");
    println!("Measured by `lamb bench-engine` (`make bench`), release build; the client is");
    println!("`lamb`'s own (ureq, keep-alive, SigV4 signing), on the same 2 cores as the daemon.");
    println!("A cold start is forced by a configuration change before each call (a new pool).");
    println!("The static function runs at 128 MB (and its warm series at 1792 MB too), Python at 1792 MB");
    println!("(about one vCPU): at 128 MB the CPU quota is 7% of a core, which throttles a warm sandbox");
    println!("called back to back to a few hundred invocations a second, as on Lambda.\n");
    println!("| series | runs | min | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|");
    for r in &rows {
        println!("{r}");
    }
    println!("\nFor orientation, the bare runtimes (chroot into the runtime tree, no sandbox, fork+exec+wait):\n");
    println!("| runtime | runs | min | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|---|");
    if let Ok(s) = bare_provided {
        println!("{}", row("static bootstrap (exits: no Runtime API)", &s));
    }
    println!("{}", row("python3 with the runtime client's imports", &bare_python));
    println!("\n| warm throughput, provided (static C) | invocations/s |\n|---|---|");
    for (callers, rate) in tput {
        println!("| {callers} concurrent callers | {rate:.0} |");
    }
    if let Some(node) = &args.node {
        println!();
        init_series(&c, &args, node)?;
    }
    if let (Some(none), Some(web)) = (&args.none_endpoint, &args.web) {
        println!();
        network_series(&c, &args, none, &keys, web)?;
    }
    println!();
    async_series(&c, &args, endpoint, &keys)?;
    if let (Some(off), Some(node)) = (&args.prewarm_off_endpoint, &args.node) {
        println!();
        prewarm_series(&c, &args, off, &keys, node)?;
    }
    Ok(())
}
