//! Code signing configs (CreateCodeSigningConfig and the rest): the wire
//! shapes and the model's constraints. lamb keeps and answers them but
//! checks no signature (there is no AWS Signer): every deployment goes
//! through as with `UntrustedArtifactOnDeployment: Warn`.

use crate::error::LambdaError;
use crate::validate::constraint;
use serde::{Deserialize, Serialize};

/// The signing profiles a config trusts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AllowedPublishers {
    #[serde(default)]
    pub signing_profile_version_arns: Vec<String>,
}

/// What a deployment whose signature fails does: `Warn` or `Enforce`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeSigningPolicies {
    #[serde(default = "warn")]
    pub untrusted_artifact_on_deployment: String,
}

fn warn() -> String {
    "Warn".to_owned()
}

impl Default for CodeSigningPolicies {
    fn default() -> Self {
        Self {
            untrusted_artifact_on_deployment: warn(),
        }
    }
}

/// A code signing config as Get answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeSigningConfig {
    pub code_signing_config_id: String,
    pub code_signing_config_arn: String,
    pub description: String,
    pub allowed_publishers: AllowedPublishers,
    pub code_signing_policies: CodeSigningPolicies,
    pub last_modified: String,
}

/// Create's and Update's body (Update's members all optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CodeSigningConfigRequest {
    pub description: Option<String>,
    pub allowed_publishers: Option<AllowedPublishers>,
    pub code_signing_policies: Option<CodeSigningPolicies>,
    /// Create's tags: accepted, not kept (lamb tags functions only).
    pub tags: Option<std::collections::BTreeMap<String, String>>,
}

impl CodeSigningConfigRequest {
    /// The model's constraints; `create` also requires `AllowedPublishers`.
    pub fn validate(&self, create: bool) -> Result<(), LambdaError> {
        if let Some(d) = &self.description {
            if d.len() > 256 {
                return Err(constraint("description", d, "have length less than or equal to 256"));
            }
        }
        match &self.allowed_publishers {
            None if create => {
                return Err(constraint("allowedPublishers", "null", "not be null"));
            }
            None => {}
            Some(p) => {
                let arns = &p.signing_profile_version_arns;
                if arns.is_empty() || arns.len() > 20 {
                    return Err(constraint(
                        "allowedPublishers.signingProfileVersionArns",
                        format!("{arns:?}"),
                        "have length less than or equal to 20 and greater than or equal to 1",
                    ));
                }
                if let Some(bad) = arns
                    .iter()
                    .find(|a| !a.starts_with("arn:aws") || a.split(':').count() < 6)
                {
                    return Err(LambdaError::invalid_parameter(format!(
                        "{bad} is not a valid signing profile version ARN."
                    )));
                }
            }
        }
        if let Some(p) = &self.code_signing_policies {
            let v = &p.untrusted_artifact_on_deployment;
            if v != "Warn" && v != "Enforce" {
                return Err(constraint(
                    "codeSigningPolicies.untrustedArtifactOnDeployment",
                    v,
                    "satisfy enum value set: [Warn, Enforce]",
                ));
            }
        }
        Ok(())
    }
}

/// The `csc-` id in a config's ARN (`...:code-signing-config:csc-<17>`),
/// if it is one.
pub fn config_id(arn: &str) -> Option<&str> {
    let id = arn.rsplit_once(":code-signing-config:")?.1;
    let ok = id.len() == 21
        && id.starts_with("csc-")
        && id[4..].bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    ok.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_constraints() {
        assert_eq!(
            config_id("arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0123456789abcdefg"),
            Some("csc-0123456789abcdefg")
        );
        assert_eq!(
            config_id("arn:aws:lambda:us-east-1:0:code-signing-config:csc-short"),
            None
        );
        let mut r = CodeSigningConfigRequest::default();
        assert!(r.validate(true).is_err(), "AllowedPublishers is required");
        assert!(r.validate(false).is_ok());
        r.allowed_publishers = Some(AllowedPublishers {
            signing_profile_version_arns: vec!["arn:aws:signer:us-east-1:000000000000:/signing-profiles/p/v".into()],
        });
        assert!(r.validate(true).is_ok());
        r.code_signing_policies = Some(CodeSigningPolicies {
            untrusted_artifact_on_deployment: "Ignore".into(),
        });
        assert_eq!(r.validate(true).unwrap_err().kind, crate::ErrorKind::Validation);
    }
}
