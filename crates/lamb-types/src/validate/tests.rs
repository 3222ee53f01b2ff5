//! One test per rule: a value accepted at the edge and one refused just past it.

use super::*;
use crate::error::ErrorKind;
use crate::function::EnvVars;
use crate::function::EphemeralStorage;
use crate::invoke_config::PutFunctionEventInvokeConfigRequest;

fn limits() -> Limits {
    Limits::default()
}

fn runtimes() -> Vec<String> {
    vec!["provided.al2023".into(), "python3.11".into()]
}

fn with_rules<T>(f: impl FnOnce(Rules<'_>) -> T) -> T {
    let (l, c, r) = (limits(), ArnContext::default(), runtimes());
    f(Rules {
        limits: &l,
        ctx: &c,
        runtimes: &r,
        deprecation: Deprecation::Enforce { today: 20261201 },
    })
}

fn refused(r: Result<impl std::fmt::Debug, LambdaError>) -> ErrorKind {
    r.expect_err("value accepted").kind
}

const IPV: ErrorKind = ErrorKind::InvalidParameterValue;
/// The model's constraints: `ValidationException`, as AWS answers them.
const VE: ErrorKind = ErrorKind::Validation;

#[test]
fn function_name_edges() {
    assert!(validate_function_name(&"a".repeat(64)).is_ok());
    assert_eq!(refused(validate_function_name(&"a".repeat(65))), IPV);
    assert!(validate_function_name("a-b_C9").is_ok());
    assert_eq!(refused(validate_function_name("a.b")), VE);
    assert_eq!(refused(validate_function_name("")), VE);
}

#[test]
fn alias_name_edges() {
    assert!(validate_alias_name(&"a".repeat(128)).is_ok());
    assert_eq!(refused(validate_alias_name(&"a".repeat(129))), VE);
    assert!(validate_alias_name("1a").is_ok());
    assert_eq!(refused(validate_alias_name("12")), VE);
    assert_eq!(refused(validate_alias_name("$LATEST")), VE);
}

#[test]
fn layer_name_edges() {
    assert!(validate_layer_name(&"l".repeat(140)).is_ok());
    assert_eq!(refused(validate_layer_name(&"l".repeat(141))), VE);
    assert_eq!(refused(validate_layer_name("a/b")), VE);
}

#[test]
fn memory_edges() {
    with_rules(|r| {
        assert!(r.memory_size(128).is_ok());
        assert_eq!(refused(r.memory_size(64)), VE);
        assert!(r.memory_size(3008).is_ok());
        // This box's limit is lamb's own check; the model's 10,240 MB its constraint.
        assert_eq!(refused(r.memory_size(3072)), IPV);
        assert_eq!(refused(r.memory_size(10_241)), VE);
        // Any whole number of MB in between (1769 MB: one vCPU on Lambda).
        assert!(r.memory_size(129).is_ok());
        assert!(r.memory_size(200).is_ok());
        assert!(r.memory_size(1769).is_ok());
        assert_eq!(refused(r.memory_size(127)), VE);
        assert_eq!(refused(r.memory_size(3009)), IPV);
        let e = r.memory_size(3009).unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value '3009' at 'memorySize' failed to satisfy constraint: \
             Member must have value less than or equal to 3008"
        );
    });
}

#[test]
fn memory_maximum_follows_the_daemon() {
    let l = Limits {
        max_memory_mb: 10_240,
        ..Limits::default()
    };
    let (c, rt) = (ArnContext::default(), runtimes());
    let r = Rules {
        limits: &l,
        ctx: &c,
        runtimes: &rt,
        deprecation: Deprecation::Allow,
    };
    assert!(r.memory_size(10_240).is_ok());
    assert_eq!(refused(r.memory_size(10_304)), VE);
}

#[test]
fn timeout_edges() {
    with_rules(|r| {
        assert!(r.timeout(1).is_ok());
        assert_eq!(refused(r.timeout(0)), VE);
        assert!(r.timeout(900).is_ok());
        assert_eq!(refused(r.timeout(901)), VE);
    });
    assert_eq!(crate::limits::DEFAULT_TIMEOUT_S, 3);
}

