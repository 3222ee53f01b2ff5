//! Functions and versions: Create, Get, GetConfiguration, UpdateCode,
//! UpdateConfiguration, Delete, List, PublishVersion, ListVersionsByFunction.

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use lamb_protocol::errors::Chain;
use lamb_store::{BundleKind, CodeInfo, CodeUpdate, FunctionRecord, NewFunction, StoredBundle, UnpackLimits};
use lamb_types::validate::{image_uri, validate_architectures, zip_file};
use lamb_types::{
    Change, CreateFunctionRequest, FunctionCode, FunctionSpec, LambdaError, LayerVersionArn, PublishVersionRequest,
    Qualifier, UpdateFunctionCodeRequest, UpdateFunctionConfigurationRequest, Version,
};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Whether a layer version of this box exists (for `Rules::function_spec`).
pub(super) fn layer_exists(s: &Shared, arn: &LayerVersionArn) -> bool {
    s.registry.get_layer_version(&arn.name, arn.version).is_ok()
}

/// Unpacked bytes of the layers a spec names (unknown ones count 0: the
/// validation refuses them).
fn layers_unzipped(s: &Shared, arns: &[String]) -> u64 {
    arns.iter()
        .filter_map(|a| LayerVersionArn::parse(a).ok())
        .filter_map(|a| s.registry.get_layer_version(&a.name, a.version).ok())
        .map(|l| l.code.unzipped_size)
        .sum()
}

/// Checks an upload's size and the account's code storage, then unpacks it
/// into the store within what the 250 MB leave after `other_unzipped`.
pub(super) fn put_bundle(
    s: &Shared,
    kind: BundleKind,
    bytes: &[u8],
    other_unzipped: u64,
) -> Result<StoredBundle, ApiError> {
    let runtimes = Vec::new();
    let rules = s.rules(&runtimes);
    rules.zipped_size(bytes.len() as u64)?;
    rules.total_code_size(s.registry.total_code_size()?, bytes.len() as u64)?;
    let mut limits = UnpackLimits::from_limits(&s.limits);
    limits.max_unzipped = s.limits.max_unzipped_bytes.saturating_sub(other_unzipped);
    let stored = s.store.put(kind, bytes, &limits)?;
    // On a shared registry the other nodes fetch it from there on first use.
    s.registry.share_bundle(kind, &stored.digest, bytes)?;
    Ok(stored)
}

/// How long a bundle shared in a cluster's registry is kept though nothing
/// refers to it: the time between its upload and the commit of the version
/// or layer made from it (on any node) is far shorter.
pub(crate) const SHARED_BUNDLE_GRACE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// Removes bundles no version or layer refers to any more: this node's
/// unpacked ones, and on a shared registry the shared bytes past their grace.
pub(super) fn collect_garbage(s: &Shared) {
    if let Err(e) = s.store.gc(|| s.registry.referenced_bundles()) {
        tracing::warn!(error = %Chain(&e), "code store garbage collection failed");
    }
    match s.registry.collect_shared_bundles(SHARED_BUNDLE_GRACE) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed unreferenced shared bundles"),
        Err(e) => tracing::warn!(error = %Chain(&e), "shared bundle garbage collection failed"),
    }
}

pub(super) fn validate_tags(tags: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if tags.len() > 50 {
        return Err(LambdaError::invalid_parameter("Number of tags exceeds resource tag limit.").into());
    }
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || k.starts_with("aws:") || v.chars().count() > 256 {
            return Err(LambdaError::invalid_parameter(format!(
                "Tag '{k}' is invalid: keys are 1-128 characters and may not start with 'aws:', values at most 256"
            ))
            .into());
        }
    }
    Ok(())
}

