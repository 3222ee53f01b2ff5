//! A cold start: a uid slot and memory from the pool, a sandbox from the
//! launcher, and the wait for its runtime's first `/next`; and the answer
//! and log lines of one that failed.
//!
//! Init runs with a full core's quota and weight at least
//! (`CpuLimit::during_init`), whatever the memory, as Lambda's does; the
//! memory-proportional quota and weight are set when
//! init says the runtime asked for its first event, before the event is
//! handed over. An init past the 10 s limit is tried once more within the
//! first invocation, under the function's timeout: Lambda's "suppressed
//! init" ([`Phase::Invoke`]).

use super::live::{Event, LiveSandbox};
use super::logs::{self, LogStream};
use super::platform::{InitStart, Platform, Report, Status};
use super::{spec, Inner};
use crate::error::ApiError;
use crate::invoker::InvokeRequest;
use crate::invoker::InvokeResponse;
use lamb_protocol::errors::{caller_error, Chain};
use lamb_protocol::init::FromInit;
use lamb_sandbox::SandboxIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The Lambda phase an init runs in, which bounds it and names it in
/// `INIT_REPORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// A cold start's own Init, limited to the init timeout.
    Init,
    /// The retry of an Init that timed out, within the first invocation and
    /// limited to the function's timeout.
    Invoke,
    /// The Init of a provisioned concurrency sandbox, ahead of any
    /// invocation: Lambda's limit for those (130 s, or the function's
    /// timeout when longer), and no Init Duration in a REPORT.
    Provisioned,
    /// The Init of a SnapStart snapshot (`super::snapstart`): as
    /// provisioned, with `snap-start` as its initialization type. `ahead`:
    /// a pool's refill, which no caller waits on (it runs at
    /// `snapstart::SNAPSHOT_WEIGHT`); else an invocation's own.
    SnapStart { ahead: bool },
}

/// Lambda's Init limit for provisioned concurrency (or the function's
/// timeout, when longer).
const PROVISIONED_INIT_LIMIT: Duration = Duration::from_secs(130);

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Init | Phase::Provisioned | Phase::SnapStart { .. } => "init",
            Phase::Invoke => "invoke",
        }
    }

    /// `AWS_LAMBDA_INITIALIZATION_TYPE` and `initializationType`.
    pub(super) fn initialization_type(self) -> &'static str {
        match self {
            Phase::Provisioned => "provisioned-concurrency",
            Phase::SnapStart { .. } => "snap-start",
            Phase::Init | Phase::Invoke => "on-demand",
        }
    }
}

/// How a cold start ended, when it did not end ready.
pub(super) struct InitFailure {
    body: Vec<u8>,
    /// Platform lines for the log.
    lines: String,
    init: Duration,
    phase: Phase,
    /// The deadline passed: an Init-phase failure of this kind is retried.
    pub(super) timed_out: bool,
}

impl InitFailure {
    /// A SnapStart restore that did not end ready after `took`: the
    /// invocation fails as with a failed init, without an Init Duration.
    pub(super) fn restore(body: Vec<u8>, took: Duration) -> InitFailure {
        InitFailure {
            body,
            lines: String::new(),
            init: took,
            phase: Phase::SnapStart { ahead: false },
            timed_out: false,
        }
    }
}

/// A cold start that did not end ready; the sandbox, if one was made, for
/// its log.
pub(super) enum Cold {
    Ready(Box<LiveSandbox>),
    Failed(Option<Box<LiveSandbox>>, InitFailure),
}

fn unhandled(body: Vec<u8>, tail: Option<Vec<u8>>) -> InvokeResponse {
    InvokeResponse {
        payload: body,
        function_error: Some("Unhandled".into()),
        log_tail: tail.map(|t| String::from_utf8_lossy(&t).into_owned()),
    }
}

/// The answer to an init that did not end ready, and its error type
/// (`None`: it timed out).
type InitEnd = (Vec<u8>, Option<String>);

/// The record Lambda logs for an init that did not end ready.
fn init_report(req: &InvokeRequest, init: Duration, phase: Phase, error_type: Option<&str>) -> String {
    let status = match error_type {
        None => Status::Timeout,
        Some(t) => Status::Error(Some(t)),
    };
    Platform::of(&req.function.spec.logging_config).init_report(init, phase.name(), phase.initialization_type(), status)
}

