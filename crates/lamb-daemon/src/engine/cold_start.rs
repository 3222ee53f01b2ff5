//! A cold start: a uid slot and memory from the pool, a sandbox from the
//! launcher, and the wait for its runtime's first `/next`; and the answer
//! and log lines of one that failed.

use super::live::{Event, LiveSandbox};
use super::logs::{self, LogStream};
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

/// How a cold start ended, when it did not end ready.
pub(super) struct InitFailure {
    body: Vec<u8>,
    /// Platform lines for the log.
    lines: String,
    init: Duration,
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

impl Inner {
    /// Creates a sandbox and waits for its runtime's first `/next`.
    pub(super) async fn cold_start(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        mut tail: Option<&mut Vec<u8>>,
    ) -> Result<Cold, ApiError> {
        let memory_mb = req.function.spec.memory_size;
        let slot = self.reserve(memory_mb, &req.function.name).await?;
        let start = Instant::now();
        let deadline = start + self.config.init_timeout;
        let mut w = match self.create_before(req, key, slot, start, deadline).await {
            Ok(w) => w,
            Err(failure) => {
                self.release(memory_mb, slot);
                return Ok(Cold::Failed(None, failure));
            }
        };
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
    ) -> Result<LiveSandbox, InitFailure> {
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
    async fn create(self: &Arc<Self>, req: &InvokeRequest, key: &str, slot: u32) -> Result<LiveSandbox, String> {
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
        let launcher = Arc::clone(&self.launcher);
        let sandbox = tokio::task::spawn_blocking(move || launcher.create(&sandbox_spec, io))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| Chain(&e).to_string())?;
        let log = LogStream::open(log_dir, file);
        LiveSandbox::new(
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

    pub(super) fn init_failed(
        self: &Arc<Self>,
        w: Option<Box<LiveSandbox>>,
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
}
