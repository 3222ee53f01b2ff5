//! The set-up sequence that runs inside the cloned sandbox process, from the
//! first instruction after `clone3` to `execve`.
//!
//! The parent may be multi-threaded (a test harness, a daemon's blocking
//! pool), and `clone3` does not run the C library's fork handlers, so a lock
//! held by another thread at the moment of the clone stays locked here forever.
//! Therefore this code never allocates, never panics on purpose and calls only
//! system calls (raw ones where the C library's wrapper takes a lock or talks
//! to other threads, as the set*id wrappers do): everything it needs was prepared by the parent in a
//! [`ChildPlan`]. A failing step writes one fixed-size [`ChildReport`] to the
//! error pipe and exits; a successful `execve` closes the pipe (close-on-exec),
//! which the parent reads as success.
//!
//! The steps, in order (docs/sandbox.md explains each one):
//!  0. in a user namespace only: wait until the parent has written the id
//!     maps (and, on cgroup v1, moved us into the cgroup), then become the
//!     namespace's root, which is an unprivileged uid outside;
//!  1. die with the parent, if asked;
//!  2. join the cgroup (v1; on v2 the clone already placed us) and unshare the
//!     cgroup namespace, so the sandbox sees its own cgroup as the root;
//!  3. make every mount private, so nothing propagates back to the host;
//!  4. mount the read-only overlay root and everything inside it;
//!  5. set the host name and bring loopback up;
//!  6. `pivot_root` into the new root and detach the old one;
//!  7. wire stdio and mark every other descriptor close-on-exec;
//!  8. rlimits, drop the bounding set, become the unprivileged user, empty
//!     every capability set and read them back, `no_new_privs`;
//!  9. `chdir`, the seccomp filter, and `execve`.

use std::ffi::CString;
use std::fmt;
use std::os::fd::RawFd;
use std::ptr;

use libc::{c_char, c_int, c_ulong};

/// The step of the child's set-up that failed, sent to the parent as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    ParentDeathSignal = 1,
    ResetSignals,
    JoinNetwork,
    JoinCgroup,
    CgroupNamespace,
    PrivateMounts,
    Mount,
    Mknod,
    Mkdir,
    Symlink,
    Hostname,
    Loopback,
    PivotRoot,
    Stdio,
    Rlimit,
    DropBoundingSet,
    SetGroups,
    SetGid,
    SetUid,
    ClearCapabilities,
    VerifyCapabilities,
    NoNewPrivileges,
    Seccomp,
    Chdir,
    Exec,
    WaitForParent,
    UserNamespaceRoot,
    NewSession,
}

impl Step {
    const ALL: [Step; 28] = [
        Step::ParentDeathSignal,
        Step::ResetSignals,
        Step::JoinNetwork,
        Step::JoinCgroup,
        Step::CgroupNamespace,
        Step::PrivateMounts,
        Step::Mount,
        Step::Mknod,
        Step::Mkdir,
        Step::Symlink,
        Step::Hostname,
        Step::Loopback,
        Step::PivotRoot,
        Step::Stdio,
        Step::Rlimit,
        Step::DropBoundingSet,
        Step::SetGroups,
        Step::SetGid,
        Step::SetUid,
        Step::ClearCapabilities,
        Step::VerifyCapabilities,
        Step::NoNewPrivileges,
        Step::Seccomp,
        Step::Chdir,
        Step::Exec,
        Step::WaitForParent,
        Step::UserNamespaceRoot,
        Step::NewSession,
    ];

    pub(crate) fn from_u32(value: u32) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u32 == value)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What a failing child writes to the error pipe: the step and its errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChildReport {
    pub step: u32,
    pub errno: i32,
}

impl ChildReport {
    pub const SIZE: usize = 8;

    pub fn to_bytes(self) -> [u8; Self::SIZE] {
        let mut bytes = [0u8; Self::SIZE];
        bytes[..4].copy_from_slice(&self.step.to_ne_bytes());
        bytes[4..].copy_from_slice(&self.errno.to_ne_bytes());
        bytes
    }

    pub fn from_bytes(bytes: [u8; Self::SIZE]) -> ChildReport {
        let (step, errno) = bytes.split_at(4);
        ChildReport {
            step: u32::from_ne_bytes(step.try_into().unwrap_or_default()),
            errno: i32::from_ne_bytes(errno.try_into().unwrap_or_default()),
        }
    }
}

