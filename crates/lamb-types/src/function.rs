//! Function wire shapes: the requests of CreateFunction, UpdateFunctionCode,
//! UpdateFunctionConfiguration and PublishVersion, and the
//! `FunctionConfiguration` every one of them answers with (spec 3.4, 3.7).

use crate::blob::Blob;
use crate::filesystem::FileSystemConfig;
use crate::image::{ImageConfig, ImageConfigResponse};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `Code` of CreateFunction: an inline bundle, an S3 object or an image.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionCode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_file: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_object_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PackageType {
    #[default]
    Zip,
    Image,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Architecture {
    #[default]
    #[serde(rename = "x86_64")]
    X86_64,
    #[serde(rename = "arm64")]
    Arm64,
}

/// A function's environment variables, in the order the request gave them:
/// AWS measures the 4 KB limit on them in that order and quotes the string
/// (the recorded test_large_environment_fails_multiple_keys).
pub type EnvVars = indexmap::IndexMap<String, String>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    #[serde(default)]
    pub variables: EnvVars,
}

/// `Environment` as a configuration shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EnvironmentResponse {
    #[serde(default)]
    pub variables: EnvVars,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    pub size: u32,
}

impl Default for EphemeralStorage {
    fn default() -> Self {
        Self {
            size: crate::limits::DEFAULT_EPHEMERAL_MB,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TracingMode {
    #[default]
    PassThrough,
    Active,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TracingConfig {
    #[serde(default)]
    pub mode: TracingMode,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeadLetterConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_arn: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogFormat {
    #[default]
    Text,
    #[serde(rename = "JSON")]
    Json,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LoggingConfig {
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_log_level: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_group: Option<String>,
}

/// `ApplicationLogLevel`'s values, most detail first.
pub const APPLICATION_LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
/// `SystemLogLevel`'s values, most detail first.
pub const SYSTEM_LOG_LEVELS: [&str; 3] = ["DEBUG", "INFO", "WARN"];

impl LoggingConfig {
    /// The application log level in force: in JSON format the one set, or
    /// INFO; none in Text format (the runtime filters nothing).
    pub fn application_level(&self) -> Option<&str> {
        self.level_in_force(self.application_log_level.as_deref())
    }

    /// The system log level in force, as [`Self::application_level`].
    pub fn system_level(&self) -> Option<&str> {
        self.level_in_force(self.system_log_level.as_deref())
    }

    fn level_in_force<'a>(&self, set: Option<&'a str>) -> Option<&'a str> {
        (self.log_format == LogFormat::Json).then(|| set.unwrap_or("INFO"))
    }
}

/// CreateFunction's body. Members lamb does not support (VpcConfig, ...)
/// are ignored, as botocore ignores unknown response keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionRequest {
    pub function_name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub code: FunctionCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_size: Option<u32>,
    #[serde(default)]
    pub publish: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_type: Option<PackageType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<Architecture>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing_config: Option<TracingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging_config: Option<LoggingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_configs: Option<Vec<FileSystemConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config: Option<ImageConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snap_start: Option<SnapStart>,
}

/// UpdateFunctionCode's body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionCodeRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_file: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_object_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architectures: Option<Vec<Architecture>>,
    #[serde(default)]
    pub publish: bool,
    #[serde(default)]
    pub dry_run: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_id: Option<String>,
}

/// UpdateFunctionConfiguration's body: every member optional; given ones
/// replace the stored value (`Layers` replaces the whole list).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionConfigurationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing_config: Option<TracingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logging_config: Option<LoggingConfig>,
    /// Replaces the whole list; an empty list unmounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_system_configs: Option<Vec<FileSystemConfig>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config: Option<ImageConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snap_start: Option<SnapStart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_id: Option<String>,
}

/// PublishVersion's body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishVersionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_id: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    Pending,
    #[default]
    Active,
    Inactive,
    Failed,
    Deactivating,
    Deactivated,
    ActiveNonInvocable,
    Deleting,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LastUpdateStatus {
    #[default]
    Successful,
    Failed,
    InProgress,
}

/// A layer as a function configuration lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerRef {
    pub arn: String,
    pub code_size: u64,
}

/// `RuntimeVersionConfig`: the runtime version a function runs on, which
/// AWS answers on every configuration of a function with a runtime.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeVersionConfig {
    pub runtime_version_arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapStartResponse {
    pub apply_on: String,
    pub optimization_status: String,
}

