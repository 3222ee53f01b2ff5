//! The registry's behaviour, operation by operation: the shared suite, run
//! against a real SQLite database in a temporary directory and a real
//! PostgreSQL database (`common::registry::Backend`); then what is each
//! engine's own (schema versions).

mod common;

use common::registry::{code, create, spec, Backend};
use lamb_store::{
    AliasUpdate, CodeDigest, CodeUpdate, NewAlias, NewEvent, NewFunction, NewLayerVersion, PageRequest, Registry,
    SqliteRegistry, StoreError,
};
use lamb_types::{
    ArnContext, ErrorKind, PublishVersionRequest, PutFunctionEventInvokeConfigRequest, Qualifier, Version,
};
use std::collections::BTreeMap;

fn kind(r: Result<impl std::fmt::Debug, StoreError>) -> ErrorKind {
    r.expect_err("succeeded").to_lambda().kind
}

fn q(s: &str) -> Qualifier {
    Qualifier::parse(s).unwrap()
}

fn create_get_and_conflict(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    let rec = create(reg, "f", false);
    assert_eq!(rec.version, Version::Latest);
    let cfg = rec.configuration(&ArnContext::default());
    assert_eq!(cfg.function_arn, "arn:aws:lambda:us-east-1:000000000000:function:f");
    assert_eq!(cfg.code_sha256, CodeDigest::of(b"f").base64());
    assert_eq!(cfg.version, "$LATEST");
    assert_eq!(cfg.state, lamb_types::State::Active);
    assert_eq!(cfg.last_modified.len(), "2020-04-10T19:06:32.563+0000".len());
    assert!(cfg.last_modified.ends_with("+0000"));
    assert_eq!(reg.get_function("f", &Qualifier::latest()).unwrap(), rec);
    assert_eq!(
        kind(reg.create_function(NewFunction {
            name: "f".into(),
            spec: spec(),
            code: code("x"),
            publish: false,
        })),
        ErrorKind::ResourceConflict
    );
    assert_eq!(
        kind(reg.get_function("nope", &Qualifier::latest())),
        ErrorKind::ResourceNotFound
    );
    assert_eq!(kind(reg.get_function("f", &q("1"))), ErrorKind::ResourceNotFound);
}

fn revision_changes_on_every_update_and_guards_writes(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    let r0 = create(reg, "f", false);
    let mut s = spec();
    s.timeout = 30;
    let r1 = reg
        .update_function_configuration("f", s.clone(), Some(&r0.revision_id))
        .unwrap();
    assert_ne!(r1.revision_id, r0.revision_id);
    assert_eq!(r1.spec.timeout, 30);
    assert_eq!(
        kind(reg.update_function_configuration("f", s.clone(), Some(&r0.revision_id))),
        ErrorKind::PreconditionFailed
    );
    let r2 = reg
        .update_function_code(
            "f",
            CodeUpdate {
                code: code("v2"),
                architectures: None,
                publish: false,
                revision_id: None,
            },
        )
        .unwrap();
    assert_ne!(r2.revision_id, r1.revision_id);
    assert_eq!(r2.code, code("v2"));
    assert_eq!(r2.spec.timeout, 30);
}

