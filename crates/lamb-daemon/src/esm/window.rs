//! Tumbling windows of Kinesis and DynamoDB Streams mappings
//! (`TumblingWindowInSeconds` above 0), as Lambda runs them: every record
//! belongs to the window of `TumblingWindowInSeconds` that its arrival in
//! the stream falls in (windows are aligned to multiples of their length
//! since the epoch, per shard); each invocation's event carries the
//! window, the `state` the previous invocation of the same window returned,
//! and the flags `isFinalInvokeForWindow` / `isWindowTerminatedEarly`; the
//! function answers `{"state": {...}, "batchItemFailures": [...]}`, and an
//! answer without a `state` object is a failed invocation.
//!
//! A window closes with a final invocation without records
//! (`isFinalInvokeForWindow: true`, the window's whole state) when a record
//! of a later window is read, when the shard was read empty after the
//! window's end, or when the shard ends; its state is then dropped. A state
//! over 1 MB ends the window early: a final invocation with
//! `isWindowTerminatedEarly: true`, and the same window goes on with a
//! fresh state. The pure decisions are here; `streams` runs them.

use serde_json::{json, Map, Value};

/// Lambda's cap on a window's state: above it the window ends early.
pub const MAX_STATE: usize = 1024 * 1024;

/// One tumbling window, in epoch seconds: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: f64,
    pub end: f64,
}

impl Window {
    /// The window of `secs` seconds that `arrival` falls in.
    pub fn of(arrival: f64, secs: u32) -> Window {
        let len = f64::from(secs.max(1));
        let start = (arrival / len).floor() * len;
        Window {
            start,
            end: start + len,
        }
    }

    /// Whether the window is over for a read of the shard that began at
    /// `asked` and came back empty: no record can join it any more.
    pub fn over(&self, asked: f64) -> bool {
        asked >= self.end
    }
}

/// What to do next with a shard's records.
#[derive(Debug, PartialEq)]
pub enum Step<T> {
    /// The final invocation of a window (no records, its whole state).
    Close(Window),
    /// An aggregation invocation of a window with these records.
    Aggregate(Window, Vec<T>),
}

/// A shard's open window and its state, kept in memory.
#[derive(Debug)]
pub struct Tumbler {
    secs: u32,
    open: Option<Window>,
    state: Value,
}

impl Tumbler {
    pub fn new(secs: u32) -> Self {
        Tumbler {
            secs,
            open: None,
            state: json!({}),
        }
    }

    /// The window whose records were read and that is not closed yet.
    pub fn open(&self) -> Option<Window> {
        self.open
    }

    pub fn state(&self) -> &Value {
        &self.state
    }

    /// The state the function returned for the open window.
    pub fn set_state(&mut self, state: Value) {
        self.state = state;
    }

    /// Whether the state grew past Lambda's cap (the window ends early).
    pub fn state_too_big(&self) -> bool {
        self.state.to_string().len() > MAX_STATE
    }

    /// Drops the state (the window ended, early or not).
    pub fn reset_state(&mut self) {
        self.state = json!({});
    }

    /// Closes the open window: a final invocation has run for it.
    pub fn closed(&mut self) {
        self.open = None;
        self.reset_state();
    }

    /// The steps for records read in order: consecutive records of one
    /// window are one aggregation, and a window is closed before the
    /// first record of a later one. A record that arrived before the open
    /// window began (clock skew) counts in the open window, so windows
    /// only move forward.
    pub fn plan<T>(&mut self, records: Vec<T>, arrival: impl Fn(&T) -> f64) -> Vec<Step<T>> {
        let mut steps = Vec::new();
        for r in records {
            let mut w = Window::of(arrival(&r), self.secs);
            match self.open {
                Some(open) if w.start <= open.start => w = open,
                Some(open) => {
                    steps.push(Step::Close(open));
                    self.open = Some(w);
                }
                None => self.open = Some(w),
            }
            match steps.last_mut() {
                Some(Step::Aggregate(last, recs)) if *last == w => recs.push(r),
                _ => steps.push(Step::Aggregate(w, vec![r])),
            }
        }
        steps
    }
}

/// What an invocation of a window says besides its records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags {
    pub final_invoke: bool,
    pub terminated_early: bool,
}

/// Lambda's event for a window's invocation: the `Records` and the
/// window's properties.
pub fn event(records: Vec<&Value>, w: &Window, state: &Value, shard: &str, arn: &str, flags: Flags) -> Value {
    json!({
        "Records": records,
        "window": { "start": iso(w.start), "end": iso(w.end) },
        "state": state,
        "shardId": shard,
        "eventSourceARN": arn,
        "isFinalInvokeForWindow": flags.final_invoke,
        "isWindowTerminatedEarly": flags.terminated_early,
    })
}

