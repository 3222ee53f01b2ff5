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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::OnceLock;
use tokio::sync::watch;

/// Where the URL listener listens by default.
pub const DEFAULT_URL_LISTEN: &str = "127.0.0.1:9081";

/// The base of the URLs this daemon answers; set when the listener binds
/// (one daemon per process).
static URL_BASE: OnceLock<String> = OnceLock::new();

/// `--url-base`: an `http://` or `https://` URL, either a template with
/// `{id}` where the URL id goes (`http://{id}.lambda-url.localhost:9081/`)
/// or a prefix the id and `/` are appended to (`http://box:9081/`).
pub fn parse_url_base(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or_else(|| format!("{s:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || s.chars().any(char::is_whitespace) {
        return Err(format!("{s:?} names no host"));
    }
    Ok(s.to_owned())
}

/// The default base: the path form on the address the listener bound (the
/// loopback address for a wildcard one), which every resolver reads as an
/// IP, with no DNS.
fn default_base(bound: SocketAddr) -> String {
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}/", SocketAddr::new(ip, bound.port()))
}

/// The `FunctionUrl` of a URL id under `base` (see [`parse_url_base`]).
fn url_under(base: &str, url_id: &str) -> String {
    if base.contains("{id}") {
        return base.replace("{id}", url_id);
    }
    let sep = if base.ends_with('/') { "" } else { "/" };
    format!("{base}{sep}{url_id}/")
}

/// The `FunctionUrl` lamb answers: by default
/// `http://127.0.0.1:<port>/<url-id>/`, which clients reach as it is; the
/// listener also routes by Host (`<url-id>.lambda-url.<anything>`), which
/// `--url-base 'http://{id}.lambda-url.localhost:9081/'` answers with where
/// `*.localhost` resolves.
pub fn public_url(url_id: &str) -> String {
    let base = URL_BASE.get().map_or("http://127.0.0.1:9081/", String::as_str);
    url_under(base, url_id)
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
    url_base: Option<String>,
    state: AppState,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr().unwrap_or(addr);
    let _ = URL_BASE.set(url_base.unwrap_or_else(|| default_base(bound)));
    tracing::info!(addr = %bound, "function URLs are served");
    let app = url_router(state);
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        crate::listen::serve(listener, app, crate::listen::URL_LIMITS, shutdown).await;
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_bases() {
        assert_eq!(default_base("0.0.0.0:9081".parse().unwrap()), "http://127.0.0.1:9081/");
        assert_eq!(default_base("[::]:9081".parse().unwrap()), "http://[::1]:9081/");
        assert_eq!(default_base("10.0.0.5:80".parse().unwrap()), "http://10.0.0.5:80/");
        assert_eq!(url_under("http://127.0.0.1:9081/", "abc"), "http://127.0.0.1:9081/abc/");
        assert_eq!(
            url_under("https://box.example/fn", "abc"),
            "https://box.example/fn/abc/"
        );
        assert_eq!(
            url_under("http://{id}.lambda-url.localhost:9081/", "abc"),
            "http://abc.lambda-url.localhost:9081/"
        );
        assert!(parse_url_base("ftp://x/").is_err());
        assert!(parse_url_base("http:///path").is_err());
        assert!(parse_url_base("http://box:9081/").is_ok());
    }
}
