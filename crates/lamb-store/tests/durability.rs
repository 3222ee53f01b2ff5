//! `kill -9` durability: a child process writes in a loop (unpack code,
//! update and publish, move an alias, queue an event); it is SIGKILLed at a
//! random moment, and after each kill the database must pass
//! `PRAGMA integrity_check`, hold every write the child reported committed,
//! and keep its invariants; the code store must hold only complete bundles.

mod common;

use lamb_store::{
    AliasUpdate, BundleKind, CodeInfo, CodeStore, CodeUpdate, NewAlias, NewEvent, NewFunction, PageRequest, Registry,
    SqliteRegistry, UnpackLimits,
};
use lamb_types::{ArnContext, FunctionSpec, Qualifier, Version};
use rand::Rng;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHILD_ENV: &str = "LAMB_STORE_DURABILITY_CHILD";
const ITERATIONS: usize = 25;

fn bundle(i: u64) -> Vec<u8> {
    let n = i.to_string();
    common::zip(&[
        common::Entry::File("bootstrap", b"#!/bin/sh\n", 0o755),
        common::Entry::File("n", n.as_bytes(), 0o644),
    ])
}

/// The child's body: runs only when the parent test re-invokes this binary.
#[test]
fn durability_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    write_forever(Path::new(&dir));
}

fn write_forever(dir: &Path) -> ! {
    let store = CodeStore::open(dir).unwrap();
    let reg = SqliteRegistry::open_in(dir, ArnContext::default()).unwrap();
    let limits = UnpackLimits::default();
    if reg.get_function("f", &Qualifier::latest()).is_err() {
        let b = store.put(BundleKind::Function, &bundle(0), &limits).unwrap();
        reg.create_function(NewFunction {
            name: "f".into(),
            spec: FunctionSpec::default(),
            code: CodeInfo::from(&b),
            publish: false,
        })
        .unwrap();
    }
    let mut i = rand::random::<u32>() as u64;
    loop {
        i += 1;
        let b = store.put(BundleKind::Function, &bundle(i), &limits).unwrap();
        let v = reg
            .update_function_code(
                "f",
                CodeUpdate {
                    code: CodeInfo::from(&b),
                    architectures: None,
                    publish: true,
                    revision_id: None,
                },
            )
            .unwrap();
        drop(b);
        let moved = reg.update_alias(
            "f",
            "live",
            AliasUpdate {
                function_version: Some(v.version),
                ..Default::default()
            },
        );
        if moved.is_err() {
            reg.create_alias(
                "f",
                NewAlias {
                    name: "live".into(),
                    function_version: v.version,
                    description: String::new(),
                    weights: Default::default(),
                },
            )
            .unwrap();
        }
        reg.enqueue_event(NewEvent {
            function: "f".into(),
            qualifier: v.version.to_string(),
            payload: i.to_string().into_bytes(),
            request_id: uuid::Uuid::new_v4().to_string(),
            enqueued_at_ms: 0,
        })
        .unwrap();
        println!("committed {}", v.version);
    }
}

#[test]
fn survives_kill_9_at_any_point() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut highest_reported = 0u64;
    for round in 0..ITERATIONS {
        let reported = run_and_kill(tmp.path(), Duration::from_millis(rng.gen_range(30..400)));
        highest_reported = highest_reported.max(reported);
        check(tmp.path(), highest_reported, round);
    }
    eprintln!("highest committed version reported: {highest_reported}");
}

/// Runs the child, kills it after `after`, and answers the highest version
/// it reported committed.
fn run_and_kill(dir: &Path, after: Duration) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["durability_child_writer", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let highest = Arc::new(Mutex::new(0u64));
    let h = Arc::clone(&highest);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("committed ").and_then(|n| n.parse().ok()) {
                let mut h = h.lock().unwrap();
                *h = (*h).max(n);
            }
        }
    });
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    let n = *highest.lock().unwrap();
    n
}

fn check(dir: &Path, reported: u64, round: usize) {
    let reg = SqliteRegistry::open_in(dir, ArnContext::default()).unwrap();
    reg.integrity_check().unwrap();
    let store = CodeStore::open(dir).unwrap();
    let Ok(latest) = reg.get_function("f", &Qualifier::latest()) else {
        assert_eq!(reported, 0, "round {round}: reported writes but no function");
        return;
    };
    let versions = reg
        .list_versions(
            "f",
            PageRequest {
                marker: None,
                max_items: 10_000,
            },
        )
        .unwrap()
        .items;
    let published: Vec<u64> = versions
        .iter()
        .filter_map(|r| match r.version {
            Version::Published(n) => Some(n),
            Version::Latest => None,
        })
        .collect();
    let top = published.last().copied().unwrap_or(0);
    assert!(
        top >= reported,
        "round {round}: lost committed version {reported} (have {top})"
    );
    assert_eq!(
        published,
        (1..=top).collect::<Vec<_>>(),
        "round {round}: gap in versions"
    );
    if top > 0 {
        // The newest version is $LATEST's snapshot: the two commit together.
        assert_eq!(versions.last().unwrap().code, latest.code, "round {round}");
    }
    for r in &versions {
        let path = store.path(BundleKind::Function, &r.code.digest);
        assert!(path.join("bootstrap").is_file(), "round {round}: missing code {path:?}");
        assert!(path.join("n").is_file(), "round {round}: half-written code {path:?}");
    }
    if let Ok(alias) = reg.get_alias("f", "live") {
        assert!(published.contains(&match alias.function_version {
            Version::Published(n) => n,
            Version::Latest => 0,
        }));
    }
    let events = reg.list_events("f").unwrap();
    assert!(events.len() as u64 <= top, "round {round}: event without its version");
    for e in &events {
        let v: u64 = e.event.qualifier.parse().unwrap();
        assert!(published.contains(&v), "round {round}: event for a missing version");
    }
    store.gc(|| reg.referenced_bundles()).unwrap();
    for r in &versions {
        assert!(store.contains(BundleKind::Function, &r.code.digest));
    }
}
