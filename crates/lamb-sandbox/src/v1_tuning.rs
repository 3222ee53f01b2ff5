//! `favordynmods` for cgroup v1: without it, moving a process into a v1 cgroup
//! after the machine was idle waits for an RCU grace period (about 5 ms here),
//! which turns a 2 ms cold start into 8 ms for sporadic traffic.
//!
//! The option switches the kernel's global cgroup thread-group lock to its
//! writer-friendly mode. A v1 hierarchy takes it only when first mounted (a
//! remount may not change flags), so lamb mounts one small named hierarchy
//! without controllers, with the option, and leaves it mounted: the lock is
//! global, so every hierarchy benefits. It changes the whole machine until
//! that mount goes away, so it is opt-in (`lamb serve --cgroup-favordynmods`).

use std::fs;
use std::path::Path;

use crate::error::{Result, SandboxError};

/// Where [`enable_favordynmods`] mounts its hierarchy by default.
pub const DEFAULT_MOUNT_POINT: &str = "/run/lamb/cgroup-favordynmods";

/// Whether any cgroup v1 hierarchy is mounted with `favordynmods`.
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

/// Mounts a controller-less v1 hierarchy named `lamb_favordynmods` with the
/// option at `mount_point`, unless some hierarchy already has it.
pub fn enable_favordynmods(mount_point: &Path) -> Result<()> {
    if favordynmods_enabled() {
        return Ok(());
    }
    let err = |source: std::io::Error| SandboxError::Cgroup {
        op: "mount with favordynmods",
        path: mount_point.to_path_buf(),
        source,
    };
    fs::create_dir_all(mount_point).map_err(err)?;
    nix::mount::mount(
        Some("cgroup"),
        mount_point,
        Some("cgroup"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV | nix::mount::MsFlags::MS_NOEXEC,
        Some("none,name=lamb_favordynmods,favordynmods"),
    )
    .map_err(|e| err(e.into()))
}
