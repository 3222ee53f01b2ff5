//! Kinesis and DynamoDB Streams mappings: one reader per shard, each
//! processing its shard in order: one batch at a time, or with a
//! `ParallelizationFactor` of N, N at once, the records of one partition key
//! (DynamoDB: item keys) always in the same one, in order. A reader starts
//! at its shard's checkpoint in the registry, else at `StartingPosition`;
//! after the batches of what it gathered are done (succeeded, or given up
//! on) it writes the last sequence number as the checkpoint, so a daemon
//! restarted (even by `kill -9`) resumes after it and at most the batches in
//! flight run twice.
//!
//! A failed batch is retried until `MaximumRetryAttempts` (-1: until the
//! records expire), split in two first with `BisectBatchOnFunctionError`;
//! with `ReportBatchItemFailures` a retry starts at the first failed record.
//! Records older than `MaximumRecordAgeInSeconds` are not sent. What is
//! given up on is described to the `DestinationConfig.OnFailure` SQS queue
//! as Lambda does (`KinesisBatchInfo` / `DDBStreamBatchInfo`) and skipped.
//!
//! With `TumblingWindowInSeconds` above 0 a shard is read in one lane (its
//! window's state is one) and its batches are invoked as `window` plans
//! them; the state is kept in memory only, and the checkpoint moves only
//! when a window closed, so a reader restarted (a daemon restart, or a lost
//! shard: Lambda's lease change) reads the open window again from its first
//! record with a fresh state: its aggregation invocations may run twice,
//! its final one still sees every record of it.