/// CreateFunction of an Image function: validated, stored `Pending`; the
/// caller starts the pull.
fn create_image(s: &Shared, name: String, req: CreateFunctionRequest) -> Result<FunctionRecord, ApiError> {
    let spec = FunctionSpec::from_create(&req);
    image_uri(&req.code)?;
    s.rules(&[]).function_spec(&spec, &mut |a| layer_exists(s, a))?;
    s.filesystems.check(&s.ctx, &spec.file_system_configs)?;
    let tags = req.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;
    if s.registry.get_function(&name, &Qualifier::latest()).is_ok() {
        return Err(LambdaError::conflict(format!("Function already exist: {name}")).into());
    }
    let uri = spec.image.as_ref().map(|i| i.uri.clone()).unwrap_or_default();
    let rec = s.registry.create_function(NewFunction {
        name: name.clone(),
        spec,
        code: CodeInfo {
            // Until the pull names the manifest.
            digest: lamb_store::CodeDigest::of(uri.as_bytes()),
            code_size: 0,
            unzipped_size: 0,
        },
        publish: false,
    })?;
    if !tags.is_empty() {
        s.registry.tag_function(&name, &tags)?;
    }
    Ok(rec)
}

fn create_blocking(s: &Shared, name: String, req: CreateFunctionRequest) -> Result<FunctionRecord, ApiError> {
    if req.package_type == Some(lamb_types::PackageType::Image) {
        return create_image(s, name, req);
    }
    let spec = FunctionSpec::from_create(&req);
    let zip = zip_file(&req.code)?;
    let runtimes = s.runtimes();
    let rules = s.rules(&runtimes);
    // AWS answers a blocked runtime before anything else about the spec.
    rules.runtime_change(spec.runtime.as_deref().unwrap_or_default(), Change::Create)?;
    rules.function_spec(&spec, &mut |a| layer_exists(s, a))?;
    s.filesystems.check(&s.ctx, &spec.file_system_configs)?;
    let tags = req.tags.clone().unwrap_or_default();
    validate_tags(&tags)?;
    if s.registry.get_function(&name, &Qualifier::latest()).is_ok() {
        return Err(LambdaError::conflict(format!("Function already exist: {name}")).into());
    }
    let bundle = put_bundle(s, BundleKind::Function, zip, layers_unzipped(s, &spec.layers))?;
    let rec = s.registry.create_function(NewFunction {
        name: name.clone(),
        spec,
        code: CodeInfo::from(&bundle),
        publish: req.publish,
    })?;
    if !tags.is_empty() {
        s.registry.tag_function(&name, &tags)?;
    }
    drop(bundle);
    crate::snapstart::keep(s, &rec);
    Ok(rec)
}

pub async fn create(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let mut req: CreateFunctionRequest = parse_with_architectures(&body)?;
    drop(body);
    let name = lamb_types::FunctionRef::parse_unqualified(&req.function_name)?;
    lamb_types::FunctionRef::parse(&req.function_name)?.ensure_local(&st.ctx)?;
    if req.package_type != Some(lamb_types::PackageType::Image) {
        s3_inline(&st, &mut req.code).await?;
    }
    tracing::info!(function = %name, "create function");
    let rec = st.blocking(move |s| create_blocking(s, name, req)).await?;
    if rec.spec.image.is_some() {
        crate::images::start_pull(&st, rec.name.clone(), rec.revision_id.clone());
    }
    // With Publish, AWS answers version 1 under the unqualified ARN (the
    // recorded test_publish_version_on_create).
    let mut out = rec.configuration(&st.ctx);
    out.function_arn = st.ctx.function_arn(&rec.name);
    crate::snapstart::show_state(&st, &mut out);
    Ok(json(201, &as_written(out, Written::Created)))
}

/// What a write did to the configuration it answers.
#[derive(Clone, Copy)]
enum Written {
    /// A new function or version.
    Created,
    /// `$LATEST`'s code or configuration.
    Updated,
}

