//! What the registry stores and answers with, and how each record becomes
//! the wire shape the API returns.

use crate::code_store::StoredBundle;
use crate::digest::CodeDigest;
use lamb_types::{
    AliasConfiguration, AliasRoutingConfiguration, Architecture, ArnContext, DestinationConfig, EnvironmentResponse,
    FunctionConfiguration, FunctionEventInvokeConfig, FunctionSpec, LastUpdateStatus, LayerRef,
    LayerVersionContentOutput, LayerVersionResponse, LayerVersionsListItem, PutFunctionEventInvokeConfigRequest, State,
    TracingConfig, Version,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One page of a list and the marker of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// A stored bundle as the registry refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeInfo {
    pub digest: CodeDigest,
    /// `CodeSize`: the uploaded archive's size.
    pub code_size: u64,
    /// File bytes once unpacked.
    pub unzipped_size: u64,
}

impl From<&StoredBundle> for CodeInfo {
    fn from(b: &StoredBundle) -> Self {
        Self {
            digest: b.digest,
            code_size: b.code_size,
            unzipped_size: b.unzipped_size,
        }
    }
}

/// A layer version as a function version uses it: copied in, so deleting
/// the layer version does not take it from the function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedLayer {
    pub arn: String,
    /// Hex SHA-256: the directory under `layers/`.
    pub sha256: String,
    pub code_size: u64,
    pub unzipped_size: u64,
}

impl ResolvedLayer {
    pub fn digest(&self) -> Option<CodeDigest> {
        CodeDigest::from_hex(&self.sha256)
    }
}

/// One version of a function (`$LATEST` or published).
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionRecord {
    pub name: String,
    pub version: Version,
    pub spec: FunctionSpec,
    /// A published version's own description; `None` on `$LATEST`.
    pub version_description: Option<String>,
    pub code: CodeInfo,
    pub layers: Vec<ResolvedLayer>,
    pub revision_id: String,
    pub last_modified: String,
    pub state: State,
    pub last_update_status: LastUpdateStatus,
}

impl FunctionRecord {
    /// The function's code and layers together, unzipped.
    pub fn unzipped_total(&self) -> u64 {
        self.code.unzipped_size + self.layers.iter().map(|l| l.unzipped_size).sum::<u64>()
    }

    /// `FunctionConfiguration` as Lambda shows this version.
    pub fn configuration(&self, ctx: &ArnContext) -> FunctionConfiguration {
        let s = &self.spec;
        FunctionConfiguration {
            function_name: self.name.clone(),
            function_arn: ctx.version_arn(&self.name, self.version),
            runtime: s.runtime.clone(),
            role: s.role.clone(),
            handler: s.handler.clone(),
            code_size: self.code.code_size,
            code_sha256: self.code.digest.base64(),
            description: self
                .version_description
                .clone()
                .unwrap_or_else(|| s.description.clone()),
            timeout: s.timeout,
            memory_size: s.memory_size,
            last_modified: self.last_modified.clone(),
            version: self.version.to_string(),
            environment: (s.environment_set || !s.environment.is_empty()).then(|| EnvironmentResponse {
                variables: s.environment.clone(),
            }),
            tracing_config: TracingConfig { mode: s.tracing_mode },
            revision_id: self.revision_id.clone(),
            layers: self
                .layers
                .iter()
                .map(|l| LayerRef {
                    arn: l.arn.clone(),
                    code_size: l.code_size,
                })
                .collect(),
            state: self.state,
            last_update_status: self.last_update_status,
            package_type: s.package_type,
            architectures: s.architectures.clone(),
            ephemeral_storage: s.ephemeral_storage,
            logging_config: logging_with_group(s, &self.name),
            runtime_version_config: s.runtime.as_deref().map(|r| runtime_version(ctx, r)),
            dead_letter_config: s
                .dead_letter_target
                .clone()
                .map(|t| lamb_types::DeadLetterConfig { target_arn: Some(t) }),
            file_system_configs: s.file_system_configs.clone(),
            snap_start: lamb_types::SnapStartResponse::of(s.snap_start.as_ref(), !self.version.is_latest()),
            ..Default::default()
        }
        .with_image(self)
    }
}

/// The image members of a configuration: `CodeSha256` is the manifest's hex
/// digest, `ImageConfigResponse`, and the pull's state and reasons as AWS
/// words them.
trait WithImage {
    fn with_image(self, rec: &FunctionRecord) -> Self;
}

