//! What every source's poller shares, so that batching, filtering, invoking
//! and judging the function's answer are decided in one place whatever the
//! source: a [`Gatherer`] that fills a batch up to `BatchSize`, the batching
//! window and Lambda's 6 MB payload cap; [`keep_matching`] for
//! `FilterCriteria`; [`invoke`], which runs the function and reads a partial
//! batch response; and [`Results`], which keeps `LastProcessingResult`.

use crate::error::ApiError;
use crate::invocation::{self, Call, Target};
use crate::state::AppState;
use lamb_protocol::errors::Chain;
use lamb_types::esm::{EventSourceMappingConfiguration, OK, PROBLEM_FUNCTION_ERROR};
use lamb_types::esm_filter::Filters;
use serde_json::Value;
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tokio::time::Instant;

/// Lambda's cap on a synchronous invocation's payload, which a batch's
/// event must fit in.
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;
/// What the event's envelope around the records may take.
const ENVELOPE: usize = 4096;

/// One record as the poller holds it: the source's own handle (receipt,
/// sequence number, delivery tag) and the event's item for it.
#[derive(Debug, Clone)]
pub struct Record<H> {
    pub handle: H,
    /// The record as the function's event shows it.
    pub item: Value,
    /// Its serialized size in the event.
    pub size: usize,
}

impl<H> Record<H> {
    pub fn new(handle: H, item: Value) -> Self {
        let size = item.to_string().len() + 1;
        Record { handle, item, size }
    }
}

/// How a batch is filled.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub batch_size: usize,
    /// How long to wait for more records once the first one arrived.
    pub window: Duration,
}

impl Limits {
    pub fn of(m: &EventSourceMappingConfiguration, default_window: Duration) -> Self {
        Limits {
            batch_size: m.batch_size as usize,
            window: match m.maximum_batching_window_in_seconds {
                0 => default_window,
                s => Duration::from_secs(u64::from(s)),
            },
        }
    }
}

/// Fills batches from a source. Records a pull brought that do not fit the
/// batch (by count or by payload size) are kept for the next one, in order.
pub struct Gatherer<H> {
    limits: Limits,
    carry: VecDeque<Record<H>>,
}

impl<H> Gatherer<H> {
    pub fn new(limits: Limits) -> Self {
        Gatherer {
            limits,
            carry: VecDeque::new(),
        }
    }

    /// Records pulled but not yet handed out in a batch.
    pub fn carried(&mut self) -> Vec<Record<H>> {
        self.carry.drain(..).collect()
    }

    /// The next batch: at least one record.
    pub async fn next<P: Pull<H>>(&mut self, source: &mut P) -> Result<Vec<Record<H>>, P::Error> {
        let mut batch = Vec::new();
        let mut bytes = 0;
        let mut deadline = None;
        loop {
            while let Some(r) = self.carry.pop_front() {
                let full = batch.len() >= self.limits.batch_size;
                if full || (!batch.is_empty() && bytes + r.size > MAX_PAYLOAD - ENVELOPE) {
                    self.carry.push_front(r);
                    return Ok(batch);
                }
                bytes += r.size;
                batch.push(r);
            }
            // Records carried from the last batch open the window too.
            if deadline.is_none() && !batch.is_empty() {
                deadline = Some(Instant::now() + self.limits.window);
            }
            if batch.len() >= self.limits.batch_size || deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(batch);
            }
            let got = source.pull(self.limits.batch_size - batch.len(), deadline).await?;
            if deadline.is_none() && !got.is_empty() {
                deadline = Some(Instant::now() + self.limits.window);
            }
            self.carry.extend(got);
        }
    }
}

/// A source of records.
pub trait Pull<H> {
    type Error;
    /// Up to `want` records (more are carried to the next batch), waiting
    /// for them at most until `deadline`, or as long as the source likes
    /// when there is none (nothing gathered yet); records the mapping's
    /// filters drop are settled by the source and not returned.
    async fn pull(&mut self, want: usize, deadline: Option<Instant>) -> Result<Vec<Record<H>>, Self::Error>;
}

/// Splits records into those the mapping's filters let through and those
/// they drop (which a source settles as processed, as Lambda does).
pub fn keep_matching<H>(
    filters: &Filters,
    records: Vec<Record<H>>,
    view: impl Fn(&Value) -> Value,
) -> (Vec<Record<H>>, Vec<Record<H>>) {
    if filters.is_empty() {
        return (records, Vec::new());
    }
    records.into_iter().partition(|r| filters.matches(&view(&r.item)))
}