/// A write's answer, as AWS words it: the state the write's work starts
/// from (a new function or version `Pending`, without `LastUpdateStatus`;
/// an updated `$LATEST` `LastUpdateStatus: InProgress`; both "being
/// created"), while reads answer the state the work ends in (the recorded
/// test_function_lifecycle). lamb does that work before it answers, but an
/// image's pull, so its first read already shows the end state, as an event
/// source mapping's Create answers `Creating` and its Get `Enabled`.
fn as_written(mut c: lamb_types::FunctionConfiguration, written: Written) -> Value {
    const CREATING: &str = "The function is being created.";
    let mut keep_update_status = true;
    match written {
        Written::Created => {
            if c.state == lamb_types::State::Active {
                c.state = lamb_types::State::Pending;
                c.state_reason = Some(CREATING.into());
                c.state_reason_code = Some("Creating".into());
            }
            keep_update_status = false;
        }
        Written::Updated if c.last_update_status == lamb_types::LastUpdateStatus::Successful => {
            c.last_update_status = lamb_types::LastUpdateStatus::InProgress;
            c.last_update_status_reason = Some(CREATING.into());
            c.last_update_status_reason_code = Some("Creating".into());
        }
        Written::Updated => {}
    }
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let (false, Value::Object(m)) = (keep_update_status, &mut v) {
        for key in [
            "LastUpdateStatus",
            "LastUpdateStatusReason",
            "LastUpdateStatusReasonCode",
        ] {
            m.remove(key);
        }
    }
    v
}

/// Code given as an S3 object, read into `ZipFile` (crate::s3_code).
pub(super) async fn s3_inline(st: &AppState, code: &mut FunctionCode) -> Result<(), ApiError> {
    let max = st.limits.max_zipped_bytes;
    Ok(crate::s3_code::inline(&st.aws_endpoints, &st.ctx.region, code, max).await?)
}

/// [`parse_json`] of a body with `Architectures`: a name outside the enum is
/// AWS's validation error, not a body that cannot be read (the recorded
/// test_create_lambda_exceptions).
fn parse_with_architectures<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    #[derive(serde::Deserialize)]
    struct Names {
        #[serde(rename = "Architectures", default)]
        architectures: Option<Vec<String>>,
    }
    parse_json(body).map_err(|e| match serde_json::from_slice::<Names>(body) {
        Ok(Names {
            architectures: Some(names),
        }) => lamb_types::layer::architectures_at(&names, "architectures").map_or_else(Into::into, |_| e),
        _ => e,
    })
}

/// The function and qualifier of a Get/Delete path with `?Qualifier=`.
fn resolve(params: &Params, query: &Query) -> Result<(String, Qualifier, bool), ApiError> {
    let (fref, q) = params.qualified_function(query.get("Qualifier"))?;
    let given = fref.qualifier.is_some() || query.get("Qualifier").is_some_and(|q| !q.is_empty());
    Ok((fref.name, q, given))
}

pub async fn get_function(
    State(st): State<AppState>,
    params: Params,
    query: Query,
    headers: axum::http::HeaderMap,
) -> ApiResult {
    let (name, q, given) = resolve(&params, &query)?;
    let latest = given.then(|| name.clone()).filter(|_| q == Qualifier::latest());
    let state = st.clone();
    let out = st
        .blocking(move |s| {
            let rec = s.registry.get_function(&name, &q)?;
            let tags = s.registry.function_tags(&name)?;
            let reserved = s.registry.get_reserved_concurrency(&name)?;
            let mut out = Map::new();
            out.insert(
                "Configuration".into(),
                serde_json::to_value(configuration_as(s, &rec, &q)).unwrap_or_default(),
            );
            let code = match &rec.spec.image {
                Some(image) => {
                    let mut code = json!({"RepositoryType": "ECR", "ImageUri": image.uri});
                    if let Some(p) = &image.pulled {
                        code["ResolvedImageUri"] = json!(p.resolved_uri);
                    }
                    code
                }
                // lamb keeps no code in S3: a presigned URL on lamb's own listener.
                None => {
                    let location = crate::code_location::presign(
                        &state,
                        &headers,
                        BundleKind::Function,
                        &rec.code.digest,
                        time::OffsetDateTime::now_utc(),
                    );
                    json!({"RepositoryType": "S3", "Location": location})
                }
            };
            out.insert("Code".into(), code);
            // AWS leaves `Tags` out when there are none (the recorded
            // test_lambda_code_location_zipfile).
            if !tags.is_empty() {
                out.insert("Tags".into(), json!(tags));
            }
            if let Some(n) = reserved {
                out.insert("Concurrency".into(), json!({"ReservedConcurrentExecutions": n}));
            }
            Ok(Value::Object(out))
        })
        .await
        .map_err(|e| named_latest(&st, latest.as_deref(), e))?;
    Ok(json(200, &out))
}