impl WithImage for FunctionConfiguration {
    fn with_image(mut self, rec: &FunctionRecord) -> Self {
        let Some(image) = &rec.spec.image else {
            return self;
        };
        self.code_sha256 = rec.code.digest.hex();
        self.code_size = 0;
        self.image_config_response = (!image.config.is_empty()).then(|| lamb_types::ImageConfigResponse {
            image_config: Some(image.config.clone()),
        });
        let failure = image.failure.as_ref();
        match self.state {
            State::Pending => {
                self.state_reason = Some("The function is being created.".into());
                self.state_reason_code = Some("Creating".into());
            }
            State::Failed => {
                self.state_reason = failure.map(|f| f.reason.clone());
                self.state_reason_code = failure.map(|f| f.code.clone());
            }
            _ => {}
        }
        match self.last_update_status {
            LastUpdateStatus::InProgress => {
                self.last_update_status_reason = Some("The function is being created.".into());
                self.last_update_status_reason_code = Some("Creating".into());
            }
            LastUpdateStatus::Failed => {
                self.last_update_status_reason = failure.map(|f| f.reason.clone());
                self.last_update_status_reason_code = failure.map(|f| f.code.clone());
            }
            LastUpdateStatus::Successful => {}
        }
        self
    }
}

/// The runtime version ARN AWS's shape asks for. lamb runs each runtime
/// from the one tree installed for it, so the version is named after the
/// runtime (the SHA-256 of its name, as long as AWS's ids): the same for
/// every function of that runtime, and changed when the runtime is.
fn runtime_version(ctx: &ArnContext, runtime: &str) -> lamb_types::RuntimeVersionConfig {
    lamb_types::RuntimeVersionConfig {
        runtime_version_arn: format!(
            "arn:{}:lambda:{}::runtime:{}",
            ctx.partition,
            ctx.region,
            CodeDigest::of(runtime.as_bytes()).hex()
        ),
    }
}

fn logging_with_group(s: &FunctionSpec, name: &str) -> lamb_types::LoggingConfig {
    let mut l = s.logging_config.clone();
    if l.log_group.is_none() {
        l.log_group = Some(format!("/aws/lambda/{name}"));
    }
    // JSON's levels default to INFO in the answer, as Lambda's do.
    l.application_log_level = l.application_level().map(str::to_owned);
    l.system_log_level = l.system_level().map(str::to_owned);
    l
}

/// What CreateFunction stores.
#[derive(Debug, Clone)]
pub struct NewFunction {
    pub name: String,
    /// Validated configuration; its layer ARNs are resolved in the transaction.
    pub spec: FunctionSpec,
    pub code: CodeInfo,
    pub publish: bool,
}

/// What UpdateFunctionCode stores.
#[derive(Debug, Clone)]
pub struct CodeUpdate {
    pub code: CodeInfo,
    pub architectures: Option<Vec<Architecture>>,
    pub publish: bool,
    pub revision_id: Option<String>,
}

/// An alias of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasRecord {
    pub function: String,
    pub name: String,
    pub function_version: Version,
    pub description: String,
    /// Additional version and its weight (at most one).
    pub weights: BTreeMap<u64, f64>,
    pub revision_id: String,
}

impl AliasRecord {
    pub fn configuration(&self, ctx: &ArnContext) -> AliasConfiguration {
        AliasConfiguration {
            alias_arn: ctx.qualified_function_arn(&self.function, &lamb_types::Qualifier::Alias(self.name.clone())),
            name: self.name.clone(),
            function_version: self.function_version.to_string(),
            description: self.description.clone(),
            routing_config: (!self.weights.is_empty()).then(|| AliasRoutingConfiguration {
                additional_version_weights: self.weights.iter().map(|(v, w)| (v.to_string(), *w)).collect(),
            }),
            revision_id: self.revision_id.clone(),
        }
    }
}

/// What CreateAlias stores (validated).
#[derive(Debug, Clone)]
pub struct NewAlias {
    pub name: String,
    pub function_version: Version,
    pub description: String,
    pub weights: BTreeMap<u64, f64>,
}

/// What UpdateAlias changes: given members replace stored ones.
#[derive(Debug, Clone, Default)]
pub struct AliasUpdate {
    pub function_version: Option<Version>,
    pub description: Option<String>,
    pub weights: Option<BTreeMap<u64, f64>>,
    pub revision_id: Option<String>,
}

