//! Lambda's platform log records in the function's `LoggingConfig` format:
//! the Text lines (`START`, `END`, `REPORT`, `INIT_REPORT`, the timeout and
//! runtime-exit lines, `logs.rs`) or, with `LogFormat: JSON`, the
//! `platform.*` records Lambda writes instead, each at its level and kept
//! only at or above `SystemLogLevel` (`platform.initStart`,
//! `platform.start`, `platform.report` and `platform.initReport` at INFO,
//! `platform.runtimeDone` at DEBUG). In JSON a timeout or a runtime exit is
//! no line of its own: `platform.runtimeDone` and `platform.report` carry it
//! as their `status` (`timeout`, `failure`) and `errorType`.

use super::logs;
use lamb_types::LoggingConfig;
use serde_json::{json, Value};
use std::time::Duration;
use time::OffsetDateTime;

/// How an invocation or an init ended, for the records that say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<'a> {
    Success,
    /// The function's error, with the error type where Lambda names one.
    Error(Option<&'a str>),
    /// The runtime itself failed (it exited mid-invocation), with the
    /// error type.
    Failure(&'a str),
    Timeout,
}

impl<'a> Status<'a> {
    fn name(self) -> &'static str {
        match self {
            Status::Success => "success",
            Status::Error(_) => "error",
            Status::Failure(_) => "failure",
            Status::Timeout => "timeout",
        }
    }

    fn error_type(self) -> Option<&'a str> {
        match self {
            Status::Error(t) => t,
            Status::Failure(t) => Some(t),
            Status::Success | Status::Timeout => None,
        }
    }
}

