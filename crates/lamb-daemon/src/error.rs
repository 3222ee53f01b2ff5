//! The one map from failures to HTTP responses: Lambda's `x-amzn-ErrorType`
//! header and `{"Type","message" or "Message","__type"}` body (spec 3.8;
//! [`lamb_types::BodyShape`] says which spelling each exception uses).

use crate::sigv4::AuthError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lamb_protocol::errors::Chain;
use lamb_store::StoreError;
use lamb_types::{BodyShape, ErrorBody, LambdaError};

/// An error the API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// One of Lambda's modelled exceptions.
    #[error(transparent)]
    Lambda(#[from] LambdaError),
    /// An exception outside Lambda's model: authentication failures (AWS's
    /// general names) and operations lamb does not implement.
    #[error("{code}: {message}")]
    Other {
        status: u16,
        code: &'static str,
        message: String,
    },
    /// 429 `TooManyRequestsException` with Lambda's `Reason`
    /// (`ThrottleReason` of the model).
    #[error("TooManyRequestsException: {reason}")]
    Throttled { reason: &'static str },
    /// The store itself failed, not the caller: answered as the
    /// `ServiceException` [`StoreError::to_lambda`] gives, which hides
    /// paths and SQL; the cause is logged with the request id by
    /// [`log_failures`].
    #[error("{}", .0.to_lambda())]
    Store(#[source] StoreError),
}

/// Put on a response by [`ApiError::Store`]: what [`log_failures`] logs.
#[derive(Debug, Clone)]
struct StoreFailure(String);

/// Logs the store failures behind 5xx answers with the request's id: the
/// one place that knows both (the error's conversion knows neither). The
/// outermost layer, so it reads the id from the answer's header.
pub async fn log_failures(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    if let Some(StoreFailure(cause)) = resp.extensions().get::<StoreFailure>() {
        let id = resp.headers().get("x-amzn-requestid").and_then(|v| v.to_str().ok());
        tracing::error!(request_id = id.unwrap_or("-"), error = %cause, "store failure");
    }
    resp
}

impl ApiError {
    /// A request for an operation lamb does not offer. 501, which botocore
    /// does not retry, for operations of Lambda's model; 400 for paths that
    /// are no operation at all.
    pub fn unsupported(operation: &str, method: &str, path: &str) -> Self {
        Self::Other {
            status: 501,
            code: "UnsupportedOperationException",
            message: format!("lamb does not implement {operation} ({method} {path})"),
        }
    }

    pub fn unknown_operation(method: &str, path: &str) -> Self {
        Self::Other {
            status: 400,
            code: "UnknownOperationException",
            message: format!("no Lambda operation matches {method} {path}"),
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Self::Lambda(e) => e.http_status(),
            Self::Other { status, .. } => *status,
            Self::Throttled { .. } => 429,
            Self::Store(e) => e.to_lambda().http_status(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Lambda(_) | StoreError::Bundle(_) => Self::Lambda(e.to_lambda()),
            e => Self::Store(e),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match e {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::BadSignature | AuthError::Invalid(_) => "InvalidSignatureException",
            AuthError::ExpiredToken => "ExpiredTokenException",
            AuthError::AccessDenied(_) => "AccessDeniedException",
        };
        Self::Other {
            status: 403,
            code,
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let (code, body) = match self {
            Self::Lambda(e) => {
                let body = e.body();
                (body.code.clone(), serde_json::to_value(body))
            }
            Self::Other { status, code, message } => (
                code.to_owned(),
                serde_json::to_value(ErrorBody {
                    error_type: if status >= 500 { "Service" } else { "User" }.to_owned(),
                    message,
                    code: code.to_owned(),
                    shape: BodyShape::TypeAndMessage,
                }),
            ),
            // The model's TooManyRequestsException: `Reason`, `Type`, `message`.
            Self::Store(e) => {
                let mut resp = Self::Lambda(e.to_lambda()).into_response();
                resp.extensions_mut().insert(StoreFailure(Chain(&e).to_string()));
                return resp;
            }
            Self::Throttled { reason } => (
                "TooManyRequestsException".to_owned(),
                Ok(serde_json::json!({"Reason": reason, "Type": "User", "message": "Rate Exceeded."})),
            ),
        };
        let code = HeaderValue::from_str(&code).unwrap_or(HeaderValue::from_static("ServiceException"));
        let mut resp = (status, axum::Json(body.unwrap_or_default())).into_response();
        resp.headers_mut().insert("x-amzn-errortype", code);
        resp
    }
}

pub type ApiResult<T = Response> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_answers_a_service_exception_and_keeps_its_cause_for_the_log() {
        let e = ApiError::from(StoreError::Io {
            op: "write",
            path: "/data/lamb.db".into(),
            source: std::io::Error::other("disk full"),
        });
        assert_eq!(e.status(), 500);
        assert!(!e.to_string().contains("lamb.db"), "{e}");
        let resp = e.into_response();
        let StoreFailure(cause) = resp.extensions().get::<StoreFailure>().unwrap();
        assert_eq!(cause, "write \"/data/lamb.db\": disk full");
    }

    #[test]
    fn a_callers_mistake_is_answered_as_it_is_and_not_logged() {
        let e = ApiError::from(StoreError::Lambda(LambdaError::invalid_parameter("bad")));
        assert_eq!(e.status(), 400);
        assert!(e.into_response().extensions().get::<StoreFailure>().is_none());
    }
}
