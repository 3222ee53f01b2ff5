//! Reserved concurrency, async invoke configuration, the async event queue,
//! and the accounting of stored code.

use super::functions::{find_version, function_not_found, require_function};
use super::{bad_marker, from_json, now, paginate, to_json};
use crate::code_store::Referenced;
use crate::digest::CodeDigest;
use crate::error::StoreError;
use crate::registry::{EventInvokeConfigRecord, NewEvent, Page, PageRequest, QueuedEvent, ResolvedLayer};
use lamb_types::timefmt::epoch_seconds;
use lamb_types::{ArnContext, LambdaError, PutFunctionEventInvokeConfigRequest, Qualifier};
use rusqlite::{params, OptionalExtension, Row, Transaction};

pub(super) fn set_reserved(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    n: Option<u32>,
) -> Result<(), StoreError> {
    require_function(tx, ctx, function)?;
    tx.execute(
        "UPDATE functions SET reserved_concurrency = ?2 WHERE name = ?1",
        params![function, n],
    )?;
    Ok(())
}

pub(super) fn get_reserved(tx: &Transaction<'_>, ctx: &ArnContext, function: &str) -> Result<Option<u32>, StoreError> {
    tx.query_row(
        "SELECT reserved_concurrency FROM functions WHERE name = ?1",
        [function],
        |r| r.get::<_, Option<u32>>(0),
    )
    .optional()?
    .ok_or_else(|| function_not_found(ctx, function, None))
}

pub(super) fn total_reserved(tx: &Transaction<'_>, except: Option<&str>) -> Result<u64, StoreError> {
    let total: i64 = tx.query_row(
        "SELECT COALESCE(SUM(reserved_concurrency), 0) FROM functions \
         WHERE ?1 IS NULL OR name != ?1",
        [except],
        |r| r.get(0),
    )?;
    Ok(total as u64)
}

/// The qualifier must name `$LATEST`, an existing version or an alias.
fn require_qualifier(tx: &Transaction<'_>, ctx: &ArnContext, function: &str, q: &Qualifier) -> Result<(), StoreError> {
    require_function(tx, ctx, function)?;
    let exists = match q {
        Qualifier::Version(v) => find_version(tx, function, *v)?.is_some(),
        Qualifier::Alias(a) => tx
            .query_row(
                "SELECT 1 FROM aliases WHERE function = ?1 AND name = ?2",
                params![function, a],
                |_| Ok(()),
            )
            .optional()?
            .is_some(),
    };
    if !exists {
        return Err(function_not_found(ctx, function, Some(q)));
    }
    Ok(())
}

