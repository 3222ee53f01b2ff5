//! The middleware every request passes: a request id, then SigV4 and the
//! body read, in the order that lets no unauthenticated client make the
//! daemon hold much memory (docs/limits.md):
//!
//! - With `x-amz-content-sha256` (a hex hash, signed in place of the body's)
//!   the signature is verified from the head alone, before any of the body
//!   is read; the body must then hash to it.
//! - Without it (boto3 and the aws CLI do not send it to Lambda) the head is
//!   checked first (key, scope, date), the body is read within a budget
//!   shared by every request read this way ([`UNVERIFIED_BUDGET`]), and the
//!   signature is verified over it.
//!
//! A body over 70 MB is refused before it is read.
//!
//! A request is signed with the administrator's keys, or with a function's
//! session credentials (`X-Amz-Security-Token`, [`crate::sessions`]): those
//! reach Lambda's API only ([`function_may_call`]), and every call made with
//! them is logged naming the function.

use crate::credentials::Credentials;
use crate::error::ApiError;
use crate::listen::BodyError;
use crate::sessions::{Session, SessionError};
use crate::sigv4::{self, AuthError, SignedRequest};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lamb_types::LambdaError;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Largest request body the API reads: Lambda's 70167211 bytes (a 50 MB
/// bundle grows by a third as base64; the recorded
/// test_oversized_request_create_lambda).
pub const MAX_BODY_BYTES: usize = 70_167_211;

/// Bytes of request bodies held at once whose signature is not verified
/// yet: two of the largest requests. Past it a request waits
/// [`BUDGET_WAIT`] for room, then gets 429 (botocore retries it).
pub const UNVERIFIED_BUDGET: usize = 2 * MAX_BODY_BYTES;
/// Bodies this small are read without the budget: the connection limit
/// (512) bounds them to 32 MiB together, and the calls that are not
/// uploads are never held up behind an upload.
pub const SMALL_BODY_BYTES: usize = 64 * 1024;
/// How long a body waits for room in the budget.
pub const BUDGET_WAIT: Duration = Duration::from_secs(5);

/// The daemon's budget for unverified bodies, in bytes.
static BUDGET: Semaphore = Semaphore::const_new(UNVERIFIED_BUDGET);

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

/// AWS's refusal of an oversized request, which names the upload
/// operations (`... for the CreateFunction operation`).
fn too_large(method: &axum::http::Method, path: &str) -> ApiError {
    let suffix = upload_operation(method, path)
        .map(|op| format!(" for the {op} operation"))
        .unwrap_or_default();
    LambdaError::request_entity_too_large(format!("Request must be smaller than {MAX_BODY_BYTES} bytes{suffix}")).into()
}

/// The operations that upload a bundle, by their routes.
fn upload_operation(method: &axum::http::Method, path: &str) -> Option<&'static str> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    match (method.as_str(), &parts[..]) {
        ("POST", ["", "2015-03-31", "functions"]) => Some("CreateFunction"),
        ("PUT", ["", "2015-03-31", "functions", _, "code"]) => Some("UpdateFunctionCode"),
        ("POST", ["", "2018-10-31", "layers", _, "versions"]) => Some("PublishLayerVersion"),
        _ => None,
    }
}

