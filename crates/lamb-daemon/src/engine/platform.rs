//! Lambda's platform log records in the function's `LoggingConfig` format:
//! the Text lines (`START`, `END`, `REPORT`, `INIT_REPORT`, `logs.rs`) or,
//! with `LogFormat: JSON`, the `platform.*` records Lambda writes instead,
//! each at its level and kept only at or above `SystemLogLevel`
//! (`platform.start`, `platform.report` and `platform.initReport` at INFO,
//! `platform.runtimeDone` at DEBUG).

use super::logs;
use lamb_types::LoggingConfig;
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;

/// How an invocation or an init ended, for the records that say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<'a> {
    Success,
    /// With the error type, where Lambda names one.
    Error(Option<&'a str>),
    Timeout,
}

impl Status<'_> {
    fn name(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error(_) => "error",
            Status::Timeout => "timeout",
        }
    }
}

/// The figures of one REPORT.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_mb: u32,
    pub max_memory_bytes: u64,
    /// On a cold start's first invocation only.
    pub init: Option<Duration>,
    pub status: Status<'a>,
}

/// A system record's level; ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Debug,
    Info,
    Warn,
}

/// One function's platform records.
#[derive(Debug, Clone, Copy)]
pub struct Platform {
    /// `None`: Text; else JSON, keeping records at this level or above.
    json: Option<Level>,
}

impl Platform {
    pub fn of(config: &LoggingConfig) -> Platform {
        let json = config.system_level().map(|l| match l {
            "DEBUG" => Level::Debug,
            "WARN" => Level::Warn,
            _ => Level::Info,
        });
        Platform { json }
    }

    pub fn start(&self, request_id: &str, version: &str) -> String {
        match self.json {
            None => logs::start_line(request_id, version),
            Some(_) => self.record(
                Level::Info,
                "platform.start",
                json!({"requestId": request_id, "version": version}),
            ),
        }
    }

    /// `END`, or JSON's `platform.runtimeDone`.
    pub fn end(&self, request_id: &str, duration: Duration, status: Status<'_>) -> String {
        match self.json {
            None => logs::end_line(request_id),
            Some(_) => {
                let mut record = json!({
                    "requestId": request_id,
                    "status": status.name(),
                    "metrics": {"durationMs": ms(duration)},
                });
                if let Status::Error(Some(t)) = status {
                    record["errorType"] = t.into();
                }
                self.record(Level::Debug, "platform.runtimeDone", record)
            }
        }
    }

    pub fn report(&self, r: &Report<'_>) -> String {
        if self.json.is_none() {
            let status = (r.status == Status::Timeout).then_some("timeout");
            return logs::report_line(
                r.request_id,
                r.duration,
                r.memory_mb,
                r.max_memory_bytes,
                r.init,
                status,
            );
        }
        let mut metrics = json!({
            "durationMs": ms(r.duration),
            "billedDurationMs": logs::billed_ms(r.duration),
            "memorySizeMB": r.memory_mb,
            "maxMemoryUsedMB": logs::used_mb(r.max_memory_bytes),
        });
        if let Some(init) = r.init {
            metrics["initDurationMs"] = ms(init).into();
        }
        let mut record = json!({"requestId": r.request_id, "metrics": metrics, "status": r.status.name()});
        if let Status::Error(Some(t)) = r.status {
            record["errorType"] = t.into();
        }
        self.record(Level::Info, "platform.report", record)
    }

