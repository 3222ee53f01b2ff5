//! lamb's cluster mode (docs/cluster.md): several `lamb serve` nodes on one
//! PostgreSQL. This crate owns what is the cluster's own: the node table and
//! its heartbeat (`membership`), where an invocation runs (`routing`, pure),
//! the exact cluster-wide concurrency (`concurrency`), the leases that keep
//! schedules and mappings on one node (`lease`), the split of provisioned
//! concurrency among the nodes (`provisioned`), and the signature of
//! node-to-node requests (`auth`). The registry itself is lamb-store's.

pub mod auth;
pub mod concurrency;
pub mod db;
pub mod lease;
pub mod membership;
pub mod provisioned;
pub mod routing;
pub mod schema;

pub use db::{Db, DbError};
pub use membership::{NodeReport, NodeSnapshot};

/// An error and its sources on one line, for logs.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
