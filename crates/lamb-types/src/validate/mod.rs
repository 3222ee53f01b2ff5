//! Validation: every rule the API answers with `ValidationException` (a
//! constraint of Lambda's API model: pattern, length, range) or
//! `InvalidParameterValueException` (Lambda's own checks), as AWS does; for
//! sizes, `RequestEntityTooLargeException` / `CodeStorageExceededException`.
//! Rules that depend on the daemon's settings hang off [`Rules`]; the others
//! are free functions.

use crate::alias::AliasRoutingConfiguration;
use crate::arn::{ArnContext, LayerVersionArn};
use crate::error::LambdaError;
use crate::function::{
    Architecture, FunctionCode, LogFormat, LoggingConfig, PackageType, SnapStart, APPLICATION_LOG_LEVELS,
    SYSTEM_LOG_LEVELS,
};
use crate::invoke_config::PutFunctionEventInvokeConfigRequest;
use crate::limits::{Limits, MAX_EPHEMERAL_MB, MIN_MEMORY_MB};
use crate::qualifier::{Version, LATEST};
use crate::runtime::{Change, Deprecation};
use crate::spec::FunctionSpec;
use std::collections::{BTreeMap, HashMap};

/// Longest plain function name.
pub const MAX_FUNCTION_NAME_LEN: usize = 64;
/// Longest alias name.
pub const MAX_ALIAS_NAME_LEN: usize = 128;
/// Longest layer name.
pub const MAX_LAYER_NAME_LEN: usize = 140;
/// Longest handler.
pub const MAX_HANDLER_LEN: usize = 128;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 256;
/// Longest `LicenseInfo` of a layer version.
pub const MAX_LICENSE_INFO_LEN: usize = 512;

/// Environment variables Lambda sets itself and refuses from users (spec 2.1).
pub const RESERVED_ENV_VARS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    "TZ",
];

/// `[a-zA-Z0-9-_]`: the characters of function, alias and layer names.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// The API model's largest `MemorySize`.
const MODEL_MAX_MEMORY_MB: u32 = 10_240;

/// Lambda's wording for one failed constraint of its API model, which AWS
/// answers `ValidationException` (with no `Type`), not Lambda's own
/// `InvalidParameterValueException`.
/// Several validation errors of one request as AWS words them together:
/// `N validation errors detected: A; B`; none when there are none.
pub fn together(errors: Vec<LambdaError>) -> Result<(), LambdaError> {
    const ONE: &str = "1 validation error detected: ";
    match errors.len() {
        0 => Ok(()),
        1 => Err(errors.into_iter().next().unwrap_or_else(|| unreachable!("one error"))),
        n => {
            let parts: Vec<&str> = errors
                .iter()
                .map(|e| e.message.strip_prefix(ONE).unwrap_or(&e.message))
                .collect();
            Err(LambdaError::validation(format!(
                "{n} validation errors detected: {}",
                parts.join("; ")
            )))
        }
    }
}

pub(crate) fn constraint(field: &str, value: impl std::fmt::Display, rule: &str) -> LambdaError {
    LambdaError::validation(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy \
         constraint: Member must {rule}"
    ))
}

fn check_name(field: &str, s: &str, max: usize) -> Result<(), LambdaError> {
    if s.is_empty() || s.len() > max {
        return Err(constraint(field, s, &format!("have length between 1 and {max}")));
    }
    if !s.chars().all(is_name_char) {
        return Err(constraint(
            field,
            s,
            "satisfy regular expression pattern: [a-zA-Z0-9-_]+",
        ));
    }
    Ok(())
}

/// A plain function name: `[a-zA-Z0-9-_]+`, 1–64 characters. The length is
/// Lambda's own check, not the model's (which allows longer ARNs), so AWS
/// answers it `InvalidParameterValueException`, the pattern
/// `ValidationException` (test_function_arns of the recorded answers).
pub fn validate_function_name(name: &str) -> Result<(), LambdaError> {
    if name.len() > MAX_FUNCTION_NAME_LEN {
        return Err(LambdaError::invalid_parameter(format!(
            "1 validation error detected: Value '{name}' at 'functionName' failed to satisfy \
             constraint: Member must have length less than or equal to {MAX_FUNCTION_NAME_LEN}"
        )));
    }
    check_name("functionName", name, MAX_FUNCTION_NAME_LEN)
}

