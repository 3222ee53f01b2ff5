//! Event source mappings (SQS, Kinesis, DynamoDB Streams, and RabbitMQ queues
//! in Amazon MQ's shape): the requests and the
//! `EventSourceMappingConfiguration` of Create/Get/List/Update/DeleteEventSourceMapping,
//! the kind of source an `EventSourceArn` names, and the limits of each kind.
//!
//! lamb has no Amazon MQ: `lamb serve --rabbitmq NAME=amqp://USER:PASS@HOST:PORT`
//! names a broker, and a mapping's `EventSourceArn` names it as
//! `arn:aws:mq:<region>:<account>:broker:NAME:<id>` (any id).

use crate::arn::ArnContext;
use crate::error::LambdaError;
use crate::esm_filter::{FilterCriteria, Filters};
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

/// The settings a Create or Update request may carry besides the function,
/// the source and the state; `apply` merges them onto a mapping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MappingSettings {
    #[serde(default)]
    pub batch_size: Option<u32>,
    #[serde(default)]
    pub maximum_batching_window_in_seconds: Option<u32>,
    #[serde(default)]
    pub source_access_configurations: Option<Vec<SourceAccessConfiguration>>,
    #[serde(default)]
    pub filter_criteria: Option<FilterCriteria>,
    #[serde(default)]
    pub function_response_types: Option<Vec<String>>,
    #[serde(default)]
    pub scaling_config: Option<ScalingConfig>,
    #[serde(default)]
    pub bisect_batch_on_function_error: Option<bool>,
    #[serde(default)]
    pub maximum_retry_attempts: Option<i32>,
    #[serde(default)]
    pub maximum_record_age_in_seconds: Option<i32>,
    #[serde(default)]
    pub parallelization_factor: Option<u32>,
    #[serde(default)]
    pub tumbling_window_in_seconds: Option<u32>,
    #[serde(default)]
    pub destination_config: Option<DestinationConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEventSourceMappingRequest {
    pub function_name: String,
    #[serde(default)]
    pub event_source_arn: Option<String>,
    #[serde(default)]
    pub queues: Option<Vec<String>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub starting_position: Option<String>,
    #[serde(default)]
    pub starting_position_timestamp: Option<f64>,
    #[serde(flatten)]
    pub settings: MappingSettings,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateEventSourceMappingRequest {
    #[serde(default)]
    pub function_name: Option<String>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(flatten)]
    pub settings: MappingSettings,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_concurrency: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DestinationConfig {
    #[serde(default)]
    pub on_failure: OnFailure,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct OnFailure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// A mapping as stored and as the API shows it (`EventSourceMappingConfiguration`).
/// Fields of one kind of source only are absent for the others, as in AWS's
/// answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventSourceMappingConfiguration {
    #[serde(rename = "UUID")]
    pub uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_position: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_position_timestamp: Option<f64>,
    pub batch_size: u32,
    pub maximum_batching_window_in_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelization_factor: Option<u32>,
    pub event_source_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_criteria: Option<FilterCriteria>,
    pub function_arn: String,
    /// Epoch seconds.
    pub last_modified: f64,
    pub last_processing_result: String,
    /// `Creating`, `Enabled`, `Disabled`, `Updating`, `Deleting`: see [`State`].
    pub state: String,
    pub state_transition_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_config: Option<DestinationConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_access_configurations: Vec<SourceAccessConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_record_age_in_seconds: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bisect_batch_on_function_error: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_retry_attempts: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tumbling_window_in_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scaling_config: Option<ScalingConfig>,
}

impl EventSourceMappingConfiguration {
    pub fn enabled(&self) -> bool {
        self.state == state::ENABLED
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

/// What a mapping reads, from its `EventSourceArn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A RabbitMQ broker given to `lamb serve --rabbitmq NAME=...`.
    RabbitMq { broker: String },
    /// An SQS queue; FIFO when its name ends in `.fifo`.
    Sqs {
        region: String,
        account: String,
        queue: String,
    },
    /// A Kinesis data stream.
    Kinesis { region: String, stream: String },
    /// A DynamoDB table's stream; the whole ARN names it.
    DynamoDbStreams { region: String, stream_arn: String },
}

impl Source {
    pub fn parse(ctx: &ArnContext, arn: &str) -> Result<Self, LambdaError> {
        let unsupported = || {
            LambdaError::invalid_parameter(format!(
                "EventSourceArn '{arn}' is not supported: lamb reads SQS queues (arn:aws:sqs:REGION:ACCOUNT:QUEUE), \
                 Kinesis streams (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME), DynamoDB streams \
                 (arn:aws:dynamodb:REGION:ACCOUNT:table/TABLE/stream/LABEL) and RabbitMQ brokers \
                 (arn:aws:mq:REGION:ACCOUNT:broker:NAME:ID)"
            ))
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, service, region, account, resource] = parts[..] else {
            return Err(unsupported());
        };
        if parts[0] != "arn" || region.is_empty() || resource.is_empty() {
            return Err(unsupported());
        }
        let region = region.to_owned();
        match service {
            "mq" => Ok(Source::RabbitMq {
                broker: broker_name(ctx, arn)?.to_owned(),
            }),
            "sqs" if !resource.contains(['/', ':']) => Ok(Source::Sqs {
                region,
                account: account.to_owned(),
                queue: resource.to_owned(),
            }),
            "kinesis" => match resource.strip_prefix("stream/") {
                Some(stream) if !stream.is_empty() && !stream.contains('/') => Ok(Source::Kinesis {
                    region,
                    stream: stream.to_owned(),
                }),
                _ => Err(unsupported()),
            },
            "dynamodb" if resource.starts_with("table/") && resource.contains("/stream/") => {
                Ok(Source::DynamoDbStreams {
                    region,
                    stream_arn: arn.to_owned(),
                })
            }
            _ => Err(unsupported()),
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Source::Kinesis { .. } | Source::DynamoDbStreams { .. })
    }

    pub fn is_fifo(&self) -> bool {
        matches!(self, Source::Sqs { queue, .. } if queue.ends_with(".fifo"))
    }

    fn default_batch_size(&self) -> u32 {
        match self {
            Source::Sqs { .. } => 10,
            _ => DEFAULT_BATCH_SIZE,
        }
    }
}

/// A new mapping of `source` with AWS's defaults for its kind, before the
/// request's settings are applied.
pub fn new_mapping(
    source: &Source,
    uuid: String,
    event_source_arn: String,
    function_arn: String,
) -> EventSourceMappingConfiguration {
    let stream = source.is_stream();
    EventSourceMappingConfiguration {
        uuid,
        starting_position: None,
        starting_position_timestamp: None,
        batch_size: source.default_batch_size(),
        maximum_batching_window_in_seconds: 0,
        parallelization_factor: stream.then_some(1),
        event_source_arn,
        filter_criteria: None,
        function_arn,
        last_modified: 0.0,
        last_processing_result: NO_RECORDS.into(),
        state: state::CREATING.into(),
        state_transition_reason: USER_INITIATED.into(),
        destination_config: stream.then(DestinationConfig::default),
        queues: Vec::new(),
        source_access_configurations: Vec::new(),
        maximum_record_age_in_seconds: stream.then_some(-1),
        bisect_batch_on_function_error: stream.then_some(false),
        maximum_retry_attempts: stream.then_some(-1),
        tumbling_window_in_seconds: stream.then_some(0),
        function_response_types: (!matches!(source, Source::RabbitMq { .. })).then(Vec::new),
        scaling_config: None,
    }
}

/// `LastProcessingResult` values as AWS writes them.
pub const NO_RECORDS: &str = "No records processed";
pub const OK: &str = "OK";
pub const PROBLEM_FUNCTION_ERROR: &str = "PROBLEM: Function call failed";
pub const USER_INITIATED: &str = "USER_INITIATED";

/// States of a mapping. lamb stores `Enabled` or `Disabled` (it applies a
/// change at once); Create, Update and Delete answer with the transitional
/// state AWS answers with.
pub mod state {
    pub const CREATING: &str = "Creating";
    pub const ENABLING: &str = "Enabling";
    pub const ENABLED: &str = "Enabled";
    pub const DISABLING: &str = "Disabling";
    pub const DISABLED: &str = "Disabled";
    pub const UPDATING: &str = "Updating";
    pub const DELETING: &str = "Deleting";
}

impl MappingSettings {
    /// Writes every setting the request names onto `m`.
    pub fn apply(&self, m: &mut EventSourceMappingConfiguration) {
        fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *dst = v.clone();
            }
        }
        fn set_opt<T: Clone>(dst: &mut Option<T>, v: &Option<T>) {
            if v.is_some() {
                dst.clone_from(v);
            }
        }
        set(&mut m.batch_size, &self.batch_size);
        set(
            &mut m.maximum_batching_window_in_seconds,
            &self.maximum_batching_window_in_seconds,
        );
        set(&mut m.source_access_configurations, &self.source_access_configurations);
        // An empty FilterCriteria removes the filters, as in AWS.
        if let Some(fc) = &self.filter_criteria {
            m.filter_criteria = (!fc.filters.is_empty()).then(|| fc.clone());
        }
        set_opt(&mut m.function_response_types, &self.function_response_types);
        set_opt(&mut m.scaling_config, &self.scaling_config);
        set_opt(
            &mut m.bisect_batch_on_function_error,
            &self.bisect_batch_on_function_error,
        );
        set_opt(&mut m.maximum_retry_attempts, &self.maximum_retry_attempts);
        set_opt(
            &mut m.maximum_record_age_in_seconds,
            &self.maximum_record_age_in_seconds,
        );
        set_opt(&mut m.parallelization_factor, &self.parallelization_factor);
        set_opt(&mut m.tumbling_window_in_seconds, &self.tumbling_window_in_seconds);
        set_opt(&mut m.destination_config, &self.destination_config);
    }
}

