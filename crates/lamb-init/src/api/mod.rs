//! The Runtime API (`/2018-06-01/runtime/...`, spec 1.2-1.4) and the
//! Extensions API (`/2020-01-01/extension/...`, [`extensions`]) served on
//! 127.0.0.1:9001: a thread per connection, one invocation in flight,
//! `/next` blocking until the daemon sends an event.
//!
//! With extensions, Lambda's two barriers hold here: init tells the daemon
//! `Ready` only when the runtime and every extension wait in `next`, and
//! sends the runtime's answer only when every extension is back in `next`
//! (so the daemon's duration covers the extensions' work, and it freezes a
//! sandbox only when all of it waits).
//!
//! At most [`MAX_CONNECTIONS`] connections are served at once, each under
//! [`Limits`]: hostile code in the sandbox can open sockets to 9001 too.

use crate::http::{Conn, Limits, Request};
use crate::protocol::{FromInit, Invoke, MAX_RESPONSE, MAX_STREAMED, MAX_STREAM_CHUNK};
use crate::telemetry::{self, Telemetry};
use crate::Link;
use extensions::Registry;
use lamb_protocol::errors::{caller_error, error_body};
use serde_json::json;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

mod ext_routes;
pub mod extensions;

/// Connections served at once (a thread each, 256 KiB of stack). The
/// runtime needs one or two; past the cap a new connection is closed at
/// once rather than queued behind clients that may never finish.
pub const MAX_CONNECTIONS: usize = 64;

const PREFIX: &str = "/2018-06-01/runtime/";
const EXT_PREFIX: &str = "/2020-01-01/extension/";
const OK_BODY: &[u8] = br#"{"status":"OK"}"#;
const JSON: (&str, &str) = ("Content-Type", "application/json");

/// What the Runtime API knows of the invocation cycle.
#[derive(Default)]
struct Cycle {
    /// The runtime asked for work once: Init is over.
    ready: bool,
    /// An event the daemon sent that the runtime has not taken yet.
    pending: Option<Invoke>,
    /// The request id handed out and not answered yet.
    current: Option<String>,
    /// `Ready` went to the daemon: Init is over for the runtime and every
    /// extension.
    ready_sent: bool,
    /// The invocation answered while extensions still hold it (its request
    /// id and status), until every extension is back in `next`.
    held: Option<(String, &'static str)>,
    /// The daemon asked for the shutdown: exits are expected now.
    shutting_down: bool,
    ext: Registry,
    /// When the current invocation's event arrived, for the telemetry's
    /// durations.
    started: Option<Instant>,
    /// A `platform.report` record waiting for the daemon's
    /// `maxMemoryUsedMB`, and that number once it came (with its request
    /// id): the record goes out when both are here, in either order.
    report: Option<serde_json::Value>,
    peak: Option<(String, u64)>,
    /// Init's duration, taken by the first `platform.report`.
    init_ms: Option<f64>,
    /// SnapStart: where the runtime is in the restore.
    restore: Restore,
    /// When the daemon restored the sandbox: `platform.restoreReport`'s
    /// duration.
    restore_began: Option<Instant>,
}

/// A SnapStart sandbox's restore, as the Runtime API sees it.
#[derive(Default, Clone, Copy, PartialEq, Eq)]
enum Restore {
    /// Not asked for (an on-demand sandbox), or over.
    #[default]
    None,
    /// The runtime waits in `GET /runtime/restore/next` (its
    /// before-snapshot hooks ran).
    Parked,
    /// The daemon restored the sandbox: `restore/next` answers.
    Released,
    /// `restore/next` answered: the runtime runs its after-restore hooks,
    /// and its next `/invocation/next` is `Ready` for the daemon.
    Hooks,
}

pub struct Api {
    link: Arc<Link>,
    cycle: Mutex<Cycle>,
    wake: Condvar,
    /// The runtime's pid once started (0 before): what a fatal extension
    /// error kills.
    bootstrap: AtomicI32,
    pub telemetry: Arc<Telemetry>,
    /// When init began: Init's duration in `platform.initReport`.
    born: Instant,
    /// Copy the runtime's and the extensions' output that is already
    /// written to the log (when init relays it for the Telemetry API):
    /// called before an answer goes out, so the invocation's lines are in
    /// its log.
    flush: Mutex<Vec<Box<dyn Fn() + Send + Sync>>>,
    /// The function's account, from the daemon's command line: Register's
    /// `accountId`.
    account: std::sync::OnceLock<String>,
}

impl Api {
    pub fn new(link: Arc<Link>) -> Arc<Api> {
        Arc::new(Api {
            link,
            cycle: Mutex::new(Cycle::default()),
            wake: Condvar::new(),
            bootstrap: AtomicI32::new(0),
            telemetry: Telemetry::new(),
            born: Instant::now(),
            flush: Mutex::new(Vec::new()),
            account: std::sync::OnceLock::new(),
        })
    }