/// An alias name: `(?!^[0-9]+$)([a-zA-Z0-9-_]+)`, 1–128 characters.
pub fn validate_alias_name(name: &str) -> Result<(), LambdaError> {
    check_name("name", name, MAX_ALIAS_NAME_LEN)?;
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(constraint(
            "name",
            name,
            "satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
        ));
    }
    Ok(())
}

/// A plain layer name: `[a-zA-Z0-9-_]+`, 1–140 characters.
pub fn validate_layer_name(name: &str) -> Result<(), LambdaError> {
    check_name("layerName", name, MAX_LAYER_NAME_LEN)
}

/// A handler: `[^\s]+`, at most 128 characters.
pub fn validate_handler(handler: &str) -> Result<(), LambdaError> {
    if handler.is_empty() || handler.len() > MAX_HANDLER_LEN {
        return Err(constraint(
            "handler",
            handler,
            &format!("have length less than or equal to {MAX_HANDLER_LEN}"),
        ));
    }
    if handler.chars().any(char::is_whitespace) {
        return Err(constraint(
            "handler",
            handler,
            "satisfy regular expression pattern: [^\\s]+",
        ));
    }
    Ok(())
}

/// A description of at most 256 characters.
pub fn validate_description(description: &str) -> Result<(), LambdaError> {
    if description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(constraint(
            "description",
            description,
            &format!("have length less than or equal to {MAX_DESCRIPTION_LEN}"),
        ));
    }
    Ok(())
}