/// One immutable layer version.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerVersionRecord {
    pub name: String,
    pub version: u64,
    pub description: String,
    /// None when the publisher gave no list, which AWS answers without
    /// (an empty list it echoes).
    pub compatible_runtimes: Option<Vec<String>>,
    pub compatible_architectures: Option<Vec<Architecture>>,
    pub license_info: Option<String>,
    pub code: CodeInfo,
    pub created_date: String,
}

impl LayerVersionRecord {
    pub fn arn(&self, ctx: &ArnContext) -> String {
        ctx.layer_version_arn(&self.name, self.version)
    }

    /// PublishLayerVersion's and GetLayerVersion's answer.
    pub fn response(&self, ctx: &ArnContext) -> LayerVersionResponse {
        LayerVersionResponse {
            content: LayerVersionContentOutput {
                location: None,
                code_sha256: self.code.digest.base64(),
                code_size: self.code.code_size,
            },
            layer_arn: ctx.layer_arn(&self.name),
            layer_version_arn: self.arn(ctx),
            description: self.description.clone(),
            created_date: self.created_date.clone(),
            version: self.version,
            compatible_runtimes: self.compatible_runtimes.clone(),
            compatible_architectures: self.compatible_architectures.clone(),
            license_info: self.license_info.clone(),
        }
    }

    /// An item of ListLayerVersions (and ListLayers' latest version).
    pub fn list_item(&self, ctx: &ArnContext) -> LayerVersionsListItem {
        LayerVersionsListItem {
            layer_version_arn: self.arn(ctx),
            version: self.version,
            description: self.description.clone(),
            created_date: self.created_date.clone(),
            compatible_runtimes: self.compatible_runtimes.clone(),
            compatible_architectures: self.compatible_architectures.clone(),
            license_info: self.license_info.clone(),
        }
    }
}

/// What PublishLayerVersion stores (validated).
#[derive(Debug, Clone)]
pub struct NewLayerVersion {
    pub name: String,
    pub description: String,
    /// None when the publisher gave no list, which AWS answers without
    /// (an empty list it echoes).
    pub compatible_runtimes: Option<Vec<String>>,
    pub compatible_architectures: Option<Vec<Architecture>>,
    pub license_info: Option<String>,
    pub code: CodeInfo,
}

/// The async invoke configuration of one qualifier.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInvokeConfigRecord {
    pub function: String,
    /// `$LATEST`, a version number or an alias name.
    pub qualifier: String,
    pub config: PutFunctionEventInvokeConfigRequest,
    /// Epoch seconds.
    pub last_modified: f64,
}

impl EventInvokeConfigRecord {
    /// As AWS answers it: `DestinationConfig` always carries both
    /// destinations, `{}` where none is set (the recorded
    /// test_lambda_eventinvokeconfig_lifecycle).
    pub fn configuration(&self, ctx: &ArnContext) -> FunctionEventInvokeConfig {
        let given = self.config.destination_config.clone().unwrap_or_default();
        FunctionEventInvokeConfig {
            last_modified: self.last_modified,
            function_arn: format!("{}:{}", ctx.function_arn(&self.function), self.qualifier),
            maximum_retry_attempts: self.config.maximum_retry_attempts,
            maximum_event_age_in_seconds: self.config.maximum_event_age_in_seconds,
            destination_config: Some(DestinationConfig {
                on_success: Some(given.on_success.unwrap_or_default()),
                on_failure: Some(given.on_failure.unwrap_or_default()),
            }),
        }
    }
}

/// An async invocation to queue.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub function: String,
    pub qualifier: String,
    pub payload: Vec<u8>,
    /// The request id the 202 answered with.
    pub request_id: String,
    pub enqueued_at_ms: i64,
}

/// A queued async invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub id: String,
    pub function: String,
    pub qualifier: String,
    pub payload: Vec<u8>,
    pub attempts: u32,
    pub enqueued_at_ms: i64,
    pub next_attempt_at_ms: i64,
}

/// Where an event stands in the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventStatus {
    Queued,
    /// Claimed by a worker, under a lease.
    Running,
    /// Finished without success; kept for `lamb events` a while.
    Failed,
}

impl EventStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Failed => "failed",
        }
    }
}

/// An event as `lamb events` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRecord {
    pub event: QueuedEvent,
    pub status: EventStatus,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    pub finished_at_ms: Option<i64>,
}
