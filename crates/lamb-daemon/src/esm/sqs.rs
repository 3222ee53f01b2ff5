//! One SQS mapping's pollers. As Lambda does: a few pollers (five, or
//! `ScalingConfig.MaximumConcurrency`) each long-poll the queue, gather a
//! batch (`batch`), invoke the function with the `aws:sqs` event and delete
//! what succeeded: the whole batch, or all but the `batchItemFailures` of a
//! partial batch response (`ReportBatchItemFailures`). What failed is left
//! alone, so the queue makes it visible again after its visibility timeout,
//! and its redrive policy moves a message received too often to its
//! dead-letter queue. Messages the filters drop are deleted.
//!
//! FIFO queues keep their order because SQS hands out no message of a group
//! while another of that group is in flight, and because lamb reads them
//! with one poller; a poller that stops or fails a batch makes the messages
//! it carried visible again at once, so none of a group can overtake the
//! failed ones.
//!
//! A lost endpoint or a deleted queue is retried with backoff, looking the
//! queue's URL up again, so a queue recreated (or an emulator restarted) is
//! read again.

use super::aws::{self, describe};
use super::batch::{self, Gatherer, Limits, Outcome, Pull, Record, Results};
use crate::state::AppState;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageAttributeValue, MessageSystemAttributeName};
use aws_sdk_sqs::Client;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lamb_types::esm::{EventSourceMappingConfiguration, Source};
use lamb_types::esm_filter::{payload_view, Filters};
use serde_json::{json, Map, Value};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Lambda starts five pollers on a queue.
const DEFAULT_POLLERS: u32 = 5;
/// SQS's longest long poll.
const LONG_POLL_S: i32 = 20;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A batch the function could not run with waits this long before the next.
const NOT_RUN_PAUSE: Duration = Duration::from_secs(1);

enum End {
    Stopped,
    Lost(String),
}

