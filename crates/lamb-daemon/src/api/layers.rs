//! Layers: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn,
//! ListLayers, ListLayerVersions, DeleteLayerVersion.

use super::functions::{collect_garbage, page_response, put_bundle};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use lamb_store::{BundleKind, CodeInfo, LayerVersionRecord, NewLayerVersion};
use lamb_types::arn::parse_layer_name;
use lamb_types::validate::{validate_publish_layer, zip_file};
use lamb_types::{
    FunctionCode, LambdaError, LayerVersionArn, LayerVersionResponse, LayersListItem, PublishLayerVersionRequest,
};

pub(super) fn version_number(s: &str) -> Result<u64, ApiError> {
    match s.parse::<i64>() {
        // AWS's own words for a number below 1 (the recorded
        // test_layer_exceptions); the model's for what is no number.
        Ok(n) if n >= 1 => Ok(n.unsigned_abs()),
        Ok(_) => Err(LambdaError::invalid_parameter("Layer Version Cannot be less than 1").into()),
        Err(_) => Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{s}' at 'versionNumber' failed to satisfy constraint: \
             Member must be a number greater than or equal to 1"
        ))
        .into()),
    }
}

/// A layer version's answer with `Content.Location`, a presigned URL of
/// its zip (crate::code_location).
fn answer(st: &AppState, headers: &HeaderMap, rec: &LayerVersionRecord) -> LayerVersionResponse {
    let mut out = rec.response(&st.ctx);
    out.content.location = Some(crate::code_location::presign(
        st,
        headers,
        BundleKind::Layer,
        &rec.code.digest,
        time::OffsetDateTime::now_utc(),
    ));
    out
}

pub async fn publish(State(st): State<AppState>, params: Params, headers: HeaderMap, body: Bytes) -> ApiResult {
    let name = parse_layer_name(params.resource())?;
    let req: PublishLayerVersionRequest = parse_json(&body)?;
    drop(body);
    validate_publish_layer(&req)?;
    let runtimes = st.runtimes();
    let bad_runtimes = st
        .rules(&runtimes)
        .compatible_runtimes(req.compatible_runtimes.as_deref().unwrap_or_default())
        .err();
    let architectures = lamb_types::layer::architectures(req.compatible_architectures.as_deref().unwrap_or_default());
    let bad_architectures = architectures.as_ref().err().cloned();
    lamb_types::validate::together(bad_runtimes.into_iter().chain(bad_architectures).collect())?;
    // An empty list is kept apart from none: AWS echoes it (the recorded
    // test_layer_exceptions).
    let architectures = req.compatible_architectures.is_some().then_some(architectures?);
    tracing::info!(layer = %name, "publish layer version");
    let mut code = FunctionCode {
        zip_file: req.content.zip_file,
        s3_bucket: req.content.s3_bucket,
        s3_key: req.content.s3_key,
        s3_object_version: req.content.s3_object_version,
        image_uri: None,
    };
    super::functions::s3_inline(&st, &mut code).await?;
    let rec = st
        .blocking(move |s| {
            let bundle = put_bundle(s, BundleKind::Layer, zip_file(&code)?, 0)?;
            let rec = s.registry.publish_layer_version(NewLayerVersion {
                name,
                description: req.description.unwrap_or_default(),
                compatible_runtimes: req.compatible_runtimes,
                compatible_architectures: architectures,
                license_info: req.license_info,
                code: CodeInfo::from(&bundle),
            })?;
            drop(bundle);
            Ok(rec)
        })
        .await?;
    Ok(json(201, &answer(&st, &headers, &rec)))
}

/// A layer version for GetLayerVersion(ByArn), whose not-found answer is
/// AWS's generic one (the recorded test_layer_exceptions), unlike the
/// registry's for a function's missing layer.
async fn get_record(st: &AppState, name: String, version: u64) -> Result<LayerVersionRecord, ApiError> {
    st.blocking(move |s| Ok(s.registry.get_layer_version(&name, version)?))
        .await
        .map_err(|e| match e {
            ApiError::Lambda(e) if e.kind == lamb_types::ErrorKind::ResourceNotFound => not_found().into(),
            e => e,
        })
}

