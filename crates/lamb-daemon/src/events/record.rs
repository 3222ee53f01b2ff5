//! Destinations: which ARNs lamb accepts, and the invocation record Lambda
//! sends to them.

use lamb_types::{ArnContext, FunctionRef, LambdaError, Qualifier};
use serde_json::{json, Value};
use time::macros::format_description;

/// Why an event went to a destination (`requestContext.condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Success,
    RetriesExhausted,
    EventAgeExceeded,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "Success",
            Self::RetriesExhausted => "RetriesExhausted",
            Self::EventAgeExceeded => "EventAgeExceeded",
        }
    }
}

/// A destination of `DestinationConfig`. Lambda takes SQS, SNS, EventBridge,
/// S3 and function ARNs; lamb has only functions, and refuses the rest
/// rather than drop records silently. A function may not be its own
/// destination, as in Lambda.
pub fn validate_destination(member: &str, arn: &str, function: &str) -> Result<(), LambdaError> {
    let parts: Vec<&str> = arn.split(':').collect();
    if parts.len() < 6 || parts[0] != "arn" || arn.len() > 350 {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{arn}' at '{member}' failed to satisfy constraint: Member must \
             satisfy regular expression pattern: ^$|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\\-])+:\
             ([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}})?:(\\d{{12}})?:(.*)"
        )));
    }
    if parts[2] != "lambda" || parts[5] != "function" {
        return Err(LambdaError::invalid_parameter(format!(
            "lamb delivers destinations only to lamb functions, not to {arn}"
        )));
    }
    let target = destination_function(arn)?;
    if target.name == function {
        return Err(LambdaError::invalid_parameter(
            "You can't specify the function as a destination for itself.",
        ));
    }
    Ok(())
}

/// The function a destination ARN names, `$LATEST` when unqualified.
pub fn destination_function(arn: &str) -> Result<FunctionRef, LambdaError> {
    let mut r = FunctionRef::parse(arn)?;
    r.qualifier.get_or_insert_with(Qualifier::latest);
    Ok(r)
}

/// The payload as JSON, or as a string when it is none.
fn payload_value(bytes: &[u8]) -> Value {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

/// What a run answered, for `responseContext` and `responsePayload`.
pub struct Response<'a> {
    pub executed_version: String,
    pub function_error: Option<&'a str>,
    pub payload: &'a [u8],
}

/// Lambda's invocation record: `version`, `timestamp`, `requestContext`,
/// `requestPayload`, and, when the function ran, `responseContext` and
/// `responsePayload`.
pub fn invocation_record(
    ctx: &ArnContext,
    event: &lamb_store::QueuedEvent,
    condition: Condition,
    invoke_count: u32,
    response: Option<Response<'_>>,
) -> Vec<u8> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
        ))
        .unwrap_or_default();
    let mut record = json!({
        "version": "1.0",
        "timestamp": timestamp,
        "requestContext": {
            "requestId": event.id,
            "functionArn": format!("{}:{}", ctx.function_arn(&event.function), event.qualifier),
            "condition": condition.as_str(),
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": payload_value(&event.payload),
    });
    if let Some(r) = response {
        let mut rc = json!({"statusCode": 200, "executedVersion": r.executed_version});
        if let Some(e) = r.function_error {
            rc["functionError"] = json!(e);
        }
        record["responseContext"] = rc;
        record["responsePayload"] = payload_value(r.payload);
    }
    serde_json::to_vec(&record).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_lamb_functions_other_than_itself() {
        let f = "arn:aws:lambda:us-east-1:000000000000:function:dest";
        assert!(validate_destination("d", f, "src").is_ok());
        assert!(validate_destination("d", &format!("{f}:live"), "src").is_ok());
        assert!(validate_destination("d", f, "dest").is_err());
        assert!(validate_destination("d", "arn:aws:sqs:us-east-1:000000000000:q", "src").is_err());
        assert!(validate_destination("d", "nope", "src").is_err());
        let r = destination_function(f).unwrap();
        assert_eq!((r.name.as_str(), r.qualifier), ("dest", Some(Qualifier::latest())));
    }

    #[test]
    fn record_has_lambdas_shape() {
        let ev = lamb_store::QueuedEvent {
            id: "rid".into(),
            function: "f".into(),
            qualifier: "$LATEST".into(),
            payload: br#"{"a":1}"#.to_vec(),
            attempts: 2,
            enqueued_at_ms: 0,
            next_attempt_at_ms: 0,
        };
        let out = invocation_record(
            &ArnContext::default(),
            &ev,
            Condition::RetriesExhausted,
            3,
            Some(Response {
                executed_version: "$LATEST".into(),
                function_error: Some("Unhandled"),
                payload: br#"{"errorMessage":"boom"}"#,
            }),
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["version"], "1.0");
        assert_eq!(v["requestContext"]["requestId"], "rid");
        assert_eq!(v["requestContext"]["condition"], "RetriesExhausted");
        assert_eq!(v["requestContext"]["approximateInvokeCount"], 3);
        assert_eq!(
            v["requestContext"]["functionArn"],
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
        );
        assert_eq!(v["requestPayload"]["a"], 1);
        assert_eq!(v["responseContext"]["functionError"], "Unhandled");
        assert_eq!(v["responsePayload"]["errorMessage"], "boom");
        assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
