//! The nodes of the cluster: each writes its own row of
//! `lamb_cluster_nodes` (address, capacity, load, idle sandboxes per
//! function version) at start and at every heartbeat, and reads everyone's
//! rows back as the snapshot routing decides from. Ages are measured by the
//! database's clock, so the nodes' clocks need not agree.

use crate::db::DbError;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::Client;

/// How often a node writes its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(1);
/// A node whose heartbeat is this old is dead: not routed to, its
/// concurrency no longer counted.
pub const DEAD_AFTER: Duration = Duration::from_secs(3);

/// What a node says about itself at each heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeReport {
    pub node_id: String,
    /// Where clients reach its Lambda API.
    pub api_addr: String,
    /// Where other nodes forward to (`--cluster-listen`).
    pub cluster_addr: String,
    /// Invocations it may run at once.
    pub capacity: u32,
    /// Invocations running on it now.
    pub in_flight: u32,
    /// Idle sandboxes per pool key (function version and revision).
    pub idle: BTreeMap<String, u32>,
    /// The id its async queue leases events under (`<id>/<run>`), when the
    /// registry is in this database: a dead node's events are freed by it.
    pub registry_node: Option<String>,
}

/// One node as read back from the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSnapshot {
    pub node_id: String,
    pub api_addr: String,
    pub cluster_addr: String,
    pub capacity: u32,
    pub in_flight: u32,
    pub idle: BTreeMap<String, u32>,
    /// Since its last heartbeat, by the database's clock.
    pub heartbeat_age: Duration,
}

impl NodeSnapshot {
    /// Its idle sandboxes of one version.
    pub fn idle_of(&self, pool_key: &str) -> u32 {
        self.idle.get(pool_key).copied().unwrap_or(0)
    }

    /// Whether it is alive by `dead_after`.
    pub fn alive(&self, dead_after: Duration) -> bool {
        self.heartbeat_age < dead_after
    }
}

/// A node's start: its row written afresh, and whatever concurrency an
/// earlier run of the same node id left counted removed (those invocations
/// died with it).
pub async fn register(client: &Client, report: &NodeReport) -> Result<(), DbError> {
    heartbeat(client, report).await?;
    client
        .execute(
            "UPDATE lamb_cluster_nodes SET started_at = now() WHERE node_id = $1",
            &[&report.node_id],
        )
        .await
        .map_err(DbError::query("registering the node"))?;
    client
        .execute("DELETE FROM lamb_cluster_usage WHERE node_id = $1", &[&report.node_id])
        .await
        .map_err(DbError::query("clearing the node's earlier concurrency"))?;
    Ok(())
}

/// Writes the node's row with the time of now.
pub async fn heartbeat(client: &Client, report: &NodeReport) -> Result<(), DbError> {
    let idle = serde_json::to_value(&report.idle).expect("a map of counts is JSON");
    client
        .execute(
            "INSERT INTO lamb_cluster_nodes (node_id, api_addr, cluster_addr, capacity, in_flight, idle, \
             registry_node, heartbeat_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now()) \
             ON CONFLICT (node_id) DO UPDATE SET api_addr = $2, cluster_addr = $3, capacity = $4, \
             in_flight = $5, idle = $6, registry_node = $7, heartbeat_at = now()",
            &[
                &report.node_id,
                &report.api_addr,
                &report.cluster_addr,
                &to_i32(report.capacity),
                &to_i32(report.in_flight),
                &idle,
                &report.registry_node,
            ],
        )
        .await
        .map_err(DbError::query("writing the node's heartbeat"))?;
    Ok(())
}

/// Every node's row, the dead ones too (`lamb cluster status` shows them).
pub async fn nodes(client: &Client) -> Result<Vec<NodeSnapshot>, DbError> {
    let rows = client
        .query(
            "SELECT node_id, api_addr, cluster_addr, capacity, in_flight, idle, \
             greatest(extract(epoch FROM now() - heartbeat_at), 0)::float8 \
             FROM lamb_cluster_nodes ORDER BY node_id",
            &[],
        )
        .await
        .map_err(DbError::query("reading the nodes"))?;
    Ok(rows
        .iter()
        .map(|row| NodeSnapshot {
            node_id: row.get(0),
            api_addr: row.get(1),
            cluster_addr: row.get(2),
            capacity: from_i32(row.get(3)),
            in_flight: from_i32(row.get(4)),
            idle: serde_json::from_value(row.get(5)).unwrap_or_default(),
            heartbeat_age: Duration::from_secs_f64(row.get::<_, f64>(6)),
        })
        .collect())
}

/// A node's clean stop: its row goes, so nothing routes to it while its
/// heartbeat would still look fresh.
pub async fn leave(client: &Client, node_id: &str) -> Result<(), DbError> {
    // One statement, so it is atomic on a connection other tasks share.
    client
        .execute(
            "WITH usage AS (DELETE FROM lamb_cluster_usage WHERE node_id = $1) \
             DELETE FROM lamb_cluster_nodes WHERE node_id = $1",
            &[&node_id],
        )
        .await
        .map_err(DbError::query("leaving the cluster"))?;
    Ok(())
}

/// Removes the concurrency rows of dead nodes: they no longer count anyway
/// (admission sums live nodes only); this keeps the table small. And when
/// the registry's async queue is in this database, puts the events a dead
/// node had leased back in the queue at once, so another node runs them
/// (at least once) within seconds rather than at the lease's end.
pub async fn sweep_dead(client: &Client, dead_after: Duration) -> Result<u64, DbError> {
    let secs = dead_after.as_secs_f64();
    let removed = client
        .execute(
            "DELETE FROM lamb_cluster_usage u USING lamb_cluster_nodes n \
             WHERE u.node_id = n.node_id AND n.heartbeat_at <= now() - make_interval(secs => $1)",
            &[&secs],
        )
        .await
        .map_err(DbError::query("sweeping dead nodes' concurrency"))?;
    let queue = client
        .query_one("SELECT to_regclass('async_events') IS NOT NULL", &[])
        .await
        .map_err(DbError::query("looking for the async queue"))?;
    if queue.get::<_, bool>(0) {
        let freed = client
            .execute(
                "UPDATE async_events SET status = 'queued', lease_owner = NULL, \
                 next_attempt_at_ms = (extract(epoch FROM now()) * 1000)::bigint \
                 WHERE status = 'running' AND split_part(lease_owner, '/', 1) IN \
                 (SELECT registry_node FROM lamb_cluster_nodes \
                  WHERE registry_node IS NOT NULL AND heartbeat_at <= now() - make_interval(secs => $1))",
                &[&secs],
            )
            .await
            .map_err(DbError::query("freeing dead nodes' async events"))?;
        if freed > 0 {
            // The registry's wake-up channel: every node's async worker
            // looks for due events at once.
            client
                .batch_execute("NOTIFY lamb_events")
                .await
                .map_err(DbError::query("waking the async workers"))?;
            tracing::info!(events = freed, "async events of a dead node put back in the queue");
        }
    }
    Ok(removed)
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn from_i32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}
