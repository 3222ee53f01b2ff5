//! Put, Get, Delete and ListProvisionedConcurrencyConfigs. The registry
//! keeps the requested count; the engine says how many sandboxes are up
//! (`Allocated`, `Available`, `Status`), or in a cluster the sum over the
//! nodes; `crate::provisioned::sync` moves the engine after every change.

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::{json, no_content, parse_json, Params, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use lamb_store::ProvisionedConcurrencyRecord;
use lamb_types::{LambdaError, Qualifier, Version};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn routes() -> Router<AppState> {
    Router::new().route(
        "/2019-09-30/functions/{name}/provisioned-concurrency",
        get(get_or_list).put(put).delete(delete),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutRequest {
    provisioned_concurrent_executions: Option<i64>,
}

/// The function and its qualifier, which must name a published version or
/// an alias; `latest` is AWS's answer for `$LATEST` (Put's differs from
/// Get's and Delete's).
fn target(params: &Params, query: &Query, latest: &str) -> Result<(String, String), ApiError> {
    let fref = params.function_ref()?;
    match fref.merge_qualifier(query.get("Qualifier"))? {
        Qualifier::Version(Version::Latest) => Err(LambdaError::invalid_parameter(latest).into()),
        q => Ok((fref.name, q.to_string())),
    }
}

const NOT_AN_ALIAS_OR_VERSION: &str = "The function resource provided must be an alias or a published version.";
const UNPUBLISHED: &str = "Provisioned Concurrency Configs cannot be applied to unpublished function versions.";

/// The published version the qualifier stands for, found or not found as
/// the registry says.
fn resolve(s: &Shared, function: &str, qualifier: &str) -> Result<Version, ApiError> {
    let q = Qualifier::parse(qualifier)?;
    Ok(s.registry.get_function(function, &q)?.version)
}

/// AWS's answer to Put/Get: the count asked for and how far the engine is.
fn answer(s: &Shared, rec: &ProvisionedConcurrencyRecord, with_arn: bool) -> Value {
    let status = match &s.cluster {
        // The sum over the cluster's live nodes, each keeping its share.
        Some(cluster) => Some(cluster.provisioned.status(&rec.function, &rec.qualifier, rec.requested)),
        None => s.invoker.provisioned_status(&rec.function, &rec.qualifier),
    };
    let allocated = status.as_ref().map_or(0, |st| st.allocated);
    let state = status.as_ref().map_or("IN_PROGRESS", |st| st.state.name());
    let mut v = json!({
        "RequestedProvisionedConcurrentExecutions": rec.requested,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "Status": state,
        "LastModified": rec.last_modified,
    });
    if let Some(reason) = status.and_then(|st| st.reason) {
        v["StatusReason"] = reason.into();
    }
    if with_arn {
        let q = Qualifier::parse(&rec.qualifier).unwrap_or_else(|_| Qualifier::latest());
        v["FunctionArn"] = s.ctx.qualified_function_arn(&rec.function, &q).into();
    }
    v
}

/// AWS refuses a configuration on both an alias and the version it routes
/// to.
fn check_overlap(s: &Shared, function: &str, qualifier: &str, version: Version) -> Result<(), ApiError> {
    let Version::Published(_) = version else {
        return Err(LambdaError::invalid_parameter(UNPUBLISHED).into());
    };
    let others = s.registry.list_provisioned_concurrency(Some(function))?;
    let is_alias = matches!(Qualifier::parse(qualifier)?, Qualifier::Alias(_));
    for other in others.iter().filter(|o| o.qualifier != qualifier) {
        match Qualifier::parse(&other.qualifier)? {
            Qualifier::Version(v) if is_alias && v == version => {
                return Err(LambdaError::conflict(
                    "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version",
                )
                .into());
            }
            Qualifier::Alias(a) if !is_alias && s.registry.get_alias(function, &a)?.function_version == version => {
                return Err(LambdaError::conflict("Version is pointed by a Provisioned Concurrency alias").into());
            }
            _ => {}
        }
    }
    Ok(())
}

/// Provisioned concurrency fits in the function's reserved concurrency,
/// else in the account's unreserved pool above its minimum.
fn check_room(s: &Shared, function: &str, qualifier: &str, n: u32) -> Result<(), ApiError> {
    let others: u64 = s
        .registry
        .list_provisioned_concurrency(Some(function))?
        .iter()
        .filter(|o| o.qualifier != qualifier)
        .map(|o| u64::from(o.requested))
        .sum();
    if let Some(reserved) = s.registry.get_reserved_concurrency(function)? {
        if others + u64::from(n) > u64::from(reserved) {
            return Err(LambdaError::invalid_parameter(
                "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function",
            )
            .into());
        }
        return Ok(());
    }
    let l = &s.limits;
    let taken = s.registry.total_reserved_concurrency(None)?
        + s.registry.total_provisioned_unreserved(Some(function))?
        + others;
    let left = u64::from(l.concurrent_executions).saturating_sub(taken + u64::from(n));
    if taken + u64::from(n) > u64::from(l.concurrent_executions) || left < u64::from(l.min_unreserved_concurrency) {
        return Err(LambdaError::invalid_parameter(format!(
            "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below \
             its minimum value of [{}].",
            l.min_unreserved_concurrency
        ))
        .into());
    }
    Ok(())
}

/// `ProvisionedConcurrentExecutions`: required, at least 1.
fn requested(body: &[u8]) -> Result<u32, ApiError> {
    let req: PutRequest = parse_json(body)?;
    let n = req.provisioned_concurrent_executions.ok_or_else(|| {
        LambdaError::validation(
            "1 validation error detected: Value null at 'provisionedConcurrentExecutions' failed to satisfy \
             constraint: Member must not be null",
        )
    })?;
    if n < 1 {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{n}' at 'provisionedConcurrentExecutions' failed to satisfy \
             constraint: Member must have value greater than or equal to 1"
        ))
        .into());
    }
    u32::try_from(n).map_err(|_| LambdaError::invalid_parameter("ProvisionedConcurrentExecutions is too large").into())
}

