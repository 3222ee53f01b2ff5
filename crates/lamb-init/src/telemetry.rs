//! The Telemetry API (`PUT /2022-07-01/telemetry`) and the older Logs API
//! (`PUT /2020-08-15/logs`): an extension subscribes to record types
//! (`platform`, `function`, `extension`) with a buffering (`maxItems`,
//! `maxBytes`, `timeoutMs`) and an HTTP destination inside the sandbox;
//! init sends it JSON arrays of records by POST, from a thread per
//! subscription.
//!
//! Every record since Init began is kept (at most [`BACKLOG`]), so that a
//! subscription made during Init still gets `platform.initStart`, as
//! Lambda's does.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Records kept for subscriptions not made yet.
pub const BACKLOG: usize = 1000;
/// How long one delivery may take before it is given up (and retried).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// One subscription's buffering, with Lambda's bounds and defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffering {
    pub max_items: usize,
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Which API subscribed: their records and defaults differ a little.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Telemetry,
    Logs,
}

#[derive(Debug)]
struct Subscription {
    extension: String,
    types: Vec<String>,
    buffering: Buffering,
    /// `host:port` to connect to (always loopback) and the request path.
    port: u16,
    path: String,
    queue: VecDeque<String>,
    queued_bytes: usize,
    /// When the oldest queued record arrived.
    since: Option<Instant>,
}

#[derive(Default)]
struct State {
    backlog: VecDeque<(String, String)>,
    subs: Vec<Subscription>,
}

/// The records and their subscribers.
pub struct Telemetry {
    state: Mutex<State>,
    wake: Condvar,
    /// Off once Init ended without any extension: nobody can subscribe,
    /// and a plain function pays nothing for records.
    enabled: AtomicBool,
}

impl Default for Telemetry {
    fn default() -> Self {
        Telemetry {
            state: Mutex::default(),
            wake: Condvar::new(),
            enabled: AtomicBool::new(true),
        }
    }
}