use super::aws::{self, describe};
use super::batch::{self, Gatherer, Limits, Outcome, Pull, Record, Results};
use super::window::{self, Flags, Step, Tumbler, Window};
use crate::state::AppState;
use aws_sdk_dynamodbstreams::types::AttributeValue;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lamb_protocol::errors::Chain;
use lamb_types::esm::{EventSourceMappingConfiguration, Source};
use lamb_types::esm_filter::{payload_view, Filters};
use serde_json::{json, Map, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Lambda reads an idle shard about once a second.
const IDLE_POLL: Duration = Duration::from_millis(500);
const SHARD_LIST_EVERY: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The checkpoint of a shard read to its end.
const SHARD_END: &str = "SHARD_END";

enum End {
    Stopped,
    ShardEnded,
    Lost(String),
}

/// Where a reader starts in its shard.
#[derive(Debug, Clone)]
enum Start {
    TrimHorizon,
    Latest,
    AtTimestamp(f64),
    After(String),
}

/// The service a stream is read from.
#[derive(Clone)]
enum Api {
    Kinesis {
        client: aws_sdk_kinesis::Client,
        stream: String,
    },
    DynamoDb {
        client: aws_sdk_dynamodbstreams::Client,
        stream_arn: String,
    },
}

/// A record of a shard: its sequence number and arrival (epoch seconds).
#[derive(Debug, Clone)]
struct Handle {
    seq: String,
    arrival: f64,
    /// The partition key (Kinesis) or the item's keys (DynamoDB): records of
    /// one key stay in order whatever the `ParallelizationFactor`.
    key: String,
}

/// What every shard reader of one mapping shares.
struct Mapping {
    st: AppState,
    m: EventSourceMappingConfiguration,
    api: Api,
    region: String,
    role: String,
}

pub(super) async fn run(
    st: AppState,
    m: EventSourceMappingConfiguration,
    source: Source,
    mut stop: watch::Receiver<bool>,
) {
    let api = match &source {
        Source::Kinesis { region, stream } => Api::Kinesis {
            client: aws::kinesis(&st.aws_endpoints, region).await,
            stream: stream.clone(),
        },
        Source::DynamoDbStreams { region, stream_arn } => Api::DynamoDb {
            client: aws::dynamodbstreams(&st.aws_endpoints, region).await,
            stream_arn: stream_arn.clone(),
        },
        _ => return,
    };
    let role = function_role(&st, &m).await;
    let mapping = Arc::new(Mapping {
        region: aws::region_of(&m.event_source_arn).to_owned(),
        st,
        m,
        api,
        role,
    });
    tracing::info!(uuid = %mapping.m.uuid, arn = %mapping.m.event_source_arn, "event source mapping polling");
    let mut readers = tokio::task::JoinSet::new();
    let mut started = HashSet::new();
    loop {
        match mapping.api.shards().await {
            Ok(shards) => {
                for shard in shards {
                    if started.insert(shard.clone()) {
                        readers.spawn(reader(mapping.clone(), shard, stop.clone()));
                    }
                }
            }
            Err(e) => tracing::warn!(uuid = %mapping.m.uuid, error = %e, "cannot list the stream's shards"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SHARD_LIST_EVERY) => {}
            _ = stop.changed() => break,
        }
    }
    while readers.join_next().await.is_some() {}
    tracing::info!(uuid = %mapping.m.uuid, "event source mapping stopped");
}

async fn function_role(st: &AppState, m: &EventSourceMappingConfiguration) -> String {
    let arn = m.function_arn.clone();
    st.blocking(move |s| {
        let t = crate::invocation::Target::by_arn(&arn)?;
        Ok(crate::invocation::resolve_version(s, &t.function, &t.qualifier)?
            .spec
            .role)
    })
    .await
    .unwrap_or_default()
}

/// Reads one shard until it ends or the mapping stops, reconnecting with
/// backoff from the last checkpoint.
async fn reader(mapping: Arc<Mapping>, shard: String, mut stop: watch::Receiver<bool>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match read_shard(&mapping, &shard, &mut stop, &mut backoff).await {
            End::Stopped | End::ShardEnded => return,
            End::Lost(e) => {
                tracing::warn!(uuid = %mapping.m.uuid, shard, error = %e, retry_in = ?backoff, "shard unreadable");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn checkpoint_of(mapping: &Mapping, shard: &str) -> Result<Option<String>, String> {
    let uuid = mapping.m.uuid.clone();
    let shard = shard.to_owned();
    mapping
        .st
        .blocking(move |s| Ok(s.registry.esm_checkpoints(&uuid)?.remove(&shard)))
        .await
        .map_err(|e| format!("read checkpoint: {}", Chain(&e)))
}

async fn write_checkpoint(mapping: &Mapping, shard: &str, seq: &str) -> Result<(), String> {
    let (uuid, shard, seq) = (mapping.m.uuid.clone(), shard.to_owned(), seq.to_owned());
    mapping
        .st
        .blocking(move |s| Ok(s.registry.put_esm_checkpoint(&uuid, &shard, &seq)?))
        .await
        .map_err(|e| format!("write checkpoint: {}", Chain(&e)))
}

fn initial_start(m: &EventSourceMappingConfiguration) -> Start {
    match (m.starting_position.as_deref(), m.starting_position_timestamp) {
        (Some("LATEST"), _) => Start::Latest,
        (Some("AT_TIMESTAMP"), Some(t)) => Start::AtTimestamp(t),
        _ => Start::TrimHorizon,
    }
}

async fn read_shard(
    mapping: &Arc<Mapping>,
    shard: &str,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> End {
    let start = match checkpoint_of(mapping, shard).await {
        Err(e) => return End::Lost(e),
        Ok(Some(c)) if c == SHARD_END => return End::ShardEnded,
        Ok(Some(seq)) => Start::After(seq),
        Ok(None) => initial_start(&mapping.m),
    };
    let iterator = match mapping.api.iterator(shard, &start).await {
        Ok(i) => i,
        Err(e) => return End::Lost(e),
    };
    let mut src = ShardReader {
        mapping: mapping.as_ref(),
        shard: shard.to_owned(),
        iterator: Some(iterator),
        filters: mapping.m.filters(),
        open_window: None,
    };
    let secs = mapping.m.tumbling_window_in_seconds.unwrap_or(0);
    if secs > 0 {
        return tumble(mapping, shard, src, secs, stop, backoff).await;
    }
    // ParallelizationFactor N: N batches of a shard at once, each key's
    // records in one of them, in order; the checkpoint moves when all are
    // done.
    let lanes = mapping.m.parallelization_factor.unwrap_or(1).max(1) as usize;
    let mut limits = Limits::of(&mapping.m, Duration::ZERO);
    limits.batch_size *= lanes;
    let mut gatherer = Gatherer::new(limits);
    let mut results: Vec<Results> = (0..lanes).map(|_| Results::new()).collect();
    loop {
        let batch = tokio::select! {
            b = gatherer.next(&mut src) => b,
            _ = stop.changed() => return End::Stopped,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(PullEnd::ShardEnded) => {
                return match write_checkpoint(mapping, shard, SHARD_END).await {
                    Ok(()) => End::ShardEnded,
                    Err(e) => End::Lost(e),
                }
            }
            Err(PullEnd::Lost(e)) => return End::Lost(e),
            // Only asked for with a tumbling window.
            Err(PullEnd::Idle) => continue,
        };
        *backoff = Duration::from_millis(200);
        let last = batch.last().map(|r| r.handle.seq.clone());
        if !run_lanes(mapping, shard, batch, &mut results, stop).await {
            return End::Stopped;
        }
        if let Some(last) = last {
            if let Err(e) = write_checkpoint(mapping, shard, &last).await {
                return End::Lost(e);
            }
        }
    }
}

/// Which of `lanes` a key's records go to.
fn lane_of(key: &str, lanes: usize) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % lanes as u64) as usize
}

/// Runs what was gathered: split by key into one lane per `results`, the
/// lanes at once, each in batches of `BatchSize` one after the other. False
/// when the mapping stopped meanwhile.
async fn run_lanes(
    mapping: &Arc<Mapping>,
    shard: &str,
    records: Vec<Record<Handle>>,
    results: &mut Vec<Results>,
    stop: &watch::Receiver<bool>,
) -> bool {
    let n = results.len();
    let mut lanes: Vec<Vec<Record<Handle>>> = (0..n).map(|_| Vec::new()).collect();
    for r in records {
        lanes[lane_of(&r.handle.key, n)].push(r);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (lane, mut res)) in lanes.into_iter().zip(results.drain(..)).enumerate() {
        let (mapping, shard, mut stop) = (mapping.clone(), shard.to_owned(), stop.clone());
        tasks.spawn(async move {
            let size = mapping.m.batch_size as usize;
            let mut rest = lane;
            let mut ok = true;
            while ok && !rest.is_empty() {
                let later = rest.split_off(size.min(rest.len()));
                ok = process(&mapping, &shard, rest, &mut res, &mut stop, None).await;
                rest = later;
            }
            (i, ok, res)
        });
    }
    let mut back: Vec<Option<Results>> = (0..n).map(|_| None).collect();
    let mut all_ok = true;
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((i, ok, res)) => {
                back[i] = Some(res);
                all_ok &= ok;
            }
            Err(_) => all_ok = false,
        }
    }
    results.extend(back.into_iter().map(|r| r.unwrap_or_else(Results::new)));
    all_ok
}

/// Reads a shard with tumbling windows of `secs`: one lane, each batch
/// invoked as the shard's [`Tumbler`] plans it, a window closed by a final
/// invocation when a later one begins, when the shard was read empty after
/// its end, or when the shard ends; the checkpoint moves when a window
/// closed (see the module's doc).
async fn tumble(
    mapping: &Arc<Mapping>,
    shard: &str,
    mut src: ShardReader<'_>,
    secs: u32,
    stop: &mut watch::Receiver<bool>,
    backoff: &mut Duration,
) -> End {
    let mut gatherer = Gatherer::new(Limits::of(&mapping.m, Duration::ZERO));
    let mut tumbler = Tumbler::new(secs);
    let mut results = Results::new();
    // The last record read of the open window: the checkpoint once it closed.
    let mut last: Option<String> = None;
    loop {
        src.open_window = tumbler.open();
        let batch = tokio::select! {
            b = gatherer.next(&mut src) => b,
            _ = stop.changed() => return End::Stopped,
        };
        let ended = match batch {
            Ok(batch) => {
                *backoff = Duration::from_millis(200);
                // A record whose source gave no arrival time counts as
                // arriving when it was read.
                let now = lamb_types::timefmt::epoch_seconds(time::OffsetDateTime::now_utc());
                let arrival = |r: &Record<Handle>| Some(r.handle.arrival).filter(|a| *a > 0.0).unwrap_or(now);
                for step in tumbler.plan(batch, arrival) {
                    let ok = match step {
                        Step::Close(w) => close(mapping, shard, w, &mut tumbler, &mut last, &mut results, stop).await,
                        Step::Aggregate(w, records) => {
                            let seq = records.last().map(|r| r.handle.seq.clone());
                            let ok =
                                process(mapping, shard, records, &mut results, stop, Some((w, &mut tumbler))).await;
                            last = seq.or(last);
                            ok && end_early(mapping, shard, w, &mut tumbler, &mut results, stop).await
                        }
                    };
                    if !ok {
                        return End::Stopped;
                    }
                }
                continue;
            }
            Err(PullEnd::Lost(e)) => return End::Lost(e),
            Err(PullEnd::Idle) => false,
            Err(PullEnd::ShardEnded) => true,
        };
        // The open window is over: read empty after its end, or the shard
        // ended (Lambda does not carry a window to the child shards).
        if let Some(w) = tumbler.open() {
            if !close(mapping, shard, w, &mut tumbler, &mut last, &mut results, stop).await {
                return End::Stopped;
            }
            tumbler.closed();
        }
        if ended {
            return match write_checkpoint(mapping, shard, SHARD_END).await {
                Ok(()) => End::ShardEnded,
                Err(e) => End::Lost(e),
            };
        }
    }
}

/// Closes window `w` with its final invocation, drops its state and moves
/// the checkpoint past its records. False when the mapping stopped.
async fn close(
    mapping: &Mapping,
    shard: &str,
    w: Window,
    tumbler: &mut Tumbler,
    last: &mut Option<String>,
    results: &mut Results,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let flags = Flags {
        final_invoke: true,
        terminated_early: false,
    };
    if !final_invoke(mapping, shard, w, tumbler, flags, results, stop).await {
        return false;
    }
    tumbler.reset_state();
    if let Some(seq) = last.take() {
        if let Err(e) = write_checkpoint(mapping, shard, &seq).await {
            // The next checkpoint covers it; a restart meanwhile reads the
            // window again.
            tracing::warn!(uuid = %mapping.m.uuid, shard, error = %e, "checkpoint not written");
        }
    }
    true
}

/// A state past Lambda's 1 MB ends window `w` early: a final invocation
/// with `isWindowTerminatedEarly`, and the window goes on with a fresh
/// state. False when the mapping stopped.
async fn end_early(
    mapping: &Mapping,
    shard: &str,
    w: Window,
    tumbler: &mut Tumbler,
    results: &mut Results,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if !tumbler.state_too_big() {
        return true;
    }
    let flags = Flags {
        final_invoke: true,
        terminated_early: true,
    };
    let ok = final_invoke(mapping, shard, w, tumbler, flags, results, stop).await;
    tumbler.reset_state();
    ok
}

/// A window's final invocation (no records, the window's state), retried
/// until it succeeds: Lambda holds the shard until then. False when the
/// mapping stopped meanwhile.
async fn final_invoke(
    mapping: &Mapping,
    shard: &str,
    w: Window,
    tumbler: &Tumbler,
    flags: Flags,
    results: &mut Results,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    let m = &mapping.m;
    let event = window::event(Vec::new(), &w, tumbler.state(), shard, &m.event_source_arn, flags);
    let mut attempts: u32 = 0;
    loop {
        let outcome = window_invoke(mapping, &event, None, None).await;
        batch::log(m, &outcome, 0);
        results.record(&mapping.st, &m.uuid, &outcome).await;
        if matches!(outcome, Outcome::Done { .. }) {
            return true;
        }
        attempts += 1;
        let pause = Duration::from_millis(250 * (1 << attempts.min(4)));
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return false,
        }
    }
}

