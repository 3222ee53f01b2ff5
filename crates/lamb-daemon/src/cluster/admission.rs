//! The cluster-wide admission around the engine: every invocation this node
//! runs, whoever asked (the Invoke route, a forward, the async worker, a
//! mapping, a URL), is counted in PostgreSQL before the engine admits it
//! and counted out when it ends (written with the next admission or soon
//! after, off the answer's path), so the account's limit and reserved
//! concurrency hold across the nodes (docs/cluster.md). The engine's own
//! admission still applies after it, on this node's share.

use super::Cluster;
use crate::error::ApiError;
use crate::invoker::{InvokeFuture, InvokeRequest, Invoker, ProvisionTarget, ProvisionedStatus};
use lamb_cluster::concurrency::{self, Admitted, Ask};
use lamb_types::LambdaError;
use std::collections::HashMap;
use std::sync::Arc;

/// The engine behind the cluster's admission.
pub struct ClusterInvoker {
    pub engine: Arc<dyn Invoker>,
    pub cluster: Arc<Cluster>,
    /// The account's concurrency limit.
    pub limit: u32,
}

impl ClusterInvoker {
    async fn run(&self, req: InvokeRequest) -> Result<crate::invoker::InvokeResponse, ApiError> {
        let ask = Ask {
            function: &req.function.name,
            limit: self.limit,
            reserved: req.reserved_concurrency,
            total_reserved: req.total_reserved_concurrency,
        };
        let (db, node, releases) = (&self.cluster.db, &self.cluster.node_id, &self.cluster.releases);
        let slot = match concurrency::admit_releasing(db, node, ask, releases).await {
            Ok(Admitted::Yes(slot)) => slot,
            Ok(Admitted::Throttled(text)) => {
                return Err(ApiError::Throttled {
                    reason: super::wire::throttle_reason(&text),
                })
            }
            Err(e) => {
                tracing::warn!(error = %lamb_cluster::chain(&e), "cluster admission failed");
                // Retryable: nothing ran.
                return Err(LambdaError::service("the cluster's database cannot be reached; retry").into());
            }
        };
        let out = self.engine.invoke(req).await;
        // Counted out here at once, in the database off the answer's path:
        // with this node's next admission (so a caller that calls again
        // through it finds its place free, as on one box) or by the
        // flusher, whichever comes first.
        releases.defer(slot);
        out
    }
}

impl Invoker for ClusterInvoker {
    fn invoke(&self, req: InvokeRequest) -> InvokeFuture<'_> {
        Box::pin(self.run(req))
    }

    fn metrics(&self) -> Option<String> {
        let mut text = self.engine.metrics().unwrap_or_default();
        text.push_str(&super::forward::metrics(&self.cluster));
        Some(text)
    }

    fn forget(&self, function: &str, version: Option<u64>) {
        self.engine.forget(function, version);
    }

    fn provision(&self, function: &str, qualifier: &str, targets: Vec<ProvisionTarget>) {
        self.engine.provision(function, qualifier, targets);
    }

    fn provisioned_status(&self, function: &str, qualifier: &str) -> Option<ProvisionedStatus> {
        self.engine.provisioned_status(function, qualifier)
    }

    fn idle(&self) -> HashMap<String, u32> {
        self.engine.idle()
    }

    fn idle_of(&self, pool_key: &str) -> u32 {
        self.engine.idle_of(pool_key)
    }

    fn in_flight(&self) -> u32 {
        self.engine.in_flight()
    }
}
