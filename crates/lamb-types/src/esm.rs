//! Event source mappings for RabbitMQ queues (Amazon MQ's shape): the
//! requests and the `EventSourceMappingConfiguration` of
//! Create/Get/List/Update/DeleteEventSourceMapping.
//!
//! lamb has no Amazon MQ: `lamb serve --rabbitmq NAME=amqp://USER:PASS@HOST:PORT`
//! names a broker, and a mapping's `EventSourceArn` names it as
//! `arn:aws:mq:<region>:<account>:broker:NAME:<id>` (any id).

use crate::arn::ArnContext;
use crate::error::LambdaError;
use serde::{Deserialize, Serialize};

/// `BatchSize` of Amazon MQ: 1–10,000, default 100.
pub const DEFAULT_BATCH_SIZE: u32 = 100;
pub const MAX_BATCH_SIZE: u32 = 10_000;
/// `MaximumBatchingWindowInSeconds`: 0–300.
pub const MAX_BATCHING_WINDOW_S: u32 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SourceAccessConfiguration {
    /// `BASIC_AUTH` or `VIRTUAL_HOST`.
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "URI")]
    pub uri: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEventSourceMappingRequest {
    pub function_name: String,
    #[serde(default)]
    pub event_source_arn: Option<String>,
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    #[serde(default)]
    pub batch_size: Option<u32>,
    #[serde(default)]
    pub maximum_batching_window_in_seconds: Option<u32>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub source_access_configurations: Option<Vec<SourceAccessConfiguration>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateEventSourceMappingRequest {
    #[serde(default)]
    pub function_name: Option<String>,
    #[serde(default)]
    pub batch_size: Option<u32>,
    #[serde(default)]
    pub maximum_batching_window_in_seconds: Option<u32>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub source_access_configurations: Option<Vec<SourceAccessConfiguration>>,
}

/// A mapping as stored and as the API shows it (`EventSourceMappingConfiguration`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSourceMappingConfiguration {
    #[serde(rename = "UUID")]
    pub uuid: String,
    pub batch_size: u32,
    pub maximum_batching_window_in_seconds: u32,
    pub event_source_arn: String,
    pub function_arn: String,
    /// Epoch seconds.
    pub last_modified: f64,
    pub last_processing_result: String,
    /// `Enabled`, `Disabled`, `Deleting` (lamb applies changes at once).
    pub state: String,
    pub state_transition_reason: String,
    pub queues: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_access_configurations: Vec<SourceAccessConfiguration>,
}

impl EventSourceMappingConfiguration {
    pub fn enabled(&self) -> bool {
        self.state == "Enabled"
    }

    /// The virtual host: `VIRTUAL_HOST` of the source access configuration,
    /// else `/`.
    pub fn virtual_host(&self) -> &str {
        self.source_access_configurations
            .iter()
            .find(|c| c.kind == "VIRTUAL_HOST")
            .map_or("/", |c| c.uri.as_str())
    }
}

/// The broker name of an Amazon MQ broker ARN of this box.
pub fn broker_name<'a>(ctx: &ArnContext, arn: &'a str) -> Result<&'a str, LambdaError> {
    let prefix = format!("arn:{}:mq:{}:{}:broker:", ctx.partition, ctx.region, ctx.account);
    arn.strip_prefix(&prefix)
        .map(|rest| rest.split(':').next().unwrap_or_default())
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)))
        .ok_or_else(|| {
            LambdaError::invalid_parameter(format!(
                "EventSourceArn '{arn}' is not a broker of this lamb: expected {prefix}NAME:ID, \
                 NAME given to lamb serve --rabbitmq NAME=amqp://..."
            ))
        })
}

/// `BatchSize`, `MaximumBatchingWindowInSeconds`, `Queues` (exactly one),
/// `SourceAccessConfigurations` types.
pub fn validate(
    batch_size: u32,
    window_s: u32,
    queues: &[String],
    access: &[SourceAccessConfiguration],
) -> Result<(), LambdaError> {
    if !(1..=MAX_BATCH_SIZE).contains(&batch_size) {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{batch_size}' at 'batchSize' failed to satisfy constraint: \
             Member must have value between 1 and {MAX_BATCH_SIZE}"
        )));
    }
    if window_s > MAX_BATCHING_WINDOW_S {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{window_s}' at 'maximumBatchingWindowInSeconds' failed to \
             satisfy constraint: Member must have value less than or equal to {MAX_BATCHING_WINDOW_S}"
        )));
    }
    if queues.len() != 1 || queues[0].is_empty() || queues[0].len() > 1000 {
        return Err(LambdaError::invalid_parameter(
            "Queues must name exactly one queue of 1 to 1000 characters",
        ));
    }
    if let Some(c) = access
        .iter()
        .find(|c| c.kind != "BASIC_AUTH" && c.kind != "VIRTUAL_HOST")
    {
        return Err(LambdaError::invalid_parameter(format!(
            "SourceAccessConfigurations Type '{}' is not supported for RabbitMQ (BASIC_AUTH, VIRTUAL_HOST)",
            c.kind
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_arns() {
        let ctx = ArnContext::default();
        assert_eq!(
            broker_name(&ctx, "arn:aws:mq:us-east-1:000000000000:broker:local:b-1").unwrap(),
            "local"
        );
        assert!(broker_name(&ctx, "arn:aws:mq:us-east-1:123456789012:broker:local:b-1").is_err());
        assert!(broker_name(&ctx, "arn:aws:sqs:us-east-1:000000000000:q").is_err());
    }

    #[test]
    fn limits() {
        let q = vec!["jobs".to_owned()];
        validate(10, 1, &q, &[]).unwrap();
        assert!(validate(0, 1, &q, &[]).is_err());
        assert!(validate(10, 301, &q, &[]).is_err());
        assert!(validate(10, 1, &[], &[]).is_err());
    }

    #[test]
    fn reads_botocore_json() {
        let r: CreateEventSourceMappingRequest = serde_json::from_str(
            r#"{"FunctionName":"f","EventSourceArn":"a","Queues":["q"],"BatchSize":5,
                "SourceAccessConfigurations":[{"Type":"VIRTUAL_HOST","URI":"/v"}]}"#,
        )
        .unwrap();
        assert_eq!(r.source_access_configurations.unwrap()[0].uri, "/v");
    }
}