/// Invokes the function with a window's event; an answer without a
/// `state` fails the invocation, as Lambda has it, and the state of one
/// that succeeded goes to `tumbler`.
async fn window_invoke(
    mapping: &Mapping,
    event: &Value,
    ids: Option<&[String]>,
    tumbler: Option<&mut Tumbler>,
) -> Outcome {
    let (outcome, answer) = batch::invoke_answering(&mapping.st, &mapping.m, event, ids).await;
    if !matches!(outcome, Outcome::Done { .. }) {
        return outcome;
    }
    match window::state_of(answer.as_ref()) {
        Ok(state) => {
            if let Some(t) = tumbler {
                t.set_state(state);
            }
            outcome
        }
        Err(why) => Outcome::Failed(why),
    }
}

/// Runs one batch to its end: success, or records given up on (sent to the
/// on-failure destination). With a tumbling window (`win`), the event is
/// the window's and the function's answer carries its next state. False
/// when the mapping stopped meanwhile.
async fn process(
    mapping: &Mapping,
    shard: &str,
    batch: Vec<Record<Handle>>,
    results: &mut Results,
    stop: &mut watch::Receiver<bool>,
    mut win: Option<(Window, &mut Tumbler)>,
) -> bool {
    let m = &mapping.m;
    let max_retries = m.maximum_retry_attempts.unwrap_or(-1);
    let exhausted = |attempts: i64| max_retries >= 0 && attempts > i64::from(max_retries);
    let mut pieces = VecDeque::from([batch]);
    while let Some(mut piece) = pieces.pop_front() {
        let mut attempts: i64 = 0;
        loop {
            let (old, fresh) = split_by_age(m, piece);
            if !old.is_empty() {
                on_failure(mapping, shard, &old, "RecordAgeExceeded", attempts).await;
            }
            piece = fresh;
            if piece.is_empty() {
                break;
            }
            let seqs: Vec<String> = piece.iter().map(|r| r.handle.seq.clone()).collect();
            let ids = m.reports_batch_item_failures().then_some(&seqs[..]);
            let items: Vec<&Value> = piece.iter().map(|r| &r.item).collect();
            let outcome = match win.as_mut() {
                None => batch::invoke(&mapping.st, m, &json!({ "Records": items }), ids).await,
                Some((w, t)) => {
                    let event = window::event(items, w, t.state(), shard, &m.event_source_arn, Flags::default());
                    window_invoke(mapping, &event, ids, Some(t)).await
                }
            };
            batch::log(m, &outcome, piece.len());
            results.record(&mapping.st, &m.uuid, &outcome).await;
            attempts += 1;
            match outcome {
                Outcome::Done { failed } if failed.is_empty() => break,
                Outcome::Done { failed } => {
                    // Retry from the first record reported failed.
                    let first = piece.iter().position(|r| failed.contains(&r.handle.seq)).unwrap_or(0);
                    piece = piece.split_off(first);
                }
                Outcome::Failed(_) if m.bisect_batch_on_function_error == Some(true) && piece.len() > 1 => {
                    let second = piece.split_off(piece.len() / 2);
                    pieces.push_front(second);
                    pieces.push_front(piece);
                    break;
                }
                Outcome::Failed(_) | Outcome::NotRun(_) => {}
            }
            if exhausted(attempts) {
                on_failure(mapping, shard, &piece, "RetryAttemptsExhausted", attempts).await;
                break;
            }
            let pause = Duration::from_millis(250 * (1 << attempts.min(4)));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return false,
            }
        }
    }
    true
}

