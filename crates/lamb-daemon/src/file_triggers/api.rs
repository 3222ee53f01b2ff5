//! lamb's own, signed endpoints for file triggers:
//!
//! - `POST /lamb/triggers` `{FunctionName, Qualifier?, Dir, Prefix?, Suffix?}`:
//!   `Dir` is a host path inside a served file system;
//! - `GET /lamb/triggers`;
//! - `DELETE /lamb/triggers/{id}`.

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::Params;
use crate::util::{json, parse_json};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{delete, get};
use axum::Router;
use lamb_store::{FileTriggerRecord, NewFileTrigger};
use lamb_types::{FunctionRef, LambdaError, Qualifier};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const TRIGGERS_PATH: &str = "/lamb/triggers";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerRequest {
    pub function_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    pub dir: String,
    #[serde(default)]
    pub prefix: String,
    #[serde(default)]
    pub suffix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggerResponse {
    pub id: String,
    pub function_name: String,
    pub qualifier: String,
    pub file_system: String,
    /// The watched directory on the host.
    pub dir: String,
    pub prefix: String,
    pub suffix: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TriggersResponse {
    pub triggers: Vec<TriggerResponse>,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(TRIGGERS_PATH, get(list).post(create))
        .route("/lamb/triggers/{id}", delete(remove))
}

fn response(s: &Shared, t: FileTriggerRecord) -> TriggerResponse {
    let dir = s
        .filesystems
        .get(&t.filesystem)
        .map(|root| root.join(&t.dir).display().to_string())
        .unwrap_or_default();
    TriggerResponse {
        id: t.id,
        function_name: t.function,
        qualifier: t.qualifier,
        file_system: t.filesystem,
        dir,
        prefix: t.prefix,
        suffix: t.suffix,
    }
}

/// The served file system `dir` lies in, and `dir` relative to its root.
fn locate(s: &Shared, dir: &str) -> Result<(String, String), ApiError> {
    let canonical: PathBuf = Path::new(dir)
        .canonicalize()
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| LambdaError::invalid_parameter(format!("Dir '{dir}' is not a directory on the lamb host")))?;
    let (fs, rel) = s.filesystems.locate(&canonical).ok_or_else(|| {
        LambdaError::invalid_parameter(format!(
            "Dir '{dir}' is in no served file system (lamb serve --filesystem NAME=PATH)"
        ))
    })?;
    let rel = rel
        .to_str()
        .ok_or_else(|| LambdaError::invalid_parameter(format!("Dir '{dir}' is not UTF-8")))?
        .to_owned();
    Ok((fs.to_owned(), rel))
}

async fn create(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let req: TriggerRequest = parse_json(&body)?;
    let out = st
        .blocking(move |s| {
            let name = FunctionRef::parse_unqualified(&req.function_name)?;
            let qualifier = match req.qualifier.as_deref() {
                None | Some("") => "$LATEST".to_owned(),
                Some(q) => Qualifier::parse(q)?.to_string(),
            };
            s.registry.get_function(&name, &Qualifier::parse(&qualifier)?)?;
            let (filesystem, dir) = locate(s, &req.dir)?;
            let rec = s.registry.create_file_trigger(NewFileTrigger {
                function: name,
                qualifier,
                filesystem,
                dir,
                prefix: req.prefix,
                suffix: req.suffix,
            })?;
            Ok(response(s, rec))
        })
        .await?;
    Ok(json(201, &out))
}

async fn list(State(st): State<AppState>) -> ApiResult {
    let out = st
        .blocking(|s| {
            let triggers = s.registry.list_file_triggers()?;
            Ok(TriggersResponse {
                triggers: triggers.into_iter().map(|t| response(s, t)).collect(),
            })
        })
        .await?;
    Ok(json(200, &out))
}

async fn remove(State(st): State<AppState>, params: Params) -> ApiResult {
    let id = params.resource().to_owned();
    st.blocking(move |s| Ok(s.registry.delete_file_trigger(&id)?)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}
