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
        stream: None,
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

    /// Waits until version `version` of `function` has a ready snapshot
    /// (frozen and listed: an invocation restores it rather than answering
    /// `SnapStartNotReady`).
    async fn wait_for_snapshot(&self, function: &str, version: u64) {
        let wait = async {
            while self.engine.snapstart_state(function, version) != Some(crate::invoker::SnapshotState::Ready) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), wait).await.is_err() {
            panic!("never happened: a ready snapshot of {function}:{version}");
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

/// The value of `name` in an environment list.
fn env_value<'e>(env: &'e [String], name: &str) -> Option<&'e str> {
    env.iter().find_map(|v| v.strip_prefix(name)?.strip_prefix('='))
}

#[tokio::test]
async fn sandboxes_get_their_functions_session_and_the_api_endpoint() {
    use crate::sessions::Sessions;
    let sessions = Arc::new(Sessions::with_key([3; 32], HOUR));
    let r = rig(|c| {
        c.sessions = Some(Arc::clone(&sessions));
        c.lambda_endpoint = Some("http://host.lamb.internal:9080".into());
    });
    r.ok("f", "1").await;
    r.ok("f", "2").await;
    let book = r.fake.book();
    assert_eq!(book.created.len(), 1, "a session an hour long outlives both");
    let env = &book.init_env[0];
    assert_eq!(
        env_value(env, "AWS_ENDPOINT_URL_LAMBDA"),
        Some("http://host.lamb.internal:9080")
    );
    assert_eq!(env_value(env, "HOME"), Some("/tmp"));
    let token = env_value(env, "AWS_SESSION_TOKEN").expect("a session token");
    let session = sessions.verify(token, time::OffsetDateTime::now_utc()).unwrap();
    assert_eq!(session.function_arn, "arn:aws:lambda:us-east-1:000000000000:function:f");
    assert_eq!(
        env_value(env, "AWS_ACCESS_KEY_ID"),
        Some(session.access_key_id.as_str())
    );
    assert_eq!(
        env_value(env, "AWS_SECRET_ACCESS_KEY"),
        Some(session.secret_access_key.as_str())
    );
}

#[tokio::test]
async fn a_sandbox_whose_session_would_expire_mid_invocation_is_replaced() {
    use crate::sessions::Sessions;
    // Sessions shorter than the function's timeout (3 s): stale at once.
    let sessions = Arc::new(Sessions::with_key([3; 32], Duration::from_secs(1)));
    let r = rig(|c| c.sessions = Some(sessions));
    r.ok("f", "1").await;
    r.ok("f", "2").await;
    assert_eq!(r.fake.book().created.len(), 2);
    r.fake
        .wait_for("the stale sandbox is destroyed", |b| b.destroyed.len() == 1)
        .await;
    let book = r.fake.book();
    assert_ne!(
        env_value(&book.init_env[0], "AWS_SESSION_TOKEN"),
        env_value(&book.init_env[1], "AWS_SESSION_TOKEN")
    );
}

/// A call of `function`'s published version 1.
fn request_v1(function: &str, payload: &str) -> InvokeRequest {
    let mut req = request(function, payload);
    req.function.version = Version::Published(1);
    req.executed_version = Version::Published(1);
    req
}

impl Rig {
    /// Provisions `want` sandboxes of `function`'s version 1 under the
    /// configuration of qualifier `1`.
    fn provision(&self, function: &str, want: u32) {
        let targets = (want > 0)
            .then(|| crate::invoker::ProvisionTarget {
                want,
                request: request_v1(function, ""),
            })
            .into_iter()
            .collect();
        self.engine.provision(function, "1", targets);
    }

    async fn wait_for_status(&self, what: &str, done: impl Fn(Option<crate::invoker::ProvisionedStatus>) -> bool) {
        self.wait_for_status_of("f", what, done).await;
    }

    async fn wait_for_status_of(
        &self,
        function: &str,
        what: &str,
        done: impl Fn(Option<crate::invoker::ProvisionedStatus>) -> bool,
    ) {
        let wait = async {
            while !done(self.engine.provisioned_status(function, "1")) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), wait).await.is_err() {
            panic!("never happened: {what}; book: {:?}", self.fake.book());
        }
    }
}

