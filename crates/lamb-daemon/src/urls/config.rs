//! The control-plane operations of function URLs (spec 3.2):
//! Create/Get/Update/DeleteFunctionUrlConfig and ListFunctionUrlConfigs.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use lamb_store::{FunctionUrlRecord, PageRequest};
use lamb_types::{
    ArnContext, CreateFunctionUrlConfigRequest, FunctionUrlConfig, LambdaError, ListFunctionUrlConfigsResponse,
    Qualifier, UpdateFunctionUrlConfigRequest, Version,
};

/// The function and the alias (`None`: `$LATEST`) a request names. A URL
/// belongs to the unqualified function or to an alias, never a version.
/// A `$LATEST` named outright is refused like a version, as AWS does
/// (test_url_config_exceptions of the recorded answers).
fn target(params: &Params, query: &Query) -> Result<(String, Option<String>), ApiError> {
    let fref = params.function_ref()?;
    let given = fref.qualifier.is_some() || query.get("Qualifier").is_some_and(|q| !q.is_empty());
    let q = fref.merge_qualifier(query.get("Qualifier"))?;
    match q {
        Qualifier::Version(Version::Latest) if !given => Ok((fref.name, None)),
        Qualifier::Alias(a) => Ok((fref.name, Some(a))),
        Qualifier::Version(v) => Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{v}' at 'qualifier' failed to satisfy constraint: \
             Member must satisfy regular expression pattern: ((?!^\\d+$)^[0-9a-zA-Z-_]+$)"
        ))
        .into()),
    }
}

fn shape(ctx: &ArnContext, rec: &FunctionUrlRecord, with_last_modified: bool) -> FunctionUrlConfig {
    let mut c = rec.configuration(ctx, with_last_modified);
    c.function_url = super::public_url(&rec.url_id);
    c
}

/// Create's and Update's answers: AWS leaves `InvokeMode` out of both (the
/// recorded test_url_config_lifecycle); Get and List carry it.
fn written(c: &FunctionUrlConfig) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let serde_json::Value::Object(m) = &mut v {
        m.remove("InvokeMode");
    }
    v
}

pub async fn create(State(st): State<AppState>, params: Params, query: Query, body: Bytes) -> ApiResult {
    let (name, alias) = target(&params, &query)?;
    let settings = parse_json::<CreateFunctionUrlConfigRequest>(&body)?.into_settings()?;
    let out = st
        .blocking(move |s| {
            let url_id = uuid::Uuid::new_v4().simple().to_string();
            let rec = s
                .registry
                .create_function_url(&name, alias.as_deref(), &settings, &url_id)?;
            Ok(shape(&s.ctx, &rec, false))
        })
        .await?;
    Ok(json(201, &written(&out)))
}

pub async fn get(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (name, alias) = target(&params, &query)?;
    let out = st
        .blocking(move |s| {
            Ok(shape(
                &s.ctx,
                &s.registry.get_function_url(&name, alias.as_deref())?,
                true,
            ))
        })
        .await?;
    Ok(json(200, &out))
}

pub async fn update(State(st): State<AppState>, params: Params, query: Query, body: Bytes) -> ApiResult {
    let (name, alias) = target(&params, &query)?;
    let update: UpdateFunctionUrlConfigRequest = parse_json(&body)?;
    update.validate()?;
    let out = st
        .blocking(move |s| {
            let rec = s.registry.update_function_url(&name, alias.as_deref(), &update)?;
            Ok(shape(&s.ctx, &rec, true))
        })
        .await?;
    Ok(json(200, &written(&out)))
}

pub async fn delete(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (name, alias) = target(&params, &query)?;
    st.blocking(move |s| Ok(s.registry.delete_function_url(&name, alias.as_deref())?))
        .await?;
    Ok(no_content())
}

pub async fn list(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let name = params.unqualified_function()?;
    let max_items = query.max_items()?;
    let marker = query.get("Marker").map(str::to_owned);
    let out = st
        .blocking(move |s| {
            let page = s.registry.list_function_urls(
                &name,
                PageRequest {
                    marker: marker.as_deref(),
                    max_items,
                },
            )?;
            Ok(ListFunctionUrlConfigsResponse {
                function_url_configs: page.items.iter().map(|r| shape(&s.ctx, r, true)).collect(),
                next_marker: page.next_marker,
            })
        })
        .await?;
    Ok(json(200, &out))
}
