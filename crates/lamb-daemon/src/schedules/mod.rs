//! Schedules: EventBridge's `rate(...)` and `cron(...)` expressions stored
//! in the registry; each firing queues an async invocation with the
//! Scheduled Event shape.

pub mod api;
pub mod expr;
mod runner;

use crate::state::AppState;
use axum::routing::{delete, get};
use axum::Router;
use tokio::sync::watch;

pub use runner::scheduled_event;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(api::SCHEDULES_PATH, get(api::list).post(api::add))
        .route("/lamb/schedules/{name}", delete(api::remove))
}

/// Starts the runner; `time_scale` > 1 makes schedule time pass faster
/// (tests only).
pub fn start(state: AppState, time_scale: f64, stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(runner::run(state, time_scale, stop))
}
