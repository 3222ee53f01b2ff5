//! The Extensions API's book-keeping (`/2020-01-01/extension/...`): which
//! extensions registered, for which events, which of them wait in
//! `/event/next`, and the first failure of one. The HTTP handlers are in
//! the parent module, under the same lock as the runtime's cycle, because
//! Lambda's rules join the two: Init ends when the runtime and every
//! extension wait in `next`, and an invocation ends when the runtime has
//! answered and every extension is back in `next`.

use std::collections::VecDeque;

/// Lambda's limit on extensions in one function.
pub const MAX_EXTENSIONS: usize = 10;

/// How an extension stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Registered,
    /// Called `/init/error`: its exit is an `Extension.InitError`.
    InitError,
    /// Called `/exit/error`: its exit is an `Extension.ExitError`.
    ExitError,
    Exited,
}

#[derive(Debug)]
pub struct Ext {
    pub name: String,
    pub id: String,
    /// Started by init from `/opt/extensions`; an internal one registered
    /// from the runtime's own process.
    pub external: bool,
    pub invoke: bool,
    pub shutdown: bool,
    pub state: State,
    /// Events queued and not taken by `next` yet (JSON bodies).
    queue: VecDeque<Vec<u8>>,
    /// Blocked in `/event/next` now.
    pub parked: bool,
}

impl Ext {
    /// Done with every event it was given: it waits in `next` with nothing
    /// queued. An extension that reported an error is past waiting for.
    fn idle(&self) -> bool {
        (self.parked && self.queue.is_empty()) || self.state != State::Registered
    }
}

