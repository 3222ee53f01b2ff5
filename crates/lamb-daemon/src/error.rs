//! The one map from failures to HTTP responses: Lambda's `x-amzn-ErrorType`
//! header and `{"Type","message","__type"}` body (spec 3.8).

use crate::sigv4::AuthError;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lamb_store::StoreError;
use lamb_types::{ErrorBody, LambdaError};

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
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if !matches!(e, StoreError::Lambda(_) | StoreError::Bundle(_)) {
            tracing::error!(error = %e, "store failure");
        }
        Self::Lambda(e.to_lambda())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match e {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::UnknownKey => "UnrecognizedClientException",
            AuthError::BadSignature | AuthError::Invalid(_) => "InvalidSignatureException",
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
                }),
            ),
            // The model's TooManyRequestsException: `Reason`, `Type`, `message`.
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
