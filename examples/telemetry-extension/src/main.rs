//! Prints every telemetry record it receives as one line, `[telemetry] ...`.

use lambda_extension::{service_fn, Error, Extension, LambdaTelemetry, LambdaTelemetryRecord, SharedService};

async fn records(batch: Vec<LambdaTelemetry>) -> Result<(), Error> {
    for event in batch {
        match event.record {
            LambdaTelemetryRecord::Function(line) => println!("[telemetry] function {}", line.trim_end()),
            LambdaTelemetryRecord::PlatformStart { request_id, .. } => {
                println!("[telemetry] platform.start {request_id}")
            }
            LambdaTelemetryRecord::PlatformRuntimeDone { request_id, status, .. } => {
                println!("[telemetry] platform.runtimeDone {request_id} {status:?}")
            }
            LambdaTelemetryRecord::PlatformReport { request_id, metrics, .. } => println!(
                "[telemetry] platform.report {request_id} durationMs={} memorySizeMB={}",
                metrics.duration_ms, metrics.memory_size_mb
            ),
            LambdaTelemetryRecord::PlatformInitStart { .. } => println!("[telemetry] platform.initStart"),
            LambdaTelemetryRecord::PlatformInitRuntimeDone { .. } => println!("[telemetry] platform.initRuntimeDone"),
            other => println!("[telemetry] other {other:?}"),
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    Extension::new()
        .with_telemetry_processor(SharedService::new(service_fn(records)))
        .with_telemetry_types(&["platform", "function"])
        .run()
        .await
}
