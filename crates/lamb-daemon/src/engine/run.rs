//! One invocation from admission to answer: admission, a sandbox from the
//! pool or a cold start, the exchange with `lamb init` (the event out, the
//! answer back within the function's timeout), the log lines, and the
//! sandbox back to the pool or retired.

use super::admission::Admission;
use super::cold_start::{Cold, Phase};
use super::live::{Event, LiveSandbox};
use super::platform::{Platform, Report, Status};
use super::Inner;
use crate::error::ApiError;
use crate::invoker::{InvokeRequest, InvokeResponse, LogType, StreamPart, StreamSink};
use lamb_protocol::errors::caller_error;
use lamb_protocol::init::{FromInit, Invoke, ShutdownReason, ToInit, MAX_RESPONSE};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

enum Outcome {
    Response(Vec<u8>),
    /// The function's error; `true` when the sandbox is still good (an
    /// extension's failure, `Extension.*`, ends it).
    Error(Vec<u8>, bool),
    /// The runtime ended; its status if init said it.
    Crashed(Option<String>),
    Timeout,
}

pub fn pool_key(req: &InvokeRequest) -> String {
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

/// What a cold start used up, replaced after its answer.
enum Refill {
    /// A snapshot of the version's SnapStart pool.
    Snapshot,
    /// A pre-initialised sandbox of this runtime's pool.
    Prewarmed(String),
}

impl Inner {
    pub(super) async fn invoke(self: Arc<Self>, req: InvokeRequest) -> Result<InvokeResponse, ApiError> {
        let entered = Instant::now();
        let key = pool_key(&req);
        let (admission, provisioned) = self.admit(&req, &key)?;
        let tail = (req.log_type == LogType::Tail).then(Vec::new);
        let timeout = std::time::Duration::from_secs(u64::from(req.function.spec.timeout));
        let idle = match provisioned {
            Some(w) if w.credentials_fresh_for(timeout, time::OffsetDateTime::now_utc()) => Some(w),
            Some(stale) => {
                // Its session would expire mid-invocation: a fresh one
                // replaces it (`retire` refills the target), this call
                // runs elsewhere.
                self.retire(stale, true);
                self.take_idle(&key, timeout).await
            }
            None => self.take_idle(&key, timeout).await,
        };
        // What a cold start uses (a pre-initialised sandbox, a snapshot)
        // is replaced once the caller has its answer: a runtime or an init
        // starting beside the cold start would take a core from it.
        let refill = match &idle {
            Some(_) => None,
            None if super::snapstart::applies(&req) => Some(Refill::Snapshot),
            None => super::prewarm::eligible(&self.config, &req).map(Refill::Prewarmed),
        };
        let cold = idle.is_none();
        let answer = self.start_and_run(&req, &key, idle, tail, admission, entered).await;
        if cold {
            self.start_over();
        }
        match refill {
            Some(Refill::Snapshot) => self.refill_snapshots(&key),
            Some(Refill::Prewarmed(pool_key)) => self.refill_prewarmed(pool_key),
            None => {}
        }
        answer
    }

    /// The invocation on `idle`, or else on a sandbox started for it.
    async fn start_and_run(
        self: &Arc<Self>,
        req: &InvokeRequest,
        key: &str,
        idle: Option<LiveSandbox>,
        mut tail: Option<Vec<u8>>,
        admission: Admission,
        entered: Instant,
    ) -> Result<InvokeResponse, ApiError> {
        let live = match idle {
            Some(w) => w,
            None if super::snapstart::applies(req) => match self.restored(req, key, tail.as_mut()).await? {
                Cold::Ready(w) => {
                    let restored = entered.elapsed();
                    let out = self.run(*w, req, tail, admission).await;
                    // The rest of the restored call's breakdown
                    // (docs/benchmarks.md, "SnapStart"); the restore's own
                    // steps are logged by `snapstart::restore_phase`.
                    tracing::debug!(
                        function = %req.function.name,
                        until_restored_us = restored.as_micros() as u64,
                        answered_us = entered.elapsed().as_micros() as u64,
                        "snapstart: restored invocation answered"
                    );
                    return Ok(out);
                }
                Cold::Failed(w, failure) => return Ok(self.init_failed(w, req, failure, tail)),
            },
            None => match self.cold_start(req, key, tail.as_mut(), Phase::Init).await? {
                Cold::Ready(w) => {
                    let ready = entered.elapsed();
                    let out = self.run(*w, req, tail, admission).await;
                    // The end of a cold start's breakdown (docs/benchmarks.md,
                    // "The static function's cold start"); its steps up to
                    // ready are logged by `cold_start`.
                    tracing::debug!(
                        function = %req.function.name,
                        ready_us = ready.as_micros() as u64,
                        answered_us = entered.elapsed().as_micros() as u64,
                        "cold start: answered"
                    );
                    return Ok(out);
                }
                Cold::Failed(w, failure) if failure.timed_out => {
                    self.init_suppressed(key, w, failure, tail.as_mut()).await;
                    match self.cold_start(req, key, tail.as_mut(), Phase::Invoke).await? {
                        Cold::Ready(w) => *w,
                        Cold::Failed(w, failure) => return Ok(self.init_failed(w, req, failure, tail)),
                    }
                }
                Cold::Failed(w, failure) => return Ok(self.init_failed(w, req, failure, tail)),
            },
        };
        Ok(self.run(live, req, tail, admission).await)
    }

    /// Hands the event to a ready sandbox and waits for the answer.
    async fn run(
        self: &Arc<Self>,
        mut w: LiveSandbox,
        req: &InvokeRequest,
        mut tail: Option<Vec<u8>>,
        admission: Admission,
    ) -> InvokeResponse {
        let id = &req.request_id;
        let version = req.executed_version.to_string();
        let platform = Platform::of(&req.function.spec.logging_config);
        w.platform(&platform.start(id, &version), tail.as_mut());
        let timeout_s = req.function.spec.timeout;
        let timeout = Duration::from_secs(u64::from(timeout_s));
        // After a suppressed init the invocation began with the retried
        // init, which its timeout and Duration cover.
        let start = w.invoke_began.take().unwrap_or_else(Instant::now);
        let left = (start + timeout).saturating_duration_since(Instant::now());
        let invoke = ToInit::Invoke(Invoke {
            request_id: id.clone(),
            deadline_ms: epoch_ms() + left.as_millis() as u64,
            invoked_function_arn: req.invoked_function_arn.clone(),
            trace_id: trace_id(),
            client_context: req.client_context.clone(),
            cognito_identity: None,
            payload: req.payload.clone(),
        });
        let deadline = start + timeout;
        let mut relay = Relay::new(req.stream.clone());
        let (outcome, held) = if w.send(&invoke).await.is_err() {
            (Outcome::Crashed(None), false)
        } else {
            self.await_answer(&mut w, id, deadline, tail.as_mut(), &mut relay).await
        };
        let outcome = relay.outcome(outcome);
        match outcome {
            // Extensions still hold the invocation: the caller has its
            // answer now, as on Lambda; the invocation (its END, REPORT and
            // the sandbox's return) completes when they are back in next.
            Outcome::Response(body) if held => self.answer_early(w, req, start, (body, false), tail, admission),
            Outcome::Error(body, true) if held => self.answer_early(w, req, start, (body, true), tail, admission),
            outcome => self.conclude(w, req, start, outcome, tail).await,
        }
    }

    /// Answers the caller with what the runtime posted and completes the
    /// invocation in the background, within the function's timeout; the
    /// invocation counts in the concurrency until then, as on Lambda.
    fn answer_early(
        self: &Arc<Self>,
        mut w: LiveSandbox,
        req: &InvokeRequest,
        start: Instant,
        (body, error): (Vec<u8>, bool),
        mut tail: Option<Vec<u8>>,
        admission: Admission,
    ) -> InvokeResponse {
        w.drain_output(tail.as_mut());
        let inner = Arc::clone(self);
        let req = req.clone();
        tokio::spawn(async move {
            let deadline = start + Duration::from_secs(u64::from(req.function.spec.timeout));
            let answered = if error {
                Outcome::Error(Vec::new(), true)
            } else {
                Outcome::Response(Vec::new())
            };
            let outcome = inner
                .await_completion(&mut w, &req.request_id, deadline)
                .await
                .unwrap_or(answered);
            inner.conclude(w, &req, start, outcome, None).await;
            drop(admission);
        });
        InvokeResponse {
            payload: body,
            function_error: error.then(|| "Unhandled".to_owned()),
            log_tail: tail.map(|t| String::from_utf8_lossy(&t).into_owned()),
        }
    }

    /// The invocation's end: the log's END and REPORT, the metrics, the
    /// sandbox back to the pool or retired, and the caller's answer.
    async fn conclude(
        self: &Arc<Self>,
        mut w: LiveSandbox,
        req: &InvokeRequest,
        start: Instant,
        outcome: Outcome,
        mut tail: Option<Vec<u8>>,
    ) -> InvokeResponse {
        let id = &req.request_id;
        let timeout_s = req.function.spec.timeout;
        let platform = Platform::of(&req.function.spec.logging_config);
        let duration = start.elapsed();
        let max = w.sandbox.as_ref().and_then(|s| s.memory_peak_bytes().ok()).unwrap_or(0);
        // Init's `platform.report` takes the cgroup's peak, as REPORT does;
        // before a timeout's shutdown, whose phase sends that record.
        let numbers = ToInit::Report {
            request_id: id.clone(),
            max_memory_used_mb: super::logs::used_mb(max),
        };
        if !matches!(outcome, Outcome::Crashed(_)) {
            let _ = w.send(&numbers).await;
        }
        if matches!(outcome, Outcome::Timeout) {
            // The extensions get their SHUTDOWN (reason `timeout`); init
            // returns at once when none registered for it.
            w.shutdown(ShutdownReason::Timeout, super::pool::SHUTDOWN_WAIT).await;
            if let Some(s) = w.sandbox.as_mut() {
                let _ = s.kill();
            }
        }
        w.drain_output(tail.as_mut());
        let status = match outcome {
            Outcome::Response(_) => Status::Success,
            Outcome::Error(..) => Status::Error(None),
            Outcome::Crashed(_) => Status::Failure("Runtime.ExitError"),
            Outcome::Timeout => Status::Timeout,
        };
        let (body, error, reusable, extra) = match outcome {
            Outcome::Response(body) => (body, false, true, None),
            Outcome::Error(body, reusable) => (body, true, reusable, None),
            Outcome::Crashed(status) => {
                let status = match status {
                    Some(s) => s,
                    None => self.destroy_now(&mut w).await,
                };
                w.platform(&platform.runtime_exit(id, &status), tail.as_mut());
                let message = format!("RequestId: {id} Error: Runtime exited with error: {status}");
                (caller_error("Runtime.ExitError", &message), true, false, None)
            }
            Outcome::Timeout => {
                let message = format!("RequestId: {id} Error: Task timed out after {timeout_s}.00 seconds");
                let body = caller_error("Sandbox.Timedout", &message);
                (body, true, false, Some(platform.timeout(id, timeout_s)))
            }
        };
        w.platform(&platform.end(id, duration, status), tail.as_mut());
        let report = Report {
            request_id: id,
            duration,
            memory_mb: w.memory_mb,
            max_memory_bytes: max,
            init: w.init_duration.take(),
            restore: w.restore_duration.take(),
            status,
        };
        w.platform(&platform.report(&report), tail.as_mut());
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

    /// Waits for the runtime's answer; `true` with it when extensions
    /// still hold the invocation (init said `Held`).
    async fn await_answer(
        &self,
        w: &mut LiveSandbox,
        id: &str,
        deadline: Instant,
        mut tail: Option<&mut Vec<u8>>,
        relay: &mut Relay,
    ) -> (Outcome, bool) {
        let mut held = false;
        loop {
            let outcome = match w.next_event(deadline, tail.as_deref_mut()).await {
                Event::Msg(FromInit::Held { request_id }) if request_id == id => {
                    held = true;
                    continue;
                }
                Event::Msg(FromInit::StreamBegin {
                    request_id,
                    content_type,
                }) if request_id == id => {
                    relay.pass(StreamPart::Begin { content_type }, deadline).await;
                    continue;
                }
                Event::Msg(FromInit::StreamChunk { request_id, bytes }) if request_id == id => {
                    relay.pass(StreamPart::Chunk(bytes), deadline).await;
                    continue;
                }
                Event::Msg(FromInit::Response { request_id, body }) if request_id == id => Outcome::Response(body),
                Event::Msg(FromInit::Error {
                    request_id,
                    body,
                    error_type,
                }) if request_id == id => Outcome::Error(body, !error_type.starts_with("Extension.")),
                Event::Msg(FromInit::Exited { status }) => Outcome::Crashed(Some(status)),
                Event::Closed => Outcome::Crashed(None),
                Event::Deadline => Outcome::Timeout,
                Event::Msg(_) => continue,
            };
            return (outcome, held);
        }
    }

    /// After a held answer, waits for init's `Complete`: `None` then, else
    /// what ended the invocation instead (an extension's failure, the
    /// runtime's end, the timeout).
    async fn await_completion(&self, w: &mut LiveSandbox, id: &str, deadline: Instant) -> Option<Outcome> {
        loop {
            return Some(match w.next_event(deadline, None).await {
                Event::Msg(FromInit::Complete { request_id }) if request_id == id => return None,
                Event::Msg(FromInit::Error { request_id, body, .. }) if request_id == id => Outcome::Error(body, false),
                Event::Msg(FromInit::Exited { status }) => Outcome::Crashed(Some(status)),
                Event::Closed => Outcome::Crashed(None),
                Event::Deadline => Outcome::Timeout,
                Event::Msg(_) => continue,
            });
        }
    }
}

/// A streamed response on its way from init: to the caller's sink as it
/// comes, or, for a caller that takes the answer whole (Invoke, a
/// `BUFFERED` URL), gathered into the answer, up to the buffered limit.
struct Relay {
    sink: Option<StreamSink>,
    /// No sink was given: the caller takes the stream whole. (A caller
    /// that goes away leaves no sink, and nothing to gather for.)
    gather: bool,
    /// The runtime streamed (init said `StreamBegin`).
    began: bool,
    gathered: Vec<u8>,
    too_large: bool,
}

impl Relay {
    fn new(sink: Option<StreamSink>) -> Relay {
        Relay {
            gather: sink.is_none(),
            sink,
            began: false,
            gathered: Vec::new(),
            too_large: false,
        }
    }

    /// Hands one piece on. A caller that went away, or does not take the
    /// piece before the function's deadline, gets no more: the function
    /// runs on to its own end, as on Lambda.
    async fn pass(&mut self, part: StreamPart, deadline: Instant) {
        if let StreamPart::Begin { .. } = part {
            self.began = true;
        }
        match (&self.sink, part) {
            (Some(sink), part) => {
                if !matches!(tokio::time::timeout_at(deadline, sink.send(part)).await, Ok(Ok(()))) {
                    self.sink = None;
                }
            }
            (None, StreamPart::Chunk(bytes)) if self.gather && !self.too_large => {
                if self.gathered.len() + bytes.len() > MAX_RESPONSE {
                    self.too_large = true;
                    self.gathered = Vec::new();
                } else {
                    self.gathered.extend_from_slice(&bytes);
                }
            }
            (None, _) => {}
        }
    }

    /// The answer as its caller gets it: a gathered stream's bytes are the
    /// payload of its (empty) response, or too many for it.
    fn outcome(&mut self, outcome: Outcome) -> Outcome {
        match outcome {
            Outcome::Response(body) if self.began && body.is_empty() && self.gather => {
                if self.too_large {
                    let message =
                        format!("Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).");
                    Outcome::Error(caller_error("Function.ResponseSizeTooLarge", &message), true)
                } else {
                    Outcome::Response(std::mem::take(&mut self.gathered))
                }
            }
            outcome => outcome,
        }
    }
}
