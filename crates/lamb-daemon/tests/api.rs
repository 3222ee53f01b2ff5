//! The router driven with `oneshot` requests, no socket: signed requests
//! through every layer, against a registry and code store in a temp dir.

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use lamb_daemon::credentials::Credentials;
use lamb_daemon::server::{open_state, ServeConfig};
use lamb_daemon::sigv4::{canonical_request, format_amz_date, sha256_hex, signature, SignedRequest};
use lamb_daemon::{router, AppState, NoEngine};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::Arc;
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    state: AppState,
}

fn env() -> Env {
    env_in(tempfile::tempdir().unwrap(), false)
}

/// A daemon's state over `dir` (which may hold an earlier one's data).
fn env_in(dir: tempfile::TempDir, allow_deprecated_runtimes: bool) -> Env {
    let runtimes = dir.path().join("runtimes");
    for rt in ["provided.al2023", "python3.6", "python3.11", "python3.13"] {
        std::fs::create_dir_all(runtimes.join(rt)).unwrap();
    }
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
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
        allow_deprecated_runtimes,
        sessions: None,
        registries: Default::default(),
        cluster: None,
    };
    let mut state = open_state(&config, Arc::new(NoEngine)).unwrap();
    // Fixed keys whatever the environment says.
    Arc::get_mut(&mut state.0).unwrap().credentials = Credentials {
        access_key_id: "AKTEST".into(),
        secret_access_key: "secret".into(),
    };
    Env { _dir: dir, state }
}

fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in files {
        w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn signed(method: &str, uri: &str, body: Vec<u8>, secret: &str) -> Request<Body> {
    let hash = sha256_hex(&body);
    signed_as(method, uri, &hash, None, secret)
        .body(Body::from(body))
        .unwrap()
}

/// A signed head over the payload hash `hash`; with `declared`, sent and
/// signed as `x-amz-content-sha256`.
fn signed_as(
    method: &str,
    uri: &str,
    hash: &str,
    declared: Option<&str>,
    secret: &str,
) -> axum::http::request::Builder {
    let date = format_amz_date(time::OffsetDateTime::now_utc());
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let mut headers = vec![
        ("host".to_string(), "localhost".to_string()),
        ("x-amz-date".to_string(), date.clone()),
    ];
    let mut names = vec!["host".to_string(), "x-amz-date".to_string()];
    if let Some(d) = declared {
        headers.push(("x-amz-content-sha256".into(), d.into()));
        names.insert(0, "x-amz-content-sha256".into());
        names.sort();
    }
    let req = SignedRequest {
        method,
        raw_path: path,
        raw_query: query,
        headers: &headers,
        body_sha256: hash,
    };
    let cr = canonical_request(&req, &names);
    let sig = signature(secret, &date, (&date[..8], "us-east-1", "lambda"), &cr);
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in &headers {
        b = b.header(k, v);
    }
    b.header(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential=AKTEST/{}/us-east-1/lambda/aws4_request, \
             SignedHeaders={}, Signature={sig}",
            &date[..8],
            names.join(";")
        ),
    )
}

async fn call(e: &Env, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
    let resp = router(e.state.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body: Bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, v, headers)
}

async fn api(e: &Env, method: &str, uri: &str, body: Value) -> (StatusCode, Value, axum::http::HeaderMap) {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    call(e, signed(method, uri, bytes, "secret")).await
}

fn create_body(name: &str) -> Value {
    json!({
        "FunctionName": name,
        "Role": "arn:aws:iam::000000000000:role/r",
        "Runtime": "provided.al2023",
        "Handler": "h",
        "Code": {"ZipFile": b64(&zip(&[("bootstrap", b"#!/bin/sh\n")]))},
        "Tags": {"team": "a"},
    })
}

