//! Event source mappings, kept whole as their JSON configuration, and the
//! checkpoints of stream mappings' shards.

use super::functions::require_function;
use super::{from_json, to_json};
use crate::error::StoreError;
use crate::registry::sql::{params, OptionalExtension, Transaction};
use lamb_types::esm::EventSourceMappingConfiguration;
use lamb_types::{ArnContext, LambdaError};
use std::collections::BTreeMap;

pub(super) fn not_found(uuid: &str) -> StoreError {
    LambdaError::not_found(format!(
        "The resource you requested does not exist. (Event source mapping {uuid})"
    ))
    .into()
}

pub(super) fn put(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    m: &EventSourceMappingConfiguration,
    create: bool,
) -> Result<(), StoreError> {
    require_function(tx, ctx, function)?;
    let json = to_json(m)?;
    if create {
        tx.execute(
            "INSERT INTO event_source_mappings (uuid, function, config) VALUES (?1, ?2, ?3)",
            params![m.uuid, function, json],
        )?;
    } else if tx.execute(
        "UPDATE event_source_mappings SET function = ?2, config = ?3 WHERE uuid = ?1",
        params![m.uuid, function, json],
    )? == 0
    {
        return Err(not_found(&m.uuid));
    }
    Ok(())
}

pub(super) fn get(tx: &Transaction<'_>, uuid: &str) -> Result<EventSourceMappingConfiguration, StoreError> {
    let json: String = tx
        .query_row(
            "SELECT config FROM event_source_mappings WHERE uuid = ?1",
            [uuid],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| not_found(uuid))?;
    from_json("event_source_mappings", &json)
}

pub(super) fn list(tx: &Transaction<'_>) -> Result<Vec<EventSourceMappingConfiguration>, StoreError> {
    let mut stmt = tx.prepare("SELECT config FROM event_source_mappings ORDER BY seq")?;
    let rows = stmt
        .query_map(params![], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    rows.iter().map(|j| from_json("event_source_mappings", j)).collect()
}

/// Sets a mapping's `LastProcessingResult` in one transaction, so that a
/// poller's write never undoes an API change made meanwhile.
pub(super) fn set_result(tx: &Transaction<'_>, uuid: &str, result: &str) -> Result<(), StoreError> {
    let mut m = get(tx, uuid)?;
    if m.last_processing_result != result {
        m.last_processing_result = result.to_owned();
        tx.execute(
            "UPDATE event_source_mappings SET config = ?2 WHERE uuid = ?1",
            params![uuid, to_json(&m)?],
        )?;
    }
    Ok(())
}

pub(super) fn put_checkpoint(tx: &Transaction<'_>, uuid: &str, shard: &str, sequence: &str) -> Result<(), StoreError> {
    get(tx, uuid)?;
    tx.execute(
        "INSERT INTO esm_checkpoints (uuid, shard, sequence) VALUES (?1, ?2, ?3) \
         ON CONFLICT (uuid, shard) DO UPDATE SET sequence = excluded.sequence",
        params![uuid, shard, sequence],
    )?;
    Ok(())
}

pub(super) fn checkpoints(tx: &Transaction<'_>, uuid: &str) -> Result<BTreeMap<String, String>, StoreError> {
    let mut stmt = tx.prepare("SELECT shard, sequence FROM esm_checkpoints WHERE uuid = ?1")?;
    let rows = stmt
        .query_map([uuid], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    Ok(rows)
}

pub(super) fn delete(tx: &Transaction<'_>, uuid: &str) -> Result<(), StoreError> {
    if tx.execute("DELETE FROM event_source_mappings WHERE uuid = ?1", [uuid])? == 0 {
        return Err(not_found(uuid));
    }
    Ok(())
}