async fn ok_v1(r: &Rig, payload: &str) {
    let out = r.invoke(request_v1("f", payload)).await.unwrap();
    assert_eq!(out.payload, payload.as_bytes());
}

fn ready(want: u32) -> impl Fn(Option<crate::invoker::ProvisionedStatus>) -> bool {
    move |s| s.is_some_and(|s| s.state == crate::invoker::ProvisionedState::Ready && s.allocated == want)
}

#[tokio::test]
async fn provisioned_sandboxes_start_ahead_are_used_first_and_report_no_init() {
    let r = rig(|_| {});
    r.provision("f", 2);
    r.wait_for_status("two provisioned sandboxes ready", ready(2)).await;
    let book = r.fake.book();
    assert_eq!(book.created, ["f", "f"]);
    assert_eq!(book.init_types, ["provisioned-concurrency", "provisioned-concurrency"]);
    let mut req = request_v1("f", "1");
    req.log_type = LogType::Tail;
    let out = r.invoke(req).await.unwrap();
    assert_eq!(out.payload, b"1");
    let tail = out.log_tail.unwrap();
    assert!(tail.contains("REPORT RequestId"), "{tail}");
    assert!(!tail.contains("Init Duration"), "{tail}");
    assert_eq!(
        r.fake.book().created.len(),
        2,
        "an invocation cold-started beside the provisioned"
    );
    // An on-demand sandbox's first REPORT has one: the check above can fail.
    let mut req = request("g", "1");
    req.log_type = LogType::Tail;
    assert!(r.invoke(req).await.unwrap().log_tail.unwrap().contains("Init Duration"));
    assert_eq!(r.fake.book().init_types[2], "on-demand");
}

/// What a cluster's heartbeat reports and routes by: an idle provisioned
/// sandbox is a warm one of its version.
#[tokio::test]
async fn idle_provisioned_sandboxes_count_as_warm_and_in_the_metrics() {
    let r = rig(|_| {});
    r.provision("f", 2);
    r.wait_for_status("two provisioned sandboxes ready", ready(2)).await;
    let key = super::run::pool_key(&request_v1("f", ""));
    assert_eq!(r.engine.idle_of(&key), 2);
    assert_eq!(r.engine.idle().get(&key), Some(&2));
    assert!(r.engine.metrics().unwrap().contains("lamb_sandboxes_provisioned 2"));
}

#[tokio::test]
async fn provisioned_sandboxes_are_never_frozen_expired_or_evicted() {
    // Room for three sandboxes of 128 MB: two provisioned, one on demand.
    let r = rig(|c| {
        c.freeze_grace = Duration::ZERO;
        c.idle_ttl = Duration::from_millis(1);
        c.memory_capacity_mb = 3 * 128;
    });
    r.provision("f", 2);
    r.wait_for_status("two provisioned sandboxes ready", ready(2)).await;
    ok_v1(&r, "1").await;
    // The janitor's TTL sweep takes g's idle sandbox ...
    r.ok("g", "1").await;
    r.fake
        .wait_for("g's idle sandbox is reaped", |b| b.destroyed == ["g"])
        .await;
    // ... and memory pressure takes h's for i, never f's.
    r.ok("h", "1").await;
    r.ok("i", "1").await;
    let book = r.fake.book();
    assert!(!book.destroyed.contains(&"f".to_owned()), "{book:?}");
    assert_eq!(book.created.iter().filter(|f| *f == "f").count(), 2);
    r.wait_for_status("still ready", ready(2)).await;
    // Never frozen: every invocation of f found a thawed sandbox.
    assert_eq!(book.invoked_while_frozen, 0);
    ok_v1(&r, "2").await;
    assert_eq!(r.fake.book().created.iter().filter(|f| *f == "f").count(), 2);
}

