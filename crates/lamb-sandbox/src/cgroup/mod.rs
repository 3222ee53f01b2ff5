//! cgroups, v1 and v2 behind one trait.
//!
//! The version is detected once, at start, from the file system type of the
//! cgroup mount (`statfs`): cgroup2 there means a pure v2 machine; anything
//! else (tmpfs with one mount per controller) is v1, the hybrid layout
//! included, whose v2 hierarchy has no controllers. Every sandbox gets one
//! cgroup named after it under a lamb-owned parent, so a sweep finds what a
//! dead process left behind.
//!
//! A sandbox whose PID 1 is a supervisor (`lamb init`: [`Layout::Split`])
//! gets two groups below its own for the CPU controller: [`INIT_GROUP`],
//! PID 1's, bounded at one core, and [`FUNCTION_GROUP`], the processes
//! PID 1 starts, which carries the function's CPU quota. The sandbox's own
//! cgroup keeps everything else (memory, pids, freezer, the kill) and the CPU
//! weight, which only compares siblings and so must sit where sandboxes
//! compete. On v2 the sandbox's cgroup then holds no process (no internal
//! processes): two leaves.

mod files;
mod v1;
mod v2;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use files::FreezeTimeout;
pub use v1::CgroupV1;
pub use v2::CgroupV2;

use crate::error::{Result, SandboxError};
use crate::spec::{CpuLimit, Limits};

/// `CGROUP2_SUPER_MAGIC` from `linux/magic.h`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// How long freeze, thaw and removal wait for the kernel before giving up.
pub(crate) const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// The CPU group of a split sandbox's PID 1 (`lamb init`).
pub const INIT_GROUP: &str = "init";
/// The CPU group of the processes a split sandbox's PID 1 starts.
pub const FUNCTION_GROUP: &str = "function";

/// Both, in the order they are removed.
pub(crate) const GROUPS: [&str; 2] = [INIT_GROUP, FUNCTION_GROUP];

/// How a sandbox's processes are grouped for the CPU controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Every process in the sandbox's cgroup, the quota on it.
    Single,
    /// PID 1 in [`INIT_GROUP`] (one core at most, [`CpuLimit::supervisor`]),
    /// the processes it starts in [`FUNCTION_GROUP`], with the quota.
    Split,
}

/// Which cgroup hierarchy the machine runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// How a new process enters its cgroup.
#[derive(Debug)]
pub enum JoinTarget {
    /// Write `0` to each of these `cgroup.procs` files from inside the process (v1).
    ProcsFiles(Vec<PathBuf>),
    /// Pass this directory to `clone3` with `CLONE_INTO_CGROUP` (v2): no move, no RCU wait.
    CloneInto(std::os::fd::OwnedFd),
}

/// What a sandbox's cgroup reports about its processes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CgroupStats {
    /// Highest memory use since the cgroup was created, in bytes.
    pub memory_peak_bytes: u64,
    /// Memory in use now, in bytes.
    pub memory_current_bytes: u64,
    /// CPU time used by all processes, user and system, in nanoseconds.
    pub cpu_usage_ns: u64,
    /// How many times the kernel's OOM killer killed a process here.
    pub oom_kills: u64,
    /// Processes and threads alive now.
    pub pids_current: u64,
}

