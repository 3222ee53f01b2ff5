//! The invocation engine: admission (account and reserved concurrency),
//! the warm pool (one per function version and configuration, idle
//! sandboxes frozen after a short grace, destroyed after a TTL or evicted
//! least-recently-used when memory runs short), provisioned concurrency
//! (sandboxes initialised ahead and kept out of the pool's life cycle),
//! cold starts through the spawner, the exchange with `lamb init`, logs and
//! metrics.
//!
//! Every failure of the function is an answer (200 with
//! `X-Amz-Function-Error: Unhandled`), never a 5xx: boto3 retries those.

mod admission;
mod cold_start;
mod image_init;
mod launcher;
mod live;
mod logs;
mod metrics;
mod platform;
mod pool;
mod prewarm;
mod provisioned;
mod run;
mod slots;
mod snapstart;
mod spec;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use crate::error::ApiError;
use crate::invoker::{InvokeFuture, InvokeRequest, Invoker, ProvisionTarget, ProvisionedStatus, SnapshotState};
use lamb_types::ArnContext;
use live::LiveSandbox;
use metrics::{Gauges, Metrics};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use launcher::{Launcher, SandboxHandle};
pub use run::pool_key;
pub use spec::{SANDBOX_GID, UID_BASE};

/// How the engine is tuned; [`EngineConfig::new`] gives Lambda's values.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Logs go to `<data_dir>/logs/<function>/<stream>`.
    pub data_dir: PathBuf,
    /// One root filesystem per runtime name.
    pub runtimes_dir: PathBuf,
    /// The executable bound into every sandbox to run `lamb init`: the
    /// `lamb-init` binary built with `lamb`, or `lamb` itself (`lamb serve`
    /// chooses).
    pub lamb_exe: PathBuf,
    /// An idle sandbox is destroyed after this long.
    pub idle_ttl: Duration,
    /// The memory all live sandboxes may be given together, in MB.
    pub memory_capacity_mb: u64,
    /// Concurrent invocations in the account.
    pub concurrency_limit: u32,
    /// An idle sandbox is frozen after this long without work.
    pub freeze_grace: Duration,
    /// Lambda's Init limit for on-demand sandboxes.
    pub init_timeout: Duration,
    /// How long a cold start waits for memory before it is throttled.
    pub capacity_wait: Duration,
    pub ctx: ArnContext,
    /// Host directories functions may mount (`FileSystemConfigs`).
    pub filesystems: crate::filesystems::Filesystems,
    /// Run every sandbox in its own user namespace (`lamb serve --userns`),
    /// each slot with its own outside range (`spec::user_namespace`).
    pub user_namespaces: bool,
    /// Mints each sandbox's session credentials; none: sandboxes get none.
    pub sessions: Option<Arc<crate::sessions::Sessions>>,
    /// `AWS_ENDPOINT_URL_LAMBDA`: the API as sandboxes reach it
    /// (`lamb_sandbox::NetworkConfig::lambda_endpoint_url`); none: not set.
    pub lambda_endpoint: Option<String>,
    /// Snapshots kept ready per SnapStart version (`--snapstart-pool`).
    pub snapstart_pool: u32,
    /// Cold starts of eligible Python and Node.js functions take a
    /// pre-initialised sandbox (`lamb serve --prewarm`, docs/prewarm.md).
    pub prewarm: bool,
}

impl EngineConfig {
    pub fn new(data_dir: PathBuf, runtimes_dir: PathBuf, lamb_exe: PathBuf) -> EngineConfig {
        EngineConfig {
            data_dir,
            runtimes_dir,
            lamb_exe,
            idle_ttl: Duration::from_secs(600),
            memory_capacity_mb: default_memory_capacity_mb(),
            concurrency_limit: 1000,
            freeze_grace: Duration::from_millis(50),
            init_timeout: Duration::from_secs(10),
            capacity_wait: Duration::from_secs(2),
            ctx: ArnContext::default(),
            filesystems: Default::default(),
            user_namespaces: false,
            sessions: None,
            lambda_endpoint: None,
            snapstart_pool: 1,
            prewarm: false,
        }
    }
}

/// Three quarters of the host's memory.
pub fn default_memory_capacity_mb() -> u64 {
    let total_kb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(4 * 1024 * 1024);
    total_kb / 1024 * 3 / 4
}

/// The invocation engine; implements [`Invoker`].
pub struct Engine {
    inner: Arc<Inner>,
}

struct Idle {
    live: LiveSandbox,
    since: Instant,
}

