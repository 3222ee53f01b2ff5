//! Binding a directory into a sandbox that is already running, from outside
//! (docs/prewarm.md): what a pre-initialised sandbox gets when a function is
//! assigned to it, its code at `/var/task`.
//!
//! The mount is the one a plain start makes for a directory
//! (`plan::overlay`): a read-only, nosuid, nodev overlay of the directory
//! over an empty one, its layers named `/proc/self/fd/N` so the sandbox reads
//! no host path in `mountinfo`. A short-lived helper forked from the caller
//! builds it with `fsopen`/`fsmount` in the caller's mount namespace (where
//! the layers' mounts live: overlayfs takes no layer from another one), then
//! enters the sandbox's mount namespace through its pidfd and attaches the
//! new mount at the target with `move_mount`. Nothing inside the sandbox
//! does or gains anything; the helper's `setns` needs a process of its own
//! (a thread sharing its file system context with others may not), and a
//! fork of the small spawner costs a fraction of a millisecond.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::{Result, SandboxError};
use crate::plan::{cstring, lowerdir};

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// The helper's steps, reported with the errno of the one that failed.
const STEPS: [&str; 7] = [
    "fsopen",
    "fsconfig lowerdir",
    "fsconfig ro",
    "fsconfig create",
    "fsmount",
    "setns",
    "fsconfig source",
];
const STEP_MOVE_MOUNT: u32 = 7;

/// Everything the helper uses, built before the fork: it must not allocate.
struct Plan {
    fstype: CString,
    source_key: CString,
    lowerdir_key: CString,
    lowerdir: CString,
    ro: CString,
    empty_path: CString,
    target: CString,
    /// The layers, held open so that `/proc/self/fd/N` names them.
    _held: Vec<OwnedFd>,
}

/// Mounts `source` read-only at `target` inside the sandbox whose PID 1 is
/// behind `pidfd`, as a plain start mounts a directory (over `empty`).
pub(crate) fn bind_directory(pidfd: BorrowedFd<'_>, source: &Path, empty: &Path, target: &Path) -> Result<()> {
    let plan = plan(source, empty, target)?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Sync(e.into()))?;
    // SAFETY: the child runs raw system calls on memory built above, then _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(SandboxError::Clone(io::Error::last_os_error()));
    }
    if pid == 0 {
        helper(&plan, pidfd.as_raw_fd(), write.as_raw_fd())
    }
    drop(write);
    let mut report = [0u8; 8];
    let got = read_all(read.as_raw_fd(), &mut report);
    reap(pid)?;
    if got == 0 {
        return Ok(());
    }
    let step = u32::from_ne_bytes([report[0], report[1], report[2], report[3]]);
    let errno = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
    let name = STEPS.get(step as usize).copied().unwrap_or("move_mount");
    Err(SandboxError::PrepareDir {
        path: target.to_path_buf(),
        source: io::Error::new(
            io::Error::from_raw_os_error(errno).kind(),
            format!("{name} in the bind helper: {}", io::Error::from_raw_os_error(errno)),
        ),
    })
}

fn plan(source: &Path, empty: &Path, target: &Path) -> Result<Plan> {
    let mut held = Vec::with_capacity(2);
    let mut names = Vec::with_capacity(2);
    for dir in [source, empty] {
        let fd: OwnedFd = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|source| SandboxError::PrepareDir {
                path: dir.to_path_buf(),
                source,
            })?
            .into();
        names.push(std::path::PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())));
        held.push(fd);
    }
    let names: Vec<&Path> = names.iter().map(std::path::PathBuf::as_path).collect();
    let option = lowerdir(&names)?;
    let value = option.strip_prefix("lowerdir=").unwrap_or(&option);
    Ok(Plan {
        fstype: cstring("overlay")?,
        source_key: cstring("source")?,
        lowerdir_key: cstring("lowerdir")?,
        lowerdir: cstring(value)?,
        ro: cstring("ro")?,
        empty_path: cstring("")?,
        target: cstring(target.as_os_str().as_encoded_bytes())?,
        _held: held,
    })
}

/// Reports the failed `step` with the current errno, and exits.
fn fail(report: RawFd, step: u32) -> ! {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&step.to_ne_bytes());
    bytes[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: a write of a stack buffer, then _exit (no destructors, no atexit).
    unsafe {
        libc::write(report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(1)
    }
}

/// The forked helper: system calls on the plan the fork copied, no
/// allocation; never returns.
fn helper(plan: &Plan, pidfd: RawFd, report: RawFd) -> ! {
    // SAFETY: fsopen with a NUL-terminated file system name.
    let fs = unsafe { libc::syscall(libc::SYS_fsopen, plan.fstype.as_ptr(), FSOPEN_CLOEXEC) } as RawFd;
    if fs < 0 {
        fail(report, 0);
    }
    let set = |cmd: libc::c_uint, key: *const libc::c_char, value: *const libc::c_char| {
        // SAFETY: fsconfig on our context with NUL-terminated strings or null.
        unsafe { libc::syscall(libc::SYS_fsconfig, fs, cmd, key, value, 0) >= 0 }
    };
    // `overlay` as the source, as a plain start's mount(2) names it.
    if !set(FSCONFIG_SET_STRING, plan.source_key.as_ptr(), plan.fstype.as_ptr()) {
        fail(report, 6);
    }
    if !set(FSCONFIG_SET_STRING, plan.lowerdir_key.as_ptr(), plan.lowerdir.as_ptr()) {
        fail(report, 1);
    }
    if !set(FSCONFIG_SET_FLAG, plan.ro.as_ptr(), std::ptr::null()) {
        fail(report, 2);
    }
    if !set(FSCONFIG_CMD_CREATE, std::ptr::null(), std::ptr::null()) {
        fail(report, 3);
    }
    let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    // SAFETY: fsmount of the created context.
    let mnt = unsafe { libc::syscall(libc::SYS_fsmount, fs, FSMOUNT_CLOEXEC, attrs) } as RawFd;
    if mnt < 0 {
        fail(report, 4);
    }
    // SAFETY: setns on the sandbox's pidfd; this process shares its file
    // system context with no other.
    if unsafe { libc::setns(pidfd, libc::CLONE_NEWNS) } != 0 {
        fail(report, 5);
    }
    // setns made the sandbox's root this process's root: the target is
    // looked up there, and its last component is not followed if a link.
    // SAFETY: move_mount of our detached mount onto a NUL-terminated path.
    let moved = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt,
            plan.empty_path.as_ptr(),
            libc::AT_FDCWD,
            plan.target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if moved < 0 {
        fail(report, STEP_MOVE_MOUNT);
    }
    // SAFETY: leave without running the parent's destructors or atexit handlers.
    unsafe { libc::_exit(0) }
}

/// Reads until `buf` is full or end of file; the bytes read.
fn read_all(fd: RawFd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the rest of `buf`.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        match n {
            0 => break,
            n if n > 0 => got += n as usize,
            _ if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    got
}

fn reap(pid: libc::pid_t) -> Result<()> {
    loop {
        let mut status = 0;
        // SAFETY: waits for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(SandboxError::Wait(err));
        }
    }
}
