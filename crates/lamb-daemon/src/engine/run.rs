//! One invocation from admission to answer, and the pool's life cycle:
//! cold starts, returning to the pool, freezing, expiry, eviction, destroy.

use super::logs::{self, LogStream};
use super::worker::{Event, Worker};
use super::{spec, Idle, Inner};
use crate::error::ApiError;
use crate::invoker::{InvokeRequest, InvokeResponse, LogType};
use lamb_init::caller_error;
use lamb_init::protocol::{FromInit, Invoke, ToInit};
use lamb_sandbox::{Exit, SandboxIo};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// What init gets between its SIGTERM and the kill, plus the way back.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(400);

/// Released when the invocation ends, however it ends.
struct Admission {
    inner: Arc<Inner>,
    function: String,
    reserved: bool,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        st.in_flight -= 1;
        if !self.reserved {
            st.unreserved_in_flight -= 1;
        }
        if let Some(n) = st.per_function.get_mut(&self.function) {
            *n -= 1;
            if *n == 0 {
                st.per_function.remove(&self.function);
            }
        }
    }
}

/// How a cold start ended, when it did not end ready.
struct InitFailure {
    body: Vec<u8>,
    /// Platform lines for the log.
    lines: String,
    init: Duration,
}

/// A cold start that did not end ready; the sandbox, if one was made, for
/// its log.
enum Cold {
    Ready(Box<Worker>),
    Failed(Option<Box<Worker>>, InitFailure),
}

enum Outcome {
    Response(Vec<u8>),
    Error(Vec<u8>),
    /// The runtime ended; its status if init said it.
    Crashed(Option<String>),
    Timeout,
}

fn pool_key(req: &InvokeRequest) -> String {
    format!(
        "{}\0{}\0{}",
        req.function.name, req.executed_version, req.function.revision_id
    )
}

