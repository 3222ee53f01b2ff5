//! Provisioned concurrency across the cluster (docs/cluster.md,
//! "Provisioned concurrency"): a configuration's N sandboxes are split
//! among the live nodes, so the cluster holds N in all, as Lambda's fleet
//! does. `lamb_cluster_provisioned` holds the split, one row per
//! configuration and node: the count the node is to keep, and what it
//! reports having initialised (`allocated`) or why its init failed.
//!
//! One node at a time (the holder of the `provisioned` lease) computes the
//! split ([`allocate`], pure) and writes it ([`rebalance`]); every node
//! reads its own counts and the cluster's sums at each beat ([`follow`]).

use crate::db::DbError;
use crate::membership;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio_postgres::Client;

/// A configuration: its function and qualifier.
pub type Key = (String, String);

/// Each configuration's split: node id to the count it keeps (never 0).
pub type Split = BTreeMap<Key, BTreeMap<String, u32>>;

/// A stored configuration: the function, its qualifier, the count asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub function: String,
    pub qualifier: String,
    pub requested: u32,
}

/// A live node and how many sandboxes it may hold (`--cluster-capacity`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub node_id: String,
    pub capacity: u32,
}

/// What a node says of one of its configurations at each beat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub function: String,
    pub qualifier: String,
    /// Its sandboxes initialised, idle or busy.
    pub allocated: u32,
    /// Why its init failed, when it did.
    pub failure: Option<String>,
}

/// A configuration across the live nodes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Total {
    pub allocated: u32,
    /// Some node's init failure.
    pub failure: Option<String>,
}

/// The split of every configuration among `nodes` (the live ones), moving
/// as little as it can from `current`: what a live node holds stays with
/// it (up to the count asked and its capacity), a dead node's share and
/// any increase go one at a time to the node with room that holds the
/// fewest of that configuration (then the least in all, then the lowest
/// id). When the nodes lack the room, a configuration gets less than it
/// asked (it stays `IN_PROGRESS`).
pub fn allocate(configs: &[Config], nodes: &[Node], current: &Split) -> Split {
    let capacity: BTreeMap<&str, u32> = nodes.iter().map(|n| (n.node_id.as_str(), n.capacity)).collect();
    let mut load: BTreeMap<&str, u32> = nodes.iter().map(|n| (n.node_id.as_str(), 0)).collect();
    let mut out = Split::new();
    // What live nodes hold already, first, so a new configuration never
    // takes the room of one placed before.
    for c in configs {
        let key = (c.function.clone(), c.qualifier.clone());
        let mut left = c.requested;
        let mut shares = BTreeMap::new();
        for (node, &held) in current.get(&key).into_iter().flatten() {
            let Some(used) = load.get_mut(node.as_str()) else {
                continue; // dead
            };
            let keep = held.min(left).min(capacity[node.as_str()].saturating_sub(*used));
            if keep > 0 {
                shares.insert(node.clone(), keep);
                *used += keep;
                left -= keep;
            }
        }
        out.insert(key, shares);
    }
    for c in configs {
        let shares = out.entry((c.function.clone(), c.qualifier.clone())).or_default();
        let mut left = c.requested.saturating_sub(shares.values().sum());
        while left > 0 {
            let Some(node) = nodes
                .iter()
                .filter(|n| load[n.node_id.as_str()] < n.capacity)
                .min_by_key(|n| {
                    let id = n.node_id.as_str();
                    (shares.get(id).copied().unwrap_or(0), load[id], id)
                })
            else {
                break;
            };
            *shares.entry(node.node_id.clone()).or_default() += 1;
            *load.get_mut(node.node_id.as_str()).expect("every node has a load") += 1;
            left -= 1;
        }
    }
    out.retain(|_, shares| !shares.is_empty());
    out
}

/// The split as stored.
pub async fn current(client: &Client) -> Result<Split, DbError> {
    let rows = client
        .query(
            "SELECT function, qualifier, node_id, count FROM lamb_cluster_provisioned",
            &[],
        )
        .await
        .map_err(DbError::query("reading the provisioned concurrency split"))?;
    let mut split = Split::new();
    for row in rows {
        let count = u32::try_from(row.get::<_, i32>(3)).unwrap_or(0);
        if count > 0 {
            split
                .entry((row.get(0), row.get(1)))
                .or_default()
                .insert(row.get(2), count);
        }
    }
    Ok(split)
}