impl Inner {
    /// Creates a sandbox and waits for its runtime's first `/next`, within
    /// `phase`'s limit.
    pub(super) async fn cold_start(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        mut tail: Option<&mut Vec<u8>>,
        phase: Phase,
    ) -> Result<Cold, ApiError> {
        let memory_mb = req.function.spec.memory_size;
        let slot = self.reserve(memory_mb, &req.function.name).await?;
        let start = Instant::now();
        let deadline = start + self.init_limit(req, phase);
        let mut w = match self.create_before(req, key, slot, start, deadline, phase).await {
            Ok(w) => w,
            Err(failure) => {
                self.release(memory_mb, slot);
                return Ok(Cold::Failed(None, failure));
            }
        };
        let created = start.elapsed();
        // Before the runtime's output, which the loop below reads.
        w.platform(&self.init_start(req, phase), tail.as_deref_mut());
        let failure = loop {
            match w.next_event(deadline, tail.as_deref_mut()).await {
                Event::Msg(FromInit::Ready) => {
                    let init = start.elapsed();
                    w.set_invocation_quota();
                    // Where a cold start's time goes, each figure since the
                    // uid slot and memory were reserved (docs/benchmarks.md).
                    tracing::debug!(
                        function = %req.function.name,
                        created_us = created.as_micros() as u64,
                        runtime_ready_us = init.as_micros() as u64,
                        invocation_quota_us = start.elapsed().as_micros() as u64,
                        "cold start: ready"
                    );
                    match phase {
                        Phase::Init => w.init_duration = Some(init),
                        Phase::Invoke => w.invoke_began = Some(start),
                        // Pre-initialised: its invocations report no init.
                        Phase::Provisioned | Phase::SnapStart { .. } => {}
                    }
                    self.metrics.cold_start(&req.function.name, init);
                    return Ok(Cold::Ready(Box::new(w)));
                }
                Event::Msg(FromInit::InitError { error_type, body }) => {
                    break (body, Some(error_type));
                }
                Event::Msg(FromInit::Exited { status }) => break self.exit_failure(req, &status),
                Event::Closed => {
                    let status = self.destroy_now(&mut w).await;
                    break self.exit_failure(req, &status);
                }
                Event::Deadline => break self.init_timed_out(req, phase),
                Event::Msg(_) => continue,
            }
        };
        w.drain_output(tail);
        let init = start.elapsed();
        self.metrics.cold_start(&req.function.name, init);
        let lines = init_report(req, init, phase, failure.1.as_deref());
        let failure = InitFailure {
            timed_out: failure.1.is_none(),
            body: failure.0,
            lines,
            init,
            phase,
        };
        Ok(Cold::Failed(Some(Box::new(w)), failure))
    }

    /// Tells the launcher that a cold start is over, its caller answered:
    /// the spawner's idle work (network namespaces and `/tmp` images made
    /// ahead, used ones removed) runs from now on, not beside the start.
    pub(super) fn start_over(&self) {
        let launcher = Arc::clone(&self.launcher);
        tokio::task::spawn_blocking(move || launcher.idle());
    }

    /// The `platform.initStart` record of a cold start (nothing in Text).
    fn init_start(&self, req: &InvokeRequest, phase: Phase) -> String {
        let arn = req
            .function
            .configuration(&self.config.ctx)
            .runtime_version_config
            .map(|c| c.runtime_version_arn);
        Platform::of(&req.function.spec.logging_config).init_start(&InitStart {
            phase: phase.name(),
            initialization_type: phase.initialization_type(),
            runtime: req.function.spec.runtime.as_deref(),
            runtime_version_arn: arn.as_deref(),
            function_name: &req.function.name,
            function_version: &req.executed_version.to_string(),
        })
    }

    /// How long an init in `phase` may take.
    fn init_limit(&self, req: &InvokeRequest, phase: Phase) -> Duration {
        match phase {
            Phase::Init => self.config.init_timeout,
            Phase::Invoke => Duration::from_secs(u64::from(req.function.spec.timeout)),
            Phase::Provisioned | Phase::SnapStart { .. } => {
                PROVISIONED_INIT_LIMIT.max(Duration::from_secs(u64::from(req.function.spec.timeout)))
            }
        }
    }

    /// Logs the `INIT_REPORT` of an Init that timed out to its sandbox's
    /// stream, and destroys the sandbox (its memory free again) before the
    /// retry within the invocation starts another.
    pub(super) async fn init_suppressed(
        self: &Arc<Self>,
        key: &str,
        w: Option<Box<LiveSandbox>>,
        failure: InitFailure,
        tail: Option<&mut Vec<u8>>,
    ) {
        tracing::info!(key = %key.replace('\0', "/"), "init timed out; trying it again within the invocation");
        match w {
            Some(mut w) => {
                w.platform(&failure.lines, tail);
                Arc::clone(self).destroy(*w, false).await;
            }
            // No sandbox before the deadline: no stream to log to.
            None => {
                if let Some(t) = tail {
                    logs::keep_tail(t, failure.lines.as_bytes());
                }
            }
        }
    }

