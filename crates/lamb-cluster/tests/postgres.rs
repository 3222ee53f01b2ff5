//! The cluster's PostgreSQL parts against a real PostgreSQL (started by
//! `common::postgres`): membership, exact admission across nodes,
//! dead nodes, leases and their move, provisioned concurrency's split, and
//! reconnection after a restart.

#[allow(dead_code)]
mod common;

use common::postgres::Postgres;
use lamb_cluster::concurrency::{self, Admitted, Ask};
use lamb_cluster::lease::{self, Guarded, LEASE_TTL};
use lamb_cluster::membership::{self, NodeReport, DEAD_AFTER};
use lamb_cluster::{provisioned, schema, Db};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A node's database handle with the schema applied and the node registered.
async fn node(url: &str, id: &str) -> Arc<Db> {
    let db = Arc::new(Db::new(url));
    let client = db.client().await.unwrap();
    schema::apply(&client).await.unwrap();
    membership::register(&client, &report(id, 0, &[])).await.unwrap();
    db
}

fn report(id: &str, in_flight: u32, idle: &[(&str, u32)]) -> NodeReport {
    NodeReport {
        node_id: id.to_owned(),
        api_addr: format!("{id}:9080"),
        cluster_addr: format!("{id}:9090"),
        capacity: 100,
        in_flight,
        idle: idle.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
        registry_node: None,
    }
}

fn ask(function: &str, limit: u32, reserved: Option<u32>, total_reserved: u64) -> Ask<'_> {
    Ask {
        function,
        limit,
        reserved,
        total_reserved,
    }
}

/// Makes a node look dead to the others: its heartbeat an hour old.
async fn age(db: &Db, id: &str) {
    let client = db.client().await.unwrap();
    client
        .execute(
            "UPDATE lamb_cluster_nodes SET heartbeat_at = now() - interval '1 hour' WHERE node_id = $1",
            &[&id],
        )
        .await
        .unwrap();
}

fn admitted(outcome: Admitted) -> concurrency::Slot {
    match outcome {
        Admitted::Yes(slot) => slot,
        Admitted::Throttled(reason) => panic!("refused: {reason}"),
    }
}