#[tokio::test]
async fn provisioned_concurrency_is_counted_and_never_throttled() {
    let r = rig(|c| c.concurrency_limit = 3);
    r.provision("f", 1);
    r.wait_for_status("one provisioned sandbox ready", ready(1)).await;
    // The daemon takes unreserved functions' provisioned concurrency out of
    // the unreserved pool (`invocation::prepare`): two places are left.
    let unreserved = |function: &str, payload: &str| {
        let mut req = request(function, payload);
        req.total_reserved_concurrency = 1;
        req
    };
    let mut f_req = request_v1("f", "\"hold\"");
    f_req.total_reserved_concurrency = 1;
    let f = r.hold(f_req).await;
    let g1 = r.hold(unreserved("g", "\"hold\"")).await;
    let g2 = r.hold(unreserved("g", "\"hold\"")).await;
    assert_eq!(
        r.engine.inner.lock().gauges().in_flight,
        3,
        "the provisioned call is counted"
    );
    assert_eq!(
        throttle_reason(r.invoke(unreserved("h", "1")).await),
        "ConcurrentInvocationLimitExceeded"
    );
    r.fake.open_gate();
    for t in [f, g1, g2] {
        t.await.unwrap().unwrap();
    }
    // Beyond the provisioned sandbox, calls of f run on demand.
    r.wait_for_gauges("all back", |g, b| g.in_flight == 0 && b.running == 0)
        .await;
    let f = r.hold(request_v1("f", "\"hold\"")).await;
    r.invoke(request_v1("f", "2")).await.unwrap();
    r.fake.open_gate();
    f.await.unwrap().unwrap();
    let book = r.fake.book();
    assert_eq!(
        book.init_types.last().map(String::as_str),
        Some("on-demand"),
        "{book:?}"
    );
}

#[tokio::test]
async fn a_streamed_response_reaches_the_sink_before_the_function_ends() {
    use crate::invoker::StreamPart;
    let rig = rig(|_| {});
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let mut req = request("streamer", "\"stream\"");
    req.stream = Some(tx);
    let engine = Arc::clone(&rig.engine);
    let task = tokio::spawn(async move { engine.invoke(req).await });
    let begin = StreamPart::Begin {
        content_type: "text/plain".into(),
    };
    assert_eq!(rx.recv().await, Some(begin));
    // The function waits at the gate: this piece came while it runs.
    assert_eq!(rx.recv().await, Some(StreamPart::Chunk(b"a".to_vec())));
    assert!(!task.is_finished());
    rig.fake.open_gate();
    assert_eq!(rx.recv().await, Some(StreamPart::Chunk(b"b".to_vec())));
    let out = task.await.unwrap().unwrap();
    assert_eq!((out.payload, out.function_error), (Vec::new(), None));
}

#[tokio::test]
async fn a_streamed_response_without_a_sink_is_the_whole_payload() {
    let rig = rig(|_| {});
    let task = rig.hold(request("streamer", "\"stream\"")).await;
    rig.fake.open_gate();
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.payload, b"ab");
}

#[tokio::test]
async fn a_caller_that_goes_away_mid_stream_leaves_a_successful_invocation() {
    use crate::invoker::StreamPart;
    let rig = rig(|_| {});
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let mut req = request("streamer", "\"stream-big\"");
    req.stream = Some(tx);
    let engine = Arc::clone(&rig.engine);
    let task = tokio::spawn(async move { engine.invoke(req).await });
    assert!(matches!(rx.recv().await, Some(StreamPart::Begin { .. })));
    assert_eq!(rx.recv().await, Some(StreamPart::Chunk(b"a".to_vec())));
    drop(rx);
    rig.fake.open_gate();
    // The 7 MiB that follow go nowhere; they are not the 6 MB buffered
    // answer of a caller that never wanted one.
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.function_error, None, "{}", String::from_utf8_lossy(&out.payload));
}