/// A register request that Lambda refuses: (HTTP status, errorType, message).
pub type Refusal = (u16, &'static str, String);

/// Every extension of the sandbox.
#[derive(Debug, Default)]
pub struct Registry {
    /// File names of the external extensions init started.
    pub launched: Vec<String>,
    pub list: Vec<Ext>,
    /// Init is over: no more registrations.
    pub closed: bool,
    /// The first failure: (errorType, message).
    pub failure: Option<(String, String)>,
}

impl Registry {
    /// Every launched extension registered (or one failed: nothing more to
    /// wait for).
    pub fn all_launched_registered(&self) -> bool {
        self.failure.is_some()
            || self
                .launched
                .iter()
                .all(|n| self.list.iter().any(|e| e.external && &e.name == n))
    }

    /// Every extension waits in `next` with nothing to do.
    pub fn all_idle(&self) -> bool {
        self.list.iter().all(Ext::idle)
    }

    /// Registers `name` for `events`; the new identifier.
    pub fn register(&mut self, name: &str, events: &[String]) -> Result<&Ext, Refusal> {
        if self.closed {
            return Err((
                403,
                "Extension.RegistrationClosed",
                "Extension registration is closed".into(),
            ));
        }
        if name.is_empty() {
            return Err((
                403,
                "Extension.InvalidExtensionName",
                "Missing Lambda-Extension-Name header".into(),
            ));
        }
        let external = self.launched.iter().any(|n| n == name);
        let (mut invoke, mut shutdown) = (false, false);
        for event in events {
            match event.as_str() {
                "INVOKE" => invoke = true,
                "SHUTDOWN" if external => shutdown = true,
                "SHUTDOWN" => {
                    return Err((
                        403,
                        "ShutdownEventNotSupportedForInternalExtension",
                        format!("ExtensionsAPI Failed to Register {name}: event SHUTDOWN"),
                    ))
                }
                other => {
                    return Err((
                        403,
                        "Extension.InvalidEventType",
                        format!("ExtensionsAPI Failed to Register {name}: event {other}"),
                    ))
                }
            }
        }
        if self.list.iter().any(|e| e.name == name) {
            return Err((
                403,
                "Extension.AlreadyRegistered",
                format!("ExtensionsAPI failed to register {name}"),
            ));
        }
        if self.list.len() >= MAX_EXTENSIONS {
            return Err((
                403,
                "Extension.TooManyExtensions",
                format!("Extension limit ({MAX_EXTENSIONS}) reached"),
            ));
        }
        self.list.push(Ext {
            name: name.to_owned(),
            id: new_id(),
            external,
            invoke,
            shutdown,
            state: State::Registered,
            queue: VecDeque::new(),
            parked: false,
        });
        Ok(self.list.last().expect("just pushed"))
    }

    pub fn by_id(&mut self, id: &str) -> Option<&mut Ext> {
        self.list.iter_mut().find(|e| e.id == id && !id.is_empty())
    }

    /// Queues an INVOKE event for every extension registered for it.
    pub fn invoke(&mut self, body: &[u8]) {
        for e in self
            .list
            .iter_mut()
            .filter(|e| e.invoke && e.state == State::Registered)
        {
            e.queue.push_back(body.to_vec());
        }
    }

    /// Queues a SHUTDOWN event; whether any extension will get one.
    pub fn shutdown(&mut self, body: &[u8]) -> bool {
        let mut any = false;
        for e in self
            .list
            .iter_mut()
            .filter(|e| e.shutdown && e.state == State::Registered)
        {
            e.queue.push_back(body.to_vec());
            any = true;
        }
        any
    }

    /// The next event for extension `id`, if one is queued.
    pub fn take(&mut self, id: &str) -> Option<Vec<u8>> {
        self.by_id(id)?.queue.pop_front()
    }

    /// Records the first failure only: Lambda reports the first.
    pub fn fail(&mut self, error_type: &str, message: String) {
        if self.failure.is_none() {
            self.failure = Some((error_type.to_owned(), message));
        }
    }

    /// An external extension's process ended: the failure its end means,
    /// as Lambda words it.
    pub fn exited(&mut self, name: &str, status: &str) -> (String, String) {
        let state = match self.list.iter_mut().find(|e| e.external && e.name == name) {
            Some(e) => std::mem::replace(&mut e.state, State::Exited),
            None => State::Registered,
        };
        let error_type = match state {
            State::InitError => "Extension.InitError",
            State::ExitError => "Extension.ExitError",
            _ => "Extension.Crash",
        };
        (error_type.to_owned(), status.to_owned())
    }
}

/// A random UUID (v4), as Lambda's extension identifiers are.
fn new_id() -> String {
    let mut b = [0u8; 16];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The INVOKE event's body, as Lambda sends it.
pub fn invoke_event(request_id: &str, deadline_ms: u64, arn: &str, trace_id: &str) -> Vec<u8> {
    serde_json::json!({
        "eventType": "INVOKE",
        "deadlineMs": deadline_ms,
        "requestId": request_id,
        "invokedFunctionArn": arn,
        "tracing": {"type": "X-Amzn-Trace-Id", "value": trace_id},
    })
    .to_string()
    .into_bytes()
}

/// The SHUTDOWN event's body.
pub fn shutdown_event(reason: &str, deadline_ms: u64) -> Vec<u8> {
    serde_json::json!({
        "eventType": "SHUTDOWN",
        "shutdownReason": reason,
        "deadlineMs": deadline_ms,
    })
    .to_string()
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(e: &[&str]) -> Vec<String> {
        e.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn internal_extensions_cannot_take_shutdown() {
        let mut r = Registry {
            launched: vec!["ext".into()],
            ..Registry::default()
        };
        let err = r.register("inner", &events(&["INVOKE", "SHUTDOWN"])).unwrap_err();
        assert_eq!(err.1, "ShutdownEventNotSupportedForInternalExtension");
        let inner = r.register("inner", &events(&["INVOKE"])).unwrap();
        assert!(!inner.external);
        assert!(!r.all_launched_registered());
        let ext = r.register("ext", &events(&["INVOKE", "SHUTDOWN"])).unwrap();
        assert!(ext.external && ext.shutdown);
        assert!(r.all_launched_registered());
        assert_eq!(r.register("ext", &[]).unwrap_err().1, "Extension.AlreadyRegistered");
        assert_eq!(
            r.register("x", &events(&["BOOM"])).unwrap_err().1,
            "Extension.InvalidEventType"
        );
        r.closed = true;
        assert_eq!(r.register("late", &[]).unwrap_err().0, 403);
    }

    #[test]
    fn an_exit_after_init_error_is_an_init_error() {
        let mut r = Registry {
            launched: vec!["a".into(), "b".into()],
            ..Registry::default()
        };
        r.register("a", &[]).unwrap();
        r.list[0].state = State::InitError;
        assert_eq!(r.exited("a", "exit status 1").0, "Extension.InitError");
        assert_eq!(r.exited("b", "exit status 2").0, "Extension.Crash");
    }

    #[test]
    fn ids_are_uuids() {
        let id = new_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_id());
    }
}
