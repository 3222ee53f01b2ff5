//! Reserved concurrency (Put, Get, Delete) and GetAccountSettings; both
//! count provisioned concurrency (`super::provisioned`) as Lambda does.

use crate::error::ApiResult;
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, no_content, parse_json};
use axum::body::Bytes;
use axum::extract::State;
use lamb_store::PageRequest;
use lamb_types::{Concurrency, LambdaError};
use serde_json::json;

/// The function of a concurrency path: a version or alias is Lambda's own
/// refusal, not the pattern's (the recorded
/// test_function_concurrency_exceptions).
fn function_only(params: &Params) -> Result<String, crate::error::ApiError> {
    if params.function_ref().is_ok_and(|f| f.qualifier.is_some()) {
        return Err(LambdaError::invalid_parameter(
            "This operation is permitted on Lambda functions only. Aliases and versions do not support this \
             operation. Please specify either a function name or an unqualified function ARN.",
        )
        .into());
    }
    params.unqualified_function()
}

pub async fn put(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let function = function_only(&params)?;
    let req: Concurrency = parse_json(&body)?;
    let n = req
        .reserved_concurrent_executions
        .ok_or_else(|| LambdaError::invalid_parameter("ReservedConcurrentExecutions is required"))?;
    st.blocking(move |s| {
        // Put names the missing function's $LATEST, unlike Get and Delete.
        s.registry.get_reserved_concurrency(&function).map_err(|e| {
            if e.to_lambda().kind == lamb_types::ErrorKind::ResourceNotFound {
                LambdaError::not_found(format!("Function not found: {}:$LATEST", s.ctx.function_arn(&function))).into()
            } else {
                crate::error::ApiError::from(e)
            }
        })?;
        let provisioned: u64 = s
            .registry
            .list_provisioned_concurrency(Some(&function))?
            .iter()
            .map(|p| u64::from(p.requested))
            .sum();
        if provisioned > u64::from(n) {
            return Err(LambdaError::invalid_parameter(format!(
                "ReservedConcurrentExecutions {n} should not be lower than function's total provisioned concurrency [{provisioned}]."
            ))
            .into());
        }
        // Others' provisioned concurrency without a reservation is taken
        // from the unreserved pool as well.
        let others = s.registry.total_reserved_concurrency(Some(&function))?
            + s.registry.total_provisioned_unreserved(Some(&function))?;
        s.rules(&[]).reserved_concurrency(n, others)?;
        Ok(s.registry.put_reserved_concurrency(&function, n)?)
    })
    .await?;
    Ok(json(200, &json!({"ReservedConcurrentExecutions": n})))
}

pub async fn get(State(st): State<AppState>, params: Params) -> ApiResult {
    let function = params.unqualified_function()?;
    let n = st
        .blocking(move |s| Ok(s.registry.get_reserved_concurrency(&function)?))
        .await?;
    Ok(json(
        200,
        &Concurrency {
            reserved_concurrent_executions: n,
        },
    ))
}

pub async fn delete(State(st): State<AppState>, params: Params) -> ApiResult {
    let function = params.unqualified_function()?;
    st.blocking(move |s| Ok(s.registry.delete_reserved_concurrency(&function)?))
        .await?;
    Ok(no_content())
}

/// Counts functions page by page (the registry has no count).
pub(super) fn count_functions(s: &crate::state::Shared) -> Result<u64, crate::error::ApiError> {
    let mut count = 0u64;
    let mut marker: Option<String> = None;
    loop {
        let page = s.registry.list_functions(
            false,
            PageRequest {
                marker: marker.as_deref(),
                max_items: 10_000,
            },
        )?;
        count += page.items.len() as u64;
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => return Ok(count),
        }
    }
}

pub async fn account_settings(State(st): State<AppState>) -> ApiResult {
    let out = st
        .blocking(|s| {
            let l = &s.limits;
            // Provisioned concurrency of unreserved functions is out of the
            // unreserved pool too.
            let reserved =
                s.registry.total_reserved_concurrency(None)? + s.registry.total_provisioned_unreserved(None)?;
            Ok(json!({
                "AccountLimit": {
                    "TotalCodeSize": l.total_code_size,
                    "CodeSizeUnzipped": l.max_unzipped_bytes,
                    "CodeSizeZipped": l.max_zipped_bytes,
                    "ConcurrentExecutions": l.concurrent_executions,
                    "UnreservedConcurrentExecutions": u64::from(l.concurrent_executions).saturating_sub(reserved),
                },
                "AccountUsage": {
                    "TotalCodeSize": s.registry.total_code_size()?,
                    "FunctionCount": count_functions(s)?,
                },
            }))
        })
        .await?;
    Ok(json(200, &out))
}
