//! The Extensions API in process, as an extension and a runtime use it over
//! loopback HTTP, with the daemon's end of the link read by the test:
//! Lambda's barriers (Ready, the answer) and its errors.

use super::*;
use crate::protocol::{read_frame, Invoke};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::time::Duration;

const BOUND: Duration = Duration::from_secs(20);

struct Rig {
    api: Arc<Api>,
    addr: SocketAddr,
    daemon: UnixStream,
}

fn rig(launched: &[&str]) -> Rig {
    let (ours, daemon) = UnixStream::pair().unwrap();
    daemon.set_read_timeout(Some(BOUND)).unwrap();
    let api = Api::new(Arc::new(Link { out: Mutex::new(ours) }));
    api.launched(launched.iter().map(|s| (*s).to_owned()).collect());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::clone(&api);
    std::thread::spawn(move || server.serve(listener));
    Rig { api, addr, daemon }
}

impl Rig {
    /// The daemon's next message; panics past [`BOUND`].
    fn message(&mut self) -> FromInit {
        let frame = read_frame(&mut self.daemon).unwrap().expect("init's link closed");
        FromInit::decode(&frame).unwrap()
    }

    /// No message waits for the daemon now.
    fn silent(&mut self) -> bool {
        use std::os::fd::AsRawFd;
        let mut b = [0u8; 1];
        // SAFETY: a one-byte peek into a buffer we own.
        let n = unsafe {
            libc::recv(
                self.daemon.as_raw_fd(),
                b.as_mut_ptr().cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
    }

    /// Waits until the runtime's first `/next` has been seen.
    fn wait_runtime_ready(&self) {
        let start = std::time::Instant::now();
        while !self.api.lock().ready {
            assert!(start.elapsed() < BOUND, "the runtime's /next never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

struct Reply {
    status: u16,
    headers: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// One request on its own connection.
fn call(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    Reply {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    }
}

fn register(addr: SocketAddr, name: &str, events: &str) -> Reply {
    call(
        addr,
        "POST",
        "/2020-01-01/extension/register",
        &[("Lambda-Extension-Name", name)],
        &format!(r#"{{"events":{events}}}"#),
    )
}

/// An extension's `/event/next` on a thread (it blocks until an event).
fn next_in_background(addr: SocketAddr, id: &str) -> std::thread::JoinHandle<Reply> {
    let id = id.to_owned();
    std::thread::spawn(move || {
        call(
            addr,
            "GET",
            "/2020-01-01/extension/event/next",
            &[("Lambda-Extension-Identifier", &id)],
            "",
        )
    })
}

fn runtime_next_in_background(addr: SocketAddr) -> std::thread::JoinHandle<Reply> {
    std::thread::spawn(move || call(addr, "GET", "/2018-06-01/runtime/invocation/next", &[], ""))
}

fn invoke(id: &str) -> Invoke {
    Invoke {
        request_id: id.into(),
        deadline_ms: 1_700_000_000_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        trace_id: "Root=1-00000000-000000000000000000000000".into(),
        payload: b"{}".to_vec(),
        ..Invoke::default()
    }
}

#[test]
fn ready_and_every_completion_wait_for_the_extensions() {
    let mut r = rig(&["ext"]);
    let reg = register(r.addr, "ext", r#"["INVOKE","SHUTDOWN"]"#);
    assert_eq!(reg.status, 200, "{}", reg.body);
    let id = reg.header("Lambda-Extension-Identifier").unwrap();
    assert_eq!(id.len(), 36);
    assert!(reg.json().get("functionName").is_some() && reg.json().get("handler").is_some());
    // The runtime waits in /next; the extension has not: no Ready yet.
    let runtime = runtime_next_in_background(r.addr);
    r.wait_runtime_ready();
    assert!(r.silent(), "Ready before the extension called next");
    let ext = next_in_background(r.addr, &id);
    assert_eq!(r.message(), FromInit::Ready);
    // An invocation: the extension gets INVOKE, the runtime the event.
    r.api.deliver(invoke("req-1"));
    let event = ext.join().unwrap();
    assert_eq!(event.status, 200);
    assert!(event.header("Lambda-Extension-Event-Identifier").is_some());
    let event = event.json();
    assert_eq!(event["eventType"], "INVOKE");
    assert_eq!(event["requestId"], "req-1");
    assert_eq!(event["deadlineMs"], 1_700_000_000_000u64);
    assert_eq!(
        event["invokedFunctionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:f"
    );
    assert_eq!(event["tracing"]["type"], "X-Amzn-Trace-Id");
    assert_eq!(runtime.join().unwrap().status, 200);
    // The runtime answers while the extension is still busy: the answer
    // goes out at once, announced as held, and the invocation completes
    // when the extension is back in next.
    let posted = call(
        r.addr,
        "POST",
        "/2018-06-01/runtime/invocation/req-1/response",
        &[],
        "42",
    );
    assert_eq!(posted.status, 202);
    assert_eq!(
        r.message(),
        FromInit::Held {
            request_id: "req-1".into()
        }
    );
    assert_eq!(
        r.message(),
        FromInit::Response {
            request_id: "req-1".into(),
            body: b"42".to_vec()
        }
    );
    assert!(r.silent(), "complete while an extension was busy");
    let ext = next_in_background(r.addr, &id);
    assert_eq!(
        r.message(),
        FromInit::Complete {
            request_id: "req-1".into()
        }
    );
    // `platform.report` waits for the daemon's cgroup peak, and has it.
    let reports = |api: &Api| -> Vec<serde_json::Value> {
        let records = api
            .telemetry
            .kept()
            .iter()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect::<Vec<_>>();
        records
            .into_iter()
            .filter(|v: &serde_json::Value| v["type"] == "platform.report")
            .collect()
    };
    assert!(reports(&r.api).is_empty());
    r.api.peak_memory("req-1".into(), 81);
    let report = reports(&r.api);
    assert_eq!(report.len(), 1);
    assert_eq!(report[0]["record"]["requestId"], "req-1");
    assert_eq!(report[0]["record"]["metrics"]["maxMemoryUsedMB"], 81);
    // Shutdown: the extension gets SHUTDOWN with the reason.
    let api = Arc::clone(&r.api);
    let shutdown = std::thread::spawn(move || api.shutdown("spindown"));
    let event = ext.join().unwrap().json();
    assert_eq!(event["eventType"], "SHUTDOWN");
    assert_eq!(event["shutdownReason"], "spindown");
    assert!(event["deadlineMs"].as_u64().unwrap() > 0);
    // Back in next: the shutdown phase ends before its budget.
    let _parked = next_in_background(r.addr, &id);
    shutdown.join().unwrap();
}

#[test]
fn a_crash_during_init_is_an_extension_crash() {
    let mut r = rig(&["ext"]);
    r.api.extension_exited("ext", "exit status 3");
    let FromInit::InitError { error_type, body } = r.message() else {
        panic!("no init error");
    };
    assert_eq!(error_type, "Extension.Crash");
    assert!(String::from_utf8(body).unwrap().contains("exit status 3"));
    assert!(r.api.wait_registered().is_err());
}

#[test]
fn an_init_error_call_fails_init_and_a_later_crash_is_not_reported_twice() {
    let mut r = rig(&["ext"]);
    let id = register(r.addr, "ext", r#"["INVOKE"]"#)
        .header("Lambda-Extension-Identifier")
        .unwrap();
    let posted = call(
        r.addr,
        "POST",
        "/2020-01-01/extension/init/error",
        &[
            ("Lambda-Extension-Identifier", &id),
            ("Lambda-Extension-Function-Error-Type", "Extension.Bad"),
        ],
        "{}",
    );
    assert_eq!(posted.status, 202);
    let FromInit::InitError { error_type, .. } = r.message() else {
        panic!("no init error");
    };
    assert_eq!(error_type, "Extension.InitError");
    r.api.extension_exited("ext", "exit status 1");
    assert!(r.silent());
}

#[test]
fn a_crash_during_an_invocation_fails_it() {
    let mut r = rig(&[]);
    let id = register(r.addr, "inner", r#"["INVOKE"]"#)
        .header("Lambda-Extension-Identifier")
        .unwrap();
    let ext = next_in_background(r.addr, &id);
    let runtime = runtime_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    r.api.deliver(invoke("req-2"));
    ext.join().unwrap();
    runtime.join().unwrap();
    call(
        r.addr,
        "POST",
        "/2020-01-01/extension/exit/error",
        &[("Lambda-Extension-Identifier", &id)],
        "",
    );
    let FromInit::Error {
        request_id, error_type, ..
    } = r.message()
    else {
        panic!("no error");
    };
    assert_eq!(
        (request_id.as_str(), error_type.as_str()),
        ("req-2", "Extension.ExitError")
    );
}

#[test]
fn bad_registrations_are_refused_as_lambda_does() {
    let r = rig(&[]);
    let shutdown = register(r.addr, "inner", r#"["INVOKE","SHUTDOWN"]"#);
    assert_eq!(shutdown.status, 403);
    assert_eq!(
        shutdown.json()["errorType"],
        "ShutdownEventNotSupportedForInternalExtension"
    );
    let garbage = call(
        r.addr,
        "POST",
        "/2020-01-01/extension/register",
        &[("Lambda-Extension-Name", "x")],
        "{not json",
    );
    assert_eq!(garbage.status, 400);
    let unknown = call(
        r.addr,
        "GET",
        "/2020-01-01/extension/event/next",
        &[("Lambda-Extension-Identifier", "nope")],
        "",
    );
    assert_eq!(unknown.status, 403);
    // Once Init is over, registration is closed.
    let runtime = runtime_next_in_background(r.addr);
    r.wait_runtime_ready();
    let late = register(r.addr, "late", r#"["INVOKE"]"#);
    assert_eq!(late.status, 403);
    assert_eq!(late.json()["errorType"], "Extension.RegistrationClosed");
    r.api.deliver(invoke("req-3"));
    runtime.join().unwrap();
}

#[test]
fn telemetry_and_logs_subscriptions_need_a_registered_extension() {
    let r = rig(&[]);
    let body =
        r#"{"types":["platform","function"],"destination":{"protocol":"HTTP","URI":"http://sandbox.localdomain:9/t"}}"#;
    for path in ["/2022-07-01/telemetry", "/2020-08-15/logs"] {
        let anonymous = call(r.addr, "PUT", path, &[], body);
        assert_eq!(anonymous.status, 403);
    }
    let id = register(r.addr, "inner", r#"["INVOKE"]"#)
        .header("Lambda-Extension-Identifier")
        .unwrap();
    for path in ["/2022-07-01/telemetry", "/2020-08-15/logs"] {
        let ok = call(r.addr, "PUT", path, &[("Lambda-Extension-Identifier", &id)], body);
        assert_eq!((ok.status, ok.body.as_str()), (200, "OK"));
        let bad = call(
            r.addr,
            "PUT",
            path,
            &[("Lambda-Extension-Identifier", &id)],
            r#"{"types":[]}"#,
        );
        assert_eq!(bad.status, 400);
        assert_eq!(bad.json()["errorType"], "ValidationError");
    }
}

#[test]
fn without_extensions_no_records_are_kept() {
    let mut r = rig(&[]);
    assert!(r.api.telemetry.enabled(), "records are kept during Init");
    let runtime = runtime_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    assert!(!r.api.telemetry.enabled());
    r.api.deliver(invoke("req-4"));
    runtime.join().unwrap();
}

#[test]
fn register_answers_the_functions_account_when_asked() {
    let r = rig(&["ext"]);
    r.api.set_account("123456789012".into());
    let asked = call(
        r.addr,
        "POST",
        "/2020-01-01/extension/register",
        &[
            ("Lambda-Extension-Name", "ext"),
            ("Lambda-Extension-Accept-Feature", "accountId"),
        ],
        r#"{"events":["INVOKE"]}"#,
    );
    assert_eq!(asked.status, 200, "{}", asked.body);
    assert_eq!(asked.json()["accountId"], "123456789012");
}

#[test]
fn register_leaves_the_account_out_unless_asked() {
    let r = rig(&["ext"]);
    r.api.set_account("123456789012".into());
    let plain = register(r.addr, "ext", r#"["INVOKE"]"#);
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert!(plain.json().get("accountId").is_none(), "{}", plain.body);
}

#[test]
fn a_held_invocation_that_times_out_has_one_runtime_done() {
    let mut r = rig(&["ext"]);
    let id = register(r.addr, "ext", r#"["INVOKE"]"#)
        .header("Lambda-Extension-Identifier")
        .unwrap();
    let runtime = runtime_next_in_background(r.addr);
    let ext = next_in_background(r.addr, &id);
    assert_eq!(r.message(), FromInit::Ready);
    r.api.deliver(invoke("req-4"));
    ext.join().unwrap();
    runtime.join().unwrap();
    call(
        r.addr,
        "POST",
        "/2018-06-01/runtime/invocation/req-4/response",
        &[],
        "1",
    );
    assert!(matches!(r.message(), FromInit::Held { .. }));
    assert!(matches!(r.message(), FromInit::Response { .. }));
    // The extension never comes back: the daemon times the invocation out.
    r.api.peak_memory("req-4".into(), 90);
    r.api.shutdown("timeout");
    let records: Vec<serde_json::Value> = r
        .api
        .telemetry
        .kept()
        .iter()
        .map(|t| serde_json::from_str(t).unwrap())
        .collect();
    let of = |kind: &str| {
        records
            .iter()
            .filter(|v| v["type"] == kind)
            .cloned()
            .collect::<Vec<_>>()
    };
    let done = of("platform.runtimeDone");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["record"]["status"], "success");
    let report = of("platform.report");
    assert_eq!(report.len(), 1);
    assert_eq!(report[0]["record"]["status"], "timeout");
    assert_eq!(report[0]["record"]["metrics"]["maxMemoryUsedMB"], 90);
}

/// Starts invocation `id` on a rig without extensions.
fn invoked(r: &mut Rig, id: &str) {
    let runtime = runtime_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    r.api.deliver(invoke(id));
    assert_eq!(runtime.join().unwrap().status, 200);
}

/// A streamed response's head, as Lambda's runtime clients send it.
fn stream_head(id: &str) -> String {
    format!(
        "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\n\
         Lambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n\
         Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\
         Content-Type: text/plain\r\n\r\n"
    )
}

#[test]
fn a_streamed_response_is_relayed_chunk_by_chunk() {
    let mut r = rig(&[]);
    invoked(&mut r, "req-s");
    let mut s = TcpStream::connect(r.addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    s.write_all(format!("{}5\r\nhello\r\n", stream_head("req-s")).as_bytes())
        .unwrap();
    let begin = FromInit::StreamBegin {
        request_id: "req-s".into(),
        content_type: "text/plain".into(),
    };
    assert_eq!(r.message(), begin);
    // The first chunk reaches the daemon while the runtime still writes.
    let chunk = |b: &[u8]| FromInit::StreamChunk {
        request_id: "req-s".into(),
        bytes: b.to_vec(),
    };
    assert_eq!(r.message(), chunk(b"hello"));
    s.write_all(b"6\r\n world\r\n0\r\n\r\n").unwrap();
    assert_eq!(r.message(), chunk(b" world"));
    let end = FromInit::Response {
        request_id: "req-s".into(),
        body: Vec::new(),
    };
    assert_eq!(r.message(), end);
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 202");
}

#[test]
fn error_trailers_end_a_stream_with_the_functions_error() {
    let mut r = rig(&[]);
    invoked(&mut r, "req-e");
    let mut s = TcpStream::connect(r.addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    let body = r#"{"errorType":"Boom","errorMessage":"mid-stream"}"#;
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(body);
    s.write_all(
        format!(
            "{}2\r\nok\r\n0\r\nLambda-Runtime-Function-Error-Type: Boom\r\n\
             Lambda-Runtime-Function-Error-Body: {encoded}\r\n\r\n",
            stream_head("req-e")
        )
        .as_bytes(),
    )
    .unwrap();
    assert!(matches!(r.message(), FromInit::StreamBegin { .. }));
    assert!(matches!(r.message(), FromInit::StreamChunk { bytes, .. } if bytes == b"ok"));
    let error = FromInit::Error {
        request_id: "req-e".into(),
        error_type: "Boom".into(),
        body: body.as_bytes().to_vec(),
    };
    assert_eq!(r.message(), error);
}

#[test]
fn a_stream_cut_before_its_end_is_the_invocations_error() {
    let mut r = rig(&[]);
    invoked(&mut r, "req-c");
    let mut s = TcpStream::connect(r.addr).unwrap();
    s.write_all(format!("{}2\r\nok\r\n", stream_head("req-c")).as_bytes())
        .unwrap();
    assert!(matches!(r.message(), FromInit::StreamBegin { .. }));
    assert!(matches!(r.message(), FromInit::StreamChunk { .. }));
    drop(s);
    assert!(matches!(r.message(), FromInit::Error { error_type, .. } if error_type == "Runtime.TruncatedResponse"));
}

#[test]
fn a_stream_past_20_mib_is_cut_as_too_large() {
    let mut r = rig(&[]);
    invoked(&mut r, "req-big");
    let mut s = TcpStream::connect(r.addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    let writer = std::thread::spawn(move || {
        let piece = vec![b'x'; 1024 * 1024];
        let _ = s.write_all(stream_head("req-big").as_bytes());
        for _ in 0..=MAX_STREAMED / piece.len() {
            let chunk = [format!("{:x}\r\n", piece.len()).as_bytes(), &piece, b"\r\n"].concat();
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
        s
    });
    let mut relayed = 0;
    let end = loop {
        match r.message() {
            FromInit::StreamBegin { .. } => {}
            FromInit::StreamChunk { bytes, .. } => relayed += bytes.len(),
            other => break other,
        }
    };
    assert_eq!(relayed, MAX_STREAMED);
    assert!(matches!(end, FromInit::Error { error_type, .. } if error_type == "Function.ResponseSizeTooLarge"));
    // The 413 may be lost to the reset that closing over unread bytes
    // sends; what counts is that the daemon was told.
    drop(writer.join().unwrap());
}

fn restore_next_in_background(addr: SocketAddr) -> std::thread::JoinHandle<Reply> {
    std::thread::spawn(move || call(addr, "GET", "/2018-06-01/runtime/restore/next", &[], ""))
}

#[test]
fn a_snapstart_runtime_parks_in_restore_next_until_restored() {
    let mut r = rig(&[]);
    let parked = restore_next_in_background(r.addr);
    // Init is over when the runtime parks: the daemon may snapshot now.
    assert_eq!(r.message(), FromInit::Ready);
    assert!(!parked.is_finished() && r.silent());
    r.api.restore();
    let answered = parked.join().unwrap();
    assert_eq!((answered.status, answered.body.as_str()), (200, ""));
    // The after-restore hooks ran: the first /next is Ready again, and the
    // event goes to it.
    let runtime = runtime_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    r.api.deliver(invoke("r1"));
    let next = runtime.join().unwrap();
    assert_eq!(next.header("Lambda-Runtime-Aws-Request-Id").as_deref(), Some("r1"));
    // Once Init is over, restore/next is refused.
    assert_eq!(
        call(r.addr, "GET", "/2018-06-01/runtime/restore/next", &[], "").status,
        403
    );
}

#[test]
fn a_failed_after_restore_hook_is_an_init_error_and_a_hookless_runtime_is_ready_at_once() {
    let mut r = rig(&[]);
    let parked = restore_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    r.api.restore();
    assert_eq!(parked.join().unwrap().status, 200);
    let posted = call(
        r.addr,
        "POST",
        "/2018-06-01/runtime/restore/error",
        &[("Lambda-Runtime-Function-Error-Type", "Runtime.AfterRestoreError")],
        r#"{"errorMessage":"boom","errorType":"Runtime.AfterRestoreError"}"#,
    );
    assert_eq!(posted.status, 202);
    let FromInit::InitError { error_type, body } = r.message() else {
        panic!("no init error");
    };
    assert_eq!(error_type, "Runtime.AfterRestoreError");
    assert!(String::from_utf8(body).unwrap().contains("boom"));

    // A runtime without hooks waits in /next: restoring it is Ready at once.
    let mut plain = rig(&[]);
    let _runtime = runtime_next_in_background(plain.addr);
    assert_eq!(plain.message(), FromInit::Ready);
    plain.api.restore();
    assert_eq!(plain.message(), FromInit::Ready);
}

/// The platform records of `kind` kept for the Telemetry API so far.
fn records_of(r: &Rig, kind: &str) -> Vec<serde_json::Value> {
    r.api
        .telemetry
        .kept()
        .iter()
        .map(|t| serde_json::from_str::<serde_json::Value>(t).unwrap())
        .filter(|v| v["type"] == kind)
        .map(|v| v["record"].clone())
        .collect()
}

#[test]
fn a_restore_is_reported_to_the_telemetry_api_and_extensions_get_no_event_for_it() {
    let mut r = rig(&["ext"]);
    // Lambda's extensions register for INVOKE and SHUTDOWN only.
    let refused = register(r.addr, "ext", r#"["INVOKE","RESTORE"]"#);
    assert_eq!(
        (refused.status, refused.json()["errorType"].as_str()),
        (403, Some("Extension.InvalidEventType"))
    );
    let id = register(r.addr, "ext", r#"["INVOKE"]"#)
        .header("Lambda-Extension-Identifier")
        .unwrap();
    let ext = next_in_background(r.addr, &id);
    let parked = restore_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    assert!(records_of(&r, "platform.restoreStart").is_empty());
    r.api.restore();
    assert_eq!(parked.join().unwrap().status, 200);
    let runtime = runtime_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    assert_eq!(records_of(&r, "platform.restoreStart").len(), 1);
    assert_eq!(
        records_of(&r, "platform.restoreRuntimeDone"),
        [json!({"status": "success"})]
    );
    let report = records_of(&r, "platform.restoreReport");
    assert_eq!((report.len(), &report[0]["status"]), (1, &json!("success")));
    assert!(report[0]["metrics"]["durationMs"].is_f64(), "{report:?}");
    // The extension, parked in next through the restore, gets the
    // invocation as its first event.
    r.api.deliver(invoke("r1"));
    assert_eq!(ext.join().unwrap().json()["eventType"], "INVOKE");
    runtime.join().unwrap();
}

#[test]
fn a_failed_after_restore_hook_is_an_error_in_the_restore_records() {
    let mut r = rig(&["ext"]);
    let id = register(r.addr, "ext", r#"["INVOKE"]"#)
        .header("Lambda-Extension-Identifier")
        .unwrap();
    let _ext = next_in_background(r.addr, &id);
    let parked = restore_next_in_background(r.addr);
    assert_eq!(r.message(), FromInit::Ready);
    r.api.restore();
    assert_eq!(parked.join().unwrap().status, 200);
    call(
        r.addr,
        "POST",
        "/2018-06-01/runtime/restore/error",
        &[("Lambda-Runtime-Function-Error-Type", "Runtime.AfterRestoreError")],
        r#"{"errorMessage":"boom","errorType":"Runtime.AfterRestoreError"}"#,
    );
    assert!(matches!(r.message(), FromInit::InitError { .. }));
    let error = json!({"status": "error", "errorType": "Runtime.AfterRestoreError"});
    assert_eq!(records_of(&r, "platform.restoreRuntimeDone"), [error]);
    assert_eq!(records_of(&r, "platform.restoreReport")[0]["status"], "error");
}
