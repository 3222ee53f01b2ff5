//! Cluster mode in the daemon (docs/cluster.md): this node's membership
//! (its heartbeat and the snapshot of the others), where a synchronous
//! invoke runs ([`lamb_cluster::routing`]), the forward to another node and
//! the listener that takes forwards (`forward`), the cluster-wide admission
//! around the engine (`admission`), the leases that keep schedules and
//! mappings on one node (`leased`), and provisioned concurrency split among
//! the nodes (`provisioned`).

pub mod admission;
pub mod forward;
pub mod heartbeat;
pub mod leased;
pub mod provisioned;
pub mod wire;

use crate::invoker::Invoker;
use lamb_cluster::membership::{self, NodeReport, NodeSnapshot, DEAD_AFTER};
use lamb_cluster::routing::{self, Local, Route};
use lamb_cluster::{auth::Secret, schema, Db, DbError};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

/// A pool key as the cluster stores it: `function:version:revision`
/// (PostgreSQL's JSON takes no NUL, the engine's separator; a function
/// name has no colon).
pub fn shown_key(pool_key: &str) -> String {
    pool_key.replace('\0', ":")
}

/// `lamb serve`'s cluster flags.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The PostgreSQL the nodes share.
    pub database_url: String,
    /// `--cluster-listen`: where other nodes forward to; also this node's id.
    pub listen: SocketAddr,
    /// `--cluster-secret`.
    pub secret: Secret,
    /// `--listen`, as other nodes and `lamb cluster status` show it.
    pub api_addr: SocketAddr,
    /// Invocations this node runs at once before others are preferred.
    pub capacity: u32,
    /// The id this node's async queue leases under, when the registry is in
    /// the cluster's database (`crate::data_dir::node_id`).
    pub registry_node: Option<String>,
}

/// This node in the cluster.
pub struct Cluster {
    pub config: ClusterConfig,
    pub node_id: String,
    pub db: Arc<Db>,
    /// The nodes as of the last heartbeat: what routing reads.
    snapshot: RwLock<Vec<NodeSnapshot>>,
    pub(crate) client: forward::Client,
    /// This node's share of provisioned concurrency and the cluster's sums.
    pub provisioned: provisioned::View,
    /// This node's invocations ended but not yet counted out in the
    /// database (`admission`).
    pub releases: Arc<lamb_cluster::concurrency::Releases>,
}

impl Cluster {
    /// Applies the cluster's schema and registers this node.
    pub async fn join(config: ClusterConfig, invoker: &dyn Invoker) -> Result<Arc<Cluster>, DbError> {
        let node_id = config.listen.to_string();
        let db = Arc::new(Db::new(&config.database_url));
        let client = db.client().await?;
        schema::apply(&client).await?;
        let cluster = Arc::new(Cluster {
            node_id,
            db,
            snapshot: RwLock::new(Vec::new()),
            client: forward::Client::new(config.secret.clone()),
            provisioned: provisioned::View::default(),
            releases: Arc::default(),
            config,
        });
        tokio::spawn(lamb_cluster::concurrency::keep_flushing(
            Arc::clone(&cluster.db),
            cluster.node_id.clone(),
            Arc::clone(&cluster.releases),
            membership::HEARTBEAT_EVERY,
        ));
        membership::register(&client, &cluster.report(invoker)).await?;
        tracing::info!(node = %cluster.node_id, "joined the cluster");
        Ok(cluster)
    }

    /// What this node says of itself at a heartbeat.
    pub fn report(&self, invoker: &dyn Invoker) -> NodeReport {
        NodeReport {
            node_id: self.node_id.clone(),
            api_addr: self.config.api_addr.to_string(),
            cluster_addr: self.config.listen.to_string(),
            capacity: self.config.capacity,
            in_flight: invoker.in_flight(),
            idle: invoker.idle().into_iter().map(|(k, n)| (shown_key(&k), n)).collect(),
            registry_node: self.config.registry_node.clone(),
        }
    }

    /// The nodes as last read.
    pub fn nodes(&self) -> Vec<NodeSnapshot> {
        self.snapshot.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_nodes(&self, nodes: Vec<NodeSnapshot>) {
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = nodes;
    }

    /// Where an invocation of the version `pool_key` runs.
    pub fn route(&self, pool_key: &str, idle_here: u32, forwarded: bool) -> Route {
        let key = shown_key(pool_key);
        let local = Local {
            node_id: &self.node_id,
            idle: idle_here,
            forwarded,
        };
        let nodes = self.snapshot.read().unwrap_or_else(|e| e.into_inner());
        routing::choose(local, &nodes, &key, DEAD_AFTER)
    }

    /// The cluster address of the node a client's call of `req` goes to,
    /// when it is not this one.
    pub fn destination(&self, invoker: &dyn Invoker, req: &crate::invoker::InvokeRequest) -> Option<String> {
        let key = crate::engine::pool_key(req);
        match self.route(&key, invoker.idle_of(&key), false) {
            Route::Forward { cluster_addr, .. } => Some(cluster_addr),
            Route::Local => None,
        }
    }

    /// A clean stop: this node's row and counts go at once.
    pub async fn leave(&self) {
        let id = &self.node_id;
        let left = self
            .db
            .with(|client| async move { membership::leave(&client, id).await })
            .await;
        if let Err(e) = left {
            tracing::warn!(error = %lamb_cluster::chain(&e), "could not leave the cluster");
        }
    }
}