/// Records older than `MaximumRecordAgeInSeconds`, and the rest.
fn split_by_age(
    m: &EventSourceMappingConfiguration,
    piece: Vec<Record<Handle>>,
) -> (Vec<Record<Handle>>, Vec<Record<Handle>>) {
    let max_age = m.maximum_record_age_in_seconds.unwrap_or(-1);
    if max_age < 0 {
        return (Vec::new(), piece);
    }
    let now = lamb_types::timefmt::epoch_seconds(time::OffsetDateTime::now_utc());
    piece
        .into_iter()
        .partition(|r| r.handle.arrival > 0.0 && now - r.handle.arrival > f64::from(max_age))
}

fn iso(epoch: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos((epoch * 1e9) as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Describes records given up on to the on-failure destination (an SQS
/// queue), as Lambda does; without one they are only logged.
async fn on_failure(mapping: &Mapping, shard: &str, records: &[Record<Handle>], condition: &str, attempts: i64) {
    let m = &mapping.m;
    let (Some(first), Some(last)) = (records.first(), records.last()) else {
        return;
    };
    tracing::warn!(uuid = %m.uuid, shard, condition, n = records.len(), "records skipped");
    let Some(dest) = m.on_failure_destination() else {
        return;
    };
    let info = json!({
        "shardId": shard,
        "startSequenceNumber": first.handle.seq,
        "endSequenceNumber": last.handle.seq,
        "approximateArrivalOfFirstRecord": iso(first.handle.arrival),
        "approximateArrivalOfLastRecord": iso(last.handle.arrival),
        "batchSize": records.len(),
        "streamArn": m.event_source_arn,
    });
    let info_key = match mapping.api {
        Api::Kinesis { .. } => "KinesisBatchInfo",
        Api::DynamoDb { .. } => "DDBStreamBatchInfo",
    };
    let body = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": m.function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": iso(lamb_types::timefmt::epoch_seconds(time::OffsetDateTime::now_utc())),
        info_key: info,
    });
    if let Err(e) = send_to_queue(mapping, dest, &body.to_string()).await {
        tracing::warn!(uuid = %m.uuid, destination = dest, error = %e, "on-failure destination not written");
    }
}

async fn send_to_queue(mapping: &Mapping, queue_arn: &str, body: &str) -> Result<(), String> {
    let name = queue_arn.rsplit(':').next().unwrap_or_default();
    let owner = queue_arn.split(':').nth(4).filter(|a| !a.is_empty());
    let client = aws::sqs(&mapping.st.aws_endpoints, aws::region_of(queue_arn)).await;
    let url = client
        .get_queue_url()
        .queue_name(name)
        .set_queue_owner_aws_account_id(owner.map(str::to_owned))
        .send()
        .await
        .map_err(|e| format!("GetQueueUrl {name}: {}", describe(&e)))?
        .queue_url
        .unwrap_or_default();
    client
        .send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| format!("SendMessage: {}", describe(&e)))?;
    Ok(())
}