    /// [`Self::create`], bounded by the init deadline counted from the
    /// request. A sandbox the spawner makes after the deadline is awaited
    /// and dropped (which destroys it) before the failure returns: its uid
    /// slot and memory are released after that, never while it lives, and
    /// a retry never races it in the spawner.
    async fn create_before(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        slot: u32,
        start: Instant,
        deadline: Instant,
        phase: Phase,
    ) -> Result<LiveSandbox, InitFailure> {
        let create = self.create(req, key, slot, phase);
        tokio::pin!(create);
        let (body, timed_out) = match tokio::time::timeout_at(deadline, &mut create).await {
            Ok(Ok(w)) => {
                self.traded(&w, slot);
                return Ok(w);
            }
            Ok(Err(message)) => {
                tracing::warn!(function = %req.function.name, error = %message, "cannot create a sandbox");
                (caller_error("Sandbox.Failure", &message), false)
            }
            Err(_) => {
                tracing::warn!(function = %req.function.name, "no sandbox before the init deadline");
                if let Ok(w) = create.await {
                    self.dropped_late(w, slot);
                }
                (self.init_timed_out(req, phase).0, true)
            }
        };
        let init = start.elapsed();
        Err(InitFailure {
            body,
            lines: if timed_out {
                init_report(req, init, phase, None)
            } else {
                String::new()
            },
            init,
            phase,
            timed_out,
        })
    }

    /// The answer to an init past its limit: Lambda's words for the Init
    /// phase's 10 s, and the invocation's timeout for a retried init.
    fn init_timed_out(&self, req: &InvokeRequest, phase: Phase) -> InitEnd {
        let id = &req.request_id;
        let message = match phase {
            Phase::Init | Phase::Provisioned | Phase::SnapStart { .. } => {
                let secs = self.init_limit(req, phase).as_secs_f64();
                format!("RequestId: {id} Error: Init timed out after {secs:.2} seconds")
            }
            Phase::Invoke => {
                let secs = req.function.spec.timeout;
                format!("RequestId: {id} Error: Task timed out after {secs}.00 seconds")
            }
        };
        (caller_error("Sandbox.Timedout", &message), None)
    }

    fn exit_failure(&self, req: &InvokeRequest, status: &str) -> InitEnd {
        let message = format!(
            "RequestId: {} Error: Runtime exited with error: {status}",
            req.request_id
        );
        (
            caller_error("Runtime.ExitError", &message),
            Some("Runtime.ExitError".to_owned()),
        )
    }

