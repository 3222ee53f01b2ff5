//! The function's CPU group (docs/sandbox.md, "The function's CPU group").
//!
//! The daemon starts init in a CPU cgroup of its own, bounded at one core,
//! and hands it, at [`FUNCTION_CGROUP_FD`], the function group's
//! `cgroup.procs`, opened for writing on the host (no cgroup file system is
//! mounted here, and init holds no capability to open one). Every process
//! init starts (the bootstrap, a pre-initialised runtime, the extensions)
//! writes `0` to it between `fork` and `execve`: so its first instruction
//! already runs in the function's group, under the function's quota, and
//! init's own relaying is not charged to that quota. The descriptor is
//! close-on-exec, so no process of the function holds it; and init is not
//! dumpable, so none can take it from `/proc/1/fd`.

use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

/// The descriptor the function group's `cgroup.procs` arrives on: the one
/// after the daemon's socket ([`crate::CONTROL_FD`]).
pub const FUNCTION_CGROUP_FD: RawFd = 4;

static FUNCTION_CGROUP: OnceLock<Option<RawFd>> = OnceLock::new();

/// Takes [`FUNCTION_CGROUP_FD`] when it is a cgroup file, close-on-exec;
/// called once, before anything starts. Without it (a sandbox not split,
/// as `lamb sandbox-exec` makes) every process stays in init's group.
pub(crate) fn take() {
    let fd = is_cgroup_file(FUNCTION_CGROUP_FD)
        .then(|| {
            nix::fcntl::fcntl(
                FUNCTION_CGROUP_FD,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .ok()
        })
        .flatten()
        .map(|_| FUNCTION_CGROUP_FD);
    let _ = FUNCTION_CGROUP.set(fd);
}

fn is_cgroup_file(fd: RawFd) -> bool {
    // SAFETY: the descriptor is only borrowed for the fstatfs; a closed one fails it.
    let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    if nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_err() {
        return false;
    }
    use nix::sys::statfs::{fstatfs, CGROUP2_SUPER_MAGIC, CGROUP_SUPER_MAGIC};
    fstatfs(borrowed).is_ok_and(|s| [CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC].contains(&s.filesystem_type()))
}

/// Makes `command`'s process join the function's group before its
/// `execve`; a process that cannot join does not start (it would run
/// outside the function's quota), and its spawn reports why.
pub(crate) fn place(command: &mut Command) {
    let Some(fd) = FUNCTION_CGROUP.get().copied().flatten() else {
        return;
    };
    // SAFETY: write(2) is async-signal-safe and touches only the static "0".
    unsafe {
        command.pre_exec(move || {
            if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
