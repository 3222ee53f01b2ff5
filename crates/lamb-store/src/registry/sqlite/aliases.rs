//! Aliases: a name for a version plus at most one weighted extra version.
//! Every version an alias routes to must exist when the alias is written.

use super::functions::{find_version, function_exists, function_not_found, require_function};
use super::{bad_marker, from_json, new_revision, paginate, to_json, version_from, version_num};
use crate::error::StoreError;
use crate::registry::sql::{params, Row, Transaction};
use crate::registry::{AliasRecord, AliasUpdate, NewAlias, Page, PageRequest};
use lamb_types::{ArnContext, LambdaError, Qualifier, Version};
use std::collections::BTreeMap;

const COLUMNS: &str = "function, name, version, description, weights, revision_id";

fn from_row(r: &Row<'_>) -> crate::registry::sql::Result<(AliasRecord, String)> {
    Ok((
        AliasRecord {
            function: r.get(0)?,
            name: r.get(1)?,
            function_version: version_from(r.get(2)?),
            description: r.get(3)?,
            weights: BTreeMap::new(),
            revision_id: r.get(5)?,
        },
        r.get(4)?,
    ))
}

fn query(
    tx: &Transaction<'_>,
    where_sql: &str,
    params: impl crate::registry::sql::Params,
) -> Result<Vec<AliasRecord>, StoreError> {
    let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM aliases {where_sql}"))?;
    let rows = stmt.query_map(params, from_row)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(mut rec, weights)| {
            rec.weights = weights_from_json(&weights)?;
            Ok(rec)
        })
        .collect()
}

/// Weights are stored as `{"2":0.1}`, as the wire spells them.
fn weights_to_json(w: &BTreeMap<u64, f64>) -> Result<String, StoreError> {
    let m: BTreeMap<String, f64> = w.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    to_json(&m)
}

fn weights_from_json(s: &str) -> Result<BTreeMap<u64, f64>, StoreError> {
    let m: BTreeMap<String, f64> = from_json("aliases", s)?;
    m.into_iter()
        .map(|(k, v)| {
            k.parse()
                .map(|k| (k, v))
                .map_err(|_| StoreError::corrupt("aliases", "bad weight key"))
        })
        .collect()
}

fn alias_not_found(ctx: &ArnContext, function: &str, name: &str) -> StoreError {
    let arn = ctx.qualified_function_arn(function, &Qualifier::Alias(name.to_owned()));
    LambdaError::not_found(format!("Alias not found: {arn}")).into()
}

/// The versions an alias routes to must exist.
fn require_versions(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    primary: Version,
    weights: &BTreeMap<u64, f64>,
) -> Result<(), StoreError> {
    let extra = weights.keys().map(|n| Version::Published(*n));
    for v in std::iter::once(primary).chain(extra) {
        if find_version(tx, function, v)?.is_none() {
            return Err(function_not_found(ctx, function, Some(&Qualifier::Version(v))));
        }
    }
    Ok(())
}

fn find(tx: &Transaction<'_>, function: &str, name: &str) -> Result<Option<AliasRecord>, StoreError> {
    Ok(query(tx, "WHERE function = ?1 AND name = ?2", params![function, name])?.pop())
}

pub(super) fn get(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    name: &str,
) -> Result<AliasRecord, StoreError> {
    require_function(tx, ctx, function)?;
    find(tx, function, name)?.ok_or_else(|| alias_not_found(ctx, function, name))
}

/// GetAlias: as [`get`], in GetAlias's own wording for a missing alias
/// (UpdateAlias says "Alias not found"; both recorded).
pub(super) fn get_for_caller(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    name: &str,
) -> Result<AliasRecord, StoreError> {
    require_function(tx, ctx, function)?;
    find(tx, function, name)?.ok_or_else(|| {
        let arn = ctx.qualified_function_arn(function, &Qualifier::Alias(name.to_owned()));
        LambdaError::not_found(format!("Cannot find alias arn: {arn}")).into()
    })
}

fn write(tx: &Transaction<'_>, rec: &AliasRecord) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO aliases ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (function, name) DO UPDATE SET version = excluded.version, \
             description = excluded.description, weights = excluded.weights, revision_id = excluded.revision_id"
        ),
        params![
            rec.function,
            rec.name,
            version_num(rec.function_version),
            rec.description,
            weights_to_json(&rec.weights)?,
            rec.revision_id,
        ],
    )?;
    Ok(())
}

