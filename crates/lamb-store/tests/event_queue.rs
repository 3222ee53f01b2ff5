//! The async queue's leases, retries, failed records and destinations.

mod common;

use common::registry::{create, Backend};
use lamb_store::{EventStatus, NewEvent};

fn event(function: &str, id: &str, at: i64) -> NewEvent {
    NewEvent {
        function: function.into(),
        qualifier: "$LATEST".into(),
        payload: b"{}".to_vec(),
        request_id: id.into(),
        enqueued_at_ms: at,
    }
}

fn ids(events: &[lamb_store::QueuedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.id.as_str()).collect()
}

fn claims_lease_and_release_after_a_crash(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        reg.enqueue_event(event("f", id, 100 + i as i64)).unwrap();
    }
    assert_eq!(reg.next_event_due().unwrap(), Some(100));
    let got = reg.claim_events("run1", 200, 10_000, 2).unwrap();
    assert_eq!(ids(&got), ["a", "b"]);
    // Leased: not claimed again before the lease ends.
    assert_eq!(ids(&reg.claim_events("run1", 300, 10_000, 10).unwrap()), ["c"]);
    assert!(reg.claim_events("run1", 400, 10_000, 10).unwrap().is_empty());
    assert_eq!(reg.next_event_due().unwrap(), Some(10_000));
    let listed = reg.list_events("f").unwrap();
    assert!(listed.iter().all(|e| e.status == EventStatus::Running));
    // A new run takes back what the dead one held; its own leases stay.
    // On PostgreSQL the other owners are other nodes: leases only expire.
    assert_eq!(reg.release_events("run1", 500).unwrap(), 0);
    if b.is_postgres() {
        assert_eq!(reg.release_events("run2", 500).unwrap(), 0);
        assert!(reg.claim_events("run2", 500, 10_000, 10).unwrap().is_empty());
    } else {
        assert_eq!(reg.release_events("run2", 500).unwrap(), 3);
        assert_eq!(
            ids(&reg.claim_events("run2", 500, 10_000, 10).unwrap()),
            ["a", "b", "c"]
        );
    }
    // A lease that runs out makes the event due again.
    assert_eq!(reg.claim_events("run3", 10_000, 20_000, 10).unwrap().len(), 3);
}

fn retry_finish_and_purge(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    create(reg, "dest", false);
    reg.enqueue_event(event("f", "a", 1)).unwrap();
    reg.enqueue_event(event("f", "b", 2)).unwrap();
    reg.claim_events("run", 10, 1000, 10).unwrap();
    reg.retry_event("a", 1, 50, Some("boom")).unwrap();
    let listed = reg.list_events("f").unwrap();
    assert_eq!(listed[0].status, EventStatus::Queued);
    assert_eq!(listed[0].event.attempts, 1);
    assert_eq!(listed[0].last_error.as_deref(), Some("boom"));
    // Success with a destination: gone, and the destination's event queued.
    reg.finish_event("b", 1, None, 20, Some(event("dest", "b-dest", 20)))
        .unwrap();
    assert_eq!(reg.list_events("dest").unwrap().len(), 1);
    // Failure: kept, never due again, until purged.
    reg.claim_events("run", 60, 1000, 10).unwrap();
    reg.finish_event("a", 2, Some("retries exhausted"), 70, None).unwrap();
    let listed = reg.list_events("f").unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status, EventStatus::Failed);
    assert_eq!(listed[0].finished_at_ms, Some(70));
    assert_eq!(listed[0].event.attempts, 2);
    let due = reg.claim_events("run", i64::MAX / 2, i64::MAX / 2, 10).unwrap();
    assert!(due.iter().all(|e| e.function != "f"));
    assert_eq!(reg.purge_failed_events(70).unwrap(), 0);
    assert_eq!(reg.purge_failed_events(71).unwrap(), 1);
    assert!(reg.list_events("f").unwrap().is_empty());
    // A destination that does not exist fails the whole step.
    reg.enqueue_event(event("f", "c", 80)).unwrap();
    assert!(reg
        .finish_event("c", 1, None, 90, Some(event("nope", "x", 90)))
        .is_err());
    assert_eq!(reg.list_events("f").unwrap().len(), 1);
}

/// A restarted node takes back its earlier runs' leases (`<node>/<run>`);
/// on a shared registry (PostgreSQL) never another node's, which expire.
fn a_new_run_takes_back_its_nodes_leases(b: &Backend) {
    let reg = b.open();
    let reg = &*reg;
    create(reg, "f", false);
    reg.enqueue_event(event("f", "a", 100)).unwrap();
    reg.enqueue_event(event("f", "b", 100)).unwrap();
    assert_eq!(reg.claim_events("n1/r1", 200, 10_000, 1).unwrap().len(), 1);
    assert_eq!(reg.claim_events("n2/r1", 200, 10_000, 1).unwrap().len(), 1);
    let released = reg.release_events("n1/r2", 300).unwrap();
    if b.is_postgres() {
        assert_eq!(released, 1);
        assert_eq!(ids(&reg.claim_events("n1/r2", 300, 10_000, 10).unwrap()), ["a"]);
    } else {
        assert_eq!(released, 2);
        assert_eq!(reg.claim_events("n1/r2", 300, 10_000, 10).unwrap().len(), 2);
    }
}

crate::suite!(
    claims_lease_and_release_after_a_crash,
    retry_finish_and_purge,
    a_new_run_takes_back_its_nodes_leases
);