    /// Sets the function's account (once, before any extension registers).
    pub fn set_account(&self, account: String) {
        let _ = self.account.set(account);
    }

    /// Adds one of what `flush` documents.
    pub fn add_flush(&self, f: Box<dyn Fn() + Send + Sync>) {
        self.flush.lock().unwrap_or_else(|e| e.into_inner()).push(f);
    }

    fn lock(&self) -> MutexGuard<'_, Cycle> {
        self.cycle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an event for the runtime's `/next` and the extensions
    /// registered for INVOKE.
    pub fn deliver(&self, invoke: Invoke) {
        let mut c = self.lock();
        let event = extensions::invoke_event(
            &invoke.request_id,
            invoke.deadline_ms,
            &invoke.invoked_function_arn,
            &invoke.trace_id,
        );
        c.ext.invoke(&event);
        c.started = Some(Instant::now());
        if !self.telemetry.enabled() {
            c.pending = Some(invoke);
            self.wake.notify_all();
            return;
        }
        self.telemetry.platform(
            "platform.start",
            json!({
                "requestId": invoke.request_id,
                "version": std::env::var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_default(),
                "tracing": {"type": "X-Amzn-Trace-Id", "value": invoke.trace_id},
            }),
        );
        c.pending = Some(invoke);
        self.wake.notify_all();
    }

    /// The external extensions init started, by file name, before any of
    /// them can register.
    pub fn launched(&self, names: Vec<String>) {
        self.lock().ext.launched = names;
    }

    /// Waits until every launched extension registered; the failure that
    /// ended the wait instead, if one did.
    pub fn wait_registered(&self) -> Result<(), (String, String)> {
        let mut c = self.lock();
        while !c.ext.all_launched_registered() {
            c = self.wake.wait(c).unwrap_or_else(|e| e.into_inner());
        }
        match &c.ext.failure {
            Some(f) => Err(f.clone()),
            None => Ok(()),
        }
    }

    /// The runtime runs as `pid` from now on.
    pub fn started(&self, pid: i32) {
        self.bootstrap.store(pid, Ordering::Release);
    }

    /// Any extension registered (by the time the runtime starts: external
    /// ones only).
    pub fn has_extensions(&self) -> bool {
        !self.lock().ext.list.is_empty()
    }

    /// The daemon asked for the shutdown.
    pub fn shutting_down(&self) -> bool {
        self.lock().shutting_down
    }

    /// The runtime's pid, 0 before it starts.
    pub fn bootstrap_pid(&self) -> i32 {
        self.bootstrap.load(Ordering::Acquire)
    }

    /// An external extension's process ended: outside the shutdown, a
    /// failure of the sandbox (`Extension.Crash` and its kin).
    pub fn extension_exited(&self, name: &str, status: &str) {
        let mut c = self.lock();
        let (error_type, message) = c.ext.exited(name, status);
        if !c.shutting_down {
            self.fatal(&mut c, &error_type, message);
        }
        self.wake.notify_all();
    }

