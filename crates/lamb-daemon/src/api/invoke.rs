//! The Invoke route (spec 3.5): checks headers and payload, prepares the
//! invocation through [`crate::invocation`], and runs it, queues it
//! (`Event`) or only answers (`DryRun`); and InvokeWithResponseStream,
//! which answers in AWS's event-stream encoding ([`super::event_stream`]).

use crate::auth::RequestId;
use crate::error::{ApiError, ApiResult};
use crate::invocation::{self, Call, Piece, Started, Target};
use crate::invoker::{InvokeResponse, LogType};
use crate::state::AppState;
use crate::util::{Params, Query};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lamb_store::NewEvent;
use lamb_types::LambdaError;

use super::event_stream;

/// Largest synchronous request payload (6 MB, hard limit).
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Largest asynchronous request payload (1 MB).
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// Largest `X-Amz-Client-Context`, base64.
pub const MAX_CLIENT_CONTEXT: usize = 3583;
/// `X-Amz-Log-Result` carries the last 4 KB of the log.
pub const LOG_TAIL_BYTES: usize = 4096;

/// `X-Amz-Invocation-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    RequestResponse,
    /// Queued durably, answered 202; `crate::events` runs it.
    Event,
    DryRun,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid_header(name: &str, value: &str, allowed: &str) -> ApiError {
    LambdaError::validation(format!(
        "1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: \
         Member must satisfy enum value set: [{allowed}]"
    ))
    .into()
}

fn invocation_kind(headers: &HeaderMap) -> Result<Kind, ApiError> {
    match header(headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => Ok(Kind::RequestResponse),
        Some("Event") => Ok(Kind::Event),
        Some("DryRun") => Ok(Kind::DryRun),
        Some(other) => Err(invalid_header(
            "invocationType",
            other,
            "Event, RequestResponse, DryRun",
        )),
    }
}

fn log_type(headers: &HeaderMap) -> Result<LogType, ApiError> {
    match header(headers, "x-amz-log-type") {
        None | Some("None") => Ok(LogType::None),
        Some("Tail") => Ok(LogType::Tail),
        Some(other) => Err(invalid_header("logType", other, "None, Tail")),
    }
}

fn client_context(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(raw) = header(headers, "x-amz-client-context") else {
        return Ok(None);
    };
    if raw.len() > MAX_CLIENT_CONTEXT {
        return Err(LambdaError::invalid_parameter(format!(
            "Client context must be at most {MAX_CLIENT_CONTEXT} bytes of base64"
        ))
        .into());
    }
    let text = STANDARD
        .decode(raw)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|t| serde_json::from_str::<serde_json::Value>(t).is_ok_and(|v| v.is_object()))
        .ok_or_else(|| LambdaError::invalid_request_content("Client context must be a base64-encoded JSON object"))?;
    Ok(Some(text))
}

fn check_payload(payload: &[u8], kind: &Kind) -> Result<(), ApiError> {
    let (limit, name) = match kind {
        Kind::Event => (MAX_ASYNC_PAYLOAD, "Event"),
        _ => (MAX_SYNC_PAYLOAD, "RequestResponse"),
    };
    if payload.len() > limit {
        return Err(LambdaError::request_too_large(format!(
            "{} byte payload is too large for the {name} invocation type (limit {limit} bytes)",
            payload.len()
        ))
        .into());
    }
    if !payload.iter().all(u8::is_ascii_whitespace) {
        serde_json::from_slice::<serde::de::IgnoredAny>(payload).map_err(|e| unparsable_payload(payload, &e))?;
    }
    Ok(())
}

/// A payload that is no JSON, in the words of AWS's parser (Jackson): its
/// reason and where it was found (the recorded
/// test_lambda_invoke_payload_encoding_error). A byte that is no UTF-8 is
/// named as Jackson names it, at the column one past it, where Jackson
/// stands when it finds it; other reasons are serde_json's.
fn unparsable_payload(payload: &[u8], e: &serde_json::Error) -> ApiError {
    let (reason, line, column) = match bad_utf8(payload) {
        Some((reason, at)) => {
            let before = &payload[..at];
            let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
            let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            (reason, line, at - line_start + 2)
        }
        None => {
            let text = e.to_string();
            let reason = text
                .rsplit_once(" at line ")
                .map_or(text.as_str(), |(r, _)| r)
                .to_owned();
            (reason, e.line(), e.column())
        }
    };
    LambdaError::invalid_request_content(format!(
        "Could not parse request body into json: Could not parse payload into json: {reason}\n at [Source: \
         REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: {line}, column: {column}]"
    ))
    .into()
}

