//! One RabbitMQ mapping's poller: consume the queue with manual
//! acknowledgement and a prefetch of one batch, gather a batch (`batch`:
//! `BatchSize`, the batching window, the payload cap, filters on the decoded
//! `data`), invoke the function with Lambda's `aws:rmq` event, then
//! acknowledge the whole batch when it succeeded or reject it back onto the
//! queue (the broker redelivers it) when it did not. Messages the filters
//! drop are acknowledged. A lost connection is
//! retried with backoff; what was unacknowledged then is redelivered by the
//! broker.

use super::batch::{self, Gatherer, Limits, Outcome, Pull, Record, Results};
use super::Broker;
use crate::state::AppState;
use amqprs::channel::{
    BasicAckArguments, BasicConsumeArguments, BasicNackArguments, BasicQosArguments, Channel, ConsumerMessage,
};
use amqprs::connection::{Connection, OpenConnectionArguments};
use amqprs::BasicProperties;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lamb_types::esm::EventSourceMappingConfiguration;
use lamb_types::esm_filter::{payload_view, Filters};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;
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
    let (_tag, rx) = match ch.basic_consume_rx(consume_args).await {
        Ok(v) => v,
        Err(e) => return End::Lost(format!("consume {queue}: {e}")),
    };
    let mut gatherer = Gatherer::new(Limits::of(m, DEFAULT_WINDOW));
    let mut source = Consumer {
        rx,
        ch: &ch,
        filters: m.filters(),
    };
    let mut results = Results::new();
    loop {
        let batch = tokio::select! {
            b = gatherer.next(&mut source) => b,
            _ = stop.changed() => return End::Stopped,
            _ = conn.listen_network_io_failure() => return End::Lost("network failure".into()),
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return End::Lost(e),
        };
        let event = rmq_event(m, &queue, vhost, &batch);
        let outcome = batch::invoke(st, m, &event, None).await;
        batch::log(m, &outcome, batch.len());
        results.record(st, &m.uuid, &outcome).await;
        if let Err(e) = settle(&ch, &batch, matches!(outcome, Outcome::Done { .. })).await {
            return End::Lost(e);
        }
    }
}

/// The consumer's deliveries as a source of records; what the filters drop
/// is acknowledged at once.
struct Consumer<'a> {
    rx: UnboundedReceiver<ConsumerMessage>,
    ch: &'a Channel,
    filters: Filters,
}

impl Pull<ConsumerMessage> for Consumer<'_> {
    type Error = String;

    async fn pull(&mut self, _want: usize, deadline: Option<Instant>) -> Result<Vec<Record<ConsumerMessage>>, String> {
        let msg = match deadline {
            None => self.rx.recv().await,
            Some(d) => match tokio::time::timeout_at(d, self.rx.recv()).await {
                Ok(m) => m,
                Err(_) => return Ok(Vec::new()),
            },
        };
        let msg = msg.ok_or("consumer closed")?;
        let item = rmq_item(&msg);
        let (keep, drop) = batch::keep_matching(&self.filters, vec![Record::new(msg, item)], |item| {
            let mut view = item.clone();
            let data = item["data"]
                .as_str()
                .and_then(|d| STANDARD.decode(d).ok())
                .unwrap_or_default();
            view["data"] = payload_view(&data);
            view
        });
        settle(self.ch, &drop, true).await?;
        Ok(keep)
    }
}

/// Acknowledges (or rejects back onto the queue) every message of the batch.
async fn settle(ch: &Channel, batch: &[Record<ConsumerMessage>], ok: bool) -> Result<(), String> {
    if !ok && !batch.is_empty() {
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    for tag in batch
        .iter()
        .filter_map(|r| r.handle.deliver.as_ref())
        .map(|d| d.delivery_tag())
    {
        if ok {
            ch.basic_ack(BasicAckArguments::new(tag, false))
                .await
                .map_err(|e| format!("ack: {e}"))?;
        } else {
            ch.basic_nack(BasicNackArguments::new(tag, false, true))
                .await
                .map_err(|e| format!("nack: {e}"))?;
        }
    }
    Ok(())
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

/// One message as the `aws:rmq` event shows it.
fn rmq_item(msg: &ConsumerMessage) -> Value {
    let body = msg.content.as_deref().unwrap_or_default();
    json!({
        "basicProperties": properties(msg.basic_properties.as_ref(), body.len()),
        "redelivered": msg.deliver.as_ref().is_some_and(|d| d.redelivered()),
        "data": STANDARD.encode(body),
    })
}

/// Lambda's `aws:rmq` event of one batch.
fn rmq_event(
    m: &EventSourceMappingConfiguration,
    queue: &str,
    vhost: &str,
    batch: &[Record<ConsumerMessage>],
) -> Value {
    let messages: Vec<&Value> = batch.iter().map(|r| &r.item).collect();
    json!({
        "eventSource": "aws:rmq",
        "eventSourceArn": m.event_source_arn,
        "rmqMessagesByQueue": { format!("{queue}::{vhost}"): messages },
    })
}
