//! The middleware every request passes: a request id, then the body read
//! (at most 70 MB, refused before it is read whole), then SigV4.

use crate::error::ApiError;
use crate::listen::BodyError;
use crate::sigv4::{self, SignedRequest};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lamb_types::LambdaError;
use time::OffsetDateTime;

/// Largest request body the API reads: 70 MB (a 50 MB bundle grows by a
/// third as base64).
pub const MAX_BODY_BYTES: usize = 70 * 1024 * 1024;

/// The id of one request, also sent back as `x-amzn-RequestId`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    req.extensions_mut().insert(RequestId(id.clone()));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut resp = next.run(req).await;
    tracing::debug!(%method, %path, status = resp.status().as_u16(), request_id = %id, "request");
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

fn too_large() -> ApiError {
    LambdaError::request_too_large(format!("Request must be smaller than {MAX_BODY_BYTES} bytes")).into()
}

/// Reads the body within the limit and verifies the signature; the handler
/// gets the request back with its body in memory.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large().into_response();
    }
    let bytes: Bytes = match crate::listen::read_body(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large().into_response(),
        Err(e) => return e.response(),
    };
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let declared_hash = parts
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let actual_hash = sigv4::sha256_hex(&bytes);
    // A declared payload hash is signed in place of the body's; it must
    // still be the body's unless the client said it signs no payload.
    let body_sha256 = match declared_hash {
        Some(h) if h == "UNSIGNED-PAYLOAD" => h,
        Some(h) if !h.eq_ignore_ascii_case(&actual_hash) => {
            return ApiError::from(sigv4::AuthError::Invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
            ))
            .into_response()
        }
        _ => actual_hash,
    };
    let signed = SignedRequest {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
        body_sha256: &body_sha256,
    };
    let creds = &state.credentials;
    if let Err(e) = sigv4::verify(
        &signed,
        &creds.access_key_id,
        &creds.secret_access_key,
        OffsetDateTime::now_utc(),
    ) {
        tracing::info!(method = %parts.method, path = parts.uri.path(), error = %e, "refused request");
        return ApiError::from(e).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}
