//! Fires schedules: each firing queues an async invocation (the durable
//! queue's workers deliver it) with EventBridge's Scheduled Event.
//!
//! The schedules are read from the registry at each tick, so adding or
//! removing one needs no signal. A schedule's first firing is computed from
//! when the runner first sees it, so after a restart missed firings are not
//! replayed (EventBridge does not either).
//!
//! Time may be scaled for tests (`lamb serve --schedule-time-scale 60`: a
//! minute of schedule time passes in a second): the runner keeps a virtual
//! clock that starts at the real time and runs `scale` times faster; firings
//! and the event's `time` are in that clock.

use super::expr::Schedule;
use crate::state::AppState;
use lamb_protocol::errors::Chain;
use lamb_store::{NewEvent, ScheduleRecord};
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::sync::watch;

/// How often the registry is read again, at most, in real time.
const RELOAD: Duration = Duration::from_millis(250);

struct Clock {
    real: Instant,
    virtual_start: OffsetDateTime,
    scale: f64,
}

impl Clock {
    fn now(&self) -> OffsetDateTime {
        let elapsed = self.real.elapsed().as_secs_f64() * self.scale;
        self.virtual_start + time::Duration::seconds_f64(elapsed)
    }

    fn real_until(&self, t: OffsetDateTime) -> Duration {
        let ahead = (t - self.now()).as_seconds_f64() / self.scale;
        Duration::from_secs_f64(ahead.max(0.0))
    }
}

struct Armed {
    record: ScheduleRecord,
    schedule: Schedule,
    next: Option<OffsetDateTime>,
}

/// The Scheduled Event of one firing of the rule `name`.
pub fn scheduled_event(ctx: &lamb_types::ArnContext, name: &str, id: &str, at: OffsetDateTime) -> serde_json::Value {
    let at = at.replace_nanosecond(0).unwrap_or(at);
    json!({
        "version": "0",
        "id": id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ctx.account,
        "time": at.format(&Rfc3339).unwrap_or_default(),
        "region": ctx.region,
        "resources": [format!("arn:{}:events:{}:{}:rule/{name}", ctx.partition, ctx.region, ctx.account)],
        "detail": {},
    })
}

/// Runs until `stop` turns true.
pub async fn run(state: AppState, scale: f64, mut stop: watch::Receiver<bool>) {
    let clock = Clock {
        real: Instant::now(),
        virtual_start: OffsetDateTime::now_utc(),
        scale: if scale > 0.0 { scale } else { 1.0 },
    };
    let mut armed: HashMap<String, Armed> = HashMap::new();
    loop {
        match state.blocking(|s| Ok(s.registry.list_schedules()?)).await {
            Ok(records) => sync(&mut armed, records, clock.now()),
            Err(e) => tracing::warn!(error = %Chain(&e), "cannot read schedules"),
        }
        let now = clock.now();
        for a in armed.values_mut() {
            let Some(at) = a.next.filter(|t| *t <= now) else {
                continue;
            };
            fire(&state, &a.record, at).await;
            // Behind by more than one period (a slow tick): the next after now.
            a.next = a
                .schedule
                .next_after(at)
                .map(|n| if n <= now { a.schedule.next_after(now) } else { Some(n) })
                .unwrap_or(None);
        }
        let wait = armed
            .values()
            .filter_map(|a| a.next)
            .map(|t| clock.real_until(t))
            .min()
            .map_or(RELOAD, |d| d.min(RELOAD));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

fn sync(armed: &mut HashMap<String, Armed>, records: Vec<ScheduleRecord>, now: OffsetDateTime) {
    let mut seen = Vec::with_capacity(records.len());
    for r in records {
        seen.push(r.name.clone());
        if armed.get(&r.name).is_some_and(|a| a.record == r) {
            continue;
        }
        match Schedule::parse(&r.expression) {
            Ok(schedule) => {
                let next = schedule.next_after(now);
                armed.insert(
                    r.name.clone(),
                    Armed {
                        record: r,
                        schedule,
                        next,
                    },
                );
            }
            Err(e) => {
                tracing::warn!(schedule = r.name, error = %Chain(&e), "schedule skipped");
                armed.remove(&r.name);
            }
        }
    }
    armed.retain(|name, _| seen.contains(name));
}

async fn fire(state: &AppState, r: &ScheduleRecord, at: OffsetDateTime) {
    let id = uuid::Uuid::new_v4().to_string();
    let payload = serde_json::to_vec(&scheduled_event(&state.ctx, &r.name, &id, at)).unwrap_or_default();
    let event = NewEvent {
        function: r.function.clone(),
        qualifier: r.qualifier.clone().unwrap_or_else(|| "$LATEST".to_owned()),
        payload,
        request_id: id.clone(),
        enqueued_at_ms: (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
    };
    match state.blocking(move |s| Ok(s.registry.enqueue_event(event)?)).await {
        Ok(_) => tracing::info!(schedule = r.name, function = r.function, event = id, "schedule fired"),
        Err(e) => tracing::warn!(schedule = r.name, error = %Chain(&e), "schedule firing not queued"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduled_event_shape() {
        let ctx = lamb_types::ArnContext::default();
        let at = OffsetDateTime::from_unix_timestamp(1_764_180_000).unwrap();
        let e = scheduled_event(&ctx, "nightly", "id-1", at);
        assert_eq!(e["detail-type"], "Scheduled Event");
        assert_eq!(e["source"], "aws.events");
        assert_eq!(e["version"], "0");
        assert_eq!(e["time"], "2025-11-26T18:00:00Z");
        assert_eq!(e["resources"][0], "arn:aws:events:us-east-1:000000000000:rule/nightly");
        assert_eq!(e["detail"], json!({}));
    }

    #[test]
    fn scaled_clock_runs_faster() {
        let c = Clock {
            real: Instant::now(),
            virtual_start: OffsetDateTime::now_utc(),
            scale: 60.0,
        };
        let in_a_minute = c.now() + time::Duration::minutes(1);
        let real = c.real_until(in_a_minute);
        assert!(
            real <= Duration::from_secs(1) && real > Duration::from_millis(900),
            "{real:?}"
        );
    }
}