impl SnapStartResponse {
    /// A version's `SnapStart`: `ApplyOn` as set, and `OptimizationStatus`
    /// `On` only on a published version of a function with
    /// `PublishedVersions` (`$LATEST` is never snapshotted).
    pub fn of(snap: Option<&SnapStart>, published: bool) -> SnapStartResponse {
        let Some(snap) = snap else {
            return SnapStartResponse::default();
        };
        let on = published && snap.on_published();
        SnapStartResponse {
            apply_on: snap.apply_on.clone(),
            optimization_status: if on { "On" } else { "Off" }.into(),
        }
    }
}

impl Default for SnapStartResponse {
    fn default() -> Self {
        Self {
            apply_on: "None".into(),
            optimization_status: "Off".into(),
        }
    }
}

/// `SnapStart` of CreateFunction and UpdateFunctionConfiguration: the
/// model's `ApplyOn` enum, `PublishedVersions` or `None` (kept as given and
/// checked by `validate::validate_snap_start`, so a wrong value is the
/// model's ValidationException rather than a parse error).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SnapStart {
    #[serde(default)]
    pub apply_on: String,
}

impl SnapStart {
    pub const PUBLISHED_VERSIONS: &'static str = "PublishedVersions";
    pub const NONE: &'static str = "None";

    /// Published versions are snapshotted.
    pub fn on_published(&self) -> bool {
        self.apply_on == Self::PUBLISHED_VERSIONS
    }
}

/// The configuration of one function version, as every function operation
/// answers (spec 3.7).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionConfiguration {
    pub function_name: String,
    pub function_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    pub code_size: u64,
    pub code_sha256: String,
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    pub last_modified: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentResponse>,
    pub tracing_config: TracingConfig,
    pub revision_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerRef>,
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason_code: Option<String>,
    pub last_update_status: LastUpdateStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_status_reason_code: Option<String>,
    pub package_type: PackageType,
    pub architectures: Vec<Architecture>,
    pub ephemeral_storage: EphemeralStorage,
    pub snap_start: SnapStartResponse,
    pub logging_config: LoggingConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_version_config: Option<RuntimeVersionConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_config: Option<DeadLetterConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_system_configs: Vec<FileSystemConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config_response: Option<ImageConfigResponse>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_reads_botocore_json() {
        let json = r#"{"FunctionName":"f","Role":"arn:aws:iam::123456789012:role/r",
            "Code":{"ZipFile":"UEsDBGFiYw=="},"Runtime":"provided.al2023","Handler":"h",
            "Architectures":["arm64"],"VpcConfig":{"SubnetIds":[]},
            "Environment":{"Variables":{"K":"V"}},"LoggingConfig":{"LogFormat":"JSON"}}"#;
        let req: CreateFunctionRequest = serde_json::from_str(json).unwrap();
        assert_eq!(req.code.zip_file.unwrap().0, b"PK\x03\x04abc");
        assert_eq!(req.architectures.unwrap(), vec![Architecture::Arm64]);
        assert_eq!(req.environment.unwrap().variables["K"], "V");
        assert_eq!(req.logging_config.unwrap().log_format, LogFormat::Json);
        assert!(!req.publish);
    }

    #[test]
    fn snap_start_is_on_only_for_published_versions() {
        let snap = SnapStart {
            apply_on: SnapStart::PUBLISHED_VERSIONS.into(),
        };
        let on = SnapStartResponse::of(Some(&snap), true);
        assert_eq!(
            (on.apply_on.as_str(), on.optimization_status.as_str()),
            ("PublishedVersions", "On")
        );
        let latest = SnapStartResponse::of(Some(&snap), false);
        assert_eq!(latest.optimization_status, "Off");
        let none = SnapStart {
            apply_on: "None".into(),
        };
        assert_eq!(SnapStartResponse::of(Some(&none), true).optimization_status, "Off");
        assert_eq!(SnapStartResponse::of(None, true), SnapStartResponse::default());
    }

    #[test]
    fn configuration_writes_pascal_case() {
        let c = FunctionConfiguration {
            function_name: "f".into(),
            architectures: vec![Architecture::X86_64],
            ..Default::default()
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["FunctionName"], "f");
        assert_eq!(v["Architectures"][0], "x86_64");
        assert_eq!(v["State"], "Active");
        assert_eq!(v["LastUpdateStatus"], "Successful");
        assert_eq!(v["TracingConfig"]["Mode"], "PassThrough");
        assert_eq!(v["EphemeralStorage"]["Size"], 512);
        assert_eq!(v["SnapStart"]["ApplyOn"], "None");
        assert_eq!(v["SnapStart"]["OptimizationStatus"], "Off");
        assert_eq!(v["PackageType"], "Zip");
        assert!(v.get("Layers").is_none());
        let back: FunctionConfiguration = serde_json::from_value(v).unwrap();
        assert_eq!(back, c);
    }
}
