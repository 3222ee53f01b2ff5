//! Provisioned concurrency in a cluster (docs/cluster.md, "Provisioned
//! concurrency"): the node holding the `provisioned` lease splits every
//! stored configuration among the live nodes ([`allocator`], through
//! [`lamb_cluster::provisioned::rebalance`]); every node, at each beat
//! ([`follow`]), reports how many of its share it has initialised, reads
//! its share back and makes its engine keep exactly that
//! (`crate::provisioned::follow`), and keeps the cluster's sums, which
//! `GetProvisionedConcurrencyConfig` answers from ([`View::status`]).

use super::Cluster;
use crate::invoker::{ProvisionedState, ProvisionedStatus};
use crate::state::AppState;
use lamb_cluster::membership::{DEAD_AFTER, HEARTBEAT_EVERY};
use lamb_cluster::provisioned::{self, Config, Key, Report, Total};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What this node last read of the split: its own counts, and every
/// configuration's total over the live nodes.
#[derive(Debug, Default)]
pub struct View {
    read: Mutex<(BTreeMap<Key, u32>, BTreeMap<Key, Total>)>,
}

impl View {
    fn key(function: &str, qualifier: &str) -> Key {
        (function.to_owned(), qualifier.to_owned())
    }

    /// The sandboxes of the configuration this node is to keep.
    pub fn share(&self, function: &str, qualifier: &str) -> u32 {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        read.0.get(&Self::key(function, qualifier)).copied().unwrap_or(0)
    }

    /// The configuration's status across the cluster: `READY` once the
    /// live nodes' sandboxes reach `requested`, `FAILED` when a node's
    /// init failed.
    pub fn status(&self, function: &str, qualifier: &str, requested: u32) -> ProvisionedStatus {
        let read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        let total = read.1.get(&Self::key(function, qualifier)).cloned().unwrap_or_default();
        let state = match &total.failure {
            Some(_) => ProvisionedState::Failed,
            None if total.allocated >= requested && requested > 0 => ProvisionedState::Ready,
            None => ProvisionedState::InProgress,
        };
        ProvisionedStatus {
            allocated: total.allocated.min(requested),
            state,
            reason: total.failure,
        }
    }

    fn set(&self, mine: BTreeMap<Key, u32>, totals: BTreeMap<Key, Total>) {
        *self.read.lock().unwrap_or_else(|e| e.into_inner()) = (mine, totals);
    }
}

/// The allocator, run while this node holds the `provisioned` lease: every
/// heartbeat, the stored configurations split again among the live nodes
/// (what changed only: a configuration, a node dead or come).
pub fn allocator(state: AppState) -> super::leased::Starter {
    Box::new(move |mut stop| {
        let state = state.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = rebalance(&state).await {
                    tracing::warn!(error = %e, "cannot split provisioned concurrency among the nodes");
                }
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                }
            }
        })
    })
}

async fn rebalance(state: &AppState) -> Result<(), String> {
    let Some(cluster) = state.cluster.clone() else {
        return Ok(());
    };
    let configs: Vec<Config> = state
        .blocking(|s| Ok(s.registry.list_provisioned_concurrency(None)?))
        .await
        .map_err(|e| format!("{e:?}"))?
        .into_iter()
        .map(|rec| Config {
            function: rec.function,
            qualifier: rec.qualifier,
            requested: rec.requested,
        })
        .collect();
    let changed = cluster
        .db
        .with(|client| async move { provisioned::rebalance(&client, &configs, DEAD_AFTER).await })
        .await
        .map_err(|e| lamb_cluster::chain(&e))?;
    if changed {
        tracing::info!("provisioned concurrency split among the nodes anew");
    }
    Ok(())
}

/// This node's side, every heartbeat until `stop`: report, read the
/// split, make the engine follow it.
pub fn follow(state: AppState, cluster: Arc<Cluster>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    tokio::spawn(async move {
        // What the engine was last told per configuration (its versions
        // and their counts), so a beat changes only what moved.
        let mut applied = crate::provisioned::Applied::default();
        loop {
            match beat(&state, &cluster, applied).await {
                Ok(next) => applied = next,
                Err((kept, e)) => {
                    applied = kept;
                    tracing::debug!(error = %e, "provisioned concurrency beat failed");
                }
            }
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            }
        }
    })
}

type Beat = Result<crate::provisioned::Applied, (crate::provisioned::Applied, String)>;

async fn beat(state: &AppState, cluster: &Cluster, applied: crate::provisioned::Applied) -> Beat {
    let reports: Vec<Report> = applied
        .keys()
        .map(|(function, qualifier)| {
            let status = state.invoker.provisioned_status(function, qualifier);
            Report {
                function: function.clone(),
                qualifier: qualifier.clone(),
                allocated: status.as_ref().map_or(0, |s| s.allocated),
                failure: status.and_then(|s| s.reason),
            }
        })
        .collect();
    let node_id = cluster.node_id.clone();
    let read = cluster
        .db
        .with(|client| async move { provisioned::follow(&client, &node_id, &reports, DEAD_AFTER).await })
        .await;
    let (mine, totals) = match read {
        Ok(read) => read,
        Err(e) => return Err((applied, lamb_cluster::chain(&e))),
    };
    cluster.provisioned.set(mine.clone(), totals);
    state
        .blocking(move |s| {
            let mut applied = applied;
            crate::provisioned::follow(s, &mine, &mut applied);
            Ok(applied)
        })
        .await
        // The blocking task died: the next beat tells the engine everything again.
        .map_err(|e| (crate::provisioned::Applied::default(), format!("{e:?}")))
}
