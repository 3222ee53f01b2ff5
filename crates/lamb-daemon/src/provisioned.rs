//! The one place that turns a stored provisioned concurrency configuration
//! into what the engine keeps: [`sync`] reads the configuration of a
//! function and qualifier, resolves the qualifier to its version (an
//! alias's routing splits the count between its two versions by weight) and
//! hands the targets to the invoker, or releases them when there is no
//! configuration any more. The API calls it after every change that moves
//! one (put, delete, an alias updated or deleted); [`restore`] calls it for
//! every configuration when the daemon starts.

use crate::error::ApiError;
use crate::invocation::{prepare, Call, Target};
use crate::invoker::ProvisionTarget;
use crate::state::{AppState, Shared};
use lamb_types::{Qualifier, Version};

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
/// `qualifier`. Runs on the blocking pool (it reads the registry).
pub fn sync(s: &Shared, function: &str, qualifier: &str) -> Result<(), ApiError> {
    let Some(rec) = s.registry.get_provisioned_concurrency(function, qualifier)? else {
        s.invoker.provision(function, qualifier, Vec::new());
        return Ok(());
    };
    let mut targets = Vec::new();
    for (version, want) in versions(s, function, qualifier, rec.requested)? {
        let q = Qualifier::Version(Version::Published(version));
        let target = Target::new(&s.ctx, function.to_owned(), q);
        let request = prepare(s, &target, Call::new(String::new(), Vec::new()))?;
        targets.push(ProvisionTarget { want, request });
    }
    s.invoker.provision(function, qualifier, targets);
    Ok(())
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
