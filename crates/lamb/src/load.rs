//! `lamb load-engine`: a fixed number of synchronous invocations spread
//! round-robin over several functions by many keep-alive callers, for the
//! load tests (`integration-tests/test_load.py`). Prints one JSON line:
//! `{"ok":N,"errors":N,"throttled":N,"failed":N,"seconds":S}`. A Python
//! client signs too slowly for 100,000 invocations in a few minutes.

use lamb_cli::client::{ApiError, Call, Client, Keys};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The functions to invoke, in turn (repeatable).
    #[arg(long = "function", required = true)]
    functions: Vec<String>,
    /// Invocations in all.
    #[arg(long, default_value_t = 1000)]
    total: u64,
    /// Concurrent callers, each with its own keep-alive connection.
    #[arg(long, default_value_t = 8)]
    callers: u64,
}

#[derive(Default)]
struct Counts {
    next: AtomicU64,
    ok: AtomicU64,
    errors: AtomicU64,
    throttled: AtomicU64,
    failed: AtomicU64,
}

pub fn run(args: Args, endpoint: &str, keys: Keys) -> anyhow::Result<()> {
    let counts = Arc::new(Counts::default());
    let functions = Arc::new(args.functions);
    let started = Instant::now();
    let mut threads = Vec::new();
    for _ in 0..args.callers.max(1) {
        let c = Client::new(endpoint, keys.clone())?;
        let (counts, functions, total) = (counts.clone(), functions.clone(), args.total);
        threads.push(std::thread::spawn(move || loop {
            let i = counts.next.fetch_add(1, Ordering::Relaxed);
            if i >= total {
                return;
            }
            let name = &functions[(i % functions.len() as u64) as usize];
            let call = Call::new("POST", &["/2015-03-31/functions", name, "invocations"])
                .raw(format!("{{\"name\":\"load {i}\"}}").into_bytes());
            let counter = match c.send(call) {
                Ok(a) if a.header("x-amz-function-error").is_some() => &counts.errors,
                Ok(_) => &counts.ok,
                Err(e) if e.downcast_ref::<ApiError>().is_some_and(|a| a.status == 429) => &counts.throttled,
                Err(_) => &counts.failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for t in threads {
        t.join().map_err(|_| anyhow::anyhow!("a caller panicked"))?;
    }
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!(
        "{}",
        json!({
            "ok": load(&counts.ok), "errors": load(&counts.errors), "throttled": load(&counts.throttled),
            "failed": load(&counts.failed), "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}