/// A Get that named `$LATEST` outright is answered a not-found naming it, as
/// AWS's is (`latest`: the function's name then).
fn named_latest(st: &AppState, latest: Option<&str>, e: ApiError) -> ApiError {
    match latest {
        Some(name) => super::invoke::name_latest(&st.ctx, name, e),
        None => e,
    }
}

/// A version's configuration as asked for: through an alias, AWS names the
/// alias in `FunctionArn` (the recorded test_alias_lifecycle).
fn configuration_as(s: &Shared, rec: &lamb_store::FunctionRecord, q: &Qualifier) -> lamb_types::FunctionConfiguration {
    let mut c = rec.configuration(&s.ctx);
    if let Qualifier::Alias(_) = q {
        c.function_arn = s.ctx.qualified_function_arn(&rec.name, q);
    }
    crate::snapstart::show_state(s, &mut c);
    c
}

pub async fn get_configuration(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (name, q, given) = resolve(&params, &query)?;
    let latest = given.then(|| name.clone()).filter(|_| q == Qualifier::latest());
    let asked = q.clone();
    let rec = st
        .blocking(move |s| Ok(s.registry.get_function(&name, &q)?))
        .await
        .map_err(|e| named_latest(&st, latest.as_deref(), e))?;
    Ok(json(200, &configuration_as(&st, &rec, &asked)))
}

pub async fn update_code(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let name = params.unqualified_function()?;
    let req: UpdateFunctionCodeRequest = parse_with_architectures(&body)?;
    drop(body);
    tracing::info!(function = %name, publish = req.publish, "update function code");
    let mut code = FunctionCode {
        zip_file: req.zip_file,
        s3_bucket: req.s3_bucket,
        s3_key: req.s3_key,
        s3_object_version: req.s3_object_version,
        image_uri: req.image_uri,
    };
    s3_inline(&st, &mut code).await?;
    let rec = st
        .blocking(move |s| {
            let current = s.registry.get_function(&name, &Qualifier::latest())?;
            if current.spec.image.is_some() {
                return update_image(s, &name, &code, req.architectures, req.revision_id, req.dry_run);
            }
            let zip = zip_file(&code)?;
            let runtime = current.spec.runtime.as_deref().unwrap_or_default();
            s.rules(&[]).runtime_change(runtime, Change::Update)?;
            if let Some(a) = &req.architectures {
                validate_architectures(a)?;
            }
            if req.dry_run {
                s.rules(&[]).zipped_size(zip.len() as u64)?;
                return Ok(current);
            }
            let other: u64 = current.layers.iter().map(|l| l.unzipped_size).sum();
            let bundle = put_bundle(s, BundleKind::Function, zip, other)?;
            let rec = s.registry.update_function_code(
                &name,
                CodeUpdate {
                    code: CodeInfo::from(&bundle),
                    architectures: req.architectures,
                    publish: req.publish,
                    revision_id: req.revision_id,
                },
            )?;
            drop(bundle);
            crate::snapstart::keep(s, &rec);
            Ok(rec)
        })
        .await?;
    if rec.spec.image.is_some() && rec.last_update_status == lamb_types::LastUpdateStatus::InProgress {
        crate::images::start_pull(&st, rec.name.clone(), rec.revision_id.clone());
    }
    // With Publish, the answer is the new version (the recorded
    // test_publish_with_update).
    let written = if rec.version.is_latest() {
        Written::Updated
    } else {
        Written::Created
    };
    let mut out = rec.configuration(&st.ctx);
    crate::snapstart::show_state(&st, &mut out);
    Ok(json(200, &as_written(out, written)))
}