fn range_error(field: &str, value: impl std::fmt::Display, constraint: &str) -> LambdaError {
    LambdaError::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
    ))
}

fn not_for(field: &str, source: &Source) -> LambdaError {
    let kind = match source {
        Source::RabbitMq { .. } => "RabbitMQ",
        Source::Sqs { .. } => "SQS",
        Source::Kinesis { .. } => "Kinesis",
        Source::DynamoDbStreams { .. } => "DynamoDB Streams",
    };
    LambdaError::invalid_parameter(format!("Unsupported {field} for {kind} event sources."))
}

/// Checks a whole mapping (after a Create or Update applied its settings)
/// against the limits of its kind of source.
pub fn validate(source: &Source, m: &EventSourceMappingConfiguration) -> Result<(), LambdaError> {
    let max_batch = if source.is_fifo() { 10 } else { MAX_BATCH_SIZE };
    if !(1..=max_batch).contains(&m.batch_size) {
        return Err(range_error(
            "batchSize",
            m.batch_size,
            &format!("Member must have value between 1 and {max_batch}"),
        ));
    }
    let window_s = m.maximum_batching_window_in_seconds;
    if window_s > MAX_BATCHING_WINDOW_S {
        return Err(range_error(
            "maximumBatchingWindowInSeconds",
            window_s,
            &format!("Member must have value less than or equal to {MAX_BATCHING_WINDOW_S}"),
        ));
    }
    if matches!(source, Source::Sqs { .. }) && m.batch_size > 10 && window_s == 0 {
        return Err(LambdaError::invalid_parameter(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        ));
    }
    if let Some(fc) = &m.filter_criteria {
        fc.compile()?;
    }
    if let Some(t) = &m.function_response_types {
        if let Some(bad) = t.iter().find(|t| *t != "ReportBatchItemFailures") {
            return Err(range_error(
                "functionResponseTypes",
                bad,
                "Member must satisfy enum value set: [ReportBatchItemFailures]",
            ));
        }
    }
    match source {
        Source::RabbitMq { .. } => validate_rabbitmq(m),
        Source::Sqs { .. } => validate_sqs(source, m),
        Source::Kinesis { .. } | Source::DynamoDbStreams { .. } => validate_stream(source, m),
    }
}

