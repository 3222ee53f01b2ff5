//! Provisioned concurrency: for each configuration (a function and a
//! version or alias qualifier), `want` sandboxes per version initialised
//! ahead (`Phase::Provisioned`) and kept apart from the warm pools, so the
//! janitor never freezes nor expires them and memory pressure never evicts
//! them. Invocations of the version take one first (admission); it comes
//! back here after the call. One that dies is replaced; one past `want`
//! (a lowered or deleted configuration, a re-targeted alias) is destroyed.
//! A failed init marks the configuration `FAILED` and makes no more until
//! it is put again.
//!
//! A sandbox belongs to its target while its `provisioned` holds the
//! target's id: idle in the target's list, or busy with an invocation
//! (counted in `busy`).

use super::cold_start::{Cold, Phase};
use super::live::LiveSandbox;
use super::{run, Inner, State};
use crate::invoker::{InvokeRequest, ProvisionTarget, ProvisionedState, ProvisionedStatus};
use std::sync::Arc;

/// One configuration.
pub(super) struct Provision {
    targets: Vec<Target>,
    /// `StatusReason` once a sandbox failed its init.
    failure: Option<String>,
}

/// One version's share of a configuration.
struct Target {
    id: u64,
    /// The warm pool's key of the version ([`run::pool_key`]).
    pool_key: String,
    want: u32,
    /// What the sandboxes are made from.
    request: InvokeRequest,
    /// Initialised, waiting, never frozen.
    idle: Vec<LiveSandbox>,
    /// Handed to invocations.
    busy: u32,
    /// Being initialised.
    starting: u32,
}

impl Target {
    fn count(&self) -> u32 {
        self.idle.len() as u32 + self.busy + self.starting
    }
}

fn config_key(function: &str, qualifier: &str) -> String {
    format!("{function}\0{qualifier}")
}

impl State {
    fn target_mut(&mut self, id: u64) -> Option<&mut Target> {
        self.provisioned
            .values_mut()
            .flat_map(|p| p.targets.iter_mut())
            .find(|t| t.id == id)
    }

    /// An idle provisioned sandbox of the pool, now busy.
    pub(super) fn take_provisioned(&mut self, pool_key: &str) -> Option<LiveSandbox> {
        let t = self
            .provisioned
            .values_mut()
            .flat_map(|p| p.targets.iter_mut())
            .find(|t| t.pool_key == pool_key && !t.idle.is_empty())?;
        let w = t.idle.pop()?;
        t.busy += 1;
        Some(w)
    }

    /// A busy provisioned sandbox is back from its invocation: no longer
    /// counted busy, nor its target's until put back. Its target's id.
    pub(super) fn provisioned_back(&mut self, w: &mut LiveSandbox) -> Option<u64> {
        let id = w.provisioned.take()?;
        if let Some(t) = self.target_mut(id) {
            t.busy -= 1;
        }
        Some(id)
    }

    /// Puts a sandbox back with its target if the target still wants it;
    /// else hands it back, to destroy.
    pub(super) fn keep_provisioned(&mut self, id: u64, mut w: LiveSandbox) -> Option<LiveSandbox> {
        if self.closed {
            return Some(w);
        }
        match self.target_mut(id) {
            Some(t) if t.count() < t.want => {
                w.provisioned = Some(id);
                t.idle.push(w);
                None
            }
            _ => Some(w),
        }
    }

    /// Provisioned sandboxes waiting for work.
    pub(super) fn provisioned_idle(&self) -> usize {
        self.provisioned
            .values()
            .flat_map(|p| &p.targets)
            .map(|t| t.idle.len())
            .sum()
    }

    /// Idle provisioned sandboxes by pool key: warm ones too, for routing
    /// (a cluster prefers the node holding one).
    pub(super) fn provisioned_idle_by_key(&self) -> impl Iterator<Item = (&str, usize)> {
        self.provisioned
            .values()
            .flat_map(|p| &p.targets)
            .filter(|t| !t.idle.is_empty())
            .map(|t| (t.pool_key.as_str(), t.idle.len()))
    }

    /// Provisioned sandboxes initialised, idle or busy (`Allocated`).
    pub(super) fn provisioned_allocated(&self) -> usize {
        self.provisioned
            .values()
            .flat_map(|p| &p.targets)
            .map(|t| t.idle.len() + t.busy as usize)
            .sum()
    }

    /// Drops the targets whose pool key starts with `prefix` (a deleted
    /// function or version); their idle sandboxes, to destroy.
    pub(super) fn release_provisioned(&mut self, prefix: &str) -> Vec<LiveSandbox> {
        let mut idle = Vec::new();
        for p in self.provisioned.values_mut() {
            let (gone, kept) = std::mem::take(&mut p.targets)
                .into_iter()
                .partition(|t| t.pool_key.starts_with(prefix));
            p.targets = kept;
            idle.extend(gone.into_iter().flat_map(released));
        }
        self.provisioned.retain(|_, p| !p.targets.is_empty());
        idle
    }

    /// Every idle provisioned sandbox, for the daemon's shutdown.
    pub(super) fn drain_provisioned(&mut self) -> Vec<LiveSandbox> {
        self.provisioned
            .drain()
            .flat_map(|(_, p)| p.targets)
            .flat_map(released)
            .collect()
    }
}