/// The `state` of the function's answer: an object (`null` is an empty
/// one); an answer without it is a failed invocation, as Lambda has it.
pub fn state_of(answer: Option<&Value>) -> Result<Value, String> {
    match answer.and_then(|a| a.get("state")) {
        Some(Value::Object(s)) => Ok(Value::Object(s.clone())),
        Some(Value::Null) => Ok(Value::Object(Map::new())),
        Some(_) => Err("the response's state is not an object".into()),
        None => Err("the response of a tumbling window invocation has no state".into()),
    }
}

/// A window boundary as Lambda writes it: `2020-12-09T07:04:00Z`.
fn iso(epoch: f64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(epoch.floor() as i64).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(start: f64, end: f64) -> Window {
        Window { start, end }
    }

    #[test]
    fn windows_are_aligned_to_their_length() {
        assert_eq!(Window::of(1000.5, 60), w(960.0, 1020.0));
        assert_eq!(Window::of(1020.0, 60), w(1020.0, 1080.0));
        assert_eq!(Window::of(7.9, 2), w(6.0, 8.0));
    }

    #[test]
    fn records_are_split_by_window_and_a_later_window_closes_the_open_one() {
        let mut t = Tumbler::new(10);
        let steps = t.plan(vec![1.0, 2.0, 9.9, 10.0, 35.0], |a| *a);
        assert_eq!(
            steps,
            vec![
                Step::Aggregate(w(0.0, 10.0), vec![1.0, 2.0, 9.9]),
                Step::Close(w(0.0, 10.0)),
                Step::Aggregate(w(10.0, 20.0), vec![10.0]),
                Step::Close(w(10.0, 20.0)),
                Step::Aggregate(w(30.0, 40.0), vec![35.0]),
            ]
        );
        assert_eq!(t.open(), Some(w(30.0, 40.0)));
        // The next read goes on in the open window: no close.
        assert_eq!(
            t.plan(vec![36.0], |a| *a),
            vec![Step::Aggregate(w(30.0, 40.0), vec![36.0])]
        );
        // A record from before the open window (skew) stays in it.
        assert_eq!(
            t.plan(vec![12.0], |a| *a),
            vec![Step::Aggregate(w(30.0, 40.0), vec![12.0])]
        );
    }

    #[test]
    fn a_window_is_over_only_after_its_end() {
        let mut t = Tumbler::new(2);
        t.plan(vec![4.5], |a| *a);
        let open = t.open().unwrap();
        assert!(!open.over(5.9));
        assert!(open.over(6.0));
        t.set_state(json!({"n": 1}));
        t.closed();
        assert_eq!((t.open(), t.state()), (None, &json!({})));
    }

    #[test]
    fn state_passes_and_resets() {
        let mut t = Tumbler::new(2);
        t.plan(vec![1.0], |a| *a);
        t.set_state(json!({"count": 3}));
        assert_eq!(t.state(), &json!({"count": 3}));
        assert!(!t.state_too_big());
        t.set_state(json!({ "big": "x".repeat(MAX_STATE) }));
        assert!(t.state_too_big());
        t.reset_state();
        assert_eq!((t.open(), t.state()), (Some(w(0.0, 2.0)), &json!({})));
    }

    #[test]
    fn the_event_carries_the_window() {
        let rec = json!({"kinesis": {}});
        let e = event(
            vec![&rec],
            &w(1607497440.0, 1607497560.0),
            &json!({"1": 282}),
            "shardId-000000000006",
            "arn:aws:kinesis:us-east-1:1:stream/s",
            Flags {
                final_invoke: true,
                terminated_early: false,
            },
        );
        assert_eq!(
            e,
            json!({
                "Records": [rec],
                "window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"},
                "state": {"1": 282},
                "shardId": "shardId-000000000006",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/s",
                "isFinalInvokeForWindow": true,
                "isWindowTerminatedEarly": false,
            })
        );
    }

    #[test]
    fn the_answer_must_have_a_state() {
        assert_eq!(state_of(Some(&json!({"state": {"n": 2}}))), Ok(json!({"n": 2})));
        assert_eq!(state_of(Some(&json!({"state": null}))), Ok(json!({})));
        assert!(state_of(Some(&json!({"batchItemFailures": []}))).is_err());
        assert!(state_of(Some(&json!({"state": 3}))).is_err());
        assert!(state_of(None).is_err());
    }
}