    /// Reports the first extension failure as Lambda does (an init error
    /// during Init, the invocation's error during one) and kills the
    /// runtime: the sandbox is not used again.
    fn fatal(&self, c: &mut Cycle, error_type: &str, message: String) {
        if c.ext.failure.is_some() || c.shutting_down {
            return;
        }
        c.ext.fail(error_type, message.clone());
        let body = caller_error(error_type, &message);
        if !c.ready_sent {
            self.link.send(&FromInit::InitError {
                error_type: error_type.to_owned(),
                body,
            });
        } else if let Some(request_id) = c.current.take().or_else(|| c.held.take().map(|(id, _)| id)) {
            self.link.send(&FromInit::Error {
                request_id,
                error_type: error_type.to_owned(),
                body,
            });
        }
        let pid = self.bootstrap.load(Ordering::Acquire);
        if pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Sends `Ready` once the runtime and every extension wait in `next`.
    fn check_ready(&self, c: &mut Cycle) {
        if c.ready_sent || !c.ready || c.ext.failure.is_some() {
            return;
        }
        if c.ext.all_launched_registered() && c.ext.all_idle() {
            c.ready_sent = true;
            c.ext.closed = true;
            let init_ms = ms(self.born.elapsed());
            c.init_ms = Some(init_ms);
            if c.ext.list.is_empty() {
                self.telemetry.disable();
            }
            let phase = json!({"initializationType": initialization_type(), "phase": "init", "status": "success"});
            self.telemetry.platform("platform.initRuntimeDone", phase.clone());
            let mut report = phase;
            report["metrics"] = json!({"durationMs": init_ms});
            self.telemetry.platform("platform.initReport", report);
            self.link.send(&FromInit::Ready);
        }
    }

    /// The daemon restores the sandbox: a runtime parked in
    /// `restore/next` is released; one that never parked is ready now.
    pub fn restore(&self) {
        let mut c = self.lock();
        self.telemetry.platform("platform.restoreStart", restore_start());
        c.restore_began = Some(Instant::now());
        if c.restore == Restore::Parked {
            c.restore = Restore::Released;
            self.wake.notify_all();
        } else {
            self.restore_done(&mut c, None);
            self.link.send(&FromInit::Ready);
        }
    }

    /// The restore is over: `platform.restoreRuntimeDone` and
    /// `platform.restoreReport` for the Telemetry API, as Lambda's, a
    /// success (the runtime back in `/next`) or the error type an
    /// after-restore hook failed with.
    fn restore_done(&self, c: &mut Cycle, error_type: Option<&str>) {
        let took = c.restore_began.take().map_or(0.0, |t| ms(t.elapsed()));
        let mut record = match error_type {
            None => json!({"status": "success"}),
            Some(t) => json!({"status": "error", "errorType": t}),
        };
        self.telemetry.platform("platform.restoreRuntimeDone", record.clone());
        record["metrics"] = json!({"durationMs": took});
        self.telemetry.platform("platform.restoreReport", record);
    }

    /// `GET /runtime/restore/next`: Init is over (the runtime ran its
    /// before-snapshot hooks); the call blocks until the daemon restores
    /// the sandbox, then answers 200 with an empty body, as Lambda's.
    fn restore_next(&self, conn: &mut Conn, ka: bool) -> std::io::Result<()> {
        {
            let mut c = self.lock();
            if c.ready {
                drop(c);
                let body = error_body("restore/next outside the Init phase", "Runtime.InvalidState");
                return conn.respond(403, &[JSON], &body, ka);
            }
            c.ready = true;
            c.restore = Restore::Parked;
            self.check_ready(&mut c);
            while c.restore != Restore::Released {
                c = self.wake.wait(c).unwrap_or_else(|e| e.into_inner());
            }
            c.restore = Restore::Hooks;
        }
        conn.respond(200, &[JSON], b"", ka)
    }

    /// The runtime answered: the answer goes out at once, as on Lambda. The
    /// invocation completes when every extension is back in `next`: with
    /// the answer when they already are, else at `Complete`, announced by
    /// `Held` before the answer.
    fn finish(&self, answer: FromInit) {
        let mut c = self.lock();
        let Some(id) = held_id(Some(&answer)) else { return };
        let (status, bytes) = match &answer {
            FromInit::Response { body, .. } => ("success", body.len()),
            _ => ("error", 0),
        };
        if let (true, Some(start)) = (self.telemetry.enabled(), c.started) {
            self.telemetry.platform(
                "platform.runtimeDone",
                json!({
                    "requestId": id,
                    "status": status,
                    "metrics": {"durationMs": ms(start.elapsed()), "producedBytes": bytes},
                }),
            );
        }
        self.flush_output();
        if c.ext.all_idle() {
            self.report_complete(&mut c, &id, status);
            self.link.send(&answer);
            return;
        }
        self.link.send(&FromInit::Held { request_id: id.clone() });
        self.link.send(&answer);
        c.held = Some((id, status));
    }

    /// An extension is back in `next`: the last one completes a held
    /// invocation.
    fn complete(&self, c: &mut Cycle) {
        if !c.ext.all_idle() {
            return;
        }
        let Some((id, status)) = c.held.take() else { return };
        self.flush_output();
        self.report_complete(c, &id, status);
        self.link.send(&FromInit::Complete { request_id: id });
    }

    /// Copies what is in the output pipes to the log (see `flush`).
    fn flush_output(&self) {
        for flush in self.flush.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            flush();
        }
    }