fn versions_rise_and_are_never_reused(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    let v1 = create(reg, "f", true);
    assert_eq!(v1.version, Version::Published(1));
    // Unchanged: publishing again answers with version 1.
    let again = reg.publish_version("f", &PublishVersionRequest::default()).unwrap();
    assert_eq!(again.version, Version::Published(1));
    let mut s = spec();
    s.memory_size = 256;
    reg.update_function_configuration("f", s, None).unwrap();
    let v2 = reg
        .publish_version(
            "f",
            &PublishVersionRequest {
                description: Some("second".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(v2.version, Version::Published(2));
    assert_eq!(v2.configuration(&ArnContext::default()).description, "second");
    assert_eq!(
        v2.configuration(&ArnContext::default()).function_arn,
        "arn:aws:lambda:us-east-1:000000000000:function:f:2"
    );
    // Version 1 is an immutable snapshot.
    assert_eq!(reg.get_function("f", &q("1")).unwrap().spec.memory_size, 128);
    reg.delete_function("f", Some(2)).unwrap();
    let mut s = spec();
    s.memory_size = 512;
    reg.update_function_configuration("f", s, None).unwrap();
    let v3 = reg.publish_version("f", &PublishVersionRequest::default()).unwrap();
    assert_eq!(v3.version, Version::Published(3));
    let versions = reg.list_versions("f", PageRequest::default()).unwrap();
    let names: Vec<String> = versions.items.iter().map(|r| r.version.to_string()).collect();
    assert_eq!(names, ["$LATEST", "1", "3"]);
}

fn publish_checks_code_sha_and_revision(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    let r = create(reg, "f", false);
    let wrong = PublishVersionRequest {
        code_sha256: Some(CodeDigest::of(b"other").base64()),
        ..Default::default()
    };
    assert_eq!(kind(reg.publish_version("f", &wrong)), ErrorKind::InvalidParameterValue);
    let stale = PublishVersionRequest {
        revision_id: Some("stale".into()),
        ..Default::default()
    };
    assert_eq!(kind(reg.publish_version("f", &stale)), ErrorKind::PreconditionFailed);
    let right = PublishVersionRequest {
        code_sha256: Some(r.code.digest.base64()),
        revision_id: Some(r.revision_id),
        ..Default::default()
    };
    assert_eq!(reg.publish_version("f", &right).unwrap().version, Version::Published(1));
}

fn update_code_with_publish_is_one_step(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    let v = reg
        .update_function_code(
            "f",
            CodeUpdate {
                code: code("new"),
                architectures: Some(vec![lamb_types::Architecture::Arm64]),
                publish: true,
                revision_id: None,
            },
        )
        .unwrap();
    assert_eq!(v.version, Version::Published(1));
    assert_eq!(v.code, code("new"));
    assert_eq!(v.spec.architectures, vec![lamb_types::Architecture::Arm64]);
}

fn alias(name: &str, v: Version, weights: &[(u64, f64)]) -> NewAlias {
    NewAlias {
        name: name.into(),
        function_version: v,
        description: String::new(),
        weights: weights.iter().copied().collect(),
    }
}

fn publish_new(reg: &dyn Registry, memory: u32) -> Version {
    let mut s = spec();
    s.memory_size = memory;
    reg.update_function_configuration("f", s, None).unwrap();
    reg.publish_version("f", &PublishVersionRequest::default())
        .unwrap()
        .version
}

fn aliases_route_to_existing_versions(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", true);
    publish_new(reg, 256);
    let a = reg
        .create_alias("f", alias("live", Version::Published(1), &[(2, 0.25)]))
        .unwrap();
    let cfg = a.configuration(&ArnContext::default());
    assert_eq!(cfg.alias_arn, "arn:aws:lambda:us-east-1:000000000000:function:f:live");
    assert_eq!(cfg.routing_config.unwrap().additional_version_weights["2"], 0.25);
    assert_eq!(
        kind(reg.create_alias("f", alias("live", Version::Latest, &[]))),
        ErrorKind::ResourceConflict
    );
    assert_eq!(
        kind(reg.create_alias("f", alias("x", Version::Published(9), &[]))),
        ErrorKind::ResourceNotFound
    );
    assert_eq!(
        kind(reg.create_alias("f", alias("y", Version::Published(1), &[(9, 0.5)]))),
        ErrorKind::ResourceNotFound
    );
    // The alias resolves to its primary version.
    assert_eq!(
        reg.get_function("f", &q("live")).unwrap().version,
        Version::Published(1)
    );
    // A version an alias routes to cannot be deleted.
    assert_eq!(kind(reg.delete_function("f", Some(2))), ErrorKind::ResourceConflict);
    assert_eq!(kind(reg.delete_function("f", Some(1))), ErrorKind::ResourceConflict);
    // A version that never was is deleted already (test_delete_on_nonexisting_version).
    reg.delete_function("f", Some(1233)).unwrap();
    let stale = AliasUpdate {
        revision_id: Some("stale".into()),
        ..Default::default()
    };
    assert_eq!(
        kind(reg.update_alias("f", "live", stale)),
        ErrorKind::PreconditionFailed
    );
    let moved = reg
        .update_alias(
            "f",
            "live",
            AliasUpdate {
                function_version: Some(Version::Published(2)),
                weights: Some(BTreeMap::new()),
                revision_id: Some(a.revision_id.clone()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_ne!(moved.revision_id, a.revision_id);
    reg.delete_function("f", Some(1)).unwrap();
    let by_version = reg
        .list_aliases("f", Some(Version::Published(2)), PageRequest::default())
        .unwrap();
    assert_eq!(by_version.items.len(), 1);
    reg.delete_alias("f", "live").unwrap();
    assert_eq!(kind(reg.get_alias("f", "live")), ErrorKind::ResourceNotFound);
    // Deleting it again succeeds, as AWS answers test_non_existent_alias_deletion.
    reg.delete_alias("f", "live").unwrap();
}

fn layer(reg: &dyn Registry, name: &str, tag: &str) -> lamb_store::LayerVersionRecord {
    reg.publish_layer_version(NewLayerVersion {
        name: name.into(),
        description: String::new(),
        compatible_runtimes: Some(vec!["provided.al2023".into()]),
        compatible_architectures: None,
        license_info: None,
        code: code(tag),
    })
    .unwrap()
}

fn layer_versions_are_never_reused(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    assert_eq!(layer(reg, "l", "a").version, 1);
    assert_eq!(layer(reg, "l", "b").version, 2);
    reg.delete_layer_version("l", 2).unwrap();
    reg.delete_layer_version("l", 2).unwrap();
    assert_eq!(layer(reg, "l", "c").version, 3);
    reg.delete_layer_version("l", 1).unwrap();
    reg.delete_layer_version("l", 3).unwrap();
    assert_eq!(layer(reg, "l", "d").version, 4);
    let got = reg.get_layer_version("l", 4).unwrap();
    let resp = got.response(&ArnContext::default());
    assert_eq!(
        resp.layer_version_arn,
        "arn:aws:lambda:us-east-1:000000000000:layer:l:4"
    );
    assert_eq!(resp.content.code_sha256, CodeDigest::of(b"d").base64());
    assert_eq!(kind(reg.get_layer_version("l", 3)), ErrorKind::ResourceNotFound);
}

fn functions_copy_layers_they_use(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    let l = layer(reg, "l", "layer-bytes");
    let arn = l.arn(&ArnContext::default());
    let mut s = spec();
    s.layers = vec![arn.clone()];
    let f = reg
        .create_function(NewFunction {
            name: "f".into(),
            spec: s.clone(),
            code: code("f"),
            publish: false,
        })
        .unwrap();
    assert_eq!(f.layers[0].arn, arn);
    assert_eq!(f.unzipped_total(), 10 + 10 * "layer-bytes".len() as u64);
    assert_eq!(f.configuration(&ArnContext::default()).layers[0].code_size, 11);
    reg.delete_layer_version("l", 1).unwrap();
    // The function keeps its layer; its bundle stays referenced.
    assert_eq!(reg.get_function("f", &Qualifier::latest()).unwrap().layers.len(), 1);
    assert!(reg
        .referenced_bundles()
        .unwrap()
        .layers
        .contains(&CodeDigest::of(b"layer-bytes")));
    // But no new configuration may name the deleted version.
    assert_eq!(
        kind(reg.update_function_configuration("f", s, None)),
        ErrorKind::InvalidParameterValue
    );
}

fn list_pages_follow_markers(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    for n in ["c", "a", "e", "b", "d"] {
        create(reg, n, true);
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = reg
            .list_functions(
                false,
                PageRequest {
                    marker: marker.as_deref(),
                    max_items: 2,
                },
            )
            .unwrap();
        seen.extend(page.items.iter().map(|r| r.name.clone()));
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => break,
        }
    }
    assert_eq!(seen, ["a", "b", "c", "d", "e"]);
    let all = reg
        .list_functions(
            true,
            PageRequest {
                marker: None,
                max_items: 3,
            },
        )
        .unwrap();
    assert_eq!(all.items.len(), 3);
    let rest = reg
        .list_functions(
            true,
            PageRequest {
                marker: all.next_marker.as_deref(),
                max_items: 100,
            },
        )
        .unwrap();
    assert_eq!(rest.items.len(), 7);
    assert!(rest.next_marker.is_none());
}

fn delete_function_removes_everything(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", true);
    reg.create_alias("f", alias("a", Version::Published(1), &[])).unwrap();
    reg.put_reserved_concurrency("f", 5).unwrap();
    reg.put_event_invoke_config("f", &q("a"), &Default::default(), false)
        .unwrap();
    reg.enqueue_event(NewEvent {
        function: "f".into(),
        qualifier: "$LATEST".into(),
        payload: b"{}".to_vec(),
        request_id: "r1".into(),
        enqueued_at_ms: 1,
    })
    .unwrap();
    reg.delete_function("f", None).unwrap();
    assert_eq!(
        kind(reg.get_function("f", &Qualifier::latest())),
        ErrorKind::ResourceNotFound
    );
    assert_eq!(reg.next_event_due().unwrap(), None);
    assert_eq!(reg.total_reserved_concurrency(None).unwrap(), 0);
    // A new function of the same name starts again at version 1.
    assert_eq!(create(reg, "f", true).version, Version::Published(1));
    assert_eq!(kind(reg.delete_function("nope", None)), ErrorKind::ResourceNotFound);
}

fn reserved_concurrency(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    create(reg, "g", false);
    assert_eq!(reg.get_reserved_concurrency("f").unwrap(), None);
    reg.put_reserved_concurrency("f", 10).unwrap();
    reg.put_reserved_concurrency("g", 0).unwrap();
    assert_eq!(reg.get_reserved_concurrency("f").unwrap(), Some(10));
    assert_eq!(reg.get_reserved_concurrency("g").unwrap(), Some(0));
    assert_eq!(reg.total_reserved_concurrency(None).unwrap(), 10);
    assert_eq!(reg.total_reserved_concurrency(Some("f")).unwrap(), 0);
    reg.delete_reserved_concurrency("f").unwrap();
    assert_eq!(reg.get_reserved_concurrency("f").unwrap(), None);
    assert_eq!(
        kind(reg.put_reserved_concurrency("nope", 1)),
        ErrorKind::ResourceNotFound
    );
}

fn event_invoke_config_put_update_delete(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    let put = PutFunctionEventInvokeConfigRequest {
        maximum_retry_attempts: Some(1),
        maximum_event_age_in_seconds: Some(600),
        destination_config: None,
    };
    reg.put_event_invoke_config("f", &Qualifier::latest(), &put, false)
        .unwrap();
    let upd = PutFunctionEventInvokeConfigRequest {
        maximum_retry_attempts: Some(0),
        ..Default::default()
    };
    let merged = reg
        .put_event_invoke_config("f", &Qualifier::latest(), &upd, true)
        .unwrap();
    assert_eq!(merged.config.maximum_retry_attempts, Some(0));
    assert_eq!(merged.config.maximum_event_age_in_seconds, Some(600));
    let cfg = merged.configuration(&ArnContext::default());
    assert_eq!(
        cfg.function_arn,
        "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
    );
    let replaced = reg
        .put_event_invoke_config("f", &Qualifier::latest(), &upd, false)
        .unwrap();
    assert_eq!(replaced.config.maximum_event_age_in_seconds, None);
    assert_eq!(
        kind(reg.put_event_invoke_config("f", &q("7"), &upd, false)),
        ErrorKind::ResourceNotFound
    );
    assert_eq!(
        reg.list_event_invoke_configs("f", PageRequest::default())
            .unwrap()
            .items
            .len(),
        1
    );
    reg.delete_event_invoke_config("f", &Qualifier::latest()).unwrap();
    assert_eq!(
        kind(reg.get_event_invoke_config("f", &Qualifier::latest())),
        ErrorKind::ResourceNotFound
    );
}

fn async_queue_round_trip(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        reg.enqueue_event(NewEvent {
            function: "f".into(),
            qualifier: "$LATEST".into(),
            payload: vec![i as u8],
            request_id: (*id).into(),
            enqueued_at_ms: 100 + i as i64,
        })
        .unwrap();
    }
    let ids = |events: Vec<lamb_store::QueuedEvent>| events.into_iter().map(|e| e.id).collect::<Vec<_>>();
    assert_eq!(ids(reg.claim_events("run", 101, 400, 10).unwrap()), ["a", "b"]);
    reg.retry_event("a", 1, 1000, None).unwrap();
    reg.finish_event("b", 1, None, 300, None).unwrap();
    let later = reg.claim_events("run", 1000, 2000, 10).unwrap();
    assert_eq!(later.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["c", "a"]);
    assert_eq!(later[1].attempts, 1);
    assert_eq!(kind(reg.retry_event("zzz", 1, 1, None)), ErrorKind::ResourceNotFound);
}

fn code_accounting(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", true); // $LATEST and version 1 share code "f"
    layer(reg, "l", "abc");
    assert_eq!(reg.total_code_size().unwrap(), 1 + 1 + 3);
    let refs = reg.referenced_bundles().unwrap();
    assert_eq!(refs.code.len(), 1);
    assert!(refs.layers.contains(&CodeDigest::of(b"abc")));
}

fn state_can_be_set(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    reg.set_function_state(
        "f",
        Version::Latest,
        lamb_types::State::Pending,
        lamb_types::LastUpdateStatus::InProgress,
    )
    .unwrap();
    let r = reg.get_function("f", &Qualifier::latest()).unwrap();
    assert_eq!(r.state, lamb_types::State::Pending);
    assert_eq!(r.last_update_status, lamb_types::LastUpdateStatus::InProgress);
}

/// The recorded test_layer_exceptions: an empty compatible list is kept
/// apart from none, and a database of before (both `[]`) reads as none.
#[test]
fn a_layers_empty_compatible_lists_are_kept_apart_from_none() {
    let dir = tempfile::tempdir().unwrap();
    let publish = |reg: &SqliteRegistry, runtimes: Option<Vec<String>>| {
        reg.publish_layer_version(NewLayerVersion {
            name: "l".into(),
            description: String::new(),
            compatible_runtimes: runtimes.clone(),
            compatible_architectures: runtimes.map(|_| vec![]),
            license_info: None,
            code: code("a"),
        })
        .unwrap()
    };
    {
        let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
        publish(&reg, Some(vec![]));
        publish(&reg, None);
        let empty = reg.get_layer_version("l", 1).unwrap();
        assert_eq!(
            (empty.compatible_runtimes, empty.compatible_architectures),
            (Some(vec![]), Some(vec![]))
        );
        let none = reg.get_layer_version("l", 2).unwrap();
        assert_eq!((none.compatible_runtimes, none.compatible_architectures), (None, None));
    }
    // As the schema before kept both.
    let conn = rusqlite::Connection::open(dir.path().join(lamb_store::registry::DB_FILE)).unwrap();
    conn.execute_batch(
        "UPDATE layer_versions SET compatible_runtimes = '[]', compatible_architectures = '[]'; \
         PRAGMA user_version = 9;",
    )
    .unwrap();
    drop(conn);
    let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
    for version in [1, 2] {
        let old = reg.get_layer_version("l", version).unwrap();
        assert_eq!((old.compatible_runtimes, old.compatible_architectures), (None, None));
    }
}

#[test]
fn postgres_schema_is_migrated_once_and_a_newer_one_refused() {
    let pg = common::postgres::Postgres::start();
    let url = pg.create_database();
    // Nodes starting together: the advisory lock lets one migrate.
    let opened: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || lamb_store::PostgresRegistry::connect(&url, ArnContext::default()).map(drop))
        })
        .collect();
    for t in opened {
        t.join().unwrap().unwrap();
    }
    let reg = lamb_store::PostgresRegistry::connect(&url, ArnContext::default()).unwrap();
    create(&reg, "f", false);
    drop(reg);
    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    let v: i64 = c.query_one("SELECT version FROM lamb_schema", &[]).unwrap().get(0);
    assert_eq!(v, lamb_store::registry::SCHEMA_VERSION);
    let reg = lamb_store::PostgresRegistry::connect(&url, ArnContext::default()).unwrap();
    assert!(reg.get_function("f", &Qualifier::latest()).is_ok());
    drop(reg);
    c.execute("UPDATE lamb_schema SET version = 99", &[]).unwrap();
    let err = lamb_store::PostgresRegistry::connect(&url, ArnContext::default()).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err}");
}

