//! Where a synchronous invocation runs: the one routing decision of the
//! cluster (docs/cluster.md, "How a call is routed"). Pure: it reads a
//! snapshot of the nodes and decides, so it is tested without a database.

use crate::membership::NodeSnapshot;
use std::time::Duration;

/// The outcome of [`choose`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Run it on the receiving node.
    Local,
    /// Forward it to this node's cluster address.
    Forward { node: String, cluster_addr: String },
}

/// What the receiving node knows exactly about itself, beside the snapshot.
#[derive(Debug, Clone, Copy)]
pub struct Local<'a> {
    pub node_id: &'a str,
    /// Idle sandboxes of the version here now (the engine's own count).
    pub idle: u32,
    /// Whether the call was forwarded to this node already: it is never
    /// forwarded twice.
    pub forwarded: bool,
}

/// Chooses the node for one invocation of the version `pool_key`.
///
/// Warm affinity first (this node if it holds an idle sandbox of the
/// version, else the live node holding the most), else the least-loaded
/// live node with capacity (this node on a tie), else this node, whose
/// admission then decides.
pub fn choose(local: Local<'_>, nodes: &[NodeSnapshot], pool_key: &str, dead_after: Duration) -> Route {
    if local.forwarded || local.idle > 0 {
        return Route::Local;
    }
    let live: Vec<&NodeSnapshot> = nodes.iter().filter(|n| n.heartbeat_age < dead_after).collect();
    let warm = live
        .iter()
        .filter(|n| n.node_id != local.node_id && n.idle_of(pool_key) > 0)
        .max_by(|a, b| {
            a.idle_of(pool_key)
                .cmp(&b.idle_of(pool_key))
                .then_with(|| b.node_id.cmp(&a.node_id))
        });
    if let Some(node) = warm {
        return forward(node);
    }
    least_loaded(local.node_id, &live)
}

/// The node with the lowest share of its capacity in use, among those not
/// full; the receiving node wins a tie, so an idle cluster does not forward.
fn least_loaded(local: &str, live: &[&NodeSnapshot]) -> Route {
    let mut best: Option<&NodeSnapshot> = None;
    for node in live.iter().copied().filter(|n| n.in_flight < n.capacity) {
        best = match best {
            None => Some(node),
            Some(b) => match load_cmp(node, b) {
                std::cmp::Ordering::Less => Some(node),
                std::cmp::Ordering::Equal if node.node_id == local => Some(node),
                _ => Some(b),
            },
        };
    }
    match best {
        Some(node) if node.node_id != local => forward(node),
        _ => Route::Local,
    }
}

/// Compares `in_flight / capacity` without division: `a.i * b.c` against
/// `b.i * a.c`.
fn load_cmp(a: &NodeSnapshot, b: &NodeSnapshot) -> std::cmp::Ordering {
    (u64::from(a.in_flight) * u64::from(b.capacity)).cmp(&(u64::from(b.in_flight) * u64::from(a.capacity)))
}

fn forward(node: &NodeSnapshot) -> Route {
    Route::Forward {
        node: node.node_id.clone(),
        cluster_addr: node.cluster_addr.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const DEAD: Duration = Duration::from_secs(3);

    fn node(id: &str, in_flight: u32, capacity: u32, warm: &[(&str, u32)]) -> NodeSnapshot {
        NodeSnapshot {
            node_id: id.to_owned(),
            api_addr: format!("{id}:9080"),
            cluster_addr: format!("{id}:9090"),
            capacity,
            in_flight,
            idle: warm
                .iter()
                .map(|(k, n)| ((*k).to_owned(), *n))
                .collect::<BTreeMap<_, _>>(),
            heartbeat_age: Duration::from_millis(500),
        }
    }

    fn here(idle: u32) -> Local<'static> {
        Local {
            node_id: "a",
            idle,
            forwarded: false,
        }
    }

    fn to(id: &str) -> Route {
        Route::Forward {
            node: id.to_owned(),
            cluster_addr: format!("{id}:9090"),
        }
    }

    #[test]
    fn an_idle_sandbox_here_wins_over_any_other_node() {
        let nodes = [node("a", 9, 10, &[]), node("b", 0, 10, &[("f:1", 3)])];
        assert_eq!(choose(here(1), &nodes, "f:1", DEAD), Route::Local);
    }

    #[test]
    fn warm_affinity_beats_a_less_loaded_node() {
        let nodes = [
            node("a", 0, 10, &[]),
            node("b", 9, 10, &[("f:1", 1)]),
            node("c", 0, 10, &[]),
        ];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), to("b"));
    }

    #[test]
    fn the_node_with_the_most_idle_sandboxes_of_the_version_is_chosen() {
        let nodes = [
            node("a", 0, 10, &[]),
            node("b", 0, 10, &[("f:1", 1)]),
            node("c", 0, 10, &[("f:1", 2), ("g:1", 9)]),
        ];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), to("c"));
    }

    #[test]
    fn idle_sandboxes_of_another_version_do_not_count() {
        let nodes = [
            node("a", 1, 10, &[]),
            node("b", 5, 10, &[("f:2", 4)]),
            node("c", 0, 10, &[]),
        ];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), to("c"));
    }

    #[test]
    fn least_loaded_is_by_share_of_capacity_not_count() {
        // b runs 3 of 4 (75 %), c runs 4 of 100 (4 %), a 1 of 10 (10 %).
        let nodes = [node("a", 1, 10, &[]), node("b", 3, 4, &[]), node("c", 4, 100, &[])];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), to("c"));
    }

    #[test]
    fn a_tie_stays_on_the_receiving_node() {
        let nodes = [node("b", 2, 10, &[]), node("a", 2, 10, &[]), node("c", 2, 10, &[])];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), Route::Local);
    }

    #[test]
    fn full_nodes_are_skipped_and_a_full_cluster_runs_here() {
        let nodes = [node("a", 10, 10, &[]), node("b", 4, 4, &[]), node("c", 3, 4, &[])];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), to("c"));
        let full = [node("a", 10, 10, &[]), node("b", 4, 4, &[])];
        assert_eq!(choose(here(0), &full, "f:1", DEAD), Route::Local);
    }

    #[test]
    fn a_node_past_its_heartbeat_is_not_a_candidate_even_warm() {
        let mut dead = node("b", 0, 10, &[("f:1", 5)]);
        dead.heartbeat_age = DEAD;
        let nodes = [node("a", 5, 10, &[]), dead, node("c", 1, 10, &[])];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), to("c"));
    }

    #[test]
    fn a_forwarded_call_is_never_forwarded_again() {
        let nodes = [node("a", 9, 10, &[]), node("b", 0, 10, &[("f:1", 3)])];
        let local = Local {
            forwarded: true,
            ..here(0)
        };
        assert_eq!(choose(local, &nodes, "f:1", DEAD), Route::Local);
    }

    #[test]
    fn a_receiving_node_missing_from_the_snapshot_still_routes() {
        // A node that has not yet written its first heartbeat.
        let nodes = [node("b", 1, 10, &[])];
        assert_eq!(choose(here(0), &nodes, "f:1", DEAD), to("b"));
        assert_eq!(choose(here(0), &[], "f:1", DEAD), Route::Local);
    }
}
