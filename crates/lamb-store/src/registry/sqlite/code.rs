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

/// Keeps a bundle's bytes for every node, once.
pub(super) fn share(
    tx: &Transaction<'_>,
    kind: crate::BundleKind,
    digest: &CodeDigest,
    bytes: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        // A reuse of the digest refreshes `shared_at`: the collection below
        // leaves it alone for the grace period, while its version is created.
        "INSERT INTO shared_bundles (kind, digest, bytes) VALUES (?1, ?2, ?3) \
         ON CONFLICT (kind, digest) DO UPDATE SET shared_at = now()",
        params![kind.dir_name(), digest.hex(), bytes],
    )?;
    Ok(())
}

/// Deletes the shared bundles that nothing refers to (no function version,
/// `$LATEST` included, no layer version) and that were shared or reused
/// more than `grace` ago; how many. Runs as a registry write: under the
/// registry's write lock, so no version that refers to a bundle commits
/// between the reference check and the delete. A bundle just shared and
/// not yet referred to (its version being created, a publish pending on
/// another node) is younger than `grace`, and its delete re-checks the age
/// on the row it deletes, so a concurrent reuse's refresh keeps it.
pub(super) fn collect_shared(tx: &Transaction<'_>, grace: std::time::Duration) -> Result<u64, StoreError> {
    let referenced = referenced(tx)?;
    let grace = grace.as_secs_f64();
    let mut stmt =
        tx.prepare("SELECT kind, digest FROM shared_bundles WHERE shared_at <= now() - make_interval(secs => ?1)")?;
    let old = stmt
        .query_map(params![grace], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut deleted = 0;
    for (kind, hex) in old {
        let digest = digest("shared_bundles", &hex)?;
        let keep = match kind.as_str() {
            k if k == crate::BundleKind::Function.dir_name() => &referenced.code,
            k if k == crate::BundleKind::Layer.dir_name() => &referenced.layers,
            k if k == crate::BundleKind::ImageLayer.dir_name() => &referenced.image_layers,
            // A kind this version does not know: not ours to judge.
            _ => continue,
        };
        if keep.contains(&digest) {
            continue;
        }
        deleted += tx.execute(
            "DELETE FROM shared_bundles WHERE kind = ?1 AND digest = ?2 \
             AND shared_at <= now() - make_interval(secs => ?3)",
            params![kind, hex, grace],
        )? as u64;
    }
    Ok(deleted)
}

pub(super) fn shared(
    tx: &Transaction<'_>,
    kind: crate::BundleKind,
    digest: &CodeDigest,
) -> Result<Option<Vec<u8>>, StoreError> {
    use crate::registry::sql::OptionalExtension;
    Ok(tx
        .query_row(
            "SELECT bytes FROM shared_bundles WHERE kind = ?1 AND digest = ?2",
            params![kind.dir_name(), digest.hex()],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()?)
}
