//! Container image functions (`PackageType: Image`): the `ImageConfig` a user
//! sets, its `ImageConfigResponse`, and [`FunctionImage`], what lamb keeps of
//! a function's image: the URI asked for and, once pulled, the manifest
//! digest, the layers and the image's own configuration.

use crate::error::LambdaError;
use serde::{Deserialize, Serialize};

/// `ImageConfig`: overrides of the image's own entry point, command and
/// working directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
}

impl ImageConfig {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// `ImageConfigResponse` of a configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfigResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config: Option<ImageConfig>,
}

/// Why a pull failed, as `StateReason`/`LastUpdateStatusReason` and their codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullFailure {
    pub reason: String,
    /// AWS's reason codes: `ImageDeleted`, `ImageAccessDenied`, `InvalidImage`.
    pub code: String,
}

/// What a pull found: the manifest, its layers (lowest first) and the image's
/// configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PulledImage {
    /// `host/repo@sha256:...`.
    pub resolved_uri: String,
    /// Hex SHA-256 of the manifest (`CodeSha256`).
    pub manifest_sha256: String,
    /// Hex SHA-256 of each layer blob, lowest first.
    pub layers: Vec<String>,
    /// File bytes of the layers once unpacked.
    pub unpacked_bytes: u64,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default)]
    pub working_dir: String,
}

/// A function's image: the URI asked for, the user's overrides, and the
/// outcome of the last pull (neither while it runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionImage {
    pub uri: String,
    #[serde(default)]
    pub config: ImageConfig,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pulled: Option<PulledImage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<PullFailure>,
}

impl FunctionImage {
    /// The command lamb starts: the entry point then the command, each the
    /// user's override or the image's own (an overridden entry point drops
    /// the image's command, as Docker does); the working directory likewise.
    pub fn command(&self) -> Option<(Vec<String>, String)> {
        let pulled = self.pulled.as_ref()?;
        let c = &self.config;
        let entry = c.entry_point.clone().unwrap_or_else(|| pulled.entrypoint.clone());
        let cmd = match (&c.command, &c.entry_point) {
            (Some(cmd), _) => cmd.clone(),
            (None, Some(_)) => Vec::new(),
            (None, None) => pulled.cmd.clone(),
        };
        let argv: Vec<String> = entry.into_iter().chain(cmd).collect();
        let dir = c
            .working_directory
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| Some(pulled.working_dir.clone()).filter(|d| !d.is_empty()))
            .unwrap_or_else(|| "/".to_owned());
        Some((argv, dir))
    }
}

/// `ImageConfig`'s model constraints: at most 1500 entries of at most 1024
/// characters in the lists, a working directory of at most 1000.
pub fn validate_image_config(c: &ImageConfig) -> Result<(), LambdaError> {
    for (field, list) in [("entryPoint", &c.entry_point), ("command", &c.command)] {
        let list = list.as_deref().unwrap_or_default();
        if list.len() > 1500 || list.iter().any(|s| s.chars().count() > 1024 || s.contains('\0')) {
            return Err(LambdaError::validation(format!(
                "1 validation error detected: Value at 'imageConfig.{field}' failed to satisfy constraint: \
                 Member must have length less than or equal to 1500"
            )));
        }
    }
    if let Some(d) = &c.working_directory {
        if d.chars().count() > 1000 || d.contains('\0') {
            return Err(LambdaError::validation(
                "1 validation error detected: Value at 'imageConfig.workingDirectory' failed to satisfy \
                 constraint: Member must have length less than or equal to 1000",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulled() -> FunctionImage {
        FunctionImage {
            uri: "r/x:1".into(),
            pulled: Some(PulledImage {
                entrypoint: vec!["/lambda-entrypoint.sh".into()],
                cmd: vec!["app.handler".into()],
                working_dir: "/var/task".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn command_is_the_images_own_unless_overridden() {
        let mut img = pulled();
        assert_eq!(
            img.command().unwrap(),
            (
                vec!["/lambda-entrypoint.sh".into(), "app.handler".into()],
                "/var/task".into()
            )
        );
        img.config.command = Some(vec!["other.handler".into()]);
        assert_eq!(img.command().unwrap().0, vec!["/lambda-entrypoint.sh", "other.handler"]);
        img.config = ImageConfig {
            entry_point: Some(vec!["/bin/run".into()]),
            working_directory: Some("/w".into()),
            ..Default::default()
        };
        assert_eq!(img.command().unwrap(), (vec!["/bin/run".into()], "/w".into()));
        img.pulled = None;
        assert!(img.command().is_none());
    }

    #[test]
    fn image_config_reads_botocore_json() {
        let c: ImageConfig =
            serde_json::from_str(r#"{"EntryPoint":["a"],"Command":["b","c"],"WorkingDirectory":"/d"}"#).unwrap();
        assert_eq!(c.command.as_deref().unwrap(), ["b", "c"]);
        validate_image_config(&c).unwrap();
        let long = ImageConfig {
            working_directory: Some("x".repeat(1001)),
            ..Default::default()
        };
        assert!(validate_image_config(&long).is_err());
    }
}

/// A parsed `ImageUri`: `host[:port]/repository[:tag][@sha256:hex]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host` or `host:port`.
    pub registry: String,
    pub repository: String,
    /// The tag, or `sha256:<hex>` when pulled by digest.
    pub reference: String,
}

impl ImageRef {
    /// Parses an `ImageUri`; the first component is always the registry (as
    /// on Lambda, whose URIs always name their registry).
    pub fn parse(uri: &str) -> Result<Self, LambdaError> {
        let bad = || LambdaError::invalid_parameter(format!("Provided image URI {uri:?} is not valid."));
        let (registry, rest) = uri.split_once('/').ok_or_else(bad)?;
        let (name, reference) = match rest.split_once('@') {
            Some((name, digest)) => {
                let hex = digest.strip_prefix("sha256:").ok_or_else(bad)?;
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                    return Err(bad());
                }
                // A tag before the digest is ignored, as by docker.
                (name.split(':').next().unwrap_or(name), digest.to_owned())
            }
            None => match rest.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => (name, tag.to_owned()),
                _ => (rest, "latest".to_owned()),
            },
        };
        let host_ok = !registry.is_empty()
            && registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b));
        let name_ok = !name.is_empty()
            && name.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            });
        let tag_ok = reference.starts_with("sha256:")
            || (!reference.is_empty()
                && reference.len() <= 128
                && reference
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)));
        if !(host_ok && name_ok && tag_ok) {
            return Err(bad());
        }
        Ok(Self {
            registry: registry.to_owned(),
            repository: name.to_owned(),
            reference,
        })
    }

    /// `host/repo@sha256:hex` of a pulled manifest.
    pub fn resolved(&self, manifest_sha256: &str) -> String {
        format!("{}/{}@sha256:{manifest_sha256}", self.registry, self.repository)
    }
}

#[cfg(test)]
mod ref_tests {
    use super::*;

    #[test]
    fn parses_tags_digests_and_ports() {
        let r = ImageRef::parse("127.0.0.1:5000/team/app:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference.as_str()),
            ("127.0.0.1:5000", "team/app", "v1")
        );
        assert_eq!(ImageRef::parse("reg.example/app").unwrap().reference, "latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(ImageRef::parse(&format!("r.io/app:x@{d}")).unwrap().reference, d);
        for bad in [
            "app",
            "r.io/App:1",
            "r.io/app@sha256:12",
            "r.io/app:",
            "/app:1",
            "r.io//x:1",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }
}
