//! TagResource, UntagResource and ListTags, for functions (the only
//! taggable resource lamb has).

use super::functions::validate_tags;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use lamb_types::{FunctionRef, LambdaError};
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagResourceRequest {
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

/// The function an unqualified function ARN names; AWS's answers otherwise
/// (test_tag_exceptions of the recorded answers).
fn function_of(arn: &str) -> Result<String, ApiError> {
    let bad = || {
        LambdaError::validation(format!(
            "1 validation error detected: Value '{arn}' at 'resource' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: \
             arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{{2}}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{{1}}:\\d{{12}}:\
             (function:[a-zA-Z0-9-_]+(:(\\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|\
             code-signing-config:csc-[a-z0-9]{{17}}|event-source-mapping:[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-\
             [0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}|capacity-provider:[a-zA-Z0-9-_]+)"
        ))
    };
    // A full function ARN: `FunctionName`'s optional prefixes are required here.
    let r = FunctionRef::parse(arn)
        .ok()
        .filter(|r| r.region.is_some() && r.account.is_some() && arn.split(':').nth(5) == Some("function"))
        .ok_or_else(bad)?;
    if r.qualifier.is_some() {
        return Err(LambdaError::invalid_parameter(
            "Tags on function aliases and versions are not supported. Please specify a function ARN.",
        )
        .into());
    }
    Ok(r.name)
}

pub async fn tag(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let function = function_of(params.resource())?;
    let req: TagResourceRequest = parse_json(&body)?;
    if req.tags.is_empty() {
        // AWS's answer to an empty tag map, word for word.
        return Err(LambdaError::invalid_parameter("An error occurred and the request cannot be processed.").into());
    }
    validate_tags(&req.tags)?;
    st.blocking(move |s| {
        let mut all = s.registry.function_tags(&function)?;
        all.extend(req.tags.clone());
        validate_tags(&all)?;
        Ok(s.registry.tag_function(&function, &req.tags)?)
    })
    .await?;
    Ok(no_content())
}

pub async fn untag(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let function = function_of(params.resource())?;
    let keys = query.all("tagKeys");
    if keys.is_empty() {
        return Err(LambdaError::validation(
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: \
             Member must not be null",
        )
        .into());
    }
    st.blocking(move |s| Ok(s.registry.untag_function(&function, &keys)?))
        .await?;
    Ok(no_content())
}

pub async fn list(State(st): State<AppState>, params: Params) -> ApiResult {
    let function = function_of(params.resource())?;
    let tags = st.blocking(move |s| Ok(s.registry.function_tags(&function)?)).await?;
    Ok(json(200, &json!({ "Tags": tags })))
}
