//! Code signing configs: Create/Get/Update/Delete/ListCodeSigningConfig(s),
//! ListFunctionsByCodeSigningConfig, and a function's
//! Put/Get/DeleteFunctionCodeSigningConfig. Each config is a registry
//! document keyed by its `csc-` id; a function's is a function document
//! holding the config's ARN. lamb checks no signature (no AWS Signer), so a
//! config changes no deployment: `Warn` in effect, whatever it says.

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use lamb_store::Expect;
use lamb_types::code_signing::{config_id, CodeSigningConfig, CodeSigningConfigRequest};
use lamb_types::timefmt::lambda_timestamp;
use lamb_types::{ErrorKind, LambdaError};
use serde::Deserialize;
use serde_json::json;

/// The document kind of configs, and of a function's config ARN.
const KIND: &str = "code-signing-config";

fn not_found(arn: &str) -> ApiError {
    LambdaError::not_found(format!(
        "The code signing configuration cannot be found. Check that the provided configuration is not deleted: {arn}."
    ))
    .into()
}

/// A config's id from the ARN in the path; one of another region or
/// account names nothing here.
fn id_of(s: &Shared, arn: &str) -> Result<String, ApiError> {
    let prefix = format!("arn:{}:lambda:{}:{}:", s.ctx.partition, s.ctx.region, s.ctx.account);
    match config_id(arn) {
        Some(id) if arn.starts_with(&prefix) => Ok(id.to_owned()),
        Some(_) => Err(not_found(arn)),
        None => Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'codeSigningConfigArn' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:code-signing-config:csc-[a-z0-9]{{17}}"
        ))
        .into()),
    }
}

fn load(s: &Shared, arn: &str) -> Result<CodeSigningConfig, ApiError> {
    let id = id_of(s, arn)?;
    let doc = s.registry.document(KIND, &id)?.ok_or_else(|| not_found(arn))?;
    serde_json::from_str(&doc.body).map_err(|e| LambdaError::service(format!("stored config unreadable: {e}")).into())
}

fn store(s: &Shared, c: &CodeSigningConfig, expect: Expect<'_>) -> Result<(), ApiError> {
    let body = serde_json::to_string(c).map_err(|e| LambdaError::service(e.to_string()))?;
    s.registry
        .put_document(KIND, &c.code_signing_config_id, Some(&body), expect)?;
    Ok(())
}

fn now() -> String {
    lambda_timestamp(time::OffsetDateTime::now_utc())
}

/// A new id: `csc-` and 17 lower-case letters and digits, as Lambda's.
fn new_id() -> String {
    format!("csc-{}", &uuid::Uuid::new_v4().simple().to_string()[..17])
}

pub async fn create(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let req: CodeSigningConfigRequest = parse_json(&body)?;
    req.validate(true)?;
    let out = st
        .blocking(move |s| {
            let id = new_id();
            let c = CodeSigningConfig {
                code_signing_config_arn: format!(
                    "arn:{}:lambda:{}:{}:code-signing-config:{id}",
                    s.ctx.partition, s.ctx.region, s.ctx.account
                ),
                code_signing_config_id: id,
                description: req.description.unwrap_or_default(),
                // validate(true) made sure it is there.
                allowed_publishers: req.allowed_publishers.unwrap_or_default(),
                code_signing_policies: req.code_signing_policies.unwrap_or_default(),
                last_modified: now(),
            };
            store(s, &c, Expect::Revision(None))?;
            Ok(c)
        })
        .await?;
    Ok(json(201, &json!({ "CodeSigningConfig": out })))
}

pub async fn get(State(st): State<AppState>, params: Params) -> ApiResult {
    let arn = params.resource().to_owned();
    let c = st.blocking(move |s| load(s, &arn)).await?;
    Ok(json(200, &json!({ "CodeSigningConfig": c })))
}

pub async fn update(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let arn = params.resource().to_owned();
    let req: CodeSigningConfigRequest = parse_json(&body)?;
    req.validate(false)?;
    let c = st
        .blocking(move |s| {
            let mut c = load(s, &arn)?;
            if let Some(d) = req.description {
                c.description = d;
            }
            if let Some(p) = req.allowed_publishers {
                c.allowed_publishers = p;
            }
            if let Some(p) = req.code_signing_policies {
                c.code_signing_policies = p;
            }
            c.last_modified = now();
            store(s, &c, Expect::Any)?;
            Ok(c)
        })
        .await?;
    Ok(json(200, &json!({ "CodeSigningConfig": c })))
}