enum PullEnd {
    ShardEnded,
    Lost(String),
    /// With nothing gathered, the shard was read empty to its tip once the
    /// open tumbling window was over.
    Idle,
}

struct ShardReader<'a> {
    mapping: &'a Mapping,
    shard: String,
    /// None once the shard ended.
    iterator: Option<String>,
    filters: Filters,
    /// The open tumbling window: a read that found nothing new once it is
    /// over ends the pull with `Idle`.
    open_window: Option<Window>,
}

impl Pull<Handle> for ShardReader<'_> {
    type Error = PullEnd;

    async fn pull(&mut self, want: usize, deadline: Option<Instant>) -> Result<Vec<Record<Handle>>, PullEnd> {
        loop {
            let Some(it) = self.iterator.take() else {
                // The shard ended: hand out what was gathered first.
                return match deadline {
                    None => Err(PullEnd::ShardEnded),
                    Some(_) => Ok(Vec::new()),
                };
            };
            let asked = lamb_types::timefmt::epoch_seconds(time::OffsetDateTime::now_utc());
            let (records, next, caught_up) = self
                .mapping
                .api
                .records(self.mapping, &self.shard, &it, want)
                .await
                .map_err(PullEnd::Lost)?;
            self.iterator = next;
            let view = |item: &Value| match &self.mapping.api {
                Api::Kinesis { .. } => {
                    let mut v = item["kinesis"].clone();
                    let data = v["data"]
                        .as_str()
                        .and_then(|d| STANDARD.decode(d).ok())
                        .unwrap_or_default();
                    v["data"] = payload_view(&data);
                    v
                }
                Api::DynamoDb { .. } => item.clone(),
            };
            let (keep, _dropped) = batch::keep_matching(&self.filters, records, view);
            if !keep.is_empty() || self.iterator.is_none() {
                return Ok(keep);
            }
            if deadline.is_none() && caught_up && self.open_window.is_some_and(|w| w.over(asked)) {
                return Err(PullEnd::Idle);
            }
            let idle = match deadline {
                None => IDLE_POLL,
                Some(d) => d.saturating_duration_since(Instant::now()).min(IDLE_POLL),
            };
            tokio::time::sleep(idle).await;
            if deadline.is_some() {
                return Ok(Vec::new());
            }
        }
    }
}