/// RFC 3339 UTC with milliseconds, as Lambda stamps records.
pub fn now_rfc3339() -> String {
    let ms = crate::epoch_ms();
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

/// A subscription request Lambda refuses: (status, errorType, message).
pub type Refusal = (u16, &'static str, String);

/// Parses a subscription body; the types, buffering and destination.
pub fn parse(api: Api, body: &[u8]) -> Result<(Vec<String>, Buffering, u16, String), Refusal> {
    let bad = |m: &str| (400, "ValidationError", m.to_owned());
    let v: Value = serde_json::from_slice(body).map_err(|_| bad("the body is not JSON"))?;
    let types: Vec<String> = v["types"]
        .as_array()
        .ok_or_else(|| bad("types is required"))?
        .iter()
        .map(|t| t.as_str().map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| bad("types must be strings"))?;
    if types.is_empty()
        || types
            .iter()
            .any(|t| !["platform", "function", "extension"].contains(&t.as_str()))
    {
        return Err(bad("types must be platform, function or extension"));
    }
    let b = &v["buffering"];
    let field = |name: &str, default: u64, lo: u64, hi: u64| -> Result<u64, Refusal> {
        match &b[name] {
            Value::Null => Ok(default),
            n => n
                .as_u64()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| bad(&format!("buffering.{name} must be within {lo} and {hi}"))),
        }
    };
    let default_items = if api == Api::Logs { 10_000 } else { 1_000 };
    let buffering = Buffering {
        max_items: field("maxItems", default_items, 25, 10_000)? as usize,
        max_bytes: field("maxBytes", 262_144, 262_144, 1_048_576)? as usize,
        timeout: Duration::from_millis(field("timeoutMs", 1_000, 25, 30_000)?),
    };
    let dest = &v["destination"];
    if dest["protocol"].as_str() != Some("HTTP") {
        return Err(bad("destination.protocol must be HTTP"));
    }
    let uri = dest["URI"].as_str().ok_or_else(|| bad("destination.URI is required"))?;
    let (port, path) =
        parse_uri(uri).ok_or_else(|| bad("destination.URI must be http://sandbox.localdomain:PORT/..."))?;
    Ok((types, buffering, port, path))
}

/// `http://HOST:PORT/PATH` with a host of the sandbox itself.
fn parse_uri(uri: &str) -> Option<(u16, String)> {
    let rest = uri.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = authority.rsplit_once(':')?;
    let local = ["sandbox.localdomain", "sandbox", "localhost", "127.0.0.1", "0.0.0.0"];
    if !local.contains(&host) {
        return None;
    }
    Some((port.parse().ok().filter(|p| *p != 0)?, path.to_owned()))
}

impl Telemetry {
    pub fn new() -> Arc<Telemetry> {
        Arc::new(Telemetry::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a subscription for `extension` and starts its delivery thread;
    /// a second one from the same extension replaces its first.
    pub fn subscribe(
        self: &Arc<Self>,
        extension: &str,
        types: Vec<String>,
        buffering: Buffering,
        port: u16,
        path: String,
    ) {
        let mut s = self.lock();
        let replaced = s.subs.iter().position(|x| x.extension == extension);
        let mut sub = Subscription {
            extension: extension.to_owned(),
            types,
            buffering,
            port,
            path,
            queue: VecDeque::new(),
            queued_bytes: 0,
            since: None,
        };
        for (kind, record) in &s.backlog {
            push(&mut sub, kind, record);
        }
        let index = match replaced {
            Some(i) => {
                s.subs[i] = sub;
                return;
            }
            None => {
                s.subs.push(sub);
                s.subs.len() - 1
            }
        };
        drop(s);
        let me = Arc::clone(self);
        let _ = std::thread::Builder::new()
            .name("telemetry".into())
            .spawn(move || me.deliver(index));
    }

    /// Whether records are kept (callers skip building them otherwise).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// No extension registered during Init: records are dropped from now on.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        self.lock().backlog.clear();
    }

    /// One record: `kind` is `platform`, `function` or `extension`; `record`
    /// the whole JSON object (`time`, `type`, `record`).
    pub fn emit(&self, kind: &str, record: Value) {
        if !self.enabled() {
            return;
        }
        let text = record.to_string();
        let mut s = self.lock();
        if s.backlog.len() >= BACKLOG {
            s.backlog.pop_front();
        }
        s.backlog.push_back((kind.to_owned(), text.clone()));
        for sub in s.subs.iter_mut() {
            push(sub, kind, &text);
        }
        self.wake.notify_all();
    }

    /// The records kept so far, as they are sent.
    #[cfg(test)]
    pub fn kept(&self) -> Vec<String> {
        self.lock().backlog.iter().map(|(_, text)| text.clone()).collect()
    }

    /// A platform record of `type` (`platform.start`...).
    pub fn platform(&self, kind: &str, record: Value) {
        self.emit(
            "platform",
            json!({"time": now_rfc3339(), "type": kind, "record": record}),
        );
    }

    /// Sends subscription `index`'s batches, forever.
    fn deliver(&self, index: usize) {
        loop {
            let (batch, port, path) = {
                let mut s = self.lock();
                loop {
                    let sub = &s.subs[index];
                    let due = sub.since.map(|t| t + sub.buffering.timeout);
                    let full =
                        sub.queue.len() >= sub.buffering.max_items || sub.queued_bytes >= sub.buffering.max_bytes;
                    match due {
                        Some(due) if full || Instant::now() >= due => break,
                        Some(due) => {
                            let left = due.saturating_duration_since(Instant::now());
                            s = self.wake.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0;
                        }
                        None => s = self.wake.wait(s).unwrap_or_else(|e| e.into_inner()),
                    }
                }
                let sub = &mut s.subs[index];
                let n = sub.queue.len().min(sub.buffering.max_items);
                let batch: Vec<String> = sub.queue.drain(..n).collect();
                sub.queued_bytes = sub.queue.iter().map(String::len).sum();
                sub.since = (!sub.queue.is_empty()).then(Instant::now);
                (batch, sub.port, sub.path.clone())
            };
            let body = format!("[{}]", batch.join(","));
            if post(port, &path, body.as_bytes()).is_err() {
                // The listener is not up yet (or went away): put the batch
                // back and try again after the buffering's timeout.
                let mut s = self.lock();
                let sub = &mut s.subs[index];
                for r in batch.into_iter().rev() {
                    sub.queued_bytes += r.len();
                    sub.queue.push_front(r);
                }
                trim(sub);
                let wait = sub.buffering.timeout;
                sub.since = Some(Instant::now());
                drop(s);
                std::thread::sleep(wait);
            }
        }
    }
}

fn push(sub: &mut Subscription, kind: &str, record: &str) {
    if !sub.types.iter().any(|t| t == kind) {
        return;
    }
    sub.queued_bytes += record.len();
    sub.queue.push_back(record.to_owned());
    sub.since.get_or_insert_with(Instant::now);
    trim(sub);
}

/// A subscriber that does not take its records loses the oldest first.
fn trim(sub: &mut Subscription) {
    while sub.queue.len() > BACKLOG {
        if let Some(r) = sub.queue.pop_front() {
            sub.queued_bytes -= r.len();
        }
    }
}

/// One POST to the extension's listener; the answer's status must be 2xx.
fn post(port: u16, path: &str, body: &[u8]) -> std::io::Result<()> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(DELIVERY_TIMEOUT))?;
    s.set_write_timeout(Some(DELIVERY_TIMEOUT))?;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: sandbox.localdomain:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut status = [0u8; 12];
    s.read_exact(&mut status)?;
    let mut rest = [0u8; 4096];
    while s.read(&mut rest).is_ok_and(|n| n > 0) {}
    if status.starts_with(b"HTTP/1.1 2") || status.starts_with(b"HTTP/1.0 2") {
        Ok(())
    } else {
        Err(std::io::Error::other("the listener refused the batch"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn subscriptions_are_checked_as_lambda_does() {
        let ok = br#"{"schemaVersion":"2022-12-13","types":["platform","function"],
            "buffering":{"maxItems":25,"timeoutMs":25},
            "destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:8080/t"}}"#;
        let (types, b, port, path) = parse(Api::Telemetry, ok).unwrap();
        assert_eq!(types, ["platform", "function"]);
        assert_eq!(
            (b.max_items, b.max_bytes, b.timeout),
            (25, 262_144, Duration::from_millis(25))
        );
        assert_eq!((port, path.as_str()), (8080, "/t"));
        for bad in [
            &br#"{"types":["nope"],"destination":{"protocol":"HTTP","URI":"http://sandbox:1"}}"#[..],
            br#"{"types":["platform"],"buffering":{"maxItems":5},"destination":{"protocol":"HTTP","URI":"http://sandbox:1"}}"#,
            br#"{"types":["platform"],"destination":{"protocol":"HTTP","URI":"http://example.com:1"}}"#,
            br#"{"types":["platform"],"destination":{"protocol":"TCP","URI":"http://sandbox:1"}}"#,
            b"nope",
        ] {
            assert_eq!(parse(Api::Telemetry, bad).unwrap_err().0, 400);
        }
    }

    #[test]
    fn times_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }

    /// Records before the subscription, and after, arrive in one batch
    /// once `maxItems` is reached; the listener is a real socket.
    #[test]
    fn batches_reach_the_listener() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let tel = Telemetry::new();
        tel.platform("platform.initStart", json!({"phase": "init"}));
        let buffering = Buffering {
            max_items: 3,
            max_bytes: 262_144,
            timeout: Duration::from_secs(3600),
        };
        tel.subscribe(
            "ext",
            vec!["platform".into(), "function".into()],
            buffering,
            port,
            "/in".into(),
        );
        tel.emit("extension", json!({"type": "extension", "record": "not subscribed"}));
        tel.emit("function", json!({"type": "function", "record": "line"}));
        tel.platform("platform.start", json!({"requestId": "r"}));
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"]") {
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "closed early");
            got.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("POST /in HTTP/1.1\r\n"), "{text}");
        let body: Value = serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).unwrap();
        let kinds: Vec<&str> = body
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["platform.initStart", "function", "platform.start"]);
    }
}
