//! The account's concurrency across the cluster, exactly (docs/cluster.md,
//! "Cluster-wide concurrency, exactly"): one call of `lamb_cluster_admit`
//! per admission, under one advisory lock for the whole cluster, and one
//! decrement per release.

use crate::db::{Db, DbError};
use crate::membership::DEAD_AFTER;
use std::sync::Arc;

/// What one admission asks for.
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    pub function: &'a str,
    /// The account's limit.
    pub limit: u32,
    /// The function's reserved concurrency, if it has one.
    pub reserved: Option<u32>,
    /// The reserved concurrency of every function together (the unreserved
    /// pool is the limit less this).
    pub total_reserved: u64,
}

/// The outcome of [`admit`].
#[derive(Debug)]
pub enum Admitted {
    /// Counted in: hold it for the invocation, then [`Slot::release`].
    Yes(Slot),
    /// Refused, with Lambda's throttle `Reason`.
    Throttled(String),
}

/// One invocation counted in the cluster.
#[derive(Debug)]
pub struct Slot {
    db: Arc<Db>,
    node_id: String,
    function: String,
    reserved: bool,
}

/// Counts one invocation of `ask.function` on `node_id` in, or says why not.
pub async fn admit(db: &Arc<Db>, node_id: &str, ask: Ask<'_>) -> Result<Admitted, DbError> {
    let reserved = ask.reserved.map(|r| i32::try_from(r).unwrap_or(i32::MAX));
    let total_reserved = i64::try_from(ask.total_reserved).unwrap_or(i64::MAX);
    let limit = i32::try_from(ask.limit).unwrap_or(i32::MAX);
    let row = db
        .with(|client| async move {
            client
                .query_one(
                    "SELECT lamb_cluster_admit($1, $2, $3, $4, $5, $6)",
                    &[
                        &node_id,
                        &ask.function,
                        &limit,
                        &reserved,
                        &total_reserved,
                        &DEAD_AFTER.as_secs_f64(),
                    ],
                )
                .await
                .map_err(DbError::query("admitting an invocation"))
        })
        .await?;
    Ok(match row.get::<_, Option<String>>(0) {
        Some(reason) => Admitted::Throttled(reason),
        None => Admitted::Yes(Slot {
            db: Arc::clone(db),
            node_id: node_id.to_owned(),
            function: ask.function.to_owned(),
            reserved: ask.reserved.is_some(),
        }),
    })
}

impl Slot {
    /// Counts the invocation out. A failure is logged, not returned: the
    /// count then stays until the node restarts or is seen dead, which errs
    /// on refusing, never on running too many.
    pub async fn release(self) {
        let (node_id, function, reserved) = (&self.node_id, &self.function, &self.reserved);
        let result = self
            .db
            .with(|client| async move {
                client
                    .execute(
                        "UPDATE lamb_cluster_usage SET in_flight = in_flight - 1 \
                         WHERE node_id = $1 AND function = $2 AND reserved = $3 AND in_flight > 0",
                        &[node_id, function, reserved],
                    )
                    .await
                    .map_err(DbError::query("releasing an invocation"))
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(function = %self.function, error = %crate::chain(&e), "cluster concurrency not released");
        }
    }
}
