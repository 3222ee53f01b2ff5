//! The engine without root: admission, reserved concurrency, the pool
//! (reuse, freeze and thaw, TTL, least-recently-used eviction, memory) and
//! timeouts, against the in-process fake of `lamb init` (`super::fake`).
//! Every wait is for an event in the fake's book, never for a time.

use super::fake::{Book, FakeLauncher};
use super::{Engine, EngineConfig};
use crate::error::ApiError;
use crate::invoker::{InvokeRequest, InvokeResponse, Invoker, LogType};
use lamb_store::{CodeDigest, CodeInfo, FunctionRecord};
use lamb_types::{FunctionSpec, Version};
use std::sync::Arc;
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3600);

struct Rig {
    engine: Arc<Engine>,
    fake: FakeLauncher,
    _dir: tempfile::TempDir,
}

/// A failing test must not hang: the runtime's end waits for blocking
/// tasks, so nothing may stay held at the fake's gates.
impl Drop for Rig {
    fn drop(&mut self) {
        self.fake.release_freezes();
        self.fake.open_gate();
    }
}

/// An engine over the fake, nothing frozen or expired unless `tune` says.
fn rig(tune: impl FnOnce(&mut EngineConfig)) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("runtimes/provided.al2023")).unwrap();
    let mut config = EngineConfig::new(dir.path().join("data"), dir.path().join("runtimes"), "/lamb".into());
    config.memory_capacity_mb = 1024;
    config.freeze_grace = HOUR;
    config.idle_ttl = HOUR;
    tune(&mut config);
    let fake = FakeLauncher::new();
    let engine = Arc::new(Engine::new(fake.clone(), config));
    engine.start();
    Rig {
        engine,
        fake,
        _dir: dir,
    }
}

fn request(function: &str, payload: &str) -> InvokeRequest {
    InvokeRequest {
        request_id: uuid::Uuid::new_v4().to_string(),
        function: FunctionRecord {
            name: function.to_owned(),
            version: Version::Latest,
            spec: FunctionSpec::default(),
            version_description: None,
            code: CodeInfo {
                digest: CodeDigest::from_hex(&"0".repeat(64)).unwrap(),
                code_size: 0,
                unzipped_size: 0,
            },
            layers: Vec::new(),
            revision_id: "r1".into(),
            last_modified: String::new(),
            state: Default::default(),
            last_update_status: Default::default(),
        },
        executed_version: Version::Latest,
        invoked_function_arn: format!("arn:aws:lambda:us-east-1:000000000000:function:{function}"),
        code_path: "/nonexistent".into(),
        image_layers: Vec::new(),
        layer_paths: Vec::new(),
        payload: payload.as_bytes().to_vec(),
        log_type: LogType::None,
        client_context: None,
        reserved_concurrency: None,
        total_reserved_concurrency: 0,
    }
}

impl Rig {
    async fn invoke(&self, req: InvokeRequest) -> Result<InvokeResponse, ApiError> {
        self.engine.invoke(req).await
    }

    async fn ok(&self, function: &str, payload: &str) -> InvokeResponse {
        let out = self.invoke(request(function, payload)).await.unwrap();
        assert_eq!(out.function_error, None, "{}", String::from_utf8_lossy(&out.payload));
        out
    }

    /// Waits until the engine's gauges and the fake's book satisfy `done`:
    /// for what the fake cannot see, as a sandbox back in its pool after
    /// freezing.
    async fn wait_for_gauges(&self, what: &str, done: impl Fn(&super::Gauges, &Book) -> bool) {
        let wait = async {
            while !done(&self.engine.inner.lock().gauges(), &self.fake.book()) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), wait).await.is_err() {
            panic!("never happened: {what}");
        }
    }

    /// Starts an invocation that answers once the gate opens, and waits
    /// until the fake holds it.
    async fn hold(&self, req: InvokeRequest) -> tokio::task::JoinHandle<Result<InvokeResponse, ApiError>> {
        let before = self.fake.book().running;
        let engine = Arc::clone(&self.engine);
        let task = tokio::spawn(async move { engine.invoke(req).await });
        self.fake
            .wait_for("the held invocation runs", |b| b.running > before)
            .await;
        task
    }
}

