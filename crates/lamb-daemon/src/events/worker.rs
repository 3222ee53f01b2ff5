//! The worker: claims due events, runs each in a task of its own, and
//! settles the outcome in the registry. It sleeps until the next event is
//! due or an enqueue wakes it; it never polls.

use super::record::{destination_function, invocation_record, Condition, Response};
use super::{now_ms, EventQueue};
use crate::error::ApiError;
use crate::invocation::{self, Call, Target};
use crate::invoker::{InvokeRequest, InvokeResponse};
use crate::state::{AppState, Shared};
use lamb_protocol::errors::Chain;
use lamb_store::{NewEvent, QueuedEvent, StoreError};
use lamb_types::invoke_config::{DEFAULT_MAX_EVENT_AGE_S, DEFAULT_MAX_RETRY_ATTEMPTS};
use lamb_types::{ErrorKind, PutFunctionEventInvokeConfigRequest, Qualifier};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// Events run at once, at most; the engine's limits apply on top.
const MAX_RUNNING: u32 = 64;
/// A claimed event is due again after this long if its worker vanished
/// without a restart (Lambda's longest timeout and a margin).
const LEASE_MS: i64 = 16 * 60 * 1000;
/// Failed events are listed by `lamb events` this long, then purged.
pub const FAILED_RETENTION_MS: i64 = 24 * 3600 * 1000;
/// The longest sleep with nothing due; an enqueue wakes the worker earlier.
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