/// Computes the split of `configs` among the live nodes and stores what
/// changed (the rows of dead or departed nodes go); whether anything did.
/// Run by one node at a time (the lease's holder); in a takeover's overlap
/// two may write, and the next round, from what is stored, settles it.
pub async fn rebalance(client: &Client, configs: &[Config], dead_after: Duration) -> Result<bool, DbError> {
    let nodes: Vec<Node> = membership::nodes(client)
        .await?
        .into_iter()
        .filter(|n| n.alive(dead_after))
        .map(|n| Node {
            node_id: n.node_id,
            capacity: n.capacity,
        })
        .collect();
    let old = current(client).await?;
    let new = allocate(configs, &nodes, &old);
    let mut changed = false;
    for ((function, qualifier), shares) in &old {
        for node in shares.keys() {
            let kept = new
                .get(&(function.clone(), qualifier.clone()))
                .and_then(|s| s.get(node));
            if kept.is_none() {
                client
                    .execute(
                        "DELETE FROM lamb_cluster_provisioned WHERE function = $1 AND qualifier = $2 AND node_id = $3",
                        &[function, qualifier, node],
                    )
                    .await
                    .map_err(DbError::query("moving provisioned concurrency"))?;
                changed = true;
            }
        }
    }
    for ((function, qualifier), shares) in &new {
        for (node, &count) in shares {
            let was = old
                .get(&(function.clone(), qualifier.clone()))
                .and_then(|s| s.get(node));
            if was != Some(&count) {
                client
                    .execute(
                        "INSERT INTO lamb_cluster_provisioned AS p (function, qualifier, node_id, count) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (function, qualifier, node_id) \
                         DO UPDATE SET count = $4",
                        &[function, qualifier, node, &i32::try_from(count).unwrap_or(i32::MAX)],
                    )
                    .await
                    .map_err(DbError::query("moving provisioned concurrency"))?;
                changed = true;
            }
        }
    }
    Ok(changed)
}

/// One node's beat: stores what it reports of its configurations, and
/// answers the counts it is to keep and every configuration's total over
/// the live nodes.
pub async fn follow(
    client: &Client,
    node_id: &str,
    reports: &[Report],
    dead_after: Duration,
) -> Result<(BTreeMap<Key, u32>, BTreeMap<Key, Total>), DbError> {
    let functions: Vec<&str> = reports.iter().map(|r| r.function.as_str()).collect();
    let qualifiers: Vec<&str> = reports.iter().map(|r| r.qualifier.as_str()).collect();
    let allocated: Vec<i32> = reports
        .iter()
        .map(|r| i32::try_from(r.allocated).unwrap_or(i32::MAX))
        .collect();
    let failures: Vec<Option<&str>> = reports.iter().map(|r| r.failure.as_deref()).collect();
    client
        .execute(
            "UPDATE lamb_cluster_provisioned p SET allocated = r.allocated, failure = r.failure \
             FROM unnest($2::text[], $3::text[], $4::int4[], $5::text[]) AS r(function, qualifier, allocated, failure) \
             WHERE p.node_id = $1 AND p.function = r.function AND p.qualifier = r.qualifier",
            &[&node_id, &functions, &qualifiers, &allocated, &failures],
        )
        .await
        .map_err(DbError::query("reporting provisioned concurrency"))?;
    let mine = client
        .query(
            "SELECT function, qualifier, count FROM lamb_cluster_provisioned WHERE node_id = $1",
            &[&node_id],
        )
        .await
        .map_err(DbError::query("reading this node's provisioned concurrency"))?
        .into_iter()
        .map(|row| {
            (
                (row.get(0), row.get(1)),
                u32::try_from(row.get::<_, i32>(2)).unwrap_or(0),
            )
        })
        .collect();
    let totals = client
        .query(
            "SELECT p.function, p.qualifier, sum(p.allocated)::int8, max(p.failure) \
             FROM lamb_cluster_provisioned p JOIN lamb_cluster_nodes n USING (node_id) \
             WHERE n.heartbeat_at > now() - make_interval(secs => $1) GROUP BY p.function, p.qualifier",
            &[&dead_after.as_secs_f64()],
        )
        .await
        .map_err(DbError::query("reading the cluster's provisioned concurrency"))?
        .into_iter()
        .map(|row| {
            let total = Total {
                allocated: u32::try_from(row.get::<_, i64>(2)).unwrap_or(u32::MAX),
                failure: row.get(3),
            };
            ((row.get(0), row.get(1)), total)
        })
        .collect();
    Ok((mine, totals))
}

