//! File triggers: `lamb trigger add NAME --dir PATH [--prefix P] [--suffix S]`
//! watches a directory of a served file system (`--filesystem NAME=PATH`)
//! and sends the function, asynchronously, one S3 `ObjectCreated:Put` event
//! per file finished writing or moved in. The event goes to the durable
//! async queue (`Registry::enqueue_event`); the queue's workers deliver it.
//!
//! The event's bucket is the file system's name and its key the file's path
//! under the file system's root; `Prefix` and `Suffix` filter on that key,
//! as S3's notification filters do. A function that writes beside its input
//! (a thumbnail) does not trigger itself as long as what it writes falls
//! outside the filters.
//!
//! The watcher runs as root over directories every sandbox writes to: it
//! opens only regular files beneath the served root through no symlink
//! (`beneath`), and hashes at most `event::ETAG_HASH_BYTES` of each.
//!
//! Every served file system is watched from start-up; the triggers are read
//! from the registry at each new file, so adding or removing one takes
//! effect at once and survives restarts.

mod api;
pub(crate) mod beneath;
pub mod event;
mod watch;

pub use api::{routes, TriggerRequest, TriggerResponse, TriggersResponse, TRIGGERS_PATH};

use crate::state::AppState;
use lamb_protocol::errors::Chain;
use lamb_store::{NewEvent, Registry};
use std::path::Path;
use std::sync::Arc;

/// Starts one watcher thread per served file system.
pub fn start(state: &AppState) {
    for (name, root) in state.filesystems.iter() {
        let registry = Arc::clone(&state.registry);
        let region = state.ctx.region.clone();
        let fs = name.to_owned();
        let base = root.to_path_buf();
        let on_file = Box::new(move |path: &Path| file_finished(&*registry, &region, &fs, &base, path));
        if let Err(e) = watch::spawn(name, root.to_path_buf(), on_file) {
            tracing::error!(filesystem = name, error = %e, "cannot watch file system; its triggers will not fire");
        }
    }
}

/// Enqueues one event per trigger that wants this file.
fn file_finished(registry: &dyn Registry, region: &str, fs: &str, root: &Path, path: &Path) {
    let Ok(rel) = path.strip_prefix(root) else { return };
    let key = rel.to_string_lossy();
    let triggers = match registry.list_file_triggers() {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "cannot read file triggers");
            return;
        }
    };
    let wanted: Vec<_> = triggers.iter().filter(|t| event::matches(t, fs, &key)).collect();
    if wanted.is_empty() {
        return;
    }
    let (etag, size) = match event::etag_and_size(root, rel) {
        Ok(v) => v,
        Err(e) => {
            // Gone again, not a regular file, or reached through a symlink
            // a function planted: nothing to send.
            tracing::debug!(path = %path.display(), error = %e, "new file not readable");
            return;
        }
    };
    let now = time::OffsetDateTime::now_utc();
    for t in wanted {
        let request_id = uuid::Uuid::new_v4().to_string();
        let payload = event::s3_put_event(&event::ObjectCreated {
            trigger: t,
            region,
            key: &key,
            size,
            etag: &etag,
            event_time: now,
            request_id: &request_id,
        });
        let queued = registry.enqueue_event(NewEvent {
            function: t.function.clone(),
            qualifier: t.qualifier.clone(),
            payload: payload.to_string().into_bytes(),
            request_id,
            enqueued_at_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
        });
        match queued {
            Ok(ev) => {
                tracing::info!(trigger = %t.id, function = %t.function, key = %key, event = %ev.id, "file event queued")
            }
            Err(e) => {
                tracing::error!(trigger = %t.id, function = %t.function, key = %key, error = %Chain(&e), "cannot queue file event")
            }
        }
    }
}
