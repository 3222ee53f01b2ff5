//! The one place that turns a stored provisioned concurrency configuration
//! into what the engine keeps: [`sync`] reads the configuration of a
//! function and qualifier, resolves the qualifier to its version (an
//! alias's routing splits the count between its two versions by weight) and
//! hands the targets to the invoker, or releases them when there is no
//! configuration any more. The API calls it after every change that moves
//! one (put, delete, an alias updated or deleted); [`restore`] calls it for
//! every configuration when the daemon starts. In a cluster a node keeps
//! only its share of each configuration, which [`follow`] applies at each
//! beat (`crate::cluster::provisioned`).

use crate::error::ApiError;
use crate::invocation::{prepare, Call, Target};
use crate::invoker::ProvisionTarget;
use crate::state::{AppState, Shared};
use lamb_types::{Qualifier, Version};
use std::collections::BTreeMap;

/// `n` split over an alias's versions: the additional version gets its
/// weight's share (rounded), the primary the rest.
pub fn split(n: u32, primary: u64, weights: &std::collections::BTreeMap<u64, f64>) -> Vec<(u64, u32)> {
    let mut left = n;
    let mut out = Vec::new();
    for (version, weight) in weights {
        let share = ((f64::from(n) * weight).round() as u32).min(left);
        left -= share;
        out.push((*version, share));
    }
    out.insert(0, (primary, left));
    out.retain(|(_, share)| *share > 0);
    out
}

/// The published versions behind `qualifier`, each with its share of `n`.
fn versions(s: &Shared, function: &str, qualifier: &str, n: u32) -> Result<Vec<(u64, u32)>, ApiError> {
    match Qualifier::parse(qualifier)? {
        Qualifier::Version(Version::Published(v)) => Ok(vec![(v, n)]),
        Qualifier::Version(Version::Latest) => Ok(Vec::new()),
        Qualifier::Alias(alias) => {
            let a = s.registry.get_alias(function, &alias)?;
            match a.function_version {
                Version::Published(primary) => Ok(split(n, primary, &a.weights)),
                Version::Latest => Ok(Vec::new()),
            }
        }
    }
}

/// Makes the engine keep what the registry says for `function` and
/// `qualifier`: the count asked on one box, this node's share in a cluster
/// (`crate::cluster::provisioned`). Runs on the blocking pool (it reads the
/// registry).
pub fn sync(s: &Shared, function: &str, qualifier: &str) -> Result<(), ApiError> {
    let Some(rec) = s.registry.get_provisioned_concurrency(function, qualifier)? else {
        s.invoker.provision(function, qualifier, Vec::new());
        return Ok(());
    };
    let n = match &s.cluster {
        Some(cluster) => cluster.provisioned.share(function, qualifier),
        None => rec.requested,
    };
    apply(s, function, qualifier, &versions(s, function, qualifier, n)?)
}

/// Hands the engine `versions`, each with its count, for the configuration.
fn apply(s: &Shared, function: &str, qualifier: &str, versions: &[(u64, u32)]) -> Result<(), ApiError> {
    let mut targets = Vec::new();
    for &(version, want) in versions {
        let q = Qualifier::Version(Version::Published(version));
        let target = Target::new(&s.ctx, function.to_owned(), q);
        let request = prepare(s, &target, Call::new(String::new(), Vec::new()))?;
        targets.push(ProvisionTarget { want, request });
    }
    s.invoker.provision(function, qualifier, targets);
    Ok(())
}

/// What a cluster node last handed its engine per configuration (function,
/// qualifier): the versions and their counts.
pub type Applied = BTreeMap<(String, String), Vec<(u64, u32)>>;

/// A cluster node's engine made to keep `shares` (this node's count per
/// configuration, as the cluster split them): a configuration whose share
/// or versions (an alias moved, through any node) changed since `applied`
/// is handed over again, one no longer shared here is released. Runs on
/// the blocking pool; a configuration that cannot be resolved now is
/// tried again at the next beat.
pub fn follow(s: &Shared, shares: &BTreeMap<(String, String), u32>, applied: &mut Applied) {
    applied.retain(|(function, qualifier), _| {
        let kept = shares.contains_key(&(function.clone(), qualifier.clone()));
        if !kept {
            s.invoker.provision(function, qualifier, Vec::new());
        }
        kept
    });
    for ((function, qualifier), &n) in shares {
        let result = versions(s, function, qualifier, n).and_then(|vs| {
            if applied.get(&(function.clone(), qualifier.clone())) != Some(&vs) {
                apply(s, function, qualifier, &vs)?;
                applied.insert((function.clone(), qualifier.clone()), vs);
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(%function, %qualifier, error = ?e, "cannot keep this node's provisioned concurrency");
        }
    }
}

/// Starts the sandboxes of every stored configuration: what a restarted
/// daemon does before it serves.
pub async fn restore(state: &AppState) {
    let result = state
        .blocking(|s| {
            let all = s.registry.list_provisioned_concurrency(None)?;
            for rec in &all {
                if let Err(e) = sync(s, &rec.function, &rec.qualifier) {
                    tracing::warn!(function = %rec.function, qualifier = %rec.qualifier, error = ?e,
                        "cannot restore a provisioned concurrency configuration");
                }
            }
            Ok(all.len())
        })
        .await;
    match result {
        Ok(0) => {}
        Ok(n) => tracing::info!(configurations = n, "provisioned concurrency restored"),
        Err(e) => tracing::warn!(error = ?e, "cannot read the provisioned concurrency configurations"),
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn an_alias_s_count_is_split_by_weight() {
        let none = Default::default();
        assert_eq!(split(3, 1, &none), [(1, 3)]);
        let weights = [(2, 0.25)].into_iter().collect();
        assert_eq!(split(4, 1, &weights), [(1, 3), (2, 1)]);
        assert_eq!(split(1, 1, &weights), [(1, 1)]);
    }
}