    /// `platform.report` of a completed invocation.
    fn report_complete(&self, c: &mut Cycle, id: &str, status: &str) {
        let start = c.started.take();
        if let (true, Some(start)) = (self.telemetry.enabled(), start) {
            let init_ms = c.init_ms.take();
            c.report = Some(self.report(id, status, start, init_ms));
            self.send_report(c);
        }
    }

    /// The daemon's peak memory of the sandbox for invocation `id`.
    pub fn peak_memory(&self, id: String, mb: u64) {
        let mut c = self.lock();
        if self.telemetry.enabled() {
            c.peak = Some((id, mb));
            self.send_report(&mut c);
        }
    }

    /// Sends `platform.report` once its record and the daemon's peak for
    /// the same invocation are both here.
    fn send_report(&self, c: &mut Cycle) {
        let (Some(record), Some((id, mb))) = (c.report.as_mut(), c.peak.as_ref()) else {
            return;
        };
        if record["requestId"] != id.as_str() {
            return;
        }
        record["metrics"]["maxMemoryUsedMB"] = json!(mb);
        if let Some(record) = c.report.take() {
            self.telemetry.platform("platform.report", record);
        }
        c.peak = None;
    }

    /// After a timeout, the invocation's `platform.runtimeDone` (unless the
    /// runtime answered) and `platform.report` with the status `timeout`.
    fn timed_out(&self, c: &mut Cycle, reason: &str) {
        if reason != "timeout" {
            return;
        }
        let id = c.current.clone().or_else(|| c.held.as_ref().map(|(id, _)| id.clone()));
        if let (Some(id), Some(start)) = (id, c.started.take()) {
            // A held invocation had its `platform.runtimeDone` at the answer.
            if c.current.is_some() {
                let metrics = json!({"durationMs": ms(start.elapsed()), "producedBytes": 0});
                self.telemetry.platform(
                    "platform.runtimeDone",
                    json!({"requestId": id, "status": "timeout", "metrics": metrics}),
                );
            }
            let init_ms = c.init_ms.take();
            c.report = Some(self.report(&id, "timeout", start, init_ms));
            self.send_report(c);
        }
    }

    /// `platform.report`'s record: Lambda's metrics for one invocation.
    fn report(&self, id: &str, status: &str, start: Instant, init_ms: Option<f64>) -> serde_json::Value {
        let duration = ms(start.elapsed());
        let memory: u64 = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
            .ok()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let mut metrics = json!({
            "durationMs": duration,
            "billedDurationMs": duration.ceil() as u64,
            "memorySizeMB": memory,
            "maxMemoryUsedMB": 0,
        });
        if let Some(init) = init_ms {
            metrics["initDurationMs"] = json!(init);
        }
        json!({"requestId": id, "status": status, "metrics": metrics})
    }

    /// `PUT /2022-07-01/telemetry` and `PUT /2020-08-15/logs`.
    fn subscribe(&self, conn: &mut Conn, req: &Request, api: telemetry::Api) -> std::io::Result<()> {
        let ka = req.keep_alive;
        let id = req.header("lambda-extension-identifier").unwrap_or("");
        let name = match self.lock().ext.by_id(id) {
            Some(e) => e.name.clone(),
            None => {
                let body = error_body(
                    "Invalid or missing Lambda-Extension-Identifier",
                    "Extension.UnknownExtensionIdentifier",
                );
                return conn.respond(403, &[JSON], &body, ka);
            }
        };
        match telemetry::parse(api, &req.body) {
            Ok((types, buffering, port, path)) => {
                self.telemetry.platform(
                    "platform.telemetrySubscription",
                    json!({"name": name, "state": "Subscribed", "types": types}),
                );
                self.telemetry.subscribe(&name, types, buffering, port, path);
                conn.respond(200, &[("Content-Type", "text/plain")], b"OK", ka)
            }
            Err((status, error_type, message)) => conn.respond(status, &[JSON], &error_body(&message, error_type), ka),
        }
    }

