//! SnapStart on a box: for each published version with `SnapStart:
//! {ApplyOn: PublishedVersions}`, a few sandboxes initialised ahead with
//! `AWS_LAMBDA_INITIALIZATION_TYPE=snap-start` (the handler imported, the
//! init code and the before-snapshot hooks run, the runtime parked in
//! `GET /runtime/restore/next`) and frozen: the version's "snapshots". A
//! cold start of the version takes one, thaws it and restores it
//! (`ToInit::Restore`: the runtime's after-restore hooks run, `random` is
//! reseeded) instead of initialising, and its REPORT says `Restore
//! Duration`; before the first snapshot is made (the version `Pending`) an
//! invocation is refused with `SnapStartNotReadyException`, as Lambda's; the restore runs at init's CPU quota (one vCPU at least), as
//! the Init it stands for; a refill starts once the invocation has its answer, at the lowest CPU
//! weight, so that it does not compete with restores and invocations. With none
//! ready (a burst, or the first one still being made) the invocation makes
//! its own the same way and restores it at once, so the function sees the
//! same life cycle either way.
//!
//! Why a pool of frozen initialised sandboxes and not a forked zygote or a
//! checkpoint: see `docs/design.md` ("SnapStart").
//!
//! The snapshots count in `--memory-capacity` like any live sandbox, and
//! are never evicted for on-demand ones (as provisioned concurrency); a
//! restored sandbox is an ordinary warm sandbox of the version afterwards.

use super::cold_start::{Cold, InitFailure, Phase};
use super::live::{Event, LiveSandbox};
use super::platform::{Platform, Status};
use super::{run, Inner, State};
use crate::error::ApiError;
use crate::invoker::{InvokeRequest, SnapshotState};
use lamb_protocol::errors::Chain;
use lamb_protocol::init::{FromInit, ToInit};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Lambda's limit on a restore (the after-restore hooks included).
const RESTORE_LIMIT: Duration = Duration::from_secs(10);

/// The CPU weight (cgroup v2 `cpu.weight`; v1 shares follow) of a
/// snapshot's init made ahead: the lowest, so that under contention a
/// refill takes only CPU that restores, invocations and the daemon leave.
/// Its quota is still init's; a restore sets init's weight again.
pub(super) const SNAPSHOT_WEIGHT: u64 = 1;

/// `StateReason` of a version whose snapshot's init failed.
pub(super) const INIT_FAILED: &str =
    "The function's Init failed while its SnapStart snapshot was made; its log says why.";

/// One version's snapshots.
pub(super) struct Snapshots {
    /// What they are made from (the payload unused).
    request: InvokeRequest,
    /// Initialised, parked and frozen.
    idle: Vec<LiveSandbox>,
    /// Being initialised.
    starting: u32,
    state: SnapshotState,
}

/// Whether invocations of this version restore snapshots.
pub(super) fn applies(req: &InvokeRequest) -> bool {
    !req.executed_version.is_latest() && req.function.spec.snap_start.as_ref().is_some_and(|s| s.on_published())
}

impl State {
    /// Every idle snapshot, for the daemon's shutdown or a deleted version.
    pub(super) fn release_snapshots(&mut self, prefix: &str) -> Vec<LiveSandbox> {
        let keys: Vec<String> = self
            .snapshots
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        keys.iter()
            .filter_map(|k| self.snapshots.remove(k))
            .flat_map(|s| s.idle)
            .collect()
    }

    pub(super) fn snapshots_idle(&self) -> usize {
        self.snapshots.values().map(|s| s.idle.len()).sum()
    }

    pub(super) fn snapshots_frozen(&self) -> usize {
        self.snapshots
            .values()
            .flat_map(|s| &s.idle)
            .filter(|w| w.frozen)
            .count()
    }
}

impl Inner {
    /// Keeps snapshots of `request`'s version (a second call for the same
    /// version and revision changes nothing).
    pub(super) fn keep_snapshots(self: &Arc<Self>, request: InvokeRequest) {
        let key = run::pool_key(&request);
        {
            let mut st = self.lock();
            if st.closed || st.snapshots.contains_key(&key) {
                return;
            }
            // With no pool (`--snapstart-pool 0`) every cold start makes
            // its own: the version is ready at once.
            let state = if self.config.snapstart_pool == 0 {
                SnapshotState::Ready
            } else {
                SnapshotState::Pending
            };
            st.snapshots.insert(
                key.clone(),
                Snapshots {
                    request,
                    idle: Vec::new(),
                    starting: 0,
                    state,
                },
            );
        }
        self.refill_snapshots(&key);
    }