impl Api {
    async fn shards(&self) -> Result<Vec<String>, String> {
        match self {
            Api::Kinesis { client, stream } => {
                let out = client
                    .list_shards()
                    .stream_name(stream)
                    .send()
                    .await
                    .map_err(|e| format!("ListShards: {}", describe(&e)))?;
                Ok(out.shards.unwrap_or_default().into_iter().map(|s| s.shard_id).collect())
            }
            Api::DynamoDb { client, stream_arn } => {
                let out = client
                    .describe_stream()
                    .stream_arn(stream_arn)
                    .send()
                    .await
                    .map_err(|e| format!("DescribeStream: {}", describe(&e)))?;
                Ok(out
                    .stream_description
                    .and_then(|d| d.shards)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|s| s.shard_id)
                    .collect())
            }
        }
    }

    async fn iterator(&self, shard: &str, start: &Start) -> Result<String, String> {
        match self {
            Api::Kinesis { client, stream } => {
                use aws_sdk_kinesis::types::ShardIteratorType as T;
                let mut req = client.get_shard_iterator().stream_name(stream).shard_id(shard);
                req = match start {
                    Start::TrimHorizon => req.shard_iterator_type(T::TrimHorizon),
                    Start::Latest => req.shard_iterator_type(T::Latest),
                    Start::AtTimestamp(t) => req
                        .shard_iterator_type(T::AtTimestamp)
                        .timestamp(aws_sdk_kinesis::primitives::DateTime::from_secs_f64(*t)),
                    Start::After(seq) => req
                        .shard_iterator_type(T::AfterSequenceNumber)
                        .starting_sequence_number(seq),
                };
                let out = req
                    .send()
                    .await
                    .map_err(|e| format!("GetShardIterator: {}", describe(&e)))?;
                out.shard_iterator.ok_or_else(|| "GetShardIterator: no iterator".into())
            }
            Api::DynamoDb { client, stream_arn } => {
                use aws_sdk_dynamodbstreams::types::ShardIteratorType as T;
                let mut req = client.get_shard_iterator().stream_arn(stream_arn).shard_id(shard);
                req = match start {
                    Start::TrimHorizon | Start::AtTimestamp(_) => req.shard_iterator_type(T::TrimHorizon),
                    Start::Latest => req.shard_iterator_type(T::Latest),
                    Start::After(seq) => req.shard_iterator_type(T::AfterSequenceNumber).sequence_number(seq),
                };
                let out = req
                    .send()
                    .await
                    .map_err(|e| format!("GetShardIterator: {}", describe(&e)))?;
                out.shard_iterator.ok_or_else(|| "GetShardIterator: no iterator".into())
            }
        }
    }

    /// Up to `want` records from `iterator`, the next iterator (none once
    /// the shard ended), and whether the read reached the shard's tip
    /// (Kinesis' `MillisBehindLatest` of 0; DynamoDB Streams does not say).
    async fn records(
        &self,
        mapping: &Mapping,
        shard: &str,
        iterator: &str,
        want: usize,
    ) -> Result<(Vec<Record<Handle>>, Option<String>, bool), String> {
        match self {
            Api::Kinesis { client, .. } => {
                let out = client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(want.clamp(1, 10_000) as i32)
                    .send()
                    .await
                    .map_err(|e| format!("GetRecords: {}", describe(&e)))?;
                let records = out
                    .records
                    .iter()
                    .map(|r| {
                        let arrival = r.approximate_arrival_timestamp.map_or(0.0, |t| t.as_secs_f64());
                        let handle = Handle {
                            seq: r.sequence_number.clone(),
                            arrival,
                            key: r.partition_key.clone().unwrap_or_default(),
                        };
                        Record::new(handle, kinesis_item(mapping, shard, r, arrival))
                    })
                    .collect();
                // Kinesis may answer nothing while records lie further on.
                let caught_up = out.millis_behind_latest.is_none_or(|ms| ms == 0);
                Ok((records, out.next_shard_iterator, caught_up))
            }
            Api::DynamoDb { client, .. } => {
                let out = client
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(want.clamp(1, 1000) as i32)
                    .send()
                    .await
                    .map_err(|e| format!("GetRecords: {}", describe(&e)))?;
                let records = out
                    .records
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|r| {
                        let d = r.dynamodb.as_ref()?;
                        let handle = Handle {
                            seq: d.sequence_number.clone()?,
                            arrival: d.approximate_creation_date_time.map_or(0.0, |t| t.as_secs_f64()),
                            key: d.keys.as_ref().map(|k| image(k).to_string()).unwrap_or_default(),
                        };
                        Some(Record::new(handle, dynamodb_item(mapping, r)))
                    })
                    .collect();
                Ok((records, out.next_shard_iterator, true))
            }
        }
    }
}