/// The PostgreSQL registry called, and dropped, from inside an async task
/// of a multi-threaded runtime, as some daemon start-up paths call it: each
/// call leaves the async context (`block_in_place`) and blocks on the
/// engine's own runtime, never this one's, and dropping the engine's
/// runtime there does not panic.
#[test]
fn postgres_registry_is_called_and_dropped_from_async_tasks() {
    let pg = common::postgres::Postgres::start();
    let url = pg.create_database();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let task = tokio::spawn(async move {
            let reg = lamb_store::PostgresRegistry::connect(&url, ArnContext::default()).unwrap();
            create(&reg, "f", false);
            assert!(reg.get_function("f", &Qualifier::latest()).is_ok());
            drop(reg);
        });
        task.await.unwrap();
    });
}

#[test]
fn schema_is_migrated_and_a_newer_one_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
        create(&reg, "f", false);
    }
    let db = dir.path().join(lamb_store::registry::DB_FILE);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(v, lamb_store::registry::SCHEMA_VERSION);
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    // Reopening keeps the data and runs no migration twice.
    let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
    assert!(reg.get_function("f", &Qualifier::latest()).is_ok());
    drop(reg);
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap_err();
    assert!(matches!(err, StoreError::SchemaTooNew { found: 99, .. }), "{err}");
}