    /// Shuts down as Lambda does: SHUTDOWN to the extensions registered for
    /// it, SIGTERM to the runtime, and at most the phase's budget (2 s with
    /// external extensions, 500 ms with internal ones only, 300 ms without)
    /// for them to finish. Returns when all are done or the time is up.
    pub fn shutdown(&self, reason: &str) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let budget = {
            let c = self.lock();
            if c.ext.list.iter().any(|e| e.external) {
                Duration::from_millis(2000)
            } else if !c.ext.list.is_empty() {
                Duration::from_millis(500)
            } else {
                crate::SHUTDOWN_GRACE
            }
        };
        let deadline = Instant::now() + budget;
        let deadline_ms = crate::epoch_ms() + budget.as_millis() as u64;
        let notified = {
            let mut c = self.lock();
            c.shutting_down = true;
            self.timed_out(&mut c, reason);
            let notified = c.ext.shutdown(&extensions::shutdown_event(reason, deadline_ms));
            self.wake.notify_all();
            notified
        };
        // After a timeout or a failure the runtime is not waited for:
        // only extensions that asked for SHUTDOWN get the phase.
        if reason != "spindown" && !notified {
            return;
        }
        let pid = Pid::from_raw(self.bootstrap.load(Ordering::Acquire));
        if pid.as_raw() > 0 {
            let _ = kill(pid, Signal::SIGTERM);
        }
        while Instant::now() < deadline {
            let runtime_gone = pid.as_raw() <= 0 || kill(pid, None).is_err();
            if runtime_gone && self.lock().ext.all_idle() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Accepts connections until the process ends.
    pub fn serve(self: Arc<Self>, listener: TcpListener) {
        self.serve_with(listener, Limits::default(), MAX_CONNECTIONS);
    }

    pub(crate) fn serve_with(self: Arc<Self>, listener: TcpListener, limits: Limits, max_connections: usize) {
        let open = Arc::new(AtomicUsize::new(0));
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                // EMFILE and the like: let descriptors free up.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            };
            if open.fetch_add(1, Ordering::AcqRel) >= max_connections {
                open.fetch_sub(1, Ordering::AcqRel);
                drop(stream);
                continue;
            }
            let api = Arc::clone(&self);
            let slot = Slot(Arc::clone(&open));
            let spawned = std::thread::Builder::new()
                .name("conn".into())
                .stack_size(256 * 1024)
                .spawn(move || {
                    // The socket closes only once the slot is back: a
                    // client that sees the close may connect again at once
                    // and count on the slot (the cap stays exact).
                    let keep_open = stream.try_clone().ok();
                    api.connection(stream, limits);
                    drop(slot);
                    drop(keep_open);
                });
            if spawned.is_err() {
                continue;
            }
        }
    }

    fn connection(&self, stream: TcpStream, limits: Limits) {
        let Ok(mut conn) = Conn::new(stream, limits) else {
            return;
        };
        loop {
            let req = match conn.read_request(MAX_RESPONSE) {
                Ok(Some(r)) => r,
                Ok(None) | Err(_) => return,
            };
            let keep_alive = req.keep_alive;
            if self.handle(&mut conn, req).is_err() || !keep_alive || conn.stream_pending {
                return;
            }
        }
    }