/// One record as Lambda's `aws:kinesis` event shows it.
fn kinesis_item(mapping: &Mapping, shard: &str, r: &aws_sdk_kinesis::types::Record, arrival: f64) -> Value {
    json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r.partition_key,
            "sequenceNumber": r.sequence_number,
            "data": STANDARD.encode(r.data.as_ref()),
            "approximateArrivalTimestamp": arrival,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("{shard}:{}", r.sequence_number),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": mapping.role,
        "awsRegion": mapping.region,
        "eventSourceARN": mapping.m.event_source_arn,
    })
}

/// A DynamoDB attribute value in the stream's JSON (`{"S": "x"}`).
fn attribute(v: &AttributeValue) -> Value {
    let blob = |b: &aws_sdk_dynamodbstreams::primitives::Blob| json!(STANDARD.encode(b.as_ref()));
    match v {
        AttributeValue::S(s) => json!({ "S": s }),
        AttributeValue::N(n) => json!({ "N": n }),
        AttributeValue::B(b) => json!({ "B": blob(b) }),
        AttributeValue::Bool(b) => json!({ "BOOL": b }),
        AttributeValue::Null(b) => json!({ "NULL": b }),
        AttributeValue::Ss(l) => json!({ "SS": l }),
        AttributeValue::Ns(l) => json!({ "NS": l }),
        AttributeValue::Bs(l) => json!({ "BS": l.iter().map(blob).collect::<Vec<_>>() }),
        AttributeValue::L(l) => json!({ "L": l.iter().map(attribute).collect::<Vec<_>>() }),
        AttributeValue::M(m) => json!({ "M": image(m) }),
        _ => Value::Null,
    }
}