/// One file-system operation while building the root, before `pivot_root`.
#[derive(Debug)]
pub(crate) enum RootOp {
    Mount {
        source: CString,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    Mknod {
        path: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// Opens the directory `path` (`O_PATH`) onto descriptor `fd`, replacing
    /// the parent's copy, whose mount belongs to the parent's namespace.
    ReopenAt {
        path: CString,
        fd: RawFd,
    },
    /// Binds `source` over `target` if `target` exists (a `/proc` file this
    /// kernel may lack).
    MaskIfPresent {
        source: CString,
        target: CString,
    },
}

/// Everything the child needs, prepared by the parent so the child never allocates.
#[derive(Debug)]
pub(crate) struct ChildPlan {
    pub error_fd: RawFd,
    /// In a user namespace: the read end of the pipe the parent releases us
    /// through, and its write end (ours to close); both -1 otherwise.
    pub sync_fds: [RawFd; 2],
    pub kill_on_parent_death: bool,
    /// v1 `cgroup.procs` files to write `0` to; empty when the clone joined the cgroup.
    pub cgroup_procs: Vec<CString>,
    pub root_ops: Vec<RootOp>,
    /// The directories `root_ops` mount by descriptor, held open until the
    /// clone has copied them: kept for its drop, never read.
    #[allow(dead_code)]
    pub held_dirs: crate::plan::HeldDirs,
    pub new_root: CString,
    pub hostname: CString,
    /// stdin, stdout, stderr; -1 means `/dev/null` inside the sandbox.
    pub stdio: [RawFd; 3],
    /// Descriptors passed down as 3, 4, ... in order.
    pub extra_fds: Vec<RawFd>,
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    pub last_cap: u32,
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
    pub cwd: CString,
    pub dev_null: CString,
    pub argv: Vec<CString>,
    pub argv_ptrs: Vec<*const c_char>,
    pub envp_ptrs: Vec<*const c_char>,
    /// Owns the strings `envp_ptrs` points into.
    #[expect(dead_code, reason = "read only through envp_ptrs")]
    pub env: Vec<CString>,
    /// A prepared network namespace (loopback already up) to enter instead
    /// of the one the clone would create; -1 when the clone creates it.
    pub netns_fd: RawFd,
    /// Whether `lo` needs bringing up (a prepared namespace has it up already).
    pub loopback_up: bool,
    /// The seccomp program, installed last.
    pub seccomp: &'static [libc::sock_filter],
}

/// A step's result inside the child: the failed step and errno.
type StepResult = Result<(), (Step, i32)>;

/// Returns `Err((step, errno))` when a libc call reported failure.
fn check(step: Step, ret: c_int) -> StepResult {
    if ret < 0 {
        Err((step, errno()))
    } else {
        Ok(())
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)
}

/// Runs the whole set-up and executes the process; returns only by exiting.
///
/// # Safety
/// Must be called only in the child of a `clone3`, with `plan` prepared by the parent.
pub(crate) unsafe fn run(plan: &ChildPlan) -> ! {
    let failure = match setup(plan) {
        Ok(()) => (Step::Exec, errno()),
        Err(failure) => failure,
    };
    let report = ChildReport {
        step: failure.0 as u32,
        errno: failure.1,
    }
    .to_bytes();
    // SAFETY: write(2) from a valid buffer of report.len() bytes; _exit never returns.
    unsafe {
        libc::write(plan.error_fd, report.as_ptr().cast(), report.len());
        libc::_exit(127)
    }
}

/// Steps 0-9; returns only when something failed (or when `execve` itself failed).
fn setup(plan: &ChildPlan) -> StepResult {
    // SAFETY: umask only changes this process's file mode mask.
    unsafe { libc::umask(0) };
    if plan.sync_fds[0] >= 0 {
        enter_user_namespace(plan)?;
    }
    if plan.kill_on_parent_death {
        // SAFETY: prctl with integer arguments.
        check(Step::ParentDeathSignal, unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL)
        })?;
    }
    reset_signals()?;
    // A session and process group of its own: the daemon's are its
    // terminal's or its service's, whose stop signals every process in them
    // (Ctrl-C, systemd's SIGTERM to the unit): the function must learn of a
    // stop through its sandbox's shutdown (Lambda's SHUTDOWN, then SIGTERM
    // and the grace) and not by a signal meant for the daemon.
    // SAFETY: setsid(2) takes no argument; the clone's child leads no group.
    check(Step::NewSession, unsafe { libc::setsid() })?;
    if plan.netns_fd >= 0 {
        // SAFETY: setns on a namespace descriptor the parent prepared for us.
        check(Step::JoinNetwork, unsafe {
            libc::setns(plan.netns_fd, libc::CLONE_NEWNET)
        })?;
    }
    join_cgroup(plan)?;
    build_root(plan)?;
    set_identity(plan)?;
    pivot_root(plan)?;
    wire_stdio(plan)?;
    drop_privileges(plan)?;
    // SAFETY: restore the usual mask for the payload.
    unsafe { libc::umask(0o022) };
    // SAFETY: cwd is a valid C string.
    check(Step::Chdir, unsafe { libc::chdir(plan.cwd.as_ptr()) })?;
    install_seccomp(plan)?;
    // SAFETY: argv_ptrs and envp_ptrs are NULL-terminated arrays of pointers into
    // C strings owned by `plan`, which outlives this call.
    unsafe { libc::execve(plan.argv[0].as_ptr(), plan.argv_ptrs.as_ptr(), plan.envp_ptrs.as_ptr()) };
    Err((Step::Exec, errno()))
}