#[tokio::test]
async fn a_streamed_call_ends_at_its_answer_while_extensions_hold_it() {
    use crate::invocation::{start_on, Piece, Started};
    let rig = rig(|_| {});
    let engine: Arc<dyn crate::invoker::Invoker> = rig.engine.clone();
    let Started::Streaming { mut stream, .. } = start_on(engine, request("streamer", "\"stream-held\"")).await else {
        panic!("the call did not stream");
    };
    let pieces = async {
        let first = stream.next().await;
        // The extension still holds the invocation (the gate is shut): the
        // end comes with the answer all the same.
        let end = stream.next().await;
        (first, end, stream.next().await.is_none())
    };
    let (first, end, over) = tokio::time::timeout(Duration::from_secs(60), pieces)
        .await
        .expect("the stream's end waited for the extension");
    assert!(matches!(first, Some(Piece::Bytes(b)) if b == b"a"));
    assert!(matches!(end, Some(Piece::End(Ok(out))) if out.function_error.is_none()));
    assert!(over);
    rig.fake.open_gate();
}

#[tokio::test]
async fn a_dead_provisioned_sandbox_is_replaced_and_a_release_destroys_them() {
    let r = rig(|_| {});
    r.provision("f", 1);
    r.wait_for_status("one provisioned sandbox ready", ready(1)).await;
    let out = r.invoke(request_v1("f", "\"crash\"")).await.unwrap();
    assert_eq!(out.function_error.as_deref(), Some("Unhandled"));
    r.fake
        .wait_for("a replacement is made", |b| {
            b.created.len() == 2 && b.destroyed.len() == 1
        })
        .await;
    r.wait_for_status("ready again", ready(1)).await;
    assert_eq!(r.fake.book().init_types[1], "provisioned-concurrency");
    // Lowering to nothing releases it.
    r.provision("f", 0);
    r.fake
        .wait_for("the provisioned sandbox goes", |b| b.destroyed.len() == 2)
        .await;
    assert_eq!(r.engine.provisioned_status("f", "1"), None);
    // So does deleting the version.
    r.provision("f", 1);
    r.wait_for_status("provisioned again", ready(1)).await;
    r.engine.forget("f", Some(1));
    r.fake
        .wait_for("the deleted version's sandbox goes", |b| b.destroyed.len() == 3)
        .await;
    assert_eq!(r.engine.provisioned_status("f", "1"), None);
}

#[tokio::test]
async fn a_provisioned_init_that_fails_marks_the_configuration_failed() {
    let r = rig(|_| {});
    let targets = vec![crate::invoker::ProvisionTarget {
        want: 2,
        request: request_v1("init-fails", ""),
    }];
    r.engine.provision("init-fails", "1", targets);
    let failed = |s: Option<crate::invoker::ProvisionedStatus>| {
        s.is_some_and(|s| s.state == crate::invoker::ProvisionedState::Failed && s.reason.is_some())
    };
    r.wait_for_status_of("init-fails", "the configuration fails", failed)
        .await;
    r.fake
        .wait_for("the failed sandboxes go", |b| b.destroyed.len() == 2)
        .await;
}

#[tokio::test]
async fn a_provisioned_sandbox_whose_session_would_expire_is_replaced_not_used() {
    use crate::sessions::Sessions;
    // Sessions shorter than the function's timeout (3 s): stale at once.
    let sessions = Arc::new(Sessions::with_key([3; 32], Duration::from_secs(1)));
    let r = rig(|c| c.sessions = Some(sessions));
    r.provision("f", 1);
    r.wait_for_status("one provisioned sandbox ready", ready(1)).await;
    ok_v1(&r, "1").await;
    r.fake
        .wait_for("the stale provisioned sandbox is destroyed", |b| {
            b.destroyed.first().map(String::as_str) == Some("f")
        })
        .await;
    r.fake
        .wait_for("a replacement and the call's own sandbox", |b| b.created.len() >= 3)
        .await;
    let book = r.fake.book();
    assert_eq!(book.init_types[0], "provisioned-concurrency");
    assert!(
        book.init_types[1..].contains(&"provisioned-concurrency".to_owned()),
        "{book:?}"
    );
    assert!(book.init_types[1..].contains(&"on-demand".to_owned()), "{book:?}");
}

