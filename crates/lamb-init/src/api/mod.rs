//! The Runtime API (`/2018-06-01/runtime/...`, spec 1.2-1.4) served on
//! 127.0.0.1:9001: a thread per connection, one invocation in flight,
//! `/next` blocking until the daemon sends an event.
//!
//! At most [`MAX_CONNECTIONS`] connections are served at once, each under
//! [`Limits`]: hostile code in the sandbox can open sockets to 9001 too.

use crate::http::{Conn, Limits, Request};
use crate::protocol::{FromInit, Invoke, MAX_RESPONSE};
use crate::Link;
use lamb_protocol::errors::{caller_error, error_body};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Connections served at once (a thread each, 256 KiB of stack). The
/// runtime needs one or two; past the cap a new connection is closed at
/// once rather than queued behind clients that may never finish.
pub const MAX_CONNECTIONS: usize = 64;

const PREFIX: &str = "/2018-06-01/runtime/";
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
}

pub struct Api {
    link: Arc<Link>,
    cycle: Mutex<Cycle>,
    wake: Condvar,
}

impl Api {
    pub fn new(link: Arc<Link>) -> Arc<Api> {
        Arc::new(Api {
            link,
            cycle: Mutex::new(Cycle::default()),
            wake: Condvar::new(),
        })
    }

    /// Queues an event for the runtime's `/next`.
    pub fn deliver(&self, invoke: Invoke) {
        let mut c = self.cycle.lock().unwrap_or_else(|e| e.into_inner());
        c.pending = Some(invoke);
        self.wake.notify_all();
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
                    let _slot = slot;
                    api.connection(stream, limits)
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
            if self.handle(&mut conn, req).is_err() || !keep_alive {
                return;
            }
        }
    }

    pub(crate) fn handle(&self, conn: &mut Conn, req: Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        let path = req.path.split('?').next().unwrap_or("");
        let Some(rest) = path.strip_prefix(PREFIX) else {
            return conn.respond(404, &[JSON], &error_body("Not found", "NotFound"), ka);
        };
        let parts: Vec<&str> = rest.split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["invocation", "next"]) => self.next(conn, ka),
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
            let mut c = self.cycle.lock().unwrap_or_else(|e| e.into_inner());
            if !c.ready {
                c.ready = true;
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
        let mut c = self.cycle.lock().unwrap_or_else(|e| e.into_inner());
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
        if req.oversized {
            let message = format!("Exceeded maximum allowed payload size ({MAX_RESPONSE} bytes).");
            self.link.send(&FromInit::Error {
                request_id: id.to_owned(),
                error_type: "Function.ResponseSizeTooLarge".into(),
                body: caller_error(
                    "Function.ResponseSizeTooLarge",
                    &format!("Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."),
                ),
            });
            return conn.respond(413, &[JSON], &error_body(&message, "RequestEntityTooLarge"), ka);
        }
        self.link.send(&FromInit::Response {
            request_id: id.to_owned(),
            body: req.body.clone(),
        });
        conn.respond(202, &[JSON], OK_BODY, ka)
    }

    fn error(&self, conn: &mut Conn, id: &str, req: &Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        if !self.settle(id) {
            return invalid_request_id(conn, ka);
        }
        self.link.send(&FromInit::Error {
            request_id: id.to_owned(),
            error_type: error_type(req),
            body: error_body_or(req),
        });
        conn.respond(202, &[JSON], OK_BODY, ka)
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

/// The body the caller gets: the runtime's, or a minimal one if it sent none.
fn error_body_or(req: &Request) -> Vec<u8> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        caller_error(&error_type(req), "")
    } else {
        req.body.clone()
    }
}

#[cfg(test)]
mod tests;