    pub(crate) fn handle(&self, conn: &mut Conn, req: Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        let path = req.path.split('?').next().unwrap_or("");
        if let Some(rest) = path.strip_prefix(EXT_PREFIX) {
            return self.extension_api(conn, rest, &req);
        }
        match (req.method.as_str(), path) {
            ("PUT", "/2022-07-01/telemetry") => return self.subscribe(conn, &req, telemetry::Api::Telemetry),
            ("PUT", "/2020-08-15/logs") => return self.subscribe(conn, &req, telemetry::Api::Logs),
            _ => {}
        }
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return conn.respond(404, &[JSON], &error_body("Not found", "NotFound"), ka);
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["invocation", "next"]) => self.next(conn, ka),
            ("GET", ["restore", "next"]) => self.restore_next(conn, ka),
            ("POST", ["restore", "error"]) => {
                // An after-restore hook failed: the restore fails as an
                // init does.
                let error_type = error_type(&req);
                {
                    let mut c = self.lock();
                    if c.restore == Restore::Hooks {
                        c.restore = Restore::None;
                        self.restore_done(&mut c, Some(&error_type));
                    }
                }
                self.link.send(&FromInit::InitError {
                    error_type,
                    body: error_body_or(&req),
                });
                conn.respond(202, &[JSON], OK_BODY, ka)
            }
            ("POST", ["invocation", id, "response"]) => self.response(conn, id, &req),
            ("POST", ["invocation", id, "error"]) => self.error(conn, id, &req),
            ("POST", ["init", "error"]) => {
                let body = error_body_or(&req);
                self.link.send(&FromInit::InitError {
                    error_type: error_type(&req),
                    body,
                });
                conn.respond(202, &[JSON], OK_BODY, ka)
            }
            _ => conn.respond(404, &[JSON], &error_body("Not found", "NotFound"), ka),
        }
    }

    fn next(&self, conn: &mut Conn, ka: bool) -> std::io::Result<()> {
        let invoke = {
            let mut c = self.lock();
            if !c.ready {
                c.ready = true;
                self.check_ready(&mut c);
            }
            if c.restore == Restore::Hooks {
                c.restore = Restore::None;
                self.restore_done(&mut c, None);
                self.link.send(&FromInit::Ready);
            }
            loop {
                if let Some(inv) = c.pending.take() {
                    c.current = Some(inv.request_id.clone());
                    break inv;
                }
                c = self.wake.wait(c).unwrap_or_else(|e| e.into_inner());
            }
        };
        let deadline = invoke.deadline_ms.to_string();
        let mut headers = vec![
            ("Lambda-Runtime-Aws-Request-Id", invoke.request_id.as_str()),
            ("Lambda-Runtime-Deadline-Ms", deadline.as_str()),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                invoke.invoked_function_arn.as_str(),
            ),
            JSON,
        ];
        if !invoke.trace_id.is_empty() {
            headers.push(("Lambda-Runtime-Trace-Id", invoke.trace_id.as_str()));
        }
        if let Some(cc) = invoke.client_context.as_deref() {
            headers.push(("Lambda-Runtime-Client-Context", cc));
        }
        if let Some(ci) = invoke.cognito_identity.as_deref() {
            headers.push(("Lambda-Runtime-Cognito-Identity", ci));
        }
        conn.respond(200, &headers, &invoke.payload, ka)
    }

    /// Takes the current request id if `id` is it.
    fn settle(&self, id: &str) -> bool {
        let mut c = self.lock();
        if c.current.as_deref() == Some(id) && !id.is_empty() {
            c.current = None;
            true
        } else {
            false
        }
    }

    fn response(&self, conn: &mut Conn, id: &str, req: &Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        if !self.settle(id) {
            return invalid_request_id(conn, ka);
        }
        if req.streaming {
            return self.stream(conn, id, req);
        }
        if req.oversized {
            let message = format!("Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).");
            self.finish(FromInit::Error {
                request_id: id.to_owned(),
                error_type: "Function.ResponseSizeTooLarge".into(),
                body: caller_error(
                    "Function.ResponseSizeTooLarge",
                    &format!("Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."),
                ),
            });
            return conn.respond(413, &[JSON], &error_body(&message, "RequestEntityTooLarge"), ka);
        }
        self.finish(FromInit::Response {
            request_id: id.to_owned(),
            body: req.body.clone(),
        });
        conn.respond(202, &[JSON], OK_BODY, ka)
    }

    /// A streamed response: each piece goes to the daemon as it arrives,
    /// and the trailers (or the stream's end without them) end the
    /// invocation. Past [`MAX_STREAMED`] the stream is cut, as Lambda cuts
    /// it, with `Function.ResponseSizeTooLarge`.
    fn stream(&self, conn: &mut Conn, id: &str, req: &Request) -> std::io::Result<()> {
        let content_type = req.header("content-type").unwrap_or("application/octet-stream");
        self.link.send(&FromInit::StreamBegin {
            request_id: id.to_owned(),
            content_type: content_type.to_owned(),
        });
        let mut sent = 0usize;
        let read = conn.read_stream(MAX_STREAM_CHUNK, |piece| {
            sent += piece.len();
            if sent > MAX_STREAMED {
                return false;
            }
            self.link.send(&FromInit::StreamChunk {
                request_id: id.to_owned(),
                bytes: piece.to_vec(),
            });
            true
        });
        let answer = |error_type: &str, body: Vec<u8>| FromInit::Error {
            request_id: id.to_owned(),
            error_type: error_type.to_owned(),
            body,
        };
        match read {
            Ok(Some(trailers)) => {
                self.finish(stream_end(id, &trailers));
                conn.respond(202, &[JSON], OK_BODY, req.keep_alive)
            }
            Ok(None) => {
                let message =
                    format!("Response payload size exceeded maximum allowed payload size ({MAX_STREAMED} bytes).");
                self.finish(answer(
                    "Function.ResponseSizeTooLarge",
                    caller_error("Function.ResponseSizeTooLarge", &message),
                ));
                conn.respond(413, &[JSON], &error_body(&message, "RequestEntityTooLarge"), false)
            }
            Err(e) => {
                let message = format!("The runtime's response stream ended unfinished: {e}");
                self.finish(answer(
                    "Runtime.TruncatedResponse",
                    caller_error("Runtime.TruncatedResponse", &message),
                ));
                Err(e)
            }
        }
    }

    fn error(&self, conn: &mut Conn, id: &str, req: &Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        if !self.settle(id) {
            return invalid_request_id(conn, ka);
        }
        self.finish(FromInit::Error {
            request_id: id.to_owned(),
            error_type: error_type(req),
            body: error_body_or(req),
        });
        conn.respond(202, &[JSON], OK_BODY, ka)
    }
}

