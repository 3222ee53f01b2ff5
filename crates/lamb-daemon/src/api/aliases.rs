//! Aliases: Create, Get, Update, Delete, List, with `RoutingConfig`.

use super::functions::page_response;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use lamb_store::{AliasUpdate, NewAlias};
use lamb_types::validate::{
    validate_alias_name, validate_alias_version, validate_description, validate_routing_config,
};
use lamb_types::{CreateAliasRequest, UpdateAliasRequest, Version};

pub async fn create(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let function = params.unqualified_function()?;
    let req: CreateAliasRequest = parse_json(&body)?;
    validate_alias_name(&req.name)?;
    let version = validate_alias_version(&req.function_version)?;
    let description = req.description.clone().unwrap_or_default();
    validate_description(&description)?;
    let weights = match &req.routing_config {
        Some(rc) => validate_routing_config(&req.function_version, rc)?,
        None => Default::default(),
    };
    let rec = st
        .blocking(move |s| {
            Ok(s.registry.create_alias(
                &function,
                NewAlias {
                    name: req.name,
                    function_version: version,
                    description,
                    weights,
                },
            )?)
        })
        .await?;
    Ok(json(201, &rec.configuration(&st.ctx)))
}

pub async fn get(State(st): State<AppState>, params: Params) -> ApiResult {
    let function = params.unqualified_function()?;
    let alias = params.sub_resource().to_owned();
    validate_alias_name(&alias)?;
    let rec = st
        .blocking(move |s| Ok(s.registry.get_alias(&function, &alias)?))
        .await?;
    Ok(json(200, &rec.configuration(&st.ctx)))
}

pub async fn update(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let function = params.unqualified_function()?;
    let alias = params.sub_resource().to_owned();
    validate_alias_name(&alias)?;
    let req: UpdateAliasRequest = parse_json(&body)?;
    let version = req
        .function_version
        .as_deref()
        .map(validate_alias_version)
        .transpose()?;
    if let Some(d) = &req.description {
        validate_description(d)?;
    }
    let rec = st
        .blocking(move |s| {
            let weights = match &req.routing_config {
                Some(rc) => {
                    let primary = match &req.function_version {
                        Some(v) => v.clone(),
                        None => s.registry.get_alias(&function, &alias)?.function_version.to_string(),
                    };
                    Some(validate_routing_config(&primary, rc)?)
                }
                None => None,
            };
            let rec = s.registry.update_alias(
                &function,
                &alias,
                AliasUpdate {
                    function_version: version,
                    description: req.description,
                    weights,
                    revision_id: req.revision_id,
                },
            )?;
            // Its provisioned sandboxes follow it to its new version(s).
            crate::provisioned::sync(s, &function, &alias)?;
            Ok(rec)
        })
        .await?;
    Ok(json(200, &rec.configuration(&st.ctx)))
}

pub async fn delete(State(st): State<AppState>, params: Params) -> ApiResult {
    let function = params.unqualified_function()?;
    let alias = params.sub_resource().to_owned();
    validate_alias_name(&alias)?;
    st.blocking(move |s| {
        s.registry.delete_alias(&function, &alias)?;
        crate::provisioned::sync(s, &function, &alias)
    })
    .await?;
    Ok(no_content())
}

pub async fn list(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let function = params.unqualified_function()?;
    let version: Option<Version> = match query.get("FunctionVersion") {
        None | Some("") => None,
        Some(v) => Some(validate_alias_version(v)?),
    };
    let request = query.page()?;
    let page = st
        .blocking(move |s| Ok(s.registry.list_aliases(&function, version, request.request())?))
        .await?;
    let items: Vec<_> = page.items.iter().map(|a| a.configuration(&st.ctx)).collect();
    Ok(page_response("Aliases", &items, page.next_marker))
}
