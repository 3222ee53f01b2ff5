//! One live sandbox as whoever holds it sees it: the in-process [`Sandbox`]
//! and the daemon's [`RemoteSandbox`] both wrap a [`Handle`] (its name, PID 1,
//! pidfd and cgroup), so freezing, thawing, stats and, above all, killing
//! are written once. Every kill and destroy path goes through
//! [`Handle::kill`]: the CPU quota lifted, PID 1 killed, every task killed,
//! and on cgroup v1 the thaw that lets frozen tasks act on it.
//!
//! [`Sandbox`]: crate::Sandbox
//! [`RemoteSandbox`]: crate::RemoteSandbox

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use crate::cgroup::{CgroupBackend, CgroupStats};
use crate::error::{Result, SandboxError};
use crate::spec::CpuLimit;

/// A sandbox's name (also its cgroup's), PID 1 and pidfd, and its cgroup
/// back end. [`Sandbox`] and [`RemoteSandbox`] dereference to it, so what
/// either holder can do to a live sandbox is written here once.
///
/// [`Sandbox`]: crate::Sandbox
/// [`RemoteSandbox`]: crate::RemoteSandbox
#[derive(Debug)]
pub struct Handle {
    pub(crate) id: String,
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) cgroups: Arc<dyn CgroupBackend>,
}

impl Handle {
    /// The sandbox's name, also its cgroup's name.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The PID of the sandbox's first process, as the host sees it.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// A pidfd of the first process: readable when it exits (for `poll` or an async reactor).
    pub fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Stops every process of the sandbox (cgroup freezer) until [`Handle::thaw`].
    pub fn freeze(&self) -> Result<()> {
        self.cgroups.freeze(&self.id)
    }

    pub fn thaw(&self) -> Result<()> {
        self.cgroups.thaw(&self.id)
    }

    /// Peak and current memory, CPU time, OOM kills and live processes.
    pub fn stats(&self) -> Result<CgroupStats> {
        self.cgroups.stats(&self.id)
    }

    /// Peak memory alone (cheaper than [`Handle::stats`]).
    pub fn memory_peak_bytes(&self) -> Result<u64> {
        self.cgroups.memory_peak_bytes(&self.id)
    }

    /// Sets the CPU quota, period and weight of the sandbox's cgroup: the
    /// daemon gives init a full core, then the invocations' share.
    pub fn set_cpu(&self, cpu: &CpuLimit) -> Result<()> {
        self.cgroups.set_cpu(&self.id, cpu)
    }

    /// Sets the memory limit of the sandbox's cgroup (swap none, as at its
    /// creation): a pre-initialised sandbox gets its function's.
    pub fn set_memory(&self, bytes: u64) -> Result<()> {
        self.cgroups.set_memory(&self.id, bytes)
    }

    /// Kills every process of the sandbox, frozen or not, and returns at once:
    /// the tasks die on their own time, and PID 1's pidfd turns readable when
    /// the last one has gone.
    pub fn kill(&self) -> Result<()> {
        // The CPU first: hundreds of killed tasks of a fork bomb, each
        // reclaiming memory on its way out, die at the quota's pace otherwise.
        if let Err(err) = self.cgroups.lift_limits(&self.id) {
            tracing::debug!(sandbox = %self.id, error = %err, "lifting the limits of a dying sandbox failed");
        }
        // PID 1 next: the kernel kills the whole PID namespace and refuses it
        // new processes, so nothing forks between the list and the kill below.
        kill_through_pidfd(self.pidfd.as_fd())?;
        self.cgroups.kill_now(&self.id)
    }
}

/// SIGKILL to the process behind `pidfd`; one that already exited is not an error.
/// Killing a sandbox's PID 1 kills its whole PID namespace.
pub(crate) fn kill_through_pidfd(pidfd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: pidfd_send_signal on a live pidfd, no info struct.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), libc::SIGKILL, 0, 0) };
    let err = io::Error::last_os_error();
    if ret < 0 && err.raw_os_error() != Some(libc::ESRCH) {
        return Err(SandboxError::Signal(err));
    }
    Ok(())
}
