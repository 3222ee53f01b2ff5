//! Serving a router on a TCP listener with a limit on everything a client
//! controls (docs/limits.md): how many connections are open, how long a
//! request head may take and how large it may be, how long a connection may
//! sit idle, and how slowly a body may arrive. Used by the API listener and
//! the function URL listener; a client that trickles, floods or stalls
//! loses its connection and holds nothing.

use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::ServiceExt;

/// The limits on one listener's connections.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Connections served at once; past it, new ones wait in the kernel's
    /// accept queue. Below the daemon's descriptor limit (1024 by default),
    /// with room for the registry, the logs and the sandboxes' sockets.
    pub max_connections: usize,
    /// From a connection's start, or the end of its previous response, to
    /// the end of a request head: cuts slow-loris heads and idle keep-alive
    /// connections alike.
    pub header_read_timeout: Duration,
    /// The read buffer, so the largest request head; past it: 431.
    pub max_head_bytes: usize,
    /// Headers in one request; past it: 431.
    pub max_headers: usize,
}

/// The control-plane API (`--listen`).
pub const API_LIMITS: ConnLimits = ConnLimits {
    max_connections: 512,
    header_read_timeout: Duration::from_secs(10),
    max_head_bytes: 64 * 1024,
    max_headers: 100,
};

/// The function URL listener (`--url-listen`): the same, it faces the same
/// clients.
pub const URL_LIMITS: ConnLimits = API_LIMITS;

/// A body must keep arriving: no gap between two reads longer than this.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// And it must be whole within this: 70 MB at 240 kB/s, far below what any
/// real client manages on the box it runs on.
pub const BODY_TOTAL_TIMEOUT: Duration = Duration::from_secs(300);

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than the caller's limit.
    TooLarge,
    /// It stalled, or took too long in all.
    TimedOut,
    /// The connection failed under it.
    Failed,
}

impl BodyError {
    /// The answer to a body that stalled (408) or broke (400); the
    /// connection closes under it. `TooLarge` is each caller's to word.
    pub fn response(self) -> Response {
        let (status, text) = match self {
            BodyError::TimedOut => (StatusCode::REQUEST_TIMEOUT, "request body timed out"),
            BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
            BodyError::Failed => (StatusCode::BAD_REQUEST, "request body failed"),
        };
        (status, [("connection", "close")], text).into_response()
    }
}

/// Reads a whole body of at most `limit` bytes, within
/// [`BODY_IDLE_TIMEOUT`] between frames and [`BODY_TOTAL_TIMEOUT`] in all.
/// It takes no more memory than `limit`: a body of known length is given
/// exactly its length at once, one of unknown length grows up to `limit`.
pub async fn read_body(mut body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let end = Instant::now() + BODY_TOTAL_TIMEOUT;
    let known = axum::body::HttpBody::size_hint(&body).exact();
    if known.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut out = Vec::with_capacity(known.unwrap_or(0) as usize);
    loop {
        let next = (Instant::now() + BODY_IDLE_TIMEOUT).min(end);
        let frame = match tokio::time::timeout_at(next, body.frame()).await {
            Err(_) => return Err(BodyError::TimedOut),
            Ok(None) => return Ok(Bytes::from(out)),
            Ok(Some(Err(_))) => return Err(BodyError::Failed),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            let len = out.len() + data.len();
            if len > limit {
                return Err(BodyError::TooLarge);
            }
            if len > out.capacity() {
                // Doubling, but never past the limit.
                out.reserve_exact(len.max(2 * out.capacity()).min(limit) - out.len());
            }
            out.extend_from_slice(&data);
        }
    }
}

/// Serves `router` on `listener` under `limits` until `shutdown` resolves,
/// then lets the requests in flight finish. Each request carries the
/// peer's address as `ConnectInfo<SocketAddr>`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes)
        .max_headers(limits.max_headers)
        // A client that shuts its write side is gone: its request is
        // dropped and the connection closed.
        .half_close(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and the like: wait for descriptors to free up.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // No Nagle: an answer written in two parts must not wait for the
        // client's delayed ACK (a 40 ms stall on a warm invocation).
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(req.map(Body::new))
        });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(tcp), service));
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