pub async fn delete(State(st): State<AppState>, params: Params) -> ApiResult {
    let arn = params.resource().to_owned();
    st.blocking(move |s| {
        let c = load(s, &arn)?;
        let users = s.registry.functions_with_document(KIND, &c.code_signing_config_arn)?;
        if !users.is_empty() {
            return Err(LambdaError::conflict(format!(
                "The code signing configuration cannot be deleted because it is used by the following functions: {}",
                users.join(", ")
            ))
            .into());
        }
        s.registry
            .put_document(KIND, &c.code_signing_config_id, None, Expect::Any)?;
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// One page of `items` after `Marker` (an index), `MaxItems` long.
fn page<T>(items: Vec<T>, query: &Query) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = query.get("Marker").and_then(|m| m.parse::<usize>().ok()).unwrap_or(0);
    let limit = match query.max_items()? {
        0 => 50,
        n => n,
    };
    let total = items.len();
    let out: Vec<T> = items.into_iter().skip(start).take(limit).collect();
    let next = (start + out.len() < total).then(|| (start + out.len()).to_string());
    Ok((out, next))
}

pub async fn list(State(st): State<AppState>, query: Query) -> ApiResult {
    let all = st
        .blocking(|s| {
            s.registry
                .documents(KIND)?
                .into_iter()
                .map(|(_, d)| serde_json::from_str::<CodeSigningConfig>(&d.body))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LambdaError::service(format!("stored config unreadable: {e}")).into())
        })
        .await?;
    let (items, next) = page(all, &query)?;
    let mut out = json!({ "CodeSigningConfigs": items });
    if let Some(m) = next {
        out["NextMarker"] = json!(m);
    }
    Ok(json(200, &out))
}

pub async fn list_functions(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let arn = params.resource().to_owned();
    let all = st
        .blocking(move |s| {
            let c = load(s, &arn)?;
            let names = s.registry.functions_with_document(KIND, &c.code_signing_config_arn)?;
            Ok(names.iter().map(|n| s.ctx.function_arn(n)).collect::<Vec<_>>())
        })
        .await?;
    let (items, next) = page(all, &query)?;
    let mut out = json!({ "FunctionArns": items });
    if let Some(m) = next {
        out["NextMarker"] = json!(m);
    }
    Ok(json(200, &out))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutFunctionRequest {
    #[serde(default)]
    code_signing_config_arn: String,
}

pub async fn put_function(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let name = params.unqualified_function()?;
    let req: PutFunctionRequest = parse_json(&body)?;
    let out = st
        .blocking(move |s| {
            let arn = req.code_signing_config_arn;
            // The function first: a missing one is the function's 404.
            s.registry.function_document(&name, KIND)?;
            load(s, &arn).map_err(|e| match e {
                ApiError::Lambda(l) if l.kind == ErrorKind::ResourceNotFound => LambdaError::new(
                    ErrorKind::CodeSigningConfigNotFound,
                    format!("The code signing configuration cannot be found: {arn}"),
                )
                .into(),
                other => other,
            })?;
            s.registry.put_function_document(&name, KIND, Some(&arn), Expect::Any)?;
            Ok(json!({ "CodeSigningConfigArn": arn, "FunctionName": name }))
        })
        .await?;
    Ok(json(200, &out))
}

/// A function without a config answers 200 with an empty body, as AWS
/// (test_code_signing_not_found_excs of the recorded answers).
pub async fn get_function(State(st): State<AppState>, params: Params) -> ApiResult {
    let name = params.unqualified_function()?;
    let out = st
        .blocking(move |s| {
            Ok(match s.registry.function_document(&name, KIND)? {
                Some(d) => json!({ "CodeSigningConfigArn": d.body, "FunctionName": name }),
                None => json!({}),
            })
        })
        .await?;
    Ok(json(200, &out))
}

pub async fn delete_function(State(st): State<AppState>, params: Params) -> ApiResult {
    let name = params.unqualified_function()?;
    st.blocking(move |s| {
        s.registry.put_function_document(&name, KIND, None, Expect::Any)?;
        Ok(())
    })
    .await?;
    Ok(no_content())
}
