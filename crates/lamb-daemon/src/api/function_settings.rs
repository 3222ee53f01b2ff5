//! A function's settings with operations of their own:
//! Put/GetFunctionRecursionConfig and Put/GetRuntimeManagementConfig. Each
//! is a function document in the registry (gone with the function). lamb
//! has one build of each runtime and no recursion detection, so both are
//! kept and answered, and change nothing else.

use crate::error::ApiResult;
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use lamb_store::Expect;
use lamb_types::{LambdaError, Qualifier};
use serde::Deserialize;
use serde_json::{json, Value};

const RECURSION: &str = "recursion";

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecursionRequest {
    #[serde(default)]
    recursive_loop: String,
}

pub async fn put_recursion(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let name = params.unqualified_function()?;
    let req: RecursionRequest = parse_json(&body)?;
    let value = req.recursive_loop;
    if value != "Allow" && value != "Terminate" {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{value}' at 'recursiveLoop' failed to satisfy constraint: \
             Member must satisfy enum value set: [Allow, Terminate]"
        ))
        .into());
    }
    let stored = value.clone();
    st.blocking(move |s| {
        Ok(s.registry
            .put_function_document(&name, RECURSION, Some(&stored), Expect::Any)?)
    })
    .await?;
    Ok(json(200, &json!({ "RecursiveLoop": value })))
}

/// `Terminate` unless set: Lambda's default.
pub async fn get_recursion(State(st): State<AppState>, params: Params) -> ApiResult {
    let name = params.unqualified_function()?;
    let doc = st
        .blocking(move |s| Ok(s.registry.function_document(&name, RECURSION)?))
        .await?;
    let value = doc.map_or_else(|| "Terminate".to_owned(), |d| d.body);
    Ok(json(200, &json!({ "RecursiveLoop": value })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RuntimeManagementRequest {
    #[serde(default)]
    update_runtime_on: String,
    runtime_version_arn: Option<String>,
}

/// The version a runtime management request names, which must exist, its
/// document kind and the ARN answered.
fn runtime_target(
    s: &crate::state::Shared,
    params: &Params,
    query: &Query,
) -> Result<(String, String, String), crate::error::ApiError> {
    let fref = params.function_ref()?;
    let q = fref.merge_qualifier(query.get("Qualifier"))?;
    if let Qualifier::Alias(_) = q {
        return Err(LambdaError::invalid_parameter("Qualifier must be $LATEST or a published version number.").into());
    }
    s.registry.get_function(&fref.name, &q)?;
    let given = fref.qualifier.is_some() || query.get("Qualifier").is_some_and(|q| !q.is_empty());
    let arn = if given {
        s.ctx.qualified_function_arn(&fref.name, &q)
    } else {
        s.ctx.function_arn(&fref.name)
    };
    Ok((fref.name, format!("runtime-management:{q}"), arn))
}

pub async fn put_runtime_management(
    State(st): State<AppState>,
    params: Params,
    query: Query,
    body: Bytes,
) -> ApiResult {
    let req: RuntimeManagementRequest = parse_json(&body)?;
    let mode = req.update_runtime_on.as_str();
    if !["Auto", "FunctionUpdate", "Manual"].contains(&mode) {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{mode}' at 'updateRuntimeOn' failed to satisfy constraint: \
             Member must satisfy enum value set: [Auto, Manual, FunctionUpdate]"
        ))
        .into());
    }
    match (mode, &req.runtime_version_arn) {
        ("Manual", None) => {
            return Err(LambdaError::invalid_parameter("RuntimeVersionArn is required for the Manual mode.").into())
        }
        ("Auto" | "FunctionUpdate", Some(_)) => {
            return Err(LambdaError::invalid_parameter(
                "RuntimeVersionArn can only be set with the Manual runtime update mode.",
            )
            .into())
        }
        _ => {}
    }
    let mut out = json!({ "UpdateRuntimeOn": mode });
    if let Some(a) = &req.runtime_version_arn {
        out["RuntimeVersionArn"] = json!(a);
    }
    let out = st
        .blocking(move |s| {
            let (name, kind, arn) = runtime_target(s, &params, &query)?;
            s.registry
                .put_function_document(&name, &kind, Some(&out.to_string()), Expect::Any)?;
            let mut out = out;
            out["FunctionArn"] = json!(arn);
            Ok(out)
        })
        .await?;
    Ok(json(200, &out))
}

/// `Auto` unless set, as Lambda's default.
pub async fn get_runtime_management(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let out = st
        .blocking(move |s| {
            let (name, kind, arn) = runtime_target(s, &params, &query)?;
            let mut out = match s.registry.function_document(&name, &kind)? {
                Some(d) => serde_json::from_str::<Value>(&d.body).unwrap_or_else(|_| json!({})),
                None => json!({ "UpdateRuntimeOn": "Auto" }),
            };
            out["FunctionArn"] = json!(arn);
            Ok(out)
        })
        .await?;
    Ok(json(200, &out))
}
