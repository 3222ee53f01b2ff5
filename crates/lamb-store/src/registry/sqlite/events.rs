//! The async event queue's life cycle: enqueue, leases of running events,
//! their end (deleted, or kept as `failed`), and what `lamb events` lists.
//!
//! An event is `queued` until a worker claims it; a claimed event is
//! `running`, leased by its claimer (a daemon run id) until a time, which
//! `next_attempt_at_ms` holds, so an event whose worker died is due again
//! when the lease runs out, or at once when a new daemon releases the leases
//! of earlier runs. It leaves the table only when it finished for good.

use super::functions::require_function;
use crate::error::StoreError;
use crate::registry::sql::{params, OptionalExtension, Row, Transaction};
use crate::registry::{EventRecord, EventStatus, NewEvent, QueuedEvent};
use lamb_types::{ArnContext, LambdaError};

const COLUMNS: &str = "id, function, qualifier, payload, attempts, enqueued_at_ms, next_attempt_at_ms";

pub(super) fn enqueue(tx: &Transaction<'_>, ctx: &ArnContext, e: NewEvent) -> Result<QueuedEvent, StoreError> {
    require_function(tx, ctx, &e.function)?;
    tx.execute(
        "INSERT INTO async_events (id, function, qualifier, payload, attempts, \
           enqueued_at_ms, next_attempt_at_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        params![e.request_id, e.function, e.qualifier, e.payload, e.enqueued_at_ms],
    )?;
    if tx.is_postgres() {
        // Delivered at commit: every node's worker wakes (registry::postgres).
        tx.execute("NOTIFY lamb_events", params![])?;
    }
    Ok(QueuedEvent {
        id: e.request_id,
        function: e.function,
        qualifier: e.qualifier,
        payload: e.payload,
        attempts: 0,
        enqueued_at_ms: e.enqueued_at_ms,
        next_attempt_at_ms: e.enqueued_at_ms,
    })
}

fn queued_from_row(r: &Row<'_>) -> crate::registry::sql::Result<QueuedEvent> {
    Ok(QueuedEvent {
        id: r.get(0)?,
        function: r.get(1)?,
        qualifier: r.get(2)?,
        payload: r.get(3)?,
        attempts: r.get(4)?,
        enqueued_at_ms: r.get(5)?,
        next_attempt_at_ms: r.get(6)?,
    })
}

fn event_not_found(id: &str) -> StoreError {
    LambdaError::not_found(format!("Event not found: {id}")).into()
}

pub(super) fn claim(
    tx: &Transaction<'_>,
    owner: &str,
    now_ms: i64,
    lease_until_ms: i64,
    max: usize,
) -> Result<Vec<QueuedEvent>, StoreError> {
    // On PostgreSQL nodes claim side by side: each skips the rows another
    // is claiming (SQLite has one writer anyway).
    let lock = if tx.is_postgres() {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let mut stmt = tx.prepare(&format!(
        "SELECT {COLUMNS} FROM async_events WHERE status != 'failed' AND next_attempt_at_ms <= ?1 \
         ORDER BY next_attempt_at_ms, seq LIMIT ?2{lock}"
    ))?;
    let rows = stmt
        .query_map(params![now_ms, max as i64], queued_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    for e in &rows {
        tx.execute(
            "UPDATE async_events SET status = 'running', lease_owner = ?2, next_attempt_at_ms = ?3 WHERE id = ?1",
            params![e.id, owner, lease_until_ms],
        )?;
    }
    Ok(rows)
}

pub(super) fn release(tx: &Transaction<'_>, owner: &str, now_ms: i64) -> Result<u64, StoreError> {
    if tx.is_postgres() {
        return release_own_node(tx, owner, now_ms);
    }
    let n = tx.execute(
        "UPDATE async_events SET status = 'queued', lease_owner = NULL, next_attempt_at_ms = ?2 \
         WHERE status = 'running' AND lease_owner IS DISTINCT FROM ?1",
        params![owner, now_ms],
    )?;
    Ok(n as u64)
}

/// On a registry that nodes share, the other owners are other nodes, alive
/// or not: only the earlier runs of this owner's node (`<node>/<run>`) are
/// released; other nodes' leases expire.
fn release_own_node(tx: &Transaction<'_>, owner: &str, now_ms: i64) -> Result<u64, StoreError> {
    let Some((node, _)) = owner.rsplit_once('/') else {
        return Ok(0);
    };
    let pattern = format!(
        "{}/%",
        node.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
    );
    let n = tx.execute(
        "UPDATE async_events SET status = 'queued', lease_owner = NULL, next_attempt_at_ms = ?2 \
         WHERE status = 'running' AND lease_owner != ?1 AND lease_owner LIKE ?3 ESCAPE '\\'",
        params![owner, now_ms, pattern],
    )?;
    Ok(n as u64)
}

pub(super) fn next_due(tx: &Transaction<'_>) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .query_row(
            "SELECT MIN(next_attempt_at_ms) FROM async_events WHERE status != 'failed'",
            params![],
            |r| r.get::<_, Option<i64>>(0),
        )
        .optional()?
        .flatten())
}

pub(super) fn retry(
    tx: &Transaction<'_>,
    id: &str,
    attempts: u32,
    next_ms: i64,
    error: Option<&str>,
) -> Result<(), StoreError> {
    let n = tx.execute(
        "UPDATE async_events SET attempts = ?2, next_attempt_at_ms = ?3, status = 'queued', lease_owner = NULL, \
           last_error = COALESCE(?4, last_error) WHERE id = ?1",
        params![id, attempts, next_ms, error],
    )?;
    if n == 0 {
        return Err(event_not_found(id));
    }
    Ok(())
}

pub(super) fn finish(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    id: &str,
    attempts: u32,
    failure: Option<&str>,
    now_ms: i64,
    then: Option<NewEvent>,
) -> Result<(), StoreError> {
    if let Some(next) = then {
        enqueue(tx, ctx, next)?;
    }
    match failure {
        None => tx.execute("DELETE FROM async_events WHERE id = ?1", [id])?,
        Some(error) => tx.execute(
            "UPDATE async_events SET status = 'failed', lease_owner = NULL, last_error = ?2, \
               finished_at_ms = ?3, next_attempt_at_ms = ?3, attempts = ?4 WHERE id = ?1",
            params![id, error, now_ms, attempts],
        )?,
    };
    Ok(())
}

pub(super) fn purge_failed(tx: &Transaction<'_>, before_ms: i64) -> Result<u64, StoreError> {
    let n = tx.execute(
        "DELETE FROM async_events WHERE status = 'failed' AND finished_at_ms < ?1",
        [before_ms],
    )?;
    Ok(n as u64)
}

pub(super) fn list(tx: &Transaction<'_>, ctx: &ArnContext, function: &str) -> Result<Vec<EventRecord>, StoreError> {
    super::functions::require_function(tx, ctx, function)?;
    let mut stmt = tx.prepare(&format!(
        "SELECT {COLUMNS}, status, last_error, finished_at_ms FROM async_events WHERE function = ?1 ORDER BY seq"
    ))?;
    let rows = stmt
        .query_map([function], |r| {
            Ok((
                queued_from_row(r)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<i64>>(9)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(event, status, last_error, finished_at_ms)| {
            let status = match status.as_str() {
                "queued" => EventStatus::Queued,
                "running" => EventStatus::Running,
                "failed" => EventStatus::Failed,
                other => return Err(StoreError::corrupt("async_events", format!("bad status {other}"))),
            };
            Ok(EventRecord {
                event,
                status,
                last_error,
                finished_at_ms,
            })
        })
        .collect()
}