/// Every row, for `lamb cluster status`: configuration, node, count to
/// keep, sandboxes initialised.
pub async fn rows(client: &Client) -> Result<Vec<(Key, String, u32, u32)>, DbError> {
    let rows = client
        .query(
            "SELECT function, qualifier, node_id, count, allocated FROM lamb_cluster_provisioned \
             ORDER BY function, qualifier, node_id",
            &[],
        )
        .await
        .map_err(DbError::query("reading the provisioned concurrency split"))?;
    Ok(rows
        .iter()
        .map(|row| {
            let n = |i| u32::try_from(row.get::<_, i32>(i)).unwrap_or(0);
            ((row.get(0), row.get(1)), row.get(2), n(3), n(4))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(q: &str, requested: u32) -> Config {
        Config {
            function: "f".into(),
            qualifier: q.into(),
            requested,
        }
    }

    fn nodes(caps: &[(&str, u32)]) -> Vec<Node> {
        caps.iter()
            .map(|(id, capacity)| Node {
                node_id: (*id).into(),
                capacity: *capacity,
            })
            .collect()
    }

    fn of(split: &Split, q: &str) -> Vec<(String, u32)> {
        split
            .get(&("f".to_owned(), q.to_owned()))
            .map(|s| s.iter().map(|(n, c)| (n.clone(), *c)).collect())
            .unwrap_or_default()
    }

    fn pairs(p: &[(&str, u32)]) -> Vec<(String, u32)> {
        p.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect()
    }

    #[test]
    fn a_configuration_is_spread_over_the_live_nodes_and_sums_to_its_count() {
        let three = nodes(&[("a", 10), ("b", 10), ("c", 10)]);
        let split = allocate(&[config("1", 3)], &three, &Split::new());
        assert_eq!(of(&split, "1"), pairs(&[("a", 1), ("b", 1), ("c", 1)]));
        let split = allocate(&[config("1", 5)], &three, &Split::new());
        assert_eq!(of(&split, "1").iter().map(|(_, c)| c).sum::<u32>(), 5);
    }

    #[test]
    fn what_live_nodes_hold_stays_and_a_dead_node_s_share_moves() {
        let three = nodes(&[("a", 10), ("b", 10), ("c", 10)]);
        let before = allocate(&[config("1", 3)], &three, &Split::new());
        // Unchanged inputs, unchanged split.
        assert_eq!(allocate(&[config("1", 3)], &three, &before), before);
        // b dies: a and c keep theirs, b's one goes to one of them.
        let two = nodes(&[("a", 10), ("c", 10)]);
        let after = allocate(&[config("1", 3)], &two, &before);
        assert_eq!(of(&after, "1"), pairs(&[("a", 2), ("c", 1)]));
    }

    #[test]
    fn capacity_is_respected_and_a_full_cluster_gives_less() {
        let split = allocate(&[config("1", 4)], &nodes(&[("a", 3), ("b", 0)]), &Split::new());
        assert_eq!(of(&split, "1"), pairs(&[("a", 3)]));
        // Room taken by one configuration first is kept from a newer one.
        let cfgs = [config("1", 2), config("2", 2)];
        let held: Split = [(("f".to_owned(), "2".to_owned()), [("a".to_owned(), 2)].into())].into();
        let split = allocate(&cfgs, &nodes(&[("a", 3)]), &held);
        assert_eq!(of(&split, "2"), pairs(&[("a", 2)]));
        assert_eq!(of(&split, "1"), pairs(&[("a", 1)]));
    }

    #[test]
    fn a_lowered_or_deleted_configuration_shrinks_or_goes() {
        let three = nodes(&[("a", 10), ("b", 10), ("c", 10)]);
        let before = allocate(&[config("1", 3)], &three, &Split::new());
        let lowered = allocate(&[config("1", 1)], &three, &before);
        assert_eq!(of(&lowered, "1"), pairs(&[("a", 1)]));
        assert!(allocate(&[], &three, &before).is_empty());
        assert!(allocate(&[config("1", 3)], &[], &before).is_empty());
    }
}