/// The first byte of `payload` that breaks UTF-8, as Jackson names it, and
/// its offset; None when the payload is UTF-8 or only ends early.
fn bad_utf8(payload: &[u8]) -> Option<(String, usize)> {
    let e = std::str::from_utf8(payload).err()?;
    let start = e.valid_up_to();
    let first = payload[start];
    let opens_sequence = first & 0xE0 == 0xC0 || first & 0xF0 == 0xE0 || first & 0xF8 == 0xF0;
    if !opens_sequence {
        return Some((format!("Invalid UTF-8 start byte 0x{first:02x}"), start));
    }
    let at = start + e.error_len()?;
    Some((format!("Invalid UTF-8 middle byte 0x{:02x}", payload.get(at)?), at))
}

/// The not-found of a `$LATEST` that names it: Invoke's always (the
/// recorded test_invoke_exceptions), Get's when the request named `$LATEST`
/// outright (test_ops_with_arn_qualifier_mismatch).
pub(super) fn name_latest(ctx: &lamb_types::ArnContext, name: &str, e: ApiError) -> ApiError {
    let unqualified = format!("Function not found: {}", ctx.function_arn(name));
    match e {
        ApiError::Lambda(l) if l.kind == lamb_types::ErrorKind::ResourceNotFound && l.message == unqualified => {
            LambdaError::not_found(format!("{unqualified}:$LATEST")).into()
        }
        other => other,
    }
}

/// The function an Invoke-like request names: its path's name or ARN with
/// `Qualifier`.
fn target_of(st: &AppState, params: &Params, query: &Query) -> Result<Target, ApiError> {
    let (fref, q) = params.qualified_function(query.get("Qualifier"))?;
    Ok(Target::new(&st.ctx, fref.name, q))
}

/// The call an Invoke-like request makes: its payload and log type.
fn call_of(request_id: String, headers: &HeaderMap, body: &Bytes) -> Result<Call, ApiError> {
    Ok(Call {
        request_id,
        payload: body.to_vec(),
        log_type: log_type(headers)?,
        client_context: None,
    })
}

