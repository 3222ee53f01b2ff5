//! The warm pool's life cycle: taking an idle sandbox (thawed), making
//! room for a new one (evicting the least recently used idle ones), putting
//! one back, freezing idle ones after the grace, expiring them after the
//! TTL, and destroying them.

use super::live::LiveSandbox;
use super::{Idle, Inner};
use crate::error::ApiError;
use lamb_protocol::errors::Chain;
use lamb_protocol::init::ShutdownReason;
use lamb_sandbox::Exit;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// What init gets for Lambda's shutdown phase (2 s with external
/// extensions, 300 ms for a runtime alone: init exits as soon as all are
/// done), plus the way back.
pub(super) const SHUTDOWN_WAIT: Duration = Duration::from_millis(2100);

impl Inner {
    /// The most recently used idle sandbox of the pool, thawed, whose
    /// credentials outlive an invocation of `timeout` (one whose do not is
    /// retired). A sandbox of the pool that the janitor is freezing is
    /// waited for: a thaw is cheaper than a cold start.
    pub(super) async fn take_idle(self: &Arc<Self>, key: &str, timeout: Duration) -> Option<LiveSandbox> {
        loop {
            let back = self.back_from_freezing.notified();
            tokio::pin!(back);
            back.as_mut().enable();
            let idle = {
                let mut st = self.lock();
                match st.pools.get_mut(key).and_then(Vec::pop) {
                    Some(idle) => Some(idle),
                    None if st.freezing.contains_key(key) => None,
                    None => return None,
                }
            };
            let Some(idle) = idle else {
                back.await;
                continue;
            };
            let mut w = idle.live;
            if !w.credentials_fresh_for(timeout, time::OffsetDateTime::now_utc()) {
                tracing::info!(function = %w.key, "recycling a sandbox whose credentials are about to expire");
                self.retire(w, true);
                continue;
            }
            if !w.frozen {
                return Some(w);
            }
            let mut sandbox = w.sandbox.take()?;
            let thawed = tokio::task::spawn_blocking(move || {
                let r = sandbox.thaw();
                (sandbox, r)
            })
            .await;
            match thawed {
                Ok((sandbox, Ok(()))) => {
                    w.sandbox = Some(sandbox);
                    w.frozen = false;
                    return Some(w);
                }
                Ok((sandbox, Err(e))) => {
                    tracing::warn!(error = %Chain(&e), "thawing a sandbox failed; replacing it");
                    w.sandbox = Some(sandbox);
                    self.retire(w, false);
                }
                Err(_) => self.retire(w, false),
            }
        }
    }