pub(super) fn create(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    alias: NewAlias,
) -> Result<AliasRecord, StoreError> {
    // A missing function is named with the version the alias would target
    // (test_notfound_and_invalid_routingconfigs of the recorded answers).
    if !function_exists(tx, function)? {
        return Err(function_not_found(
            ctx,
            function,
            Some(&Qualifier::Version(alias.function_version)),
        ));
    }
    if find(tx, function, &alias.name)?.is_some() {
        let arn = ctx.qualified_function_arn(function, &Qualifier::Alias(alias.name.clone()));
        return Err(LambdaError::conflict(format!("Alias already exists: {arn}")).into());
    }
    require_versions(tx, ctx, function, alias.function_version, &alias.weights)?;
    let rec = AliasRecord {
        function: function.to_owned(),
        name: alias.name,
        function_version: alias.function_version,
        description: alias.description,
        weights: alias.weights,
        revision_id: new_revision(),
    };
    write(tx, &rec)?;
    Ok(rec)
}

pub(super) fn update(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    name: &str,
    update: AliasUpdate,
) -> Result<AliasRecord, StoreError> {
    let mut rec = get(tx, ctx, function, name)?;
    if let Some(r) = &update.revision_id {
        if *r != rec.revision_id {
            return Err(LambdaError::revision_mismatch().into());
        }
    }
    if let Some(v) = update.function_version {
        rec.function_version = v;
    }
    if let Some(d) = update.description {
        rec.description = d;
    }
    if let Some(w) = update.weights {
        rec.weights = w;
    }
    if !rec.weights.is_empty() && rec.function_version.is_latest() {
        return Err(LambdaError::invalid_parameter(
            "$LATEST is not supported for an alias pointing to more than 1 version",
        )
        .into());
    }
    if rec
        .weights
        .contains_key(&version_num(rec.function_version).unsigned_abs())
    {
        return Err(LambdaError::invalid_parameter(
            "Alias' primary version and the additional version cannot be the same",
        )
        .into());
    }
    require_versions(tx, ctx, function, rec.function_version, &rec.weights)?;
    rec.revision_id = new_revision();
    write(tx, &rec)?;
    Ok(rec)
}

pub(super) fn delete(tx: &Transaction<'_>, ctx: &ArnContext, function: &str, name: &str) -> Result<(), StoreError> {
    require_function(tx, ctx, function)?;
    let n = tx.execute(
        "DELETE FROM aliases WHERE function = ?1 AND name = ?2",
        params![function, name],
    )?;
    // A missing alias is deleted already: AWS answers 204
    // (test_non_existent_alias_deletion of the recorded answers).
    if n == 0 {
        return Ok(());
    }
    super::provisioned::delete(tx, function, name)?;
    // Its policy goes too: a new alias of that name starts with none.
    super::documents::delete_qualifier_documents(tx, function, name)?;
    tx.execute(
        "DELETE FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2",
        params![function, name],
    )?;
    Ok(())
}

/// Marker: the alias name.
pub(super) fn list(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    version: Option<Version>,
    page: PageRequest<'_>,
) -> Result<Page<AliasRecord>, StoreError> {
    require_function(tx, ctx, function)?;
    let limit = page.limit();
    let from = page.marker.unwrap_or_default();
    if from.len() > 128 {
        return Err(bad_marker(from));
    }
    let (filter, v) = match version {
        Some(v) => ("AND version = ?3", version_num(v)),
        None => ("AND ?3 = ?3", 0),
    };
    let rows = query(
        tx,
        &format!("WHERE function = ?1 AND name >= ?2 {filter} ORDER BY name LIMIT ?4"),
        params![function, from, v, (limit + 1) as i64],
    )?;
    Ok(paginate(rows, limit, |r| r.name.clone()))
}

/// Names of the aliases that route any traffic to version `n`.
pub(super) fn aliases_routing_to(tx: &Transaction<'_>, function: &str, n: u64) -> Result<Vec<String>, StoreError> {
    Ok(query(tx, "WHERE function = ?1 ORDER BY name", [function])?
        .into_iter()
        .filter(|a| a.function_version == Version::Published(n) || a.weights.contains_key(&n))
        .map(|a| a.name)
        .collect())
}
