//! Layers and their immutable versions. `layers.last_version` only rises, so
//! a deleted version's number is never given out again.

use super::{bad_marker, from_json, now, paginate, to_json};
use crate::digest::CodeDigest;
use crate::error::StoreError;
use crate::registry::sql::{params, Row, Transaction};
use crate::registry::{CodeInfo, LayerVersionRecord, NewLayerVersion, Page, PageRequest};
use lamb_types::timefmt::lambda_timestamp;
use lamb_types::{ArnContext, LambdaError};

const COLUMNS: &str = "layer, version, description, compatible_runtimes, \
     compatible_architectures, license_info, code_sha256, code_size, code_unzipped, created_date";

struct RawLayerVersion {
    name: String,
    version: i64,
    description: String,
    runtimes: String,
    archs: String,
    license_info: Option<String>,
    sha256: String,
    code_size: i64,
    code_unzipped: i64,
    created_date: String,
}

impl RawLayerVersion {
    fn from_row(r: &Row<'_>) -> crate::registry::sql::Result<Self> {
        Ok(Self {
            name: r.get(0)?,
            version: r.get(1)?,
            description: r.get(2)?,
            runtimes: r.get(3)?,
            archs: r.get(4)?,
            license_info: r.get(5)?,
            sha256: r.get(6)?,
            code_size: r.get(7)?,
            code_unzipped: r.get(8)?,
            created_date: r.get(9)?,
        })
    }

    fn into_record(self) -> Result<LayerVersionRecord, StoreError> {
        const T: &str = "layer_versions";
        Ok(LayerVersionRecord {
            name: self.name,
            version: self.version as u64,
            description: self.description,
            compatible_runtimes: from_json(T, &self.runtimes)?,
            compatible_architectures: from_json(T, &self.archs)?,
            license_info: self.license_info,
            code: CodeInfo {
                digest: CodeDigest::from_hex(&self.sha256).ok_or_else(|| StoreError::corrupt(T, "bad code_sha256"))?,
                code_size: self.code_size as u64,
                unzipped_size: self.code_unzipped as u64,
            },
            created_date: self.created_date,
        })
    }
}

fn query(
    tx: &Transaction<'_>,
    sql_tail: &str,
    params: impl crate::registry::sql::Params,
) -> Result<Vec<LayerVersionRecord>, StoreError> {
    let mut stmt = tx.prepare(&format!("SELECT {COLUMNS} FROM layer_versions lv {sql_tail}"))?;
    let raws = stmt
        .query_map(params, RawLayerVersion::from_row)?
        .collect::<Result<Vec<_>, _>>()?;
    raws.into_iter().map(RawLayerVersion::into_record).collect()
}

pub(super) fn publish(tx: &Transaction<'_>, new: NewLayerVersion) -> Result<LayerVersionRecord, StoreError> {
    tx.execute(
        "INSERT INTO layers (name, last_version) VALUES (?1, 0) ON CONFLICT (name) DO NOTHING",
        [&new.name],
    )?;
    let version: i64 = tx.query_row(
        "UPDATE layers SET last_version = last_version + 1 WHERE name = ?1 RETURNING last_version",
        [&new.name],
        |r| r.get(0),
    )?;
    let rec = LayerVersionRecord {
        name: new.name,
        version: version as u64,
        description: new.description,
        compatible_runtimes: new.compatible_runtimes,
        compatible_architectures: new.compatible_architectures,
        license_info: new.license_info,
        code: new.code,
        created_date: lambda_timestamp(now()),
    };
    tx.execute(
        &format!("INSERT INTO layer_versions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
        params![
            rec.name,
            version,
            rec.description,
            to_json(&rec.compatible_runtimes)?,
            to_json(&rec.compatible_architectures)?,
            rec.license_info,
            rec.code.digest.hex(),
            rec.code.code_size as i64,
            rec.code.unzipped_size as i64,
            rec.created_date,
        ],
    )?;
    Ok(rec)
}

pub(super) fn get(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    version: u64,
) -> Result<LayerVersionRecord, StoreError> {
    query(tx, "WHERE layer = ?1 AND version = ?2", params![name, version as i64])?
        .pop()
        .ok_or_else(|| {
            let arn = ctx.layer_version_arn(name, version);
            LambdaError::not_found(format!("Layer version {arn} does not exist.")).into()
        })
}

/// Newest first; marker: the version number to start from.
pub(super) fn list_versions(
    tx: &Transaction<'_>,
    name: &str,
    page: PageRequest<'_>,
) -> Result<Page<LayerVersionRecord>, StoreError> {
    let limit = page.limit();
    let from: i64 = match page.marker {
        None => i64::MAX,
        Some(m) => m.parse().map_err(|_| bad_marker(m))?,
    };
    let rows = query(
        tx,
        "WHERE layer = ?1 AND version <= ?2 ORDER BY version DESC LIMIT ?3",
        params![name, from, (limit + 1) as i64],
    )?;
    Ok(paginate(rows, limit, |r| r.version.to_string()))
}

/// The newest version of each layer; marker: the layer name.
pub(super) fn list_latest(tx: &Transaction<'_>, page: PageRequest<'_>) -> Result<Page<LayerVersionRecord>, StoreError> {
    let limit = page.limit();
    let rows = query(
        tx,
        "WHERE lv.layer >= ?1 AND lv.version = \
           (SELECT MAX(version) FROM layer_versions WHERE layer = lv.layer) \
         ORDER BY lv.layer LIMIT ?2",
        params![page.marker.unwrap_or_default(), (limit + 1) as i64],
    )?;
    Ok(paginate(rows, limit, |r| r.name.clone()))
}

pub(super) fn delete(tx: &Transaction<'_>, name: &str, version: u64) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM layer_versions WHERE layer = ?1 AND version = ?2",
        params![name, version as i64],
    )?;
    super::documents::delete_layer_version_documents(tx, &format!("{name}:{version}"))
}
