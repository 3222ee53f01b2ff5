//! Resource-based policies: AddPermission, GetPolicy and RemovePermission of
//! a function (per qualifier), AddLayerVersionPermission,
//! GetLayerVersionPolicy and RemoveLayerVersionPermission of a layer
//! version. Each policy is one document in the registry with its own
//! `RevisionId`; a write replaces only the revision it read, so two
//! concurrent writers cannot lose each other's statements. The URL listener
//! reads a function's policy through [`url_policy`].

use super::layers::version_number;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use lamb_store::{Document, Expect};
use lamb_types::arn::parse_layer_name;
use lamb_types::policy::{AddLayerVersionPermissionRequest, AddPermissionRequest, Policy};
use lamb_types::{ErrorKind, LambdaError, Qualifier};
use serde_json::json;

/// The kind a function's policy is stored under: one per qualifier, `""`
/// for the unqualified function.
fn policy_kind(q: Option<&Qualifier>) -> String {
    format!("policy:{}", q.map(ToString::to_string).unwrap_or_default())
}

/// The layer version a layer policy belongs to.
fn layer_key(name: &str, version: u64) -> String {
    format!("{name}:{version}")
}

const LAYER_POLICY: &str = "layer-policy";

fn no_policy() -> ApiError {
    LambdaError::not_found("No policy is associated with the given resource.").into()
}

/// A `RevisionId` given with the request must be the policy's current one.
fn check_revision(given: Option<&str>, current: Option<&Document>) -> Result<(), ApiError> {
    match given {
        Some(want) if current.map(|d| d.revision_id.as_str()) != Some(want) => Err(LambdaError::new(
            ErrorKind::PreconditionFailed,
            "The Revision Id provided does not match the latest Revision Id. \
             Call the GetPolicy API to retrieve the latest Revision Id",
        )
        .into()),
        _ => Ok(()),
    }
}