fn snapstart_v1(function: &str, payload: &str) -> InvokeRequest {
    let mut req = request_v1(function, payload);
    req.function.spec.snap_start = Some(lamb_types::SnapStart {
        apply_on: "PublishedVersions".into(),
    });
    req
}

#[tokio::test]
async fn a_snapstart_version_restores_a_frozen_snapshot_and_refills_the_pool() {
    let r = rig(|_| {});
    r.engine.snapstart(snapstart_v1("f", ""));
    r.wait_for_gauges("a frozen snapshot", |g, b| {
        b.freezes == 1 && g.frozen == 1 && g.idle == 1
    })
    .await;
    assert_eq!(
        r.engine.snapstart_state("f", 1),
        Some(crate::invoker::SnapshotState::Ready)
    );
    assert_eq!(r.fake.book().init_types, ["snap-start"]);
    let mut req = snapstart_v1("f", "1");
    req.log_type = LogType::Tail;
    let out = r.invoke(req).await.unwrap();
    assert_eq!(out.payload, b"1");
    let tail = out.log_tail.unwrap();
    assert!(
        tail.contains("\tRestore Duration: ") && !tail.contains("Init Duration"),
        "{tail}"
    );
    let book = r.fake.book();
    assert_eq!((book.restores, book.restored_while_frozen, book.thaws), (1, 0, 1));
    // A new snapshot replaces the one used, off the invocation's path.
    r.wait_for_gauges("the refilled snapshot", |_, b| b.freezes == 2).await;
    assert_eq!(r.fake.book().created, ["f", "f"]);
    // The restored sandbox is warm now: no second restore.
    r.invoke(snapstart_v1("f", "2")).await.unwrap();
    assert_eq!(r.fake.book().restores, 1);
    // $LATEST of the same function initialises on demand.
    let mut latest = request("f", "3");
    latest.function.spec.snap_start = snapstart_v1("f", "").function.spec.snap_start;
    latest.log_type = LogType::Tail;
    assert!(r
        .invoke(latest)
        .await
        .unwrap()
        .log_tail
        .unwrap()
        .contains("Init Duration"));
    let book = r.fake.book();
    assert_eq!(book.init_types[2], "on-demand");
    // The restore ran at init's quota, each invocation at the memory's.
    assert_eq!(book.restore_quotas, [book.init_quotas[0]]);
    assert_eq!(book.invoke_quotas.len(), 3);
    assert!(
        book.invoke_quotas.iter().all(|q| *q == book.invoke_quotas[2]),
        "{:?}",
        book.invoke_quotas
    );
    assert!(book.invoke_quotas[2] < book.init_quotas[2], "{book:?}");
}

#[tokio::test]
async fn a_used_snapshot_is_replaced_after_the_answer_at_the_lowest_weight() {
    let r = rig(|_| {});
    r.engine.snapstart(snapstart_v1("f", ""));
    r.wait_for_snapshot("f", 1).await;
    r.invoke(snapstart_v1("f", "1")).await.unwrap();
    r.wait_for_gauges("the refilled snapshot", |_, b| b.freezes == 2).await;
    let book = r.fake.book();
    // No refill was started while the restore and the invocation ran.
    assert_eq!(book.created_at_invoke, [1], "{book:?}");
    // The refill's init ran at the lowest weight, its quota still init's;
    // the first snapshot (the version's publication) as well.
    let lowest = super::snapstart::SNAPSHOT_WEIGHT;
    assert_eq!(book.init_weights, [lowest, lowest], "{book:?}");
    assert_eq!(book.init_quotas[0], book.init_quotas[1]);
    // An invocation's own snapshot, which it waits on, runs at init's.
    let own = rig(|c| c.snapstart_pool = 0);
    own.engine.snapstart(snapstart_v1("f", ""));
    own.invoke(snapstart_v1("f", "1")).await.unwrap();
    assert!(own.fake.book().init_weights[0] > lowest);
}