/// How a batch ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every record succeeded except those named (a partial batch response's
    /// `itemIdentifier`s, in the function's order).
    Done { failed: Vec<String> },
    /// The function failed (or its partial batch response was invalid):
    /// the whole batch failed.
    Failed(String),
    /// The function was not run (throttled, gone, not ready).
    NotRun(String),
}

/// Runs the mapping's function with `event`. `ids` are the batch's item
/// identifiers when the mapping reports batch item failures.
pub async fn invoke(
    st: &AppState,
    m: &EventSourceMappingConfiguration,
    event: &Value,
    ids: Option<&[String]>,
) -> Outcome {
    invoke_answering(st, m, event, ids).await.0
}

/// [`invoke`], and the function's answer as JSON when it succeeded with
/// one (a tumbling window's invocation returns its `state` in it).
pub async fn invoke_answering(
    st: &AppState,
    m: &EventSourceMappingConfiguration,
    event: &Value,
    ids: Option<&[String]>,
) -> (Outcome, Option<Value>) {
    let target = match Target::by_arn(&m.function_arn) {
        Ok(t) => t,
        Err(e) => return (Outcome::NotRun(format!("bad function of mapping: {e}")), None),
    };
    let call = Call::new(uuid::Uuid::new_v4().to_string(), event.to_string().into_bytes());
    match invocation::invoke(st, target, call).await {
        Ok(r) if r.function_error.is_none() => {
            let outcome = match ids {
                None => Outcome::Done { failed: Vec::new() },
                Some(ids) => match batch_item_failures(&r.payload, ids) {
                    Ok(failed) => Outcome::Done { failed },
                    Err(why) => Outcome::Failed(why),
                },
            };
            (outcome, serde_json::from_slice(&r.payload).ok())
        }
        Ok(r) => (Outcome::Failed(String::from_utf8_lossy(&r.payload).into_owned()), None),
        Err(e @ ApiError::Throttled { .. }) => (Outcome::NotRun(e.to_string()), None),
        Err(e) => (Outcome::NotRun(Chain(&e).to_string()), None),
    }
}