    /// `INIT_REPORT` of an init that did not end ready, in `phase`
    /// (`init`, or `invoke` for a retried one).
    pub fn init_report(&self, init: Duration, phase: &str, status: Status<'_>) -> String {
        if self.json.is_none() {
            let mut status_text = format!("Status: {}", status.name());
            if let Status::Error(Some(t)) = status {
                status_text.push_str(&format!("\tError Type: {t}"));
            }
            return format!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: {phase}\t{status_text}\t\n",
                ms(init)
            );
        }
        let mut record = json!({
            "initializationType": "on-demand",
            "phase": phase,
            "status": status.name(),
            "metrics": {"durationMs": ms(init)},
        });
        if let Status::Error(Some(t)) = status {
            record["errorType"] = t.into();
        }
        self.record(Level::Info, "platform.initReport", record)
    }

    /// One JSON line, or nothing below the system log level.
    fn record(&self, level: Level, kind: &str, record: Value) -> String {
        if self.json.is_some_and(|min| level < min) {
            return String::new();
        }
        let time = logs::timestamp(OffsetDateTime::now_utc());
        let mut line = json!({"time": time, "type": kind, "record": record}).to_string();
        line.push('\n');
        line
    }
}

/// Milliseconds with two decimals, as Lambda's records give them.
fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 100_000.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamb_types::LogFormat;

    fn json(system: Option<&str>) -> Platform {
        Platform::of(&LoggingConfig {
            log_format: LogFormat::Json,
            system_log_level: system.map(str::to_owned),
            ..LoggingConfig::default()
        })
    }

    fn parse(line: &str) -> Value {
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "{line:?}");
        serde_json::from_str(line).unwrap()
    }

    const REPORT: Report<'static> = Report {
        request_id: "id",
        duration: Duration::from_micros(3_757_180),
        memory_mb: 128,
        max_memory_bytes: 81 * 1024 * 1024,
        init: Some(Duration::from_micros(170_570)),
        status: Status::Success,
    };

    #[test]
    fn text_is_the_plain_lines() {
        let text = Platform::of(&LoggingConfig::default());
        assert_eq!(text.start("id", "$LATEST"), "START RequestId: id Version: $LATEST\n");
        assert_eq!(text.end("id", Duration::ZERO, Status::Success), "END RequestId: id\n");
        assert!(text
            .report(&REPORT)
            .starts_with("REPORT RequestId: id\tDuration: 3757.18 ms\t"));
        assert_eq!(
            text.init_report(
                Duration::from_millis(10),
                "init",
                Status::Error(Some("Runtime.ExitError"))
            ),
            "INIT_REPORT Init Duration: 10.00 ms\tPhase: init\tStatus: error\tError Type: Runtime.ExitError\t\n"
        );
    }

    #[test]
    fn json_gives_lambdas_records() {
        let p = json(None);
        let start = parse(&p.start("id", "$LATEST"));
        assert_eq!(start["type"], "platform.start");
        assert_eq!(start["record"], json!({"requestId": "id", "version": "$LATEST"}));
        assert!(start["time"].as_str().unwrap().ends_with('Z'));
        let report = parse(&p.report(&REPORT));
        assert_eq!(report["type"], "platform.report");
        assert_eq!(
            report["record"],
            json!({"requestId": "id", "status": "success", "metrics": {
                "durationMs": 3757.18, "billedDurationMs": 3758, "memorySizeMB": 128,
                "maxMemoryUsedMB": 81, "initDurationMs": 170.57}})
        );
        let init = parse(&p.init_report(Duration::from_secs(10), "init", Status::Timeout));
        assert_eq!(init["type"], "platform.initReport");
        assert_eq!(init["record"]["status"], "timeout");
        assert_eq!(init["record"]["phase"], "init");
    }

    #[test]
    fn the_system_level_filters_records() {
        // runtimeDone is DEBUG: kept at DEBUG only.
        assert_eq!(json(None).end("id", Duration::ZERO, Status::Success), "");
        let done = parse(&json(Some("DEBUG")).end("id", Duration::ZERO, Status::Timeout));
        assert_eq!(done["type"], "platform.runtimeDone");
        assert_eq!(done["record"]["status"], "timeout");
        // WARN keeps none of the INFO records.
        let warn = json(Some("WARN"));
        assert_eq!(warn.start("id", "1"), "");
        assert_eq!(warn.report(&REPORT), "");
        assert_eq!(warn.init_report(Duration::ZERO, "init", Status::Timeout), "");
    }
}