fn provisioned_concurrency_configs(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", true);
    create(reg, "g", true);
    reg.create_alias("f", alias("live", Version::Published(1), &[]))
        .unwrap();
    let put = reg.put_provisioned_concurrency("f", "live", 2).unwrap();
    assert_eq!((put.requested, put.qualifier.as_str()), (2, "live"));
    assert_eq!(put.last_modified.len(), "2019-11-21T19:32:12+0000".len());
    reg.put_provisioned_concurrency("f", "live", 3).unwrap();
    reg.put_provisioned_concurrency("g", "1", 4).unwrap();
    assert_eq!(
        reg.get_provisioned_concurrency("f", "live").unwrap().unwrap().requested,
        3
    );
    assert_eq!(reg.get_provisioned_concurrency("f", "1").unwrap(), None);
    assert_eq!(reg.list_provisioned_concurrency(Some("f")).unwrap().len(), 1);
    assert_eq!(reg.list_provisioned_concurrency(None).unwrap().len(), 2);
    // Out of the unreserved pool only while the function has no reservation.
    assert_eq!(reg.total_provisioned_unreserved(None).unwrap(), 7);
    assert_eq!(reg.total_provisioned_unreserved(Some("g")).unwrap(), 3);
    reg.put_reserved_concurrency("g", 5).unwrap();
    assert_eq!(reg.total_provisioned_unreserved(None).unwrap(), 3);
    // Gone with the alias and with the version; deleting twice is no error.
    reg.delete_alias("f", "live").unwrap();
    assert_eq!(reg.get_provisioned_concurrency("f", "live").unwrap(), None);
    reg.delete_function("g", Some(1)).unwrap();
    assert!(reg.list_provisioned_concurrency(None).unwrap().is_empty());
    reg.delete_provisioned_concurrency("f", "live").unwrap();
    assert_eq!(
        kind(reg.put_provisioned_concurrency("nope", "1", 1)),
        ErrorKind::ResourceNotFound
    );
}

