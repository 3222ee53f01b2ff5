//! Image functions' pulls in the registry: an update that names a new image
//! (`LastUpdateStatus: InProgress`), the pull's outcome recorded on `$LATEST`
//! when its revision is still current, and the pulls a restart resumes.

use super::functions::{get_version, replace_latest};
use super::{new_revision, now};
use crate::digest::CodeDigest;
use crate::error::StoreError;
use crate::registry::sql::{params, Transaction};
use crate::registry::FunctionRecord;
use lamb_types::timefmt::lambda_timestamp;
use lamb_types::{Architecture, ArnContext, FunctionImage, LastUpdateStatus, PullFailure, PulledImage, State, Version};

pub(super) fn update_image(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    image: FunctionImage,
    architectures: Option<Vec<Architecture>>,
    revision_id: Option<&str>,
) -> Result<FunctionRecord, StoreError> {
    let mut rec = get_version(tx, ctx, name, Version::Latest)?;
    if let Some(r) = revision_id {
        if r != rec.revision_id {
            return Err(lamb_types::LambdaError::revision_mismatch().into());
        }
    }
    if rec.spec.image.is_none() {
        return Err(lamb_types::LambdaError::invalid_parameter(
            "Please don't provide ImageUri when the intended function PackageType is Zip.",
        )
        .into());
    }
    let config = rec.spec.image.take().map(|i| i.config).unwrap_or_default();
    rec.spec.image = Some(FunctionImage { config, ..image });
    if let Some(a) = architectures {
        rec.spec.architectures = a;
    }
    rec.last_update_status = LastUpdateStatus::InProgress;
    rec.revision_id = new_revision();
    rec.last_modified = lambda_timestamp(now());
    replace_latest(tx, &rec)?;
    Ok(rec)
}

/// Records a pull's outcome on `$LATEST` if `revision_id` is still its
/// revision (a later update started its own pull); whether it was recorded.
pub(super) fn finish_pull(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    name: &str,
    revision_id: &str,
    outcome: Result<PulledImage, PullFailure>,
) -> Result<bool, StoreError> {
    let Ok(mut rec) = get_version(tx, ctx, name, Version::Latest) else {
        return Ok(false);
    };
    if rec.revision_id != revision_id {
        return Ok(false);
    }
    let Some(image) = rec.spec.image.as_mut() else {
        return Ok(false);
    };
    let creating = rec.state == State::Pending;
    match outcome {
        Ok(pulled) => {
            rec.code.digest = CodeDigest::from_hex(&pulled.manifest_sha256)
                .ok_or_else(|| StoreError::corrupt("function_versions", "bad manifest digest"))?;
            image.pulled = Some(pulled);
            image.failure = None;
            rec.state = State::Active;
            rec.last_update_status = LastUpdateStatus::Successful;
        }
        Err(failure) => {
            image.failure = Some(failure);
            if creating {
                rec.state = State::Failed;
            }
            rec.last_update_status = LastUpdateStatus::Failed;
        }
    }
    // A new revision: warm sandboxes of the image before are not reused.
    rec.revision_id = new_revision();
    replace_latest(tx, &rec)?;
    Ok(true)
}

/// `$LATEST` versions whose pull had not finished: (function, revision).
pub(super) fn unfinished(tx: &Transaction<'_>) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = tx.prepare(
        "SELECT function, revision_id FROM function_versions \
         WHERE version = 0 AND (state = 'Pending' OR last_update_status = 'InProgress')",
    )?;
    let rows = stmt
        .query_map(params![], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