/// Runs a policy's read-modify-write again when another writer got in
/// between (the store refuses the stale revision it read), so concurrent
/// AddPermission calls all land; a caller's own `RevisionId` is never
/// retried.
fn with_retries<T>(given: bool, mut f: impl FnMut() -> Result<T, ApiError>) -> Result<T, ApiError> {
    let mut tries = 0;
    loop {
        match f() {
            Err(ApiError::Lambda(e)) if !given && e.kind == ErrorKind::PreconditionFailed && tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// The function and qualifier (`None`: unqualified; `$LATEST` is the
/// unqualified function) a policy request names.
fn function_target(params: &Params, query: &Query) -> Result<(String, Option<Qualifier>), ApiError> {
    let fref = params.function_ref()?;
    let q = fref.merge_qualifier(query.get("Qualifier"))?;
    let q = (q != Qualifier::latest()).then_some(q);
    Ok((fref.name, q))
}

pub async fn add_permission(State(st): State<AppState>, params: Params, query: Query, body: Bytes) -> ApiResult {
    let req: AddPermissionRequest = parse_json(&body)?;
    req.validate()?;
    let (name, q) = function_target(&params, &query)?;
    let latest = |q: Option<&str>| q == Some("$LATEST");
    if latest(query.get("Qualifier"))
        || latest(req.qualifier.as_deref())
        || params.function_ref()?.qualifier == Some(Qualifier::latest())
    {
        return Err(LambdaError::invalid_parameter("We currently do not support adding policies for $LATEST.").into());
    }
    let given = req.revision_id.is_some();
    let statement = st
        .blocking(move |s| {
            with_retries(given, || {
                let resource = match &q {
                    Some(q) => {
                        s.registry.get_function(&name, q)?;
                        s.ctx.qualified_function_arn(&name, q)
                    }
                    None => s.ctx.function_arn(&name),
                };
                let kind = policy_kind(q.as_ref());
                let current = s.registry.function_document(&name, &kind)?;
                check_revision(req.revision_id.as_deref(), current.as_ref())?;
                let mut policy = current.as_ref().map_or(Policy::parse(""), |d| Policy::parse(&d.body));
                let statement = req.statement(&resource);
                policy.add(statement.clone())?;
                let read = current.as_ref().map(|d| d.revision_id.as_str());
                s.registry
                    .put_function_document(&name, &kind, Some(&policy.to_document()), Expect::Revision(read))?;
                Ok(statement)
            })
        })
        .await?;
    Ok(json(201, &json!({ "Statement": statement.to_string() })))
}

pub async fn get_policy(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (name, q) = function_target(&params, &query)?;
    let doc = st
        .blocking(move |s| Ok(s.registry.function_document(&name, &policy_kind(q.as_ref()))?))
        .await?
        .ok_or_else(|| ApiError::from(LambdaError::not_found("The resource you requested does not exist.")))?;
    Ok(json(200, &json!({ "Policy": doc.body, "RevisionId": doc.revision_id })))
}

pub async fn remove_permission(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (name, q) = function_target(&params, &query)?;
    let sid = params.sub_resource().to_owned();
    let given = query.get("RevisionId").map(str::to_owned);
    st.blocking(move |s| {
        with_retries(given.is_some(), || {
            let kind = policy_kind(q.as_ref());
            let current = s.registry.function_document(&name, &kind)?.ok_or_else(no_policy)?;
            check_revision(given.as_deref(), Some(&current))?;
            let mut policy = Policy::parse(&current.body);
            policy.remove(&sid)?;
            let body = (!policy.statements.is_empty()).then(|| policy.to_document());
            let read = Expect::Revision(Some(&current.revision_id));
            s.registry.put_function_document(&name, &kind, body.as_deref(), read)?;
            Ok(())
        })
    })
    .await?;
    Ok(no_content())
}

/// Whether the policy of the function (or of the alias) that a URL invokes
/// lets anyone call it through an `AuthType NONE` URL.
pub fn url_policy(s: &Shared, function: &str, alias: Option<&str>) -> Result<bool, ApiError> {
    let q = alias.map(|a| Qualifier::Alias(a.to_owned()));
    Ok(s.registry
        .function_document(function, &policy_kind(q.as_ref()))?
        .is_some_and(|d| Policy::parse(&d.body).grants_public_url_access()))
}

/// The layer version of a layer policy path, which must exist.
fn layer_target(s: &Shared, name: &str, version: u64) -> Result<String, ApiError> {
    s.registry.get_layer_version(name, version)?;
    Ok(layer_key(name, version))
}

pub async fn add_layer_permission(State(st): State<AppState>, params: Params, query: Query, body: Bytes) -> ApiResult {
    let name = parse_layer_name(params.resource())?;
    let version = version_number(params.sub_resource())?;
    let req: AddLayerVersionPermissionRequest = parse_json(&body)?;
    req.validate()?;
    let given = query.get("RevisionId").map(str::to_owned);
    let (statement, revision) = st
        .blocking(move |s| {
            with_retries(given.is_some(), || {
                let key = layer_target(s, &name, version)?;
                let current = s.registry.document(LAYER_POLICY, &key)?;
                check_revision(given.as_deref(), current.as_ref())?;
                let mut policy = current.as_ref().map_or(Policy::parse(""), |d| Policy::parse(&d.body));
                let statement = req.statement(&s.ctx.layer_version_arn(&name, version));
                policy.add(statement.clone())?;
                let read = current.as_ref().map(|d| d.revision_id.as_str());
                let revision =
                    s.registry
                        .put_document(LAYER_POLICY, &key, Some(&policy.to_document()), Expect::Revision(read))?;
                Ok((statement, revision))
            })
        })
        .await?;
    Ok(json(
        201,
        &json!({ "Statement": statement.to_string(), "RevisionId": revision }),
    ))
}

pub async fn get_layer_policy(State(st): State<AppState>, params: Params) -> ApiResult {
    let name = parse_layer_name(params.resource())?;
    let version = version_number(params.sub_resource())?;
    let doc = st
        .blocking(move |s| {
            let key = layer_target(s, &name, version)?;
            Ok(s.registry.document(LAYER_POLICY, &key)?)
        })
        .await?
        .ok_or_else(no_policy)?;
    Ok(json(200, &json!({ "Policy": doc.body, "RevisionId": doc.revision_id })))
}

pub async fn remove_layer_permission(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let name = parse_layer_name(params.resource())?;
    let version = version_number(params.sub_resource())?;
    let sid = params.0.get(2).cloned().unwrap_or_default();
    let given = query.get("RevisionId").map(str::to_owned);
    st.blocking(move |s| {
        with_retries(given.is_some(), || {
            let key = layer_target(s, &name, version)?;
            let current = s.registry.document(LAYER_POLICY, &key)?.ok_or_else(no_policy)?;
            check_revision(given.as_deref(), Some(&current))?;
            let mut policy = Policy::parse(&current.body);
            policy.remove(&sid)?;
            let body = (!policy.statements.is_empty()).then(|| policy.to_document());
            let read = Expect::Revision(Some(&current.revision_id));
            s.registry.put_document(LAYER_POLICY, &key, body.as_deref(), read)?;
            Ok(())
        })
    })
    .await?;
    Ok(no_content())
}
