//! SnapStart's control-plane side: which versions the engine keeps
//! snapshots of (`crate::engine`'s `snapstart` module makes and restores
//! them), and how a version's configuration shows where its snapshot
//! stands. A published version with `SnapStart: {ApplyOn:
//! PublishedVersions}` is `Pending` until its first snapshot is made, then
//! `Active` (`Failed` when its init failed), as AWS shows it. Snapshots
//! live in the daemon's memory: a restarted daemon makes them again for
//! every such version (`restore`), the versions `Pending` meanwhile.

use crate::error::ApiError;
use crate::invocation::{prepare, Call, Target};
use crate::invoker::SnapshotState;
use crate::state::{AppState, Shared};
use lamb_store::FunctionRecord;
use lamb_types::{FunctionConfiguration, Qualifier, State, Version};

/// Whether `rec` is a published SnapStart version.
fn applies(rec: &FunctionRecord) -> bool {
    matches!(rec.version, Version::Published(_)) && rec.spec.snap_start.as_ref().is_some_and(|x| x.on_published())
}

/// Has the engine keep snapshots of `rec` when it is a published
/// SnapStart version (after PublishVersion, or a create or code update
/// with `Publish`). A version whose code cannot be prepared is logged and
/// left to its invocations, which say why.
pub fn keep(s: &Shared, rec: &FunctionRecord) {
    if !applies(rec) {
        return;
    }
    if let Err(e) = prepare_snapshots(s, rec) {
        tracing::warn!(function = %rec.name, version = %rec.version, error = ?e, "cannot make a SnapStart snapshot");
    }
}

fn prepare_snapshots(s: &Shared, rec: &FunctionRecord) -> Result<(), ApiError> {
    let target = Target::new(&s.ctx, rec.name.clone(), Qualifier::Version(rec.version));
    let request = prepare(s, &target, Call::new(String::new(), Vec::new()))?;
    s.invoker.snapstart(request);
    Ok(())
}

/// At start-up: snapshots again for every published SnapStart version.
pub async fn restore(state: &AppState) {
    let result = state
        .blocking(|s| {
            let mut kept = 0;
            let mut marker: Option<String> = None;
            loop {
                let page = s.registry.list_functions(
                    true,
                    lamb_store::registry::PageRequest {
                        marker: marker.as_deref(),
                        max_items: 50,
                    },
                )?;
                for rec in page.items.iter().filter(|r| applies(r)) {
                    keep(s, rec);
                    kept += 1;
                }
                match page.next_marker {
                    Some(m) => marker = Some(m),
                    None => return Ok(kept),
                }
            }
        })
        .await;
    match result {
        Ok(0) => {}
        Ok(n) => tracing::info!(versions = n, "SnapStart snapshots being made again"),
        Err(e) => tracing::warn!(error = ?e, "cannot list the SnapStart versions"),
    }
}

/// A SnapStart version's `State` as its snapshot stands (a configuration
/// with `OptimizationStatus: On`); others unchanged.
pub fn show_state(s: &Shared, c: &mut FunctionConfiguration) {
    if c.snap_start.optimization_status != "On" {
        return;
    }
    let Ok(version) = c.version.parse::<u64>() else { return };
    match s.invoker.snapstart_state(&c.function_name, version) {
        Some(SnapshotState::Pending) => {
            c.state = State::Pending;
            c.state_reason = Some("The function is being created.".into());
            c.state_reason_code = Some("Creating".into());
        }
        Some(SnapshotState::Failed(reason)) => {
            c.state = State::Failed;
            c.state_reason = Some(reason);
            c.state_reason_code = Some("FunctionError".into());
        }
        Some(SnapshotState::Ready) | None => {}
    }
}
