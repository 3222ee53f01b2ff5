//! One mapping's poller: consume the queue with manual acknowledgement and
//! a prefetch of one batch, gather up to `BatchSize` messages within the
//! batching window, invoke the function with Lambda's `aws:rmq` event, then
//! acknowledge the whole batch when it succeeded or reject it back onto the
//! queue (the broker redelivers it) when it did not. A lost connection is
//! retried with backoff; what was unacknowledged then is redelivered by the
//! broker.

use super::Broker;
use crate::error::ApiError;
use crate::invocation::{self, Call, Target};
use crate::state::AppState;
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicNackArguments, BasicQosArguments, Channel, ConsumerMessage,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lamb_protocol::errors::Chain;
use lamb_types::esm::EventSourceMappingConfiguration;
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Lambda's batching window for Amazon MQ when none is set.
const DEFAULT_WINDOW: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A failed batch waits this long before it is rejected back to the queue,
/// so a failing function is not retried in a tight loop.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

enum End {
    Stopped,
    Lost(String),
}

pub(super) async fn run(
    st: AppState,
    m: EventSourceMappingConfiguration,
    broker: Broker,
    mut stop: watch::Receiver<bool>,
) {
    tracing::info!(uuid = %m.uuid, queue = ?m.queues, "event source mapping polling");
    let mut backoff = Duration::from_millis(500);
    loop {
        if *stop.borrow() {
            break;
        }
        match session(&st, &m, &broker, &mut stop).await {
            End::Stopped => break,
            End::Lost(e) => {
                tracing::warn!(uuid = %m.uuid, error = %e, retry_in = ?backoff, "broker connection lost");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => break,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    tracing::info!(uuid = %m.uuid, "event source mapping stopped");
}

async fn session(
    st: &AppState,
    m: &EventSourceMappingConfiguration,
    broker: &Broker,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let mut args = OpenConnectionArguments::new(&broker.host, broker.port, &broker.user, &broker.password);
    let vhost = match m.source_access_configurations.iter().any(|c| c.kind == "VIRTUAL_HOST") {
        true => m.virtual_host().to_owned(),
        false => broker.vhost.clone().unwrap_or_else(|| "/".to_owned()),
    };
    args.virtual_host(&vhost)
        .heartbeat(10)
        .connection_name(&format!("lamb-esm-{}", m.uuid));
    let conn = match Connection::open(&args).await {
        Ok(c) => c,
        Err(e) => return End::Lost(format!("connect: {e}")),
    };
    let end = consume(st, m, &conn, &vhost, stop).await;
    let _ = conn.close().await;
    end
}

async fn consume(
    st: &AppState,
    m: &EventSourceMappingConfiguration,
    conn: &Connection,
    vhost: &str,
    stop: &mut watch::Receiver<bool>,
) -> End {
    let queue = m.queues.first().cloned().unwrap_or_default();
    let ch = match conn.open_channel(None).await {
        Ok(c) => c,
        Err(e) => return End::Lost(format!("open channel: {e}")),
    };
    let prefetch = u16::try_from(m.batch_size).unwrap_or(u16::MAX);
    if let Err(e) = ch.basic_qos(BasicQosArguments::new(0, prefetch, false)).await {
        return End::Lost(format!("qos: {e}"));
    }
    let mut consume_args = BasicConsumeArguments::new(&queue, "");
    consume_args.manual_ack(true);
    let (_tag, mut rx) = match ch.basic_consume_rx(consume_args).await {
        Ok(v) => v,
        Err(e) => return End::Lost(format!("consume {queue}: {e}")),
    };
    let window = match m.maximum_batching_window_in_seconds {
        0 => DEFAULT_WINDOW,
        s => Duration::from_secs(u64::from(s)),
    };
    loop {
        let first = tokio::select! {
            msg = rx.recv() => msg,
            _ = stop.changed() => return End::Stopped,
            _ = conn.listen_network_io_failure() => return End::Lost("network failure".into()),
        };
        let Some(first) = first else {
            return End::Lost("consumer closed".into());
        };
        let mut batch = vec![first];
        let deadline = Instant::now() + window;
        while batch.len() < m.batch_size as usize {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => batch.push(msg),
                    None => return End::Lost("consumer closed".into()),
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        let event = rmq_event(m, &queue, vhost, &batch);
        let ok = deliver(st, m, event).await;
        if let Err(e) = settle(&ch, &batch, ok).await {
            return End::Lost(e);
        }
    }
}

/// Acknowledges (or rejects back onto the queue) every message of the batch.
async fn settle(ch: &Channel, batch: &[ConsumerMessage], ok: bool) -> Result<(), String> {
    let Some(last) = batch
        .iter()
        .filter_map(|m| m.deliver.as_ref())
        .map(|d| d.delivery_tag())
        .max()
    else {
        return Ok(());
    };
    if ok {
        ch.basic_ack(BasicAckArguments::new(last, true))
            .await
            .map_err(|e| format!("ack: {e}"))
    } else {
        tokio::time::sleep(RETRY_PAUSE).await;
        ch.basic_nack(BasicNackArguments::new(last, true, true))
            .await
            .map_err(|e| format!("nack: {e}"))
    }
}

fn header_value(v: &amqprs::FieldValue) -> Value {
    use amqprs::FieldValue as F;
    match v {
        F::t(b) => json!(b),
        F::b(n) => json!(n),
        F::B(n) => json!(n),
        F::s(n) => json!(n),
        F::u(n) => json!(n),
        F::I(n) => json!(n),
        F::i(n) => json!(n),
        F::l(n) => json!(n),
        F::f(n) => json!(n),
        F::d(n) => json!(n),
        F::T(n) => json!(n),
        F::V => Value::Null,
        // Strings as Lambda shows them: their bytes.
        other => json!({ "bytes": other.to_string().into_bytes() }),
    }
}

fn properties(p: Option<&BasicProperties>, body_size: usize) -> Value {
    let s = |v: Option<&String>| v.map_or(Value::Null, |v| json!(v));
    let Some(p) = p else {
        return json!({ "bodySize": body_size });
    };
    let headers = p.headers().map_or(Value::Null, |h| {
        Value::Object(
            h.as_ref()
                .iter()
                .map(|(k, v)| (k.to_string(), header_value(v)))
                .collect::<Map<String, Value>>(),
        )
    });
    json!({
        "contentType": s(p.content_type()),
        "contentEncoding": s(p.content_encoding()),
        "headers": headers,
        "deliveryMode": p.delivery_mode(),
        "priority": p.priority(),
        "correlationId": s(p.correlation_id()),
        "replyTo": s(p.reply_to()),
        "expiration": s(p.expiration()),
        "messageId": s(p.message_id()),
        "timestamp": p.timestamp(),
        "type": s(p.message_type()),
        "userId": s(p.user_id()),
        "appId": s(p.app_id()),
        "clusterId": s(p.cluster_id()),
        "bodySize": body_size,
    })
}

/// Lambda's `aws:rmq` event of one batch.
fn rmq_event(m: &EventSourceMappingConfiguration, queue: &str, vhost: &str, batch: &[ConsumerMessage]) -> Value {
    let messages: Vec<Value> = batch
        .iter()
        .map(|msg| {
            let body = msg.content.as_deref().unwrap_or_default();
            json!({
                "basicProperties": properties(msg.basic_properties.as_ref(), body.len()),
                "redelivered": msg.deliver.as_ref().is_some_and(|d| d.redelivered()),
                "data": STANDARD.encode(body),
            })
        })
        .collect();
    json!({
        "eventSource": "aws:rmq",
        "eventSourceArn": m.event_source_arn,
        "rmqMessagesByQueue": { format!("{queue}::{vhost}"): messages },
    })
}

/// Runs the function with the batch; true when it succeeded.
async fn deliver(st: &AppState, m: &EventSourceMappingConfiguration, event: Value) -> bool {
    let target = match Target::by_arn(&m.function_arn) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(uuid = %m.uuid, error = %e, "bad function of mapping");
            return false;
        }
    };
    let call = Call::new(uuid::Uuid::new_v4().to_string(), event.to_string().into_bytes());
    let req = match st.blocking(move |s| invocation::prepare(s, &target, call)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(uuid = %m.uuid, error = %Chain(&e), "mapping's function unavailable");
            return false;
        }
    };
    match st.invoker.invoke(req).await {
        Ok(r) if r.function_error.is_none() => true,
        Ok(r) => {
            tracing::info!(uuid = %m.uuid, error = %String::from_utf8_lossy(&r.payload), "batch failed; redelivered");
            false
        }
        Err(ApiError::Throttled { .. }) => false,
        Err(e) => {
            tracing::warn!(uuid = %m.uuid, error = %Chain(&e), "batch not run; redelivered");
            false
        }
    }
}
