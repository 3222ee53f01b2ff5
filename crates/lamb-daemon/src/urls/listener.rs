//! The URL listener: HTTP requests to function URLs, found by the URL id in
//! the Host's first label (`<url-id>.lambda-url.localhost:9081`) or in the
//! first path segment (`127.0.0.1:9081/<url-id>/...`), checked (SigV4 for
//! `AWS_IAM`, the function's resource-based policy for `NONE`), answered for
//! CORS preflights, and invoked synchronously; a `RESPONSE_STREAM` URL sends
//! a streaming function's bytes as they come ([`stream`]).

use super::event::{self, IamCaller, UrlContext, UrlRequest};
use super::{cors, response};
use crate::error::ApiError;
use crate::invocation::{self, Call, Piece, Started, Streamed, Target};
use crate::invoker::InvokeResponse;
use crate::sigv4::{self, SignedRequest};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lamb_protocol::errors::Chain;
use lamb_store::FunctionUrlRecord;
use lamb_types::{FunctionUrlAuthType, InvokeMode, Qualifier};
use std::net::SocketAddr;
use time::OffsetDateTime;

/// Largest request (and event) a URL takes: Invoke's 6 MB.
const MAX_SYNC_PAYLOAD: usize = 6 * 1024 * 1024;

/// Lambda's bodies for the URL's own failures.
fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        serde_json::json!({ "Message": text }).to_string(),
    )
        .into_response()
}

/// The URL id and the path the function sees.
fn route(host: &str, path: &str) -> Option<(String, String)> {
    let host = host.split(':').next().unwrap_or_default();
    if let Some((id, rest)) = host.split_once('.') {
        if rest.starts_with("lambda-url.") {
            return Some((id.to_ascii_lowercase(), path.to_owned()));
        }
    }
    let rest = path.strip_prefix('/')?;
    let (id, tail) = rest.split_once('/').map_or((rest, ""), |(a, b)| (a, b));
    (!id.is_empty()).then(|| (id.to_ascii_lowercase(), format!("/{tail}")))
}