#[tokio::test]
async fn a_restore_writes_no_cpu_limit_already_in_force() {
    // 1792 MB: init's limit and the invocations' are the same, set once
    // when the snapshot's init ended.
    let r = rig(|c| c.memory_capacity_mb = 4096);
    let mut req = snapstart_v1("f", "");
    req.function.spec.memory_size = 1792;
    r.engine.snapstart(req.clone());
    r.wait_for_snapshot("f", 1).await;
    assert_eq!(r.fake.book().cpu_writes, 1);
    req.payload = b"1".to_vec();
    r.invoke(req).await.unwrap();
    // The restore took the snapshot and the pool made the next one after
    // the answer: count once that one is frozen too, or the refill's own
    // write may land before or after the count.
    r.wait_for_gauges("the next snapshot", |_, b| b.freezes == 2).await;
    assert_eq!(
        r.fake.book().cpu_writes,
        2,
        "the refill's one write, none by the restore"
    );
    // 128 MB: init's full core for the restore, then the memory's share.
    let small = rig(|_| {});
    small.engine.snapstart(snapstart_v1("f", ""));
    small.wait_for_snapshot("f", 1).await;
    small.invoke(snapstart_v1("f", "1")).await.unwrap();
    small.wait_for_gauges("the next snapshot", |_, b| b.freezes == 2).await;
    assert_eq!(small.fake.book().cpu_writes, 4, "one per snapshot, two by the restore");
}

#[tokio::test]
async fn without_a_ready_snapshot_an_invocation_makes_and_restores_its_own() {
    let r = rig(|c| c.snapstart_pool = 0);
    r.engine.snapstart(snapstart_v1("f", ""));
    let mut req = snapstart_v1("f", "1");
    req.log_type = LogType::Tail;
    let out = r.invoke(req).await.unwrap();
    assert!(out.log_tail.unwrap().contains("Restore Duration"));
    let book = r.fake.book();
    assert_eq!(
        (book.init_types.as_slice(), book.restores),
        (&["snap-start".to_owned()][..], 1)
    );
}

#[tokio::test]
async fn a_restore_in_json_logs_its_start_and_report() {
    let r = rig(|_| {});
    let mut req = snapstart_v1("f", "1");
    req.function.spec.logging_config.log_format = lamb_types::LogFormat::Json;
    r.engine.snapstart(req.clone());
    r.wait_for_snapshot("f", 1).await;
    req.log_type = LogType::Tail;
    let tail = r.invoke(req).await.unwrap().log_tail.unwrap();
    let types: Vec<String> = tail
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "platform.restoreStart",
            "platform.restoreReport",
            "platform.start",
            "platform.report"
        ],
        "{tail}"
    );
    let report = tail.lines().find(|l| l.contains("platform.report")).unwrap();
    let report: serde_json::Value = serde_json::from_str(report).unwrap();
    assert!(report["record"]["metrics"]["restoreDurationMs"].is_f64(), "{report}");
    assert!(report["record"]["metrics"].get("initDurationMs").is_none(), "{report}");
}

#[tokio::test]
async fn a_snapstart_version_is_not_invoked_before_its_first_snapshot() {
    let r = rig(|_| {});
    r.engine.snapstart(snapstart_v1("init-hangs", ""));
    r.wait_for_gauges("the snapshot's sandbox", |_, b| b.created.len() == 1)
        .await;
    let Err(ApiError::Lambda(e)) = r.invoke(snapstart_v1("init-hangs", "1")).await else {
        panic!("invoked while Pending");
    };
    assert_eq!(e.kind, lamb_types::ErrorKind::SnapStartNotReady);
    assert_eq!(r.fake.book().created.len(), 1);
}

#[tokio::test]
async fn a_snapstart_version_whose_init_fails_is_failed() {
    let r = rig(|_| {});
    r.engine.snapstart(snapstart_v1("init-fails", ""));
    let failed = async {
        loop {
            if let Some(crate::invoker::SnapshotState::Failed(reason)) = r.engine.snapstart_state("init-fails", 1) {
                return reason;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let reason = tokio::time::timeout(Duration::from_secs(60), failed).await.unwrap();
    assert_eq!(reason, super::snapstart::INIT_FAILED);
}