    /// The state of a version's snapshots, by function and version.
    pub(super) fn snapshot_state(&self, function: &str, version: u64) -> Option<SnapshotState> {
        let prefix = run::pool_prefix(function, Some(version));
        let st = self.lock();
        st.snapshots
            .iter()
            .find(|(k, _)| k.starts_with(&prefix))
            .map(|(_, s)| s.state.clone())
    }

    /// Starts what the version's pool lacks (`--snapstart-pool`); nothing
    /// once its first init failed. After an invocation, once its caller
    /// has the answer: a snapshot's init is a whole Init's CPU, which would
    /// otherwise compete with the restore and the handler on the same
    /// cores (and it runs at [`SNAPSHOT_WEIGHT`] besides).
    pub(super) fn refill_snapshots(self: &Arc<Self>, key: &str) {
        let want = self.config.snapstart_pool;
        let start = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            let Some(s) = st.snapshots.get_mut(key) else { return };
            if matches!(s.state, SnapshotState::Failed(_)) {
                return;
            }
            let missing = want.saturating_sub(s.idle.len() as u32 + s.starting);
            s.starting += missing;
            (0..missing).map(|_| s.request.clone()).collect::<Vec<_>>()
        };
        for req in start {
            tokio::spawn(Arc::clone(self).make_snapshot(key.to_owned(), req));
        }
    }

    /// Initialises one snapshot and freezes it, or records why it could
    /// not be made.
    async fn make_snapshot(self: Arc<Self>, key: String, mut req: InvokeRequest) {
        req.request_id = uuid::Uuid::new_v4().to_string();
        let made = match self
            .cold_start(&req, &key, None, Phase::SnapStart { ahead: true })
            .await
        {
            Ok(Cold::Ready(w)) => Ok(self.frozen(*w).await),
            Ok(Cold::Failed(w, failure)) => {
                // Logged and the sandbox retired as a provisioned one's.
                self.provision_failed(w, failure);
                Err(INIT_FAILED.to_owned())
            }
            Err(e) => {
                tracing::warn!(error = ?e, "no room for a SnapStart snapshot");
                Err(format!(
                    "lamb has not the memory for a snapshot of {} MB",
                    req.function.spec.memory_size
                ))
            }
        };
        let spare = {
            let mut st = self.lock();
            let closed = st.closed;
            match st.snapshots.get_mut(&key) {
                Some(s) => {
                    s.starting -= 1;
                    match made {
                        Ok(w) if !closed => {
                            s.state = SnapshotState::Ready;
                            s.idle.push(w);
                            None
                        }
                        Ok(w) => Some(w),
                        Err(reason) => {
                            if s.state == SnapshotState::Pending {
                                s.state = SnapshotState::Failed(reason);
                            }
                            None
                        }
                    }
                }
                // The version was deleted meanwhile.
                None => made.ok(),
            }
        };
        if let Some(w) = spare {
            self.retire(w, true);
        }
    }

    /// Freezes a parked snapshot: it costs no CPU until restored. One that
    /// cannot be frozen is kept running.
    async fn frozen(&self, mut w: LiveSandbox) -> LiveSandbox {
        let Some(mut sandbox) = w.sandbox.take() else { return w };
        let back = tokio::task::spawn_blocking(move || {
            let r = sandbox.freeze();
            (sandbox, r)
        })
        .await;
        if let Ok((sandbox, r)) = back {
            w.frozen = r.is_ok();
            w.sandbox = Some(sandbox);
        }
        w
    }

    /// A sandbox of a SnapStart version for an invocation: a snapshot
    /// restored, or, with none ready, one initialised now as a snapshot is
    /// and restored at once. The caller refills the pool after the answer
    /// (`run.rs`).
    pub(super) async fn restored(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        mut tail: Option<&mut Vec<u8>>,
    ) -> Result<Cold, ApiError> {
        let timeout = Duration::from_secs(u64::from(req.function.spec.timeout));
        let snapshot = loop {
            let taken = {
                let mut st = self.lock();
                let snapshots = st.snapshots.get_mut(key);
                // Before its first snapshot the version is `Pending`, and
                // Lambda refuses to invoke it.
                if snapshots
                    .as_ref()
                    .is_some_and(|s| s.state == SnapshotState::Pending && s.idle.is_empty())
                {
                    return Err(ApiError::Lambda(lamb_types::LambdaError::new(
                        lamb_types::ErrorKind::SnapStartNotReady,
                        "Lambda is initializing your function. You can invoke the function when the state of the \
                         function is Active.",
                    )));
                }
                snapshots.and_then(|s| s.idle.pop())
            };
            match taken {
                // Its session would expire mid-invocation (environment
                // variables cannot change under a running runtime): a
                // fresh one replaces it (after the answer, as any used).
                Some(stale) if !stale.credentials_fresh_for(timeout, time::OffsetDateTime::now_utc()) => {
                    self.retire(stale, true);
                }
                taken => break taken,
            }
        };
        let w = match snapshot {
            Some(w) => w,
            None => match self
                .cold_start(req, key, tail.as_deref_mut(), Phase::SnapStart { ahead: false })
                .await?
            {
                Cold::Ready(w) => *w,
                failed => return Ok(failed),
            },
        };
        Ok(self.restore(w, req, tail).await)
    }

    /// Thaws a snapshot, has init release its runtime from
    /// `restore/next`, and waits for the runtime's first `/next`; the time
    /// is the REPORT's `Restore Duration`.
    async fn restore(
        self: &Arc<Self>,
        mut w: LiveSandbox,
        req: &InvokeRequest,
        mut tail: Option<&mut Vec<u8>>,
    ) -> Cold {
        let start = Instant::now();
        let platform = Platform::of(&req.function.spec.logging_config);
        let version = req.executed_version.to_string();
        w.platform(
            &platform.restore_start(&req.function.name, &version),
            tail.as_deref_mut(),
        );
        let cold = self.restore_phase(w, req, start, tail.as_deref_mut()).await;
        let status = match &cold {
            Cold::Ready(_) => Status::Success,
            Cold::Failed(..) => Status::Error(None),
        };
        let line = platform.restore_report(start.elapsed(), status);
        match cold {
            Cold::Ready(mut w) => {
                w.platform(&line, tail);
                Cold::Ready(w)
            }
            Cold::Failed(Some(mut w), failure) => {
                w.platform(&line, tail);
                Cold::Failed(Some(w), failure)
            }
            failed => failed,
        }
    }

    /// The restore itself, for [`Self::restore`]: the thaw, `Restore`, and
    /// the wait for `Ready`.
    async fn restore_phase(
        self: &Arc<Self>,
        mut w: LiveSandbox,
        req: &InvokeRequest,
        start: Instant,
        mut tail: Option<&mut Vec<u8>>,
    ) -> Cold {
        if w.frozen {
            if let Some(mut sandbox) = w.sandbox.take() {
                let back = tokio::task::spawn_blocking(move || {
                    let r = sandbox.thaw();
                    (sandbox, r)
                })
                .await;
                match back {
                    Ok((sandbox, r)) => {
                        w.sandbox = Some(sandbox);
                        if let Err(e) = r {
                            tracing::warn!(error = %Chain(&e), "thawing a snapshot failed");
                        }
                    }
                    Err(_) => return self.restore_failed(w, req, start, "Runtime.RestoreError", None),
                }
            }
            w.frozen = false;
        }
        let thawed = start.elapsed();
        // The restore stands for the sandbox's Init: at init's CPU, the
        // invocation's quota again once the runtime is back in `/next`.
        w.set_init_quota();
        let quota_set = start.elapsed();
        if w.send(&ToInit::Restore).await.is_err() {
            return self.restore_failed(w, req, start, "Runtime.ExitError", None);
        }
        let deadline = start + RESTORE_LIMIT;
        loop {
            match w.next_event(deadline, tail.as_deref_mut()).await {
                Event::Msg(FromInit::Ready) => {
                    let ready = start.elapsed();
                    w.restore_duration = Some(ready);
                    w.set_invocation_quota();
                    // Where a restore's time goes (docs/benchmarks.md,
                    // "SnapStart"), each figure since the restore began.
                    tracing::debug!(
                        function = %req.function.name,
                        thawed_us = thawed.as_micros() as u64,
                        init_quota_us = quota_set.as_micros() as u64,
                        runtime_ready_us = ready.as_micros() as u64,
                        invocation_quota_us = start.elapsed().as_micros() as u64,
                        "snapstart: restored"
                    );
                    return Cold::Ready(Box::new(w));
                }
                Event::Msg(FromInit::InitError { error_type, body }) => {
                    return self.restore_failed(w, req, start, &error_type, Some(body));
                }
                Event::Msg(FromInit::Exited { .. }) | Event::Closed => {
                    return self.restore_failed(w, req, start, "Runtime.ExitError", None);
                }
                Event::Deadline => return self.restore_failed(w, req, start, "Runtime.RestoreTimeout", None),
                Event::Msg(_) => continue,
            }
        }
    }

    /// A restore that did not end ready, as the invocation's failed init.
    fn restore_failed(
        &self,
        w: LiveSandbox,
        req: &InvokeRequest,
        start: Instant,
        error_type: &str,
        body: Option<Vec<u8>>,
    ) -> Cold {
        let message = format!(
            "RequestId: {} Error: SnapStart restore failed: {error_type}",
            req.request_id
        );
        let body = body.unwrap_or_else(|| lamb_protocol::errors::caller_error(error_type, &message));
        Cold::Failed(Some(Box::new(w)), InitFailure::restore(body, start.elapsed()))
    }
}
