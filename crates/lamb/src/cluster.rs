//! `lamb cluster status`: the nodes of a cluster, their load and warm
//! sandboxes, and who holds the schedules and mappings, read from the
//! PostgreSQL the nodes share (docs/cluster.md).

use anyhow::Context;
use lamb_cluster::membership::{self, NodeSnapshot, DEAD_AFTER};
use lamb_cluster::{lease, provisioned, Db};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Every node: address, alive or dead, invocations running of its
    /// capacity, idle sandboxes per function version, last heartbeat.
    Status {
        /// The cluster's PostgreSQL, as given to `lamb serve --cluster-database`.
        #[arg(long, env = "LAMB_CLUSTER_DATABASE", value_name = "URL")]
        database: String,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    let Command::Status { database } = cmd;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let text = runtime.block_on(status(&database))?;
    print!("{text}");
    Ok(())
}

async fn status(url: &str) -> anyhow::Result<String> {
    let db = Db::new(url);
    let client = db.client().await.context("connect to the cluster database")?;
    let nodes = membership::nodes(&client).await.context("read the nodes")?;
    let mut out = render(&nodes);
    for name in ["schedules", "mappings"] {
        let holder = lease::holder(&client, name)
            .await
            .context("read the leases")?
            .map_or_else(
                || "nobody".to_owned(),
                |(node, epoch)| format!("{node} (epoch {epoch})"),
            );
        out.push_str(&format!("{name} run on: {holder}\n"));
    }
    out.push_str(&render_provisioned(
        &provisioned::rows(&client)
            .await
            .context("read the provisioned concurrency split")?,
    ));
    Ok(out)
}

/// One line per node; a version's key (`function:version:revision`) is
/// shown as `function:version`.
fn render(nodes: &[NodeSnapshot]) -> String {
    let mut out = format!(
        "{:<22} {:<22} {:<6} {:>11} {:>9}  {}\n",
        "NODE", "API", "STATE", "IN FLIGHT", "HEARTBEAT", "WARM"
    );
    for n in nodes {
        let warm: Vec<String> = n
            .idle
            .iter()
            .map(|(key, count)| {
                let mut parts = key.split(':');
                let (function, version) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                format!("{function}:{version}={count}")
            })
            .collect();
        out.push_str(&format!(
            "{:<22} {:<22} {:<6} {:>11} {:>8.1}s  {}\n",
            n.node_id,
            n.api_addr,
            if n.alive(DEAD_AFTER) { "alive" } else { "dead" },
            format!("{}/{}", n.in_flight, n.capacity),
            n.heartbeat_age.as_secs_f64(),
            if warm.is_empty() {
                "-".to_owned()
            } else {
                warm.join(" ")
            },
        ));
    }
    out
}

/// One line per provisioned concurrency configuration: each node's
/// sandboxes initialised of the count it is to keep.
fn render_provisioned(rows: &[((String, String), String, u32, u32)]) -> String {
    let mut out = String::new();
    let mut last: Option<&(String, String)> = None;
    for (key, node, count, allocated) in rows {
        if last != Some(key) {
            if last.is_some() {
                out.push('\n');
            }
            out.push_str(&format!("provisioned {}:{}:", key.0, key.1));
            last = Some(key);
        }
        out.push_str(&format!(" {node}={allocated}/{count}"));
    }
    if last.is_some() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn provisioned_concurrency_shows_each_node_s_share() {
        let key = |q: &str| ("f".to_owned(), q.to_owned());
        let rows = [
            (key("1"), "a".to_owned(), 2, 1),
            (key("1"), "b".to_owned(), 1, 1),
            (key("live"), "a".to_owned(), 1, 0),
        ];
        assert_eq!(
            render_provisioned(&rows),
            "provisioned f:1: a=1/2 b=1/1\nprovisioned f:live: a=0/1\n"
        );
        assert_eq!(render_provisioned(&[]), "");
    }

    #[test]
    fn a_node_shows_its_load_state_and_warm_versions() {
        let node = NodeSnapshot {
            node_id: "10.0.0.1:9090".into(),
            api_addr: "10.0.0.1:9080".into(),
            cluster_addr: "10.0.0.1:9090".into(),
            capacity: 100,
            in_flight: 3,
            idle: [("hello:$LATEST:rev".to_owned(), 2)].into_iter().collect(),
            heartbeat_age: Duration::from_secs(10),
        };
        let text = render(&[node]);
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.contains("dead") && line.contains("3/100") && line.ends_with("hello:$LATEST=2"),
            "{line}"
        );
    }
}
