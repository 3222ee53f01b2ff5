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

/// The function an unqualified function ARN names.
fn function_of(arn: &str) -> Result<String, ApiError> {
    let bad = || LambdaError::invalid_parameter(format!("Resource {arn} is not a function ARN"));
    if !arn.starts_with("arn:") {
        return Err(bad().into());
    }
    let r = FunctionRef::parse(arn).map_err(|_| bad())?;
    if r.qualifier.is_some() {
        return Err(LambdaError::invalid_parameter("Tags can only be set on an unqualified function ARN").into());
    }
    Ok(r.name)
}

pub async fn tag(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let function = function_of(params.resource())?;
    let req: TagResourceRequest = parse_json(&body)?;
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
    st.blocking(move |s| Ok(s.registry.untag_function(&function, &keys)?))
        .await?;
    Ok(no_content())
}

pub async fn list(State(st): State<AppState>, params: Params) -> ApiResult {
    let function = function_of(params.resource())?;
    let tags = st.blocking(move |s| Ok(s.registry.function_tags(&function)?)).await?;
    Ok(json(200, &json!({ "Tags": tags })))
}
