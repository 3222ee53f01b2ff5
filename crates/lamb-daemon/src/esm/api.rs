//! CreateEventSourceMapping (202), GetEventSourceMapping (200),
//! ListEventSourceMappings (200), UpdateEventSourceMapping (202) and
//! DeleteEventSourceMapping (202), for RabbitMQ queues.

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::Params;
use crate::util::{json, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use lamb_types::esm::{
    broker_name, validate, CreateEventSourceMappingRequest, EventSourceMappingConfiguration,
    UpdateEventSourceMappingRequest, DEFAULT_BATCH_SIZE,
};
use lamb_types::timefmt::epoch_seconds;
use lamb_types::{FunctionRef, LambdaError, Qualifier};
use serde_json::json as j;

const BASE: &str = "/2015-03-31/event-source-mappings";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(BASE, get(list).post(create))
        .route("/2015-03-31/event-source-mappings/", get(list).post(create))
        .route(
            "/2015-03-31/event-source-mappings/{uuid}",
            get(get_one).put(update).delete(remove),
        )
}

/// The function's ARN (qualified when a qualifier was named) and its name,
/// after checking that it exists.
fn function_arn(s: &Shared, function_name: &str) -> Result<(String, String), ApiError> {
    let fref = FunctionRef::parse(function_name)?;
    let q = fref.qualifier.clone().unwrap_or_else(Qualifier::latest);
    crate::invocation::resolve_version(s, &fref.name, &q)?;
    let arn = match &fref.qualifier {
        None => s.ctx.function_arn(&fref.name),
        Some(q) => s.ctx.qualified_function_arn(&fref.name, q),
    };
    Ok((arn, fref.name))
}

fn check_broker(s: &Shared, arn: &str) -> Result<(), ApiError> {
    let name = broker_name(&s.ctx, arn)?;
    if s.brokers.get(name).is_none() {
        return Err(LambdaError::invalid_parameter(format!(
            "EventSourceArn '{arn}': lamb knows no broker named {name} (lamb serve --rabbitmq {name}=amqp://...)"
        ))
        .into());
    }
    Ok(())
}

fn now_s() -> f64 {
    epoch_seconds(time::OffsetDateTime::now_utc())
}

fn state_of(enabled: bool) -> String {
    if enabled { "Enabled" } else { "Disabled" }.to_owned()
}

async fn create(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let req: CreateEventSourceMappingRequest = parse_json(&body)?;
    let out = st
        .blocking(move |s| {
            let arn = req
                .event_source_arn
                .clone()
                .ok_or_else(|| LambdaError::invalid_parameter("EventSourceArn is required"))?;
            check_broker(s, &arn)?;
            let (function_arn, name) = function_arn(s, &req.function_name)?;
            let queues = req.queues.clone().unwrap_or_default();
            let access = req.source_access_configurations.clone().unwrap_or_default();
            let batch = req.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
            let window = req.maximum_batching_window_in_seconds.unwrap_or(0);
            validate(batch, window, &queues, &access)?;
            let m = EventSourceMappingConfiguration {
                uuid: uuid::Uuid::new_v4().to_string(),
                batch_size: batch,
                maximum_batching_window_in_seconds: window,
                event_source_arn: arn,
                function_arn,
                last_modified: now_s(),
                last_processing_result: "No records processed".into(),
                state: state_of(req.enabled.unwrap_or(true)),
                state_transition_reason: "USER_INITIATED".into(),
                queues,
                source_access_configurations: access,
            };
            s.registry.put_event_source_mapping(&name, &m, true)?;
            Ok(m)
        })
        .await?;
    Ok(json(202, &out))
}

async fn get_one(State(st): State<AppState>, params: Params) -> ApiResult {
    let uuid = params.resource().to_owned();
    let out = st
        .blocking(move |s| Ok(s.registry.get_event_source_mapping(&uuid)?))
        .await?;
    Ok(json(200, &out))
}

async fn list(State(st): State<AppState>, query: Query) -> ApiResult {
    let function = query.get("FunctionName").map(str::to_owned);
    let source = query.get("EventSourceArn").map(str::to_owned);
    let out = st
        .blocking(move |s| {
            let function = function.map(|f| FunctionRef::parse(&f)).transpose()?;
            let all = s.registry.list_event_source_mappings()?;
            let items: Vec<_> = all
                .into_iter()
                .filter(|m| source.as_deref().is_none_or(|a| a == m.event_source_arn))
                .filter(|m| {
                    function.as_ref().is_none_or(|f| {
                        FunctionRef::parse(&m.function_arn)
                            .is_ok_and(|mf| mf.name == f.name && (f.qualifier.is_none() || mf.qualifier == f.qualifier))
                    })
                })
                .collect();
            Ok(items)
        })
        .await?;
    Ok(json(200, &j!({ "EventSourceMappings": out })))
}

async fn update(State(st): State<AppState>, params: Params, body: Bytes) -> ApiResult {
    let uuid = params.resource().to_owned();
    let req: UpdateEventSourceMappingRequest = parse_json(&body)?;
    let out = st
        .blocking(move |s| {
            let mut m = s.registry.get_event_source_mapping(&uuid)?;
            let mut name = FunctionRef::parse(&m.function_arn)?.name;
            if let Some(f) = &req.function_name {
                (m.function_arn, name) = function_arn(s, f)?;
            }
            if let Some(b) = req.batch_size {
                m.batch_size = b;
            }
            if let Some(w) = req.maximum_batching_window_in_seconds {
                m.maximum_batching_window_in_seconds = w;
            }
            if let Some(a) = &req.source_access_configurations {
                m.source_access_configurations.clone_from(a);
            }
            if let Some(e) = req.enabled {
                m.state = state_of(e);
            }
            validate(
                m.batch_size,
                m.maximum_batching_window_in_seconds,
                &m.queues,
                &m.source_access_configurations,
            )?;
            m.last_modified = now_s();
            m.state_transition_reason = "USER_INITIATED".into();
            s.registry.put_event_source_mapping(&name, &m, false)?;
            Ok(m)
        })
        .await?;
    Ok(json(202, &out))
}

async fn remove(State(st): State<AppState>, params: Params) -> ApiResult {
    let uuid = params.resource().to_owned();
    let out = st
        .blocking(move |s| {
            let mut m = s.registry.get_event_source_mapping(&uuid)?;
            s.registry.delete_event_source_mapping(&uuid)?;
            m.state = "Deleting".into();
            Ok(m)
        })
        .await?;
    Ok(json(202, &out))
}