/// Step 0: until the parent writes `uid_map` and `gid_map`, every id here is
/// unmapped and `setresuid` would fail. Released, we switch to uid and gid 0
/// of the namespace: the clone left us with the host's root as our real
/// credentials (only the capabilities moved to the new namespace), and the
/// set-up must run as the mapped, unprivileged outside uid, so that host files
/// are reached with that uid's permissions, not root's.
fn enter_user_namespace(plan: &ChildPlan) -> StepResult {
    let [read_end, write_end] = plan.sync_fds;
    let mut byte = 0u8;
    // SAFETY: close/read on descriptors the parent gave us, into a one-byte local.
    unsafe {
        // Our copy of the write end would keep the pipe open if the parent died.
        libc::close(write_end);
        loop {
            let n = libc::read(read_end, (&mut byte as *mut u8).cast(), 1);
            if n == 1 {
                break;
            }
            if n == 0 {
                return Err((Step::WaitForParent, libc::EPIPE));
            }
            if errno() != libc::EINTR {
                return Err((Step::WaitForParent, errno()));
            }
        }
        libc::close(read_end);
        check(
            Step::UserNamespaceRoot,
            libc::syscall(libc::SYS_setresgid, 0, 0, 0) as c_int,
        )?;
        check(
            Step::UserNamespaceRoot,
            libc::syscall(libc::SYS_setresuid, 0, 0, 0) as c_int,
        )
    }
}

/// Signal dispositions and the mask survive `execve`: a Rust parent ignores
/// SIGPIPE and a daemon may block signals, and the payload must see neither.
fn reset_signals() -> StepResult {
    // SAFETY: sigset and sigaction calls on local, initialised values.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check(
            Step::ResetSignals,
            libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut()),
        )?;
        for signal in 1..libc::SIGRTMAX() {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                // Unused real-time numbers may refuse; that is harmless.
                libc::signal(signal, libc::SIG_DFL);
            }
        }
    }
    Ok(())
}

/// Step 2: enter the cgroup (v1), then a cgroup namespace rooted at it.
fn join_cgroup(plan: &ChildPlan) -> StepResult {
    for procs in &plan.cgroup_procs {
        // SAFETY: open/write/close on a valid path and a one-byte static buffer.
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            check(Step::JoinCgroup, fd)?;
            let written = libc::write(fd, b"0".as_ptr().cast(), 1);
            libc::close(fd);
            check(Step::JoinCgroup, written as c_int)?;
        }
    }
    // SAFETY: unshare with a flag constant.
    check(Step::CgroupNamespace, unsafe { libc::unshare(libc::CLONE_NEWCGROUP) })
}

