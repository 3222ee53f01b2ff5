//! Lambda's API errors: the exception names, their HTTP statuses, and the one
//! error type every validation and store failure is reported with.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The exceptions of Lambda's API model that lamb answers with (spec 3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    InvalidParameterValue,
    InvalidRequestContent,
    ResourceInUse,
    CodeStorageExceeded,
    PolicyLengthExceeded,
    AliasLimitExceeded,
    ServiceQuotaExceeded,
    ResourceNotFound,
    ResourceConflict,
    PreconditionFailed,
    RequestTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    Service,
    InvalidZipFile,
    InvalidRuntime,
    ResourceNotReady,
}

impl ErrorKind {
    /// The exception name as it goes into `x-amzn-ErrorType`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::InvalidParameterValue => "InvalidParameterValueException",
            Self::InvalidRequestContent => "InvalidRequestContentException",
            Self::ResourceInUse => "ResourceInUseException",
            Self::CodeStorageExceeded => "CodeStorageExceededException",
            Self::PolicyLengthExceeded => "PolicyLengthExceededException",
            Self::AliasLimitExceeded => "AliasLimitExceededException",
            Self::ServiceQuotaExceeded => "ServiceQuotaExceededException",
            Self::ResourceNotFound => "ResourceNotFoundException",
            Self::ResourceConflict => "ResourceConflictException",
            Self::PreconditionFailed => "PreconditionFailedException",
            Self::RequestTooLarge => "RequestTooLargeException",
            Self::UnsupportedMediaType => "UnsupportedMediaTypeException",
            Self::TooManyRequests => "TooManyRequestsException",
            Self::Service => "ServiceException",
            Self::InvalidZipFile => "InvalidZipFileException",
            Self::InvalidRuntime => "InvalidRuntimeException",
            Self::ResourceNotReady => "ResourceNotReadyException",
        }
    }

    /// The HTTP status Lambda answers this exception with.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidParameterValue
            | Self::InvalidRequestContent
            | Self::ResourceInUse
            | Self::CodeStorageExceeded
            | Self::PolicyLengthExceeded
            | Self::AliasLimitExceeded => 400,
            Self::ServiceQuotaExceeded => 402,
            Self::ResourceNotFound => 404,
            Self::ResourceConflict => 409,
            Self::PreconditionFailed => 412,
            Self::RequestTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::TooManyRequests => 429,
            Self::Service => 500,
            Self::InvalidZipFile | Self::InvalidRuntime | Self::ResourceNotReady => 502,
        }
    }

    /// `"User"` for the caller's faults, `"Service"` for ours (the body's `Type`).
    pub const fn fault(self) -> &'static str {
        if self.http_status() >= 500 {
            "Service"
        } else {
            "User"
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error the API answers with: a Lambda exception and its message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct LambdaError {
    pub kind: ErrorKind,
    pub message: String,
}

impl LambdaError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParameterValue, message)
    }

    pub fn invalid_request_content(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidRequestContent, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceNotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ResourceConflict, message)
    }

    /// The `RevisionId` given does not match the current one.
    pub fn revision_mismatch() -> Self {
        Self::new(
            ErrorKind::PreconditionFailed,
            "The Revision Id provided does not match the latest Revision Id. \
             Call the GetFunction/GetAlias API to retrieve the latest Revision Id",
        )
    }

    pub fn request_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RequestTooLarge, message)
    }

    pub fn code_storage_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::CodeStorageExceeded, message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooManyRequests, message)
    }

    pub fn service(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Service, message)
    }

    pub fn http_status(&self) -> u16 {
        self.kind.http_status()
    }

    /// The JSON body of the error response.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error_type: self.kind.fault().to_owned(),
            message: self.message.clone(),
            code: self.kind.name().to_owned(),
        }
    }
}

/// `{"Type":"User","message":"...","__type":"...Exception"}`: botocore reads
/// `message`; other SDKs find the code in `__type` when the header is lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    #[serde(rename = "Type")]
    pub error_type: String,
    #[serde(rename = "message")]
    pub message: String,
    #[serde(rename = "__type")]
    pub code: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_the_model() {
        assert_eq!(ErrorKind::InvalidParameterValue.http_status(), 400);
        assert_eq!(ErrorKind::CodeStorageExceeded.http_status(), 400);
        assert_eq!(ErrorKind::ServiceQuotaExceeded.http_status(), 402);
        assert_eq!(ErrorKind::ResourceNotFound.http_status(), 404);
        assert_eq!(ErrorKind::ResourceConflict.http_status(), 409);
        assert_eq!(ErrorKind::PreconditionFailed.http_status(), 412);
        assert_eq!(ErrorKind::RequestTooLarge.http_status(), 413);
        assert_eq!(ErrorKind::TooManyRequests.http_status(), 429);
        assert_eq!(ErrorKind::Service.http_status(), 500);
        assert_eq!(ErrorKind::InvalidZipFile.http_status(), 502);
    }

    #[test]
    fn body_carries_name_and_fault() {
        let e = LambdaError::not_found("Function not found: x");
        let json = serde_json::to_value(e.body()).unwrap();
        assert_eq!(json["Type"], "User");
        assert_eq!(json["message"], "Function not found: x");
        assert_eq!(json["__type"], "ResourceNotFoundException");
        assert_eq!(LambdaError::service("boom").body().error_type, "Service");
        assert_eq!(e.to_string(), "ResourceNotFoundException: Function not found: x");
    }
}