/// Reads a partial batch response (`{"batchItemFailures": [{"itemIdentifier":
/// ID}]}`) as Lambda does: no answer, `null`, or an empty list is success;
/// an identifier that is empty or not of the batch fails the whole batch.
pub fn batch_item_failures(payload: &[u8], ids: &[String]) -> Result<Vec<String>, String> {
    let v: Value = match serde_json::from_slice(payload) {
        Ok(v) => v,
        Err(_) if payload.iter().all(u8::is_ascii_whitespace) => return Ok(Vec::new()),
        // Lambda treats a response it cannot read as success.
        Err(_) => return Ok(Vec::new()),
    };
    let list = match v.get("batchItemFailures") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(l)) => l,
        Some(_) => return Err("batchItemFailures is not a list".into()),
    };
    let known: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut out = Vec::new();
    for f in list {
        let id = match f.get("itemIdentifier") {
            Some(Value::String(s)) if known.contains(s.as_str()) => s.clone(),
            other => {
                return Err(format!(
                    "invalid itemIdentifier {other:?} in the partial batch response"
                ))
            }
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Keeps the mapping's `LastProcessingResult`, writing the registry only when
/// it changes.
pub struct Results {
    last: Option<&'static str>,
}

impl Results {
    pub fn new() -> Self {
        Results { last: None }
    }

    pub async fn record(&mut self, st: &AppState, uuid: &str, outcome: &Outcome) {
        let now = match outcome {
            Outcome::Done { .. } => OK,
            Outcome::Failed(_) | Outcome::NotRun(_) => PROBLEM_FUNCTION_ERROR,
        };
        if self.last == Some(now) {
            return;
        }
        self.last = Some(now);
        let uuid = uuid.to_owned();
        let r = st
            .blocking(move |s| Ok(s.registry.set_esm_last_processing_result(&uuid, now)?))
            .await;
        if let Err(e) = r {
            tracing::debug!(error = %Chain(&e), "LastProcessingResult not written");
        }
    }
}

/// Logs how a batch ended.
pub fn log(m: &EventSourceMappingConfiguration, outcome: &Outcome, n: usize) {
    match outcome {
        Outcome::Done { failed } if failed.is_empty() => tracing::debug!(uuid = %m.uuid, n, "batch processed"),
        Outcome::Done { failed } => tracing::info!(uuid = %m.uuid, n, failed = failed.len(), "batch partly failed"),
        Outcome::Failed(e) => tracing::info!(uuid = %m.uuid, n, error = %e, "batch failed"),
        Outcome::NotRun(e) => tracing::warn!(uuid = %m.uuid, n, error = %e, "batch not run"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(n: usize, size: usize) -> Record<usize> {
        Record {
            handle: n,
            item: json!(n),
            size,
        }
    }

    fn limits(batch_size: usize) -> Limits {
        Limits {
            batch_size,
            window: Duration::ZERO,
        }
    }

    /// Hands out `per_pull` records (of `size` bytes) a pull, `left` in all.
    struct Fake {
        next: usize,
        left: usize,
        per_pull: usize,
        size: usize,
        deadlines: Vec<bool>,
    }

    impl Pull<usize> for Fake {
        type Error = ();
        async fn pull(&mut self, _want: usize, deadline: Option<Instant>) -> Result<Vec<Record<usize>>, ()> {
            self.deadlines.push(deadline.is_some());
            let n = self.per_pull.min(self.left);
            self.left -= n;
            let out = (self.next..self.next + n).map(|i| rec(i, self.size)).collect();
            self.next += n;
            Ok(out)
        }
    }

    fn fake(left: usize, per_pull: usize, size: usize) -> Fake {
        Fake {
            next: 0,
            left,
            per_pull,
            size,
            deadlines: Vec::new(),
        }
    }

    fn handles(b: Vec<Record<usize>>) -> Vec<usize> {
        b.into_iter().map(|r| r.handle).collect()
    }

    #[tokio::test]
    async fn batches_stop_at_batch_size_and_carry_the_rest() {
        let mut g = Gatherer::new(limits(3));
        let mut src = fake(7, 5, 10);
        assert_eq!(handles(g.next(&mut src).await.unwrap()), vec![0, 1, 2]);
        // Without a window, what was carried is a batch of its own at once.
        assert_eq!(handles(g.next(&mut src).await.unwrap()), vec![3, 4]);
        assert_eq!(handles(g.next(&mut src).await.unwrap()), vec![5, 6]);
    }

    #[tokio::test]
    async fn batches_stop_below_the_payload_cap() {
        let mut g = Gatherer::new(limits(100));
        let mut src = fake(4, 4, MAX_PAYLOAD / 3);
        assert_eq!(handles(g.next(&mut src).await.unwrap()), vec![0, 1]);
        assert_eq!(handles(g.next(&mut src).await.unwrap()), vec![2, 3]);
    }

    #[tokio::test]
    async fn a_window_waits_for_more_records() {
        let mut g = Gatherer::new(Limits {
            batch_size: 10,
            window: Duration::from_secs(3600),
        });
        // One record a pull: the window is long, so only BatchSize ends the
        // batch, and every pull after the first has the window's deadline.
        let mut src = fake(100, 1, 1);
        assert_eq!(g.next(&mut src).await.unwrap().len(), 10);
        assert_eq!(src.deadlines.len(), 10);
        assert!(!src.deadlines[0] && src.deadlines[1..].iter().all(|d| *d));
    }

    #[tokio::test]
    async fn no_window_takes_what_one_pull_brought() {
        let mut g = Gatherer::new(limits(10));
        let mut src = fake(100, 3, 1);
        assert_eq!(g.next(&mut src).await.unwrap().len(), 3);
    }

    #[test]
    fn partial_batch_responses() {
        let ids = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(batch_item_failures(b"", &ids), Ok(vec![]));
        assert_eq!(batch_item_failures(b"null", &ids), Ok(vec![]));
        assert_eq!(batch_item_failures(br#"{"batchItemFailures": []}"#, &ids), Ok(vec![]));
        assert_eq!(
            batch_item_failures(br#"{"batchItemFailures": [{"itemIdentifier": "b"}]}"#, &ids),
            Ok(vec!["b".to_owned()])
        );
        assert!(batch_item_failures(br#"{"batchItemFailures": [{"itemIdentifier": "z"}]}"#, &ids).is_err());
        assert!(batch_item_failures(br#"{"batchItemFailures": [{"itemIdentifier": ""}]}"#, &ids).is_err());
        assert!(batch_item_failures(br#"{"batchItemFailures": [{}]}"#, &ids).is_err());
    }

    #[test]
    fn filters_split_records() {
        let fc = lamb_types::esm_filter::FilterCriteria {
            filters: vec![lamb_types::esm_filter::Filter {
                pattern: r#"{"n": [{"numeric": [">", 1]}]}"#.into(),
            }],
        };
        let f = fc.compile().unwrap();
        let recs: Vec<_> = (0..4).map(|n| rec(n, 1)).collect();
        let (keep, drop) = keep_matching(&f, recs, |item| json!({ "n": item }));
        assert_eq!(keep.iter().map(|r| r.handle).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(drop.len(), 2);
    }
}
