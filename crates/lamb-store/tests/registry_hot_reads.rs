//! What a hot read of the API costs on each engine: `get_function` of a
//! published version through an alias's resolution, as an invocation reads
//! it. A measurement, not a check (`--ignored --nocapture`; the figures are
//! in docs/benchmarks.md).

mod common;

use common::registry::{create, Backend};
use lamb_store::NewAlias;
use lamb_types::{Qualifier, Version};
use std::time::Instant;

fn measure(b: &Backend, what: &str) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", true);
    reg.create_alias(
        "f",
        NewAlias {
            name: "live".into(),
            function_version: Version::Published(1),
            description: String::new(),
            weights: Default::default(),
        },
    )
    .unwrap();
    let q = Qualifier::parse("live").unwrap();
    for _ in 0..200 {
        reg.get_function("f", &q).unwrap();
    }
    let mut times: Vec<f64> = (0..2000)
        .map(|_| {
            let t = Instant::now();
            reg.get_function("f", &q).unwrap();
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "{what}: get_function(alias) p50 {:.0} us, p99 {:.0} us (min {:.0} us, p90 {:.0} us)",
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[0],
        times[times.len() * 9 / 10]
    );
}

#[test]
#[ignore = "a measurement: run with --ignored --nocapture"]
fn hot_reads_on_both_engines() {
    measure(&Backend::sqlite(), "sqlite");
    measure(&Backend::postgres(), "postgres");
}