#[derive(Default)]
struct State {
    /// Idle sandboxes by pool key, most recently used last.
    pools: HashMap<String, Vec<Idle>>,
    /// Sandboxes alive (busy, idle, freezing or being created).
    live: usize,
    /// Idle sandboxes the janitor has taken out to freeze, by pool key: a
    /// call for one waits for it (a thaw) rather than starting another.
    freezing: HashMap<String, usize>,
    /// Memory given to live sandboxes, MB.
    memory_mb: u64,
    /// Evicted sandboxes not yet destroyed: slot to MB. Their memory is on
    /// its way back, so a cold start evicts no more than it needs.
    evicting: HashMap<u32, u64>,
    in_flight: u32,
    unreserved_in_flight: u32,
    per_function: HashMap<String, u32>,
    /// Uid slots, live and free.
    slots: slots::Slots,
    /// Provisioned concurrency configurations by function and qualifier.
    provisioned: HashMap<String, provisioned::Provision>,
    /// The last provisioned target id given.
    next_target: u64,
    /// SnapStart versions' snapshots by pool key.
    snapshots: HashMap<String, snapstart::Snapshots>,
    /// The demand for pre-initialised sandboxes and those being made, by
    /// pool key (`prewarm`).
    prewarm_demand: HashMap<String, prewarm::Demand>,
    closed: bool,
}

impl State {
    /// Takes the idle sandbox unused the longest, from any pool, to be
    /// destroyed; its memory counts as coming free from now on.
    fn evict_lru(&mut self) -> Option<LiveSandbox> {
        let (key, index) = self
            .pools
            .iter()
            .flat_map(|(k, v)| v.iter().enumerate().map(move |(i, idle)| (k, i, idle.since)))
            .min_by_key(|(_, _, since)| *since)
            .map(|(k, i, _)| (k.clone(), i))?;
        let pool = self.pools.get_mut(&key)?;
        let idle = pool.remove(index);
        if pool.is_empty() {
            self.pools.remove(&key);
        }
        self.evicting.insert(idle.live.slot, u64::from(idle.live.memory_mb));
        Some(idle.live)
    }

    /// Room for `memory_mb` within `capacity_mb` now, without evicting or
    /// waiting; the uid slot of the new sandbox.
    fn try_reserve(&mut self, memory_mb: u32, name: &str, capacity_mb: u64) -> Option<u32> {
        if self.closed || self.memory_kept_mb() + u64::from(memory_mb) > capacity_mb {
            return None;
        }
        self.memory_mb += u64::from(memory_mb);
        self.live += 1;
        Some(self.slots.alloc(name))
    }

    /// Memory given to live sandboxes less what evictions are freeing.
    fn memory_kept_mb(&self) -> u64 {
        self.memory_mb - self.evicting.values().sum::<u64>()
    }

    fn gauges(&self) -> Gauges {
        let idle: usize = self.pools.values().map(Vec::len).sum();
        let frozen = self.pools.values().flatten().filter(|i| i.live.frozen).count() + self.snapshots_frozen();
        Gauges {
            live: self.live,
            idle: idle + self.freezing.values().sum::<usize>() + self.provisioned_idle() + self.snapshots_idle(),
            frozen,
            in_flight: self.in_flight,
            memory_reserved_mb: self.memory_mb,
            provisioned: self.provisioned_allocated(),
            prewarmed: self
                .pools
                .iter()
                .filter(|(k, _)| k.starts_with(prewarm::KEY_PREFIX))
                .map(|(_, v)| v.len())
                .sum(),
        }
    }
}