#[test]
fn environment_size_edge() {
    with_rules(|r| {
        // Measured as JSON, as AWS: `{"KEY":"<value>"}` is 10 + 4086 = 4096
        // bytes at the edge.
        let at = EnvVars::from([("KEY".to_string(), "v".repeat(4086))]);
        assert!(r.environment(&at).is_ok());
        let over = EnvVars::from([("KEY".to_string(), "v".repeat(4087))]);
        assert_eq!(refused(r.environment(&over)), IPV);
        let e = r.environment(&over).unwrap_err();
        assert!(e
            .message
            .ends_with(&format!("String measured: {{\"KEY\":\"{}\"}}", "v".repeat(4087))));
        // Measured in the request's order, as AWS quotes it (the recorded
        // test_large_environment_fails_multiple_keys).
        let two = EnvVars::from([
            ("SMALL_VAR".to_string(), "ok".to_string()),
            ("LARGE_VAR".to_string(), "x".repeat(4064)),
        ]);
        let e = r.environment(&two).unwrap_err();
        assert!(
            e.message
                .contains("String measured: {\"SMALL_VAR\":\"ok\",\"LARGE_VAR\""),
            "{e}"
        );
    });
}

#[test]
fn environment_reserved_names() {
    with_rules(|r| {
        for name in RESERVED_ENV_VARS.iter().filter(|n| !n.starts_with('_')) {
            let vars = EnvVars::from([(name.to_string(), "x".to_string())]);
            let e = r.environment(&vars).expect_err(name);
            assert!(e.message.contains(name), "{}", e.message);
        }
        let ok = EnvVars::from([("AWS_REGIONS".to_string(), "x".to_string())]);
        assert!(r.environment(&ok).is_ok());
    });
}

#[test]
fn environment_name_pattern() {
    with_rules(|r| {
        for good in ["ab", "a_", "A1"] {
            let vars = EnvVars::from([(good.to_string(), String::new())]);
            assert!(r.environment(&vars).is_ok(), "{good}");
        }
        for bad in ["a", "_HANDLER", "1a", "a-b", "a b"] {
            let vars = EnvVars::from([(bad.to_string(), String::new())]);
            assert_eq!(refused(r.environment(&vars)), VE, "{bad}");
        }
    });
}

#[test]
fn handler_edges() {
    assert!(validate_handler(&"h".repeat(128)).is_ok());
    assert_eq!(refused(validate_handler(&"h".repeat(129))), VE);
    assert!(validate_handler("index.handler").is_ok());
    assert_eq!(refused(validate_handler("index handler")), VE);
    assert_eq!(refused(validate_handler("")), VE);
}

#[test]
fn runtime_must_be_installed() {
    with_rules(|r| {
        assert!(r.runtime("provided.al2023").is_ok());
        assert_eq!(refused(r.runtime("nodejs18.x")), IPV);
        assert_eq!(refused(r.runtime("")), IPV);
        // Lambda's but not installed here: says so, with what is.
        let e = r.runtime("python3.12").unwrap_err();
        assert!(e.message.contains("python3.12 is not available"), "{}", e.message);
        assert!(e.message.ends_with("[provided.al2023, python3.11]"), "{}", e.message);
        // Not Lambda's at all: AWS's enum error, AWS's list in AWS's order.
        let e = r.runtime("PYTHON3.9").unwrap_err();
        assert!(
            e.message.starts_with(
                "Value PYTHON3.9 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set: \
                 [nodejs20.x, python3.14, provided.al2023, python3.12, python3.13, nodejs24.x, nodejs22.x, java25,"
            ),
            "{}",
            e.message
        );
        assert!(e
            .message
            .ends_with("nodejs18.x, provided.al2, java8.al2] or be a valid ARN"));
    });
}

#[test]
fn layer_runtimes_are_lambdas_or_installed() {
    with_rules(|r| {
        let ok: Vec<String> = vec!["python3.12".into(), "dotnet8".into(), "python3.11".into()];
        assert!(r.compatible_runtimes(&ok).is_ok());
        let bad: Vec<String> = vec!["python3.13".into(), "invalidruntime".into()];
        let e = r.compatible_runtimes(&bad).unwrap_err();
        assert!(
            e.message.starts_with(
                "1 validation error detected: Value '[python3.13, invalidruntime]' at 'compatibleRuntimes' \
                 failed to satisfy constraint: Member must satisfy enum value set: [nodejs20.x, python3.14,"
            ),
            "{}",
            e.message
        );
    });
}

