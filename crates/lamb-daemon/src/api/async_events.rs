//! Put, Update, Get, Delete and ListFunctionEventInvokeConfigs (spec 3.4),
//! and `GET .../lamb-events`, the queue of one function for `lamb events`.

use super::functions::page_response;
use crate::error::{ApiError, ApiResult};
use crate::events::validate_destination;
use crate::state::AppState;
use crate::util::Params;
use crate::util::{json, no_content, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use lamb_types::validate::validate_event_invoke_config;
use lamb_types::{PutFunctionEventInvokeConfigRequest, Qualifier};
use serde::Serialize;

/// lamb's own endpoint: the queued, running and failed events of a function.
pub const EVENTS_PATH: &str = "/2015-03-31/functions/{name}/lamb-events";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/2019-09-25/functions/{name}/event-invoke-config",
            get(get_config).put(put).post(update).delete(delete),
        )
        .route("/2019-09-25/functions/{name}/event-invoke-config/list", get(list))
        .route(EVENTS_PATH, get(events))
}

fn target(params: &Params, query: &Query) -> Result<(String, Qualifier), ApiError> {
    let fref = params.function_ref()?;
    let q = fref.merge_qualifier(query.get("Qualifier"))?;
    Ok((fref.name, q))
}

fn validate(function: &str, req: &PutFunctionEventInvokeConfigRequest) -> Result<(), ApiError> {
    validate_event_invoke_config(req)?;
    let Some(d) = &req.destination_config else {
        return Ok(());
    };
    if let Some(arn) = d.on_success.as_ref().and_then(|o| o.destination.as_deref()) {
        validate_destination("destinationConfig.onSuccess.destination", arn, function)?;
    }
    if let Some(arn) = d.on_failure.as_ref().and_then(|o| o.destination.as_deref()) {
        validate_destination("destinationConfig.onFailure.destination", arn, function)?;
    }
    Ok(())
}

async fn store(st: AppState, params: Params, query: Query, body: Bytes, merge: bool) -> ApiResult {
    let (function, q) = target(&params, &query)?;
    let req: PutFunctionEventInvokeConfigRequest = parse_json(&body)?;
    validate(&function, &req)?;
    let rec = st
        .blocking(move |s| Ok(s.registry.put_event_invoke_config(&function, &q, &req, merge)?))
        .await?;
    Ok(json(200, &rec.configuration(&st.ctx)))
}

pub async fn put(State(st): State<AppState>, params: Params, query: Query, body: Bytes) -> ApiResult {
    store(st, params, query, body, false).await
}

pub async fn update(State(st): State<AppState>, params: Params, query: Query, body: Bytes) -> ApiResult {
    store(st, params, query, body, true).await
}

pub async fn get_config(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (function, q) = target(&params, &query)?;
    let rec = st
        .blocking(move |s| Ok(s.registry.get_event_invoke_config(&function, &q)?))
        .await?;
    Ok(json(200, &rec.configuration(&st.ctx)))
}

pub async fn delete(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let (function, q) = target(&params, &query)?;
    st.blocking(move |s| Ok(s.registry.delete_event_invoke_config(&function, &q)?))
        .await?;
    Ok(no_content())
}

pub async fn list(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let function = params.unqualified_function()?;
    let request = query.page()?;
    let page = st
        .blocking(move |s| Ok(s.registry.list_event_invoke_configs(&function, request.request())?))
        .await?;
    let items: Vec<_> = page.items.iter().map(|c| c.configuration(&st.ctx)).collect();
    Ok(page_response("FunctionEventInvokeConfigs", &items, page.next_marker))
}

/// One event as `lamb events` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventItem {
    pub request_id: String,
    pub qualifier: String,
    /// `queued`, `running` or `failed`.
    pub status: &'static str,
    /// Finished attempts.
    pub attempts: u32,
    /// Epoch milliseconds.
    pub enqueued_at: i64,
    /// Epoch milliseconds; queued events only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

pub async fn events(State(st): State<AppState>, params: Params) -> ApiResult {
    let function = params.unqualified_function()?;
    let events = st.blocking(move |s| Ok(s.registry.list_events(&function)?)).await?;
    let items: Vec<EventItem> = events
        .into_iter()
        .map(|e| EventItem {
            next_attempt_at: (e.status == lamb_store::EventStatus::Queued).then_some(e.event.next_attempt_at_ms),
            request_id: e.event.id,
            qualifier: e.event.qualifier,
            status: e.status.as_str(),
            attempts: e.event.attempts,
            enqueued_at: e.event.enqueued_at_ms,
            finished_at: e.finished_at_ms,
            error: e.last_error,
        })
        .collect();
    Ok(json(200, &serde_json::json!({ "Events": items })))
}
