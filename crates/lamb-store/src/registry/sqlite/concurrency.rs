//! Reserved concurrency: a function's own, and all functions' together.

use super::functions::{function_not_found, require_function};
use crate::error::StoreError;
use crate::registry::sql::{params, OptionalExtension, Transaction};
use lamb_types::ArnContext;

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
        "SELECT CAST(COALESCE(SUM(reserved_concurrency), 0) AS BIGINT) FROM functions \
         WHERE CAST(?1 AS TEXT) IS NULL OR name != ?1",
        [except],
        |r| r.get(0),
    )?;
    Ok(total as u64)
}