fn not_found() -> LambdaError {
    LambdaError::not_found("The resource you requested does not exist.")
}

pub async fn get(State(st): State<AppState>, params: Params, headers: HeaderMap) -> ApiResult {
    let name = parse_layer_name(params.resource())?;
    let version = version_number(params.sub_resource())?;
    let rec = get_record(&st, name, version).await?;
    Ok(json(200, &answer(&st, &headers, &rec)))
}

pub async fn delete(State(st): State<AppState>, params: Params) -> ApiResult {
    let name = parse_layer_name(params.resource())?;
    let version = version_number(params.sub_resource())?;
    st.blocking(move |s| {
        s.registry.delete_layer_version(&name, version)?;
        collect_garbage(s);
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// `GET /2018-10-31/layers`: ListLayers, or GetLayerVersionByArn when
/// `find=LayerVersion`.
pub async fn list_or_find(State(st): State<AppState>, query: Query, headers: HeaderMap) -> ApiResult {
    if query.get("find") == Some("LayerVersion") {
        let arn = LayerVersionArn::parse_at(query.get("Arn").unwrap_or_default(), "arn")?;
        if !arn.is_local(&st.ctx) {
            return Err(not_found().into());
        }
        let rec = get_record(&st, arn.name, arn.version).await?;
        return Ok(json(200, &answer(&st, &headers, &rec)));
    }
    let runtime = query.get("CompatibleRuntime").map(str::to_owned);
    let arch = query.get("CompatibleArchitecture").map(str::to_owned);
    lamb_types::layer::check_list_filters(runtime.as_deref(), arch.as_deref())?;
    let request = query.page()?.at_most(50);
    let page = st
        .blocking(move |s| Ok(s.registry.list_layers(request.request())?))
        .await?;
    // The filters apply to each layer's newest version, which is what the
    // registry lists; an older matching version is not looked for.
    let items: Vec<LayersListItem> = page
        .items
        .iter()
        .filter(|r| matches_filters(r, runtime.as_deref(), arch.as_deref()))
        .map(|r| LayersListItem {
            layer_name: r.name.clone(),
            layer_arn: st.ctx.layer_arn(&r.name),
            latest_matching_version: r.list_item(&st.ctx),
        })
        .collect();
    Ok(page_response("Layers", &items, page.next_marker))
}

fn matches_filters(r: &LayerVersionRecord, runtime: Option<&str>, arch: Option<&str>) -> bool {
    let runtime_ok = runtime.is_none_or(|rt| rt.is_empty() || r.compatible_runtimes.iter().flatten().any(|x| x == rt));
    let arch_ok = arch.is_none_or(|a| {
        a.is_empty()
            || r.compatible_architectures
                .iter()
                .flatten()
                .any(|x| serde_json::to_value(x).ok().and_then(|v| v.as_str().map(|s| s == a)) == Some(true))
    });
    runtime_ok && arch_ok
}

pub async fn list_versions(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let name = parse_layer_name(params.resource())?;
    let runtime = query.get("CompatibleRuntime").map(str::to_owned);
    let arch = query.get("CompatibleArchitecture").map(str::to_owned);
    lamb_types::layer::check_list_filters(runtime.as_deref(), arch.as_deref())?;
    let request = query.page()?.at_most(50);
    let page = st
        .blocking(move |s| Ok(s.registry.list_layer_versions(&name, request.request())?))
        .await?;
    let items: Vec<_> = page
        .items
        .iter()
        .filter(|r| matches_filters(r, runtime.as_deref(), arch.as_deref()))
        .map(|r| r.list_item(&st.ctx))
        .collect();
    Ok(page_response("LayerVersions", &items, page.next_marker))
}
