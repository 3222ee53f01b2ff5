//! Image functions' pulls, in the background: CreateFunction and
//! UpdateFunctionCode answer at once (`State: Pending`, `LastUpdateStatus:
//! InProgress`) and the pull records its outcome on `$LATEST` when done. A
//! daemon that starts finds the pulls an earlier one did not finish (a crash,
//! a `kill -9`) and runs them again: layers already stored are kept, a
//! half-downloaded one was removed with the store's leftovers.

use crate::state::{AppState, Shared};
use lamb_protocol::errors::Chain;
pub use lamb_store::image::RegistryConfig;
use lamb_types::{LambdaError, Qualifier, State};

/// Starts the pull of `name`'s `$LATEST` at `revision`.
pub fn start_pull(st: &AppState, name: String, revision: String) {
    let st = st.clone();
    tokio::task::spawn_blocking(move || pull(&st, &name, &revision));
}

/// Restarts the pulls no daemon finished.
pub fn resume(st: &AppState) {
    match st.registry.unfinished_image_pulls() {
        Ok(pulls) => {
            for (name, revision) in pulls {
                tracing::info!(function = %name, "resuming an unfinished image pull");
                start_pull(st, name, revision);
            }
        }
        Err(e) => tracing::warn!(error = %Chain(&e), "cannot list unfinished image pulls"),
    }
}

fn pull(s: &Shared, name: &str, revision: &str) {
    let Ok(rec) = s.registry.get_function(name, &Qualifier::latest()) else {
        return;
    };
    let Some(image) = rec.spec.image.as_ref().filter(|_| rec.revision_id == revision) else {
        return;
    };
    let arch = rec.spec.architectures.first().copied().unwrap_or_default();
    tracing::info!(function = %name, uri = %image.uri, "pulling image");
    let outcome = s.images.pull(&s.store, &image.uri, arch);
    let (result, pins) = match outcome {
        Ok(pulled) => (Ok(pulled.image), pulled.pins),
        Err(e) => {
            tracing::warn!(function = %name, uri = %image.uri, error = %Chain(&e), "image pull failed");
            (Err(e.failure(&image.uri)), Vec::new())
        }
    };
    match s.registry.finish_image_pull(name, revision, result) {
        Ok(true) => tracing::info!(function = %name, "image pull recorded"),
        Ok(false) => tracing::info!(function = %name, "image pull outdated by a later update"),
        Err(e) => tracing::warn!(function = %name, error = %Chain(&e), "cannot record the image pull"),
    }
    // The layers are referenced now (or not at all): unpin, then drop what
    // no version uses any more (an older image's layers).
    drop(pins);
    if let Err(e) = s.store.gc(|| s.registry.referenced_bundles()) {
        tracing::warn!(error = %Chain(&e), "code store garbage collection failed");
    }
}

/// Refuses to run a version whose image is not there: still being created,
/// or failed.
pub fn check_runnable(rec: &lamb_store::FunctionRecord) -> Result<(), LambdaError> {
    let Some(image) = &rec.spec.image else {
        return Ok(());
    };
    if matches!(rec.state, State::Pending | State::Failed) || image.pulled.is_none() {
        let state = serde_json::to_value(rec.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(LambdaError::conflict(format!(
            "The operation cannot be performed at this time. The function is currently in the following state: {state}"
        )));
    }
    Ok(())
}

/// Refuses PublishVersion, UpdateFunctionConfiguration and
/// UpdateFunctionCode of an image whose pull has not ended, as AWS refuses
/// them during an update: a version published then would keep no image, and
/// a new revision would orphan the pull's outcome.
pub fn check_not_pulling(rec: &lamb_store::FunctionRecord, ctx: &lamb_types::ArnContext) -> Result<(), LambdaError> {
    let pulling = rec.state == State::Pending || rec.last_update_status == lamb_types::LastUpdateStatus::InProgress;
    let missing = rec.spec.image.as_ref().is_some_and(|i| i.pulled.is_none());
    if rec.spec.image.is_some() && (pulling || missing) {
        return Err(LambdaError::conflict(format!(
            "The operation cannot be performed at this time. An update is in progress for resource: {}",
            ctx.function_arn(&rec.name)
        )));
    }
    Ok(())
}