fn config_from_row(r: &Row<'_>) -> rusqlite::Result<(String, String, String, f64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn query_configs(
    tx: &Transaction<'_>,
    tail: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<EventInvokeConfigRecord>, StoreError> {
    let mut stmt = tx.prepare(&format!(
        "SELECT function, qualifier, config, last_modified FROM event_invoke_configs {tail}"
    ))?;
    let rows = stmt
        .query_map(params, config_from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(function, qualifier, config, last_modified)| {
            Ok(EventInvokeConfigRecord {
                function,
                qualifier,
                config: from_json("event_invoke_configs", &config)?,
                last_modified,
            })
        })
        .collect()
}

fn find_config(
    tx: &Transaction<'_>,
    function: &str,
    q: &Qualifier,
) -> Result<Option<EventInvokeConfigRecord>, StoreError> {
    Ok(query_configs(
        tx,
        "WHERE function = ?1 AND qualifier = ?2",
        params![function, q.to_string()],
    )?
    .pop())
}

pub(super) fn put_invoke_config(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    q: &Qualifier,
    config: &PutFunctionEventInvokeConfigRequest,
    merge: bool,
) -> Result<EventInvokeConfigRecord, StoreError> {
    require_qualifier(tx, ctx, function, q)?;
    let mut stored = config.clone();
    if merge {
        if let Some(old) = find_config(tx, function, q)? {
            stored = old.config;
            let c = config.clone();
            stored.maximum_retry_attempts = c.maximum_retry_attempts.or(stored.maximum_retry_attempts);
            stored.maximum_event_age_in_seconds =
                c.maximum_event_age_in_seconds.or(stored.maximum_event_age_in_seconds);
            stored.destination_config = c.destination_config.or(stored.destination_config);
        }
    }
    let rec = EventInvokeConfigRecord {
        function: function.to_owned(),
        qualifier: q.to_string(),
        config: stored,
        last_modified: epoch_seconds(now()),
    };
    tx.execute(
        "INSERT OR REPLACE INTO event_invoke_configs (function, qualifier, config, last_modified) \
         VALUES (?1, ?2, ?3, ?4)",
        params![rec.function, rec.qualifier, to_json(&rec.config)?, rec.last_modified],
    )?;
    Ok(rec)
}

fn config_not_found(ctx: &ArnContext, function: &str, q: &Qualifier) -> StoreError {
    let arn = ctx.qualified_function_arn(function, q);
    LambdaError::not_found(format!("The function {arn} doesn't have an EventInvokeConfig")).into()
}

pub(super) fn get_invoke_config(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    q: &Qualifier,
) -> Result<EventInvokeConfigRecord, StoreError> {
    require_function(tx, ctx, function)?;
    find_config(tx, function, q)?.ok_or_else(|| config_not_found(ctx, function, q))
}

pub(super) fn delete_invoke_config(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    q: &Qualifier,
) -> Result<(), StoreError> {
    require_function(tx, ctx, function)?;
    let n = tx.execute(
        "DELETE FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2",
        params![function, q.to_string()],
    )?;
    if n == 0 {
        return Err(config_not_found(ctx, function, q));
    }
    Ok(())
}

/// Marker: the qualifier.
pub(super) fn list_invoke_configs(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    page: PageRequest<'_>,
) -> Result<Page<EventInvokeConfigRecord>, StoreError> {
    require_function(tx, ctx, function)?;
    let limit = page.limit();
    let from = page.marker.unwrap_or_default();
    if from.len() > 128 {
        return Err(bad_marker(from));
    }
    let rows = query_configs(
        tx,
        "WHERE function = ?1 AND qualifier >= ?2 ORDER BY qualifier LIMIT ?3",
        params![function, from, (limit + 1) as i64],
    )?;
    Ok(paginate(rows, limit, |r| r.qualifier.clone()))
}

pub(super) fn enqueue(tx: &Transaction<'_>, ctx: &ArnContext, e: NewEvent) -> Result<QueuedEvent, StoreError> {
    require_function(tx, ctx, &e.function)?;
    tx.execute(
        "INSERT INTO async_events (id, function, qualifier, payload, attempts, \
           enqueued_at_ms, next_attempt_at_ms) VALUES (?1, ?2, ?3, ?4, 0, ?5, ?5)",
        params![e.request_id, e.function, e.qualifier, e.payload, e.enqueued_at_ms],
    )?;
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

fn digest(table: &'static str, hex: &str) -> Result<CodeDigest, StoreError> {
    CodeDigest::from_hex(hex).ok_or_else(|| StoreError::corrupt(table, "bad code_sha256"))
}

pub(super) fn referenced(tx: &Transaction<'_>) -> Result<Referenced, StoreError> {
    let mut out = Referenced::default();
    let mut stmt = tx.prepare("SELECT code_sha256, layers FROM function_versions")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    for (sha, layers) in rows {
        out.code.insert(digest("function_versions", &sha)?);
        let layers: Vec<ResolvedLayer> = from_json("function_versions", &layers)?;
        for l in layers {
            out.layers.insert(digest("function_versions", &l.sha256)?);
        }
    }
    let mut stmt = tx.prepare("SELECT code_sha256 FROM layer_versions")?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for sha in rows {
        out.layers.insert(digest("layer_versions", &sha)?);
    }
    Ok(out)
}

pub(super) fn total_code_size(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let total: i64 = tx.query_row(
        "SELECT (SELECT COALESCE(SUM(code_size), 0) FROM function_versions) + \
                (SELECT COALESCE(SUM(code_size), 0) FROM layer_versions)",
        [],
        |r| r.get(0),
    )?;
    Ok(total as u64)
}

pub(super) fn tag(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<(), StoreError> {
    require_function(tx, ctx, function)?;
    for (k, v) in tags {
        tx.execute(
            "INSERT INTO function_tags (function, key, value) VALUES (?1, ?2, ?3) \
             ON CONFLICT (function, key) DO UPDATE SET value = excluded.value",
            params![function, k, v],
        )?;
    }
    Ok(())
}

pub(super) fn untag(tx: &Transaction<'_>, ctx: &ArnContext, function: &str, keys: &[String]) -> Result<(), StoreError> {
    require_function(tx, ctx, function)?;
    for k in keys {
        tx.execute(
            "DELETE FROM function_tags WHERE function = ?1 AND key = ?2",
            params![function, k],
        )?;
    }
    Ok(())
}

pub(super) fn tags(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
    require_function(tx, ctx, function)?;
    let mut stmt = tx.prepare("SELECT key, value FROM function_tags WHERE function = ?1")?;
    let rows = stmt.query_map([function], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
