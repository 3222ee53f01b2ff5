//! Hostile clients against the Runtime API server on a loopback port, in
//! process: slow heads, huge heads, oversize and endless bodies,
//! half-closed connections, too many connections. Limits are shortened so
//! the tests are quick; every wait is bounded.

use super::*;
use crate::http::Limits;
use crate::protocol::Invoke;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

const LIMITS: Limits = Limits {
    idle: Duration::from_secs(3),
    head: Duration::from_secs(1),
    body: Duration::from_secs(2),
};
/// Generous: far past every limit above, so a slow machine does not fail.
const BOUND: Duration = Duration::from_secs(20);

fn start(max_connections: usize) -> (Arc<Api>, SocketAddr) {
    let (ours, daemon) = UnixStream::pair().unwrap();
    std::thread::spawn(move || {
        let mut daemon = daemon;
        let _ = std::io::copy(&mut daemon, &mut std::io::sink());
    });
    let api = Api::new(Arc::new(Link { out: Mutex::new(ours) }));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Arc::clone(&api);
    std::thread::spawn(move || server.serve_with(listener, LIMITS, max_connections));
    (api, addr)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(BOUND)).unwrap();
    s
}

/// Reads until the server closes; what it sent. Panics past [`BOUND`].
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let start = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        assert!(start.elapsed() < BOUND, "server did not close the connection");
        match s.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("read: {e}"),
        }
    }
}

/// A normal request still answers: the server is not held by the others.
fn answers(addr: SocketAddr) {
    let mut s = connect(addr);
    s.write_all(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    let out = read_to_close(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 404"), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn a_slow_head_is_cut_at_the_timeout() {
    let (_api, addr) = start(MAX_CONNECTIONS);
    let mut slow = connect(addr);
    let start = Instant::now();
    let head = b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nX-Slow: ";
    let mut closed = false;
    // One byte every 100 ms: the 1 s head limit passes long before the end.
    for b in head.iter().chain(std::iter::repeat_n(&b'a', 300)) {
        answers(addr);
        if slow.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        if start.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !closed {
        read_to_close(&mut slow);
    }
    assert!(start.elapsed() < BOUND);
}

#[test]
fn a_huge_head_gets_431_and_a_closed_connection() {
    let (_api, addr) = start(MAX_CONNECTIONS);
    let mut s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = w.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nX-Big: ");
        let _ = w.write_all(&vec![b'a'; 1 << 20]);
        let _ = w.write_all(b"\r\n\r\n");
    });
    let out = read_to_close(&mut s);
    assert!(
        out.is_empty() || out.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    writer.join().unwrap();
    // Too many headers, each small: 431 as well.
    let mut s = connect(addr);
    let mut req = b"GET /x HTTP/1.1\r\n".to_vec();
    for i in 0..100 {
        req.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    s.write_all(&req).unwrap();
    assert!(read_to_close(&mut s).starts_with(b"HTTP/1.1 431"));
    answers(addr);
}

#[test]
fn an_oversize_response_gets_413() {
    let (api, addr) = start(MAX_CONNECTIONS);
    api.deliver(Invoke {
        request_id: "r1".into(),
        deadline_ms: 0,
        invoked_function_arn: "arn".into(),
        trace_id: String::new(),
        client_context: None,
        cognito_identity: None,
        payload: b"{}".to_vec(),
    });
    let mut s = connect(addr);
    s.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(read_to_close(&mut s).starts_with(b"HTTP/1.1 200"));
    let mut s = connect(addr);
    let len = MAX_RESPONSE + 1;
    s.write_all(
        format!("POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nContent-Length: {len}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    s.write_all(&vec![b'x'; len]).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let out = read_to_close(&mut s);
    assert!(out.starts_with(b"HTTP/1.1 413"), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn an_endless_chunked_body_is_cut_off() {
    let (_api, addr) = start(MAX_CONNECTIONS);
    let mut s = connect(addr);
    s.write_all(b"POST /2018-06-01/runtime/invocation/r1/response HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    let chunk = [b"10000\r\n".as_slice(), &[b'x'; 0x10000], b"\r\n"].concat();
    let start = Instant::now();
    let mut sent = 0usize;
    // The server stops reading at 16 MiB; 256 MiB would mean it never did.
    while sent < 256 << 20 && start.elapsed() < BOUND {
        if s.write_all(&chunk).is_err() {
            break;
        }
        sent += 0x10000;
    }
    assert!(
        sent < 256 << 20 && start.elapsed() < BOUND,
        "sent {sent} bytes unhindered"
    );
    answers(addr);
}

#[test]
fn a_stalled_body_is_cut_at_the_timeout() {
    let (_api, addr) = start(MAX_CONNECTIONS);
    let mut s = connect(addr);
    s.write_all(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc")
        .unwrap();
    read_to_close(&mut s);
}

#[test]
fn a_half_closed_connection_is_released() {
    let (_api, addr) = start(2);
    for _ in 0..5 {
        let mut s = connect(addr);
        s.write_all(b"POST /2018-06-01/runtime/init/error HTTP/1.1\r\nContent-Le")
            .unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        read_to_close(&mut s);
    }
    // Every released connection gave its slot back.
    answers(addr);
    answers(addr);
}

#[test]
fn connections_past_the_cap_are_closed() {
    let (_api, addr) = start(2);
    let held: Vec<TcpStream> = (0..2).map(|_| connect(addr)).collect();
    // Let the server take both before the third arrives.
    std::thread::sleep(Duration::from_millis(200));
    let mut third = connect(addr);
    assert!(read_to_close(&mut third).is_empty());
    drop(held);
    let start = Instant::now();
    loop {
        let mut s = connect(addr);
        s.write_all(b"GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        if read_to_close(&mut s).starts_with(b"HTTP/1.1 404") {
            break;
        }
        assert!(start.elapsed() < BOUND, "slots were not given back");
        std::thread::sleep(Duration::from_millis(50));
    }
}
