//! The heartbeat: every second this node writes its row (load, idle
//! sandboxes per version) and reads everyone's back as routing's snapshot,
//! and removes the counts of nodes seen dead. A failed beat (the database
//! down) is logged and the next one tries again on a new connection.

use super::Cluster;
use crate::invoker::Invoker;
use lamb_cluster::membership::{self, DEAD_AFTER, HEARTBEAT_EVERY};
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Beats until `stop` turns true, then leaves the cluster.
pub fn start(cluster: Arc<Cluster>, invoker: Arc<dyn Invoker>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut failing = false;
        loop {
            match beat(&cluster, &*invoker).await {
                Ok(()) if failing => {
                    tracing::info!("cluster database reachable again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    tracing::warn!(error = %lamb_cluster::chain(&e), "cluster heartbeat failed");
                    failing = true;
                }
                Err(_) => {}
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            }
        }
        cluster.leave().await;
    })
}

async fn beat(cluster: &Cluster, invoker: &dyn Invoker) -> Result<(), lamb_cluster::DbError> {
    let report = cluster.report(invoker);
    let nodes = cluster
        .db
        .with(|client| async move {
            membership::heartbeat(&client, &report).await?;
            membership::sweep_dead(&client, DEAD_AFTER).await?;
            membership::nodes(&client).await
        })
        .await?;
    cluster.set_nodes(nodes);
    Ok(())
}