    /// Room for `memory_mb` more, evicting idle sandboxes least recently
    /// used first, then waiting a while; the uid slot of the new sandbox.
    pub(super) async fn reserve(self: &Arc<Self>, memory_mb: u32, function: &str) -> Result<u32, ApiError> {
        let need = u64::from(memory_mb);
        let capacity = self.config.memory_capacity_mb;
        let give_up = Instant::now() + self.config.capacity_wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let mut evicted = Vec::new();
            let waiting_on_eviction = {
                let mut st = self.lock();
                while st.memory_kept_mb() + need > capacity {
                    match st.evict_lru() {
                        Some(w) => evicted.push(w),
                        None => break,
                    }
                }
                if st.memory_mb + need <= capacity {
                    st.memory_mb += need;
                    st.live += 1;
                    let slot = st.slots.alloc(function);
                    drop(st);
                    for w in evicted {
                        self.retire(w, false);
                    }
                    return Ok(slot);
                }
                !st.evicting.is_empty()
            };
            for w in evicted {
                self.retire(w, false);
            }
            if Instant::now() >= give_up && !waiting_on_eviction {
                self.metrics.throttle(function);
                return Err(ApiError::Throttled {
                    reason: "ConcurrentInvocationLimitExceeded",
                });
            }
            let _ = tokio::time::timeout_at(give_up.max(Instant::now() + Duration::from_millis(50)), freed).await;
        }
    }

    pub(super) fn release(&self, memory_mb: u32, slot: u32) {
        {
            let mut st = self.lock();
            st.live -= 1;
            st.memory_mb -= u64::from(memory_mb);
            st.slots.free(slot);
            st.evicting.remove(&slot);
        }
        self.freed.notify_waiters();
    }

    pub(super) fn put_idle(self: &Arc<Self>, mut w: LiveSandbox) {
        let mut st = self.lock();
        if let Some(id) = st.provisioned_back(&mut w) {
            // Back to its target; one it no longer wants goes.
            if let Some(w) = st.keep_provisioned(id, w) {
                drop(st);
                self.retire(w, true);
            }
            return;
        }
        if st.closed {
            drop(st);
            self.retire(w, true);
            return;
        }
        st.pools.entry(w.key.clone()).or_default().push(Idle {
            live: w,
            since: Instant::now(),
        });
    }

    /// Destroys the sandbox in the background; a provisioned one that an
    /// invocation ended (a crash, a timeout) is replaced.
    pub(super) fn retire(self: &Arc<Self>, mut w: LiveSandbox, graceful: bool) {
        let replace = self.lock().provisioned_back(&mut w);
        let inner = Arc::clone(self);
        tokio::spawn(async move { inner.destroy(w, graceful).await });
        if let Some(id) = replace {
            self.fill(id);
        }
    }

    /// Kills and destroys the sandbox now; how its first process ended.
    pub(super) async fn destroy_now(&self, w: &mut LiveSandbox) -> String {
        let Some(sandbox) = w.sandbox.take() else {
            return "signal: killed".into();
        };
        match tokio::task::spawn_blocking(move || sandbox.destroy()).await {
            Ok(Ok(exit)) => exit_status(exit),
            _ => "signal: killed".into(),
        }
    }

    /// Shuts the runtime down (gracefully: SIGTERM and Lambda's grace
    /// first), destroys the sandbox and frees its memory and uid.
    pub(super) async fn destroy(self: Arc<Self>, mut w: LiveSandbox, graceful: bool) {
        if graceful {
            if w.frozen {
                if let Some(mut s) = w.sandbox.take() {
                    let back = tokio::task::spawn_blocking(move || {
                        let _ = s.thaw();
                        s
                    })
                    .await;
                    w.sandbox = back.ok();
                }
            }
            w.shutdown(ShutdownReason::Spindown, SHUTDOWN_WAIT).await;
        }
        if w.sandbox.is_some() {
            let _ = self.destroy_now(&mut w).await;
        }
        self.release(w.memory_mb, w.slot);
    }

    /// Freezes sandboxes idle past the grace and destroys those past the TTL.
    pub(super) async fn janitor(self: Arc<Self>) {
        let tick = (self.config.freeze_grace / 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let now = Instant::now();
            let mut expired = Vec::new();
            let mut to_freeze = Vec::new();
            let mut ended = Vec::new();
            {
                let mut guard = self.lock();
                let st = &mut *guard;
                if st.closed {
                    return;
                }
                for (key, pool) in st.pools.iter_mut() {
                    // A waiting pre-initialised runtime blocks in read(2) and
                    // uses no CPU: a freeze would only put a thaw on the
                    // path of the cold start that takes it.
                    let waiting = key.starts_with(super::prewarm::KEY_PREFIX);
                    if waiting {
                        expired.extend(super::prewarm::surplus(pool, st.prewarm_demand.get(key), now));
                    }
                    let mut i = 0;
                    while i < pool.len() {
                        let idle_for = now - pool[i].since;
                        // One whose runtime ended while it waited is no
                        // sandbox to keep (a peek at its socket).
                        if waiting && !pool[i].live.quiet() {
                            ended.push(pool.remove(i).live);
                        } else if idle_for >= self.config.idle_ttl {
                            expired.push(pool.remove(i).live);
                        } else if !waiting && !pool[i].live.frozen && idle_for >= self.config.freeze_grace {
                            to_freeze.push(pool.remove(i));
                        } else {
                            i += 1;
                        }
                    }
                }
                st.pools.retain(|_, v| !v.is_empty());
                for idle in &to_freeze {
                    *st.freezing.entry(idle.live.key.clone()).or_default() += 1;
                }
            }
            for w in expired {
                self.retire(w, true);
            }
            for w in ended {
                tracing::info!(key = %w.key.replace('\0', "/"), "a pre-initialised sandbox's runtime ended while it waited");
                self.retire(w, false);
            }
            if !to_freeze.is_empty() {
                self.freeze(to_freeze).await;
            }
        }
    }

    async fn freeze(self: &Arc<Self>, batch: Vec<Idle>) {
        let keys: Vec<String> = batch.iter().map(|idle| idle.live.key.clone()).collect();
        let frozen = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|mut idle| {
                    if let Some(s) = idle.live.sandbox.as_mut() {
                        idle.live.frozen = s.freeze().is_ok();
                    }
                    idle
                })
                .collect::<Vec<_>>()
        })
        .await;
        let retired = {
            let mut st = self.lock();
            for key in keys {
                if let Some(n) = st.freezing.get_mut(&key) {
                    *n -= 1;
                    if *n == 0 {
                        st.freezing.remove(&key);
                    }
                }
            }
            match frozen {
                Ok(frozen) if st.closed => frozen,
                Ok(frozen) => {
                    for idle in frozen {
                        let pool = st.pools.entry(idle.live.key.clone()).or_default();
                        // Keep the pool ordered by last use: the frozen ones are
                        // older than any sandbox returned meanwhile.
                        let at = pool.iter().position(|i| i.since > idle.since).unwrap_or(pool.len());
                        pool.insert(at, idle);
                    }
                    Vec::new()
                }
                Err(_) => Vec::new(),
            }
        };
        for idle in retired {
            self.retire(idle.live, true);
        }
        self.back_from_freezing.notify_waiters();
    }
}

/// Go's wording of an exit, as the sandbox crate prints it.
fn exit_status(exit: Exit) -> String {
    exit.to_string()
}
