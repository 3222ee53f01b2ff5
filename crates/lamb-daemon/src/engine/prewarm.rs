//! Pre-initialised runtime sandboxes (docs/prewarm.md): per runtime, a
//! sandbox whose runtime client started ahead and waits for a function.
//!
//! They live in the warm pool under a key of their own
//! ([`pool_key`]), so the pool's life cycle applies to them
//! (never frozen, as they use no CPU; destroyed after the idle TTL, evicted least
//! recently used when a cold start needs their memory). The interface is
//! three calls: [`eligible`] decides whether a cold start may use one,
//! [`Inner::take_prewarmed`] takes one and gives it the function, and
//! [`Inner::refill`] makes another in the background.

use super::live::{Event, LiveSandbox};
use super::logs::LogStream;
use super::{spec, EngineConfig, Inner};
use crate::invoker::InvokeRequest;
use lamb_protocol::errors::Chain;
use lamb_protocol::init::{FromInit, ToInit};
use lamb_sandbox::SandboxSpec;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The memory a waiting sandbox is given (and counted for against
/// `--memory-capacity`): Lambda's smallest size, more than a waiting Python
/// or Node.js uses.
pub(super) const PREWARM_MB: u32 = 128;
/// Waiting sandboxes kept per key.
const PER_KEY: usize = 1;
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
        let mut w = self.take_idle(pool_key, Duration::ZERO).await?;
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

    /// Makes a waiting sandbox for `pool_key` in the background, when fewer
    /// than [`PER_KEY`] wait or are being made, and memory is free without
    /// evicting anything.
    pub(super) fn refill_prewarmed(self: &Arc<Self>, pool_key: String) {
        let slot = {
            let mut st = self.lock();
            let waiting = st.pools.get(&pool_key).map_or(0, Vec::len);
            let making = st.prewarming.get(&pool_key).copied().unwrap_or(0);
            if st.closed || waiting + making >= PER_KEY {
                return;
            }
            let Some(slot) = st.try_reserve(PREWARM_MB, &pool_key, self.config.memory_capacity_mb) else {
                return;
            };
            *st.prewarming.entry(pool_key.clone()).or_default() += 1;
            slot
        };
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let made = inner.prewarm(&pool_key, slot).await;
            {
                let mut st = inner.lock();
                if let Some(n) = st.prewarming.get_mut(&pool_key) {
                    *n -= 1;
                    if *n == 0 {
                        st.prewarming.remove(&pool_key);
                    }
                }
            }
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