pub(super) async fn run(st: AppState, m: EventSourceMappingConfiguration, source: Source, stop: watch::Receiver<bool>) {
    let Source::Sqs { region, queue, .. } = &source else {
        return;
    };
    let client = aws::sqs(&st.aws_endpoints, region).await;
    // A FIFO queue is read by one poller: SQS would keep each group's order
    // across several, but an emulator may not (moto's long poll hands out a
    // group that another poll took meanwhile), and one box gains little.
    let pollers = match source.is_fifo() {
        true => 1,
        false => m
            .scaling_config
            .and_then(|s| s.maximum_concurrency)
            .unwrap_or(DEFAULT_POLLERS),
    };
    tracing::info!(uuid = %m.uuid, queue, pollers, "event source mapping polling");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..pollers {
        tasks.spawn(poller(
            st.clone(),
            m.clone(),
            source.clone(),
            client.clone(),
            stop.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
    tracing::info!(uuid = %m.uuid, "event source mapping stopped");
}

async fn poller(
    st: AppState,
    m: EventSourceMappingConfiguration,
    source: Source,
    client: Client,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(200);
    loop {
        if *stop.borrow() {
            return;
        }
        let end = match queue_url(&client, &source).await {
            Ok(url) => {
                let fifo = source.is_fifo();
                let q = Queue {
                    client: client.clone(),
                    url,
                    filters: m.filters(),
                    arn: m.event_source_arn.clone(),
                    region: aws::region_of(&m.event_source_arn).to_owned(),
                };
                session(&st, &m, q, fifo, &mut stop, &mut backoff).await
            }
            Err(e) => End::Lost(e),
        };
        match end {
            End::Stopped => return,
            End::Lost(e) => {
                tracing::warn!(uuid = %m.uuid, error = %e, retry_in = ?backoff, "queue unreachable");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn queue_url(client: &Client, source: &Source) -> Result<String, String> {
    let Source::Sqs { queue, account, .. } = source else {
        return Err("not an SQS source".into());
    };
    // The ARN's account owns the queue (it may be another than the
    // credentials').
    let out = client
        .get_queue_url()
        .queue_name(queue)
        .set_queue_owner_aws_account_id((!account.is_empty()).then(|| account.clone()))
        .send()
        .await
        .map_err(|e| format!("GetQueueUrl {queue}: {}", describe(&e)))?;
    out.queue_url.ok_or_else(|| format!("GetQueueUrl {queue}: no URL"))
}

async fn session(
    st: &AppState,
    m: &EventSourceMappingConfiguration,
    mut q: Queue,
    fifo: bool,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> End {
    let mut gatherer = Gatherer::new(Limits::of(m, Duration::ZERO));
    let mut results = Results::new();
    loop {
        let batch = tokio::select! {
            b = gatherer.next(&mut q) => b,
            _ = stop.changed() => {
                q.release(&gatherer.carried()).await;
                return End::Stopped;
            }
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => return End::Lost(e),
        };
        *backoff = Duration::from_millis(200);
        let ids: Vec<String> = batch.iter().map(|r| r.handle.id.clone()).collect();
        let items: Vec<&Value> = batch.iter().map(|r| &r.item).collect();
        let event = json!({ "Records": items });
        let outcome = batch::invoke(st, m, &event, m.reports_batch_item_failures().then_some(&ids[..])).await;
        batch::log(m, &outcome, batch.len());
        results.record(st, &m.uuid, &outcome).await;
        match &outcome {
            Outcome::Done { failed } => {
                let done: Vec<_> = batch.iter().filter(|r| !failed.contains(&r.handle.id)).collect();
                if let Err(e) = q.delete(&done).await {
                    return End::Lost(e);
                }
                if fifo && !failed.is_empty() {
                    q.release(&gatherer.carried()).await;
                }
            }
            Outcome::Failed(_) | Outcome::NotRun(_) => {
                if fifo {
                    q.release(&gatherer.carried()).await;
                }
                if matches!(outcome, Outcome::NotRun(_)) {
                    tokio::time::sleep(NOT_RUN_PAUSE).await;
                }
            }
        }
    }
}

/// A received message: what deleting it or releasing it takes.
#[derive(Debug, Clone)]
struct Handle {
    id: String,
    receipt: String,
}

struct Queue {
    client: Client,
    url: String,
    filters: Filters,
    arn: String,
    region: String,
}

impl Pull<Handle> for Queue {
    type Error = String;

    async fn pull(&mut self, want: usize, deadline: Option<Instant>) -> Result<Vec<Record<Handle>>, String> {
        let wait = match deadline {
            None => LONG_POLL_S,
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .as_secs()
                .min(LONG_POLL_S as u64) as i32,
        };
        let out = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(want.clamp(1, 10) as i32)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| format!("ReceiveMessage: {}", describe(&e)))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() && wait == 0 {
            // A short poll inside the window's last second: do not spin.
            if let Some(d) = deadline {
                tokio::time::sleep_until(d.min(Instant::now() + Duration::from_millis(50))).await;
            }
        }
        let records: Vec<_> = messages
            .iter()
            .filter_map(|msg| {
                let handle = Handle {
                    id: msg.message_id.clone()?,
                    receipt: msg.receipt_handle.clone()?,
                };
                Some(Record::new(handle, sqs_item(msg, &self.arn, &self.region)))
            })
            .collect();
        let (keep, drop) = batch::keep_matching(&self.filters, records, |item| {
            let mut view = item.clone();
            view["body"] = payload_view(item["body"].as_str().unwrap_or_default().as_bytes());
            view
        });
        self.delete(&drop.iter().collect::<Vec<_>>()).await?;
        Ok(keep)
    }
}

impl Queue {
    /// Deletes messages, ten a request.
    async fn delete(&self, records: &[&Record<Handle>]) -> Result<(), String> {
        for chunk in records.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&r.handle.receipt)
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .delete_message_batch()
                .queue_url(&self.url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("DeleteMessageBatch: {}", describe(&e)))?;
            for f in out.failed {
                // A receipt that expired: the message comes back and is run again
                // (at least once, as in Lambda).
                tracing::warn!(code = f.code, message = ?f.message, "message not deleted");
            }
        }
        Ok(())
    }

    /// Makes carried messages visible again at once (best effort: else the
    /// visibility timeout does it).
    async fn release(&self, records: &[Record<Handle>]) {
        for r in records {
            let _ = self
                .client
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(&r.handle.receipt)
                .visibility_timeout(0)
                .send()
                .await;
        }
    }
}

fn attribute_value(v: &MessageAttributeValue) -> Value {
    let blobs = |l: &[aws_sdk_sqs::primitives::Blob]| l.iter().map(|b| STANDARD.encode(b.as_ref())).collect::<Vec<_>>();
    let mut o = Map::new();
    if let Some(s) = &v.string_value {
        o.insert("stringValue".into(), json!(s));
    }
    if let Some(b) = &v.binary_value {
        o.insert("binaryValue".into(), json!(STANDARD.encode(b.as_ref())));
    }
    o.insert(
        "stringListValues".into(),
        json!(v.string_list_values.clone().unwrap_or_default()),
    );
    o.insert(
        "binaryListValues".into(),
        json!(blobs(v.binary_list_values.as_deref().unwrap_or_default())),
    );
    o.insert("dataType".into(), json!(v.data_type));
    Value::Object(o)
}

/// One message as Lambda's `aws:sqs` event shows it.
fn sqs_item(msg: &Message, arn: &str, region: &str) -> Value {
    let attributes: Map<String, Value> = msg
        .attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
        .collect();
    let message_attributes: Map<String, Value> = msg
        .message_attributes
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), attribute_value(v)))
        .collect();
    let mut item = json!({
        "messageId": msg.message_id,
        "receiptHandle": msg.receipt_handle,
        "body": msg.body.clone().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": msg.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    });
    if let Some(md5) = &msg.md5_of_message_attributes {
        item["md5OfMessageAttributes"] = json!(md5);
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_item_shape() {
        let msg = Message::builder()
            .message_id("m1")
            .receipt_handle("r1")
            .body("hello")
            .md5_of_body("5d41402abc4b2a76b9719d911017c592")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .attributes(MessageSystemAttributeName::MessageGroupId, "g")
            .message_attributes(
                "k",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("v")
                    .build()
                    .unwrap(),
            )
            .build();
        let item = sqs_item(&msg, "arn:aws:sqs:eu-west-1:1:q", "eu-west-1");
        assert_eq!(item["messageId"], "m1");
        assert_eq!(item["receiptHandle"], "r1");
        assert_eq!(item["body"], "hello");
        assert_eq!(item["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(item["attributes"]["MessageGroupId"], "g");
        assert_eq!(
            item["messageAttributes"]["k"],
            json!({"stringValue": "v", "stringListValues": [], "binaryListValues": [], "dataType": "String"})
        );
        assert_eq!(item["eventSource"], "aws:sqs");
        assert_eq!(item["eventSourceARN"], "arn:aws:sqs:eu-west-1:1:q");
        assert_eq!(item["awsRegion"], "eu-west-1");
        assert!(item.get("md5OfMessageAttributes").is_none());
    }
}