#[test]
fn deprecated_runtimes_refused_past_their_block_dates() {
    with_rules(|r| {
        // 2026-12-01: python3.6 is past both of its block dates, provided
        // past its block-create date only; python3.11 is not deprecated yet.
        assert_eq!(refused(r.runtime_change("python3.6", Change::Create)), IPV);
        assert_eq!(refused(r.runtime_change("python3.6", Change::Update)), IPV);
        assert_eq!(refused(r.runtime_change("provided", Change::Create)), IPV);
        assert!(r.runtime_change("provided", Change::Update).is_ok());
        assert!(r.runtime_change("python3.11", Change::Create).is_ok());
        assert!(r.runtime_change("provided.al2023", Change::Create).is_ok());
    });
    let (l, c, rt) = (limits(), ArnContext::default(), runtimes());
    let r = Rules {
        limits: &l,
        ctx: &c,
        runtimes: &rt,
        deprecation: Deprecation::Allow,
    };
    assert!(r.runtime_change("python3.7", Change::Create).is_ok());
}

#[test]
fn layers_edges() {
    with_rules(|r| {
        let arn = |n: usize| format!("arn:aws:lambda:us-east-1:000000000000:layer:l{n}:1");
        let five: Vec<String> = (0..5).map(arn).collect();
        assert_eq!(r.layers(&five, &mut |_| true).unwrap().len(), 5);
        let six: Vec<String> = (0..6).map(arn).collect();
        assert_eq!(refused(r.layers(&six, &mut |_| true)), IPV);
        // A well-formed ARN of a version that does not exist.
        assert_eq!(refused(r.layers(&five[..1], &mut |_| false)), IPV);
        // Another account's layer cannot exist here.
        let foreign = vec!["arn:aws:lambda:us-east-1:123456789012:layer:l:1".to_string()];
        assert_eq!(refused(r.layers(&foreign, &mut |_| true)), IPV);
        // An unversioned layer ARN is not a layer version ARN.
        let unversioned = vec!["arn:aws:lambda:us-east-1:000000000000:layer:l".to_string()];
        assert_eq!(refused(r.layers(&unversioned, &mut |_| true)), VE);
        let twice = vec![arn(0), "arn:aws:lambda:us-east-1:000000000000:layer:l0:2".into()];
        assert_eq!(refused(r.layers(&twice, &mut |_| true)), IPV);
    });
}

#[test]
fn size_edges() {
    with_rules(|r| {
        assert!(r.zipped_size(52_428_800).is_ok());
        assert_eq!(refused(r.zipped_size(52_428_801)), ErrorKind::RequestEntityTooLarge);
        assert!(r.unzipped_total(262_144_000).is_ok());
        assert_eq!(refused(r.unzipped_total(262_144_001)), IPV);
        assert!(r.total_code_size(80_530_636_000, 800).is_ok());
        assert_eq!(
            refused(r.total_code_size(80_530_636_000, 801)),
            ErrorKind::CodeStorageExceeded
        );
    });
}

#[test]
fn reserved_concurrency_edges() {
    with_rules(|r| {
        assert!(r.reserved_concurrency(900, 0).is_ok());
        assert_eq!(refused(r.reserved_concurrency(901, 0)), IPV);
        assert!(r.reserved_concurrency(0, 900).is_ok());
        assert_eq!(refused(r.reserved_concurrency(1, 900)), IPV);
    });
}

#[test]
fn description_edges() {
    assert!(validate_description(&"d".repeat(256)).is_ok());
    assert_eq!(refused(validate_description(&"d".repeat(257))), VE);
}

#[test]
fn role_pattern() {
    assert!(validate_role("arn:aws:iam::123456789012:role/lambda-role").is_ok());
    assert!(validate_role("arn:aws:iam::123456789012:role/path/x+=,.@-_").is_ok());
    for bad in [
        "",
        "role",
        "arn:aws:iam::12345678901:role/r",
        "arn:aws:iam::123456789012:user/r",
        "arn:aws:iam::123456789012:role/",
        "arn:aws:iam::123456789012:role/a b",
    ] {
        assert_eq!(refused(validate_role(bad)), VE, "{bad}");
    }
}

