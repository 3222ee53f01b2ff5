//! `lamb events NAME`: the queued, running and failed async events of a
//! function (lamb's `GET .../lamb-events`).

use crate::client::{Call, Client};
use crate::output::{cell, print_json, table};
use crate::ClientOpts;
use serde_json::Value;

/// Epoch milliseconds as RFC 3339 UTC, or `-`.
fn when(v: &Value) -> String {
    v.as_i64()
        .and_then(|ms| time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

pub fn run(c: &Client, opts: &ClientOpts, name: &str) -> anyhow::Result<()> {
    let v = c.json(Call::new("GET", &["/2015-03-31/functions", name, "lamb-events"]))?;
    if opts.json {
        print_json(&v);
        return Ok(());
    }
    let rows = v["Events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![
                cell(&e["RequestId"]),
                cell(&e["Qualifier"]),
                cell(&e["Status"]),
                cell(&e["Attempts"]),
                when(&e["EnqueuedAt"]),
                when(&e["NextAttemptAt"]),
                cell(&e["Error"]),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "REQUEST ID",
                "QUALIFIER",
                "STATUS",
                "ATTEMPTS",
                "QUEUED",
                "NEXT ATTEMPT",
                "ERROR"
            ],
            rows
        )
    );
    Ok(())
}
