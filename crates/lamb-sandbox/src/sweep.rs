//! The start-up sweep: what a killed process left behind is found by its
//! lamb-specific names and removed.

use std::fs;
use std::path::Path;

use crate::cgroup::CgroupBackend;
use crate::error::{Result, SandboxError};
use crate::SANDBOX_PREFIX;
use lamb_protocol::errors::Chain;

/// What a sweep found and removed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SweepReport {
    pub processes_killed: usize,
    pub cgroups_removed: usize,
    pub mounts_detached: usize,
    pub paths_removed: usize,
    /// Sandbox cgroups that could not be cleaned, with why; the sweep goes on past them.
    pub failed: Vec<String>,
}

/// `keep`: the shared mount point and the empty directory, which live as long as the sandboxer.
pub(crate) fn sweep(cgroups: &dyn CgroupBackend, state_dir: &Path, keep: &[&Path]) -> Result<SweepReport> {
    let mut report = SweepReport::default();
    for name in cgroups.list()? {
        report.processes_killed += cgroups.procs(&name).map(|p| p.len()).unwrap_or(0);
        // As for any kill (`handle::Handle::kill`): the dying get the CPU to die.
        let _ = cgroups.lift_limits(&name);
        match cgroups.kill_all(&name).and_then(|()| cgroups.remove(&name)) {
            Ok(()) => report.cgroups_removed += 1,
            Err(err) => {
                tracing::warn!(cgroup = %name, error = %Chain(&err), "the sweep could not remove a sandbox cgroup");
                report.failed.push(format!("{name}: {}", Chain(&err)));
            }
        }
    }
    report.mounts_detached = detach_mounts_under(state_dir)?;
    report.paths_removed = remove_stale_paths(state_dir, keep)?;
    Ok(report)
}

/// Detaches every mount at or below `dir` in this mount namespace, deepest first.
/// The built-in back end mounts only inside sandboxes; an OCI back end's
/// pre-mounted roots, or a crash mid-mount, are what this catches.
fn detach_mounts_under(dir: &Path) -> Result<usize> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|source| SandboxError::Cleanup {
        path: "/proc/self/mountinfo".into(),
        source,
    })?;
    let mut targets: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .filter(|target| Path::new(target).starts_with(dir))
        .collect();
    targets.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for target in &targets {
        nix::mount::umount2(*target, nix::mount::MntFlags::MNT_DETACH).map_err(|e| SandboxError::Cleanup {
            path: target.into(),
            source: e.into(),
        })?;
    }
    Ok(targets.len())
}

/// Removes lamb's entries in the state directory, except those in `keep`.
fn remove_stale_paths(state_dir: &Path, keep: &[&Path]) -> Result<usize> {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(SANDBOX_PREFIX);
        if !ours || keep.contains(&path.as_path()) {
            continue;
        }
        fs::remove_dir_all(&path).map_err(|source| SandboxError::Cleanup {
            path: path.clone(),
            source,
        })?;
        removed += 1;
    }
    Ok(removed)
}