fn documents_guard_revisions_and_go_with_their_owner(b: &Backend) {
    use lamb_store::Expect;
    let reg = b.open();
    let reg = &*reg;
    assert_eq!(
        kind(reg.put_function_document("f", "policy:", Some("{}"), Expect::Any)),
        ErrorKind::ResourceNotFound
    );
    create(reg, "f", false);
    let r1 = reg
        .put_function_document("f", "policy:", Some("a"), Expect::Revision(None))
        .unwrap()
        .unwrap();
    // A writer that read before r1 (no document) is refused.
    assert_eq!(
        kind(reg.put_function_document("f", "policy:", Some("b"), Expect::Revision(None))),
        ErrorKind::PreconditionFailed
    );
    let r2 = reg
        .put_function_document("f", "policy:", Some("b"), Expect::Revision(Some(&r1)))
        .unwrap()
        .unwrap();
    assert_ne!(r1, r2);
    assert_eq!(reg.function_document("f", "policy:").unwrap().unwrap().body, "b");
    reg.put_function_document("f", "csc", Some("arn"), Expect::Any).unwrap();
    assert_eq!(reg.functions_with_document("csc", "arn").unwrap(), vec!["f".to_owned()]);
    assert_eq!(reg.function_documents("f", "policy:").unwrap().len(), 1);
    // An alias's or version's documents go with it, the others stay.
    publish_new(reg, 256);
    reg.create_alias("f", alias("live", Version::Published(1), &[]))
        .unwrap();
    reg.put_function_document("f", "policy:live", Some("p"), Expect::Any)
        .unwrap();
    reg.put_function_document("f", "policy:1", Some("p"), Expect::Any)
        .unwrap();
    reg.put_function_document("f", "policy:prelive", Some("p"), Expect::Any)
        .unwrap();
    reg.delete_alias("f", "live").unwrap();
    assert_eq!(reg.function_document("f", "policy:live").unwrap(), None);
    reg.delete_function("f", Some(1)).unwrap();
    assert_eq!(reg.function_document("f", "policy:1").unwrap(), None);
    assert!(reg.function_document("f", "policy:prelive").unwrap().is_some());
    assert!(reg.function_document("f", "policy:").unwrap().is_some());
    reg.delete_function("f", None).unwrap();
    create(reg, "f", false);
    assert_eq!(reg.function_document("f", "policy:").unwrap(), None);

    layer(reg, "l", "a");
    reg.put_document("layer-policy", "l:1", Some("p"), Expect::Any).unwrap();
    reg.put_document("other", "k", Some("q"), Expect::Any).unwrap();
    assert_eq!(reg.documents("other").unwrap().len(), 1);
    reg.delete_layer_version("l", 1).unwrap();
    assert_eq!(reg.document("layer-policy", "l:1").unwrap(), None);
    assert_eq!(reg.put_document("other", "k", None, Expect::Any).unwrap(), None);
    assert!(reg.documents("other").unwrap().is_empty());
}