/// Steps 3-4: private propagation, then the root operations in order.
fn build_root(plan: &ChildPlan) -> StepResult {
    // SAFETY: mount(2) with valid C strings or NULL where the kernel allows it.
    check(Step::PrivateMounts, unsafe {
        libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            ptr::null(),
        )
    })?;
    for op in &plan.root_ops {
        apply(op)?;
    }
    Ok(())
}

fn apply(op: &RootOp) -> StepResult {
    let opt = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
    // SAFETY: every pointer is a valid C string owned by the plan, or NULL.
    unsafe {
        match op {
            RootOp::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => check(
                Step::Mount,
                libc::mount(source.as_ptr(), target.as_ptr(), opt(fstype), *flags, opt(data).cast()),
            ),
            RootOp::Mknod { path, mode, dev } => check(Step::Mknod, libc::mknod(path.as_ptr(), *mode, *dev)),
            RootOp::Mkdir { path, mode } => check(Step::Mkdir, libc::mkdir(path.as_ptr(), *mode)),
            RootOp::Symlink { target, link } => check(Step::Symlink, libc::symlink(target.as_ptr(), link.as_ptr())),
            RootOp::ReopenAt { path, fd } => {
                let opened = libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC);
                check(Step::Mount, opened)?;
                let moved = libc::dup3(opened, *fd, libc::O_CLOEXEC);
                libc::close(opened);
                check(Step::Mount, moved)
            }
            RootOp::MaskIfPresent { source, target } => {
                let ret = libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    ptr::null(),
                    libc::MS_BIND,
                    ptr::null(),
                );
                if ret < 0 && errno() == libc::ENOENT {
                    return Ok(());
                }
                check(Step::Mount, ret)
            }
        }
    }
}

/// Step 5: host name and loopback.
fn set_identity(plan: &ChildPlan) -> StepResult {
    let name = plan.hostname.as_bytes();
    // SAFETY: sethostname reads exactly name.len() bytes.
    check(Step::Hostname, unsafe {
        libc::sethostname(name.as_ptr().cast(), name.len())
    })?;
    if plan.loopback_up {
        loopback_up()?;
    }
    Ok(())
}

/// Brings `lo` up in the new network namespace: the only interface there is.
pub(crate) fn loopback_up() -> StepResult {
    // SAFETY: socket/ioctl/close on a zeroed `ifreq` whose name we fill in.
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        check(Step::Loopback, sock)?;
        let mut req: libc::ifreq = std::mem::zeroed();
        for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
        let ret = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
        libc::close(sock);
        check(Step::Loopback, ret)
    }
}

/// Step 6: `pivot_root(".", ".")` stacks the old root on top of the new one;
/// detaching it leaves only the new root, with no path back to the host.
fn pivot_root(plan: &ChildPlan) -> StepResult {
    // SAFETY: chdir/pivot_root/umount2 with valid C strings.
    unsafe {
        check(Step::PivotRoot, libc::chdir(plan.new_root.as_ptr()))?;
        check(
            Step::PivotRoot,
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) as c_int,
        )?;
        check(Step::PivotRoot, libc::umount2(c".".as_ptr(), libc::MNT_DETACH))?;
        check(Step::PivotRoot, libc::chdir(c"/".as_ptr()))
    }
}

/// Step 7: stdio and passed descriptors at their numbers; everything else close-on-exec.
fn wire_stdio(plan: &ChildPlan) -> StepResult {
    // Move every source out of the way first, so dup2 onto 0..n never clobbers
    // a source that has not been placed yet.
    const PARK: c_int = 1000;
    let mut parked = [-1 as c_int; 3];
    // SAFETY: fcntl/dup2/open/close on descriptors we own in this process.
    unsafe {
        let null = libc::open(plan.dev_null.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        check(Step::Stdio, null)?;
        for (slot, &fd) in parked.iter_mut().zip(&plan.stdio) {
            let source = if fd < 0 { null } else { fd };
            *slot = libc::fcntl(source, libc::F_DUPFD_CLOEXEC, PARK);
            check(Step::Stdio, *slot)?;
        }
        for (i, &fd) in plan.extra_fds.iter().enumerate() {
            let tmp = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, PARK + 3);
            check(Step::Stdio, tmp)?;
            check(Step::Stdio, libc::dup2(tmp, 3 + i as c_int))?;
            libc::close(tmp);
        }
        for (target, &fd) in parked.iter().enumerate() {
            check(Step::Stdio, libc::dup2(fd, target as c_int))?;
            libc::close(fd);
        }
        let first_closed = 3 + plan.extra_fds.len() as libc::c_uint;
        check(
            Step::Stdio,
            libc::syscall(
                libc::SYS_close_range,
                first_closed,
                libc::c_uint::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) as c_int,
        )
    }
}

