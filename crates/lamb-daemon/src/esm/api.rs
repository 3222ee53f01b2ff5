//! CreateEventSourceMapping (202), GetEventSourceMapping (200),
//! ListEventSourceMappings (200), UpdateEventSourceMapping (202) and
//! DeleteEventSourceMapping (202), for SQS queues, Kinesis and DynamoDB
//! streams and RabbitMQ queues.

use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::Params;
use crate::util::{json, parse_json, Query};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use lamb_types::esm::{
    new_mapping, state, validate, CreateEventSourceMappingRequest, EventSourceMappingConfiguration, Source,
    UpdateEventSourceMappingRequest, USER_INITIATED,
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

/// The source's kind, and for RabbitMQ that the daemon knows the broker.
fn source_of(s: &Shared, arn: &str) -> Result<Source, ApiError> {
    let source = Source::parse(&s.ctx, arn)?;
    if let Source::RabbitMq { broker } = &source {
        if s.brokers.get(broker).is_none() {
            return Err(LambdaError::invalid_parameter(format!(
                "EventSourceArn '{arn}': lamb knows no broker named {broker} (lamb serve --rabbitmq {broker}=amqp://...)"
            ))
            .into());
        }
    }
    Ok(source)
}

fn now_s() -> f64 {
    epoch_seconds(time::OffsetDateTime::now_utc())
}

fn state_of(enabled: bool) -> String {
    if enabled { state::ENABLED } else { state::DISABLED }.to_owned()
}

/// AWS keeps one mapping per function and queue or stream.
fn refuse_duplicate(s: &Shared, m: &EventSourceMappingConfiguration) -> Result<(), ApiError> {
    let same = |o: &EventSourceMappingConfiguration| {
        o.event_source_arn == m.event_source_arn && o.function_arn == m.function_arn && o.queues == m.queues
    };
    if let Some(o) = s.registry.list_event_source_mappings()?.into_iter().find(same) {
        return Err(LambdaError::conflict(format!(
            "An event source mapping with event source ({}) and function ({}) already exists. \
             Please update or delete the existing mapping with UUID {}",
            m.event_source_arn, m.function_arn, o.uuid
        ))
        .into());
    }
    Ok(())
}

async fn create(State(st): State<AppState>, body: Bytes) -> ApiResult {
    let req: CreateEventSourceMappingRequest = parse_json(&body)?;
    let out = st
        .blocking(move |s| {
            // Without a source AWS names none it recognises (the recorded
            // test_event_source_mapping_exceptions).
            let arn = req
                .event_source_arn
                .clone()
                .ok_or_else(|| LambdaError::invalid_parameter("Unrecognized event source."))?;
            let source = source_of(s, &arn)?;
            let (function_arn, name) = function_arn(s, &req.function_name)?;
            let mut m = new_mapping(&source, uuid::Uuid::new_v4().to_string(), arn, function_arn);
            m.queues = req.queues.clone().unwrap_or_default();
            m.starting_position.clone_from(&req.starting_position);
            m.starting_position_timestamp = req.starting_position_timestamp;
            req.settings.apply(&mut m);
            validate(&source, &m)?;
            refuse_duplicate(s, &m)?;
            m.last_modified = now_s();
            m.state = state_of(req.enabled.unwrap_or(true));
            s.registry.put_event_source_mapping(&name, &m, true)?;
            m.state = state::CREATING.into();
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
            let source = Source::parse(&s.ctx, &m.event_source_arn)?;
            let mut name = FunctionRef::parse(&m.function_arn)?.name;
            if let Some(f) = &req.function_name {
                (m.function_arn, name) = function_arn(s, f)?;
            }
            req.settings.apply(&mut m);
            validate(&source, &m)?;
            let was_enabled = m.enabled();
            if let Some(e) = req.enabled {
                m.state = state_of(e);
            }
            m.last_modified = now_s();
            m.state_transition_reason = USER_INITIATED.into();
            s.registry.put_event_source_mapping(&name, &m, false)?;
            m.state = match (was_enabled, m.enabled()) {
                (false, true) => state::ENABLING,
                (true, false) => state::DISABLING,
                _ => state::UPDATING,
            }
            .into();
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
            m.state = state::DELETING.into();
            Ok(m)
        })
        .await?;
    Ok(json(202, &out))
}
