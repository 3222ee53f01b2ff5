//! The PostgreSQL registry across restarts and crashes of the database: the
//! calls made meanwhile fail as a retryable `ServiceException`, the next
//! ones reconnect, and a node's enqueue callback hears the enqueues of
//! another node again once its listener has reconnected.

mod common;

use common::postgres::Postgres;
use common::registry::create;
use lamb_store::{NewEvent, PostgresRegistry, Registry};
use lamb_types::{ArnContext, ErrorKind, Qualifier};
use std::sync::mpsc;
use std::time::Duration;

/// `get_function` until it answers, each failure a `ServiceException`;
/// the pool drops a closed connection per failed call, so it answers
/// within the pool's size and one.
fn reads_again(reg: &PostgresRegistry) {
    for _ in 0..=17 {
        match reg.get_function("f", &Qualifier::latest()) {
            Ok(_) => return,
            Err(e) => assert_eq!(e.to_lambda().kind, ErrorKind::Service, "{e}"),
        }
    }
    panic!("the registry did not reconnect");
}

fn event(id: &str) -> NewEvent {
    NewEvent {
        function: "f".into(),
        qualifier: "$LATEST".into(),
        payload: b"{}".to_vec(),
        request_id: id.into(),
        enqueued_at_ms: 1,
    }
}

/// Enqueues through `other` until `woken` hears one (the listener may not
/// have reconnected for the first ones).
fn wakes(other: &PostgresRegistry, woken: &mpsc::Receiver<()>, tag: &str) {
    while woken.try_recv().is_ok() {}
    for i in 0..600 {
        if other.enqueue_event(event(&format!("{tag}-{i}"))).is_ok()
            && woken.recv_timeout(Duration::from_millis(100)).is_ok()
        {
            return;
        }
    }
    panic!("no wake-up after {tag}");
}

#[test]
fn restart_and_crash_of_the_database() {
    let mut pg = Postgres::start();
    let url = pg.create_database();
    let reg = PostgresRegistry::connect(&url, ArnContext::default()).unwrap();
    let (tx, woken) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    reg.on_enqueue(move || {
        let _ = tx.lock().unwrap().send(());
    });
    let other = PostgresRegistry::connect(&url, ArnContext::default()).unwrap();
    create(&reg, "f", false);
    wakes(&other, &woken, "first");

    pg.restart();
    reads_again(&reg);
    reads_again(&other);
    wakes(&other, &woken, "restart");

    pg.kill();
    assert_eq!(
        reg.get_function("f", &Qualifier::latest())
            .unwrap_err()
            .to_lambda()
            .kind,
        ErrorKind::Service
    );
    pg.resume();
    reads_again(&reg);
    reads_again(&other);
    wakes(&other, &woken, "crash");
}
