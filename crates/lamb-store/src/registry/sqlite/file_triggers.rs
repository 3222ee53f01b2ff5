//! File triggers (`lamb trigger add`): a served directory watched for new
//! files, each one an async event for a function.

use super::functions::require_function;
use crate::error::StoreError;
use crate::registry::sql::{params, Row, Transaction};
use crate::registry::{FileTriggerRecord, NewFileTrigger};
use lamb_types::{ArnContext, LambdaError};

pub(super) fn create(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    new: NewFileTrigger,
) -> Result<FileTriggerRecord, StoreError> {
    require_function(tx, ctx, &new.function)?;
    let id = uuid::Uuid::new_v4().to_string();
    let created_ms = (super::now().unix_timestamp_nanos() / 1_000_000) as i64;
    tx.execute(
        "INSERT INTO file_triggers (id, function, qualifier, filesystem, dir, prefix, suffix, created_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            id,
            new.function,
            new.qualifier,
            new.filesystem,
            new.dir,
            new.prefix,
            new.suffix,
            created_ms
        ],
    )?;
    Ok(FileTriggerRecord {
        id,
        function: new.function,
        qualifier: new.qualifier,
        filesystem: new.filesystem,
        dir: new.dir,
        prefix: new.prefix,
        suffix: new.suffix,
        created_ms,
    })
}

fn record(r: &Row<'_>) -> crate::registry::sql::Result<FileTriggerRecord> {
    Ok(FileTriggerRecord {
        id: r.get(0)?,
        function: r.get(1)?,
        qualifier: r.get(2)?,
        filesystem: r.get(3)?,
        dir: r.get(4)?,
        prefix: r.get(5)?,
        suffix: r.get(6)?,
        created_ms: r.get(7)?,
    })
}

pub(super) fn list(tx: &Transaction<'_>) -> Result<Vec<FileTriggerRecord>, StoreError> {
    let mut stmt = tx.prepare(
        "SELECT id, function, qualifier, filesystem, dir, prefix, suffix, created_ms \
         FROM file_triggers ORDER BY created_ms, id",
    )?;
    let rows = stmt.query_map(params![], record)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn delete(tx: &Transaction<'_>, id: &str) -> Result<(), StoreError> {
    if tx.execute("DELETE FROM file_triggers WHERE id = ?1", [id])? == 0 {
        return Err(LambdaError::not_found(format!("Trigger not found: {id}")).into());
    }
    Ok(())
}
