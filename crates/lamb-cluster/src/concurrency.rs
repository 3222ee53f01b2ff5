//! The account's concurrency across the cluster, exactly (docs/cluster.md,
//! "Cluster-wide concurrency, exactly"): one call of `lamb_cluster_admit`
//! per admission, under one advisory lock for the whole cluster, and one
//! decrement per release, written with the node's next admission or by its
//! flusher ([`Releases`]), off the answer's path.

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

/// Releases counted out on this node but not yet written (docs/cluster.md,
/// "Cluster-wide concurrency, exactly"): an invocation's end puts its slot
/// here at once and answers; the decrement reaches the database with this
/// node's next admission, in the same statement, or by [`keep_flushing`],
/// whichever is first. So a call's path holds one round trip to
/// PostgreSQL, not two. Until written, the cluster counts the invocation
/// as still running: that errs on refusing, never on running too many.
#[derive(Debug, Default)]
pub struct Releases {
    pending: std::sync::Mutex<std::collections::HashMap<(String, bool), i32>>,
    wake: tokio::sync::Notify,
}

/// Pending releases as the SQL function takes them: functions, whether
/// reserved, how many.
type Batch = (Vec<String>, Vec<bool>, Vec<i32>);

impl Releases {
    /// Counts `slot` out, to be written soon.
    pub fn defer(&self, slot: Slot) {
        self.add(vec![((slot.function, slot.reserved), 1)]);
        self.wake.notify_one();
    }

    fn add(&self, counts: Vec<((String, bool), i32)>) {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for (key, n) in counts {
            *pending.entry(key).or_default() += n;
        }
    }

    /// Everything pending, now this caller's to write.
    fn take(&self) -> Vec<((String, bool), i32)> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.drain().collect()
    }

    /// Whether any release waits to be written.
    pub fn is_empty(&self) -> bool {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
    }
}

fn batch(taken: &[((String, bool), i32)]) -> Batch {
    (
        taken.iter().map(|((f, _), _)| f.clone()).collect(),
        taken.iter().map(|((_, r), _)| *r).collect(),
        taken.iter().map(|(_, n)| *n).collect(),
    )
}

/// Writes the releases `taken` (and, when `ask` is given, admits one
/// invocation after them) in one statement. A statement that surely did
/// not apply (no connection, or the database refused it and rolled back)
/// gives its releases back to `releases`; one whose fate is unknown (a
/// timeout, a broken link) drops them, erring on refusing.
async fn release_then_admit(
    db: &Db,
    node_id: &str,
    ask: Option<Ask<'_>>,
    releases: &Releases,
) -> Result<Option<String>, DbError> {
    let taken = releases.take();
    let (functions, reserved, counts) = batch(&taken);
    let limit = ask.map(|a| i32::try_from(a.limit).unwrap_or(i32::MAX));
    let function = ask.map(|a| a.function);
    let reserved_of = ask
        .and_then(|a| a.reserved)
        .map(|r| i32::try_from(r).unwrap_or(i32::MAX));
    let total_reserved = ask.map(|a| i64::try_from(a.total_reserved).unwrap_or(i64::MAX));
    let result = db
        .with(|client| async move {
            client
                .query_one(
                    "SELECT lamb_cluster_release_admit($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &node_id,
                        &functions,
                        &reserved,
                        &counts,
                        &function,
                        &limit,
                        &reserved_of,
                        &total_reserved,
                        &DEAD_AFTER.as_secs_f64(),
                    ],
                )
                .await
                .map_err(DbError::query("admitting an invocation"))
        })
        .await;
    match result {
        Ok(row) => Ok(row.get::<_, Option<String>>(0)),
        Err(e) => {
            let not_applied = match &e {
                DbError::Connect(_) => true,
                DbError::Query { source, .. } => source.as_db_error().is_some(),
                DbError::Timeout => false,
            };
            if not_applied {
                releases.add(taken);
            } else if !taken.is_empty() {
                tracing::warn!(error = %crate::chain(&e), "cluster concurrency releases lost");
            }
            Err(e)
        }
    }
}

/// [`admit`], writing this node's pending releases first in the same
/// statement: one round trip for both.
pub async fn admit_releasing(
    db: &Arc<Db>,
    node_id: &str,
    ask: Ask<'_>,
    releases: &Releases,
) -> Result<Admitted, DbError> {
    Ok(match release_then_admit(db, node_id, Some(ask), releases).await? {
        Some(reason) => Admitted::Throttled(reason),
        None => Admitted::Yes(Slot {
            db: Arc::clone(db),
            node_id: node_id.to_owned(),
            function: ask.function.to_owned(),
            reserved: ask.reserved.is_some(),
        }),
    })
}

/// Writes this node's pending releases now.
pub async fn flush(db: &Db, node_id: &str, releases: &Releases) -> Result<(), DbError> {
    release_then_admit(db, node_id, None, releases).await.map(|_| ())
}

/// Writes releases as they come, off every call's path: each wake-up
/// writes all that are pending then (a batch under load), and a failed
/// write is tried again after `retry`. Runs until its task is dropped.
pub async fn keep_flushing(db: Arc<Db>, node_id: String, releases: Arc<Releases>, retry: std::time::Duration) {
    loop {
        releases.wake.notified().await;
        while !releases.is_empty() {
            match flush(&db, &node_id, &releases).await {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %crate::chain(&e), "cluster concurrency releases not written yet");
                    tokio::time::sleep(retry).await;
                }
            }
        }
    }
}
