//! Function URL configuration (spec 3.4, `CreateFunctionUrlConfig` and
//! friends): the wire shapes and their validation.

use crate::error::LambdaError;
use serde::{Deserialize, Serialize};

/// Most seconds a browser may cache a preflight answer (`Cors.MaxAge`).
pub const MAX_CORS_MAX_AGE: u32 = 86_400;
/// Most entries in one of the `Cors` lists.
pub const MAX_CORS_ITEMS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionUrlAuthType {
    #[serde(rename = "NONE")]
    None,
    #[serde(rename = "AWS_IAM")]
    AwsIam,
}

/// `InvokeMode`. A `RESPONSE_STREAM` URL sends what a streaming function
/// writes as it comes (chunked); a function that does not stream is
/// answered whole either way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvokeMode {
    #[default]
    #[serde(rename = "BUFFERED")]
    Buffered,
    #[serde(rename = "RESPONSE_STREAM")]
    ResponseStream,
}

/// `Cors` as Lambda spells it; every member optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
}

impl Cors {
    pub fn validate(&self) -> Result<(), LambdaError> {
        if self.max_age.is_some_and(|a| a > MAX_CORS_MAX_AGE) {
            return Err(LambdaError::validation(format!(
                "1 validation error detected: Value at 'cors.maxAge' failed to satisfy constraint: \
                 Member must have value less than or equal to {MAX_CORS_MAX_AGE}"
            )));
        }
        let lists = [
            ("allowHeaders", &self.allow_headers, 1024),
            ("allowMethods", &self.allow_methods, 6),
            ("allowOrigins", &self.allow_origins, 253),
            ("exposeHeaders", &self.expose_headers, 1024),
        ];
        for (name, list, max_len) in lists {
            let Some(list) = list else { continue };
            if list.len() > MAX_CORS_ITEMS || list.iter().any(|v| v.is_empty() || v.len() > max_len) {
                return Err(LambdaError::validation(format!(
                    "1 validation error detected: Value at 'cors.{name}' failed to satisfy constraint: \
                     Member must have at most {MAX_CORS_ITEMS} items of 1 to {max_len} characters"
                )));
            }
        }
        const METHODS: [&str; 8] = ["*", "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"];
        if let Some(bad) = self
            .allow_methods
            .iter()
            .flatten()
            .find(|m| !METHODS.contains(&m.to_ascii_uppercase().as_str()))
        {
            return Err(LambdaError::invalid_parameter(format!(
                "Cors.AllowMethods: '{bad}' is not an HTTP method"
            )));
        }
        Ok(())
    }
}

/// What a URL is configured with: stored, and merged by Update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionUrlSettings {
    pub auth_type: FunctionUrlAuthType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    #[serde(default)]
    pub invoke_mode: InvokeMode,
}

/// `CreateFunctionUrlConfig`'s body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionUrlConfigRequest {
    pub auth_type: FunctionUrlAuthType,
    #[serde(default)]
    pub cors: Option<Cors>,
    #[serde(default)]
    pub invoke_mode: Option<InvokeMode>,
}

impl CreateFunctionUrlConfigRequest {
    pub fn into_settings(self) -> Result<FunctionUrlSettings, LambdaError> {
        if let Some(c) = &self.cors {
            c.validate()?;
        }
        Ok(FunctionUrlSettings {
            auth_type: self.auth_type,
            cors: self.cors,
            invoke_mode: self.invoke_mode.unwrap_or_default(),
        })
    }
}

/// `UpdateFunctionUrlConfig`'s body: given members replace stored ones.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateFunctionUrlConfigRequest {
    #[serde(default)]
    pub auth_type: Option<FunctionUrlAuthType>,
    #[serde(default)]
    pub cors: Option<Cors>,
    #[serde(default)]
    pub invoke_mode: Option<InvokeMode>,
}

impl UpdateFunctionUrlConfigRequest {
    pub fn validate(&self) -> Result<(), LambdaError> {
        self.cors.as_ref().map_or(Ok(()), Cors::validate)
    }

    pub fn apply(&self, to: &mut FunctionUrlSettings) {
        if let Some(a) = self.auth_type {
            to.auth_type = a;
        }
        if let Some(c) = &self.cors {
            to.cors = Some(c.clone());
        }
        if let Some(m) = self.invoke_mode {
            to.invoke_mode = m;
        }
    }
}

/// The answer of Create, Get and Update, and an item of List.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionUrlConfig {
    pub function_url: String,
    pub function_arn: String,
    pub auth_type: FunctionUrlAuthType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    pub creation_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified_time: Option<String>,
    pub invoke_mode: InvokeMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListFunctionUrlConfigsResponse {
    pub function_url_configs: Vec<FunctionUrlConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_marker: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_reads_lambda_spelling() {
        let r: CreateFunctionUrlConfigRequest = serde_json::from_str(
            r#"{"AuthType":"AWS_IAM","Cors":{"AllowOrigins":["*"],"MaxAge":60},"InvokeMode":"BUFFERED"}"#,
        )
        .unwrap();
        let s = r.into_settings().unwrap();
        assert_eq!(s.auth_type, FunctionUrlAuthType::AwsIam);
        assert_eq!(s.cors.unwrap().max_age, Some(60));
        assert!(serde_json::from_str::<CreateFunctionUrlConfigRequest>(r#"{"AuthType":"OPEN"}"#).is_err());
    }

    #[test]
    fn cors_limits() {
        let mut c = Cors {
            max_age: Some(MAX_CORS_MAX_AGE + 1),
            ..Cors::default()
        };
        assert!(c.validate().is_err());
        c.max_age = Some(10);
        c.allow_methods = Some(vec!["FETCH".into()]);
        assert!(c.validate().is_err());
        c.allow_methods = Some(vec!["get".into(), "*".into()]);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn update_merges_given_members() {
        let mut s = FunctionUrlSettings {
            auth_type: FunctionUrlAuthType::None,
            cors: None,
            invoke_mode: InvokeMode::Buffered,
        };
        UpdateFunctionUrlConfigRequest {
            auth_type: Some(FunctionUrlAuthType::AwsIam),
            ..Default::default()
        }
        .apply(&mut s);
        assert_eq!(s.auth_type, FunctionUrlAuthType::AwsIam);
        assert_eq!(s.invoke_mode, InvokeMode::Buffered);
    }
}