#[test]
fn logging_levels_are_lambdas_and_need_json() {
    use crate::function::{LogFormat, LoggingConfig};
    let json = |app: Option<&str>, sys: Option<&str>| LoggingConfig {
        log_format: LogFormat::Json,
        application_log_level: app.map(str::to_owned),
        system_log_level: sys.map(str::to_owned),
        log_group: None,
    };
    assert!(validate_logging_config(&json(Some("TRACE"), Some("WARN"))).is_ok());
    assert!(validate_logging_config(&json(None, None)).is_ok());
    assert_eq!(refused(validate_logging_config(&json(Some("LOUD"), None))), VE);
    assert_eq!(refused(validate_logging_config(&json(None, Some("ERROR")))), VE);
    let text = LoggingConfig {
        log_format: LogFormat::Text,
        ..json(Some("INFO"), None)
    };
    assert_eq!(refused(validate_logging_config(&text)), IPV);
    assert!(validate_logging_config(&LoggingConfig::default()).is_ok());
    assert_eq!(json(None, Some("DEBUG")).system_level(), Some("DEBUG"));
    assert_eq!(json(None, None).application_level(), Some("INFO"));
    assert_eq!(LoggingConfig::default().system_level(), None);
}

#[test]
fn ephemeral_storage_edges() {
    assert!(validate_ephemeral_storage(512).is_ok());
    assert_eq!(refused(validate_ephemeral_storage(511)), VE);
    assert!(validate_ephemeral_storage(10_240).is_ok());
    assert_eq!(refused(validate_ephemeral_storage(10_241)), VE);
}

#[test]
fn architectures_exactly_one() {
    assert!(validate_architectures(&[Architecture::Arm64]).is_ok());
    assert_eq!(refused(validate_architectures(&[])), VE);
    assert_eq!(
        refused(validate_architectures(&[Architecture::X86_64, Architecture::Arm64])),
        VE
    );
}

fn routing(pairs: &[(&str, f64)]) -> AliasRoutingConfiguration {
    AliasRoutingConfiguration {
        additional_version_weights: pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
    }
}

#[test]
fn routing_weight_edges() {
    assert_eq!(validate_routing_config("1", &routing(&[("2", 0.0)])).unwrap()[&2], 0.0);
    assert_eq!(validate_routing_config("1", &routing(&[("2", 1.0)])).unwrap()[&2], 1.0);
    assert_eq!(refused(validate_routing_config("1", &routing(&[("2", 1.000_001)]))), VE);
    assert_eq!(refused(validate_routing_config("1", &routing(&[("2", -0.01)]))), VE);
    assert_eq!(refused(validate_routing_config("1", &routing(&[("2", f64::NAN)]))), VE);
    // Lambda's own count check (routing_config_exc_toomany, recorded).
    assert_eq!(
        refused(validate_routing_config("1", &routing(&[("2", 0.1), ("3", 0.1)]))),
        IPV
    );
    assert_eq!(refused(validate_routing_config("1", &routing(&[("1", 0.5)]))), IPV);
    // test_notfound_and_invalid_routingconfigs (routing_config_exc_toohigh): Java's map.
    let e = validate_routing_config("1", &routing(&[("2", 2.0)])).unwrap_err();
    assert!(
        e.message
            .contains("Value '{2=2.0}' at 'routingConfig.additionalVersionWeights'"),
        "{e}"
    );
    assert_eq!(
        refused(validate_routing_config("$LATEST", &routing(&[("2", 0.5)]))),
        IPV
    );
    assert_eq!(refused(validate_routing_config("1", &routing(&[("$LATEST", 0.5)]))), VE);
    assert!(validate_routing_config("$LATEST", &routing(&[])).unwrap().is_empty());
}

#[test]
fn alias_version_pattern() {
    assert_eq!(validate_alias_version("$LATEST").unwrap(), Version::Latest);
    assert_eq!(validate_alias_version("3").unwrap(), Version::Published(3));
    assert_eq!(refused(validate_alias_version("prod")), VE);
}

#[test]
fn event_invoke_config_edges() {
    let cfg = |r, a| PutFunctionEventInvokeConfigRequest {
        maximum_retry_attempts: r,
        maximum_event_age_in_seconds: a,
        destination_config: None,
    };
    assert!(validate_event_invoke_config(&cfg(Some(2), Some(60))).is_ok());
    assert!(validate_event_invoke_config(&cfg(Some(0), Some(21_600))).is_ok());
    assert_eq!(refused(validate_event_invoke_config(&cfg(Some(3), None))), VE);
    assert_eq!(refused(validate_event_invoke_config(&cfg(None, Some(59)))), VE);
    assert_eq!(refused(validate_event_invoke_config(&cfg(None, Some(21_601)))), VE);
    // An empty configuration (put_functionname_nootherargs of the recorded
    // test_lambda_eventinvokeconfig_exceptions).
    assert_eq!(refused(validate_event_invoke_config(&cfg(None, None))), IPV);
}