impl Rig {
    /// The throttle reason `probe` gets while `held` runs; `held` answers
    /// after.
    async fn reason_while_held(&self, held: InvokeRequest, probe: InvokeRequest) -> &'static str {
        let task = self.hold(held).await;
        let reason = throttle_reason(self.invoke(probe).await);
        self.fake.open_gate();
        task.await.unwrap().unwrap();
        reason
    }
}

fn throttle_reason(r: Result<InvokeResponse, ApiError>) -> &'static str {
    match r {
        Err(ApiError::Throttled { reason }) => reason,
        other => panic!("expected a throttle, got {other:?}"),
    }
}

fn unhandled_body(out: &InvokeResponse) -> String {
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    String::from_utf8_lossy(&out.payload).into_owned()
}

#[tokio::test]
async fn a_warm_sandbox_is_reused() {
    let r = rig(|_| {});
    assert_eq!(r.ok("f", "1").await.payload, b"1");
    assert_eq!(r.ok("f", "2").await.payload, b"2");
    assert_eq!(r.fake.book().created, ["f"]);
}

#[tokio::test]
async fn each_function_has_its_own_pool() {
    let r = rig(|_| {});
    r.ok("f", "1").await;
    r.ok("g", "1").await;
    r.ok("f", "2").await;
    assert_eq!(r.fake.book().created, ["f", "g"]);
}

#[tokio::test]
async fn the_account_limit_throttles_while_full() {
    let r = rig(|c| c.concurrency_limit = 1);
    assert_eq!(
        r.reason_while_held(request("f", "\"hold\""), request("g", "1")).await,
        "ConcurrentInvocationLimitExceeded"
    );
    r.ok("g", "1").await;
}

#[tokio::test]
async fn reserved_concurrency_caps_its_function_and_is_kept_from_the_others() {
    let r = rig(|c| c.concurrency_limit = 3);
    let reserved = |function: &str, payload: &str| {
        let mut req = request(function, payload);
        req.reserved_concurrency = Some(2);
        req.total_reserved_concurrency = 2;
        req
    };
    let unreserved = |function: &str, payload: &str| {
        let mut req = request(function, payload);
        req.total_reserved_concurrency = 2;
        req
    };
    let f1 = r.hold(reserved("f", "\"hold\"")).await;
    let f2 = r.hold(reserved("f", "\"hold\"")).await;
    assert_eq!(
        throttle_reason(r.invoke(reserved("f", "1")).await),
        "ReservedFunctionConcurrentInvocationLimitExceeded"
    );
    // One place is left in the account, and it is the unreserved one.
    let g = r.hold(unreserved("g", "\"hold\"")).await;
    r.fake.open_gate();
    for t in [f1, f2, g] {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        r.reason_while_held(unreserved("h", "\"hold\""), unreserved("i", "1"))
            .await,
        "ConcurrentInvocationLimitExceeded"
    );
}

#[tokio::test]
async fn an_idle_sandbox_is_frozen_and_thawed_for_its_next_invocation() {
    let r = rig(|c| c.freeze_grace = Duration::ZERO);
    r.ok("f", "1").await;
    r.wait_for_gauges("the idle sandbox is back in its pool, frozen", |g, _| g.frozen == 1)
        .await;
    r.ok("f", "2").await;
    let book = r.fake.book();
    assert_eq!(book.created, ["f"]);
    assert!(book.thaws >= 1);
    assert_eq!(book.invoked_while_frozen, 0);
}

#[tokio::test]
async fn a_call_waits_for_its_sandbox_being_frozen_rather_than_starting_another() {
    let r = rig(|c| c.freeze_grace = Duration::ZERO);
    r.fake.hold_freezes();
    r.ok("f", "1").await;
    r.fake.wait_for("the freeze begins", |b| b.freezes_started == 1).await;
    let engine = Arc::clone(&r.engine);
    let second = tokio::spawn(async move { engine.invoke(request("f", "2")).await });
    // On this one-thread runtime the second call has gone as far as it can
    // (a cold start, or the wait for the freeze) once it shows admitted.
    r.wait_for_gauges("the second call waits, or starts a sandbox", |g, b| {
        g.in_flight == 1 || b.created.len() == 2
    })
    .await;
    r.fake.release_freezes();
    assert_eq!(second.await.unwrap().unwrap().payload, b"2");
    assert_eq!(r.fake.book().created, ["f"]);
}

