//! Functions and their versions: `$LATEST` is version 0 of
//! `function_versions`; published versions are immutable rows numbered from
//! `functions.last_version`, which only rises.

use super::{
    bad_marker, enum_from, enum_text, from_json, new_revision, now, paginate, to_json, version_from, version_num,
};
use crate::digest::CodeDigest;
use crate::error::StoreError;
use crate::registry::sql::{params, OptionalExtension, Row, Transaction};
use crate::registry::{CodeInfo, CodeUpdate, FunctionRecord, NewFunction, Page, PageRequest, ResolvedLayer};
use lamb_types::timefmt::lambda_timestamp;
use lamb_types::{
    ArnContext, FunctionSpec, LambdaError, LastUpdateStatus, LayerVersionArn, PublishVersionRequest, Qualifier, State,
    Version,
};

const COLUMNS: &str = "function, version, spec, version_description, code_sha256, code_size, \
     code_unzipped, layers, revision_id, last_modified, state, last_update_status";

/// A row as SQLite hands it over, before its JSON and enums are parsed.
struct RawVersion {
    name: String,
    version: i64,
    spec: String,
    version_description: Option<String>,
    sha256: String,
    code_size: i64,
    code_unzipped: i64,
    layers: String,
    revision_id: String,
    last_modified: String,
    state: String,
    last_update_status: String,
}

impl RawVersion {
    fn from_row(r: &Row<'_>) -> crate::registry::sql::Result<Self> {
        Ok(Self {
            name: r.get(0)?,
            version: r.get(1)?,
            spec: r.get(2)?,
            version_description: r.get(3)?,
            sha256: r.get(4)?,
            code_size: r.get(5)?,
            code_unzipped: r.get(6)?,
            layers: r.get(7)?,
            revision_id: r.get(8)?,
            last_modified: r.get(9)?,
            state: r.get(10)?,
            last_update_status: r.get(11)?,
        })
    }

    fn into_record(self) -> Result<FunctionRecord, StoreError> {
        const T: &str = "function_versions";
        Ok(FunctionRecord {
            version: version_from(self.version),
            spec: from_json(T, &self.spec)?,
            version_description: self.version_description,
            code: CodeInfo {
                digest: CodeDigest::from_hex(&self.sha256).ok_or_else(|| StoreError::corrupt(T, "bad code_sha256"))?,
                code_size: self.code_size as u64,
                unzipped_size: self.code_unzipped as u64,
            },
            layers: from_json(T, &self.layers)?,
            revision_id: self.revision_id,
            last_modified: self.last_modified,
            state: enum_from(T, &self.state)?,
            last_update_status: enum_from(T, &self.last_update_status)?,
            name: self.name,
        })
    }
}

fn query_versions(
    tx: &Transaction<'_>,
    where_sql: &str,
    params: impl crate::registry::sql::Params,
) -> Result<Vec<FunctionRecord>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM function_versions {where_sql}");
    let mut stmt = tx.prepare(&sql)?;
    let raws = stmt
        .query_map(params, RawVersion::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawVersion::into_record).collect()
}

/// Lambda's not-found text: it names the unqualified ARN for `$LATEST` and
/// the qualified one for a version or alias (the recorded answers of
/// test_ops_on_nonexisting_fn and test_ops_on_nonexisting_version).
pub(super) fn function_not_found(ctx: &ArnContext, name: &str, q: Option<&Qualifier>) -> StoreError {
    let arn = match q {
        Some(q) if *q != Qualifier::latest() => ctx.qualified_function_arn(name, q),
        _ => ctx.function_arn(name),
    };
    LambdaError::not_found(format!("Function not found: {arn}")).into()
}

pub(super) fn find_version(
    tx: &Transaction<'_>,
    name: &str,
    version: Version,
) -> Result<Option<FunctionRecord>, StoreError> {
    Ok(query_versions(
        tx,
        "WHERE function = ?1 AND version = ?2",
        params![name, version_num(version)],
    )?
    .pop())
}

pub(super) fn get_version(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    version: Version,
) -> Result<FunctionRecord, StoreError> {
    find_version(tx, name, version)?.ok_or_else(|| {
        let q = (!version.is_latest()).then_some(Qualifier::Version(version));
        function_not_found(ctx, name, q.as_ref())
    })
}

