//! Named leases in `lamb_cluster_leases`: what makes schedules and event
//! source mappings run on exactly one node at a time and move when it dies
//! (docs/cluster.md, "Schedules, mappings, file triggers").
//!
//! Expiry is the database's clock; the holder's own deadline is its clock,
//! counted from before it asked and a margin short of the expiry, so a
//! holder that can no longer renew stops before anyone else may start.

use crate::db::{Db, DbError};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

/// How long a taken or renewed lease lasts.
pub const LEASE_TTL: Duration = Duration::from_secs(5);
/// How often the holder renews, and others try to take it.
pub const RENEW_EVERY: Duration = Duration::from_secs(1);
/// How long before the expiry the holder stops on its own.
pub const MARGIN: Duration = Duration::from_secs(1);

/// A lease this node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Grows by one each time the lease changes hands.
    pub epoch: i64,
    /// When this node must have stopped, by its own clock.
    pub deadline: Instant,
}

/// Takes the lease `name` if it is free, expired or already ours, for
/// `ttl`; `None` when another node holds it.
pub async fn acquire(
    client: &tokio_postgres::Client,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Result<Option<Held>, DbError> {
    let asked = Instant::now();
    let row = client
        .query_opt(
            "INSERT INTO lamb_cluster_leases AS l (name, holder, epoch, expires_at) \
             VALUES ($1, $2, 1, now() + make_interval(secs => $3)) \
             ON CONFLICT (name) DO UPDATE SET holder = $2, expires_at = EXCLUDED.expires_at, \
             epoch = CASE WHEN l.holder = $2 THEN l.epoch ELSE l.epoch + 1 END \
             WHERE l.holder = $2 OR l.expires_at < now() \
             RETURNING epoch",
            &[&name, &holder, &ttl.as_secs_f64()],
        )
        .await
        .map_err(DbError::query("taking a lease"))?;
    Ok(row.map(|row| Held {
        epoch: row.get(0),
        deadline: asked + ttl.saturating_sub(MARGIN),
    }))
}

/// Gives the lease up at once (a clean stop), so another node need not
/// wait for its expiry.
pub async fn release(client: &tokio_postgres::Client, name: &str, holder: &str) -> Result<(), DbError> {
    client
        .execute(
            "DELETE FROM lamb_cluster_leases WHERE name = $1 AND holder = $2",
            &[&name, &holder],
        )
        .await
        .map_err(DbError::query("releasing a lease"))?;
    Ok(())
}

/// The current holder of a lease that has not expired.
pub async fn holder(client: &tokio_postgres::Client, name: &str) -> Result<Option<(String, i64)>, DbError> {
    let row = client
        .query_opt(
            "SELECT holder, epoch FROM lamb_cluster_leases WHERE name = $1 AND expires_at >= now()",
            &[&name],
        )
        .await
        .map_err(DbError::query("reading a lease"))?;
    Ok(row.map(|r| (r.get(0), r.get(1))))
}

/// What runs while the lease is held: started when it is taken, stopped
/// (awaited) when it is lost or the keeper ends.
pub trait Guarded: Send {
    /// Starts the subsystem; `epoch` is the lease's.
    fn start(&mut self, epoch: i64);
    /// Stops it and returns once it has stopped.
    fn stop(&mut self) -> impl Future<Output = ()> + Send;
}

/// Keeps trying to hold the lease `name`, running `guarded` while it does,
/// until `stop` resolves; then stops it and releases the lease.
pub async fn keep<G: Guarded>(db: &Db, name: &str, holder: &str, mut guarded: G, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut held: Option<Held> = None;
    loop {
        let now = Instant::now();
        let attempt = db
            .with(|client| async move { acquire(&client, name, holder, LEASE_TTL).await })
            .await;
        held = next_state(held, attempt, now, name, &mut guarded).await;
        let wake = held.map_or(now + RENEW_EVERY, |h| (now + RENEW_EVERY).min(h.deadline));
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
    if held.is_some() {
        guarded.stop().await;
        let _ = db
            .with(|client| async move { release(&client, name, holder).await })
            .await;
    }
}

/// Applies one attempt's outcome: start on a new lease, stop on a lost
/// one or past the deadline of a lease that could not be renewed.
async fn next_state<G: Guarded>(
    held: Option<Held>,
    attempt: Result<Option<Held>, DbError>,
    now: Instant,
    name: &str,
    guarded: &mut G,
) -> Option<Held> {
    match (held, attempt) {
        (None, Ok(Some(new))) => {
            tracing::info!(lease = name, epoch = new.epoch, "lease taken");
            guarded.start(new.epoch);
            Some(new)
        }
        (Some(old), Ok(Some(new))) if old.epoch == new.epoch => Some(new),
        (Some(_), Ok(Some(new))) => {
            // Lost and retaken between two renewals: another node may have
            // run meanwhile, so start again under the new epoch.
            guarded.stop().await;
            guarded.start(new.epoch);
            Some(new)
        }
        (Some(_), Ok(None)) => {
            tracing::warn!(lease = name, "lease lost to another node");
            guarded.stop().await;
            None
        }
        (Some(old), Err(e)) if now >= old.deadline => {
            tracing::warn!(lease = name, error = %crate::chain(&e), "lease not renewed in time; stopping");
            guarded.stop().await;
            None
        }
        (held, Err(e)) => {
            tracing::debug!(lease = name, error = %crate::chain(&e), "lease not renewed");
            held
        }
        (None, Ok(None)) => None,
    }
}