/// Bundles are kept for other nodes only where nodes share the registry.
fn bundles_are_kept_once_on_a_shared_registry(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    let (kind, digest) = (lamb_store::BundleKind::Function, CodeDigest::of(b"zip"));
    assert_eq!(reg.shared_bundle(kind, &digest).unwrap(), None);
    reg.share_bundle(kind, &digest, b"zip").unwrap();
    reg.share_bundle(kind, &digest, b"zip").unwrap();
    let expected = b.is_postgres().then(|| b"zip".to_vec());
    assert_eq!(reg.shared_bundle(kind, &digest).unwrap(), expected);
    assert_eq!(reg.shared_bundle(lamb_store::BundleKind::Layer, &digest).unwrap(), None);
}

/// A shared bundle goes once nothing refers to it and its grace period has
/// passed: kept while a function version, `$LATEST` or a layer version
/// refers to it, and while it is younger than the grace (a version being
/// created from it). One box keeps none and collects none.
fn unreferenced_shared_bundles_are_collected_after_their_grace(b: &Backend) {
    use lamb_store::BundleKind::{Function, Layer};
    use std::time::Duration;
    let reg = b.open();
    let reg = &*reg;
    let shared = |kind, tag: &str| {
        reg.shared_bundle(kind, &CodeDigest::of(tag.as_bytes()))
            .unwrap()
            .is_some()
    };
    let share = |kind, tag: &str| {
        reg.share_bundle(kind, &CodeDigest::of(tag.as_bytes()), tag.as_bytes())
            .unwrap()
    };
    let long = Duration::from_secs(3600);
    // `create` and `layer` store code whose digest is that of their tag.
    for tag in ["f", "g", "orphan"] {
        share(Function, tag);
    }
    share(Layer, "l1");
    create(reg, "f", true);
    create(reg, "g", false);
    layer(reg, "l", "l1");
    // Fresh: nothing goes, not even the bundle nothing refers to yet.
    assert_eq!(reg.collect_shared_bundles(long).unwrap(), 0);
    if !b.is_postgres() {
        assert_eq!(reg.collect_shared_bundles(Duration::ZERO).unwrap(), 0);
        assert!(!shared(Function, "orphan"));
        return;
    }
    assert!(shared(Function, "orphan"));
    // Past its grace, only what nothing refers to goes.
    assert_eq!(reg.collect_shared_bundles(Duration::ZERO).unwrap(), 1);
    assert!(!shared(Function, "orphan") && shared(Function, "f") && shared(Function, "g") && shared(Layer, "l1"));
    // $LATEST alone keeps g's; version 1 alone keeps f's, once $LATEST moved.
    reg.update_function_code(
        "f",
        CodeUpdate {
            code: code("f2"),
            architectures: None,
            publish: false,
            revision_id: None,
        },
    )
    .unwrap();
    share(Function, "f2");
    assert_eq!(reg.collect_shared_bundles(Duration::ZERO).unwrap(), 0);
    reg.delete_function("f", None).unwrap();
    reg.delete_function("g", None).unwrap();
    reg.delete_layer_version("l", 1).unwrap();
    // Every bundle past the long grace; then f's shared again (another
    // upload of the same code, its version not yet created): young, kept.
    let common::registry::Backend::Postgres(_, url) = b else {
        unreachable!()
    };
    let mut db = ::postgres::Client::connect(url, ::postgres::NoTls).unwrap();
    db.execute("UPDATE shared_bundles SET shared_at = now() - interval '2 hours'", &[])
        .unwrap();
    share(Function, "f");
    assert_eq!(reg.collect_shared_bundles(long).unwrap(), 3);
    assert!(shared(Function, "f") && !shared(Function, "g") && !shared(Function, "f2") && !shared(Layer, "l1"));
    assert_eq!(reg.collect_shared_bundles(Duration::ZERO).unwrap(), 1);
    assert!(!shared(Function, "f"));
}