/// Step 8: limits, then the user, then nothing left to escalate with.
fn drop_privileges(plan: &ChildPlan) -> StepResult {
    // SAFETY: every call below takes integers or pointers to local, initialised values.
    unsafe {
        for &(resource, value) in &plan.rlimits {
            let limit = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            check(Step::Rlimit, libc::setrlimit(resource, &limit))?;
        }
        // The bounding set needs CAP_SETPCAP, so it goes before the user changes.
        for cap in 0..=plan.last_cap {
            check(
                Step::DropBoundingSet,
                libc::prctl(libc::PR_CAPBSET_DROP, cap as c_ulong),
            )?;
        }
        // Raw system calls, not the C library's wrappers: those broadcast the
        // change to every thread the library believes exists, and after a
        // clone3 from a multi-threaded parent that list names threads this
        // process does not have, so the wrapper can wait forever.
        let groups = [plan.gid];
        check(
            Step::SetGroups,
            libc::syscall(libc::SYS_setgroups, 1, groups.as_ptr()) as c_int,
        )?;
        let (uid, gid) = (plan.uid as libc::c_long, plan.gid as libc::c_long);
        check(Step::SetGid, libc::syscall(libc::SYS_setresgid, gid, gid, gid) as c_int)?;
        // Leaving uid 0 clears the permitted and effective sets (no SECBIT_KEEP_CAPS).
        check(Step::SetUid, libc::syscall(libc::SYS_setresuid, uid, uid, uid) as c_int)?;
        if plan.kill_on_parent_death {
            // The kernel clears the parent-death signal whenever the effective
            // ids change (commit_creds), so step 1's signal is gone by now: arm
            // it again, as the user the process stays. Should the parent die in
            // between, the start-up sweep finds the sandbox by its cgroup.
            check(
                Step::ParentDeathSignal,
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL),
            )?;
        }
        check(
            Step::ClearCapabilities,
            libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0),
        )?;
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let empty = [CapData::default(); 2];
        check(
            Step::ClearCapabilities,
            libc::syscall(libc::SYS_capset, &mut header, empty.as_ptr()) as c_int,
        )?;
        verify_no_capabilities(plan.last_cap)?;
        check(
            Step::NoNewPrivileges,
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
        )
    }
}

/// Step 9: the filter goes last, since it refuses what the set-up itself did;
/// `chdir` is done, and `execve` stays allowed.
fn install_seccomp(plan: &ChildPlan) -> StepResult {
    let program = libc::sock_fprog {
        len: plan.seccomp.len() as libc::c_ushort,
        filter: plan.seccomp.as_ptr().cast_mut(),
    };
    // SAFETY: the program outlives the call; the kernel copies it.
    check(Step::Seccomp, unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &program as *const libc::sock_fprog,
        )
    })
}

/// Reads every capability set back; any bit left is a failure, not a warning.
fn verify_no_capabilities(last_cap: u32) -> StepResult {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget fills two CapData structs for version 3.
    check(Step::VerifyCapabilities, unsafe {
        libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) as c_int
    })?;
    let any_set = data.iter().any(|d| d.effective | d.permitted | d.inheritable != 0);
    // SAFETY: prctl reads with integer arguments.
    let bounding_left = (0..=last_cap).any(|cap| unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap as c_ulong) } != 0);
    // SAFETY: as above.
    let ambient_left = (0..=last_cap)
        .any(|cap| unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_IS_SET, cap, 0, 0) } > 0);
    if any_set || bounding_left || ambient_left {
        return Err((Step::VerifyCapabilities, libc::EPERM));
    }
    Ok(())
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        let report = ChildReport {
            step: Step::PivotRoot as u32,
            errno: libc::EINVAL,
        };
        assert_eq!(ChildReport::from_bytes(report.to_bytes()), report);
        assert_eq!(Step::from_u32(report.step), Some(Step::PivotRoot));
        assert_eq!(Step::from_u32(0), None);
    }
}
