//! lamb's control plane: Lambda's HTTP API as boto3 and the aws CLI call it
//! (spec 3), SigV4 authentication, the invoke route in front of the
//! [`invoker::Invoker`] seam, and two lamb-specific endpoints (status, logs).
//!
//! [`router`] builds the whole service from an [`AppState`]; [`server`]
//! opens the store, binds the socket and serves until a signal.

pub mod api;
pub mod auth;
pub mod credentials;
pub mod error;
pub mod invoker;
pub mod server;
pub mod sigv4;
pub mod state;
pub mod util;

pub use error::ApiError;
pub use invoker::{InvocationType, InvokeRequest, InvokeResponse, Invoker, LogType, NoEngine};
pub use state::{AppState, Shared};

use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::Router;

/// The whole API: every route behind the request id and SigV4 layers.
pub fn router(state: AppState) -> Router {
    api::routes()
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(middleware::from_fn(auth::request_id))
        .with_state(state)
}