#[tokio::test]
async fn an_idle_sandbox_is_destroyed_after_the_ttl() {
    let r = rig(|c| c.idle_ttl = Duration::ZERO);
    r.ok("f", "1").await;
    r.fake
        .wait_for("the idle sandbox expires", |b| b.destroyed == ["f"])
        .await;
    r.ok("f", "2").await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
}

#[tokio::test]
async fn short_memory_evicts_the_least_recently_used_idle_sandbox_only() {
    // Room for two 128 MB sandboxes.
    let r = rig(|c| c.memory_capacity_mb = 256);
    r.ok("a", "1").await;
    r.ok("b", "1").await;
    r.ok("a", "2").await;
    r.ok("c", "1").await;
    let book = r.fake.wait_for("b is evicted", |b| !b.destroyed.is_empty()).await;
    assert_eq!(book.destroyed, ["b"]);
    r.ok("a", "3").await;
    assert_eq!(r.fake.book().created, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_cold_start_is_throttled_when_memory_stays_busy() {
    let r = rig(|c| {
        c.memory_capacity_mb = 128;
        c.capacity_wait = Duration::ZERO;
    });
    assert_eq!(
        r.reason_while_held(request("f", "\"hold\""), request("g", "1")).await,
        "ConcurrentInvocationLimitExceeded"
    );
}

#[tokio::test]
async fn a_timeout_kills_the_sandbox_and_the_next_call_starts_another() {
    let r = rig(|_| {});
    let mut req = request("f", "\"hang\"");
    req.function.spec.timeout = 1;
    let out = r.invoke(req).await.unwrap();
    let body = unhandled_body(&out);
    assert!(body.contains("Sandbox.Timedout"), "{body}");
    assert!(body.contains("Task timed out after 1.00 seconds"), "{body}");
    r.fake
        .wait_for("the timed-out sandbox goes", |b| b.destroyed == ["f"])
        .await;
    assert!(r.fake.book().kills >= 1);
    r.ok("f", "1").await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
}

#[tokio::test]
async fn init_runs_at_a_full_core_and_invocations_at_their_share() {
    let r = rig(|_| {});
    let mut req = request("f", "1");
    req.function.spec.memory_size = 128;
    r.invoke(req).await.unwrap();
    let book = r.fake.book();
    let full_core = lamb_sandbox::CpuLimit::proportional_to_memory(1769).quota_us;
    let share = lamb_sandbox::CpuLimit::proportional_to_memory(128).quota_us;
    assert!(share < full_core);
    assert_eq!(book.init_quotas, [full_core], "init at one full core");
    assert_eq!(book.invoke_quotas, [share], "the event comes under the memory's share");
}

#[tokio::test]
async fn an_init_past_its_limit_is_retried_within_the_invocation() {
    let r = rig(|c| c.init_timeout = Duration::from_millis(1));
    let mut req = request("init-hangs-once", "\"hi\"");
    req.log_type = LogType::Tail;
    let id = req.request_id.clone();
    let out = r.invoke(req).await.unwrap();
    assert_eq!(
        out.function_error,
        None,
        "{} {:?} {:?}",
        String::from_utf8_lossy(&out.payload),
        out.log_tail,
        r.fake.book()
    );
    assert_eq!(out.payload, b"\"hi\"");
    r.fake
        .wait_for("the timed-out one goes", |b| b.destroyed == ["init-hangs-once"])
        .await;
    assert_eq!(r.fake.book().created, ["init-hangs-once", "init-hangs-once"]);
    let tail = out.log_tail.unwrap();
    let init_report = tail.find("\tPhase: init\tStatus: timeout\t").expect(&tail);
    let report = tail.find(&format!("REPORT RequestId: {id}")).expect(&tail);
    assert!(init_report < report, "{tail}");
    assert!(tail.starts_with("INIT_REPORT Init Duration: "), "{tail}");
    // The retried init is the invocation's time, not an Init Duration.
    assert!(!tail[report..].contains("Init Duration"), "{tail}");
    // The sandbox is kept like any other.
    r.ok("init-hangs-once", "1").await;
    assert_eq!(r.fake.book().created.len(), 2);
}

#[tokio::test]
async fn an_init_that_never_ends_times_out_twice() {
    let r = rig(|c| c.init_timeout = Duration::from_millis(1));
    let mut req = request("init-hangs", "1");
    req.function.spec.timeout = 1;
    req.log_type = LogType::Tail;
    let out = r.invoke(req).await.unwrap();
    let body = unhandled_body(&out);
    assert!(
        body.contains("Sandbox.Timedout") && body.contains("Task timed out after 1.00 seconds"),
        "{body}"
    );
    let tail = out.log_tail.unwrap();
    assert!(tail.contains("\tPhase: init\tStatus: timeout\t"), "{tail}");
    assert!(tail.contains("\tPhase: invoke\tStatus: timeout\t"), "{tail}");
    assert!(tail.contains("\tStatus: timeout\t\n"), "{tail}");
    r.fake
        .wait_for("both sandboxes go", |b| b.destroyed == ["init-hangs", "init-hangs"])
        .await;
}

#[tokio::test]
async fn an_init_error_is_the_answer() {
    let r = rig(|_| {});
    let body = unhandled_body(&r.invoke(request("init-fails", "1")).await.unwrap());
    assert!(body.contains("Runtime.Fake"), "{body}");
    r.fake
        .wait_for("the sandbox goes", |b| b.destroyed == ["init-fails"])
        .await;
}

#[tokio::test]
async fn a_sandbox_that_cannot_be_made_is_a_sandbox_failure() {
    let r = rig(|_| {});
    let body = unhandled_body(&r.invoke(request("no-sandbox", "1")).await.unwrap());
    assert!(body.contains("Sandbox.Failure"), "{body}");
    // Its memory and slot are free again: the next one fits.
    r.ok("f", "1").await;
}

#[tokio::test]
async fn a_crash_is_an_exit_error_and_the_sandbox_is_replaced() {
    let r = rig(|_| {});
    let body = unhandled_body(&r.invoke(request("f", "\"crash\"")).await.unwrap());
    assert!(
        body.contains("Runtime.ExitError") && body.contains("exit status 2"),
        "{body}"
    );
    r.ok("f", "1").await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
}

#[tokio::test]
async fn a_function_error_keeps_the_sandbox() {
    let r = rig(|_| {});
    let body = unhandled_body(&r.invoke(request("f", "\"fail\"")).await.unwrap());
    assert!(body.contains("Fake"), "{body}");
    r.ok("f", "1").await;
    assert_eq!(r.fake.book().created, ["f"]);
}

#[tokio::test]
async fn an_extension_failure_replaces_the_sandbox() {
    let r = rig(|_| {});
    let body = unhandled_body(&r.invoke(request("f", "\"extension-crash\"")).await.unwrap());
    assert!(body.contains("Extension.Crash"), "{body}");
    r.ok("f", "1").await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
}

#[tokio::test]
async fn the_log_tail_holds_the_output_between_start_and_report() {
    let r = rig(|_| {});
    let mut req = request("f", "\"hi\"");
    req.log_type = LogType::Tail;
    let id = req.request_id.clone();
    let tail = r.invoke(req).await.unwrap().log_tail.unwrap();
    let start = tail.find(&format!("START RequestId: {id}")).expect(&tail);
    let echo = tail.find("echo \"hi\"").expect(&tail);
    let report = tail.find(&format!("REPORT RequestId: {id}")).expect(&tail);
    assert!(start < echo && echo < report, "{tail}");
}

fn json_logging(req: &mut InvokeRequest, system_level: Option<&str>) {
    req.function.spec.logging_config = lamb_types::LoggingConfig {
        log_format: lamb_types::LogFormat::Json,
        system_log_level: system_level.map(str::to_owned),
        ..Default::default()
    };
    req.log_type = LogType::Tail;
}

#[tokio::test]
async fn json_logging_writes_platform_records_around_the_output() {
    let r = rig(|_| {});
    let mut req = request("f", "\"hi\"");
    json_logging(&mut req, None);
    let id = req.request_id.clone();
    let tail = r.invoke(req).await.unwrap().log_tail.unwrap();
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines.len(), 4, "{tail}");
    // A cold start: the init's record first, before the runtime's output.
    let init: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(init["type"], "platform.initStart");
    assert_eq!(init["record"]["phase"], "init");
    assert_eq!(init["record"]["functionName"], "f");
    let start: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert_eq!(start["type"], "platform.start");
    assert_eq!(start["record"]["requestId"], id.as_str());
    assert_eq!(lines[2], "echo \"hi\"");
    let report: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
    assert_eq!(report["type"], "platform.report");
    assert_eq!(report["record"]["status"], "success");
    assert!(report["record"]["metrics"]["initDurationMs"].is_f64(), "{tail}");
}

#[tokio::test]
async fn the_system_log_level_filters_platform_records() {
    let r = rig(|_| {});
    let mut warn = request("f", "\"hi\"");
    json_logging(&mut warn, Some("WARN"));
    assert_eq!(r.invoke(warn).await.unwrap().log_tail.unwrap(), "echo \"hi\"\n");
    let mut debug = request("f", "\"fail\"");
    json_logging(&mut debug, Some("DEBUG"));
    let tail = r.invoke(debug).await.unwrap().log_tail.unwrap();
    let types: Vec<String> = tail
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["type"].to_string())
        .collect();
    assert_eq!(
        types,
        ["\"platform.start\"", "\"platform.runtimeDone\"", "\"platform.report\""],
        "{tail}"
    );
    assert!(tail.contains("\"status\":\"error\""), "{tail}");
}

