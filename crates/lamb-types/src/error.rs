//! Lambda's API errors: the exception names, their HTTP statuses, and the one
//! error type every validation and store failure is reported with.

use serde::Serialize;
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
    /// A request that breaks a constraint of the API model (a pattern, a
    /// length, a range), refused before Lambda's own code sees it.
    Validation,
    /// A request body over the service's size limit, refused at its front
    /// door (an upload; an Invoke payload is `RequestTooLarge`).
    RequestEntityTooLarge,
    /// The caller may not act on the resource (another account's).
    AccessDenied,
    /// No provisioned concurrency configuration for the qualifier.
    ProvisionedConcurrencyConfigNotFound,
    /// A code signing config ARN names none.
    CodeSigningConfigNotFound,
    /// A SnapStart version invoked before its snapshot is made.
    SnapStartNotReady,
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
            Self::Validation => "ValidationException",
            Self::RequestEntityTooLarge => "RequestEntityTooLargeException",
            Self::AccessDenied => "AccessDeniedException",
            Self::ProvisionedConcurrencyConfigNotFound => "ProvisionedConcurrencyConfigNotFoundException",
            Self::CodeSigningConfigNotFound => "CodeSigningConfigNotFoundException",
            Self::SnapStartNotReady => "SnapStartNotReadyException",
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
            | Self::AliasLimitExceeded
            | Self::Validation => 400,
            Self::ServiceQuotaExceeded => 402,
            Self::AccessDenied => 403,
            Self::ResourceNotFound | Self::ProvisionedConcurrencyConfigNotFound | Self::CodeSigningConfigNotFound => {
                404
            }
            Self::ResourceConflict | Self::SnapStartNotReady => 409,
            Self::PreconditionFailed => 412,
            Self::RequestTooLarge | Self::RequestEntityTooLarge => 413,
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

/// The members an exception's JSON body carries besides `__type`, as Lambda
/// sends them: its model spells the message `Message` for some exceptions
/// and `message` for the rest, and the front door's exceptions (outside the
/// model) carry only `message`, no `Type`. boto3 reads either spelling as
/// `Error.Message` and adds the modelled members to what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyShape {
    /// `{"Type", "Message"}`
    TypeAndCapitalMessage,
    /// `{"Type", "message"}`
    TypeAndMessage,
    /// `{"message"}`
    MessageOnly,
    /// `{"Message": null}`: AWS's AccessDeniedException for another
    /// account's function says nothing more (the recorded test_function_arns).
    NullMessage,
}

impl ErrorKind {
    pub const fn body_shape(self) -> BodyShape {
        match self {
            Self::ResourceNotFound | Self::Service => BodyShape::TypeAndCapitalMessage,
            Self::Validation | Self::RequestEntityTooLarge => BodyShape::MessageOnly,
            Self::AccessDenied => BodyShape::NullMessage,
            _ => BodyShape::TypeAndMessage,
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
    /// Answered without `Type` where its exception has one: AWS leaves it
    /// out of a few of its checks' answers (the recorded
    /// test_function_concurrency_limits).
    pub untyped: bool,
}

impl LambdaError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            untyped: false,
        }
    }

    /// The same error answered without `Type`, as AWS answers it there.
    pub fn without_type(mut self) -> Self {
        self.untyped = true;
        self
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

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Validation, message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AccessDenied, message)
    }

    pub fn request_entity_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::RequestEntityTooLarge, message)
    }

    /// The JSON body of the error response.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error_type: self.kind.fault().to_owned(),
            message: self.message.clone(),
            code: self.kind.name().to_owned(),
            shape: match self.kind.body_shape() {
                BodyShape::TypeAndMessage if self.untyped => BodyShape::MessageOnly,
                shape => shape,
            },
        }
    }
}

/// An error's body: `{"Type":"User","Message" or "message":"...",
/// "__type":"...Exception"}` as [`BodyShape`] says; other SDKs find the code
/// in `__type` when the header is lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    pub error_type: String,
    pub message: String,
    pub code: String,
    pub shape: BodyShape,
}

impl Serialize for ErrorBody {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        match self.shape {
            BodyShape::TypeAndCapitalMessage => {
                m.serialize_entry("Type", &self.error_type)?;
                m.serialize_entry("Message", &self.message)?;
            }
            BodyShape::TypeAndMessage => {
                m.serialize_entry("Type", &self.error_type)?;
                m.serialize_entry("message", &self.message)?;
            }
            BodyShape::MessageOnly => m.serialize_entry("message", &self.message)?,
            BodyShape::NullMessage => m.serialize_entry("Message", &None::<String>)?,
        }
        m.serialize_entry("__type", &self.code)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_denied_says_no_more_than_aws() {
        let body = serde_json::to_value(LambdaError::access_denied("another account").body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"Message": null, "__type": "AccessDeniedException"})
        );
    }

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
        assert_eq!(json["Message"], "Function not found: x");
        assert!(json.get("message").is_none(), "{json}");
        assert_eq!(json["__type"], "ResourceNotFoundException");
        assert_eq!(LambdaError::service("boom").body().error_type, "Service");
        assert_eq!(e.to_string(), "ResourceNotFoundException: Function not found: x");
    }

    /// test_lambda_api::TestLambdaReservedConcurrency::test_function_concurrency_limits:
    /// an exception AWS answers there without `Type` keeps only `message`.
    #[test]
    fn an_untyped_error_carries_only_its_message() {
        let v = serde_json::to_value(LambdaError::invalid_parameter("bad").without_type().body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message": "bad", "__type": "InvalidParameterValueException"})
        );
    }

    /// test_lambda_api::TestLambdaFunction::test_create_lambda_exceptions
    /// (`invalid_role_arn_exc` and `invalid_runtime_exc`): a constraint
    /// violation carries only `message`; a modelled 400 `Type` and `message`.
    #[test]
    fn bodies_follow_the_recorded_wire_shapes() {
        let v = serde_json::to_value(LambdaError::validation("1 validation error detected").body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message": "1 validation error detected", "__type": "ValidationException"})
        );
        let v = serde_json::to_value(LambdaError::invalid_parameter("bad").body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Type": "User", "message": "bad", "__type": "InvalidParameterValueException"})
        );
        assert_eq!(LambdaError::request_entity_too_large("x").http_status(), 413);
    }
}