pub(super) async fn run(st: AppState, mut stop: watch::Receiver<bool>) {
    let q = Arc::clone(&st.events);
    let run_id = q.run_id.clone();
    let owner = run_id.clone();
    match st
        .blocking(move |s| Ok(s.registry.release_events(&owner, now_ms())?))
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            events = n,
            "async events an earlier daemon left running are queued again"
        ),
        Err(e) => tracing::error!(error = %Chain(&e), "cannot release the leases of an earlier daemon"),
    }
    let slots = Arc::new(Semaphore::new(
        st.limits.concurrent_executions.clamp(1, MAX_RUNNING) as usize
    ));
    let mut last_purge = 0;
    loop {
        let first = tokio::select! {
            p = Arc::clone(&slots).acquire_owned() => p,
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(first) = first else {
            return;
        };
        let now = now_ms();
        if now - last_purge > 60_000 {
            last_purge = now;
            if let Err(e) = st
                .blocking(move |s| Ok(s.registry.purge_failed_events(now - FAILED_RETENTION_MS)?))
                .await
            {
                tracing::warn!(error = %Chain(&e), "cannot purge failed async events");
            }
        }
        let want = 1 + slots.available_permits();
        let owner = run_id.clone();
        let claimed = match st
            .blocking(move |s| Ok(s.registry.claim_events(&owner, now, now + LEASE_MS, want)?))
            .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %Chain(&e), "cannot claim async events");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if claimed.is_empty() {
            drop(first);
            let next = st.blocking(|s| Ok(s.registry.next_event_due()?)).await.ok().flatten();
            let wait = next.map_or(IDLE_SLEEP, |t| Duration::from_millis((t - now_ms()).max(0) as u64));
            tokio::select! {
                _ = q.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            continue;
        }
        let mut first = Some(first);
        for ev in claimed {
            let permit = match first.take() {
                Some(p) => p,
                None => match Arc::clone(&slots).acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            let st = st.clone();
            tokio::spawn(async move {
                process(st, ev).await;
                drop(permit);
            });
        }
    }
}

/// What one attempt came to.
enum Outcome {
    /// The function, version or alias is gone.
    Gone(String),
    /// The engine's concurrency limits said no: wait, not an attempt.
    Throttled,
    /// Older than `MaximumEventAgeInSeconds` before this attempt.
    Expired,
    /// The function ran (successfully or not).
    Ran { version: String, response: InvokeResponse },
    /// lamb could not run it; counted as an attempt.
    Failed(String),
}

struct Prepared {
    req: InvokeRequest,
    config: PutFunctionEventInvokeConfigRequest,
}

fn is_not_found(e: &ApiError) -> bool {
    matches!(e, ApiError::Lambda(l) if l.kind == ErrorKind::ResourceNotFound)
}

async fn process(st: AppState, ev: QueuedEvent) {
    let (config, outcome) = attempt(&st, &ev).await;
    let id = ev.id.clone();
    let q = Arc::clone(&st.events);
    if let Err(e) = st.blocking(move |s| Ok(settle(s, &q, &ev, &config, outcome)?)).await {
        // The event stays leased: the next daemon run, or the lease's end,
        // runs it again.
        tracing::error!(event = %id, error = %Chain(&e), "cannot settle an async event");
    }
    st.events.wake();
}

async fn attempt(st: &AppState, ev: &QueuedEvent) -> (PutFunctionEventInvokeConfigRequest, Outcome) {
    let qualifier = match Qualifier::parse(&ev.qualifier) {
        Ok(q) => q,
        Err(e) => return (Default::default(), Outcome::Gone(e.to_string())),
    };
    let target = Target::new(&st.ctx, ev.function.clone(), qualifier);
    let call = Call::new(ev.id.clone(), ev.payload.clone());
    let prepared = st
        .blocking(move |s| {
            let req = invocation::prepare(s, &target, call)?;
            let config = s
                .reads
                .event_config(&*s.registry, &target.function, &target.qualifier)?;
            Ok(Prepared { req, config })
        })
        .await;
    let p = match prepared {
        Ok(p) => p,
        Err(e) if is_not_found(&e) => return (Default::default(), Outcome::Gone(e.to_string())),
        Err(e) => {
            tracing::error!(event = %ev.id, error = %Chain(&e), "cannot prepare an async event");
            return (Default::default(), Outcome::Failed(e.to_string()));
        }
    };
    let max_age_ms = i64::from(p.config.maximum_event_age_in_seconds.unwrap_or(DEFAULT_MAX_EVENT_AGE_S)) * 1000;
    if now_ms() - ev.enqueued_at_ms > max_age_ms {
        return (p.config, Outcome::Expired);
    }
    let version = p.req.executed_version.to_string();
    // The worker waits for the answer; the caller had its 202.
    let outcome = match st.invoker.invoke(p.req).await {
        Ok(response) => Outcome::Ran { version, response },
        Err(ApiError::Throttled { .. }) => Outcome::Throttled,
        Err(e) => Outcome::Failed(e.to_string()),
    };
    (p.config, outcome)
}

/// The error text kept with a failed attempt.
fn run_error(response: &InvokeResponse) -> String {
    let body = String::from_utf8_lossy(&response.payload);
    let body: String = body.chars().take(512).collect();
    format!("{}: {body}", response.function_error.as_deref().unwrap_or("Unhandled"))
}

fn settle(
    s: &Shared,
    q: &EventQueue,
    ev: &QueuedEvent,
    config: &PutFunctionEventInvokeConfigRequest,
    outcome: Outcome,
) -> Result<(), StoreError> {
    let now = now_ms();
    let count = ev.attempts + 1;
    let max_retries = config.maximum_retry_attempts.unwrap_or(DEFAULT_MAX_RETRY_ATTEMPTS);
    let dest = |success: bool| {
        let d = config.destination_config.as_ref()?;
        if success {
            d.on_success.as_ref()?.destination.clone()
        } else {
            d.on_failure.as_ref()?.destination.clone()
        }
    };
    let (error, condition, response) = match &outcome {
        Outcome::Throttled => {
            let jitter: u64 = rand::random::<u64>() % 500;
            let at = now + 100 + jitter as i64;
            return s.registry.retry_event(&ev.id, ev.attempts, at, None);
        }
        Outcome::Gone(e) => return s.registry.finish_event(&ev.id, ev.attempts, Some(e), now, None),
        Outcome::Expired => (
            Some(format!(
                "event older than its maximum age after {} attempts",
                ev.attempts
            )),
            Condition::EventAgeExceeded,
            None,
        ),
        Outcome::Ran { version, response } => {
            let r = Response {
                executed_version: version.clone(),
                function_error: response.function_error.as_deref(),
                payload: &response.payload,
            };
            match &response.function_error {
                None => (None, Condition::Success, Some(r)),
                Some(_) => (Some(run_error(response)), Condition::RetriesExhausted, Some(r)),
            }
        }
        Outcome::Failed(e) => (Some(e.clone()), Condition::RetriesExhausted, None),
    };
    if condition == Condition::RetriesExhausted && count <= max_retries {
        let at = now + q.retry_delay(count).as_millis() as i64;
        return s.registry.retry_event(&ev.id, count, at, error.as_deref());
    }
    let invoke_count = if condition == Condition::EventAgeExceeded {
        ev.attempts
    } else {
        count
    };
    let then = match dest(condition == Condition::Success) {
        None => None,
        Some(arn) => match destination_function(&arn) {
            Ok(target) => Some(NewEvent {
                function: target.name,
                qualifier: target.qualifier.unwrap_or_else(Qualifier::latest).to_string(),
                payload: invocation_record(&s.ctx, ev, condition, invoke_count, response),
                request_id: uuid::Uuid::new_v4().to_string(),
                enqueued_at_ms: now,
            }),
            Err(e) => {
                tracing::warn!(event = %ev.id, destination = %arn, error = %e, "bad destination");
                None
            }
        },
    };
    let target = then.as_ref().map(|t| t.function.clone());
    match s
        .registry
        .finish_event(&ev.id, invoke_count, error.as_deref(), now, then)
    {
        Err(e) if e.to_lambda().kind == ErrorKind::ResourceNotFound && target.is_some() => {
            // The destination function is gone: the event ends all the same.
            let note = format!(
                "{}destination function {} not found",
                error.map(|e| format!("{e}; ")).unwrap_or_default(),
                target.unwrap_or_default()
            );
            tracing::warn!(event = %ev.id, "{note}");
            s.registry.finish_event(&ev.id, invoke_count, Some(&note), now, None)
        }
        r => r,
    }
}