pub async fn handle(State(st): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut resp = answer(st, peer, req, &request_id).await;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

async fn answer(st: AppState, peer: SocketAddr, req: Request, request_id: &str) -> Response {
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let Some((url_id, path)) = route(&host, parts.uri.path()) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let id = url_id.clone();
    let url = match st.blocking(move |s| lookup(s, &id)).await {
        Ok(Some((u, _))) if u.settings.auth_type == FunctionUrlAuthType::AwsIam => u,
        Ok(Some((u, true))) => u,
        // AuthType NONE, but the function's policy does not let anyone in.
        Ok(Some((_, false))) => return message(StatusCode::FORBIDDEN, "Forbidden"),
        Ok(None) => return message(StatusCode::NOT_FOUND, "Not Found"),
        Err(_) => return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
    };
    let headers = crate::sigv4::header_pairs(&parts.headers);
    let raw_query = parts.uri.query().unwrap_or_default();
    if url.settings.auth_type == FunctionUrlAuthType::AwsIam {
        // All but the signature, before the body is read: a caller without
        // the keys makes the daemon hold none of its body.
        let head = SignedRequest {
            method: parts.method.as_str(),
            raw_path: parts.uri.path(),
            raw_query,
            headers: &headers,
            body_sha256: "",
        };
        if let Err(e) = sigv4::check_headers(&head, &st.credentials.access_key_id, OffsetDateTime::now_utc()) {
            tracing::info!(url_id, error = %e, "refused function URL request");
            let mut resp = message(StatusCode::FORBIDDEN, "Forbidden");
            resp.headers_mut()
                .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
            return resp;
        }
    }
    let body = match crate::listen::read_body(body, MAX_SYNC_PAYLOAD).await {
        Ok(b) => b,
        Err(crate::listen::BodyError::TooLarge) => {
            return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
        }
        Err(e) => return e.response(),
    };
    let caller = match url.settings.auth_type {
        FunctionUrlAuthType::None => None,
        FunctionUrlAuthType::AwsIam => {
            let signed = SignedRequest {
                method: parts.method.as_str(),
                raw_path: parts.uri.path(),
                raw_query,
                headers: &headers,
                body_sha256: &sigv4::sha256_hex(&body),
            };
            let creds = &st.credentials;
            match sigv4::verify(
                &signed,
                &creds.access_key_id,
                &creds.secret_access_key,
                OffsetDateTime::now_utc(),
            ) {
                Ok(auth) => Some(IamCaller {
                    access_key: auth.access_key,
                    account: st.ctx.account.clone(),
                }),
                Err(e) => {
                    tracing::info!(url_id, error = %e, "refused function URL request");
                    return message(StatusCode::FORBIDDEN, "Forbidden");
                }
            }
        }
    };
    let origin = parts.headers.get("origin").and_then(|v| v.to_str().ok());
    let cors_config = url.settings.cors.as_ref();
    if let (Some(cors), Some(origin), true) = (
        cors_config,
        origin,
        parts.method == axum::http::Method::OPTIONS && parts.headers.contains_key("access-control-request-method"),
    ) {
        return with_headers(StatusCode::OK.into_response(), &cors::preflight(cors, origin));
    }
    let domain = format!("{url_id}.lambda-url.{}.on.aws", st.ctx.region);
    let protocol = format!("{:?}", parts.version);
    let event = event::build(
        &UrlRequest {
            method: parts.method.as_str(),
            raw_path: &path,
            raw_query,
            headers: &headers,
            body: &body,
            source_ip: peer.ip().to_string(),
            protocol: &protocol,
        },
        &UrlContext {
            account: &st.ctx.account,
            url_id: &url_id,
            domain_name: &domain,
            request_id,
            now: OffsetDateTime::now_utc(),
            caller,
        },
    );
    let payload = serde_json::to_vec(&event).unwrap_or_default();
    if payload.len() > MAX_SYNC_PAYLOAD {
        return message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large");
    }
    let resp = invoke(&st, url.clone(), payload, request_id).await;
    match (cors_config, origin) {
        (Some(cors), Some(origin)) => with_headers(resp, &cors::simple(cors, origin)),
        _ => resp,
    }
}

/// The URL with this id, and whether its function's resource-based policy
/// grants public access (what an `AuthType NONE` URL needs, as on AWS).
fn lookup(s: &crate::state::Shared, id: &str) -> Result<Option<(FunctionUrlRecord, bool)>, ApiError> {
    let Some(url) = s.registry.function_url_by_id(id)? else {
        return Ok(None);
    };
    let public = url.settings.auth_type == FunctionUrlAuthType::None
        && crate::api::url_policy(s, &url.function, url.qualifier.as_deref())?;
    Ok(Some((url, public)))
}

async fn invoke(st: &AppState, url: FunctionUrlRecord, payload: Vec<u8>, request_id: &str) -> Response {
    // The alias's version (weights applied), or `$LATEST`.
    let qualifier = url.qualifier.clone().map_or_else(Qualifier::latest, Qualifier::Alias);
    let target = Target::new(&st.ctx, url.function.clone(), qualifier);
    let call = Call::new(request_id.to_owned(), payload);
    if url.settings.invoke_mode == InvokeMode::ResponseStream {
        return stream(st, &url, target, call).await;
    }
    let answer = match invocation::prepare_now(st, target, call).await {
        Ok(req) => invocation::invoke_routed(st, req).await,
        Err(e) => Err(e),
    };
    whole(&url, answer)
}

/// The response to an answer taken whole.
fn whole(url: &FunctionUrlRecord, answer: Result<InvokeResponse, ApiError>) -> Response {
    match answer {
        Ok(out) if out.function_error.is_some() => message(StatusCode::BAD_GATEWAY, "Internal Server Error"),
        Ok(out) => match response::interpret(&out.payload) {
            Ok(a) => {
                let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::BAD_GATEWAY);
                with_headers((status, Body::from(a.body)).into_response(), &a.headers)
            }
            Err(e) => {
                tracing::info!(url_id = url.url_id, error = %e, "function URL answer refused");
                message(StatusCode::BAD_GATEWAY, "Internal Server Error")
            }
        },
        Err(e) => failure(e),
    }
}