/// An answer sent before the body was read: the connection closes under it,
/// so the unread body is never taken for the next request.
fn refuse_unread(e: impl Into<ApiError>) -> Response {
    let mut resp = e.into().into_response();
    resp.headers_mut()
        .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// How the body is covered by the signature.
enum Payload {
    /// The signed `x-amz-content-sha256` as sent: hex, signed verbatim.
    Declared(String),
    /// No header: the signature covers the body's own hash.
    Body,
}

/// `x-amz-content-sha256`: absent, or the hex SHA-256 of the body. Its
/// other values (`UNSIGNED-PAYLOAD`, the `STREAMING-*` chunk signatures)
/// would leave the body out of the signature, so that a captured request
/// could carry another body: refused.
fn payload(parts: &axum::http::request::Parts) -> Result<Payload, AuthError> {
    let Some(value) = parts.headers.get("x-amz-content-sha256") else {
        return Ok(Payload::Body);
    };
    match value.to_str() {
        Ok(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => Ok(Payload::Declared(h.to_owned())),
        _ => Err(AuthError::Invalid(
            "x-amz-content-sha256 must be the hex SHA-256 of the payload: lamb signs every payload \
             (UNSIGNED-PAYLOAD and streaming payloads are not accepted)"
                .into(),
        )),
    }
}

/// Room in [`BUDGET`] for a body of `hint` bytes (the whole limit when its
/// length is unknown), waiting [`BUDGET_WAIT`] at most; `None` for a small
/// body, which needs none.
async fn reserve(hint: Option<u64>) -> Result<Option<SemaphorePermit<'static>>, ApiError> {
    let bytes = hint.map_or(MAX_BODY_BYTES, |n| n.min(MAX_BODY_BYTES as u64) as usize);
    if bytes <= SMALL_BODY_BYTES {
        return Ok(None);
    }
    // Permits are counted in u32; 70 MB fits.
    match tokio::time::timeout(BUDGET_WAIT, BUDGET.acquire_many(bytes as u32)).await {
        Ok(Ok(permit)) => Ok(Some(permit)),
        _ => {
            tracing::info!(bytes, "refused a body: the budget for unverified bodies is spent");
            Err(ApiError::Throttled {
                reason: "CallerRateLimitExceeded",
            })
        }
    }
}

/// What is checked before a byte of the body is read: the whole signature
/// when the head declares the payload's hash, all but the signature when not.
fn check_head(
    signed: &SignedRequest<'_>,
    creds: &Credentials,
    payload: &Payload,
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    match payload {
        Payload::Declared(hash) => {
            let signed = SignedRequest {
                body_sha256: hash,
                ..signed.clone()
            };
            sigv4::verify(&signed, &creds.access_key_id, &creds.secret_access_key, now).map(drop)
        }
        Payload::Body => sigv4::check_headers(signed, &creds.access_key_id, now).map(drop),
    }
}

/// What is checked once the body is read: that it is the body signed.
fn check_body(
    signed: &SignedRequest<'_>,
    creds: &Credentials,
    payload: &Payload,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<(), AuthError> {
    let actual = sigv4::sha256_hex(body);
    match payload {
        Payload::Declared(hash) if hash.eq_ignore_ascii_case(&actual) => Ok(()),
        Payload::Declared(_) => Err(AuthError::Invalid(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        )),
        Payload::Body => {
            let signed = SignedRequest {
                body_sha256: &actual,
                ..signed.clone()
            };
            sigv4::verify(&signed, &creds.access_key_id, &creds.secret_access_key, now).map(drop)
        }
    }
}

/// Who signed a request; handlers find it in the request's extensions.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The daemon's own keys.
    Admin,
    /// A function's session credentials.
    Function(std::sync::Arc<Session>),
}

/// The key pair a request must be signed with, and whose it is: a session
/// token names a function's session (and carries its secret), no token the
/// administrator's keys.
fn signing_key(
    signed: &SignedRequest<'_>,
    state: &AppState,
    now: OffsetDateTime,
) -> Result<(Credentials, Caller), AuthError> {
    let Some(token) = signed.header("x-amz-security-token") else {
        return Ok((state.credentials.clone(), Caller::Admin));
    };
    match state.sessions.verify(token, now) {
        Ok(session) => Ok((
            Credentials {
                access_key_id: session.access_key_id.clone(),
                secret_access_key: session.secret_access_key.clone(),
            },
            Caller::Function(std::sync::Arc::new(session)),
        )),
        Err(SessionError::Expired) => Err(AuthError::ExpiredToken),
        // A token this start of the daemon never minted.
        Err(SessionError::Invalid) => Err(AuthError::UnknownKey),
    }
}

/// A function's credentials reach the Lambda API and nothing else: its
/// paths begin with an API version (`/2015-03-31/...`); lamb's own
/// endpoints (`/lamb/...`: status, file triggers, schedules;
/// `/2015-03-31/functions/NAME/lamb-logs`) are the administrator's. Judged
/// on the decoded path, so that no percent-encoding slips past.
pub fn function_may_call(raw_path: &str) -> bool {
    let path = percent_encoding::percent_decode_str(raw_path).decode_utf8_lossy();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let is_version = |v: &str| {
        v.len() == 10
            && v.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            })
    };
    match segments[..] {
        [_, "functions", _, "lamb-logs"] => false,
        [version, ..] => is_version(version),
        [] => false,
    }
}

/// Refuses a function's call outside [`function_may_call`].
fn check_scope(caller: &Caller, method: &str, raw_path: &str) -> Result<(), AuthError> {
    match caller {
        Caller::Function(s) if !function_may_call(raw_path) => Err(AuthError::AccessDenied(format!(
            "User: {} is not authorized to perform: {method} {raw_path} (a function's credentials reach \
             only the Lambda API)",
            s.assumed_role_arn()
        ))),
        _ => Ok(()),
    }
}

