//! Layer wire shapes: PublishLayerVersion's body and the layer version and
//! list items Get/List answer with (spec 3.4).

use crate::blob::Blob;
use crate::function::Architecture;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionContentInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_file: Option<Blob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_object_version: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishLayerVersionRequest {
    pub content: LayerVersionContentInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_runtimes: Option<Vec<String>>,
    /// Names, checked by [`architectures`] (an unknown one is a
    /// validation error beside the runtimes', not a body that cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_architectures: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_info: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionContentOutput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    pub code_sha256: String,
    pub code_size: u64,
}

/// PublishLayerVersion's and GetLayerVersion's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionResponse {
    pub content: LayerVersionContentOutput,
    pub layer_arn: String,
    pub layer_version_arn: String,
    pub description: String,
    pub created_date: String,
    pub version: u64,
    /// As published: `[]` is echoed, an absent list left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_runtimes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_architectures: Option<Vec<Architecture>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_info: Option<String>,
}

/// One item of ListLayerVersions, and `LatestMatchingVersion` of ListLayers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayerVersionsListItem {
    pub layer_version_arn: String,
    pub version: u64,
    pub description: String,
    pub created_date: String,
    /// As published: `[]` is echoed, an absent list left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_runtimes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatible_architectures: Option<Vec<Architecture>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license_info: Option<String>,
}

/// One item of ListLayers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LayersListItem {
    pub layer_name: String,
    pub layer_arn: String,
    pub latest_matching_version: LayerVersionsListItem,
}

/// Every name the `CompatibleRuntime` filter of ListLayers and
/// ListLayerVersions takes: the model's whole runtime enum, retired names
/// included, in the order AWS's refusal lists them (the recorded
/// `test_layer_exceptions`, `list_layers_exc_compatibleruntime_invalid`).
const FILTER_RUNTIMES: &[&str] = &[
    "ruby3.5",
    "ruby2.6",
    "dotnetcore1.0",
    "python3.7",
    "nodejs8.10",
    "nasa",
    "ruby2.7",
    "python2.7-greengrass",
    "dotnetcore2.0",
    "python3.8",
    "java21",
    "dotnet6",
    "dotnetcore2.1",
    "python3.9",
    "java11",
    "nodejs6.10",
    "provided",
    "dotnetcore3.1",
    "dotnet8",
    "java25",
    "java17",
    "nodejs",
    "nodejs4.3",
    "java8.al2",
    "go1.x",
    "dotnet10",
    "nodejs20.x",
    "go1.9",
    "byol",
    "nodejs10.x",
    "provided.al2023",
    "nodejs22.x",
    "python3.10",
    "java8",
    "nodejs12.x",
    "python3.11",
    "nodejs24.x",
    "nodejs8.x",
    "python3.12",
    "nodejs14.x",
    "nodejs8.9",
    "nodejs26.x",
    "python3.13",
    "python3.14",
    "nodejs16.x",
    "python3.15",
    "provided.al2",
    "nodejs4.3-edge",
    "nodejs18.x",
    "ruby3.2",
    "python3.4",
    "ruby3.3",
    "ruby3.4",
    "ruby2.5",
    "python3.6",
    "python2.7",
];

/// The `CompatibleRuntime` and `CompatibleArchitecture` filters of
/// ListLayers and ListLayerVersions: values of the model's enums or absent
/// (empty counts as absent), else AWS's `ValidationException` naming each
/// bad one.
pub fn check_list_filters(runtime: Option<&str>, architecture: Option<&str>) -> Result<(), crate::LambdaError> {
    let mut errors = Vec::new();
    if let Some(r) = runtime.filter(|r| !r.is_empty() && !FILTER_RUNTIMES.contains(r)) {
        errors.push(format!(
            "Value '{r}' at 'compatibleRuntime' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
            FILTER_RUNTIMES.join(", ")
        ));
    }
    if let Some(a) = architecture.filter(|a| !a.is_empty() && !["x86_64", "arm64"].contains(a)) {
        errors.push(format!(
            "Value '{a}' at 'compatibleArchitecture' failed to satisfy constraint: Member must satisfy enum value set: [x86_64, arm64]"
        ));
    }
    match errors.len() {
        0 => Ok(()),
        1 => Err(crate::LambdaError::validation(format!(
            "1 validation error detected: {}",
            errors[0]
        ))),
        n => Err(crate::LambdaError::validation(format!(
            "{n} validation errors detected: {}",
            errors.join("; ")
        ))),
    }
}

/// A layer's `CompatibleArchitectures` as names of the model's enum, else
/// AWS's validation error (the recorded test_layer_exceptions).
pub fn architectures(names: &[String]) -> Result<Vec<Architecture>, crate::LambdaError> {
    architectures_at(names, "compatibleArchitectures")
}

/// [`architectures`] of the member `field` (a function's `architectures`).
pub fn architectures_at(names: &[String], field: &str) -> Result<Vec<Architecture>, crate::LambdaError> {
    names
        .iter()
        .map(|n| serde_json::from_value(serde_json::Value::String(n.clone())))
        .collect::<Result<_, _>>()
        .map_err(|_| {
            crate::LambdaError::validation(format!(
                "1 validation error detected: Value '[{}]' at '{field}' failed to satisfy \
                 constraint: Member must satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], \
                 Member must not be null]",
                names.join(", ")
            ))
        })
}

#[cfg(test)]
mod list_filter_tests {
    use super::check_list_filters;

    #[test]
    fn list_filters_take_the_models_enums_only() {
        assert!(check_list_filters(None, None).is_ok());
        assert!(check_list_filters(Some("python2.7"), Some("arm64")).is_ok());
        assert!(check_list_filters(Some(""), Some("")).is_ok());
        let e = check_list_filters(Some("runtimedoesnotexist"), None).unwrap_err();
        assert!(e.message.starts_with(
            "1 validation error detected: Value 'runtimedoesnotexist' at 'compatibleRuntime' failed to satisfy \
             constraint: Member must satisfy enum value set: [ruby3.5, ruby2.6,"
        ));
        let e = check_list_filters(None, Some("archdoesnotexist")).unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'archdoesnotexist' at 'compatibleArchitecture' failed to satisfy \
             constraint: Member must satisfy enum value set: [x86_64, arm64]"
        );
        let e = check_list_filters(Some("x"), Some("y")).unwrap_err();
        assert!(e.message.starts_with("2 validation errors detected: "));
    }
}
