//! The Invoke route (spec 3.5): resolves function, qualifier and alias
//! weights, checks headers and payload, and hands the rest to the
//! [`crate::Invoker`] in the state.

use super::Params;
use crate::auth::RequestId;
use crate::error::{ApiError, ApiResult};
use crate::invoker::{InvocationType, InvokeRequest, LogType};
use crate::state::{AppState, Shared};
use crate::util::Query;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lamb_store::{BundleKind, FunctionRecord, NewEvent};
use lamb_types::{LambdaError, Qualifier, Version};

/// Largest synchronous request payload (6 MB, hard limit).
pub const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
/// Largest asynchronous request payload (1 MB).
pub const MAX_ASYNC_PAYLOAD: usize = 1024 * 1024;
/// Largest `X-Amz-Client-Context`, base64.
pub const MAX_CLIENT_CONTEXT: usize = 3583;
/// `X-Amz-Log-Result` carries the last 4 KB of the log.
pub const LOG_TAIL_BYTES: usize = 4096;

enum Kind {
    Run(InvocationType),
    DryRun,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn invalid_header(name: &str, value: &str, allowed: &str) -> ApiError {
    LambdaError::invalid_parameter(format!(
        "1 validation error detected: Value '{value}' at '{name}' failed to satisfy constraint: \
         Member must satisfy enum value set: [{allowed}]"
    ))
    .into()
}

fn invocation_kind(headers: &HeaderMap) -> Result<Kind, ApiError> {
    match header(headers, "x-amz-invocation-type") {
        None | Some("RequestResponse") => Ok(Kind::Run(InvocationType::RequestResponse)),
        Some("Event") => Ok(Kind::Run(InvocationType::Event)),
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
        Kind::Run(InvocationType::Event) => (MAX_ASYNC_PAYLOAD, "Event"),
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
        serde_json::from_slice::<serde::de::IgnoredAny>(payload).map_err(|e| {
            LambdaError::invalid_request_content(format!("Could not parse request body into json: {e}"))
        })?;
    }
    Ok(())
}

/// The version that runs: the qualifier's, or for a weighted alias the
/// additional version with its probability.
pub(crate) fn resolve(s: &Shared, name: &str, q: &Qualifier) -> Result<FunctionRecord, ApiError> {
    let rec = s.registry.get_function(name, q)?;
    let Qualifier::Alias(alias) = q else {
        return Ok(rec);
    };
    let alias = s.registry.get_alias(name, alias)?;
    let mut roll: f64 = rand::random();
    for (version, weight) in &alias.weights {
        if roll < *weight {
            return Ok(s
                .registry
                .get_function(name, &Qualifier::Version(Version::Published(*version)))?);
        }
        roll -= weight;
    }
    Ok(rec)
}

pub async fn invoke(
    State(st): State<AppState>,
    params: Params,
    query: Query,
    Extension(RequestId(request_id)): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let fref = params.function_ref()?;
    let q = fref.merge_qualifier(query.get("Qualifier"))?;
    let kind = invocation_kind(&headers)?;
    let log_type = log_type(&headers)?;
    let name = fref.name.clone();
    let q2 = q.clone();
    let (rec, reserved_concurrency, total_reserved_concurrency) = st
        .blocking(move |s| {
            let rec = resolve(s, &name, &q2)?;
            let reserved = s.registry.get_reserved_concurrency(&name)?;
            let total = s.registry.total_reserved_concurrency(None)?;
            Ok((rec, reserved, total))
        })
        .await?;
    check_payload(&body, &kind)?;
    let invocation_type = match kind {
        Kind::DryRun => return Ok(StatusCode::NO_CONTENT.into_response()),
        Kind::Run(InvocationType::Event) => {
            // Durable before the 202; the worker runs it (crate::events).
            let event = NewEvent {
                function: fref.name.clone(),
                qualifier: q.to_string(),
                payload: body.to_vec(),
                request_id,
                enqueued_at_ms: crate::events::now_ms(),
            };
            st.blocking(move |s| Ok(s.registry.enqueue_event(event)?)).await?;
            st.events.wake();
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        Kind::Run(t) => t,
    };
    let client_context = match invocation_type {
        InvocationType::RequestResponse => client_context(&headers)?,
        InvocationType::Event => None,
    };
    let executed_version = rec.version;
    let layer_paths = rec
        .layers
        .iter()
        .filter_map(|l| l.digest())
        .map(|d| st.store.path(BundleKind::Layer, &d))
        .collect();
    let req = InvokeRequest {
        request_id,
        code_path: st.store.path(BundleKind::Function, &rec.code.digest),
        layer_paths,
        invoked_function_arn: match &fref.qualifier.as_ref().or(Some(&q)) {
            Some(Qualifier::Version(Version::Latest)) | None => st.ctx.function_arn(&fref.name),
            Some(q) => st.ctx.qualified_function_arn(&fref.name, q),
        },
        function: rec,
        executed_version,
        payload: body.to_vec(),
        invocation_type,
        log_type,
        client_context,
        reserved_concurrency,
        total_reserved_concurrency,
    };
    let out = st.invoker.invoke(req).await?;
    if invocation_type == InvocationType::Event {
        return Ok(StatusCode::ACCEPTED.into_response());
    }
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
        let bytes = log.as_bytes();
        let tail = &bytes[bytes.len().saturating_sub(LOG_TAIL_BYTES)..];
        if let Ok(v) = HeaderValue::from_str(&STANDARD.encode(tail)) {
            h.insert("x-amz-log-result", v);
        }
    }
    Ok(resp)
}
