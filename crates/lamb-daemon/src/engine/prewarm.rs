//! Pre-initialised runtime sandboxes (docs/prewarm.md): per runtime, a
//! sandbox whose runtime client started ahead and waits for a function.
//!
//! They live in the warm pool under a key of their own
//! ([`pool_key`]), so the pool's life cycle applies to them
//! (never frozen, as they use no CPU; destroyed after the idle TTL, evicted least
//! recently used when a cold start needs their memory). The interface is
//! three calls: [`eligible`] decides whether a cold start may use one,
//! [`Inner::take_prewarmed`] takes one and gives it the function, and
//! [`Inner::refill_prewarmed`] makes more in the background. How many wait
//! per key follows the key's cold starts ([`Demand`]).

use super::live::{Event, LiveSandbox};
use super::logs::LogStream;
use super::{spec, EngineConfig, Inner};
use crate::invoker::InvokeRequest;
use lamb_protocol::errors::Chain;
use lamb_protocol::init::{FromInit, ToInit};
use lamb_sandbox::SandboxSpec;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The memory a waiting sandbox is given (and counted for against
/// `--memory-capacity`): Lambda's smallest size, more than a waiting Python
/// or Node.js uses.
pub(super) const PREWARM_MB: u32 = 128;
/// The most sandboxes waiting and being made per key, whatever the demand.
const MAX_PER_KEY: usize = 8;
/// How far back a key's cold starts count for its rate; and how long a
/// waiting sandbox beyond the key's depth is kept before it goes.
const DEMAND_WINDOW: Duration = Duration::from_secs(10);
/// The shortest span a rate is taken over: two cold starts a millisecond
/// apart are no rate of a thousand a second.
const MIN_SPAN: Duration = Duration::from_millis(500);
/// A key's refill time until one was measured: a Node.js runtime's start
/// on a small machine.
const REFILL_GUESS: Duration = Duration::from_millis(150);
/// Pool keys of waiting sandboxes start so; no function's key can (a NUL).
pub(super) const KEY_PREFIX: &str = "\0prewarm\0";

/// Variables of a function's own that a runtime reads at its start (or
/// whose change a running interpreter could not take back): a function that
/// sets one starts the plain way.
const STARTUP_NAMES: [&str; 5] = ["AWS_LAMBDA_EXEC_WRAPPER", "LANG", "TZ", "PATH", "HOME"];
const STARTUP_PREFIXES: [&str; 6] = ["PYTHON", "NODE", "LD_", "LC_", "MALLOC_", "GLIBC_"];

/// The pool key a cold start of `req` may take a waiting sandbox from, or
/// `None`: the plain path (docs/prewarm.md, "What goes the plain path").
pub(super) fn eligible(config: &EngineConfig, req: &InvokeRequest) -> Option<String> {
    let f = &req.function.spec;
    let runtime = f.runtime.as_deref()?;
    let python = runtime.starts_with("python3");
    let node = runtime.starts_with("nodejs");
    let plain = !config.prewarm
        || config.user_namespaces
        || !(python || node)
        || f.image.is_some()
        || !req.layer_paths.is_empty()
        || !f.file_system_configs.is_empty()
        || u64::from(f.ephemeral_storage.size) * 1024 * 1024 != lamb_sandbox::spec::DEFAULT_TMP_SIZE
        || f.environment.keys().any(|k| is_startup_name(k));
    if plain {
        return None;
    }
    // V8's heap is sized from the memory at Node's start.
    Some(pool_key(runtime, node.then_some(f.memory_size)))
}

fn is_startup_name(name: &str) -> bool {
    STARTUP_NAMES.contains(&name) || STARTUP_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `\0prewarm\0<runtime>`, and `\0<memory>` when the runtime's start
/// depends on it.
fn pool_key(runtime: &str, memory_mb: Option<u32>) -> String {
    match memory_mb {
        Some(mb) => format!("{KEY_PREFIX}{runtime}\0{mb}"),
        None => format!("{KEY_PREFIX}{runtime}"),
    }
}

/// The runtime and memory a pool key names.
fn parse_key(key: &str) -> Option<(&str, Option<u32>)> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    match rest.split_once('\0') {
        Some((runtime, mb)) => Some((runtime, Some(mb.parse().ok()?))),
        None => Some((rest, None)),
    }
}

/// A key's demand for waiting sandboxes (docs/prewarm.md, "How many
/// wait"): its recent cold starts, how long its refills take, the refills
/// under way. The pool keeps `depth` sandboxes waiting or being made: enough
/// to cover twice the cold starts expected while one is made.
#[derive(Default)]
pub(super) struct Demand {
    /// When its cold starts (that took a waiting sandbox or wanted one)
    /// began, within [`DEMAND_WINDOW`].
    starts: VecDeque<Instant>,
    /// A refill's time, averaged over the last few.
    refill: Option<Duration>,
    /// When each refill under way began.
    making: Vec<Instant>,
}

impl Demand {
    /// A cold start at `now`.
    fn started(&mut self, now: Instant) {
        self.forget(now);
        self.starts.push_back(now);
    }

    fn forget(&mut self, now: Instant) {
        while self
            .starts
            .front()
            .is_some_and(|&t| now.duration_since(t) > DEMAND_WINDOW)
        {
            self.starts.pop_front();
        }
    }

    /// Cold starts a second, from the intervals between those in the
    /// window (none with fewer than two): the rate of the last burst holds
    /// until its starts leave the window.
    fn rate(&self, now: Instant) -> f64 {
        let mut recent = self.starts.iter().filter(|&&t| now.duration_since(t) <= DEMAND_WINDOW);
        let Some(first) = recent.next() else {
            return 0.0;
        };
        let (intervals, last) = recent.fold((0u32, *first), |(n, _), &t| (n + 1, t));
        f64::from(intervals) / last.duration_since(*first).max(MIN_SPAN).as_secs_f64()
    }

    fn refill_time(&self) -> Duration {
        self.refill.unwrap_or(REFILL_GUESS)
    }

    /// Sandboxes to keep waiting or being made at `now`: twice the cold
    /// starts expected during one refill, rounded up, at least one, at most
    /// [`MAX_PER_KEY`].
    pub(super) fn depth(&self, now: Instant) -> usize {
        let expected = self.rate(now) * self.refill_time().as_secs_f64();
        ((2.0 * expected).ceil() as usize).clamp(1, MAX_PER_KEY)
    }

    /// A refill began at `began`.
    fn making_began(&mut self, began: Instant) {
        self.making.push(began);
    }

    /// The refill begun at `began` ended at `now`, with a sandbox or not
    /// (only a made one's time counts).
    fn making_ended(&mut self, began: Instant, now: Instant, made: bool) {
        if let Some(i) = self.making.iter().position(|&t| t == began) {
            self.making.swap_remove(i);
        }
        if made {
            let took = now.duration_since(began);
            // The last refills count most: the machine's load changes.
            self.refill = Some(self.refill.map_or(took, |r| (r * 3 + took) / 4));
        }
    }

    /// Until when a cold start that found the pool empty waits for the
    /// refill under way that began first, when it is at least half done by
    /// the measured refill time: it is then expected sooner than a plain
    /// start (a whole runtime's start, and one competing with the refill);
    /// it is waited for up to twice the refill time from its beginning.
    fn worth_waiting(&self, now: Instant) -> Option<Instant> {
        let began = self.making.iter().min()?;
        let refill = self.refill_time();
        let until = *began + 2 * refill;
        (now >= *began + refill / 2 && now < until).then_some(until)
    }
}

/// What a waiting sandbox is given when a function is assigned to it: what
/// a plain start of `spec` would have been created with.
struct Assignment {
    code: std::path::PathBuf,
    memory_bytes: u64,
    cpu: lamb_sandbox::CpuLimit,
    env: Vec<String>,
}

impl Inner {
    /// A waiting sandbox of `pool_key`, given `spec`'s code, limits and
    /// environment (`spec` is what a plain start would create), its log
    /// going to `log`. `None`: none waits (or giving it failed, and it is
    /// gone): the caller starts the plain way.
    pub(super) async fn take_prewarmed(
        self: &Arc<Self>,
        pool_key: &str,
        spec: &SandboxSpec,
        log: LogStream,
    ) -> Option<LiveSandbox> {
        let assignment = Assignment {
            code: spec.mounts.first().and_then(bind_source)?.to_path_buf(),
            memory_bytes: spec.limits.memory_bytes,
            cpu: spec.limits.cpu,
            env: spec.process.env.clone(),
        };
        self.lock()
            .prewarm_demand
            .entry(pool_key.to_owned())
            .or_default()
            .started(Instant::now());
        let mut w = self.take_or_await_prewarmed(pool_key).await?;
        if let Err(e) = assign(&mut w, assignment).await {
            tracing::warn!(error = %e, "giving a pre-initialised sandbox its function failed; starting the plain way");
            self.retire(w, false);
            return None;
        }
        // Its own reservation (PREWARM_MB in its slot) stays until the cold
        // start trades it for its own ([`traded`]).
        w.memory_mb = (spec.limits.memory_bytes >> 20) as u32;
        w.log = log;
        Some(w)
    }

    /// Settles the reservations of a cold start in `slot` that created `w`:
    /// a pre-initialised sandbox (another slot) keeps its own slot, whose
    /// uid its processes run as, and the function's memory; the cold
    /// start's slot and the waiting sandbox's memory go back.
    pub(super) fn traded(&self, w: &LiveSandbox, slot: u32) {
        if w.slot != slot {
            self.release(PREWARM_MB, slot);
        }
    }

    /// A created sandbox that came too late for its cold start, which
    /// releases its own reservation: a pre-initialised one's goes too.
    pub(super) fn dropped_late(&self, w: LiveSandbox, slot: u32) {
        let own = (w.slot != slot).then_some(w.slot);
        drop(w);
        if let Some(own) = own {
            self.release(PREWARM_MB, own);
        }
    }

    /// A waiting sandbox of `pool_key`, or else one a refill under way is
    /// about to make ([`Demand::worth_waiting`]); `None` when neither comes.
    async fn take_or_await_prewarmed(self: &Arc<Self>, pool_key: &str) -> Option<LiveSandbox> {
        loop {
            let made = self.prewarm_made.notified();
            tokio::pin!(made);
            made.as_mut().enable();
            if let Some(w) = self.take_idle(pool_key, Duration::ZERO).await {
                return Some(w);
            }
            let until = self
                .lock()
                .prewarm_demand
                .get(pool_key)?
                .worth_waiting(Instant::now())?;
            tokio::time::timeout_at(until, made).await.ok()?;
        }
    }

    /// Makes waiting sandboxes for `pool_key` in the background, up to the
    /// key's depth ([`Demand::depth`]) counting those waiting and being
    /// made, while memory is free without evicting anything.
    pub(super) fn refill_prewarmed(self: &Arc<Self>, pool_key: String) {
        let now = Instant::now();
        let slots = {
            let mut st = self.lock();
            if st.closed {
                return;
            }
            let waiting = st.pools.get(&pool_key).map_or(0, Vec::len);
            let demand = st.prewarm_demand.entry(pool_key.clone()).or_default();
            let want = demand.depth(now).saturating_sub(waiting + demand.making.len());
            let capacity = self.config.memory_capacity_mb;
            let slots: Vec<u32> = (0..want)
                .map_while(|_| st.try_reserve(PREWARM_MB, &pool_key, capacity))
                .collect();
            let demand = st.prewarm_demand.entry(pool_key.clone()).or_default();
            slots.iter().for_each(|_| demand.making_began(now));
            slots
        };
        for slot in slots {
            self.make_prewarmed(pool_key.clone(), slot, now);
        }
    }

    /// Makes one waiting sandbox in `slot` (reserved) and puts it in the
    /// pool; its making, begun at `began`, ends either way.
    fn make_prewarmed(self: &Arc<Self>, pool_key: String, slot: u32, began: Instant) {
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let made = inner.prewarm(&pool_key, slot).await;
            let ok = made.is_ok();
            match made {
                Ok(w) => inner.put_idle(w),
                Err((w, message)) => {
                    tracing::warn!(key = %pool_key.replace('\0', "/"), error = %message, "cannot make a pre-initialised sandbox");
                    match w {
                        Some(w) => inner.retire(w, false),
                        None => inner.release(PREWARM_MB, slot),
                    }
                }
            }
            if let Some(d) = inner.lock().prewarm_demand.get_mut(&pool_key) {
                d.making_ended(began, Instant::now(), ok);
            }
            inner.prewarm_made.notify_waiters();
        });
    }

    /// Creates a waiting sandbox in `slot` and waits until its runtime
    /// client says it waits.
    async fn prewarm(
        self: &Arc<Self>,
        pool_key: &str,
        slot: u32,
    ) -> Result<LiveSandbox, (Option<LiveSandbox>, String)> {
        let (runtime, heap_memory_mb) = parse_key(pool_key).ok_or((None, "not a prewarm key".to_owned()))?;
        let runtime_dir = std::fs::canonicalize(self.config.runtimes_dir.join(runtime))
            .map_err(|e| (None, format!("runtime {runtime} is not installed: {e}")))?;
        // A tree without the runtime's bootstrap would start nothing to wait.
        if !runtime_dir.join("var/runtime/bootstrap").is_file() {
            return Err((None, format!("runtime {runtime} has no /var/runtime/bootstrap")));
        }
        let spec = spec::prewarm(&spec::PrewarmInput {
            runtime,
            runtime_dir,
            lamb_exe: &self.config.lamb_exe,
            account: &self.config.ctx.account,
            slot,
            memory_mb: PREWARM_MB,
            heap_memory_mb,
        });
        let (sandbox, ours, out_read) = self.spawn_sandbox(spec).await.map_err(|e| (None, e))?;
        let mut w = LiveSandbox::new(
            sandbox,
            ours,
            out_read,
            LogStream::none(),
            slot,
            PREWARM_MB,
            pool_key.to_owned(),
        )
        .map_err(|e| (None, e.to_string()))?;
        let deadline = Instant::now() + self.config.init_timeout;
        loop {
            match w.next_event(deadline, None).await {
                Event::Msg(FromInit::Prewarmed) => return Ok(w),
                Event::Msg(FromInit::InitError { error_type, .. }) => {
                    return Err((Some(w), format!("the runtime failed to start: {error_type}")))
                }
                Event::Msg(FromInit::Exited { status }) => {
                    return Err((Some(w), format!("the runtime ended: {status}")))
                }
                Event::Msg(_) => continue,
                Event::Closed => return Err((Some(w), "init ended".to_owned())),
                Event::Deadline => return Err((Some(w), "the runtime did not start in time".to_owned())),
            }
        }
    }
}

