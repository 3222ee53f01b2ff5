//! Async invoke configuration (`PutFunctionEventInvokeConfig` and the
//! rest): retries, maximum event age and destinations per qualifier.

use super::functions::{find_version, function_exists};
use super::{bad_marker, from_json, now, paginate, to_json};
use crate::error::StoreError;
use crate::registry::sql::{params, OptionalExtension, Row, Transaction};
use crate::registry::{EventInvokeConfigRecord, Page, PageRequest};
use lamb_types::timefmt::epoch_seconds;
use lamb_types::{ArnContext, LambdaError, PutFunctionEventInvokeConfigRequest, Qualifier};

/// AWS's text for a function or qualifier these operations cannot find
/// (test_lambda_eventinvokeconfig_exceptions of the recorded answers).
fn function_missing() -> StoreError {
    LambdaError::not_found("The function doesn't exist.").into()
}

fn require_function(tx: &Transaction<'_>, function: &str) -> Result<(), StoreError> {
    if !function_exists(tx, function)? {
        return Err(function_missing());
    }
    Ok(())
}

/// The qualifier must name `$LATEST`, an existing version or an alias.
fn require_qualifier(tx: &Transaction<'_>, function: &str, q: &Qualifier) -> Result<(), StoreError> {
    require_function(tx, function)?;
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
        return Err(function_missing());
    }
    Ok(())
}

fn config_from_row(r: &Row<'_>) -> crate::registry::sql::Result<(String, String, String, f64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn query_configs(
    tx: &Transaction<'_>,
    tail: &str,
    params: impl crate::registry::sql::Params,
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
    require_qualifier(tx, function, q)?;
    let mut stored = config.clone();
    if merge {
        // Update changes a configuration; with none there is nothing to
        // change (AWS answers 404).
        let old = find_config(tx, function, q)?.ok_or_else(|| config_not_found(ctx, function, q))?;
        stored = old.config;
        let c = config.clone();
        stored.maximum_retry_attempts = c.maximum_retry_attempts.or(stored.maximum_retry_attempts);
        stored.maximum_event_age_in_seconds = c.maximum_event_age_in_seconds.or(stored.maximum_event_age_in_seconds);
        stored.destination_config = c.destination_config.or(stored.destination_config);
    }
    let rec = EventInvokeConfigRecord {
        function: function.to_owned(),
        qualifier: q.to_string(),
        config: stored,
        last_modified: epoch_seconds(now()),
    };
    tx.execute(
        "INSERT INTO event_invoke_configs (function, qualifier, config, last_modified) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (function, qualifier) \
         DO UPDATE SET config = excluded.config, last_modified = excluded.last_modified",
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
    // A missing function has no configuration either: AWS answers this,
    // not that the function is missing.
    find_config(tx, function, q)?.ok_or_else(|| config_not_found(ctx, function, q))
}

pub(super) fn delete_invoke_config(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    q: &Qualifier,
) -> Result<(), StoreError> {
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
    function: &str,
    page: PageRequest<'_>,
) -> Result<Page<EventInvokeConfigRecord>, StoreError> {
    require_function(tx, function)?;
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