/// What `platform.initStart` says about the init that begins.
#[derive(Debug, Clone, Copy)]
pub struct InitStart<'a> {
    /// `init`, or `invoke` for an init retried within the invocation.
    pub phase: &'a str,
    /// `on-demand` or `provisioned-concurrency`.
    pub initialization_type: &'a str,
    /// `None` for a container image.
    pub runtime: Option<&'a str>,
    pub runtime_version_arn: Option<&'a str>,
    pub function_name: &'a str,
    pub function_version: &'a str,
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
    /// On a SnapStart restore's invocation only.
    pub restore: Option<Duration>,
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

    /// JSON's `platform.initStart`, written as the sandbox starts its
    /// runtime; Text has no line for it.
    pub fn init_start(&self, i: &InitStart<'_>) -> String {
        if self.json.is_none() {
            return String::new();
        }
        let mut record = json!({
            "initializationType": i.initialization_type,
            "phase": i.phase,
            "functionName": i.function_name,
            "functionVersion": i.function_version,
        });
        if let Some(runtime) = i.runtime {
            record["runtimeVersion"] = runtime_version(runtime).into();
        }
        if let Some(arn) = i.runtime_version_arn {
            record["runtimeVersionArn"] = arn.into();
        }
        self.record(Level::Info, "platform.initStart", record)
    }

    /// The line after an invocation that timed out; in JSON the
    /// `timeout` status of `platform.runtimeDone` and `platform.report`.
    pub fn timeout(&self, request_id: &str, timeout_s: u32) -> String {
        match self.json {
            None => logs::timeout_line(request_id, timeout_s),
            Some(_) => String::new(),
        }
    }

    /// The lines of a runtime that exited mid-invocation; in JSON the
    /// `failure` status of `platform.runtimeDone` and `platform.report`.
    pub fn runtime_exit(&self, request_id: &str, status: &str) -> String {
        match self.json {
            None => logs::exit_lines(request_id, status),
            Some(_) => String::new(),
        }
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
                if let Some(t) = status.error_type() {
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
                r.restore,
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
        if let Some(restore) = r.restore {
            metrics["restoreDurationMs"] = ms(restore).into();
            metrics["billedRestoreDurationMs"] = json!(logs::billed_ms(restore));
        }
        let mut record = json!({"requestId": r.request_id, "metrics": metrics, "status": r.status.name()});
        if let Some(t) = r.status.error_type() {
            record["errorType"] = t.into();
        }
        self.record(Level::Info, "platform.report", record)
    }

    /// `INIT_REPORT` of an init that did not end ready, in `phase`
    /// (`init`, or `invoke` for a retried one), of an `on-demand` or a
    /// `provisioned-concurrency` sandbox.
    pub fn init_report(&self, init: Duration, phase: &str, initialization_type: &str, status: Status<'_>) -> String {
        if self.json.is_none() {
            let mut status_text = format!("Status: {}", status.name());
            if let Some(t) = status.error_type() {
                status_text.push_str(&format!("\tError Type: {t}"));
            }
            return format!(
                "INIT_REPORT Init Duration: {:.2} ms\tPhase: {phase}\t{status_text}\t\n",
                ms(init)
            );
        }
        let mut record = json!({
            "initializationType": initialization_type,
            "phase": phase,
            "status": status.name(),
            "metrics": {"durationMs": ms(init)},
        });
        if let Some(t) = status.error_type() {
            record["errorType"] = t.into();
        }
        self.record(Level::Info, "platform.initReport", record)
    }

    /// JSON's `platform.restoreStart`, as a SnapStart restore begins;
    /// Text has no line for it (as for `platform.initStart`).
    pub fn restore_start(&self, function_name: &str, function_version: &str) -> String {
        if self.json.is_none() {
            return String::new();
        }
        let record = json!({"functionName": function_name, "functionVersion": function_version});
        self.record(Level::Info, "platform.restoreStart", record)
    }

    /// JSON's `platform.restoreReport` of a restore that ended; Text says
    /// its duration in the REPORT line (`Restore Duration`).
    pub fn restore_report(&self, restore: Duration, status: Status<'_>) -> String {
        if self.json.is_none() {
            return String::new();
        }
        let mut record = json!({"status": status.name(), "metrics": {"durationMs": ms(restore)}});
        if let Some(t) = status.error_type() {
            record["errorType"] = t.into();
        }
        self.record(Level::Info, "platform.restoreReport", record)
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

/// Lambda's `family:version` form of a runtime's name (`python3.13` is
/// `python:3.13`, `nodejs22.x` is `nodejs:22`, `provided.al2023` is
/// `provided:al2023`). Lambda appends its build (`.v18`); lamb runs one tree
/// per runtime, named by `runtimeVersionArn`, so there is none to append.
fn runtime_version(runtime: &str) -> String {
    let split = runtime
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .unwrap_or(runtime.len());
    let (family, version) = runtime.split_at(split);
    match version.trim_start_matches('.').trim_end_matches(".x") {
        "" => family.to_owned(),
        version => format!("{family}:{version}"),
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
        restore: None,
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
                "on-demand",
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
        let init = parse(&p.init_report(Duration::from_secs(10), "init", "on-demand", Status::Timeout));
        assert_eq!(init["type"], "platform.initReport");
        assert_eq!(init["record"]["status"], "timeout");
        assert_eq!(init["record"]["phase"], "init");
        assert_eq!(init["record"]["initializationType"], "on-demand");
        let provisioned = parse(&p.init_report(Duration::ZERO, "init", "provisioned-concurrency", Status::Timeout));
        assert_eq!(provisioned["record"]["initializationType"], "provisioned-concurrency");
    }

    #[test]
    fn init_start_names_the_runtime_and_the_function() {
        let i = InitStart {
            phase: "init",
            initialization_type: "on-demand",
            runtime: Some("python3.13"),
            runtime_version_arn: Some("arn:aws:lambda:us-east-1::runtime:ab"),
            function_name: "fn",
            function_version: "$LATEST",
        };
        assert_eq!(Platform::of(&LoggingConfig::default()).init_start(&i), "");
        let start = parse(&json(None).init_start(&i));
        assert_eq!(start["type"], "platform.initStart");
        assert_eq!(
            start["record"],
            json!({"initializationType": "on-demand", "phase": "init", "runtimeVersion": "python:3.13",
                "runtimeVersionArn": "arn:aws:lambda:us-east-1::runtime:ab",
                "functionName": "fn", "functionVersion": "$LATEST"})
        );
        let image = parse(&json(None).init_start(&InitStart {
            runtime: None,
            runtime_version_arn: None,
            ..i
        }));
        assert!(image["record"].get("runtimeVersion").is_none());
        assert_eq!(json(Some("WARN")).init_start(&i), "");
    }

    #[test]
    fn runtime_versions_in_lambdas_form() {
        for (runtime, version) in [
            ("python3.13", "python:3.13"),
            ("nodejs22.x", "nodejs:22"),
            ("java21", "java:21"),
            ("ruby3.3", "ruby:3.3"),
            ("provided.al2023", "provided:al2023"),
            ("provided", "provided"),
        ] {
            assert_eq!(runtime_version(runtime), version);
        }
    }

    #[test]
    fn timeouts_and_exits_are_lines_in_text_and_statuses_in_json() {
        let text = Platform::of(&LoggingConfig::default());
        assert!(text
            .timeout("id", 3)
            .ends_with(" id Task timed out after 3.00 seconds\n"));
        assert_eq!(
            text.runtime_exit("id", "signal: killed"),
            "RequestId: id Error: Runtime exited with error: signal: killed\nRuntime.ExitError\n"
        );
        let p = json(Some("DEBUG"));
        assert_eq!(p.timeout("id", 3), "");
        assert_eq!(p.runtime_exit("id", "signal: killed"), "");
        let failure = Status::Failure("Runtime.ExitError");
        let done = parse(&p.end("id", Duration::ZERO, failure));
        assert_eq!(
            (&done["record"]["status"], &done["record"]["errorType"]),
            (&json!("failure"), &json!("Runtime.ExitError"))
        );
        let report = parse(&p.report(&Report {
            status: failure,
            ..REPORT
        }));
        assert_eq!(
            (&report["record"]["status"], &report["record"]["errorType"]),
            (&json!("failure"), &json!("Runtime.ExitError"))
        );
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
        assert_eq!(
            warn.init_report(Duration::ZERO, "init", "on-demand", Status::Timeout),
            ""
        );
    }
}