/// The waiting sandboxes of a pool beyond its key's depth now, that have
/// waited a whole [`DEMAND_WINDOW`]: the demand that wanted them has gone
/// (the janitor lets them go; the last one goes after `--idle-ttl`).
pub(super) fn surplus(pool: &mut Vec<super::Idle>, demand: Option<&Demand>, now: Instant) -> Vec<LiveSandbox> {
    let depth = demand.map_or(1, |d| d.depth(now));
    let mut gone = Vec::new();
    // Oldest first: a pool is ordered by its last use.
    while pool.len() > depth && now.duration_since(pool[0].since) >= DEMAND_WINDOW {
        gone.push(pool.remove(0).live);
    }
    gone
}

/// The host directory of a directory bind (the code's, first of a plain
/// start's mounts).
fn bind_source(mount: &lamb_sandbox::MountSpec) -> Option<&Path> {
    match mount {
        lamb_sandbox::MountSpec::Bind { source, target } if target == Path::new("/var/task") => Some(source),
        _ => None,
    }
}

/// Why a waiting sandbox is not given its function: its runtime (or init)
/// ended while it waited (killed, out of memory, a crash).
const ENDED: &str = "its runtime ended while it waited";

/// Binds the code, sets the limits, hands over the environment, unless
/// the sandbox is no longer waiting: then the cold start goes the plain way.
async fn assign(w: &mut LiveSandbox, a: Assignment) -> Result<(), String> {
    if !w.quiet() {
        return Err(ENDED.to_owned());
    }
    let mut sandbox = w.sandbox.take().ok_or("no sandbox")?;
    let code = a.code;
    let (memory, cpu) = (a.memory_bytes, a.cpu);
    let (sandbox, bound) = tokio::task::spawn_blocking(move || {
        let r = sandbox
            .bind_directory(&code, Path::new("/var/task"))
            .and_then(|()| sandbox.set_memory(memory))
            .and_then(|()| sandbox.set_cpu(&cpu));
        (sandbox, r)
    })
    .await
    .map_err(|e| e.to_string())?;
    w.sandbox = Some(sandbox);
    bound.map_err(|e| Chain(&e).to_string())?;
    // Its runtime may have ended during the bind; past the send below, an
    // end is the function's own (its import may exit), as on a plain start.
    if !w.quiet() {
        return Err(ENDED.to_owned());
    }
    w.send(&ToInit::Assign { env: a.env }).await.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_runtime_and_the_memory_node_needs() {
        assert_eq!(parse_key(&pool_key("python3.13", None)), Some(("python3.13", None)));
        assert_eq!(
            parse_key(&pool_key("nodejs22.x", Some(1792))),
            Some(("nodejs22.x", Some(1792)))
        );
        assert_eq!(parse_key("f\0$LATEST"), None);
    }

    /// A demand whose cold starts came `gap` apart, `n` of them, the last
    /// at `at`; refills measured at `refill`.
    fn demand(at: Instant, n: u32, gap: Duration, refill: Option<Duration>) -> Demand {
        let mut d = Demand::default();
        for i in (0..n).rev() {
            d.started(at - gap * i);
        }
        if let Some(r) = refill {
            d.making_began(at - r);
            d.making_ended(at - r, at, true);
        }
        d
    }

    #[test]
    fn one_waits_without_a_rate() {
        let now = Instant::now() + Duration::from_secs(60);
        assert_eq!(Demand::default().depth(now), 1, "no cold start yet");
        assert_eq!(
            demand(now, 1, Duration::ZERO, None).depth(now),
            1,
            "one cold start is no rate"
        );
        let sparse = demand(now, 3, Duration::from_secs(4), Some(Duration::from_millis(150)));
        assert_eq!(sparse.depth(now), 1, "a refill is long done before the next cold start");
    }

    #[test]
    fn the_depth_covers_twice_the_cold_starts_of_one_refill() {
        let now = Instant::now() + Duration::from_secs(60);
        // Node.js's bench: a cold start every 110 ms, a refill of 150 ms:
        // 9.1 a second, 1.36 during a refill, 2.7 doubled.
        let node = demand(now, 20, Duration::from_millis(110), Some(Duration::from_millis(150)));
        assert_eq!(node.depth(now), 3);
        // The same rate with a refill measured slower needs more.
        let slow = demand(now, 20, Duration::from_millis(110), Some(Duration::from_millis(400)));
        assert_eq!(slow.depth(now), 8);
        // Python's faster refill needs fewer.
        let python = demand(now, 20, Duration::from_millis(110), Some(Duration::from_millis(60)));
        assert_eq!(python.depth(now), 2);
    }

    #[test]
    fn the_depth_is_bounded_and_a_burst_is_no_rate_of_its_own() {
        let now = Instant::now() + Duration::from_secs(60);
        let flood = demand(now, 200, Duration::from_millis(5), Some(Duration::from_secs(1)));
        assert_eq!(flood.depth(now), MAX_PER_KEY);
        // Three at once count over MIN_SPAN: 4 a second, 0.6 per refill.
        let burst = demand(now, 3, Duration::ZERO, Some(Duration::from_millis(150)));
        assert_eq!(burst.depth(now), 2);
    }

    #[test]
    fn the_depth_goes_back_to_one_when_the_cold_starts_stop() {
        let last = Instant::now() + Duration::from_secs(60);
        let d = demand(last, 20, Duration::from_millis(110), Some(Duration::from_millis(150)));
        assert_eq!(d.depth(last), 3);
        assert_eq!(d.depth(last + DEMAND_WINDOW + Duration::from_millis(1)), 1);
    }

    #[test]
    fn the_refill_time_follows_the_last_refills() {
        let now = Instant::now() + Duration::from_secs(60);
        let mut d = Demand::default();
        assert_eq!(d.refill_time(), REFILL_GUESS, "a guess until measured");
        d.making_began(now - Duration::from_millis(100));
        d.making_ended(now - Duration::from_millis(100), now, true);
        assert_eq!(d.refill_time(), Duration::from_millis(100), "the first measured");
        d.making_began(now - Duration::from_millis(500));
        d.making_ended(now - Duration::from_millis(500), now, true);
        assert_eq!(d.refill_time(), Duration::from_millis(200), "a quarter of the next");
        d.making_began(now - Duration::from_millis(10));
        d.making_ended(now - Duration::from_millis(10), now, false);
        assert_eq!(
            d.refill_time(),
            Duration::from_millis(200),
            "a failed one is no refill time"
        );
        assert!(d.making.is_empty());
    }

    #[test]
    fn a_cold_start_waits_only_for_a_refill_at_least_half_made() {
        let began = Instant::now() + Duration::from_secs(60);
        let mut d = demand(began, 1, Duration::ZERO, Some(Duration::from_millis(100)));
        assert_eq!(d.worth_waiting(began), None, "nothing under way");
        d.making_began(began);
        let ms = |n| began + Duration::from_millis(n);
        assert_eq!(d.worth_waiting(ms(40)), None, "more than half of it to go");
        assert_eq!(d.worth_waiting(ms(50)), Some(ms(200)));
        assert_eq!(d.worth_waiting(ms(150)), Some(ms(200)), "late, but still waited for");
        assert_eq!(d.worth_waiting(ms(200)), None, "twice its time: the plain way");
        d.making_ended(began, ms(120), true);
        assert_eq!(d.worth_waiting(ms(120)), None, "made");
    }

    #[test]
    fn startup_variables_are_the_plain_paths() {
        for name in [
            "PYTHONPATH",
            "PYTHONHASHSEED",
            "NODE_OPTIONS",
            "LD_PRELOAD",
            "LC_ALL",
            "TZ",
            "AWS_LAMBDA_EXEC_WRAPPER",
        ] {
            assert!(is_startup_name(name), "{name}");
        }
        for name in ["TABLE", "AWS_REGION_X", "MY_PATH", "DEBUG"] {
            assert!(!is_startup_name(name), "{name}");
        }
    }
}