fn image(m: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect::<Map<_, _>>())
}

/// One record as Lambda's `aws:dynamodb` event shows it.
fn dynamodb_item(mapping: &Mapping, r: &aws_sdk_dynamodbstreams::types::Record) -> Value {
    let mut d = Map::new();
    if let Some(s) = &r.dynamodb {
        if let Some(t) = s.approximate_creation_date_time {
            d.insert("ApproximateCreationDateTime".into(), json!(t.secs()));
        }
        for (key, img) in [
            ("Keys", &s.keys),
            ("NewImage", &s.new_image),
            ("OldImage", &s.old_image),
        ] {
            if let Some(img) = img {
                d.insert(key.into(), image(img));
            }
        }
        d.insert("SequenceNumber".into(), json!(s.sequence_number));
        d.insert("SizeBytes".into(), json!(s.size_bytes));
        if let Some(v) = &s.stream_view_type {
            d.insert("StreamViewType".into(), json!(v.as_str()));
        }
    }
    json!({
        "eventID": r.event_id,
        "eventName": r.event_name.as_ref().map(|n| n.as_str()),
        "eventVersion": r.event_version.as_deref().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": mapping.region,
        "dynamodb": d,
        "eventSourceARN": mapping.m.event_source_arn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_values() {
        let mut m = HashMap::new();
        m.insert("n".to_owned(), AttributeValue::N("1".into()));
        m.insert("l".to_owned(), AttributeValue::L(vec![AttributeValue::Bool(true)]));
        assert_eq!(image(&m), json!({"n": {"N": "1"}, "l": {"L": [{"BOOL": true}]}}));
        assert_eq!(attribute(&AttributeValue::Ss(vec!["a".into()])), json!({"SS": ["a"]}));
    }

    #[test]
    fn records_past_the_maximum_age_are_split_off() {
        let src = Source::parse(&Default::default(), "arn:aws:kinesis:us-east-1:1:stream/s").unwrap();
        let mut m = lamb_types::esm::new_mapping(&src, "u".into(), "a".into(), "f".into());
        let now = lamb_types::timefmt::epoch_seconds(time::OffsetDateTime::now_utc());
        let rec = |seq: &str, arrival: f64| {
            Record::new(
                Handle {
                    seq: seq.into(),
                    arrival,
                    key: String::new(),
                },
                json!(seq),
            )
        };
        let piece = || vec![rec("old", now - 3600.0), rec("new", now), rec("unknown", 0.0)];
        let seqs = |v: &[Record<Handle>]| v.iter().map(|r| r.handle.seq.clone()).collect::<Vec<_>>();
        // -1 (the default): no record is too old.
        let (old, fresh) = split_by_age(&m, piece());
        assert!(old.is_empty() && fresh.len() == 3);
        m.maximum_record_age_in_seconds = Some(60);
        let (old, fresh) = split_by_age(&m, piece());
        assert_eq!(seqs(&old), ["old"]);
        assert_eq!(seqs(&fresh), ["new", "unknown"]);
    }

    #[test]
    fn iso_times() {
        assert_eq!(iso(0.5), "1970-01-01T00:00:00.5Z");
    }
}
