//! The queue's runtime side, which the shared state holds: this daemon
//! run's lease owner, the retry delays, and the worker's wake-up.

use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Lambda's retry spacing: about 1 minute, then about 2.
pub const DEFAULT_RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(60), Duration::from_secs(120)];

/// The queue's runtime side: who this daemon run is, how long retries wait,
/// and the wake-up of the worker.
#[derive(Debug)]
pub struct EventQueue {
    /// Owner of this run's leases, `<node>/<run>`; a new run takes back
    /// every older one (of this node, on a shared registry).
    pub(super) run_id: String,
    /// The wait before retry 1, 2, ...; the last one repeats.
    retry_delays: Vec<Duration>,
    pub(super) wake: Arc<Notify>,
}

impl EventQueue {
    /// `retry_delays` empty means Lambda's; `node` names the data
    /// directory's node (`data_dir::node_id`).
    pub fn new(node: &str, retry_delays: Vec<Duration>) -> Self {
        Self {
            run_id: format!("{node}/{}", uuid::Uuid::new_v4()),
            retry_delays: if retry_delays.is_empty() {
                DEFAULT_RETRY_DELAYS.to_vec()
            } else {
                retry_delays
            },
            wake: Arc::new(Notify::new()),
        }
    }

    /// Wakes the worker: an event was queued or became due earlier.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A hook for the registry's enqueue, so that events queued by anyone
    /// (the invoke route, schedules, triggers) wake the worker.
    pub fn waker(&self) -> impl Fn() + Send + Sync + 'static {
        let wake = Arc::clone(&self.wake);
        move || wake.notify_one()
    }

    pub(super) fn retry_delay(&self, retry: u32) -> Duration {
        let i = (retry.max(1) as usize - 1).min(self.retry_delays.len() - 1);
        self.retry_delays[i]
    }
}

impl Default for EventQueue {
    /// A queue of a node of its own (a fresh id), with Lambda's delays.
    fn default() -> Self {
        Self::new(&uuid::Uuid::new_v4().to_string(), Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_repeat_the_last() {
        let q = EventQueue::new("node", vec![Duration::from_secs(1), Duration::from_secs(2)]);
        assert_eq!(q.retry_delay(1), Duration::from_secs(1));
        assert_eq!(q.retry_delay(2), Duration::from_secs(2));
        assert_eq!(q.retry_delay(5), Duration::from_secs(2));
        assert_eq!(EventQueue::default().retry_delay(2), Duration::from_secs(120));
    }
}