/// The read cache's invalidation: a write through a registry changes its
/// generation at once; a write through another registry on the same
/// database (another node) changes it once announced (PostgreSQL's
/// `lamb_registry` channel), and a failed read changes nothing.
fn generation_changes_with_every_write_wherever_it_is_made(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    let wait_live = |r: &dyn lamb_store::Registry| loop {
        // A shared registry is live once its listener has connected.
        if let Some(g) = r.generation() {
            return g;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let before = wait_live(reg);
    create(reg, "f", false);
    let after = reg.generation().unwrap();
    assert_ne!(after, before);
    assert!(reg.get_function("missing", &Qualifier::latest()).is_err());
    if !b.is_postgres() {
        // (On PostgreSQL the registry hears its own write's announcement
        // too, whenever it arrives.)
        assert_eq!(reg.generation(), Some(after));
        return;
    }
    let other = b.open();
    wait_live(&*other);
    let seen = reg.generation().unwrap();
    other.put_reserved_concurrency("f", 3).unwrap();
    // Waits for the announcement: never a timing, only the event (the
    // deadline only turns a lost one into a failure).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while reg.generation() == Some(seen) {
        assert!(std::time::Instant::now() < deadline, "another node's write never heard");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

crate::suite!(
    generation_changes_with_every_write_wherever_it_is_made,
    bundles_are_kept_once_on_a_shared_registry,
    unreferenced_shared_bundles_are_collected_after_their_grace,
    create_get_and_conflict,
    revision_changes_on_every_update_and_guards_writes,
    versions_rise_and_are_never_reused,
    publish_checks_code_sha_and_revision,
    update_code_with_publish_is_one_step,
    aliases_route_to_existing_versions,
    layer_versions_are_never_reused,
    functions_copy_layers_they_use,
    list_pages_follow_markers,
    delete_function_removes_everything,
    reserved_concurrency,
    event_invoke_config_put_update_delete,
    async_queue_round_trip,
    code_accounting,
    state_can_be_set,
    provisioned_concurrency_configs,
    documents_guard_revisions_and_go_with_their_owner
);