pub(super) fn function_exists(tx: &Transaction<'_>, name: &str) -> Result<bool, StoreError> {
    Ok(tx
        .query_row("SELECT 1 FROM functions WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn require_function(tx: &Transaction<'_>, ctx: &ArnContext, name: &str) -> Result<(), StoreError> {
    if !function_exists(tx, name)? {
        return Err(function_not_found(ctx, name, None));
    }
    Ok(())
}

/// Looks the spec's layer ARNs up, in this transaction, so a function never
/// refers to a layer version that was deleted meanwhile.
fn resolve_layers(tx: &Transaction<'_>, arns: &[String]) -> Result<Vec<ResolvedLayer>, StoreError> {
    arns.iter()
        .map(|arn| {
            let parsed = LayerVersionArn::parse(arn)?;
            tx.query_row(
                "SELECT code_sha256, code_size, code_unzipped FROM layer_versions \
                 WHERE layer = ?1 AND version = ?2",
                params![parsed.name, parsed.version as i64],
                |r| {
                    Ok(ResolvedLayer {
                        arn: arn.clone(),
                        sha256: r.get(0)?,
                        code_size: r.get::<_, i64>(1)? as u64,
                        unzipped_size: r.get::<_, i64>(2)? as u64,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| LambdaError::invalid_parameter(format!("Layer version {arn} does not exist.")).into())
        })
        .collect()
}

fn insert_version(tx: &Transaction<'_>, rec: &FunctionRecord) -> Result<(), StoreError> {
    tx.execute(
        &format!(
            "INSERT INTO function_versions ({COLUMNS}) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ),
        params![
            rec.name,
            version_num(rec.version),
            to_json(&rec.spec)?,
            rec.version_description,
            rec.code.digest.hex(),
            rec.code.code_size as i64,
            rec.code.unzipped_size as i64,
            to_json(&rec.layers)?,
            rec.revision_id,
            rec.last_modified,
            enum_text(&rec.state)?,
            enum_text(&rec.last_update_status)?,
        ],
    )?;
    Ok(())
}

/// Rewrites `$LATEST` from `rec`, which carries a fresh `RevisionId`.
pub(super) fn replace_latest(tx: &Transaction<'_>, rec: &FunctionRecord) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM function_versions WHERE function = ?1 AND version = 0",
        [&rec.name],
    )?;
    insert_version(tx, rec)
}

fn check_revision(current: &str, given: Option<&str>) -> Result<(), StoreError> {
    match given {
        Some(r) if r != current => Err(LambdaError::revision_mismatch().into()),
        _ => Ok(()),
    }
}

pub(super) fn create(tx: &Transaction<'_>, ctx: &ArnContext, new: NewFunction) -> Result<FunctionRecord, StoreError> {
    if function_exists(tx, &new.name)? {
        return Err(LambdaError::conflict(format!("Function already exist: {}", new.name)).into());
    }
    let layers = resolve_layers(tx, &new.spec.layers)?;
    tx.execute("INSERT INTO functions (name) VALUES (?1)", [&new.name])?;
    let is_image = new.spec.image.is_some();
    let rec = FunctionRecord {
        name: new.name,
        version: Version::Latest,
        spec: new.spec,
        version_description: None,
        code: new.code,
        layers,
        revision_id: new_revision(),
        last_modified: lambda_timestamp(now()),
        // An image is pulled after the answer: Pending until then.
        state: if is_image { State::Pending } else { State::Active },
        last_update_status: LastUpdateStatus::Successful,
    };
    insert_version(tx, &rec)?;
    if new.publish {
        return publish(tx, ctx, &rec.name, &PublishVersionRequest::default());
    }
    Ok(rec)
}

pub(super) fn get(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    q: &Qualifier,
) -> Result<FunctionRecord, StoreError> {
    let version = match q {
        Qualifier::Version(v) => *v,
        Qualifier::Alias(alias) => tx
            .query_row(
                "SELECT version FROM aliases WHERE function = ?1 AND name = ?2",
                params![name, alias],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(version_from)
            .ok_or_else(|| function_not_found(ctx, name, Some(q)))?,
    };
    find_version(tx, name, version)?.ok_or_else(|| function_not_found(ctx, name, Some(q)))
}

pub(super) fn update_code(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    update: CodeUpdate,
) -> Result<FunctionRecord, StoreError> {
    let mut rec = get_version(tx, ctx, name, Version::Latest)?;
    check_revision(&rec.revision_id, update.revision_id.as_deref())?;
    rec.code = update.code;
    if let Some(archs) = update.architectures {
        rec.spec.architectures = archs;
    }
    rec.revision_id = new_revision();
    rec.last_modified = lambda_timestamp(now());
    replace_latest(tx, &rec)?;
    if update.publish {
        return publish(tx, ctx, name, &PublishVersionRequest::default());
    }
    Ok(rec)
}

pub(super) fn update_configuration(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    spec: FunctionSpec,
    revision_id: Option<&str>,
) -> Result<FunctionRecord, StoreError> {
    let mut rec = get_version(tx, ctx, name, Version::Latest)?;
    check_revision(&rec.revision_id, revision_id)?;
    rec.layers = resolve_layers(tx, &spec.layers)?;
    rec.spec = spec;
    rec.revision_id = new_revision();
    rec.last_modified = lambda_timestamp(now());
    replace_latest(tx, &rec)?;
    Ok(rec)
}

pub(super) fn publish(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    req: &PublishVersionRequest,
) -> Result<FunctionRecord, StoreError> {
    let latest = get_version(tx, ctx, name, Version::Latest)?;
    check_revision(&latest.revision_id, req.revision_id.as_deref())?;
    if let Some(sha) = &req.code_sha256 {
        let current = latest.code.digest.base64();
        if *sha != current {
            return Err(LambdaError::invalid_parameter(format!(
                "CodeSHA256 ({sha}) is different from current CodeSHA256 in $LATEST ({current}). \
                 Please try again with the CodeSHA256 in $LATEST."
            ))
            .into());
        }
    }
    let newest: Option<i64> = tx.query_row(
        "SELECT MAX(version) FROM function_versions WHERE function = ?1 AND version > 0",
        [name],
        |r| r.get(0),
    )?;
    if let Some(n) = newest {
        let prev = get_version(tx, ctx, name, version_from(n))?;
        if prev.spec == latest.spec && prev.code == latest.code && prev.layers == latest.layers {
            return Ok(prev);
        }
    }
    let number: i64 = tx.query_row(
        "UPDATE functions SET last_version = last_version + 1 WHERE name = ?1 \
         RETURNING last_version",
        [name],
        |r| r.get(0),
    )?;
    let rec = FunctionRecord {
        version: version_from(number),
        version_description: req.description.clone(),
        revision_id: new_revision(),
        last_modified: lambda_timestamp(now()),
        ..latest
    };
    insert_version(tx, &rec)?;
    Ok(rec)
}

pub(super) fn delete(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    version: Option<u64>,
) -> Result<(), StoreError> {
    require_function(tx, ctx, name)?;
    let Some(n) = version else {
        // Versions, aliases, configurations and queued events cascade.
        tx.execute("DELETE FROM functions WHERE name = ?1", [name])?;
        return Ok(());
    };
    // A version that is not there is deleted already: AWS answers 204
    // (test_delete_on_nonexisting_version of the recorded answers).
    if find_version(tx, name, Version::Published(n))?.is_none() {
        return Ok(());
    }
    let users = super::aliases::aliases_routing_to(tx, name, n)?;
    if let Some(alias) = users.first() {
        return Err(LambdaError::conflict(format!(
            "Unable to delete version because the following aliases reference it: [{alias}]"
        ))
        .into());
    }
    tx.execute(
        "DELETE FROM function_versions WHERE function = ?1 AND version = ?2",
        params![name, n as i64],
    )?;
    super::provisioned::delete(tx, name, &n.to_string())?;
    tx.execute(
        "DELETE FROM event_invoke_configs WHERE function = ?1 AND qualifier = ?2",
        params![name, n.to_string()],
    )?;
    super::documents::delete_qualifier_documents(tx, name, &n.to_string())
}

/// Markers: the function name, or `name:version` when listing every version.
pub(super) fn list(
    tx: &Transaction<'_>,
    all_versions: bool,
    page: PageRequest<'_>,
) -> Result<Page<FunctionRecord>, StoreError> {
    let limit = page.limit();
    let (from_name, from_version) = match page.marker {
        None => (String::new(), 0),
        Some(m) if all_versions => {
            let (n, v) = m.rsplit_once(':').ok_or_else(|| bad_marker(m))?;
            (n.to_owned(), v.parse::<i64>().map_err(|_| bad_marker(m))?)
        }
        Some(m) => (m.to_owned(), 0),
    };
    let filter = if all_versions { "" } else { "AND version = 0" };
    let rows = query_versions(
        tx,
        &format!(
            "WHERE (function, version) >= (?1, ?2) {filter} \
             ORDER BY function, version LIMIT ?3"
        ),
        params![from_name, from_version, (limit + 1) as i64],
    )?;
    Ok(paginate(rows, limit, |r| {
        if all_versions {
            format!("{}:{}", r.name, version_num(r.version))
        } else {
            r.name.clone()
        }
    }))
}

/// Marker: the version number (0 for `$LATEST`).
pub(super) fn list_versions(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    page: PageRequest<'_>,
) -> Result<Page<FunctionRecord>, StoreError> {
    require_function(tx, ctx, name)?;
    let limit = page.limit();
    let from: i64 = match page.marker {
        None => 0,
        Some(m) => m.parse().map_err(|_| bad_marker(m))?,
    };
    let rows = query_versions(
        tx,
        "WHERE function = ?1 AND version >= ?2 ORDER BY version LIMIT ?3",
        params![name, from, (limit + 1) as i64],
    )?;
    Ok(paginate(rows, limit, |r| version_num(r.version).to_string()))
}

pub(super) fn set_state(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    version: Version,
    state: State,
    status: LastUpdateStatus,
) -> Result<(), StoreError> {
    let changed = tx.execute(
        "UPDATE function_versions SET state = ?3, last_update_status = ?4 \
         WHERE function = ?1 AND version = ?2",
        params![name, version_num(version), enum_text(&state)?, enum_text(&status)?],
    )?;
    if changed == 0 {
        let q = Qualifier::Version(version);
        return Err(function_not_found(ctx, name, Some(&q)));
    }
    Ok(())
}
