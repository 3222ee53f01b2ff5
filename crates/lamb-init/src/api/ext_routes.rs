//! The Extensions API's routes (`/2020-01-01/extension/...`): register,
//! `event/next`, `init/error` and `exit/error`, with Lambda's headers
//! (`Lambda-Extension-Name` to register, `Lambda-Extension-Identifier` on
//! everything after) and answers.

use super::extensions::State;
use super::{Api, JSON, OK_BODY};
use crate::http::{Conn, Request};
use lamb_protocol::errors::error_body;

const ID_HEADER: &str = "lambda-extension-identifier";

impl Api {
    pub(super) fn extension_api(&self, conn: &mut Conn, rest: &str, req: &Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        match (req.method.as_str(), rest) {
            ("POST", "register") => self.register(conn, req),
            ("GET", "event/next") => self.extension_next(conn, req),
            ("POST", "init/error") => self.extension_error(conn, req, State::InitError),
            ("POST", "exit/error") => self.extension_error(conn, req, State::ExitError),
            _ => conn.respond(404, &[JSON], &error_body("Not found", "NotFound"), ka),
        }
    }

    fn register(&self, conn: &mut Conn, req: &Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        let name = req.header("lambda-extension-name").unwrap_or("");
        let events = match parse_events(&req.body) {
            Some(e) => e,
            None => {
                let body = error_body("Invalid request body", "InvalidRequestFormat");
                return conn.respond(400, &[JSON], &body, ka);
            }
        };
        let accept_account = req
            .header("lambda-extension-accept-feature")
            .is_some_and(|f| f.split(',').any(|x| x.trim() == "accountId"));
        let registered = {
            let mut c = self.lock();
            let r = c.ext.register(name, &events).map(|e| e.id.clone());
            self.wake.notify_all();
            r
        };
        match registered {
            Ok(id) => {
                let body = self.register_body(accept_account);
                conn.respond(200, &[JSON, ("Lambda-Extension-Identifier", id.as_str())], &body, ka)
            }
            Err((status, error_type, message)) => conn.respond(status, &[JSON], &error_body(&message, error_type), ka),
        }
    }

    /// Blocks until an event is queued for the extension; on the way in,
    /// the extension is done with its last one, which may end Init or the
    /// invocation.
    fn extension_next(&self, conn: &mut Conn, req: &Request) -> std::io::Result<()> {
        let ka = req.keep_alive;
        let id = req.header(ID_HEADER).unwrap_or("").to_owned();
        let event = {
            let mut c = self.lock();
            match c.ext.by_id(&id) {
                Some(e) => e.parked = true,
                None => return forbidden_id(conn, ka),
            }
            self.check_ready(&mut c);
            self.complete(&mut c);
            self.wake.notify_all();
            loop {
                if let Some(event) = c.ext.take(&id) {
                    if let Some(e) = c.ext.by_id(&id) {
                        e.parked = false;
                    }
                    break event;
                }
                c = self.wake.wait(c).unwrap_or_else(|e| e.into_inner());
            }
        };
        let event_id = format!("{:016x}", event.len() as u64 ^ crate::epoch_ms());
        conn.respond(
            200,
            &[JSON, ("Lambda-Extension-Event-Identifier", event_id.as_str())],
            &event,
            ka,
        )
    }

    /// `/init/error` and `/exit/error`: the extension reports a failure
    /// and will exit; the sandbox fails as Lambda's does.
    fn extension_error(&self, conn: &mut Conn, req: &Request, state: State) -> std::io::Result<()> {
        let ka = req.keep_alive;
        let id = req.header(ID_HEADER).unwrap_or("").to_owned();
        let mut c = self.lock();
        let Some(e) = c.ext.by_id(&id) else {
            drop(c);
            return forbidden_id(conn, ka);
        };
        e.state = state;
        let name = e.name.clone();
        let (error_type, message) = match state {
            State::InitError => ("Extension.InitError", format!("Extension {name} failed to initialize")),
            _ => ("Extension.ExitError", format!("Extension {name} failed")),
        };
        self.fatal(&mut c, error_type, message);
        self.wake.notify_all();
        drop(c);
        conn.respond(202, &[JSON], OK_BODY, ka)
    }
}

fn forbidden_id(conn: &mut Conn, ka: bool) -> std::io::Result<()> {
    let body = error_body(
        "Invalid or missing Lambda-Extension-Identifier",
        "Extension.UnknownExtensionIdentifier",
    );
    conn.respond(403, &[JSON], &body, ka)
}

/// `{"events": [...]}`; an empty body registers for nothing.
fn parse_events(body: &[u8]) -> Option<Vec<String>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let Some(events) = v.get("events") else {
        return Some(Vec::new());
    };
    events
        .as_array()?
        .iter()
        .map(|e| e.as_str().map(str::to_owned))
        .collect()
}

impl Api {
    /// Register's answer: the function's name, version and handler, and
    /// its account when the extension asked for it.
    fn register_body(&self, account: bool) -> Vec<u8> {
        let env = |k: &str| std::env::var(k).unwrap_or_default();
        let mut body = serde_json::json!({
            "functionName": env("AWS_LAMBDA_FUNCTION_NAME"),
            "functionVersion": env("AWS_LAMBDA_FUNCTION_VERSION"),
            "handler": env("_HANDLER"),
        });
        if account {
            body["accountId"] = self.account.get().cloned().unwrap_or_default().into();
        }
        body.to_string().into_bytes()
    }
}
