//! Hello world on `provided.al2023` with the AWS Rust runtime library: greets
//! the event's `name` and counts the invocations this environment served, so
//! warm reuse shows (1, 2, 3 ...).

use std::sync::atomic::{AtomicU64, Ordering};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

async fn handler(event: LambdaEvent<Value>) -> Result<Value, Error> {
    let count = INVOCATIONS.fetch_add(1, Ordering::Relaxed) + 1;
    let name = event.payload.get("name").and_then(Value::as_str).unwrap_or("world");
    if event.payload.get("fail").and_then(Value::as_bool) == Some(true) {
        return Err(format!("asked to fail for {name}").into());
    }
    println!("invocation {count} for {name}");
    Ok(json!({
        "message": format!("Hello, {name}!"),
        "invocations": count,
        "requestId": event.context.request_id,
        "function": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
    }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
