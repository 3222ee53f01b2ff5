//! [`FunctionSpec`]: the configuration a user sets on a function, with
//! Lambda's defaults applied once, here. The store keeps it per version and
//! the API builds it from Create/UpdateFunctionConfiguration requests.

use crate::filesystem::FileSystemConfig;
use crate::function::{
    Architecture, CreateFunctionRequest, EphemeralStorage, LoggingConfig, PackageType, SnapStart, TracingMode,
    UpdateFunctionConfigurationRequest,
};
use crate::image::FunctionImage;
use crate::limits::{DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S};
use serde::{Deserialize, Serialize};

/// The user-set configuration of one function version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionSpec {
    pub role: String,
    #[serde(default)]
    pub runtime: Option<String>,
    #[serde(default)]
    pub handler: Option<String>,
    #[serde(default)]
    pub description: String,
    pub timeout: u32,
    pub memory_size: u32,
    #[serde(default)]
    pub environment: crate::function::EnvVars,
    /// `Environment` was given (even empty): AWS then echoes
    /// `Environment: {Variables: {}}`, and leaves it out when it never was.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub environment_set: bool,
    /// Layer version ARNs, in the order they are merged into `/opt`.
    #[serde(default)]
    pub layers: Vec<String>,
    pub architectures: Vec<Architecture>,
    pub ephemeral_storage: EphemeralStorage,
    #[serde(default)]
    pub tracing_mode: TracingMode,
    #[serde(default)]
    pub package_type: PackageType,
    #[serde(default)]
    pub dead_letter_target: Option<String>,
    #[serde(default)]
    pub logging_config: LoggingConfig,
    /// Host directories served by the daemon, mounted read-write.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_system_configs: Vec<FileSystemConfig>,
    /// The image of a `PackageType: Image` function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<FunctionImage>,
    /// `SnapStart` as last given (`ApplyOn: None` when never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snap_start: Option<SnapStart>,
}

impl Default for FunctionSpec {
    fn default() -> Self {
        Self {
            role: String::new(),
            runtime: None,
            handler: None,
            description: String::new(),
            timeout: DEFAULT_TIMEOUT_S,
            memory_size: DEFAULT_MEMORY_MB,
            environment: crate::function::EnvVars::new(),
            environment_set: false,
            layers: Vec::new(),
            architectures: vec![Architecture::default()],
            ephemeral_storage: EphemeralStorage::default(),
            tracing_mode: TracingMode::default(),
            package_type: PackageType::default(),
            dead_letter_target: None,
            logging_config: LoggingConfig::default(),
            file_system_configs: Vec::new(),
            image: None,
            snap_start: None,
        }
    }
}

impl FunctionSpec {
    /// The configuration CreateFunction asks for, defaults filled in.
    pub fn from_create(req: &CreateFunctionRequest) -> Self {
        let d = Self::default();
        Self {
            role: req.role.clone(),
            runtime: req.runtime.clone(),
            handler: req.handler.clone(),
            description: req.description.clone().unwrap_or_default(),
            timeout: req.timeout.unwrap_or(d.timeout),
            memory_size: req.memory_size.unwrap_or(d.memory_size),
            environment: req
                .environment
                .as_ref()
                .map(|e| e.variables.clone())
                .unwrap_or_default(),
            environment_set: req.environment.is_some(),
            layers: req.layers.clone().unwrap_or_default(),
            architectures: req.architectures.clone().unwrap_or(d.architectures),
            ephemeral_storage: req.ephemeral_storage.unwrap_or(d.ephemeral_storage),
            tracing_mode: req.tracing_config.map(|t| t.mode).unwrap_or_default(),
            package_type: req.package_type.unwrap_or_default(),
            dead_letter_target: req.dead_letter_config.as_ref().and_then(|d| d.target_arn.clone()),
            logging_config: req.logging_config.clone().unwrap_or_default(),
            file_system_configs: req.file_system_configs.clone().unwrap_or_default(),
            image: req.code.image_uri.clone().map(|uri| FunctionImage {
                uri,
                config: req.image_config.clone().unwrap_or_default(),
                ..Default::default()
            }),
            snap_start: req.snap_start.clone(),
        }
    }

    /// Applies UpdateFunctionConfiguration: each member given replaces the
    /// stored one; `Layers` replaces the whole list.
    pub fn apply_update(&mut self, req: &UpdateFunctionConfigurationRequest) {
        fn set<T: Clone>(slot: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *slot = v.clone();
            }
        }
        set(&mut self.role, &req.role);
        if req.runtime.is_some() {
            self.runtime.clone_from(&req.runtime);
        }
        if req.handler.is_some() {
            self.handler.clone_from(&req.handler);
        }
        set(&mut self.description, &req.description);
        set(&mut self.timeout, &req.timeout);
        set(&mut self.memory_size, &req.memory_size);
        if let Some(env) = &req.environment {
            self.environment.clone_from(&env.variables);
            self.environment_set = true;
        }
        set(&mut self.layers, &req.layers);
        set(&mut self.ephemeral_storage, &req.ephemeral_storage);
        if req.snap_start.is_some() {
            self.snap_start.clone_from(&req.snap_start);
        }
        if let Some(t) = req.tracing_config {
            self.tracing_mode = t.mode;
        }
        if let Some(d) = &req.dead_letter_config {
            self.dead_letter_target.clone_from(&d.target_arn);
        }
        set(&mut self.logging_config, &req.logging_config);
        set(&mut self.file_system_configs, &req.file_system_configs);
        if let (Some(image), Some(config)) = (&mut self.image, &req.image_config) {
            image.config = config.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::function::Environment;

    #[test]
    fn create_applies_defaults() {
        let req = CreateFunctionRequest {
            function_name: "f".into(),
            role: "r".into(),
            ..Default::default()
        };
        let s = FunctionSpec::from_create(&req);
        assert_eq!(s.timeout, 3);
        assert_eq!(s.memory_size, 128);
        assert_eq!(s.architectures, vec![Architecture::X86_64]);
        assert_eq!(s.ephemeral_storage.size, 512);
        assert_eq!(s.package_type, PackageType::Zip);
    }

    #[test]
    fn update_replaces_only_given_members() {
        let mut s = FunctionSpec {
            handler: Some("a".into()),
            layers: vec!["l1".into(), "l2".into()],
            ..Default::default()
        };
        s.apply_update(&UpdateFunctionConfigurationRequest {
            timeout: Some(30),
            layers: Some(vec!["l3".into()]),
            environment: Some(Environment {
                variables: [("K".to_string(), "V".to_string())].into(),
            }),
            ..Default::default()
        });
        assert_eq!(s.timeout, 30);
        assert_eq!(s.handler.as_deref(), Some("a"));
        assert_eq!(s.layers, vec!["l3".to_string()]);
        assert_eq!(s.environment["K"], "V");
    }

    #[test]
    fn stored_json_round_trips() {
        let s = FunctionSpec::default();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<FunctionSpec>(&json).unwrap(), s);
    }
}