/// One cgroup hierarchy (v1 or v2) in which lamb keeps a parent cgroup and
/// one child cgroup per sandbox, addressed by the sandbox's name.
pub trait CgroupBackend: Send + Sync + std::fmt::Debug {
    fn version(&self) -> CgroupVersion;
    /// Creates the parent cgroup and enables the controllers lamb needs.
    fn prepare(&self) -> Result<()>;
    /// Creates the cgroup `name` with `limits` applied, and with
    /// [`Layout::Split`] its init and function groups.
    fn create(&self, name: &str, limits: &Limits, layout: Layout) -> Result<()>;
    /// How a new process joins `name` (its init group with [`Layout::Split`]).
    fn join_target(&self, name: &str, layout: Layout) -> Result<JoinTarget>;
    /// The function group's `cgroup.procs` of split sandbox `name`, opened
    /// for writing here: PID 1 gets it and each process it starts writes `0`
    /// to it before `execve`. The kernel checks a write against the
    /// credentials and cgroup namespace of the opener, so the unprivileged
    /// PID 1, which cannot open the file (no cgroup file system is mounted in
    /// the sandbox), can still move its children; and the descriptor reaches
    /// only the function group.
    fn function_procs(&self, name: &str) -> Result<std::os::fd::OwnedFd>;
    /// Stops every process in `name` and waits until the kernel says they are stopped.
    fn freeze(&self, name: &str) -> Result<()>;
    /// Lets the processes of `name` run again.
    fn thaw(&self, name: &str) -> Result<()>;
    fn stats(&self, name: &str) -> Result<CgroupStats>;
    /// The peak memory of `name` alone: one file read, where [`stats`]
    /// reads five (the REPORT line's `Max Memory Used` after every
    /// invocation needs only this).
    ///
    /// [`stats`]: Cgroups::stats
    fn memory_peak_bytes(&self, name: &str) -> Result<u64>;
    /// The PIDs (as the host sees them) of every process in `name`, its groups included.
    fn procs(&self, name: &str) -> Result<Vec<i32>>;
    /// Sends SIGKILL to every process in `name`, frozen ones included, and
    /// waits until the cgroup lists none (the sweep's kill: it has no PID 1 to kill first).
    fn kill_all(&self, name: &str) -> Result<()>;
    /// Lifts the CPU quota (and v2's `memory.high`) of `name`, so that the
    /// processes being killed get the CPU to die: a fork bomb at 128 MB,
    /// killed at 7% of a core with its memory cgroup full, took minutes to go.
    /// A cgroup already gone is not an error.
    fn lift_limits(&self, name: &str) -> Result<()>;
    /// Sets the CPU bandwidth (quota and period) and weight of `name`: a
    /// sandbox runs its init at a full core and its invocations at the
    /// memory-proportional share. The quota goes on the function group of a
    /// split sandbox, the weight on the sandbox's cgroup.
    fn set_cpu(&self, name: &str, cpu: &CpuLimit) -> Result<()>;
    /// Sets the memory limit of `name` (memory and swap together, no swap),
    /// higher or lower than before.
    fn set_memory(&self, name: &str, bytes: u64) -> Result<()>;
    /// Sends SIGKILL to every process in `name` and lets frozen ones act on
    /// it; does not wait for them to exit. Nothing can fork between the list
    /// and the kill only once the sandbox's PID namespace is dying, so the
    /// caller kills PID 1 first (see `handle::Handle::kill`).
    fn kill_now(&self, name: &str) -> Result<()>;
    /// Removes `name` (its groups first), waiting until its last process is gone.
    fn remove(&self, name: &str) -> Result<()>;
    /// One attempt at removing `name`: `false` while the kernel still counts
    /// exiting processes there (EBUSY), for a caller that retries from its own loop.
    fn try_remove(&self, name: &str) -> Result<bool>;
    /// The names of every sandbox cgroup under the parent, for the sweep.
    fn list(&self) -> Result<Vec<String>>;
    /// Removes the (empty) parent cgroup itself.
    fn remove_parent(&self) -> Result<()>;
}

/// The cgroup version of the machine, from the file system type at `root`.
pub fn detect_version(root: &Path) -> Result<CgroupVersion> {
    let stat = nix::sys::statfs::statfs(root)
        .map_err(|e| SandboxError::NoCgroups(format!("statfs {}: {e}", root.display())))?;
    if stat.filesystem_type().0 as i64 == CGROUP2_SUPER_MAGIC {
        Ok(CgroupVersion::V2)
    } else {
        Ok(CgroupVersion::V1)
    }
}

/// The backend for this machine, keeping sandboxes under `parent` (a cgroup name such as `lamb`).
pub fn detect(parent: &str) -> Result<Box<dyn CgroupBackend>> {
    let root = Path::new("/sys/fs/cgroup");
    match detect_version(root)? {
        CgroupVersion::V2 => Ok(Box::new(CgroupV2::new(root.join(parent)))),
        CgroupVersion::V1 => Ok(Box::new(CgroupV1::from_mountinfo(parent)?)),
    }
}
