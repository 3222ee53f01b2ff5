//! The accounting of stored code: which bundles versions and layers still
//! refer to (for the store's collection) and their total size.

use super::from_json;
use crate::code_store::Referenced;
use crate::digest::CodeDigest;
use crate::error::StoreError;
use crate::registry::sql::{params, Transaction};
use crate::registry::ResolvedLayer;

fn digest(table: &'static str, hex: &str) -> Result<CodeDigest, StoreError> {
    CodeDigest::from_hex(hex).ok_or_else(|| StoreError::corrupt(table, "bad code_sha256"))
}

pub(super) fn referenced(tx: &Transaction<'_>) -> Result<Referenced, StoreError> {
    let mut out = Referenced::default();
    let mut stmt = tx.prepare("SELECT code_sha256, layers, spec FROM function_versions")?;
    let rows = stmt
        .query_map(params![], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (sha, layers, spec) in rows {
        out.code.insert(digest("function_versions", &sha)?);
        let spec: lamb_types::FunctionSpec = from_json("function_versions", &spec)?;
        for l in spec
            .image
            .iter()
            .filter_map(|i| i.pulled.as_ref())
            .flat_map(|p| &p.layers)
        {
            out.image_layers.insert(digest("function_versions", l)?);
        }
        let layers: Vec<ResolvedLayer> = from_json("function_versions", &layers)?;
        for l in layers {
            out.layers.insert(digest("function_versions", &l.sha256)?);
        }
    }
    let mut stmt = tx.prepare("SELECT code_sha256 FROM layer_versions")?;
    let rows = stmt
        .query_map(params![], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    for sha in rows {
        out.layers.insert(digest("layer_versions", &sha)?);
    }
    Ok(out)
}

pub(super) fn total_code_size(tx: &Transaction<'_>) -> Result<u64, StoreError> {
    let total: i64 = tx.query_row(
        "SELECT CAST((SELECT COALESCE(SUM(code_size), 0) FROM function_versions) + \
                (SELECT COALESCE(SUM(code_size), 0) FROM layer_versions) AS BIGINT)",
        params![],
        |r| r.get(0),
    )?;
    Ok(total as u64)
}
