//! Provisioned concurrency configurations, one per function and qualifier,
//! removed with their function, version or alias.

use super::functions::require_function;
use crate::error::StoreError;
use crate::registry::sql::{params, OptionalExtension, Row, Transaction};
use crate::registry::ProvisionedConcurrencyRecord;
use lamb_types::ArnContext;

/// AWS's `LastModified` of these configurations: seconds, `+0000`.
fn last_modified_now() -> String {
    let now = super::now();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn record(r: &Row<'_>) -> crate::registry::sql::Result<ProvisionedConcurrencyRecord> {
    Ok(ProvisionedConcurrencyRecord {
        function: r.get(0)?,
        qualifier: r.get(1)?,
        requested: r.get(2)?,
        last_modified: r.get(3)?,
    })
}

const COLUMNS: &str = "function, qualifier, requested, last_modified";

pub(super) fn put(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    qualifier: &str,
    requested: u32,
) -> Result<ProvisionedConcurrencyRecord, StoreError> {
    require_function(tx, ctx, function)?;
    let rec = ProvisionedConcurrencyRecord {
        function: function.to_owned(),
        qualifier: qualifier.to_owned(),
        requested,
        last_modified: last_modified_now(),
    };
    tx.execute(
        "INSERT INTO provisioned_concurrency (function, qualifier, requested, last_modified) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (function, qualifier) DO UPDATE SET requested = ?3, last_modified = ?4",
        params![rec.function, rec.qualifier, rec.requested, rec.last_modified],
    )?;
    Ok(rec)
}

pub(super) fn get(
    tx: &Transaction<'_>,
    function: &str,
    qualifier: &str,
) -> Result<Option<ProvisionedConcurrencyRecord>, StoreError> {
    Ok(tx
        .query_row(
            &format!("SELECT {COLUMNS} FROM provisioned_concurrency WHERE function = ?1 AND qualifier = ?2"),
            params![function, qualifier],
            record,
        )
        .optional()?)
}

/// Deleting one that is not there succeeds, as on AWS.
pub(super) fn delete(tx: &Transaction<'_>, function: &str, qualifier: &str) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM provisioned_concurrency WHERE function = ?1 AND qualifier = ?2",
        params![function, qualifier],
    )?;
    Ok(())
}

/// Those of `function`, or of every function, by function and qualifier.
pub(super) fn list(
    tx: &Transaction<'_>,
    function: Option<&str>,
) -> Result<Vec<ProvisionedConcurrencyRecord>, StoreError> {
    let mut stmt = tx.prepare(&format!(
        "SELECT {COLUMNS} FROM provisioned_concurrency WHERE CAST(?1 AS TEXT) IS NULL OR function = ?1 \
         ORDER BY function, qualifier"
    ))?;
    let rows = stmt.query_map([function], record)?.collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Provisioned concurrency of the functions without reserved concurrency,
/// but `except`: what comes out of the account's unreserved pool.
pub(super) fn total_unreserved(tx: &Transaction<'_>, except: Option<&str>) -> Result<u64, StoreError> {
    let total: i64 = tx.query_row(
        "SELECT CAST(COALESCE(SUM(p.requested), 0) AS BIGINT) FROM provisioned_concurrency p \
         JOIN functions f ON f.name = p.function \
         WHERE f.reserved_concurrency IS NULL AND (CAST(?1 AS TEXT) IS NULL OR p.function != ?1)",
        [except],
        |r| r.get(0),
    )?;
    Ok(total as u64)
}