struct Inner {
    launcher: Arc<dyn Launcher>,
    config: EngineConfig,
    state: Mutex<State>,
    metrics: Metrics,
    /// Signalled when a sandbox is gone and its memory is free again.
    freed: Notify,
    /// Signalled when frozen sandboxes are back in their pools.
    back_from_freezing: Notify,
    /// Signalled when a pre-initialised sandbox's making ended (made or not).
    prewarm_made: Notify,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Engine {
    /// The engine over a launcher: the daemon's is its started
    /// `lamb_sandbox::Spawner`. Call [`Engine::start`] inside the async
    /// runtime before serving.
    pub fn new(launcher: impl Launcher, config: EngineConfig) -> Engine {
        Engine {
            inner: Arc::new(Inner {
                launcher: Arc::new(launcher),
                config,
                state: Mutex::new(State::default()),
                metrics: Metrics::default(),
                freed: Notify::new(),
                back_from_freezing: Notify::new(),
                prewarm_made: Notify::new(),
            }),
        }
    }

    /// Starts the janitor (freezing, TTL).
    pub fn start(&self) {
        tokio::spawn(Arc::clone(&self.inner).janitor());
    }

    /// Destroys every idle sandbox and waits, a few seconds at most, for the
    /// busy ones to finish and go.
    pub async fn shutdown(&self) {
        let idle: Vec<LiveSandbox> = {
            let mut st = self.inner.lock();
            st.closed = true;
            let mut idle: Vec<LiveSandbox> = st.pools.drain().flat_map(|(_, v)| v).map(|i| i.live).collect();
            idle.extend(st.drain_provisioned());
            idle.extend(st.release_snapshots(""));
            idle
        };
        let mut tasks = tokio::task::JoinSet::new();
        for w in idle {
            let inner = Arc::clone(&self.inner);
            tasks.spawn(async move { inner.destroy(w, true).await });
        }
        while tasks.join_next().await.is_some() {}
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.inner.lock().live > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Invoker for Engine {
    fn invoke(&self, req: InvokeRequest) -> InvokeFuture<'_> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            // A task of its own: a caller that hangs up must not abandon a
            // sandbox halfway through an exchange.
            match tokio::spawn(inner.invoke(req)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "invocation task failed");
                    Err(ApiError::Lambda(lamb_types::LambdaError::service("internal error")))
                }
            }
        })
    }

    fn metrics(&self) -> Option<String> {
        let gauges = self.inner.lock().gauges();
        Some(self.inner.metrics.render(gauges))
    }

    /// Destroys the idle sandboxes of a deleted function or version, which
    /// nothing can invoke any more. A sandbox busy at the deletion goes back
    /// to its pool when its call ends and lives until the idle TTL.
    fn forget(&self, function: &str, version: Option<u64>) {
        let prefix = run::pool_prefix(function, version);
        let idle: Vec<LiveSandbox> = {
            let mut st = self.inner.lock();
            let keys: Vec<String> = st.pools.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
            let mut idle: Vec<LiveSandbox> = keys
                .iter()
                .filter_map(|k| st.pools.remove(k))
                .flatten()
                .map(|i| i.live)
                .collect();
            idle.extend(st.release_provisioned(&prefix));
            idle.extend(st.release_snapshots(&prefix));
            idle
        };
        if !idle.is_empty() {
            tracing::info!(
                function,
                ?version,
                sandboxes = idle.len(),
                "destroying a deleted function's sandboxes"
            );
        }
        for w in idle {
            tokio::spawn(Arc::clone(&self.inner).destroy(w, true));
        }
    }

    fn provision(&self, function: &str, qualifier: &str, targets: Vec<ProvisionTarget>) {
        self.inner.provision(function, qualifier, targets);
    }

    fn provisioned_status(&self, function: &str, qualifier: &str) -> Option<ProvisionedStatus> {
        self.inner.provisioned_status(function, qualifier)
    }

    fn snapstart(&self, request: InvokeRequest) {
        self.inner.keep_snapshots(request);
    }

    fn snapstart_state(&self, function: &str, version: u64) -> Option<SnapshotState> {
        self.inner.snapshot_state(function, version)
    }

    /// Frozen ones count: a thaw is far cheaper than a cold start.
    fn idle(&self) -> HashMap<String, u32> {
        let st = self.inner.lock();
        let mut idle: HashMap<String, u32> = st
            .pools
            .iter()
            // Waiting prewarmed sandboxes belong to no function.
            .filter(|(k, v)| !v.is_empty() && !k.starts_with(prewarm::KEY_PREFIX))
            .map(|(k, v)| (k.clone(), u32::try_from(v.len()).unwrap_or(u32::MAX)))
            .collect();
        for (k, n) in &st.freezing {
            *idle.entry(k.clone()).or_default() += u32::try_from(*n).unwrap_or(u32::MAX);
        }
        // Provisioned ones first of all: an invocation takes one before any.
        for (k, n) in st.provisioned_idle_by_key() {
            *idle.entry(k.to_owned()).or_default() += u32::try_from(n).unwrap_or(u32::MAX);
        }
        idle
    }

    fn idle_of(&self, pool_key: &str) -> u32 {
        let st = self.inner.lock();
        let provisioned: usize = st
            .provisioned_idle_by_key()
            .filter(|(k, _)| *k == pool_key)
            .map(|(_, n)| n)
            .sum();
        let idle =
            st.pools.get(pool_key).map_or(0, Vec::len) + st.freezing.get(pool_key).copied().unwrap_or(0) + provisioned;
        u32::try_from(idle).unwrap_or(u32::MAX)
    }

    fn in_flight(&self) -> u32 {
        self.inner.lock().in_flight
    }
}