#[tokio::test]
async fn function_lifecycle() {
    let e = env();
    let (s, v, h) = api(&e, "POST", "/2015-03-31/functions", create_body("f")).await;
    assert_eq!(s, 201, "{v}");
    // As AWS answers a create; the work is done, so a read shows it Active.
    assert_eq!(v["State"], "Pending");
    assert!(h.contains_key("x-amzn-requestid"));
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", create_body("f")).await;
    assert_eq!(s, 409, "{v}");
    let (s, v, _) = api(&e, "GET", "/2015-03-31/functions/f", Value::Null).await;
    assert_eq!(s, 200);
    assert_eq!(v["Configuration"]["FunctionName"], "f");
    assert_eq!(v["Configuration"]["State"], "Active");
    assert_eq!(v["Tags"]["team"], "a");
    let (s, v, _) = api(
        &e,
        "GET",
        "/2015-03-31/functions/f/configuration?Qualifier=%24LATEST",
        Value::Null,
    )
    .await;
    assert_eq!((s, v["Version"].as_str()), (StatusCode::OK, Some("$LATEST")));
    let (s, v, _) = api(
        &e,
        "PUT",
        "/2015-03-31/functions/f/configuration",
        json!({"MemorySize": 256, "Environment": {"Variables": {"AB": "1"}}}),
    )
    .await;
    assert_eq!((s, v["MemorySize"].as_u64()), (StatusCode::OK, Some(256)));
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions/f/versions", json!({})).await;
    assert_eq!((s, v["Version"].as_str()), (StatusCode::CREATED, Some("1")));
    let (s, _, _) = api(
        &e,
        "POST",
        "/2015-03-31/functions/f/aliases",
        json!({"Name": "live", "FunctionVersion": "1"}),
    )
    .await;
    assert_eq!(s, 201);
    let (s, v, _) = api(&e, "GET", "/2015-03-31/functions?MaxItems=10", Value::Null).await;
    assert_eq!((s, v["Functions"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (s, _, _) = api(&e, "DELETE", "/2015-03-31/functions/f", Value::Null).await;
    assert_eq!(s, 204);
    let (s, v, h) = api(&e, "GET", "/2015-03-31/functions/f", Value::Null).await;
    assert_eq!(s, 404);
    assert_eq!(v["Type"], "User");
    assert_eq!(h["x-amzn-errortype"], "ResourceNotFoundException");
}

#[tokio::test]
async fn refuses_bad_input_and_stores_nothing() {
    let e = env();
    let mut body = create_body("g");
    body["Runtime"] = json!("cobol");
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", body).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidParameterValueException"))
    );
    let mut body = create_body("g");
    body["Code"] = json!({"ZipFile": b64(&zip(&[("../evil", b"x")]))});
    let (s, _, _) = api(&e, "POST", "/2015-03-31/functions", body).await;
    assert!(s.is_client_error() || s.is_server_error());
    let mut body = create_body("g");
    body["Code"] = json!({"S3Bucket": "b", "S3Key": "k"});
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", body).await;
    assert_eq!(s, 400);
    assert!(v["message"].as_str().unwrap().contains("S3"));
    let (s, v, _) = call(
        &e,
        signed("POST", "/2015-03-31/functions", b"{not json".to_vec(), "secret"),
    )
    .await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (StatusCode::BAD_REQUEST, Some("InvalidRequestContentException"))
    );
    let code = e.state.data_dir.join("code");
    assert_eq!(std::fs::read_dir(code).unwrap().count(), 0);
}

