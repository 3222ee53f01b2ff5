//! Node-to-node forwarding (docs/cluster.md, "How a call is routed" and
//! "Node-to-node traffic"): the receiving node sends the prepared call to
//! the chosen node's `--cluster-listen` address, signed with the cluster
//! secret, in the compact form of `wire` (a short head, the payload's raw
//! bytes) on a kept-alive connection; that node prepares it again from its
//! read cache (the same version: the alias's dice were rolled once, here),
//! runs it through its admission and engine, and answers in frames, a
//! streamed response chunk by chunk as the function writes it. Every
//! synchronous path (Invoke, InvokeWithResponseStream, function URLs) goes
//! through [`Cluster::start_remote`]. A node that cannot be reached, or dies
//! with the call, is a retryable 500 `ServiceException`.

use super::wire::{self, Frame, Head};
use super::Cluster;
use crate::error::ApiError;
use crate::invocation::{self, Call, Started, Target};
use crate::invoker::{InvokeRequest, InvokeResponse, LogType, StreamPart, StreamSink};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lamb_cluster::auth::{self, Secret, Signed};
use lamb_types::{LambdaError, Qualifier};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where forwarded invocations arrive.
pub const INVOKE_PATH: &str = "/cluster/v1/invoke";
/// A forwarded body: the 6 MB payload, raw, and its head.
const MAX_FORWARD_BYTES: usize = 7 * 1024 * 1024;
/// How long a forward waits past the function's own timeout before the
/// chosen node counts as gone (cut off, or stopped answering).
const ANSWER_GRACE: Duration = Duration::from_secs(10);
/// How long connecting to another node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The forwarding side: a pooled, kept-alive HTTP/1 client (TCP_NODELAY)
/// and its counters.
pub struct Client {
    http: hyper_util::client::legacy::Client<HttpConnector, Full<Bytes>>,
    secret: Secret,
    forwarded: AtomicU64,
    failed: AtomicU64,
    received: AtomicU64,
}

impl Client {
    pub fn new(secret: Secret) -> Client {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Client {
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .build(connector),
            secret,
            forwarded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }
}

impl Cluster {
    /// Runs `req` on the node at `addr`: its beginning as
    /// [`invocation::start_streamed`] gives one (a streamed response when
    /// `stream`, else the whole answer).
    pub async fn start_remote(self: &Arc<Self>, addr: String, req: InvokeRequest, stream: bool) -> Started {
        let (tx, parts) = tokio::sync::mpsc::channel(crate::stream_body::QUEUED);
        let sink = stream.then_some(tx);
        let me = Arc::clone(self);
        let done = tokio::spawn(async move { me.forward(&addr, &req, sink).await });
        invocation::started(parts, done).await
    }

    /// Runs `req` on the node at `addr` and gives its whole answer.
    pub async fn invoke_remote(&self, addr: &str, req: &InvokeRequest) -> Result<InvokeResponse, ApiError> {
        self.forward(addr, req, None).await
    }

    /// Sends `req` to the node at `addr`; streamed pieces go to `sink`.
    async fn forward(
        &self,
        addr: &str,
        req: &InvokeRequest,
        sink: Option<StreamSink>,
    ) -> Result<InvokeResponse, ApiError> {
        let mut head = Head::of(req);
        head.stream = sink.is_some();
        let body = wire::request_body(&head, &req.payload);
        let date = auth::unix_now();
        let signature = self.client.secret.sign(&Signed {
            method: "POST",
            path: INVOKE_PATH,
            node: &self.node_id,
            date,
            body: &body,
        });
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("http://{addr}{INVOKE_PATH}"))
            .header("content-type", "application/octet-stream")
            .header(auth::NODE_HEADER, &self.node_id)
            .header(auth::DATE_HEADER, date.to_string())
            .header(auth::SIGNATURE_HEADER, signature)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        self.client.forwarded.fetch_add(1, Ordering::Relaxed);
        let limit = Duration::from_secs(u64::from(req.function.spec.timeout)) + ANSWER_GRACE;
        match tokio::time::timeout(limit, self.relay(request, sink)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => Err(self.lost(addr, &e.to_string())),
            Err(_) => Err(self.lost(addr, "no answer in time")),
        }
    }

    /// Reads the chosen node's frames as they come. The outer error: the
    /// node or the link failed; the inner: how the call ended there.
    async fn relay(
        &self,
        request: Request<Full<Bytes>>,
        sink: Option<StreamSink>,
    ) -> Result<Result<InvokeResponse, ApiError>, Box<dyn std::error::Error + Send + Sync>> {
        let response = self.client.http.request(request).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("the node answered {}", response.status()).into());
        }
        let mut body = response.into_body();
        let mut reader = wire::Reader::default();
        let mut payload = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame?.into_data() else { continue };
            reader.push(&data);
            while let Some(frame) = reader.frame()? {
                match frame {
                    // A caller gone: the function still runs to its end there.
                    Frame::Begin(content_type) => send(&sink, StreamPart::Begin { content_type }).await,
                    Frame::Chunk(bytes) => send(&sink, StreamPart::Chunk(bytes)).await,
                    Frame::Payload(bytes) => payload = bytes,
                    Frame::End(end) => {
                        return Ok(Ok(InvokeResponse {
                            payload,
                            function_error: end.function_error,
                            log_tail: end.log_tail,
                        }))
                    }
                    Frame::Error(e) => return Ok(Err(e.into_api())),
                }
            }
        }
        Err("the answer ended before the call did".into())
    }

    /// A node that could not take or finish the call: Lambda's retryable
    /// error, as the function may or may not have run.
    fn lost(&self, addr: &str, why: &str) -> ApiError {
        self.client.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(node = addr, why, "forwarded invocation lost");
        LambdaError::service(format!("the node running the invocation was lost ({why}); retry")).into()
    }
}

