//! lamb's signed endpoints for schedules (EventBridge has its own API;
//! lamb keeps schedules next to the functions):
//!
//! - `GET /lamb/schedules`: `{"Schedules":[...]}`
//! - `POST /lamb/schedules` `{"Name","FunctionName","Expression"}`: adds or
//!   replaces one; `FunctionName` may carry `:qualifier`.
//! - `DELETE /lamb/schedules/{name}`.

use super::expr::Schedule;
use crate::error::ApiResult;
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, no_content, parse_json};
use axum::body::Bytes;
use axum::extract::State;
use lamb_store::ScheduleRecord;
use lamb_types::{FunctionRef, LambdaError, Qualifier, Version};
use serde::{Deserialize, Serialize};

pub const SCHEDULES_PATH: &str = "/lamb/schedules";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScheduleConfig {
    pub name: String,
    pub function_name: String,
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_arn: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListSchedulesResponse {
    pub schedules: Vec<ScheduleConfig>,
}

fn shape(ctx: &lamb_types::ArnContext, r: &ScheduleRecord) -> ScheduleConfig {
    ScheduleConfig {
        name: r.name.clone(),
        function_name: r.function.clone(),
        expression: r.expression.clone(),
        qualifier: r.qualifier.clone(),
        rule_arn: Some(format!(
            "arn:{}:events:{}:{}:rule/{}",
            ctx.partition, ctx.region, ctx.account, r.name
        )),
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

pub async fn list(State(st): State<AppState>) -> ApiResult {
    let out = st
        .blocking(|s| {
            let items = s.registry.list_schedules()?;
            Ok(ListSchedulesResponse {
                schedules: items.iter().map(|r| shape(&s.ctx, r)).collect(),
            })
        })
        .await?;
    Ok(json(200, &out))
}

pub async fn add(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let req: ScheduleConfig = parse_json(&body)?;
    if !valid_name(&req.name) {
        return Err(LambdaError::invalid_parameter(format!(
            "schedule name '{}' must be 1 to 64 letters, digits, '.', '-' or '_'",
            req.name
        ))
        .into());
    }
    Schedule::parse(&req.expression).map_err(|e| LambdaError::invalid_parameter(e.to_string()))?;
    let fref = FunctionRef::parse(&req.function_name)?;
    let qualifier = match fref.merge_qualifier(req.qualifier.as_deref())? {
        Qualifier::Version(Version::Latest) => None,
        q => Some(q.to_string()),
    };
    let record = ScheduleRecord {
        name: req.name,
        function: fref.name,
        qualifier,
        expression: req.expression.trim().to_owned(),
        created_ms: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
    };
    let out = st
        .blocking(move |s| {
            if let Some(q) = &record.qualifier {
                s.registry.get_function(&record.function, &Qualifier::parse(q)?)?;
            }
            s.registry.put_schedule(&record)?;
            Ok(shape(&s.ctx, &record))
        })
        .await?;
    Ok(json(201, &out))
}

pub async fn remove(State(st): State<AppState>, params: Params) -> ApiResult {
    let name = params.resource().to_owned();
    st.blocking(move |s| Ok(s.registry.delete_schedule(&name)?)).await?;
    Ok(no_content())
}