/// What the keys of a function's pools (of one version's, with `version`)
/// start with; [`pool_key`]'s layout.
pub(super) fn pool_prefix(function: &str, version: Option<u64>) -> String {
    match version {
        None => format!("{function}\0"),
        Some(n) => format!("{function}\0{n}\0"),
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An X-Ray trace header for the runtime's `Lambda-Runtime-Trace-Id`.
fn trace_id() -> String {
    let secs = epoch_ms() / 1000;
    let r: u128 = rand::random();
    format!("Root=1-{secs:08x}-{:024x};Parent={:016x};Sampled=0", r >> 32, r as u64)
}

fn unhandled(body: Vec<u8>, tail: Option<Vec<u8>>) -> InvokeResponse {
    InvokeResponse {
        payload: body,
        function_error: Some("Unhandled".into()),
        log_tail: tail.map(|t| String::from_utf8_lossy(&t).into_owned()),
    }
}

impl Inner {
    pub(super) async fn invoke(self: Arc<Self>, req: InvokeRequest) -> Result<InvokeResponse, ApiError> {
        let _admission = self.admit(&req)?;
        let key = pool_key(&req);
        let mut tail = (req.log_type == LogType::Tail).then(Vec::new);
        let worker = match self.take_idle(&key).await {
            Some(w) => w,
            None => match self.cold_start(&req, &key, tail.as_mut()).await? {
                Cold::Ready(w) => *w,
                Cold::Failed(w, failure) => return Ok(self.init_failed(w, &req, failure, tail)),
            },
        };
        Ok(self.run(worker, &req, tail).await)
    }

    /// Account limit, then reserved or unreserved concurrency (spec 3.5).
    fn admit(self: &Arc<Self>, req: &InvokeRequest) -> Result<Admission, ApiError> {
        let function = &req.function.name;
        let limit = self.config.concurrency_limit;
        let mut st = self.lock();
        let running = st.per_function.get(function).copied().unwrap_or(0);
        let reason = if st.in_flight >= limit {
            Some("ConcurrentInvocationLimitExceeded")
        } else {
            match req.reserved_concurrency {
                Some(r) if running >= r => Some("ReservedFunctionConcurrentInvocationLimitExceeded"),
                Some(_) => None,
                None => {
                    let unreserved = u64::from(limit).saturating_sub(req.total_reserved_concurrency);
                    (u64::from(st.unreserved_in_flight) >= unreserved).then_some("ConcurrentInvocationLimitExceeded")
                }
            }
        };
        if let Some(reason) = reason {
            drop(st);
            self.metrics.throttle(function);
            return Err(ApiError::Throttled { reason });
        }
        st.in_flight += 1;
        let reserved = req.reserved_concurrency.is_some();
        if !reserved {
            st.unreserved_in_flight += 1;
        }
        *st.per_function.entry(function.clone()).or_default() += 1;
        Ok(Admission {
            inner: Arc::clone(self),
            function: function.clone(),
            reserved,
        })
    }

    /// The most recently used idle sandbox of the pool, thawed.
    async fn take_idle(self: &Arc<Self>, key: &str) -> Option<Worker> {
        loop {
            let idle = self.lock().pools.get_mut(key)?.pop()?;
            let mut w = idle.worker;
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
                    tracing::warn!(error = %e, "thawing a sandbox failed; replacing it");
                    w.sandbox = Some(sandbox);
                    self.retire(w, false);
                }
                Err(_) => self.retire(w, false),
            }
        }
    }

    /// Room for `memory_mb` more, evicting idle sandboxes least recently
    /// used first, then waiting a while; the uid slot of the new sandbox.
    async fn reserve(self: &Arc<Self>, memory_mb: u32, function: &str) -> Result<u32, ApiError> {
        let need = u64::from(memory_mb);
        let capacity = self.config.memory_capacity_mb;
        let give_up = Instant::now() + self.config.capacity_wait;
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let mut evicted = Vec::new();
            {
                let mut st = self.lock();
                while st.memory_mb + need > capacity {
                    match st.pop_lru() {
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
            }
            let waiting_on_eviction = !evicted.is_empty();
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

    fn release(&self, memory_mb: u32, slot: u32) {
        {
            let mut st = self.lock();
            st.live -= 1;
            st.memory_mb -= u64::from(memory_mb);
            st.slots.free(slot);
        }
        self.freed.notify_waiters();
    }

    /// Creates a sandbox and waits for its runtime's first `/next`.
    async fn cold_start(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        mut tail: Option<&mut Vec<u8>>,
    ) -> Result<Cold, ApiError> {
        let memory_mb = req.function.spec.memory_size;
        let slot = self.reserve(memory_mb, &req.function.name).await?;
        let start = Instant::now();
        let deadline = start + self.config.init_timeout;
        let worker = match self.create_before(req, key, slot, start, deadline).await {
            Ok(w) => w,
            Err(failure) => {
                self.release(memory_mb, slot);
                return Ok(Cold::Failed(None, failure));
            }
        };
        let mut w = worker;
        let failure = loop {
            match w.next_event(deadline, tail.as_deref_mut()).await {
                Event::Msg(FromInit::Ready) => {
                    let init = start.elapsed();
                    w.init_duration = Some(init);
                    self.metrics.cold_start(&req.function.name, init);
                    return Ok(Cold::Ready(Box::new(w)));
                }
                Event::Msg(FromInit::InitError { error_type, body }) => {
                    break (body, format!("Status: error\tError Type: {error_type}"));
                }
                Event::Msg(FromInit::Exited { status }) => break self.exit_failure(req, &status),
                Event::Closed => {
                    let status = self.destroy_now(&mut w).await;
                    break self.exit_failure(req, &status);
                }
                Event::Deadline => break self.init_timed_out(req),
                Event::Msg(_) => continue,
            }
        };
        w.drain_output(tail);
        let init = start.elapsed();
        self.metrics.cold_start(&req.function.name, init);
        let lines = format!(
            "INIT_REPORT Init Duration: {:.2} ms\tPhase: init\t{}\t\n",
            init.as_secs_f64() * 1000.0,
            failure.1
        );
        let failure = InitFailure {
            body: failure.0,
            lines,
            init,
        };
        Ok(Cold::Failed(Some(Box::new(w)), failure))
    }

    /// [`Self::create`], bounded by the init deadline counted from the
    /// request: a spawner busy elsewhere must not stretch a cold start past
    /// it. A sandbox made after the deadline is destroyed when its handle drops.
    async fn create_before(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        slot: u32,
        start: Instant,
        deadline: Instant,
    ) -> Result<Worker, InitFailure> {
        let body = match tokio::time::timeout_at(deadline, self.create(req, key, slot)).await {
            Ok(Ok(w)) => return Ok(w),
            Ok(Err(message)) => {
                tracing::warn!(function = %req.function.name, error = %message, "cannot create a sandbox");
                caller_error("Sandbox.Failure", &message)
            }
            Err(_) => {
                tracing::warn!(function = %req.function.name, "no sandbox before the init deadline");
                self.init_timed_out(req).0
            }
        };
        Err(InitFailure {
            body,
            lines: String::new(),
            init: start.elapsed(),
        })
    }

    fn init_timed_out(&self, req: &InvokeRequest) -> (Vec<u8>, String) {
        let secs = self.config.init_timeout.as_secs_f64();
        let message = format!(
            "RequestId: {} Error: Init timed out after {secs:.2} seconds",
            req.request_id
        );
        (caller_error("Sandbox.Timedout", &message), "Status: timeout".to_owned())
    }

    fn exit_failure(&self, req: &InvokeRequest, status: &str) -> (Vec<u8>, String) {
        let message = format!(
            "RequestId: {} Error: Runtime exited with error: {status}",
            req.request_id
        );
        (
            caller_error("Runtime.ExitError", &message),
            "Status: error\tError Type: Runtime.ExitError".to_owned(),
        )
    }

    /// The sandbox, its socket and its output pipe, through the spawner.
    async fn create(self: &Arc<Self>, req: &InvokeRequest, key: &str, slot: u32) -> Result<Worker, String> {
        let runtime = spec::runtime_of(req);
        let runtime_dir = self.config.runtimes_dir.join(&runtime);
        let runtime_dir = std::fs::canonicalize(&runtime_dir)
            .map_err(|e| format!("runtime {runtime} is not installed ({}): {e}", runtime_dir.display()))?;
        let version = req.executed_version.to_string();
        let (stream, file) = logs::stream_names(&version);
        let log_dir = self.config.data_dir.join("logs").join(&req.function.name);
        let sandbox_spec = spec::build(&spec::SpecInput {
            req,
            runtime_dir,
            lamb_exe: &self.config.lamb_exe,
            slot,
            log_stream: &stream,
            ctx: &self.config.ctx,
            filesystems: &self.config.filesystems,
            user_namespace: self.config.user_namespaces,
        });
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
        let (out_read, out_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
        let err_write = out_write.try_clone().map_err(|e| format!("dup: {e}"))?;
        let io = SandboxIo {
            stdin: None,
            stdout: Some(out_write),
            stderr: Some(err_write),
            extra_fds: vec![theirs.into()],
        };
        let spawner = self.spawner.clone();
        let sandbox = tokio::task::spawn_blocking(move || spawner.create(&sandbox_spec, io))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        let log = LogStream::open(log_dir, file);
        Worker::new(
            sandbox,
            ours,
            out_read,
            log,
            slot,
            req.function.spec.memory_size,
            key.to_owned(),
        )
        .map_err(|e| e.to_string())
    }

    fn init_failed(
        self: &Arc<Self>,
        w: Option<Box<Worker>>,
        req: &InvokeRequest,
        failure: InitFailure,
        mut tail: Option<Vec<u8>>,
    ) -> InvokeResponse {
        let id = &req.request_id;
        if let Some(mut w) = w {
            let max = w
                .sandbox
                .as_ref()
                .and_then(|s| s.stats().ok())
                .map_or(0, |s| s.memory_peak_bytes);
            w.platform(&failure.lines, tail.as_mut());
            let version = req.executed_version.to_string();
            w.platform(&logs::start_line(id, &version), tail.as_mut());
            w.platform(&logs::end_line(id), tail.as_mut());
            let report = logs::report_line(id, failure.init, w.memory_mb, max, Some(failure.init));
            w.platform(&report, tail.as_mut());
            self.retire(*w, false);
        }
        self.metrics.invocation(&req.function.name, failure.init, true);
        unhandled(failure.body, tail)
    }

    /// Hands the event to a ready sandbox and waits for the answer.
    async fn run(self: &Arc<Self>, mut w: Worker, req: &InvokeRequest, mut tail: Option<Vec<u8>>) -> InvokeResponse {
        let id = &req.request_id;
        let version = req.executed_version.to_string();
        w.platform(&logs::start_line(id, &version), tail.as_mut());
        let timeout_s = req.function.spec.timeout;
        let timeout = Duration::from_secs(u64::from(timeout_s));
        let start = Instant::now();
        let invoke = ToInit::Invoke(Invoke {
            request_id: id.clone(),
            deadline_ms: epoch_ms() + timeout.as_millis() as u64,
            invoked_function_arn: req.invoked_function_arn.clone(),
            trace_id: trace_id(),
            client_context: req.client_context.clone(),
            cognito_identity: None,
            payload: req.payload.clone(),
        });
        let outcome = if w.send(&invoke).await.is_err() {
            Outcome::Crashed(None)
        } else {
            self.await_answer(&mut w, id, start + timeout, tail.as_mut()).await
        };
        let duration = start.elapsed();
        if matches!(outcome, Outcome::Timeout) {
            if let Some(s) = w.sandbox.as_mut() {
                let _ = s.kill();
            }
        }
        w.drain_output(tail.as_mut());
        let max = w
            .sandbox
            .as_ref()
            .and_then(|s| s.stats().ok())
            .map_or(0, |s| s.memory_peak_bytes);
        let (body, error, reusable, extra) = match outcome {
            Outcome::Response(body) => (body, false, true, None),
            Outcome::Error(body) => (body, true, true, None),
            Outcome::Crashed(status) => {
                let status = match status {
                    Some(s) => s,
                    None => self.destroy_now(&mut w).await,
                };
                w.platform(&logs::exit_lines(id, &status), tail.as_mut());
                let message = format!("RequestId: {id} Error: Runtime exited with error: {status}");
                (caller_error("Runtime.ExitError", &message), true, false, None)
            }
            Outcome::Timeout => {
                let message = format!("RequestId: {id} Error: Task timed out after {timeout_s}.00 seconds");
                let body = caller_error("Sandbox.Timedout", &message);
                (body, true, false, Some(logs::timeout_line(id, timeout_s)))
            }
        };
        w.platform(&logs::end_line(id), tail.as_mut());
        let init = w.init_duration.take();
        let report = logs::report_line(id, duration, w.memory_mb, max, init);
        w.platform(&report, tail.as_mut());
        if let Some(line) = extra {
            w.platform(&line, tail.as_mut());
        }
        self.metrics.invocation(&req.function.name, duration, error);
        if reusable {
            self.put_idle(w);
        } else {
            self.retire(w, false);
        }
        let log_tail = tail.map(|t| String::from_utf8_lossy(&t).into_owned());
        InvokeResponse {
            payload: body,
            function_error: error.then(|| "Unhandled".to_owned()),
            log_tail,
        }
    }

    async fn await_answer(
        &self,
        w: &mut Worker,
        id: &str,
        deadline: Instant,
        mut tail: Option<&mut Vec<u8>>,
    ) -> Outcome {
        loop {
            match w.next_event(deadline, tail.as_deref_mut()).await {
                Event::Msg(FromInit::Response { request_id, body }) if request_id == id => {
                    return Outcome::Response(body)
                }
                Event::Msg(FromInit::Error { request_id, body, .. }) if request_id == id => {
                    return Outcome::Error(body)
                }
                Event::Msg(FromInit::Exited { status }) => return Outcome::Crashed(Some(status)),
                Event::Closed => return Outcome::Crashed(None),
                Event::Deadline => return Outcome::Timeout,
                Event::Msg(_) => continue,
            }
        }
    }

    fn put_idle(self: &Arc<Self>, w: Worker) {
        let mut st = self.lock();
        if st.closed {
            drop(st);
            self.retire(w, true);
            return;
        }
        st.pools.entry(w.key.clone()).or_default().push(Idle {
            worker: w,
            since: Instant::now(),
        });
    }

    /// Destroys the sandbox in the background.
    fn retire(self: &Arc<Self>, w: Worker, graceful: bool) {
        let inner = Arc::clone(self);
        tokio::spawn(async move { inner.destroy(w, graceful).await });
    }

    /// Kills and destroys the sandbox now; how its first process ended.
    async fn destroy_now(&self, w: &mut Worker) -> String {
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
    pub(super) async fn destroy(self: Arc<Self>, mut w: Worker, graceful: bool) {
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
            w.shutdown(SHUTDOWN_WAIT).await;
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
            {
                let mut st = self.lock();
                if st.closed {
                    return;
                }
                for pool in st.pools.values_mut() {
                    let mut i = 0;
                    while i < pool.len() {
                        let idle_for = now - pool[i].since;
                        if idle_for >= self.config.idle_ttl {
                            expired.push(pool.remove(i).worker);
                        } else if !pool[i].worker.frozen && idle_for >= self.config.freeze_grace {
                            to_freeze.push(pool.remove(i));
                        } else {
                            i += 1;
                        }
                    }
                }
                st.pools.retain(|_, v| !v.is_empty());
                st.freezing += to_freeze.len();
            }
            for w in expired {
                self.retire(w, true);
            }
            if !to_freeze.is_empty() {
                self.freeze(to_freeze).await;
            }
        }
    }

    async fn freeze(self: &Arc<Self>, batch: Vec<Idle>) {
        let n = batch.len();
        let frozen = tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|mut idle| {
                    if let Some(s) = idle.worker.sandbox.as_mut() {
                        idle.worker.frozen = s.freeze().is_ok();
                    }
                    idle
                })
                .collect::<Vec<_>>()
        })
        .await;
        let mut st = self.lock();
        st.freezing -= n;
        let Ok(frozen) = frozen else { return };
        if st.closed {
            drop(st);
            for idle in frozen {
                self.retire(idle.worker, true);
            }
            return;
        }
        for idle in frozen {
            let pool = st.pools.entry(idle.worker.key.clone()).or_default();
            // Keep the pool ordered by last use: the frozen ones are older
            // than any sandbox returned meanwhile.
            let at = pool.iter().position(|i| i.since > idle.since).unwrap_or(pool.len());
            pool.insert(at, idle);
        }
    }
}

/// Go's wording of an exit, as the sandbox crate prints it.
fn exit_status(exit: Exit) -> String {
    exit.to_string()
}