/// UpdateFunctionCode of an Image function: the new URI stored, its pull
/// started by the caller (`LastUpdateStatus: InProgress`).
fn update_image(
    s: &Shared,
    name: &str,
    code: &FunctionCode,
    architectures: Option<Vec<lamb_types::Architecture>>,
    revision_id: Option<String>,
    dry_run: bool,
) -> Result<FunctionRecord, ApiError> {
    image_uri(code)?;
    if let Some(a) = &architectures {
        validate_architectures(a)?;
    }
    let current = s.registry.get_function(name, &Qualifier::latest())?;
    crate::images::check_not_pulling(&current, &s.ctx)?;
    if dry_run {
        return Ok(current);
    }
    let image = lamb_types::FunctionImage {
        uri: code.image_uri.clone().unwrap_or_default(),
        // Invocations keep the image pulled before until the new one is in.
        pulled: current.spec.image.as_ref().and_then(|i| i.pulled.clone()),
        ..Default::default()
    };
    Ok(s.registry
        .update_function_image(name, image, architectures, revision_id.as_deref())?)
}

pub async fn update_configuration(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let name = params.unqualified_function()?;
    let req: UpdateFunctionConfigurationRequest = parse_json(&body)?;
    let rec = st
        .blocking(move |s| {
            let current = s.registry.get_function(&name, &Qualifier::latest())?;
            crate::images::check_not_pulling(&current, &s.ctx)?;
            let mut spec = current.spec.clone();
            spec.apply_update(&req);
            let runtimes = s.runtimes();
            let rules = s.rules(&runtimes);
            // The runtime the function will have: moving off a blocked one
            // is how AWS expects it to be updated.
            rules.runtime_change(spec.runtime.as_deref().unwrap_or_default(), Change::Update)?;
            rules.function_spec(&spec, &mut |a| layer_exists(s, a))?;
            s.filesystems.check(&s.ctx, &spec.file_system_configs)?;
            rules.unzipped_total(current.code.unzipped_size + layers_unzipped(s, &spec.layers))?;
            Ok(s.registry
                .update_function_configuration(&name, spec, req.revision_id.as_deref())?)
        })
        .await?;
    Ok(json(200, &as_written(rec.configuration(&st.ctx), Written::Updated)))
}

pub async fn delete(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (name, q, given) = resolve(&params, &query)?;
    let version = match (given, q) {
        (false, _) => None,
        (true, Qualifier::Version(Version::Published(n))) => Some(n),
        (true, Qualifier::Version(Version::Latest)) => {
            return Err(LambdaError::invalid_parameter(
                "$LATEST version cannot be deleted without deleting the function.",
            )
            .into())
        }
        (true, Qualifier::Alias(_)) => {
            // A missing function is answered first, unqualified (the recorded
            // test_function_name_and_qualifier_validation[lowercase_latest_qualifier-delete_function]).
            let function = name.clone();
            st.blocking(move |s| Ok(s.registry.get_function(&function, &Qualifier::latest())?))
                .await?;
            return Err(LambdaError::invalid_parameter(
                "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias.",
            )
            .into());
        }
    };
    tracing::info!(function = %name, ?version, "delete function");
    let deleted = name.clone();
    st.blocking(move |s| {
        s.registry.delete_function(&name, version)?;
        collect_garbage(s);
        Ok(())
    })
    .await?;
    st.invoker.forget(&deleted, version);
    Ok(no_content())
}

fn page_json(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert(key.into(), Value::Array(items));
    if let Some(m) = next {
        out.insert("NextMarker".into(), Value::String(m));
    }
    Value::Object(out)
}

pub(super) fn page_response<T: serde::Serialize>(
    key: &str,
    items: &[T],
    next: Option<String>,
) -> axum::response::Response {
    let items = items
        .iter()
        .map(|i| serde_json::to_value(i).unwrap_or_default())
        .collect();
    json(200, &page_json(key, items, next))
}