#[test]
fn publish_layer_edges() {
    use crate::layer::PublishLayerVersionRequest;
    let req = |n: usize, license: usize| PublishLayerVersionRequest {
        compatible_runtimes: Some((0..n).map(|i| format!("r{i}")).collect()),
        license_info: Some("x".repeat(license)),
        ..Default::default()
    };
    assert!(validate_publish_layer(&req(15, 512)).is_ok());
    assert_eq!(refused(validate_publish_layer(&req(16, 0))), VE);
    assert_eq!(refused(validate_publish_layer(&req(0, 513))), VE);
}

#[test]
fn code_source_must_be_inline() {
    let mut code = FunctionCode {
        zip_file: Some(crate::Blob(b"PK".to_vec())),
        ..Default::default()
    };
    assert_eq!(zip_file(&code).unwrap(), b"PK");
    code.s3_bucket = Some("b".into());
    assert_eq!(refused(zip_file(&code)), IPV);
    assert_eq!(refused(zip_file(&FunctionCode::default())), IPV);
}

fn good_spec() -> FunctionSpec {
    FunctionSpec {
        role: "arn:aws:iam::123456789012:role/r".into(),
        runtime: Some("provided.al2023".into()),
        handler: Some("bootstrap".into()),
        ..Default::default()
    }
}

#[test]
fn whole_spec_checks_every_member() {
    with_rules(|r| {
        assert!(r.function_spec(&good_spec(), &mut |_| true).is_ok());
        let cases: [fn(&mut FunctionSpec); 9] = [
            |s| s.runtime = None,
            |s| s.handler = None,
            |s| s.role = "nope".into(),
            |s| s.timeout = 0,
            |s| s.memory_size = 100,
            |s| s.ephemeral_storage = EphemeralStorage { size: 1 },
            |s| s.architectures.clear(),
            |s| s.package_type = PackageType::Image,
            |s| s.layers = vec!["x".into()],
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut s = good_spec();
            change(&mut s);
            // Model constraints and Lambda's own checks alike; each rule's
            // own test pins which of the two it answers.
            let kind = refused(r.function_spec(&s, &mut |_| true));
            assert!(kind == VE || kind == IPV, "case {i}: {kind:?}");
        }
    });
}

#[test]
fn image_functions_take_no_runtime_handler_or_layers() {
    use crate::{FunctionImage, PackageType};
    let limits = Limits::default();
    let ctx = ArnContext::default();
    let rules = Rules {
        limits: &limits,
        ctx: &ctx,
        runtimes: &[],
        deprecation: Deprecation::Allow,
    };
    let mut spec = FunctionSpec {
        role: "arn:aws:iam::000000000000:role/r".into(),
        package_type: PackageType::Image,
        image: Some(FunctionImage {
            uri: "127.0.0.1:5000/app:v1".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    rules.function_spec(&spec, &mut |_| true).unwrap();
    spec.handler = Some("app.handler".into());
    let e = rules.function_spec(&spec, &mut |_| true).unwrap_err();
    assert!(
        e.message
            .starts_with("Please don't provide Handler or Runtime or Layer"),
        "{}",
        e.message
    );
    spec.handler = None;
    spec.image = None;
    let e = rules.function_spec(&spec, &mut |_| true).unwrap_err();
    assert!(e.message.starts_with("Please provide ImageUri"), "{}", e.message);
}

#[test]
fn snap_start_rules() {
    use crate::function::SnapStart;
    let spec = |runtime: &str, apply_on: &str| FunctionSpec {
        runtime: Some(runtime.into()),
        snap_start: Some(SnapStart {
            apply_on: apply_on.into(),
        }),
        ..Default::default()
    };
    assert!(validate_snap_start(&spec("python3.13", "PublishedVersions")).is_ok());
    assert!(validate_snap_start(&spec("java21", "PublishedVersions")).is_ok());
    assert!(validate_snap_start(&spec("python3.11", "None")).is_ok());
    let e = refused(validate_snap_start(&spec("python3.13", "Always")));
    assert_eq!(e, VE);
    let e = validate_snap_start(&spec("python3.11", "PublishedVersions")).unwrap_err();
    assert_eq!(e.kind, IPV);
    assert_eq!(
        e.message,
        "python3.11 is not supported for SnapStart enabled functions."
    );
    assert!(validate_snap_start(&FunctionSpec::default()).is_ok());
}