#[tokio::test]
async fn the_caller_has_its_answer_while_an_extension_holds_the_invocation() {
    let r = rig(|_| {});
    // Answered while the gate is shut: the extension still holds it.
    assert_eq!(r.ok("f", "\"extension-holds\"").await.payload, b"\"extension-holds\"");
    assert_eq!(r.fake.book().running, 1, "the invocation is not complete yet");
    // Not complete, so its sandbox is not free: the next call starts another.
    r.ok("f", "1").await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
    // Complete: the first sandbox is back in the pool, and both are reused.
    r.fake.open_gate();
    r.wait_for_gauges("both sandboxes idle", |g, b| g.idle == 2 && b.running == 0)
        .await;
    r.ok("f", "2").await;
    r.ok("f", "3").await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
}

#[tokio::test]
async fn an_extension_that_never_completes_times_the_invocation_out() {
    let r = rig(|_| {});
    let mut req = request("f", "\"extension-holds\"");
    req.function.spec.timeout = 1;
    assert_eq!(r.invoke(req).await.unwrap().function_error, None);
    r.fake
        .wait_for("the sandbox held past its timeout goes", |b| b.destroyed == ["f"])
        .await;
    r.ok("f", "1").await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
}

#[tokio::test]
async fn init_gets_the_cgroups_peak_for_platform_report() {
    let r = rig(|_| {});
    r.ok("f", "1").await;
    // In MB as REPORT rounds it: 80 MiB and a byte is 81.
    let book = r
        .fake
        .wait_for("init gets the numbers", |b| !b.reported_mb.is_empty())
        .await;
    assert_eq!(book.reported_mb, [super::fake::FAKE_PEAK_BYTES.div_ceil(1024 * 1024)]);
    assert_eq!(book.reported_mb, [81]);
}

#[tokio::test]
async fn init_is_told_the_functions_account() {
    let r = rig(|c| c.ctx.account = "123456789012".into());
    r.ok("f", "1").await;
    let argv = &r.fake.book().init_argv[0];
    assert_eq!(argv[argv.len() - 2..], ["--account", "123456789012"]);
}

#[tokio::test]
async fn an_answered_invocation_counts_in_the_concurrency_until_complete() {
    let r = rig(|c| c.concurrency_limit = 1);
    r.ok("f", "\"extension-holds\"").await;
    assert_eq!(
        throttle_reason(r.invoke(request("g", "1")).await),
        "ConcurrentInvocationLimitExceeded"
    );
    r.fake.open_gate();
    r.wait_for_gauges("the invocation completes", |g, b| g.in_flight == 0 && b.running == 0)
        .await;
    r.ok("g", "1").await;
}
