//! The entry point of the Runtime API fuzz target (`crates/lamb-init/fuzz`),
//! not an API: the real parser and router, fed one connection's bytes.

use crate::api::Api;
use crate::http::{Conn, Limits};
use crate::protocol::{Invoke, MAX_RESPONSE};
use crate::Link;
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

struct Harness {
    api: Arc<Api>,
    listener: TcpListener,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let (ours, daemon) = UnixStream::pair().expect("socketpair");
        // The daemon's end reads and forgets whatever init reports.
        std::thread::spawn(move || {
            let mut daemon = daemon;
            let _ = io::copy(&mut daemon, &mut io::sink());
        });
        Harness {
            api: Api::new(Arc::new(Link { out: Mutex::new(ours) })),
            listener: TcpListener::bind("127.0.0.1:0").expect("bind loopback"),
        }
    })
}

/// Serves `data` as the bytes of one connection that the client then
/// half-closes: each request in it is parsed and routed, with an event
/// waiting so that `/next` answers at once.
pub fn runtime_api(data: &[u8]) {
    let h = harness();
    let Ok(addr) = h.listener.local_addr() else { return };
    let Ok(mut client) = TcpStream::connect(addr) else {
        return;
    };
    let Ok((server, _)) = h.listener.accept() else { return };
    let data = data.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = client.write_all(&data);
        let _ = client.shutdown(Shutdown::Write);
        let _ = io::copy(&mut client, &mut io::sink());
    });
    let limits = Limits {
        idle: Duration::from_secs(5),
        head: Duration::from_secs(5),
        body: Duration::from_secs(5),
    };
    if let Ok(mut conn) = Conn::new(server, limits) {
        for _ in 0..64 {
            let Ok(Some(req)) = conn.read_request(MAX_RESPONSE) else {
                break;
            };
            h.api.deliver(Invoke {
                request_id: "fuzz-request".into(),
                deadline_ms: 0,
                invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:fuzz".into(),
                trace_id: String::new(),
                client_context: None,
                cognito_identity: None,
                payload: b"{}".to_vec(),
            });
            let keep_alive = req.keep_alive;
            if h.api.handle(&mut conn, req).is_err() || !keep_alive || conn.stream_pending {
                break;
            }
        }
    }
    let _ = writer.join();
}