async fn send(sink: &Option<StreamSink>, part: StreamPart) {
    if let Some(sink) = sink {
        let _ = sink.send(part).await;
    }
}

/// The router of `--cluster-listen`: forwarded invocations only.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(INVOKE_PATH, axum::routing::post(take))
        .layer(DefaultBodyLimit::max(MAX_FORWARD_BYTES))
        .with_state(state)
}

/// A forwarded invocation: checked, prepared again here, run here (never
/// forwarded again), answered in frames.
async fn take(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    let Some(cluster) = st.cluster.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(e) = verify(&cluster, &headers, &body) {
        tracing::warn!(error = %e, "refused a forwarded invocation");
        return (StatusCode::FORBIDDEN, e.to_string()).into_response();
    }
    cluster.client.received.fetch_add(1, Ordering::Relaxed);
    let (content_type, mut stream) = match run(&st, &body).await {
        // A whole answer goes as one body of known length.
        Ok(Started::Whole(answer)) => return (StatusCode::OK, Frame::answer(&answer)).into_response(),
        Err(e) => return (StatusCode::OK, Frame::answer(&Err(e))).into_response(),
        Ok(Started::Streaming { content_type, stream }) => (content_type, stream),
    };
    let (tx, out) = crate::stream_body::channel();
    tokio::spawn(async move {
        let _ = tx.send(Frame::Begin(content_type).encode().into()).await;
        while let Some(piece) = stream.next().await {
            let frames = match piece {
                invocation::Piece::Bytes(bytes) => Frame::Chunk(bytes).encode(),
                invocation::Piece::End(answer) => Frame::answer(&answer),
            };
            // The forwarding node gone: the function still runs to its end.
            let _ = tx.send(frames.into()).await;
        }
    });
    (StatusCode::OK, out).into_response()
}

fn verify(cluster: &Cluster, headers: &HeaderMap, body: &[u8]) -> Result<(), auth::AuthError> {
    let get = |name: &'static str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or(auth::AuthError::Missing(name))
    };
    let node = get(auth::NODE_HEADER)?;
    let date = get(auth::DATE_HEADER)?
        .parse()
        .map_err(|_| auth::AuthError::Missing(auth::DATE_HEADER))?;
    let signature = get(auth::SIGNATURE_HEADER)?;
    let signed = Signed {
        method: "POST",
        path: INVOKE_PATH,
        node,
        date,
        body,
    };
    cluster.client.secret.verify(&signed, signature, auth::unix_now())
}

/// Prepares the forwarded call here (from the read cache: a warm version
/// reads nothing from the database) and starts it on this node's
/// admission and engine.
async fn run(st: &AppState, body: &[u8]) -> Result<Started, ApiError> {
    let (head, payload) = wire::split_request(body)?;
    let mut target = Target::new(&st.ctx, head.function, Qualifier::parse(&head.version)?);
    target.invoked_arn = head.invoked_arn;
    let call = Call {
        request_id: head.request_id,
        payload: payload.to_vec(),
        log_type: if head.log_tail { LogType::Tail } else { LogType::None },
        client_context: None,
    };
    let mut req = invocation::prepare_now(st, target, call).await?;
    req.client_context = head.client_context;
    let invoker = Arc::clone(&st.invoker);
    if head.stream {
        return Ok(invocation::start_on(invoker, req).await);
    }
    Ok(Started::Whole(invoker.invoke(req).await))
}

/// This node's forwarding counters, in Prometheus' text format.
pub fn metrics(cluster: &Cluster) -> String {
    let c = &cluster.client;
    let alive = cluster
        .nodes()
        .iter()
        .filter(|n| n.alive(lamb_cluster::membership::DEAD_AFTER))
        .count();
    format!(
        "# TYPE lamb_cluster_forwarded_total counter\nlamb_cluster_forwarded_total {}\n\
         # TYPE lamb_cluster_forward_failures_total counter\nlamb_cluster_forward_failures_total {}\n\
         # TYPE lamb_cluster_received_total counter\nlamb_cluster_received_total {}\n\
         # TYPE lamb_cluster_nodes_alive gauge\nlamb_cluster_nodes_alive {alive}\n",
        c.forwarded.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        c.received.load(Ordering::Relaxed),
    )
}
