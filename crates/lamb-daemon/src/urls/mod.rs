//! Function URLs: the control-plane operations (`/2021-10-31/.../url`) and
//! the URL listener (`--url-listen`, default `127.0.0.1:9081`) that turns
//! HTTP requests into payload format 2.0 invocations.

mod config;
mod cors;
mod event;
mod listener;
mod response;

use crate::state::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use std::net::SocketAddr;
use std::sync::OnceLock;
use tokio::sync::watch;

/// Where the URL listener listens by default.
pub const DEFAULT_URL_LISTEN: &str = "127.0.0.1:9081";

/// The `host:port` part of the URLs this daemon answers; set when the
/// listener binds (one daemon per process).
static URL_AUTHORITY: OnceLock<String> = OnceLock::new();

/// The `FunctionUrl` lamb answers: `http://<url-id>.lambda-url.localhost:<port>/`.
/// Clients that cannot resolve it send `http://127.0.0.1:<port>/<url-id>/...`.
pub fn public_url(url_id: &str) -> String {
    let authority = URL_AUTHORITY.get().map_or("localhost:9081", String::as_str);
    format!("http://{url_id}.lambda-url.{authority}/")
}

/// The control-plane routes, merged into the API's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/2021-10-31/functions/{name}/url",
            get(config::get)
                .post(config::create)
                .put(config::update)
                .delete(config::delete),
        )
        .route("/2021-10-31/functions/{name}/urls", get(config::list))
}

/// The URL listener's service: every path, every method.
pub fn url_router(state: AppState) -> Router {
    Router::new()
        .fallback(listener::handle)
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Binds `addr` and serves function URLs until `stop` turns true.
pub async fn listen(
    addr: SocketAddr,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr().unwrap_or(addr);
    let _ = URL_AUTHORITY.set(format!("localhost:{}", bound.port()));
    tracing::info!(addr = %bound, "function URLs are served");
    let app = url_router(state);
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        crate::listen::serve(listener, app, crate::listen::URL_LIMITS, shutdown).await;
    }))
}
