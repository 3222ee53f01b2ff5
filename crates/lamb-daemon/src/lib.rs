//! lamb's control plane: Lambda's HTTP API as boto3 and the aws CLI call it
//! (spec 3), SigV4 authentication, the invoke route in front of the
//! [`invoker::Invoker`] seam, and two lamb-specific endpoints (status, logs).
//!
//! [`router`] builds the whole service from an [`AppState`], and
//! [`metrics_router`] the metrics listener's; [`server`] opens the store,
//! binds the sockets and serves until a signal.

pub mod api;
pub mod auth;
pub mod background;
pub mod cluster;
pub mod code_location;
pub mod credentials;
pub mod data_dir;
pub mod engine;
pub mod error;
pub mod esm;
pub mod events;
pub mod file_triggers;
pub mod filesystems;
pub mod images;
pub mod invocation;
pub mod invoker;
pub mod listen;
pub mod log_retention;
pub mod provisioned;
pub mod read_cache;
pub mod s3_code;
pub mod schedules;
pub mod server;
pub mod sessions;
pub mod sigv4;
pub mod snapstart;
pub mod state;
pub mod stream_body;
pub mod urls;
pub mod util;

pub use engine::{Engine, EngineConfig};
pub use error::ApiError;
pub use invoker::{InvokeRequest, InvokeResponse, Invoker, LogType, NoEngine};
pub use state::{AppState, Shared};

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::Router;

/// The whole API: every route behind the request id and SigV4 layers.
pub fn router(state: AppState) -> Router {
    api::routes()
        .merge(file_triggers::routes())
        .merge(esm::routes())
        .merge(urls::routes())
        .merge(schedules::routes())
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        // Presigned: the query's signature is its authentication.
        .route(code_location::CODE_PATH, axum::routing::get(code_location::download))
        .layer(middleware::from_fn(auth::request_id))
        .layer(middleware::from_fn(error::log_failures))
        .with_state(state)
}

pub const METRICS_PATH: &str = "/metrics";

/// `GET /metrics`, unsigned as Prometheus scrapes it, on a listener of its
/// own (`lamb serve --metrics-listen`, off by default): the metrics name
/// every function, so they are served only where the operator chose.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route(METRICS_PATH, axum::routing::get(metrics))
        .with_state(state)
}

async fn metrics(axum::extract::State(st): axum::extract::State<AppState>) -> axum::response::Response {
    use axum::response::IntoResponse;
    match st.invoker.metrics() {
        Some(text) => ([("content-type", "text/plain; version=0.0.4; charset=utf-8")], text).into_response(),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}