pub async fn invoke(
    State(st): State<AppState>,
    params: Params,
    query: Query,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let target = target_of(&st, &params, &query)?;
    let kind = invocation_kind(&headers)?;
    let call = call_of(request_id, &headers, &body)?;
    let t = target.clone();
    let (name, latest) = (
        target.function.clone(),
        target.qualifier == lamb_types::Qualifier::latest(),
    );
    let mut req =
        invocation::prepare_now(&st, t, call)
            .await
            .map_err(|e| if latest { name_latest(&st.ctx, &name, e) } else { e })?;
    check_payload(&req.payload, &kind)?;
    match kind {
        Kind::DryRun => return Ok(StatusCode::NO_CONTENT.into_response()),
        Kind::Event => {
            // Durable before the 202; the worker runs it (crate::events).
            let event = NewEvent {
                function: target.function,
                qualifier: target.qualifier.to_string(),
                payload: req.payload,
                request_id: req.request_id,
                enqueued_at_ms: crate::events::now_ms(),
            };
            st.blocking(move |s| Ok(s.registry.enqueue_event(event)?)).await?;
            st.events.wake();
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        Kind::RequestResponse => req.client_context = client_context(&headers)?,
    }
    answer(&st, req).await
}

/// Runs a prepared synchronous invocation (in a cluster, on the node
/// routing chooses) and answers it as Invoke does.
pub async fn answer(st: &AppState, req: crate::invoker::InvokeRequest) -> ApiResult {
    let log_type = req.log_type;
    let executed_version = req.executed_version;
    let out = invocation::invoke_routed(st, req).await?;
    let mut resp = Response::new(Body::from(out.payload));
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(v) = HeaderValue::from_str(&executed_version.to_string()) {
        h.insert("x-amz-executed-version", v);
    }
    if let Some(e) = out
        .function_error
        .as_deref()
        .and_then(|e| HeaderValue::from_str(e).ok())
    {
        h.insert("x-amz-function-error", e);
    }
    if let (LogType::Tail, Some(log)) = (log_type, out.log_tail) {
        if let Ok(v) = HeaderValue::from_str(&log_result(&log)) {
            h.insert("x-amz-log-result", v);
        }
    }
    Ok(resp)
}

/// `X-Amz-Invocation-Type` of InvokeWithResponseStream: no `Event`.
fn streamed_kind(headers: &HeaderMap) -> Result<Kind, ApiError> {
    match header(headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => Ok(Kind::RequestResponse),
        Some("DryRun") => Ok(Kind::DryRun),
        Some(other) => Err(invalid_header("invocationType", other, "RequestResponse, DryRun")),
    }
}

/// The base64 of a log's last 4 KB: `X-Amz-Log-Result` and `LogResult`.
fn log_result(log: &str) -> String {
    let bytes = log.as_bytes();
    STANDARD.encode(&bytes[bytes.len().saturating_sub(LOG_TAIL_BYTES)..])
}

/// InvokeWithResponseStream (`POST /2021-11-15/functions/{name}/response-
/// streaming-invocations`): a `PayloadChunk` event for each piece the
/// function streams, as it comes, and `InvokeComplete` at the end. A
/// function that does not stream sends its whole payload as one chunk, as
/// on Lambda. Errors before the function runs are ordinary API errors.
pub async fn invoke_with_response_stream(
    State(st): State<AppState>,
    params: Params,
    query: Query,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let target = target_of(&st, &params, &query)?;
    let kind = streamed_kind(&headers)?;
    let call = call_of(request_id, &headers, &body)?;
    let mut req = invocation::prepare_now(&st, target, call).await?;
    check_payload(&req.payload, &kind)?;
    if kind == Kind::DryRun {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    req.client_context = client_context(&headers)?;
    let executed_version = req.executed_version.to_string();
    let (tx, body) = crate::stream_body::channel();
    match invocation::start_streamed(&st, req).await {
        Started::Whole(answer) => {
            let out = answer?;
            tokio::spawn(async move {
                if out.function_error.is_none() {
                    let _ = tx.send(event_stream::payload_chunk(&out.payload).into()).await;
                }
                let _ = tx.send(complete(&out).into()).await;
            });
        }
        Started::Streaming { mut stream, .. } => {
            tokio::spawn(async move {
                while let Some(piece) = stream.next().await {
                    let event = match piece {
                        Piece::Bytes(bytes) => event_stream::payload_chunk(&bytes),
                        Piece::End(Ok(out)) => complete(&out),
                        Piece::End(Err(_)) => break,
                    };
                    // A client gone: the function still runs to its end.
                    let _ = tx.send(event.into()).await;
                }
            });
        }
    }
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    if let Ok(v) = HeaderValue::from_str(&executed_version) {
        h.insert("x-amz-executed-version", v);
    }
    Ok(resp)
}

/// The `InvokeComplete` event of a finished invocation.
fn complete(out: &InvokeResponse) -> Vec<u8> {
    let details = String::from_utf8_lossy(&out.payload);
    let code = out
        .function_error
        .as_deref()
        .map(|unhandled| error_code(&out.payload, unhandled));
    let error = code.as_deref().map(|code| (code, details.as_ref()));
    let log = out.log_tail.as_deref().map(log_result);
    event_stream::invoke_complete(error, log.as_deref())
}

/// `InvokeComplete`'s `ErrorCode`: the function's error type, as Lambda
/// names it there (`X-Amz-Function-Error`'s `Unhandled` when the error body
/// names none).
fn error_code(error_body: &[u8], unhandled: &str) -> String {
    serde_json::from_slice::<serde_json::Value>(error_body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| unhandled.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_that_is_no_utf8_is_named_as_jackson_names_it() {
        assert_eq!(bad_utf8(b"n\x87r"), Some(("Invalid UTF-8 start byte 0x87".into(), 1)));
        assert_eq!(
            bad_utf8(b"{\"a\":\"\xe9\xb5\xd7\"}"),
            Some(("Invalid UTF-8 middle byte 0xd7".into(), 8))
        );
        assert_eq!(bad_utf8("{\"é\":1}".as_bytes()), None);
    }

    #[test]
    fn a_streams_error_code_is_the_functions_error_type() {
        assert_eq!(
            error_code(br#"{"errorType":"Error","errorMessage":"x"}"#, "Unhandled"),
            "Error"
        );
        assert_eq!(error_code(b"not json", "Unhandled"), "Unhandled");
        assert_eq!(error_code(br#"{"errorMessage":"x"}"#, "Unhandled"), "Unhandled");
    }
}