pub async fn put(State(st): State<AppState>, params: Params, query: Query, body: Bytes) -> ApiResult {
    let (function, qualifier) = target(&params, &query, UNPUBLISHED)?;
    let n = requested(&body)?;
    let out = st
        .blocking(move |s| {
            let version = resolve(s, &function, &qualifier)?;
            check_overlap(s, &function, &qualifier, version)?;
            check_room(s, &function, &qualifier, n)?;
            let rec = s.registry.put_provisioned_concurrency(&function, &qualifier, n)?;
            crate::provisioned::sync(s, &function, &qualifier)?;
            Ok(answer(s, &rec, false))
        })
        .await?;
    Ok(json(202, &out))
}

pub async fn get_or_list(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    if query.get("List") == Some("ALL") {
        return list(st, params, query).await;
    }
    let (function, qualifier) = target(&params, &query, NOT_AN_ALIAS_OR_VERSION)?;
    let out = st
        .blocking(move |s| {
            resolve(s, &function, &qualifier)?;
            let rec = s
                .registry
                .get_provisioned_concurrency(&function, &qualifier)?
                .ok_or_else(|| {
                    LambdaError::new(
                        lamb_types::ErrorKind::ProvisionedConcurrencyConfigNotFound,
                        "No Provisioned Concurrency Config found for this function",
                    )
                })?;
            Ok(answer(s, &rec, false))
        })
        .await?;
    Ok(json(200, &out))
}

/// Marker: the qualifier of the page's first configuration (they come
/// sorted by qualifier).
async fn list(st: AppState, params: Params, query: Query) -> ApiResult {
    let function = params.unqualified_function()?;
    let page = query.page()?;
    let (items, next) = st
        .blocking(move |s| {
            resolve(s, &function, "$LATEST")?;
            let request = page.request();
            let limit = match request.max_items {
                0 => 50,
                n => n,
            };
            let mut all = s.registry.list_provisioned_concurrency(Some(&function))?;
            if let Some(m) = request.marker {
                all.retain(|r| r.qualifier.as_str() >= m);
            }
            let next = all.get(limit).map(|r| r.qualifier.clone());
            all.truncate(limit);
            Ok((all.iter().map(|r| answer(s, r, true)).collect::<Vec<_>>(), next))
        })
        .await?;
    Ok(super::functions::page_response(
        "ProvisionedConcurrencyConfigs",
        &items,
        next,
    ))
}

/// Deleting a configuration that is not there succeeds, as on AWS.
pub async fn delete(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (function, qualifier) = target(&params, &query, NOT_AN_ALIAS_OR_VERSION)?;
    st.blocking(move |s| {
        resolve(s, &function, &qualifier)?;
        s.registry.delete_provisioned_concurrency(&function, &qualifier)?;
        crate::provisioned::sync(s, &function, &qualifier)
    })
    .await?;
    Ok(no_content())
}