fn validate_rabbitmq(m: &EventSourceMappingConfiguration) -> Result<(), LambdaError> {
    let queues = &m.queues;
    if queues.len() != 1 || queues[0].is_empty() || queues[0].len() > 1000 {
        return Err(LambdaError::invalid_parameter(
            "Queues must name exactly one queue of 1 to 1000 characters",
        ));
    }
    if let Some(c) = m
        .source_access_configurations
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

fn validate_sqs(source: &Source, m: &EventSourceMappingConfiguration) -> Result<(), LambdaError> {
    if !m.queues.is_empty() {
        return Err(not_for("Queues", source));
    }
    if m.starting_position.is_some() {
        return Err(not_for("StartingPosition", source));
    }
    if m.parallelization_factor.is_some()
        || m.bisect_batch_on_function_error.is_some()
        || m.maximum_retry_attempts.is_some()
        || m.maximum_record_age_in_seconds.is_some()
        || m.tumbling_window_in_seconds.is_some()
    {
        return Err(not_for("stream settings", source));
    }
    if m.destination_config
        .as_ref()
        .is_some_and(|d| d.on_failure.destination.is_some())
    {
        return Err(not_for("DestinationConfig", source));
    }
    if let Some(c) = m.scaling_config.and_then(|s| s.maximum_concurrency) {
        if !(2..=1000).contains(&c) {
            return Err(range_error(
                "scalingConfig.maximumConcurrency",
                c,
                "Member must have value between 2 and 1000",
            ));
        }
    }
    Ok(())
}

fn validate_stream(source: &Source, m: &EventSourceMappingConfiguration) -> Result<(), LambdaError> {
    if !m.queues.is_empty() {
        return Err(not_for("Queues", source));
    }
    if m.scaling_config.is_some() {
        return Err(not_for("ScalingConfig", source));
    }
    match m.starting_position.as_deref() {
        Some("TRIM_HORIZON" | "LATEST") => {}
        Some("AT_TIMESTAMP") if matches!(source, Source::Kinesis { .. }) => {
            if m.starting_position_timestamp.is_none() {
                return Err(LambdaError::invalid_parameter(
                    "StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP",
                ));
            }
        }
        Some("AT_TIMESTAMP") => {
            return Err(LambdaError::invalid_parameter(
                "Unsupported StartingPosition AT_TIMESTAMP for DynamoDB Streams event sources (TRIM_HORIZON, LATEST)",
            ))
        }
        Some(other) => {
            return Err(range_error(
                "startingPosition",
                other,
                "Member must satisfy enum value set: [TRIM_HORIZON, LATEST] (and AT_TIMESTAMP for Kinesis)",
            ))
        }
        None => {
            return Err(LambdaError::invalid_parameter(
                "StartingPosition is required for Kinesis and DynamoDB Streams event sources",
            ))
        }
    }
    let p = m.parallelization_factor.unwrap_or(1);
    if !(1..=10).contains(&p) {
        return Err(range_error(
            "parallelizationFactor",
            p,
            "Member must have value between 1 and 10",
        ));
    }
    let r = m.maximum_retry_attempts.unwrap_or(-1);
    if !(-1..=10_000).contains(&r) {
        return Err(range_error(
            "maximumRetryAttempts",
            r,
            "Member must have value between -1 and 10000",
        ));
    }
    let a = m.maximum_record_age_in_seconds.unwrap_or(-1);
    if a != -1 && !(60..=604_800).contains(&a) {
        return Err(range_error(
            "maximumRecordAgeInSeconds",
            a,
            "Member must be -1 or have value between 60 and 604800",
        ));
    }
    let t = m.tumbling_window_in_seconds.unwrap_or(0);
    if t > 900 {
        return Err(range_error(
            "tumblingWindowInSeconds",
            t,
            "Member must have value between 0 and 900",
        ));
    }
    if let Some(d) = m
        .destination_config
        .as_ref()
        .and_then(|d| d.on_failure.destination.as_deref())
    {
        if !d.starts_with("arn:aws:sqs:") {
            return Err(LambdaError::invalid_parameter(format!(
                "DestinationConfig.OnFailure.Destination '{d}': lamb sends failed batches' records to SQS queues only"
            )));
        }
    }
    Ok(())
}

impl EventSourceMappingConfiguration {
    /// The mapping's filters, compiled (they were checked when written).
    pub fn filters(&self) -> Filters {
        self.filter_criteria
            .as_ref()
            .and_then(|f| f.compile().ok())
            .unwrap_or_default()
    }

    pub fn reports_batch_item_failures(&self) -> bool {
        self.function_response_types
            .as_ref()
            .is_some_and(|t| t.iter().any(|t| t == "ReportBatchItemFailures"))
    }

    pub fn on_failure_destination(&self) -> Option<&str> {
        self.destination_config.as_ref()?.on_failure.destination.as_deref()
    }
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

    fn mapping(arn: &str) -> (Source, EventSourceMappingConfiguration) {
        let src = Source::parse(&ArnContext::default(), arn).unwrap();
        let m = new_mapping(&src, "u".into(), arn.into(), "f".into());
        (src, m)
    }

    #[test]
    fn sources_from_arns() {
        let ctx = ArnContext::default();
        let sqs = Source::parse(&ctx, "arn:aws:sqs:eu-west-1:123456789012:jobs.fifo").unwrap();
        assert!(sqs.is_fifo() && !sqs.is_stream());
        assert!(matches!(
            Source::parse(&ctx, "arn:aws:kinesis:us-east-1:123456789012:stream/s").unwrap(),
            Source::Kinesis { stream, .. } if stream == "s"
        ));
        let ddb = "arn:aws:dynamodb:us-east-1:123456789012:table/T/stream/2026-01-01T00:00:00.000";
        assert!(
            matches!(Source::parse(&ctx, ddb).unwrap(), Source::DynamoDbStreams { stream_arn, .. } if stream_arn == ddb)
        );
        for bad in [
            "",
            "arn:aws:sqs",
            "arn:aws:s3:::b",
            "arn:aws:kinesis:r:a:table/x",
            "arn:aws:dynamodb:r:a:table/T",
        ] {
            assert!(Source::parse(&ctx, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits() {
        let (src, mut m) = mapping("arn:aws:mq:us-east-1:000000000000:broker:local:b-1");
        m.queues = vec!["jobs".to_owned()];
        validate(&src, &m).unwrap();
        m.batch_size = 0;
        assert!(validate(&src, &m).is_err());
        m.batch_size = 10;
        m.maximum_batching_window_in_seconds = 301;
        assert!(validate(&src, &m).is_err());
        m.maximum_batching_window_in_seconds = 1;
        m.queues.clear();
        assert!(validate(&src, &m).is_err());
    }

    #[test]
    fn sqs_limits() {
        let (src, mut m) = mapping("arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(m.batch_size, 10);
        validate(&src, &m).unwrap();
        m.batch_size = 100;
        assert!(validate(&src, &m).is_err(), "over 10 needs a window");
        m.maximum_batching_window_in_seconds = 1;
        validate(&src, &m).unwrap();
        m.starting_position = Some("LATEST".into());
        assert!(validate(&src, &m).is_err());
        m.starting_position = None;
        m.scaling_config = Some(ScalingConfig {
            maximum_concurrency: Some(1),
        });
        assert!(validate(&src, &m).is_err());
        m.scaling_config = Some(ScalingConfig {
            maximum_concurrency: Some(2),
        });
        m.function_response_types = Some(vec!["Nope".into()]);
        assert!(validate(&src, &m).is_err());
        m.function_response_types = Some(vec!["ReportBatchItemFailures".into()]);
        validate(&src, &m).unwrap();
        let (fifo, mut f) = mapping("arn:aws:sqs:us-east-1:123456789012:q.fifo");
        f.batch_size = 11;
        f.maximum_batching_window_in_seconds = 1;
        assert!(validate(&fifo, &f).is_err());
    }

    #[test]
    fn stream_limits() {
        let (src, mut m) = mapping("arn:aws:kinesis:us-east-1:123456789012:stream/s");
        assert!(validate(&src, &m).is_err(), "StartingPosition is required");
        m.starting_position = Some("AT_TIMESTAMP".into());
        assert!(validate(&src, &m).is_err(), "needs a timestamp");
        m.starting_position_timestamp = Some(1.0);
        validate(&src, &m).unwrap();
        let s = MappingSettings {
            maximum_retry_attempts: Some(10_001),
            ..Default::default()
        };
        let mut bad = m.clone();
        s.apply(&mut bad);
        assert!(validate(&src, &bad).is_err());
        let mut bad = m.clone();
        bad.maximum_record_age_in_seconds = Some(59);
        assert!(validate(&src, &bad).is_err());
        let mut bad = m.clone();
        bad.parallelization_factor = Some(11);
        assert!(validate(&src, &bad).is_err());
        // Tumbling windows: 0 to 900 seconds.
        let mut t = m.clone();
        for ok in [0, 1, 900] {
            t.tumbling_window_in_seconds = Some(ok);
            validate(&src, &t).unwrap();
        }
        t.tumbling_window_in_seconds = Some(901);
        assert!(validate(&src, &t).is_err());
        let mut bad = m.clone();
        bad.destination_config = Some(DestinationConfig {
            on_failure: OnFailure {
                destination: Some("arn:aws:sns:us-east-1:1:t".into()),
            },
        });
        assert!(validate(&src, &bad).is_err());
        let (ddb, mut d) = mapping("arn:aws:dynamodb:us-east-1:1:table/T/stream/L");
        d.starting_position = Some("AT_TIMESTAMP".into());
        d.starting_position_timestamp = Some(1.0);
        assert!(validate(&ddb, &d).is_err(), "DynamoDB Streams has no AT_TIMESTAMP");
    }

    #[test]
    fn empty_filter_criteria_removes_filters() {
        let (src, mut m) = mapping("arn:aws:sqs:us-east-1:123456789012:q");
        let with = MappingSettings {
            filter_criteria: Some(FilterCriteria {
                filters: vec![crate::esm_filter::Filter {
                    pattern: r#"{"body": ["x"]}"#.into(),
                }],
            }),
            ..Default::default()
        };
        with.apply(&mut m);
        validate(&src, &m).unwrap();
        assert!(m.filter_criteria.is_some());
        let without = MappingSettings {
            filter_criteria: Some(FilterCriteria::default()),
            ..Default::default()
        };
        without.apply(&mut m);
        assert!(m.filter_criteria.is_none());
        let bad = MappingSettings {
            filter_criteria: Some(FilterCriteria {
                filters: vec![crate::esm_filter::Filter { pattern: "{".into() }],
            }),
            ..Default::default()
        };
        bad.apply(&mut m);
        assert!(validate(&src, &m).is_err());
    }

    #[test]
    fn reads_botocore_json() {
        let r: CreateEventSourceMappingRequest = serde_json::from_str(
            r#"{"FunctionName":"f","EventSourceArn":"a","Queues":["q"],"BatchSize":5,
                "SourceAccessConfigurations":[{"Type":"VIRTUAL_HOST","URI":"/v"}]}"#,
        )
        .unwrap();
        assert_eq!(r.settings.source_access_configurations.unwrap()[0].uri, "/v");
    }
}