    /// A sandbox of `spec` from the launcher, with init's control socket (our
    /// end) and the read end of its output pipe: what a [`LiveSandbox`] is
    /// made of, for a cold start and a prewarmed sandbox alike.
    pub(super) async fn spawn_sandbox(
        &self,
        spec: lamb_sandbox::SandboxSpec,
    ) -> Result<
        (
            Box<dyn super::launcher::SandboxHandle>,
            std::os::unix::net::UnixStream,
            std::os::fd::OwnedFd,
        ),
        String,
    > {
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
        let launcher = Arc::clone(&self.launcher);
        let sandbox = tokio::task::spawn_blocking(move || launcher.create(&spec, io))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| Chain(&e).to_string())?;
        Ok((sandbox, ours, out_read))
    }

    /// The sandbox, its socket and its output pipe, through the spawner.
    async fn create(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        slot: u32,
        phase: Phase,
    ) -> Result<LiveSandbox, String> {
        let runtime = spec::runtime_of(req);
        let runtime_dir = self.config.runtimes_dir.join(&runtime);
        // An image is its own root: no runtime tree, but the libraries init
        // runs on.
        let is_image = req.function.spec.image.is_some();
        let image_lib = if is_image {
            Some(super::image_init::lib_dir(&self.config.data_dir)?)
        } else {
            None
        };
        let runtime_dir = if is_image {
            runtime_dir
        } else {
            std::fs::canonicalize(&runtime_dir)
                .map_err(|e| format!("runtime {runtime} is not installed ({}): {e}", runtime_dir.display()))?
        };
        let version = req.executed_version.to_string();
        let (stream, file) = logs::stream_names(&version);
        let log_dir = self.config.data_dir.join("logs").join(&req.function.name);
        let credentials = self.config.sessions.as_ref().map(|s| {
            let arn = self.config.ctx.function_arn(&req.function.name);
            s.mint(&arn, &req.function.spec.role, time::OffsetDateTime::now_utc())
        });
        let mut sandbox_spec = spec::build(&spec::SpecInput {
            req,
            runtime_dir,
            lamb_exe: &self.config.lamb_exe,
            slot,
            log_stream: &stream,
            ctx: &self.config.ctx,
            filesystems: &self.config.filesystems,
            user_namespace: self.config.user_namespaces,
            credentials: credentials.as_ref(),
            lambda_endpoint: self.config.lambda_endpoint.as_deref(),
            initialization_type: phase.initialization_type(),
            image_lib,
        });
        if phase == (Phase::SnapStart { ahead: true }) {
            sandbox_spec.limits.cpu.weight = super::snapstart::SNAPSHOT_WEIGHT;
        }
        // Only on-demand starts wait on their init; provisioned and
        // SnapStart inits run ahead of any call and take the plain path.
        let on_demand = matches!(phase, Phase::Init | Phase::Invoke);
        if let Some(pool_key) = super::prewarm::eligible(&self.config, req).filter(|_| on_demand) {
            let log = LogStream::open(log_dir.clone(), file.clone());
            // The invocation refills the pool after its answer, whether
            // this start found one or not (`Inner::invoke`).
            let taken = self.take_prewarmed(&pool_key, &sandbox_spec, log).await;
            if let Some(mut live) = taken {
                live.key = key.to_owned();
                live.credentials_expire = credentials.map(|c| c.expiration);
                self.metrics.prewarmed_start(&req.function.name);
                return Ok(live);
            }
        }
        let (sandbox, ours, out_read) = self.spawn_sandbox(sandbox_spec).await?;
        let log = LogStream::open(log_dir, file);
        let mut live = LiveSandbox::new(
            sandbox,
            ours,
            out_read,
            log,
            slot,
            req.function.spec.memory_size,
            key.to_owned(),
        )
        .map_err(|e| e.to_string())?;
        live.credentials_expire = credentials.map(|c| c.expiration);
        Ok(live)
    }

    pub(super) fn init_failed(
        self: &Arc<Self>,
        w: Option<Box<LiveSandbox>>,
        req: &InvokeRequest,
        failure: InitFailure,
        mut tail: Option<Vec<u8>>,
    ) -> InvokeResponse {
        let id = &req.request_id;
        let max = w
            .as_ref()
            .and_then(|w| w.sandbox.as_ref())
            .and_then(|s| s.memory_peak_bytes().ok())
            .unwrap_or(0);
        // A retried init is part of the invocation: its time is the
        // invocation's Duration, not an Init Duration.
        let init = (failure.phase == Phase::Init).then_some(failure.init);
        let status = if failure.timed_out {
            Status::Timeout
        } else {
            Status::Error(None)
        };
        let report = Report {
            request_id: id,
            duration: failure.init,
            memory_mb: req.function.spec.memory_size,
            max_memory_bytes: max,
            init,
            restore: None,
            status,
        };
        let platform = Platform::of(&req.function.spec.logging_config);
        let lines = [
            failure.lines,
            platform.start(id, &req.executed_version.to_string()),
            platform.end(id, failure.init, status),
            platform.report(&report),
        ]
        .concat();
        match w {
            Some(mut w) => {
                w.platform(&lines, tail.as_mut());
                self.retire(*w, false);
            }
            // No sandbox, no stream: the lines go to the tail only.
            None => {
                if let Some(t) = tail.as_mut() {
                    logs::keep_tail(t, lines.as_bytes());
                }
            }
        }
        self.metrics.invocation(&req.function.name, failure.init, true);
        unhandled(failure.body, tail)
    }

    /// A provisioned sandbox's init that did not end ready: its
    /// `INIT_REPORT` to its log and the sandbox destroyed; answers the
    /// configuration's `StatusReason`.
    pub(super) fn provision_failed(self: &Arc<Self>, w: Option<Box<LiveSandbox>>, failure: InitFailure) -> String {
        tracing::warn!(
            error = %String::from_utf8_lossy(&failure.body),
            "a provisioned concurrency sandbox failed its init"
        );
        if let Some(mut w) = w {
            w.platform(&failure.lines, None);
            self.retire(*w, false);
        }
        "FUNCTION_ERROR_INIT_FAILURE".to_owned()
    }
}
