//! Node-to-node forwarding (docs/cluster.md, "How a call is routed" and
//! "Node-to-node traffic"): the receiving node sends the prepared call to
//! the chosen node's `--cluster-listen` address, signed with the cluster
//! secret; that node prepares it again from the shared registry (the same
//! version: the alias's dice were rolled once, here), runs it as the
//! Invoke route would, and its answer is relayed as it is. A node that
//! cannot be reached, or dies with the call, is a retryable 500
//! `ServiceException`.

use super::Cluster;
use crate::api::invoke::answer;
use crate::error::ApiError;
use crate::invocation::{self, Call, Target};
use crate::invoker::{InvokeRequest, LogType};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lamb_cluster::auth::{self, Secret, Signed};
use lamb_types::{LambdaError, Qualifier};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where forwarded invocations arrive.
pub const INVOKE_PATH: &str = "/cluster/v1/invoke";
/// A forwarded body: the 6 MB payload in base64 and the rest.
const MAX_FORWARD_BYTES: usize = 9 * 1024 * 1024;
/// How long a forward waits past the function's own timeout before the
/// chosen node counts as gone (cut off, or stopped answering).
const ANSWER_GRACE: Duration = Duration::from_secs(10);
/// How long connecting to another node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// One call as it travels between nodes.
#[derive(Debug, Serialize, Deserialize)]
pub struct Forwarded {
    pub function: String,
    /// The version that runs (`$LATEST` or a number): never an alias.
    pub version: String,
    /// The ARN the caller invoked, alias and all.
    pub invoked_arn: String,
    pub request_id: String,
    /// Base64.
    pub payload: String,
    pub log_tail: bool,
    pub client_context: Option<String>,
}

impl Forwarded {
    fn of(req: &InvokeRequest) -> Forwarded {
        Forwarded {
            function: req.function.name.clone(),
            version: req.executed_version.to_string(),
            invoked_arn: req.invoked_function_arn.clone(),
            request_id: req.request_id.clone(),
            payload: STANDARD.encode(&req.payload),
            log_tail: req.log_type == LogType::Tail,
            client_context: req.client_context.clone(),
        }
    }
}

/// The forwarding side: a pooled HTTP/1 client and its counters.
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
            http: hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector),
            secret,
            forwarded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }
}

impl Cluster {
    /// Sends `req` to the node at `addr` and relays its answer.
    pub async fn forward(&self, addr: &str, req: &InvokeRequest) -> Result<Response<Body>, ApiError> {
        let body = serde_json::to_vec(&Forwarded::of(req)).expect("a forward is JSON");
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
            .header("content-type", "application/json")
            .header(auth::NODE_HEADER, &self.node_id)
            .header(auth::DATE_HEADER, date.to_string())
            .header(auth::SIGNATURE_HEADER, signature)
            .body(Full::new(Bytes::from(body)))
            .expect("a valid request");
        self.client.forwarded.fetch_add(1, Ordering::Relaxed);
        let limit = Duration::from_secs(u64::from(req.function.spec.timeout)) + ANSWER_GRACE;
        match tokio::time::timeout(limit, self.relay(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.lost(addr, &e.to_string())),
            Err(_) => Err(self.lost(addr, "no answer in time")),
        }
    }

    async fn relay(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<Response<Body>, Box<dyn std::error::Error + Send + Sync>> {
        let response = self.client.http.request(request).await?;
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await?.to_bytes();
        Ok(Response::from_parts(parts, Body::from(bytes)))
    }

    /// A node that could not take or finish the call: Lambda's retryable
    /// error, as the function may or may not have run.
    fn lost(&self, addr: &str, why: &str) -> ApiError {
        self.client.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(node = addr, why, "forwarded invocation lost");
        LambdaError::service(format!("the node running the invocation was lost ({why}); retry")).into()
    }
}

/// The router of `--cluster-listen`: forwarded invocations only.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(INVOKE_PATH, axum::routing::post(take))
        .layer(DefaultBodyLimit::max(MAX_FORWARD_BYTES))
        .with_state(state)
}

/// A forwarded invocation: checked, prepared again here, run, answered as
/// the Invoke route answers.
async fn take(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> axum::response::Response {
    let Some(cluster) = st.cluster.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Err(e) = verify(&cluster, &headers, &body) {
        tracing::warn!(error = %e, "refused a forwarded invocation");
        return (StatusCode::FORBIDDEN, e.to_string()).into_response();
    }
    cluster.client.received.fetch_add(1, Ordering::Relaxed);
    match run(&st, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
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

async fn run(st: &AppState, body: &[u8]) -> Result<axum::response::Response, ApiError> {
    let fwd: Forwarded = serde_json::from_slice(body)
        .map_err(|e| LambdaError::invalid_request_content(format!("bad forwarded invocation: {e}")))?;
    let payload = STANDARD
        .decode(&fwd.payload)
        .map_err(|e| LambdaError::invalid_request_content(format!("bad forwarded payload: {e}")))?;
    let mut target = Target::new(&st.ctx, fwd.function, Qualifier::parse(&fwd.version)?);
    target.invoked_arn = fwd.invoked_arn;
    let call = Call {
        request_id: fwd.request_id,
        payload,
        log_type: if fwd.log_tail { LogType::Tail } else { LogType::None },
        client_context: None,
    };
    let mut req = st.blocking(move |s| invocation::prepare(s, &target, call)).await?;
    req.client_context = fwd.client_context;
    answer(st, req).await
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
