//! Schedules and event source mappings under a lease (docs/cluster.md,
//! "Schedules, mappings, file triggers"): the subsystem's task is started
//! when this node takes the lease and stopped, awaited, when it loses it,
//! so exactly one node runs it at a time.

use super::Cluster;
use lamb_cluster::lease::{self, Guarded};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Starts one run of the subsystem, which ends when its receiver turns true.
pub type Starter = Box<dyn FnMut(watch::Receiver<bool>) -> JoinHandle<()> + Send>;

struct Subsystem {
    name: &'static str,
    starter: Starter,
    running: Option<(watch::Sender<bool>, JoinHandle<()>)>,
}

impl Guarded for Subsystem {
    fn start(&mut self, epoch: i64) {
        tracing::info!(subsystem = self.name, epoch, "running here under the cluster's lease");
        let (stop, rx) = watch::channel(false);
        self.running = Some((stop, (self.starter)(rx)));
    }

    async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            tracing::info!(subsystem = self.name, "stopping: the lease is no longer this node's");
            let _ = stop.send(true);
            let _ = task.await;
        }
    }
}

/// Keeps the lease `name` while `stop` is false, running the subsystem
/// `starter` starts only while this node holds it.
pub fn start(
    cluster: Arc<Cluster>,
    name: &'static str,
    starter: Starter,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let subsystem = Subsystem {
            name,
            starter,
            running: None,
        };
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        lease::keep(&cluster.db, name, &cluster.node_id, subsystem, stopped).await;
    })
}
