//! Fuzzes the control-plane API end to end: the input is a raw HTTP/1.1
//! request, driven through the real `router(state)` with `oneshot` against
//! a registry and code store in a temp dir. The request is signed afresh
//! with the state's key (unless it carries `x-fuzz-keep-signature`), so
//! the fuzzer reaches every operation's path, query and body parsing, not
//! only the signature check. Any answer is fine; a panic is not.
#![no_main]

mod common;

use axum::body::Body;
use axum::http::Request;
use lamb_daemon::credentials::Credentials;
use lamb_daemon::server::{open_state, ServeConfig};
use lamb_daemon::sigv4::{canonical_request, format_amz_date, sha256_hex, signature, SignedRequest};
use lamb_daemon::{router, AppState, NoEngine};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, LazyLock};
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    state: AppState,
    rt: tokio::runtime::Runtime,
}

static ENV: LazyLock<Env> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("tempdir");
    let runtimes = dir.path().join("runtimes");
    std::fs::create_dir_all(runtimes.join("provided.al2023")).expect("runtimes");
    std::fs::create_dir_all(runtimes.join("python3.11")).expect("runtimes");
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        background: Default::default(),
        data_dir: dir.path().join("data"),
        registry_url: None,
        runtimes_dir: runtimes,
        concurrency_limit: 1000,
        async_retry_delays: Vec::new(),
        filesystems: Default::default(),
        brokers: Default::default(),
        aws_endpoints: Default::default(),
        metrics_listen: None,
        allow_deprecated_runtimes: false,
        sessions: None,
        registries: Default::default(),
        cluster: None,
    };
    let mut state = open_state(&config, Arc::new(NoEngine)).expect("state");
    Arc::get_mut(&mut state.0).expect("unique").credentials = Credentials {
        access_key_id: "AKTEST".into(),
        secret_access_key: "secret".into(),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    Env { _dir: dir, state, rt }
});

/// The request as the fuzzer wrote it, signed with the test key.
fn build(raw: common::Raw) -> Option<Request<Body>> {
    let keep = raw.headers.iter().any(|(k, _)| k == "x-fuzz-keep-signature");
    let mut b = Request::builder().method(raw.method.as_str()).uri(raw.target.as_str());
    let mut headers: Vec<(String, String)> = raw
        .headers
        .into_iter()
        .filter(|(k, _)| keep || !matches!(k.as_str(), "host" | "x-amz-date" | "authorization"))
        .collect();
    if !keep {
        let (path, query) = raw.target.split_once('?').unwrap_or((&raw.target, ""));
        let date = format_amz_date(time::OffsetDateTime::now_utc());
        let signed_headers = vec![
            ("host".to_owned(), "localhost".to_owned()),
            ("x-amz-date".to_owned(), date.clone()),
        ];
        let hash = sha256_hex(&raw.body);
        let req = SignedRequest {
            method: &raw.method,
            raw_path: path,
            raw_query: query,
            headers: &signed_headers,
            body_sha256: &hash,
        };
        let cr = canonical_request(&req, &["host".into(), "x-amz-date".into()]);
        let sig = signature("secret", &date, (&date[..8], "us-east-1", "lambda"), &cr);
        headers.extend(signed_headers);
        headers.push((
            "authorization".to_owned(),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKTEST/{}/us-east-1/lambda/aws4_request, \
                 SignedHeaders=host;x-amz-date, Signature={sig}",
                &date[..8]
            ),
        ));
    }
    for (k, v) in headers {
        b = b.header(k, v);
    }
    b.body(Body::from(raw.body)).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(raw) = common::parse(data) else { return };
    let Some(req) = build(raw) else { return };
    let env = &*ENV;
    env.rt.block_on(async {
        let resp = router(env.state.clone()).oneshot(req).await.expect("infallible");
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
    });
});