/// Milliseconds with Lambda's two decimals.
/// `AWS_LAMBDA_INITIALIZATION_TYPE` (the sandbox's: init runs in the
/// function's environment): `on-demand`, `provisioned-concurrency` or
/// `snap-start`, for the `platform.init*` records.
pub fn initialization_type() -> String {
    std::env::var("AWS_LAMBDA_INITIALIZATION_TYPE").unwrap_or_else(|_| "on-demand".into())
}

/// `platform.restoreStart`'s record, from the function's environment.
fn restore_start() -> serde_json::Value {
    json!({
        "functionName": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
        "functionVersion": std::env::var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_default(),
    })
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

/// The request id of an answer.
fn held_id(held: Option<&FromInit>) -> Option<String> {
    match held? {
        FromInit::Response { request_id, .. } | FromInit::Error { request_id, .. } => Some(request_id.clone()),
        _ => None,
    }
}

/// One open connection, counted until its thread ends (a failed spawn
/// drops the closure, and the count with it).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn invalid_request_id(conn: &mut Conn, ka: bool) -> std::io::Result<()> {
    conn.respond(400, &[JSON], &error_body("Invalid request ID", "InvalidRequestID"), ka)
}

/// `Lambda-Runtime-Function-Error-Type`, `Unhandled` when absent (the
/// Python and Node clients send none).
fn error_type(req: &Request) -> String {
    req.header("lambda-runtime-function-error-type")
        .filter(|t| !t.is_empty())
        .unwrap_or("Unhandled")
        .to_owned()
}

/// How a streamed response ended: its error trailers
/// (`Lambda-Runtime-Function-Error-Type`, and `-Body` in base64, as the
/// Runtime API documents them) make it the invocation's error; without
/// them it succeeded, and its bytes went out already.
fn stream_end(id: &str, trailers: &[(String, String)]) -> FromInit {
    let field = |name: &str| trailers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(error_type) = field("lambda-runtime-function-error-type").filter(|t| !t.is_empty()) else {
        return FromInit::Response {
            request_id: id.to_owned(),
            body: Vec::new(),
        };
    };
    use base64::Engine as _;
    let body = field("lambda-runtime-function-error-body")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| caller_error(error_type, ""));
    FromInit::Error {
        request_id: id.to_owned(),
        error_type: error_type.to_owned(),
        body,
    }
}

/// The body the caller gets: the runtime's, or a minimal one if it sent none.
fn error_body_or(req: &Request) -> Vec<u8> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        caller_error(&error_type(req), "")
    } else {
        req.body.clone()
    }
}

#[cfg(test)]
mod ext_tests;
#[cfg(test)]
mod tests;