#[tokio::test]
async fn authentication_failures_are_403() {
    let e = env();
    let req = Request::get("/2015-03-31/functions").body(Body::empty()).unwrap();
    let (s, v, h) = call(&e, req).await;
    assert_eq!(s, 403);
    assert_eq!(h["x-amzn-errortype"], "MissingAuthenticationTokenException");
    assert_eq!(v["Type"], "User");
    let (s, _, h) = call(&e, signed("GET", "/2015-03-31/functions", Vec::new(), "wrong")).await;
    assert_eq!(s, 403);
    assert_eq!(h["x-amzn-errortype"], "InvalidSignatureException");
    let mut req = signed("POST", "/2015-03-31/functions", b"{}".to_vec(), "secret");
    *req.body_mut() = Body::from("{\"x\":1}");
    let (s, _, _) = call(&e, req).await;
    assert_eq!(s, 403);
    let req = Request::post("/2015-03-31/functions")
        .header("content-length", "100000000")
        .body(Body::empty())
        .unwrap();
    let (s, v, _) = call(&e, req).await;
    // As AWS answers test_lambda_api::TestLambdaSizeLimits::test_oversized_request_create_lambda.
    assert_eq!(
        (s, v["__type"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("RequestEntityTooLargeException"))
    );
}

#[tokio::test]
async fn unknown_operations_are_named() {
    let e = env();
    let (s, v, _) = api(&e, "PUT", "/2025-03-31/functions/f/function-scaling-config", json!({})).await;
    assert_eq!(s, 501);
    assert!(v["message"].as_str().unwrap().contains("PutFunctionScalingConfig"));
    let (s, v, h) = api(&e, "GET", "/nowhere", Value::Null).await;
    assert_eq!(s, 400);
    assert_eq!(h["x-amzn-errortype"], "UnknownOperationException");
    assert!(v["message"].as_str().unwrap().contains("/nowhere"));
    let (s, _, h) = api(&e, "PATCH", "/2015-03-31/functions", Value::Null).await;
    assert_eq!(s, 400);
    assert_eq!(h["x-amzn-errortype"], "UnknownOperationException");
}

#[tokio::test]
async fn invoke_route_resolves_and_hands_off() {
    let e = env();
    let (s, _, _) = api(&e, "POST", "/2015-03-31/functions/nope/invocations", json!({})).await;
    assert_eq!(s, 404);
    api(&e, "POST", "/2015-03-31/functions", create_body("f")).await;
    let big = vec![b' '; 6 * 1024 * 1024 + 1];
    let (s, v, _) = call(&e, signed("POST", "/2015-03-31/functions/f/invocations", big, "secret")).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("RequestTooLargeException"))
    );
    let (s, v, _) = api(
        &e,
        "POST",
        "/2015-03-31/functions/f/invocations?Qualifier=nosuch",
        json!({}),
    )
    .await;
    assert_eq!(s, 404, "{v}");
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions/f/invocations", json!({"a": 1})).await;
    assert_eq!(
        (s, v["__type"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("ServiceException"))
    );
}