/// A `RESPONSE_STREAM` URL: the function's bytes go out chunked as it
/// writes them, after the head its HTTP prelude gives (or a 200 of its
/// content type). A failure before the head is a 502; after it, the body
/// ends where the function stopped, as on Lambda.
async fn stream(st: &AppState, url: &FunctionUrlRecord, target: Target, call: Call) -> Response {
    let req = match invocation::prepare_now(st, target, call).await {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let (content_type, mut stream) = match invocation::start_streamed(st, req).await {
        Started::Whole(answer) => return whole(url, answer),
        Started::Streaming { content_type, stream } => (content_type, stream),
    };
    let plain = response::HttpAnswer {
        status: 200,
        headers: vec![("content-type".into(), content_type.clone())],
        body: Vec::new(),
    };
    let read = if content_type == response::HTTP_INTEGRATION {
        read_prelude(&mut stream).await
    } else {
        first_bytes(&mut stream).await.map(|bytes| (plain.clone(), bytes))
    };
    let (head, first) = match read {
        Ok((head, first)) => (head, first),
        // Nothing went out yet: a function that failed (or streamed too
        // little) before its head is the URL's 502; one that succeeded
        // without a byte, an empty 200.
        Err((e, Some(Ok(out)))) if out.function_error.is_none() && content_type != response::HTTP_INTEGRATION => {
            tracing::debug!(url_id = url.url_id, error = %e, "function URL stream was empty");
            return with_headers(StatusCode::OK.into_response(), &plain.headers);
        }
        Err((e, _)) => {
            tracing::info!(url_id = url.url_id, error = %e, "function URL stream refused");
            return message(StatusCode::BAD_GATEWAY, "Internal Server Error");
        }
    };
    let (tx, body) = crate::stream_body::channel();
    tokio::spawn(async move {
        if !first.is_empty() {
            let _ = tx.send(first.into()).await;
        }
        while let Some(Piece::Bytes(bytes)) = stream.next().await {
            let _ = tx.send(bytes.into()).await;
        }
    });
    let status = StatusCode::from_u16(head.status).unwrap_or(StatusCode::BAD_GATEWAY);
    with_headers((status, body).into_response(), &head.headers)
}

/// Why a stream's head could not be read, and the invocation's end when
/// that was the reason.
type HeadError = (response::BadResponse, Option<Result<InvokeResponse, ApiError>>);

/// The stream's first bytes.
async fn first_bytes(stream: &mut Streamed) -> Result<Vec<u8>, HeadError> {
    match stream.next().await {
        Some(Piece::Bytes(bytes)) => Ok(bytes),
        end => Err((
            response::BadResponse("the stream ended before its first byte".into()),
            ended(end),
        )),
    }
}

/// The invocation's end, if that is what `piece` is.
fn ended(piece: Option<Piece>) -> Option<Result<InvokeResponse, ApiError>> {
    match piece? {
        Piece::End(answer) => Some(answer),
        Piece::Bytes(_) => None,
    }
}

/// Reads the stream up to the end of its HTTP prelude: the head it gives
/// and the body's bytes that came with it.
async fn read_prelude(stream: &mut Streamed) -> Result<(response::HttpAnswer, Vec<u8>), HeadError> {
    let mut got = Vec::new();
    loop {
        if let Some((json, body)) = response::prelude_split(&got) {
            let head = response::prelude(&got[..json]).map_err(|e| (e, None))?;
            return Ok((head, got.split_off(body)));
        }
        if got.len() > response::MAX_PRELUDE {
            return Err((response::BadResponse("response prelude too long".into()), None));
        }
        match stream.next().await {
            Some(Piece::Bytes(bytes)) => got.extend_from_slice(&bytes),
            end => {
                let why = response::BadResponse("the stream ended before its prelude did".into());
                return Err((why, ended(end)));
            }
        }
    }
}

fn failure(e: ApiError) -> Response {
    match e.status() {
        429 => message(StatusCode::TOO_MANY_REQUESTS, "Rate Exceeded."),
        404 => message(StatusCode::NOT_FOUND, "Not Found"),
        _ => {
            tracing::warn!(error = %Chain(&e), "function URL invocation failed");
            message(StatusCode::BAD_GATEWAY, "Internal Server Error")
        }
    }
}

/// Appends headers; `set-cookie` may repeat, others replace.
fn with_headers(mut resp: Response, headers: &[(String, String)]) -> Response {
    let h = resp.headers_mut();
    for (k, v) in headers {
        let (Ok(name), Ok(value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v)) else {
            continue;
        };
        if name == axum::http::header::SET_COOKIE {
            h.append(name, value);
        } else {
            h.insert(name, value);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn routes_by_host_or_path() {
        assert_eq!(
            route("abc.lambda-url.localhost:9081", "/x/y"),
            Some(("abc".into(), "/x/y".into()))
        );
        assert_eq!(route("127.0.0.1:9081", "/abc/x/y"), Some(("abc".into(), "/x/y".into())));
        assert_eq!(route("127.0.0.1:9081", "/abc"), Some(("abc".into(), "/".into())));
        assert_eq!(route("127.0.0.1:9081", "/"), None);
    }
}
