//! A function's tags.

use super::functions::require_function;
use crate::error::StoreError;
use crate::registry::sql::{params, Transaction};
use lamb_types::ArnContext;

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