/// A dropped target's idle sandboxes, no longer its.
fn released(t: Target) -> impl Iterator<Item = LiveSandbox> {
    t.idle.into_iter().map(|mut w| {
        w.provisioned = None;
        w
    })
}

impl Inner {
    /// Sets a configuration's targets (none: releases it), keeping the
    /// sandboxes of versions it still targets, and starts what is missing.
    pub(super) fn provision(self: &Arc<Self>, function: &str, qualifier: &str, targets: Vec<ProvisionTarget>) {
        let key = config_key(function, qualifier);
        let (ids, dropped) = {
            let mut st = self.lock();
            let mut old = st.provisioned.remove(&key).map(|p| p.targets).unwrap_or_default();
            let mut kept = Vec::with_capacity(targets.len());
            for pt in targets.into_iter().filter(|t| t.want > 0) {
                let pool_key = run::pool_key(&pt.request);
                let target = match old.iter().position(|t| t.pool_key == pool_key) {
                    Some(i) => Target {
                        want: pt.want,
                        request: pt.request,
                        ..old.remove(i)
                    },
                    None => {
                        st.next_target += 1;
                        Target {
                            id: st.next_target,
                            pool_key,
                            want: pt.want,
                            request: pt.request,
                            idle: Vec::new(),
                            busy: 0,
                            starting: 0,
                        }
                    }
                };
                kept.push(target);
            }
            let ids: Vec<u64> = kept.iter().map(|t| t.id).collect();
            if !kept.is_empty() {
                // Put again: a failure is forgotten and tried anew.
                st.provisioned.insert(
                    key,
                    Provision {
                        targets: kept,
                        failure: None,
                    },
                );
            }
            let dropped: Vec<LiveSandbox> = old.into_iter().flat_map(released).collect();
            (ids, dropped)
        };
        for w in dropped {
            self.retire(w, true);
        }
        for id in ids {
            self.fill(id);
        }
    }

    /// Starts the sandboxes a target lacks and destroys idle ones past its
    /// `want`; nothing once its configuration failed.
    pub(super) fn fill(self: &Arc<Self>, id: u64) {
        let (start, surplus) = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            let Some(p) = st
                .provisioned
                .values_mut()
                .find(|p| p.targets.iter().any(|t| t.id == id))
            else {
                return;
            };
            if p.failure.is_some() {
                return;
            }
            let Some(t) = p.targets.iter_mut().find(|t| t.id == id) else {
                return;
            };
            let mut surplus = Vec::new();
            while t.count() > t.want && !t.idle.is_empty() {
                let mut w = t.idle.remove(0);
                w.provisioned = None;
                surplus.push(w);
            }
            let missing = t.want.saturating_sub(t.count());
            t.starting += missing;
            let start: Vec<InvokeRequest> = (0..missing).map(|_| t.request.clone()).collect();
            (start, surplus)
        };
        for w in surplus {
            self.retire(w, true);
        }
        for req in start {
            tokio::spawn(Arc::clone(self).start_provisioned(id, req));
        }
    }

    /// Initialises one sandbox for the target and hands it over, or
    /// records why it could not be.
    async fn start_provisioned(self: Arc<Self>, id: u64, mut req: InvokeRequest) {
        req.request_id = uuid::Uuid::new_v4().to_string();
        let key = run::pool_key(&req);
        let made = match self.cold_start(&req, &key, None, Phase::Provisioned).await {
            Ok(Cold::Ready(w)) => Ok(*w),
            Ok(Cold::Failed(w, failure)) => Err(self.provision_failed(w, failure)),
            Err(e) => {
                tracing::warn!(error = ?e, "no room for a provisioned concurrency sandbox");
                Err(format!(
                    "lamb has not the memory for another sandbox of {} MB",
                    req.function.spec.memory_size
                ))
            }
        };
        let mut st = self.lock();
        if let Some(t) = st.target_mut(id) {
            t.starting -= 1;
        }
        let spare = match made {
            Ok(w) => st.keep_provisioned(id, w),
            Err(reason) => {
                if let Some(p) = st
                    .provisioned
                    .values_mut()
                    .find(|p| p.targets.iter().any(|t| t.id == id))
                {
                    p.failure = Some(reason);
                }
                None
            }
        };
        drop(st);
        if let Some(w) = spare {
            self.retire(w, true);
        }
    }

    /// Where a configuration stands: READY once every sandbox it wants is
    /// initialised.
    pub(super) fn provisioned_status(&self, function: &str, qualifier: &str) -> Option<ProvisionedStatus> {
        let st = self.lock();
        let p = st.provisioned.get(&config_key(function, qualifier))?;
        let want: u32 = p.targets.iter().map(|t| t.want).sum();
        let allocated: u32 = p.targets.iter().map(|t| t.idle.len() as u32 + t.busy).sum();
        let state = match &p.failure {
            Some(_) => ProvisionedState::Failed,
            None if allocated >= want => ProvisionedState::Ready,
            None => ProvisionedState::InProgress,
        };
        Some(ProvisionedStatus {
            allocated: allocated.min(want),
            state,
            reason: p.failure.clone(),
        })
    }
}