/// A version as ListFunctions and ListVersionsByFunction list it: AWS
/// leaves out the state members and `RuntimeVersionConfig`, and in a list
/// of versions (`FunctionVersion=ALL`, ListVersionsByFunction) names
/// `$LATEST` by its qualified ARN (the recorded test_list_functions and
/// test_publish_version_on_create).
fn list_item(rec: &lamb_store::FunctionRecord, ctx: &lamb_types::ArnContext, versions: bool) -> Value {
    let mut c = rec.configuration(ctx);
    if versions && c.version == "$LATEST" {
        c.function_arn = format!("{}:$LATEST", c.function_arn);
    }
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Value::Object(m) = &mut v {
        for key in [
            "State",
            "StateReason",
            "StateReasonCode",
            "LastUpdateStatus",
            "LastUpdateStatusReason",
            "LastUpdateStatusReasonCode",
            "RuntimeVersionConfig",
        ] {
            m.remove(key);
        }
    }
    v
}

pub async fn list(State(st): State<AppState>, query: Query) -> ApiResult {
    let all = match query.get("FunctionVersion") {
        None | Some("") => false,
        Some("ALL") => true,
        Some(other) => {
            return Err(LambdaError::validation(format!(
                "1 validation error detected: Value '{other}' at 'functionVersion' failed to satisfy \
                 constraint: Member must satisfy enum value set: [ALL]"
            ))
            .into())
        }
    };
    let request = query.page()?;
    let page = st
        .blocking(move |s| Ok(s.registry.list_functions(all, request.request())?))
        .await?;
    let items: Vec<_> = page.items.iter().map(|r| list_item(r, &st.ctx, all)).collect();
    Ok(page_response("Functions", &items, page.next_marker))
}

pub async fn publish_version(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let name = params.unqualified_function()?;
    let req: PublishVersionRequest = parse_json(&body)?;
    if let Some(d) = &req.description {
        lamb_types::validate::validate_description(d)?;
    }
    let rec = st
        .blocking(move |s| {
            let latest = s.registry.get_function(&name, &Qualifier::latest())?;
            crate::images::check_not_pulling(&latest, &s.ctx)?;
            let rec = s.registry.publish_version(&name, &req)?;
            crate::snapstart::keep(s, &rec);
            Ok(rec)
        })
        .await?;
    tracing::info!(function = %rec.name, version = %rec.version, "published version");
    let mut out = rec.configuration(&st.ctx);
    crate::snapstart::show_state(&st, &mut out);
    Ok(json(201, &out))
}

pub async fn list_versions(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let name = params.unqualified_function()?;
    let request = query.page()?;
    let page = st
        .blocking(move |s| Ok(s.registry.list_versions(&name, request.request())?))
        .await?;
    let items: Vec<_> = page.items.iter().map(|r| list_item(r, &st.ctx, true)).collect();
    Ok(page_response("Versions", &items, page.next_marker))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamb_types::{FunctionConfiguration, LastUpdateStatus, State};

    /// The recorded test_function_lifecycle: a create answers `Pending`
    /// without `LastUpdateStatus`, an update `InProgress`, both "being
    /// created"; an image still pulling keeps what its pull says.
    #[test]
    fn a_write_answers_the_state_its_work_starts_from() {
        let created = as_written(FunctionConfiguration::default(), Written::Created);
        assert_eq!(created["State"], "Pending");
        assert_eq!(created["StateReason"], "The function is being created.");
        assert_eq!(created["StateReasonCode"], "Creating");
        assert!(created.get("LastUpdateStatus").is_none(), "{created}");
        let updated = as_written(FunctionConfiguration::default(), Written::Updated);
        assert_eq!(updated["State"], "Active");
        assert_eq!(updated["LastUpdateStatus"], "InProgress");
        assert_eq!(updated["LastUpdateStatusReasonCode"], "Creating");
        let failed = FunctionConfiguration {
            state: State::Failed,
            last_update_status: LastUpdateStatus::Failed,
            ..Default::default()
        };
        let v = as_written(failed.clone(), Written::Updated);
        assert_eq!(
            (v["State"].as_str(), v["LastUpdateStatus"].as_str()),
            (Some("Failed"), Some("Failed"))
        );
        assert_eq!(as_written(failed, Written::Created)["State"], "Failed");
    }
}
