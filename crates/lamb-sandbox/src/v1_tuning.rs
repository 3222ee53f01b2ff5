//! `favordynmods` for cgroup v1: without it, moving a process into a v1 cgroup
//! after the machine was idle waits for an RCU grace period (about 5 ms here),
//! which turns a 2 ms cold start into 8 ms for sporadic traffic.
//!
//! The option switches the kernel's global cgroup thread-group lock to its
//! writer-friendly mode. It changes the whole machine and cannot be turned
//! off again without a reboot, so it is opt-in (`lamb serve --cgroup-favordynmods`).

use std::fs;
use std::path::Path;

use crate::cgroup::CgroupV1;
use crate::error::{Result, SandboxError};

/// Whether any cgroup v1 hierarchy is already mounted with `favordynmods`.
pub fn favordynmods_enabled() -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .map(|m| {
            m.lines().any(|l| {
                l.contains(" - cgroup ")
                    && l.split_whitespace()
                        .last()
                        .is_some_and(|o| o.split(',').any(|o| o == "favordynmods"))
            })
        })
        .unwrap_or(false)
}

/// Remounts one of lamb's v1 hierarchies with `favordynmods` (one is enough:
/// the lock it relaxes is global).
pub fn enable_favordynmods(v1: &CgroupV1) -> Result<()> {
    if favordynmods_enabled() {
        return Ok(());
    }
    let mount_point = v1
        .hierarchy_mounts()
        .into_iter()
        .next()
        .ok_or_else(|| SandboxError::NoCgroups("no v1 hierarchy to remount".into()))?;
    remount(&mount_point)
}

fn remount(mount_point: &Path) -> Result<()> {
    // A v1 remount must repeat the hierarchy's controllers, or the kernel refuses it.
    let controllers = controllers_of(mount_point)?;
    let data = format!("{controllers},favordynmods");
    nix::mount::mount(
        None::<&str>,
        mount_point,
        None::<&str>,
        nix::mount::MsFlags::MS_REMOUNT,
        Some(data.as_str()),
    )
    .map_err(|e| SandboxError::Cgroup {
        op: "remount with favordynmods",
        path: mount_point.to_path_buf(),
        source: e.into(),
    })
}

/// The controller list in the super options of the v1 mount at `mount_point`.
fn controllers_of(mount_point: &Path) -> Result<String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").map_err(|e| SandboxError::NoCgroups(e.to_string()))?;
    mountinfo
        .lines()
        .find_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            if Path::new(left.split_whitespace().nth(4)?) != mount_point {
                return None;
            }
            let options = right.split_whitespace().nth(2)?;
            let names: Vec<&str> = options.split(',').filter(|o| *o != "rw" && *o != "ro").collect();
            Some(names.join(","))
        })
        .ok_or_else(|| SandboxError::NoCgroups(format!("{} is not a mounted hierarchy", mount_point.display())))
}