#[tokio::test]
async fn layers_concurrency_and_tags() {
    let e = env();
    let layer = json!({"Content": {"ZipFile": b64(&zip(&[("lib/x", b"x")]))}, "CompatibleRuntimes": ["python3.11"]});
    let (s, v, _) = api(&e, "POST", "/2018-10-31/layers/l/versions", layer).await;
    assert_eq!(s, 201, "{v}");
    let arn = v["LayerVersionArn"].as_str().unwrap().to_owned();
    let mut body = create_body("f");
    body["Layers"] = json!([arn]);
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", body).await;
    assert_eq!(s, 201, "{v}");
    let (s, v, _) = api(
        &e,
        "GET",
        "/2018-10-31/layers?CompatibleRuntime=python3.11",
        Value::Null,
    )
    .await;
    assert_eq!((s, v["Layers"].as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
    let (s, _, _) = api(
        &e,
        "GET",
        &format!("/2018-10-31/layers?find=LayerVersion&Arn={}", arn.replace(':', "%3A")),
        Value::Null,
    )
    .await;
    assert_eq!(s, 200);
    let (s, _, _) = api(
        &e,
        "PUT",
        "/2017-10-31/functions/f/concurrency",
        json!({"ReservedConcurrentExecutions": 5}),
    )
    .await;
    assert_eq!(s, 200);
    let (_, v, _) = api(&e, "GET", "/2019-09-30/functions/f/concurrency", Value::Null).await;
    assert_eq!(v["ReservedConcurrentExecutions"], 5);
    let (s, _, _) = api(
        &e,
        "PUT",
        "/2017-10-31/functions/f/concurrency",
        json!({"ReservedConcurrentExecutions": 950}),
    )
    .await;
    assert_eq!(s, 400);
    let fn_arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af";
    let (s, _, _) = api(
        &e,
        "POST",
        &format!("/2017-03-31/tags/{fn_arn}"),
        json!({"Tags": {"b": "2"}}),
    )
    .await;
    assert_eq!(s, 204);
    let (s, _, _) = api(
        &e,
        "DELETE",
        &format!("/2017-03-31/tags/{fn_arn}?tagKeys=team"),
        Value::Null,
    )
    .await;
    assert_eq!(s, 204);
    let (_, v, _) = api(&e, "GET", &format!("/2017-03-31/tags/{fn_arn}"), Value::Null).await;
    assert_eq!(v["Tags"], json!({"b": "2"}));
    let (s, v, _) = api(&e, "GET", "/2016-08-19/account-settings", Value::Null).await;
    assert_eq!(
        (s, v["AccountUsage"]["FunctionCount"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (s, v, _) = api(&e, "GET", "/lamb/status", Value::Null).await;
    assert_eq!((s, v["Layers"].as_u64()), (StatusCode::OK, Some(1)));
}

/// A large body that records whether anyone read it (and fails if so).
struct Untouched(Arc<std::sync::atomic::AtomicBool>);

impl axum::body::HttpBody for Untouched {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, std::io::Error>>> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::Ready(Some(Err(std::io::Error::other("the body was read"))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(50 << 20)
    }
}

#[tokio::test]
async fn a_bad_signature_is_refused_before_the_body_is_read() {
    let e = env();
    let uri = "/2015-03-31/functions";
    let some_hash = sha256_hex(b"some body");
    let cases: Vec<(&str, axum::http::request::Builder)> = vec![
        (
            "MissingAuthenticationTokenException",
            Request::post(uri).header("host", "localhost"),
        ),
        (
            "InvalidSignatureException",
            signed_as("POST", uri, &some_hash, Some(&some_hash), "wrong"),
        ),
        // The signature would be good, but the payload is not signed.
        (
            "InvalidSignatureException",
            signed_as("POST", uri, "UNSIGNED-PAYLOAD", Some("UNSIGNED-PAYLOAD"), "secret"),
        ),
        (
            "IncompleteSignatureException",
            Request::post(uri)
                .header("host", "localhost")
                .header("authorization", "AWS4-HMAC-SHA256 x"),
        ),
    ];
    for (code, head) in cases {
        let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let req = head
            .header("content-length", (50 << 20).to_string())
            .body(Body::new(Untouched(Arc::clone(&read))))
            .unwrap();
        let (s, _, h) = call(&e, req).await;
        assert_eq!(
            (s, h["x-amzn-errortype"].to_str().unwrap()),
            (StatusCode::FORBIDDEN, code)
        );
        assert_eq!(h["connection"], "close", "{code}");
        assert!(
            !read.load(std::sync::atomic::Ordering::SeqCst),
            "{code}: the body was read"
        );
    }
}

#[tokio::test]
async fn a_declared_payload_hash_must_be_the_body() {
    let e = env();
    let body = create_body("hashed").to_string().into_bytes();
    let hash = sha256_hex(&body);
    let req = signed_as("POST", "/2015-03-31/functions", &hash, Some(&hash), "secret")
        .body(Body::from(body.clone()))
        .unwrap();
    let (s, v, _) = call(&e, req).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    // The head is signed, the body is another: refused, nothing created.
    let other = create_body("swapped").to_string().into_bytes();
    let req = signed_as("POST", "/2015-03-31/functions", &hash, Some(&hash), "secret")
        .body(Body::from(other))
        .unwrap();
    let (s, v, h) = call(&e, req).await;
    assert_eq!(
        (s, h["x-amzn-errortype"].to_str().unwrap()),
        (StatusCode::FORBIDDEN, "InvalidSignatureException")
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("x-amz-content-sha256"),
        "{v}"
    );
    let (s, _, _) = api(&e, "GET", "/2015-03-31/functions/swapped", Value::Null).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// An invoker that keeps metrics and runs nothing.
struct Metered;

impl lamb_daemon::Invoker for Metered {
    fn invoke(&self, req: lamb_daemon::InvokeRequest) -> lamb_daemon::invoker::InvokeFuture<'_> {
        NoEngine.invoke(req)
    }

    fn metrics(&self) -> Option<String> {
        Some("lamb_invocations_total{function=\"secret-name\"} 1\n".into())
    }
}

#[tokio::test]
async fn metrics_are_served_only_by_the_metrics_router() {
    let mut e = env();
    Arc::get_mut(&mut e.state.0).unwrap().invoker = Arc::new(Metered);
    // The API serves nothing unsigned, /metrics included.
    let (s, _, h) = call(&e, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(
        (s, h["x-amzn-errortype"].to_str().unwrap()),
        (StatusCode::FORBIDDEN, "MissingAuthenticationTokenException")
    );
    let resp = lamb_daemon::metrics_router(e.state.clone())
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("secret-name"));
}

/// python3.6 is past AWS's block-create and block-update dates (2022-07-18,
/// 2022-08-29; checked against today's clock, hence dates long past): refused with AWS's error unless the daemon allows
/// deprecated runtimes; a function made while allowed keeps its
/// configuration, can be moved to a current runtime, and nothing else about
/// it changes.
#[tokio::test]
async fn deprecated_runtimes_refused_unless_allowed() {
    let e = env();
    let mut body = create_body("old");
    body["Runtime"] = json!("python3.6");
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", body.clone()).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["Type"], "User");
    assert_eq!(
        v["message"],
        "The runtime parameter of python3.6 is no longer supported for creating or updating AWS Lambda \
         functions. We recommend you use a supported runtime while creating or updating functions."
    );
    let (s, _, _) = api(&e, "GET", "/2015-03-31/functions/old", Value::Null).await;
    assert_eq!(s, 404);

    // Allowed: created; then a daemon without the flag over the same data.
    let Env { _dir: dir, state } = env_in(e._dir, true);
    let e = Env { _dir: dir, state };
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", body).await;
    assert_eq!(s, 201, "{v}");
    let Env { _dir: dir, state } = e;
    drop(state);
    let e = env_in(dir, false);
    let code = json!({"ZipFile": b64(&zip(&[("bootstrap", b"#!/bin/sh\n")]))});
    let (s, v, _) = api(&e, "PUT", "/2015-03-31/functions/old/code", code).await;
    assert_eq!(s, 400, "{v}");
    assert!(v["message"]
        .as_str()
        .unwrap()
        .contains("python3.6 is no longer supported"));
    let cfg = "/2015-03-31/functions/old/configuration";
    let (s, v, _) = api(&e, "PUT", cfg, json!({"Timeout": 9})).await;
    assert_eq!(s, 400, "{v}");
    let (_, v, _) = api(&e, "GET", cfg, Value::Null).await;
    assert_eq!(v["Timeout"], 3);
    assert_eq!(v["Runtime"], "python3.6");
    let (s, v, _) = api(&e, "PUT", cfg, json!({"Runtime": "python3.13", "Timeout": 9})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["Runtime"], "python3.13");
}

/// MemorySize in 1 MB steps from 128 to 3008.
#[tokio::test]
async fn memory_size_in_one_mb_steps() {
    let e = env();
    let mut body = create_body("m");
    for (mb, status) in [(127, 400), (3009, 400), (200, 201)] {
        body["MemorySize"] = json!(mb);
        let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", body.clone()).await;
        assert_eq!(s, status, "{mb}: {v}");
    }
    let (_, v, _) = api(&e, "GET", "/2015-03-31/functions/m/configuration", Value::Null).await;
    assert_eq!(v["MemorySize"], 200);
}

/// A request signed with a function's session credentials, the token sent
/// and signed as `x-amz-security-token`.
fn session_signed(method: &str, uri: &str, c: &lamb_daemon::sessions::SessionCredentials) -> Request<Body> {
    let date = format_amz_date(time::OffsetDateTime::now_utc());
    let headers = vec![
        ("host".to_string(), "localhost".to_string()),
        ("x-amz-date".to_string(), date.clone()),
        ("x-amz-security-token".to_string(), c.session_token.clone()),
    ];
    let names = ["host".to_string(), "x-amz-date".into(), "x-amz-security-token".into()];
    let req = SignedRequest {
        method,
        raw_path: uri,
        raw_query: "",
        headers: &headers,
        body_sha256: &sha256_hex(b""),
    };
    let cr = canonical_request(&req, &names);
    let sig = signature(&c.secret_access_key, &date, (&date[..8], "us-east-1", "lambda"), &cr);
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in &headers {
        b = b.header(k, v);
    }
    b.header(
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{}/us-east-1/lambda/aws4_request, SignedHeaders={}, Signature={sig}",
            c.access_key_id,
            &date[..8],
            names.join(";")
        ),
    )
    .body(Body::empty())
    .unwrap()
}

#[tokio::test]
async fn function_sessions_reach_the_lambda_api_only_and_expire() {
    use lamb_daemon::sessions::Sessions;
    let e = env();
    let arn = "arn:aws:lambda:us-east-1:000000000000:function:f";
    let role = "arn:aws:iam::000000000000:role/r";
    let c = e.state.sessions.mint(arn, role, time::OffsetDateTime::now_utc());
    let (s, v, _) = call(&e, session_signed("GET", "/2015-03-31/functions", &c)).await;
    assert_eq!(s, 200, "{v}");
    // lamb's own endpoints are the administrator's.
    for path in [
        "/lamb/status",
        "/lamb/schedules",
        "/2015-03-31/functions/f/lamb-logs",
        "/lamb%2Fstatus",
    ] {
        let (s, v, h) = call(&e, session_signed("GET", path, &c)).await;
        assert_eq!(
            (s.as_u16(), h["x-amzn-errortype"].to_str().unwrap()),
            (403, "AccessDeniedException"),
            "{path}"
        );
        assert!(v.to_string().contains("assumed-role/r/f"), "{v}");
    }
    let expired = e.state.sessions.mint_expiring_in(arn, role, -60);
    let (s, v, h) = call(&e, session_signed("GET", "/2015-03-31/functions", &expired)).await;
    assert_eq!(
        (s.as_u16(), h["x-amzn-errortype"].to_str().unwrap()),
        (403, "ExpiredTokenException"),
        "{v}"
    );
    // Another daemon's (or an earlier start's) session.
    let foreign = Sessions::with_key([1; 32], lamb_daemon::sessions::DEFAULT_DURATION).mint(
        arn,
        role,
        time::OffsetDateTime::now_utc(),
    );
    let (s, _, h) = call(&e, session_signed("GET", "/2015-03-31/functions", &foreign)).await;
    assert_eq!(
        (s.as_u16(), h["x-amzn-errortype"].to_str().unwrap()),
        (403, "UnrecognizedClientException")
    );
    // A good token with a signature made with another secret.
    let wrong = lamb_daemon::sessions::SessionCredentials {
        secret_access_key: "x".repeat(40),
        ..c.clone()
    };
    let (s, _, h) = call(&e, session_signed("GET", "/2015-03-31/functions", &wrong)).await;
    assert_eq!(
        (s.as_u16(), h["x-amzn-errortype"].to_str().unwrap()),
        (403, "InvalidSignatureException")
    );
    // The admin key id with a function's token.
    let admin_id = lamb_daemon::sessions::SessionCredentials {
        access_key_id: "AKTEST".into(),
        ..c.clone()
    };
    let (s, _, h) = call(&e, session_signed("GET", "/2015-03-31/functions", &admin_id)).await;
    assert_eq!(
        (s.as_u16(), h["x-amzn-errortype"].to_str().unwrap()),
        (403, "UnrecognizedClientException")
    );
}

#[tokio::test]
async fn provisioned_concurrency_configs() {
    let e = env();
    let path = "/2019-09-30/functions/f/provisioned-concurrency";
    assert_eq!(api(&e, "POST", "/2015-03-31/functions", create_body("f")).await.0, 201);
    assert_eq!(
        api(&e, "POST", "/2015-03-31/functions/f/versions", json!({})).await.0,
        201
    );
    let (s, _, _) = api(
        &e,
        "PUT",
        "/2015-03-31/functions/f/configuration",
        json!({"Description": "2"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        api(&e, "POST", "/2015-03-31/functions/f/versions", json!({})).await.0,
        201
    );
    let alias = json!({"Name": "a", "FunctionVersion": "2"});
    assert_eq!(api(&e, "POST", "/2015-03-31/functions/f/aliases", alias).await.0, 201);
    // The model's constraint, as AWS's front door answers it, and nothing stored.
    for (body, words) in [
        (json!({"ProvisionedConcurrentExecutions": 0}), "Value '0'"),
        (json!({}), "Value null"),
    ] {
        let (s, v, h) = api(&e, "PUT", &format!("{path}?Qualifier=1"), body).await;
        assert_eq!(
            (s.as_u16(), h["x-amzn-errortype"].to_str().unwrap()),
            (400, "ValidationException"),
            "{v}"
        );
        assert!(v["message"].as_str().unwrap().contains(words), "{v}");
    }
    let (s, v, _) = api(&e, "GET", &format!("{path}?Qualifier=1"), Value::Null).await;
    assert_eq!(
        (s.as_u16(), v["__type"].as_str()),
        (404, Some("ProvisionedConcurrencyConfigNotFoundException"))
    );
    // A daemon without an engine keeps the configuration, never READY.
    for q in ["1", "a"] {
        let (s, v, _) = api(
            &e,
            "PUT",
            &format!("{path}?Qualifier={q}"),
            json!({"ProvisionedConcurrentExecutions": 2}),
        )
        .await;
        assert_eq!(s, 202, "{v}");
        assert_eq!(v["Status"], "IN_PROGRESS");
        assert_eq!(v["AllocatedProvisionedConcurrentExecutions"], 0);
        assert_eq!(v["RequestedProvisionedConcurrentExecutions"], 2);
    }
    // Two pages of one.
    let (s, v, _) = api(&e, "GET", &format!("{path}?List=ALL&MaxItems=1"), Value::Null).await;
    assert_eq!(s, 200);
    let configs = v["ProvisionedConcurrencyConfigs"].as_array().unwrap();
    assert_eq!(configs.len(), 1);
    assert!(configs[0]["FunctionArn"].as_str().unwrap().ends_with(":function:f:1"));
    let marker = v["NextMarker"].as_str().unwrap().to_owned();
    let (_, v, _) = api(
        &e,
        "GET",
        &format!("{path}?List=ALL&MaxItems=1&Marker={marker}"),
        Value::Null,
    )
    .await;
    let configs = v["ProvisionedConcurrencyConfigs"].as_array().unwrap();
    assert!(configs[0]["FunctionArn"].as_str().unwrap().ends_with(":function:f:a"));
    assert!(v.get("NextMarker").is_none_or(Value::is_null), "{v}");
    // Reserved concurrency below what is provisioned is refused.
    let (s, _, _) = api(
        &e,
        "PUT",
        "/2017-10-31/functions/f/concurrency",
        json!({"ReservedConcurrentExecutions": 3}),
    )
    .await;
    assert_eq!(s, 400);
    let (_, v, _) = api(&e, "GET", "/2016-08-19/account-settings", Value::Null).await;
    assert_eq!(v["AccountLimit"]["UnreservedConcurrentExecutions"], 1000 - 4);
    // Deleting the alias takes its configuration; deleting twice is no error.
    assert_eq!(
        api(&e, "DELETE", "/2015-03-31/functions/f/aliases/a", Value::Null)
            .await
            .0,
        204
    );
    assert_eq!(
        api(&e, "DELETE", &format!("{path}?Qualifier=1"), Value::Null).await.0,
        204
    );
    assert_eq!(
        api(&e, "DELETE", &format!("{path}?Qualifier=1"), Value::Null).await.0,
        204
    );
    let (_, v, _) = api(&e, "GET", &format!("{path}?List=ALL"), Value::Null).await;
    assert_eq!(v["ProvisionedConcurrencyConfigs"], json!([]));
}

#[tokio::test]
async fn event_source_mappings_of_each_kind() {
    let e = env();
    let (s, v, _) = api(&e, "POST", "/2015-03-31/functions", create_body("f")).await;
    assert_eq!(s, 201, "{v}");
    let base = "/2015-03-31/event-source-mappings";
    let sqs = "arn:aws:sqs:us-east-1:123456789012:q";
    let (s, v, _) = api(
        &e,
        "POST",
        base,
        json!({"FunctionName": "f", "EventSourceArn": sqs, "BatchSize": 5}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(
        (v["State"].as_str(), v["StateTransitionReason"].as_str()),
        (Some("Creating"), Some("USER_INITIATED"))
    );
    assert_eq!(v["FunctionResponseTypes"], json!([]));
    assert!(
        v.get("StartingPosition").is_none() && v.get("Queues").is_none() && v.get("ParallelizationFactor").is_none()
    );
    let uuid = v["UUID"].as_str().unwrap().to_owned();
    let one = format!("{base}/{uuid}");
    let (s, v, _) = api(&e, "GET", &one, Value::Null).await;
    assert_eq!((s, v["State"].as_str()), (StatusCode::OK, Some("Enabled")));

    let kinesis = "arn:aws:kinesis:us-east-1:123456789012:stream/s";
    let (s, v, _) = api(
        &e,
        "POST",
        base,
        json!({"FunctionName": "f", "EventSourceArn": kinesis, "StartingPosition": "LATEST"}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["BatchSize"], 100);
    assert_eq!(v["MaximumRetryAttempts"], -1);
    assert_eq!(v["MaximumRecordAgeInSeconds"], -1);
    assert_eq!(v["ParallelizationFactor"], 1);
    assert_eq!(v["BisectBatchOnFunctionError"], false);
    assert_eq!(v["DestinationConfig"], json!({"OnFailure": {}}));
    assert_eq!(v["TumblingWindowInSeconds"], 0);
    // A tumbling window is kept and answered as set.
    let stream_one = format!("{base}/{}", v["UUID"].as_str().unwrap());
    let (s, v, _) = api(&e, "PUT", &stream_one, json!({"TumblingWindowInSeconds": 120})).await;
    assert_eq!(
        (s, &v["TumblingWindowInSeconds"]),
        (StatusCode::ACCEPTED, &json!(120)),
        "{v}"
    );
    let (_, v, _) = api(&e, "GET", &stream_one, Value::Null).await;
    assert_eq!(v["TumblingWindowInSeconds"], 120);

    // Refused, and nothing stored.
    for bad in [
        json!({"FunctionName": "f", "EventSourceArn": "arn:aws:sqs:us-east-1:1:other", "StartingPosition": "LATEST"}),
        json!({"FunctionName": "f", "EventSourceArn": "arn:aws:kinesis:us-east-1:1:stream/t"}),
        json!({"FunctionName": "f", "EventSourceArn": "arn:aws:sqs:us-east-1:1:other",
               "FilterCriteria": {"Filters": [{"Pattern": "{\"body\": \"x\"}"}]}}),
        json!({"FunctionName": "f", "EventSourceArn": "arn:aws:kinesis:us-east-1:1:stream/t",
               "StartingPosition": "LATEST", "TumblingWindowInSeconds": 901}),
        json!({"FunctionName": "f", "EventSourceArn": "arn:aws:kinesis:us-east-1:1:stream/t",
               "StartingPosition": "LATEST", "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sns:us-east-1:1:t"}}}),
        json!({"FunctionName": "f", "EventSourceArn": "arn:aws:s3:::bucket"}),
        json!({"FunctionName": "f", "EventSourceArn": sqs}),
    ] {
        let (s, v, _) = api(&e, "POST", base, bad.clone()).await;
        assert!(s == 400 || s == 409, "{bad}: {s} {v}");
    }
    let (_, v, _) = api(&e, "GET", base, Value::Null).await;
    assert_eq!(v["EventSourceMappings"].as_array().unwrap().len(), 2);

    let (s, v, _) = api(&e, "PUT", &one, json!({"Enabled": false})).await;
    assert_eq!((s, v["State"].as_str()), (StatusCode::ACCEPTED, Some("Disabling")));
    let (s, v, _) = api(&e, "PUT", &one, json!({"BatchSize": 50})).await;
    assert_eq!(s, 400, "over 10 without a window: {v}");
    let (_, v, _) = api(&e, "GET", &one, Value::Null).await;
    assert_eq!(
        (v["State"].as_str(), v["BatchSize"].as_i64()),
        (Some("Disabled"), Some(5))
    );
    let (s, v, _) = api(
        &e,
        "PUT",
        &one,
        json!({"Enabled": true, "FunctionResponseTypes": ["ReportBatchItemFailures"]}),
    )
    .await;
    assert_eq!((s, v["State"].as_str()), (StatusCode::ACCEPTED, Some("Enabling")));
    assert_eq!(v["FunctionResponseTypes"], json!(["ReportBatchItemFailures"]));
    let (s, v, _) = api(&e, "DELETE", &one, Value::Null).await;
    assert_eq!((s, v["State"].as_str()), (StatusCode::ACCEPTED, Some("Deleting")));
    let (s, _, _) = api(&e, "GET", &one, Value::Null).await;
    assert_eq!(s, 404);
}