fn refused(outcome: Admitted) -> String {
    match outcome {
        Admitted::Yes(_) => panic!("admitted past the limit"),
        Admitted::Throttled(reason) => reason,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_see_each_others_heartbeats_and_a_leaving_node_goes() {
    let pg = Postgres::start();
    let a = node(&pg.url(), "a").await;
    let b = node(&pg.url(), "b").await;
    let client = b.client().await.unwrap();
    membership::heartbeat(&client, &report("b", 3, &[("f:1:rev", 2)]))
        .await
        .unwrap();
    let nodes = membership::nodes(&a.client().await.unwrap()).await.unwrap();
    assert_eq!(nodes.iter().map(|n| n.node_id.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let seen_b = &nodes[1];
    assert_eq!(
        (
            seen_b.in_flight,
            seen_b.idle_of("f:1:rev"),
            seen_b.cluster_addr.as_str()
        ),
        (3, 2, "b:9090")
    );
    assert!(seen_b.alive(DEAD_AFTER));
    assert_eq!(nodes[0].idle, BTreeMap::new());
    membership::leave(&client, "b").await.unwrap();
    let nodes = membership::nodes(&client).await.unwrap();
    assert_eq!(nodes.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_limit_holds_exactly_across_nodes() {
    let pg = Postgres::start();
    let nodes = [
        node(&pg.url(), "a").await,
        node(&pg.url(), "b").await,
        node(&pg.url(), "c").await,
    ];
    // Twice the limit, at once, through three nodes (three connections).
    let mut calls = Vec::new();
    for i in 0..10 {
        let db = Arc::clone(&nodes[i % 3]);
        let id = ["a", "b", "c"][i % 3];
        calls.push(tokio::spawn(async move {
            concurrency::admit(&db, id, ask("f", 5, None, 0)).await.unwrap()
        }));
    }
    let mut slots = Vec::new();
    let mut reasons = Vec::new();
    for call in calls {
        match call.await.unwrap() {
            Admitted::Yes(slot) => slots.push(slot),
            Admitted::Throttled(reason) => reasons.push(reason),
        }
    }
    assert_eq!(slots.len(), 5);
    assert_eq!(reasons, vec!["ConcurrentInvocationLimitExceeded"; 5]);
    // One released anywhere frees one place anywhere, and only one.
    slots.pop().unwrap().release().await;
    let _again = admitted(concurrency::admit(&nodes[2], "c", ask("g", 5, None, 0)).await.unwrap());
    refused(concurrency::admit(&nodes[0], "a", ask("g", 5, None, 0)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deferred_release_counts_until_written_with_the_next_admission_or_a_flush() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg.url(), "a").await, node(&pg.url(), "b").await);
    let releases = concurrency::Releases::default();
    let first = admitted(
        concurrency::admit_releasing(&a, "a", ask("f", 1, None, 0), &releases)
            .await
            .unwrap(),
    );
    releases.defer(first);
    // Not written yet: the cluster still counts it, so another node is
    // refused (erring on refusing, never on running too many).
    refused(concurrency::admit(&b, "b", ask("f", 1, None, 0)).await.unwrap());
    // a's next admission writes it in the same statement: its place is free.
    let second = admitted(
        concurrency::admit_releasing(&a, "a", ask("f", 1, None, 0), &releases)
            .await
            .unwrap(),
    );
    assert!(releases.is_empty());
    refused(concurrency::admit(&b, "b", ask("f", 1, None, 0)).await.unwrap());
    // Reserved and unreserved slots are counted out each in their own row.
    releases.defer(second);
    let reserved = admitted(
        concurrency::admit_releasing(&a, "a", ask("r", 2, Some(1), 1), &releases)
            .await
            .unwrap(),
    );
    releases.defer(reserved);
    concurrency::flush(&a, "a", &releases).await.unwrap();
    assert!(releases.is_empty());
    let _f = admitted(concurrency::admit(&b, "b", ask("f", 2, None, 1)).await.unwrap());
    let _r = admitted(concurrency::admit(&b, "b", ask("r", 2, Some(1), 1)).await.unwrap());
    refused(concurrency::admit(&b, "b", ask("g", 2, None, 1)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_and_unreserved_concurrency_hold_across_nodes() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg.url(), "a").await, node(&pg.url(), "b").await);
    // Limit 5, function r reserves 2: the others share 3.
    let _r1 = admitted(concurrency::admit(&a, "a", ask("r", 5, Some(2), 2)).await.unwrap());
    let _r2 = admitted(concurrency::admit(&b, "b", ask("r", 5, Some(2), 2)).await.unwrap());
    let reason = refused(concurrency::admit(&a, "a", ask("r", 5, Some(2), 2)).await.unwrap());
    assert_eq!(reason, "ReservedFunctionConcurrentInvocationLimitExceeded");
    let mut held = Vec::new();
    for (db, id) in [(&a, "a"), (&b, "b"), (&a, "a")] {
        held.push(admitted(
            concurrency::admit(db, id, ask("u", 5, None, 2)).await.unwrap(),
        ));
    }
    let reason = refused(concurrency::admit(&b, "b", ask("v", 5, None, 2)).await.unwrap());
    assert_eq!(reason, "ConcurrentInvocationLimitExceeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_invocations_stop_counting_and_a_restart_clears_its_own() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg.url(), "a").await, node(&pg.url(), "b").await);
    let mut on_b = Vec::new();
    for _ in 0..2 {
        on_b.push(admitted(
            concurrency::admit(&b, "b", ask("f", 2, None, 0)).await.unwrap(),
        ));
    }
    refused(concurrency::admit(&a, "a", ask("f", 2, None, 0)).await.unwrap());
    age(&a, "b").await;
    let slot = admitted(concurrency::admit(&a, "a", ask("f", 2, None, 0)).await.unwrap());
    let client = a.client().await.unwrap();
    assert_eq!(membership::sweep_dead(&client, DEAD_AFTER).await.unwrap(), 1);
    slot.release().await;
    // a dies with one invocation counted (never released) and comes back
    // under the same id: its start clears it.
    std::mem::forget(admitted(
        concurrency::admit(&a, "a", ask("f", 1, None, 0)).await.unwrap(),
    ));
    refused(concurrency::admit(&a, "a", ask("f", 1, None, 0)).await.unwrap());
    let restarted = node(&pg.url(), "a").await;
    let _slot = admitted(concurrency::admit(&restarted, "a", ask("f", 1, None, 0)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioned_concurrency_is_split_summed_and_moved_off_a_dead_node() {
    let pg = Postgres::start();
    let (a, b, c) = (
        node(&pg.url(), "a").await,
        node(&pg.url(), "b").await,
        node(&pg.url(), "c").await,
    );
    let client = a.client().await.unwrap();
    let configs = [provisioned::Config {
        function: "f".into(),
        qualifier: "live".into(),
        requested: 3,
    }];
    let key = ("f".to_owned(), "live".to_owned());
    assert!(provisioned::rebalance(&client, &configs, DEAD_AFTER).await.unwrap());
    assert!(!provisioned::rebalance(&client, &configs, DEAD_AFTER).await.unwrap());
    // Each node keeps one; the total counts what they report initialised.
    let reported = |allocated| {
        [provisioned::Report {
            function: "f".into(),
            qualifier: "live".into(),
            allocated,
            failure: None,
        }]
    };
    for (db, id) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        let client = db.client().await.unwrap();
        let (mine, _) = provisioned::follow(&client, id, &reported(1), DEAD_AFTER)
            .await
            .unwrap();
        assert_eq!(mine.get(&key), Some(&1), "{id}");
    }
    let (_, totals) = provisioned::follow(&client, "a", &reported(1), DEAD_AFTER)
        .await
        .unwrap();
    assert_eq!(totals[&key].allocated, 3);
    // c dies: its one no longer counts, and goes to a or b.
    age(&a, "c").await;
    let (_, totals) = provisioned::follow(&client, "a", &reported(1), DEAD_AFTER)
        .await
        .unwrap();
    assert_eq!(totals[&key].allocated, 2);
    assert!(provisioned::rebalance(&client, &configs, DEAD_AFTER).await.unwrap());
    let split = provisioned::current(&client).await.unwrap();
    assert_eq!(split[&key].values().sum::<u32>(), 3);
    assert_eq!(split[&key].get("c"), None);
    // A deleted configuration's rows go.
    provisioned::rebalance(&client, &[], DEAD_AFTER).await.unwrap();
    assert!(provisioned::current(&client).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_has_one_holder_and_moves_only_when_it_expires_or_is_released() {
    let pg = Postgres::start();
    let db = node(&pg.url(), "a").await;
    let c = db.client().await.unwrap();
    let first = lease::acquire(&c, "schedules", "a", LEASE_TTL).await.unwrap().unwrap();
    assert!(lease::acquire(&c, "schedules", "b", LEASE_TTL).await.unwrap().is_none());
    let renewed = lease::acquire(&c, "schedules", "a", LEASE_TTL).await.unwrap().unwrap();
    assert_eq!(renewed.epoch, first.epoch);
    // Another name is another lease.
    assert!(lease::acquire(&c, "mappings", "b", LEASE_TTL).await.unwrap().is_some());
    c.execute(
        "UPDATE lamb_cluster_leases SET expires_at = now() - interval '1 second' WHERE name = 'schedules'",
        &[],
    )
    .await
    .unwrap();
    let moved = lease::acquire(&c, "schedules", "b", LEASE_TTL).await.unwrap().unwrap();
    assert_eq!(moved.epoch, first.epoch + 1);
    assert!(lease::acquire(&c, "schedules", "a", LEASE_TTL).await.unwrap().is_none());
    lease::release(&c, "schedules", "a").await.unwrap(); // not a's: changes nothing
    assert_eq!(
        lease::holder(&c, "schedules").await.unwrap(),
        Some(("b".to_owned(), moved.epoch))
    );
    lease::release(&c, "schedules", "b").await.unwrap();
    assert!(lease::acquire(&c, "schedules", "a", LEASE_TTL).await.unwrap().is_some());
}

type Event = (&'static str, &'static str, i64);

/// Reports its starts and stops on a channel.
struct Recorder {
    node: &'static str,
    events: mpsc::UnboundedSender<Event>,
    epoch: i64,
}

impl Guarded for Recorder {
    fn start(&mut self, epoch: i64) {
        self.epoch = epoch;
        let _ = self.events.send((self.node, "start", epoch));
    }

    async fn stop(&mut self) {
        let _ = self.events.send((self.node, "stop", self.epoch));
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Event {
    // Generous: a lease moves within its TTL and a renewal period.
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("no lease event")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_holders_lease_moves_and_a_stopped_holder_hands_it_over() {
    let pg = Postgres::start();
    let (a, b) = (node(&pg.url(), "a").await, node(&pg.url(), "b").await);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let recorder = |node| Recorder {
        node,
        events: tx.clone(),
        epoch: 0,
    };
    let a_task = tokio::spawn({
        let (a, r) = (Arc::clone(&a), recorder("a"));
        async move { lease::keep(&a, "mappings", "a", r, std::future::pending()).await }
    });
    assert_eq!(next(&mut rx).await, ("a", "start", 1));
    let (stop_b, stopped_b) = tokio::sync::oneshot::channel::<()>();
    let b_task = tokio::spawn({
        let (b, r) = (Arc::clone(&b), recorder("b"));
        async move {
            let stop = async {
                let _ = stopped_b.await;
            };
            lease::keep(&b, "mappings", "b", r, stop).await
        }
    });
    // a is killed: no stop, no release. b takes over once the lease expired.
    a_task.abort();
    assert_eq!(next(&mut rx).await, ("b", "start", 2));
    // b stops cleanly: its subsystem stops and the lease is free at once.
    stop_b.send(()).unwrap();
    b_task.await.unwrap();
    assert_eq!(next(&mut rx).await, ("b", "stop", 2));
    let c = a.client().await.unwrap();
    assert_eq!(lease::holder(&c, "mappings").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reconnects_after_postgresql_restarts_or_crashes() {
    let mut pg = Postgres::start();
    let db = node(&pg.url(), "a").await;
    for outage in ["restart", "crash"] {
        if outage == "restart" {
            pg.restart();
        } else {
            pg.kill();
            pg.resume();
        }
        // The first use after the outage may meet the dead connection; the
        // next one is made afresh.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = async {
                let client = db.client().await?;
                membership::heartbeat(&client, &report("a", 0, &[])).await
            }
            .await;
            match result {
                Ok(()) => break,
                Err(e) if attempts < 3 => eprintln!("{outage}, attempt {attempts}: {}", lamb_cluster::chain(&e)),
                Err(e) => panic!("no reconnection after a {outage}: {}", lamb_cluster::chain(&e)),
            }
        }
    }
}