/// An IAM role ARN: `arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+`.
/// lamb does not assume the role, but tools send one and expect it checked.
pub fn validate_role(role: &str) -> Result<(), LambdaError> {
    let ok = (|| {
        let rest = role.strip_prefix("arn:")?;
        let (partition, rest) = rest.split_once(':')?;
        let rest = rest.strip_prefix("iam::")?;
        let (account, path) = rest.split_once(':')?;
        let path = path.strip_prefix("role")?;
        let path = path.strip_prefix('/').unwrap_or(path);
        let partition_ok = partition.is_empty()
            || (partition.starts_with("aws") && partition.chars().all(|c| c.is_ascii_alphabetic() || c == '-'));
        let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
        let path_ok = !path.is_empty()
            && path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_/".contains(c));
        Some(partition_ok && account_ok && path_ok)
    })();
    if ok != Some(true) {
        return Err(constraint(
            "role",
            role,
            "satisfy regular expression pattern: \
             arn:(aws[a-zA-Z-]*)?:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        ));
    }
    Ok(())
}

/// `EphemeralStorage.Size`: 512–10,240 MB.
pub fn validate_ephemeral_storage(mb: u32) -> Result<(), LambdaError> {
    let min = crate::limits::DEFAULT_EPHEMERAL_MB;
    if !(min..=MAX_EPHEMERAL_MB).contains(&mb) {
        return Err(constraint(
            "ephemeralStorage.size",
            mb,
            &format!("have value between {min} and {MAX_EPHEMERAL_MB}"),
        ));
    }
    Ok(())
}

/// `LoggingConfig`: levels from Lambda's sets, and only with the JSON
/// format (in Text, Lambda filters nothing).
pub fn validate_logging_config(config: &LoggingConfig) -> Result<(), LambdaError> {
    let levels = [
        (
            "loggingConfig.applicationLogLevel",
            &config.application_log_level,
            &APPLICATION_LOG_LEVELS[..],
        ),
        (
            "loggingConfig.systemLogLevel",
            &config.system_log_level,
            &SYSTEM_LOG_LEVELS[..],
        ),
    ];
    for (field, level, allowed) in levels {
        let Some(level) = level else { continue };
        if !allowed.contains(&level.as_str()) {
            let rule = format!("satisfy enum value set: [{}]", allowed.join(", "));
            return Err(constraint(field, level, &rule));
        }
        if config.log_format != LogFormat::Json {
            return Err(LambdaError::invalid_parameter(
                "To set ApplicationLogLevel or SystemLogLevel, LogFormat must be JSON.",
            ));
        }
    }
    Ok(())
}

/// `SnapStart`: `ApplyOn` from the model's enum, and with
/// `PublishedVersions` a runtime Lambda offers SnapStart for (Java 11 and
/// later, Python 3.12 and later, .NET 8), never an image.
pub fn validate_snap_start(spec: &FunctionSpec) -> Result<(), LambdaError> {
    let Some(snap) = &spec.snap_start else {
        return Ok(());
    };
    let allowed = [SnapStart::PUBLISHED_VERSIONS, SnapStart::NONE];
    if !allowed.contains(&snap.apply_on.as_str()) {
        let rule = format!("satisfy enum value set: [{}]", allowed.join(", "));
        return Err(constraint("snapStart.applyOn", &snap.apply_on, &rule));
    }
    if !snap.on_published() {
        return Ok(());
    }
    let runtime = spec.runtime.as_deref().unwrap_or_default();
    if spec.image.is_some() || !snapstart_runtime(runtime) {
        let what = if spec.image.is_some() { "Image" } else { runtime };
        return Err(LambdaError::invalid_parameter(format!(
            "{what} is not supported for SnapStart enabled functions."
        )));
    }
    Ok(())
}

/// Lambda's SnapStart runtimes.
fn snapstart_runtime(runtime: &str) -> bool {
    let minor = |prefix: &str, min: u32| {
        runtime
            .strip_prefix(prefix)
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| v >= min)
    };
    minor("python3.", 12) || minor("java", 11) || runtime == "dotnet8"
}

/// `Architectures`: exactly one.
pub fn validate_architectures(archs: &[Architecture]) -> Result<(), LambdaError> {
    if archs.len() != 1 {
        // As AWS writes the list: `[x86_64, arm64]`.
        let names: Vec<String> = archs
            .iter()
            .map(|a| {
                serde_json::to_value(a)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        let rule = if archs.is_empty() {
            "have length greater than or equal to 1"
        } else {
            "have length less than or equal to 1"
        };
        return Err(constraint("architectures", format!("[{}]", names.join(", ")), rule));
    }
    Ok(())
}

/// The version an alias points at: `$LATEST` or a number.
pub fn validate_alias_version(version: &str) -> Result<Version, LambdaError> {
    let v = Version::parse(version).map_err(|_| {
        constraint(
            "functionVersion",
            version,
            "satisfy regular expression pattern: (\\$LATEST|[0-9]+)",
        )
    })?;
    Ok(v)
}

/// `RoutingConfig` of an alias whose primary version is `primary`: at most
/// one additional version, a published number other than the primary, with a
/// weight in 0.0–1.0; weights need a published primary version.
pub fn validate_routing_config(
    primary: &str,
    routing: &AliasRoutingConfiguration,
) -> Result<BTreeMap<u64, f64>, LambdaError> {
    let weights = &routing.additional_version_weights;
    if weights.is_empty() {
        return Ok(BTreeMap::new());
    }
    // The model's constraints on the map first, in AWS's words (the recorded
    // test_notfound_and_invalid_routingconfigs), then Lambda's own checks.
    if weights
        .keys()
        .any(|k| k.is_empty() || k.len() > 1024 || !k.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(weights_constraint(
            weights,
            "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, \
             Member must have length greater than or equal to 1, \
             Member must satisfy regular expression pattern: [0-9]+]",
        ));
    }
    if weights.values().any(|w| !(0.0..=1.0).contains(w)) {
        return Err(weights_constraint(
            weights,
            "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, \
             Member must have value greater than or equal to 0.0, Member must not be null]",
        ));
    }
    if weights.len() > 1 {
        return Err(LambdaError::invalid_parameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1",
        ));
    }
    if primary == LATEST {
        // AWS answers this one without `Type` (the recorded
        // test_notfound_and_invalid_routingconfigs).
        return Err(LambdaError::invalid_parameter(
            "$LATEST is not supported for an alias pointing to more than 1 version",
        )
        .without_type());
    }
    let mut out = BTreeMap::new();
    for (version, weight) in weights {
        let Ok(Version::Published(n)) = Version::parse(version) else {
            return Err(weights_constraint(
                weights,
                "Map keys must satisfy constraint: [Member must be a version]",
            ));
        };
        if version == primary {
            return Err(LambdaError::invalid_parameter(format!(
                "Invalid function version {primary}. Function version {primary} is already included in \
                 routing configuration."
            )));
        }
        out.insert(n, *weight);
    }
    Ok(out)
}

/// A constraint on the whole weights map, which AWS prints as Java does:
/// `{2=0.5}`.
fn weights_constraint(weights: &BTreeMap<String, f64>, rule: &str) -> LambdaError {
    let java = |w: f64| {
        if w.fract() == 0.0 {
            format!("{w:.1}")
        } else {
            w.to_string()
        }
    };
    let map: Vec<String> = weights.iter().map(|(k, w)| format!("{k}={}", java(*w))).collect();
    LambdaError::validation(format!(
        "1 validation error detected: Value '{{{}}}' at 'routingConfig.additionalVersionWeights' \
         failed to satisfy constraint: {rule}",
        map.join(", ")
    ))
}

/// Event invoke configuration: retries 0–2, event age 60–21,600 s.
pub fn validate_event_invoke_config(req: &PutFunctionEventInvokeConfigRequest) -> Result<(), LambdaError> {
    let destinations = req
        .destination_config
        .as_ref()
        .is_some_and(|d| d.on_success.is_some() || d.on_failure.is_some());
    if req.maximum_retry_attempts.is_none() && req.maximum_event_age_in_seconds.is_none() && !destinations {
        return Err(LambdaError::invalid_parameter(
            "You must specify at least one of error handling or destination setting.",
        ));
    }
    if let Some(n) = req.maximum_retry_attempts {
        if n > 2 {
            return Err(constraint(
                "maximumRetryAttempts",
                n,
                "have value less than or equal to 2",
            ));
        }
    }
    if let Some(age) = req.maximum_event_age_in_seconds {
        if !(60..=21_600).contains(&age) {
            return Err(constraint(
                "maximumEventAgeInSeconds",
                age,
                "have value between 60 and 21600",
            ));
        }
    }
    Ok(())
}

/// PublishLayerVersion's members: at most 15 compatible runtimes, 2
/// architectures, a 256-character description and 512-character license.
pub fn validate_publish_layer(req: &crate::layer::PublishLayerVersionRequest) -> Result<(), LambdaError> {
    let runtimes = req.compatible_runtimes.as_deref().unwrap_or_default();
    if runtimes.len() > 15 {
        return Err(constraint(
            "compatibleRuntimes",
            runtimes.join(","),
            "have length less than or equal to 15",
        ));
    }
    let archs = req.compatible_architectures.as_deref().unwrap_or_default();
    if archs.len() > 2 {
        return Err(constraint(
            "compatibleArchitectures",
            format!("{archs:?}"),
            "have length less than or equal to 2",
        ));
    }
    validate_description(req.description.as_deref().unwrap_or_default())?;
    let license = req.license_info.as_deref().unwrap_or_default();
    if license.chars().count() > MAX_LICENSE_INFO_LEN {
        return Err(constraint(
            "licenseInfo",
            license,
            &format!("have length less than or equal to {MAX_LICENSE_INFO_LEN}"),
        ));
    }
    Ok(())
}

/// The bundle bytes of a Zip function's `Code`, inline as `ZipFile` (the
/// daemon reads an S3 object into `ZipFile` before it gets here).
pub fn zip_file(code: &FunctionCode) -> Result<&[u8], LambdaError> {
    if code.image_uri.is_some() {
        return Err(LambdaError::invalid_parameter(
            "Please don't provide ImageUri when the intended function PackageType is Zip.",
        ));
    }
    match (&code.zip_file, &code.s3_bucket) {
        (Some(zip), None) => Ok(&zip.0),
        (None, Some(_)) => Err(LambdaError::invalid_parameter(
            "Please provide both S3Bucket and S3Key for the function code.",
        )),
        _ => Err(LambdaError::invalid_parameter(
            "Please provide a source for function code.",
        )),
    }
}

/// The `ImageUri` of an Image function's `Code`, parsed; neither a
/// `ZipFile` nor an S3 object may come with it.
pub fn image_uri(code: &FunctionCode) -> Result<crate::image::ImageRef, LambdaError> {
    if code.zip_file.is_some() || code.s3_bucket.is_some() {
        return Err(LambdaError::invalid_parameter(
            "Please don't provide ZipFile or S3 code when the intended function PackageType is Image.",
        ));
    }
    let uri = code.image_uri.as_deref().ok_or_else(|| {
        LambdaError::invalid_parameter("Please provide ImageUri when the intended function PackageType is Image.")
    })?;
    crate::image::ImageRef::parse(uri)
}

/// The rules that depend on the daemon: its limits, its ARN context and the
/// runtimes it has installed.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub limits: &'a Limits,
    pub ctx: &'a ArnContext,
    pub runtimes: &'a [String],
    /// Whether AWS's runtime deprecation dates refuse creates and updates.
    pub deprecation: Deprecation,
}

impl Rules<'_> {
    /// Every rule of a function configuration; `layer_exists` answers whether
    /// a layer version of this box exists.
    pub fn function_spec(
        &self,
        spec: &FunctionSpec,
        layer_exists: &mut dyn FnMut(&LayerVersionArn) -> bool,
    ) -> Result<(), LambdaError> {
        validate_role(&spec.role)?;
        if spec.package_type == PackageType::Image {
            return self.image_spec(spec);
        }
        let runtime = spec.runtime.as_deref().ok_or_else(|| {
            LambdaError::invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
            )
        })?;
        let handler = spec.handler.as_deref().ok_or_else(|| {
            LambdaError::invalid_parameter(
                "Runtime and Handler are mandatory parameters for functions created with deployment packages.",
            )
        })?;
        self.runtime(runtime)?;
        validate_handler(handler)?;
        validate_description(&spec.description)?;
        self.timeout(spec.timeout)?;
        self.memory_size(spec.memory_size)?;
        self.environment(&spec.environment)?;
        self.layers(&spec.layers, layer_exists)?;
        validate_architectures(&spec.architectures)?;
        validate_ephemeral_storage(spec.ephemeral_storage.size)?;
        validate_logging_config(&spec.logging_config)?;
        crate::filesystem::validate_file_system_configs(self.ctx, &spec.file_system_configs)?;
        validate_snap_start(spec)?;
        Ok(())
    }

    /// The rules of an Image function: no runtime, handler or layers (the
    /// image has them), an image URI, and the rest as for Zip.
    fn image_spec(&self, spec: &FunctionSpec) -> Result<(), LambdaError> {
        if spec.runtime.is_some() || spec.handler.is_some() || !spec.layers.is_empty() {
            return Err(LambdaError::invalid_parameter(
                "Please don't provide Handler or Runtime or Layer when the intended function PackageType is Image.",
            ));
        }
        let image = spec.image.as_ref().ok_or_else(|| {
            LambdaError::invalid_parameter("Please provide ImageUri when the intended function PackageType is Image.")
        })?;
        crate::image::ImageRef::parse(&image.uri)?;
        crate::image::validate_image_config(&image.config)?;
        validate_description(&spec.description)?;
        self.timeout(spec.timeout)?;
        self.memory_size(spec.memory_size)?;
        self.environment(&spec.environment)?;
        validate_architectures(&spec.architectures)?;
        validate_ephemeral_storage(spec.ephemeral_storage.size)?;
        validate_logging_config(&spec.logging_config)?;
        crate::filesystem::validate_file_system_configs(self.ctx, &spec.file_system_configs)?;
        validate_snap_start(spec)?;
        Ok(())
    }

    /// `MemorySize`: any whole number of MB from 128 up to the daemon's
    /// maximum, as Lambda has taken since December 2020.
    pub fn memory_size(&self, mb: u32) -> Result<(), LambdaError> {
        let max = self.limits.max_memory_mb;
        if mb < MIN_MEMORY_MB {
            return Err(constraint(
                "memorySize",
                mb,
                &format!("have value greater than or equal to {MIN_MEMORY_MB}"),
            ));
        }
        if mb > max {
            let e = constraint("memorySize", mb, &format!("have value less than or equal to {max}"));
            // Past the model's 10,240 MB the model refuses; below it, this
            // box's own limit does, as Lambda's own checks are answered.
            return Err(if mb > MODEL_MAX_MEMORY_MB {
                e
            } else {
                LambdaError::invalid_parameter(e.message)
            });
        }
        Ok(())
    }

    /// `Timeout`: 1 s up to the daemon's maximum (900 by default).
    pub fn timeout(&self, seconds: u32) -> Result<(), LambdaError> {
        let max = self.limits.max_timeout_s;
        if !(1..=max).contains(&seconds) {
            return Err(constraint(
                "timeout",
                seconds,
                &format!("have value between 1 and {max}"),
            ));
        }
        Ok(())
    }

    /// `Runtime`: one the daemon has a root filesystem for. A name outside
    /// Lambda's enum gets AWS's enum error; one of Lambda's that this box
    /// has no tree for (e.g. `dotnet8`, or `python3.12`, which no Debian
    /// suite ships) is refused as not installed.
    pub fn runtime(&self, runtime: &str) -> Result<(), LambdaError> {
        if self.runtimes.iter().any(|r| r == runtime) {
            return Ok(());
        }
        if crate::runtime::lookup(runtime).is_none() {
            let names: Vec<&str> = crate::runtime::enum_names().collect();
            return Err(LambdaError::invalid_parameter(format!(
                "Value {runtime} at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: \
                 [{}] or be a valid ARN",
                names.join(", ")
            )));
        }
        Err(LambdaError::invalid_parameter(format!(
            "The runtime parameter of {runtime} is not available on this lamb box: its root filesystem is not \
             installed. Installed runtimes: [{}]",
            self.runtimes.join(", ")
        )))
    }

    /// A layer's `CompatibleRuntimes`: Lambda's identifiers (a layer may
    /// name a runtime this box does not have) or installed ones.
    pub fn compatible_runtimes(&self, runtimes: &[String]) -> Result<(), LambdaError> {
        for r in runtimes {
            if crate::runtime::enum_names().all(|n| n != r) && !self.runtimes.contains(r) {
                let names: Vec<&str> = crate::runtime::enum_names().collect();
                return Err(constraint(
                    "compatibleRuntimes",
                    format!("[{}]", runtimes.join(", ")),
                    &format!("satisfy enum value set: [{}]", names.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// AWS's deprecation refusal for `change` with `runtime`, unless the
    /// daemon allows deprecated runtimes.
    pub fn runtime_change(&self, runtime: &str, change: Change) -> Result<(), LambdaError> {
        crate::runtime::check_deprecation(runtime, change, self.deprecation)
    }

    /// Environment variables: names by `[a-zA-Z]([a-zA-Z0-9_])+`, none of
    /// Lambda's reserved ones, and all names and values together at most
    /// 4 KB (counted as the bytes of every name and value).
    pub fn environment(&self, vars: &crate::function::EnvVars) -> Result<(), LambdaError> {
        for name in vars.keys() {
            let mut chars = name.chars();
            let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
            let rest: Vec<char> = chars.collect();
            let rest_ok = !rest.is_empty() && rest.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_');
            if !(first_ok && rest_ok) {
                return Err(constraint(
                    "environment.variables",
                    name,
                    "satisfy regular expression pattern: [a-zA-Z]([a-zA-Z0-9_])+",
                ));
            }
        }
        let reserved: Vec<&str> = vars
            .keys()
            .map(String::as_str)
            .filter(|k| RESERVED_ENV_VARS.contains(k))
            .collect();
        if !reserved.is_empty() {
            return Err(LambdaError::invalid_parameter(format!(
                "Lambda was unable to configure your environment variables because the \
                 environment variables you have provided contains reserved keys that are \
                 currently not supported for modification. Reserved keys used in this request: {}",
                reserved.join(", ")
            )));
        }
        // AWS measures the variables as one JSON object (the recorded
        // test_large_environment_variables_fails).
        let measured = serde_json::to_string(vars).unwrap_or_default();
        if measured.len() > self.limits.max_env_bytes {
            return Err(LambdaError::invalid_parameter(format!(
                "Lambda was unable to configure your environment variables because the \
                 environment variables you have provided exceeded the 4KB limit. \
                 String measured: {measured}"
            )));
        }
        Ok(())
    }

    /// `Layers`: at most 5 layer version ARNs of this box, each existing, and
    /// no layer twice.
    pub fn layers(
        &self,
        arns: &[String],
        exists: &mut dyn FnMut(&LayerVersionArn) -> bool,
    ) -> Result<Vec<LayerVersionArn>, LambdaError> {
        if arns.len() > self.limits.max_layers {
            return Err(LambdaError::invalid_parameter(format!(
                "Cannot reference more than {} layers.",
                self.limits.max_layers
            )));
        }
        let parsed = arns
            .iter()
            .map(|a| LayerVersionArn::parse(a))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| bad_layers(arns))?;
        let mut seen: HashMap<String, &str> = HashMap::new();
        let mut out = Vec::with_capacity(arns.len());
        for (arn, parsed) in arns.iter().zip(parsed) {
            if let Some(other) = seen.insert(parsed.name.clone(), arn) {
                return Err(LambdaError::invalid_parameter(format!(
                    "Two different versions of the same layer are not allowed to be \
                     referenced in the same function. {other} and {arn} are versions of the same layer."
                )));
            }
            if !parsed.is_local(self.ctx) || !exists(&parsed) {
                return Err(LambdaError::invalid_parameter(format!(
                    "Layer version {arn} does not exist."
                )));
            }
            out.push(parsed);
        }
        Ok(out)
    }

    /// An uploaded bundle's size: at most 50 MB zipped.
    pub fn zipped_size(&self, bytes: u64) -> Result<(), LambdaError> {
        let max = self.limits.max_zipped_bytes;
        if bytes > max {
            return Err(LambdaError::request_entity_too_large(format!(
                "Zipped size must be smaller than {max} bytes"
            )));
        }
        Ok(())
    }

    /// A function and its layers together, unzipped: at most 250 MB.
    pub fn unzipped_total(&self, bytes: u64) -> Result<(), LambdaError> {
        let max = self.limits.max_unzipped_bytes;
        if bytes > max {
            return Err(LambdaError::invalid_parameter(format!(
                "Function code combined with layers exceeds the maximum allowed size of {max} bytes. \
                 The actual size is {bytes} bytes."
            )));
        }
        Ok(())
    }

    /// All stored code plus a new upload: within `TotalCodeSize`.
    pub fn total_code_size(&self, stored: u64, adding: u64) -> Result<(), LambdaError> {
        if stored.saturating_add(adding) > self.limits.total_code_size {
            return Err(LambdaError::code_storage_exceeded(format!(
                "Code storage limit exceeded: {} bytes stored of {} allowed",
                stored, self.limits.total_code_size
            )));
        }
        Ok(())
    }

    /// Reserved concurrency must leave the account's minimum unreserved.
    pub fn reserved_concurrency(&self, n: u32, reserved_by_others: u64) -> Result<(), LambdaError> {
        let room = u64::from(self.limits.concurrent_executions)
            .saturating_sub(u64::from(self.limits.min_unreserved_concurrency));
        if reserved_by_others + u64::from(n) > room {
            return Err(LambdaError::invalid_parameter(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's \
                 UnreservedConcurrentExecution below its minimum value of [{}].",
                self.limits.min_unreserved_concurrency
            ))
            .without_type());
        }
        Ok(())
    }
}

/// `Layers` with a member that is no layer version ARN: AWS quotes the whole
/// list, as Java prints one, and the member's every constraint (the recorded
/// test_layer_function_exceptions).
fn bad_layers(arns: &[String]) -> LambdaError {
    LambdaError::validation(format!(
        "1 validation error detected: Value '[{}]' at 'layers' failed to satisfy constraint: Member must \
         satisfy constraint: [Member must have length less than or equal to 2048, Member must have length \
         greater than or equal to 1, Member must satisfy regular expression pattern: {}, Member must not be null]",
        arns.join(", "),
        crate::arn::LAYER_VERSION_ARN_PATTERN
    ))
}

#[cfg(test)]
mod tests;
