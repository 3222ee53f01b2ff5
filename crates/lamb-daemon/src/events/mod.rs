//! Asynchronous invocations (`X-Amz-Invocation-Type: Event`): the invoke
//! route writes each event to the registry's queue before it answers 202;
//! the worker here claims due events under a lease, runs them through the
//! [`crate::Invoker`] under the same concurrency limits as synchronous calls,
//! retries failures with Lambda's back-off, expires old events, and hands
//! the invocation record to the OnSuccess or OnFailure destination.
//!
//! Delivery is at least once: an event leaves the queue only in the
//! transaction that ends it for good (and queues its destination's event),
//! and what a killed daemon left running is run again by the next one.

pub mod queue;
mod record;
mod worker;

pub use queue::{EventQueue, DEFAULT_RETRY_DELAYS};
pub use record::{destination_function, validate_destination};

/// Starts the worker; call once, inside the async runtime. It stops
/// claiming events once `stop` is set; the runs it started finish on their
/// own.
pub fn start(state: crate::AppState, stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(worker::run(state, stop))
}

/// Milliseconds since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