/// The body's length as the head declares it (hyper holds the body to it).
fn declared_length(parts: &axum::http::request::Parts, body: &Body) -> Option<u64> {
    parts
        .headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| axum::body::HttpBody::size_hint(body).exact())
}

/// Checks the head, reads the body within the limit (and the budget when
/// the head could not be verified alone), verifies it; the handler gets
/// the request back with its body in memory.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let length = declared_length(&parts, &body);
    if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return refuse_unread(too_large(&parts.method, parts.uri.path()));
    }
    let headers = crate::sigv4::header_pairs(&parts.headers);
    let signed = SignedRequest {
        method: parts.method.as_str(),
        raw_path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or_default(),
        headers: &headers,
        body_sha256: "",
    };
    let now = OffsetDateTime::now_utc();
    let refused = |e: &AuthError| {
        tracing::info!(method = %parts.method, path = parts.uri.path(), error = %e, "refused request");
    };
    let (creds, caller) = match signing_key(&signed, &state, now) {
        Ok(key) => key,
        Err(e) => {
            refused(&e);
            return refuse_unread(e);
        }
    };
    let creds = &creds;
    let payload = match payload(&parts)
        .and_then(|p| check_head(&signed, creds, &p, now).map(|()| p))
        .and_then(|p| check_scope(&caller, parts.method.as_str(), parts.uri.path()).map(|()| p))
    {
        Ok(p) => p,
        Err(e) => {
            refused(&e);
            return refuse_unread(e);
        }
    };
    // Room in the budget, held until the signature is verified.
    let room = match payload {
        Payload::Declared(_) => None,
        Payload::Body => match reserve(length).await {
            Ok(room) => room,
            Err(e) => return refuse_unread(e),
        },
    };
    let bytes: Bytes = match crate::listen::read_body(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(&parts.method, parts.uri.path()).into_response(),
        Err(e) => return e.response(),
    };
    if let Err(e) = check_body(&signed, creds, &payload, &bytes, now) {
        refused(&e);
        return ApiError::from(e).into_response();
    }
    drop(room);
    if let Caller::Function(s) = &caller {
        tracing::info!(
            function = %s.function_arn,
            role = %s.role,
            access_key = %s.access_key_id,
            method = %parts.method,
            path = parts.uri.path(),
            "call with a function's credentials"
        );
    }
    let mut req = Request::from_parts(parts, Body::from(bytes));
    req.extensions_mut().insert(caller);
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::{function_may_call, too_large, ApiError};

    /// The recorded test_oversized_request_create_lambda's text names the
    /// upload operation.
    #[test]
    fn oversized_uploads_name_their_operation() {
        let text = |m: axum::http::Method, p: &str| match too_large(&m, p) {
            ApiError::Lambda(e) => e.message,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            text(axum::http::Method::POST, "/2015-03-31/functions"),
            "Request must be smaller than 70167211 bytes for the CreateFunction operation"
        );
        assert!(text(axum::http::Method::PUT, "/2015-03-31/functions/f/code").ends_with("UpdateFunctionCode operation"));
        assert!(
            text(axum::http::Method::POST, "/2018-10-31/layers/l/versions").ends_with("PublishLayerVersion operation")
        );
        assert_eq!(
            text(axum::http::Method::POST, "/2015-03-31/functions/f/invocations"),
            "Request must be smaller than 70167211 bytes"
        );
    }

    #[test]
    fn functions_reach_lambdas_paths_only() {
        for ok in [
            "/2015-03-31/functions",
            "/2015-03-31/functions/lamb/invocations",
            "/2015-03-31/functions/lamb-logs",
            "/2015-03-31/functions/f/aliases/lamb-logs",
            "/2018-10-31/layers",
            "/2016-08-19/account-settings/",
        ] {
            assert!(function_may_call(ok), "{ok}");
        }
        for refused in [
            "/lamb/status",
            "/lamb/triggers/1",
            "/lamb%2Fstatus",
            "/2015-03-31/functions/f/lamb-logs",
            "/2015-03-31/functions/f/lamb%2Dlogs",
            "/",
            "",
            "/metrics",
            "/20150331/functions",
        ] {
            assert!(!function_may_call(refused), "{refused}");
        }
    }
}
