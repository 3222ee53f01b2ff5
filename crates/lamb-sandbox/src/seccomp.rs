//! The seccomp filter every sandboxed process runs under: an allow list
//! modelled on Docker's default profile, so that a system call the kernel
//! gains next year is refused until someone reviews it.
//!
//! The filter is a classic BPF program built once per process, in the
//! parent, and installed by the child as its last step before `execve` (it
//! would refuse the child's own mounts otherwise). In order:
//!
//! 1. another architecture's calls kill the process, x32 calls get `EPERM`;
//! 2. calls decided by their arguments: `clone3` gets `ENOSYS` (its flags live
//!    in memory a filter cannot read; C libraries fall back to `clone`),
//!    `clone` and `unshare` with a namespace flag get `EPERM`; `socket` only
//!    for `AF_UNIX`, `AF_INET`, `AF_INET6`, and `AF_NETLINK` with
//!    `NETLINK_ROUTE` (no vsock to the hypervisor, no `AF_ALG`, no packet
//!    sockets, no kernel uevents), `socketpair` only for `AF_UNIX`, and
//!    `personality` only with Docker's safe values (no `ADDR_NO_RANDOMIZE`),
//!    else `EPERM`;
//! 3. a binary search by number: the calls of [`ALLOWED`] are allowed, those
//!    of [`DENIED`] get `EPERM`, as a permission error, and anything else
//!    `ENOSYS`.
//!
//! Since Linux 5.11 the kernel runs the program once per call number when it
//! is installed, finds every call whose verdict does not depend on its
//! arguments, and skips the program for those afterwards; the search keeps
//! both that start-up work and the hot path of older kernels short.

use libc::{c_long, sock_filter};

/// `linux/audit.h`: the architecture a system call was made for.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// Offsets into `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
const DATA_ARG0_LOW: u32 = 16;
const DATA_ARG2_LOW: u32 = 32;

const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

/// x32 system calls on x86_64 carry this bit; none is allowed.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Namespace flags `clone` and `unshare` may not use inside a sandbox.
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP
    | 0x80) as u32; // CLONE_NEWTIME

/// System calls a function may make, whatever their arguments: the allow
/// list. Anything on neither this list nor [`DENIED`] (a call added to the
/// kernel after this list was reviewed, or an old one no runtime needs)
/// fails with `ENOSYS`, as if this kernel lacked it, so C libraries fall back
/// to older calls as they do on older kernels. Modelled on Docker's default
/// profile (moby `profiles/seccomp/default.json`), minus what lamb refuses on
/// top of it (io_uring, file handles, `modify_ldt`, the mount listing calls).
/// `clone`, `clone3`, `unshare`, `socket`, `socketpair` and `personality`
/// are decided by their arguments, in [`filter`].
pub const ALLOWED: &[c_long] = &[
    // Reading and writing descriptors, the hot path first.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_fcntl,
    libc::SYS_ioctl,
    libc::SYS_flock,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_sync,
    libc::SYS_syncfs,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_sync_file_range,
    libc::SYS_readahead,
    libc::SYS_fadvise64,
    libc::SYS_fallocate,
    libc::SYS_ftruncate,
    libc::SYS_truncate,
    libc::SYS_sendfile,
    libc::SYS_splice,
    libc::SYS_tee,
    libc::SYS_vmsplice,
    libc::SYS_copy_file_range,
    libc::SYS_pipe2,
    // Waiting for descriptors, time and each other.
    libc::SYS_futex,
    libc::SYS_futex_waitv,
    SYS_FUTEX_WAKE,
    SYS_FUTEX_WAIT,
    SYS_FUTEX_REQUEUE,
    libc::SYS_set_robust_list,
    libc::SYS_get_robust_list,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    libc::SYS_eventfd2,
    libc::SYS_signalfd4,
    libc::SYS_timerfd_create,
    libc::SYS_timerfd_settime,
    libc::SYS_timerfd_gettime,
    libc::SYS_inotify_init1,
    libc::SYS_inotify_add_watch,
    libc::SYS_inotify_rm_watch,
    libc::SYS_fanotify_mark,
    libc::SYS_io_setup,
    libc::SYS_io_destroy,
    libc::SYS_io_submit,
    libc::SYS_io_cancel,
    libc::SYS_io_getevents,
    // Memory.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_madvise,
    libc::SYS_brk,
    libc::SYS_msync,
    libc::SYS_mincore,
    libc::SYS_mlock,
    libc::SYS_mlock2,
    libc::SYS_munlock,
    libc::SYS_mlockall,
    libc::SYS_munlockall,
    libc::SYS_membarrier,
    libc::SYS_memfd_create,
    libc::SYS_memfd_secret,
    libc::SYS_mseal,
    libc::SYS_pkey_alloc,
    libc::SYS_pkey_free,
    libc::SYS_pkey_mprotect,
    libc::SYS_remap_file_pages,
    SYS_MAP_SHADOW_STACK,
    // Reading NUMA policy is harmless; setting it is refused (DENIED).
    libc::SYS_get_mempolicy,
    // Files and directories, by path and by descriptor.
    libc::SYS_openat,
    libc::SYS_openat2,
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_statfs,
    libc::SYS_fstatfs,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_getdents64,
    libc::SYS_getcwd,
    libc::SYS_chdir,
    libc::SYS_fchdir,
    libc::SYS_mkdirat,
    libc::SYS_mknodat,
    libc::SYS_unlinkat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_linkat,
    libc::SYS_symlinkat,
    libc::SYS_readlinkat,
    libc::SYS_fchmod,
    libc::SYS_fchmodat,
    SYS_FCHMODAT2,
    libc::SYS_fchown,
    libc::SYS_fchownat,
    libc::SYS_utimensat,
    libc::SYS_umask,
    SYS_CACHESTAT,
    // Extended attributes.
    libc::SYS_getxattr,
    libc::SYS_lgetxattr,
    libc::SYS_fgetxattr,
    libc::SYS_setxattr,
    libc::SYS_lsetxattr,
    libc::SYS_fsetxattr,
    libc::SYS_listxattr,
    libc::SYS_llistxattr,
    libc::SYS_flistxattr,
    libc::SYS_removexattr,
    libc::SYS_lremovexattr,
    libc::SYS_fremovexattr,
    // Sockets (the families are checked in `filter`).
    libc::SYS_connect,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_shutdown,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_getsockopt,
    libc::SYS_setsockopt,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    // Processes, threads and programs (`clone` checked in `filter`).
    libc::SYS_execve,
    libc::SYS_execveat,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_wait4,
    libc::SYS_waitid,
    libc::SYS_set_tid_address,
    libc::SYS_rseq,
    libc::SYS_restart_syscall,
    libc::SYS_prctl,
    libc::SYS_seccomp,
    libc::SYS_landlock_create_ruleset,
    libc::SYS_landlock_add_rule,
    libc::SYS_landlock_restrict_self,
    libc::SYS_capget,
    libc::SYS_capset,
    libc::SYS_pidfd_open,
    libc::SYS_pidfd_send_signal,
    libc::SYS_process_mrelease,
    // Debuggers and profilers within the sandbox (Docker allows them since
    // Linux 4.8 closed the seccomp bypass); lamb init is not dumpable.
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    // Signals.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigpending,
    libc::SYS_rt_sigsuspend,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_rt_sigqueueinfo,
    libc::SYS_rt_tgsigqueueinfo,
    libc::SYS_sigaltstack,
    libc::SYS_kill,
    libc::SYS_tkill,
    libc::SYS_tgkill,
    // Identity, limits, scheduling (the kernel enforces the privileges).
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_gettid,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_getresuid,
    libc::SYS_getresgid,
    libc::SYS_getgroups,
    libc::SYS_setuid,
    libc::SYS_setgid,
    libc::SYS_setreuid,
    libc::SYS_setregid,
    libc::SYS_setresuid,
    libc::SYS_setresgid,
    libc::SYS_setfsuid,
    libc::SYS_setfsgid,
    libc::SYS_setgroups,
    libc::SYS_getpgid,
    libc::SYS_setpgid,
    libc::SYS_getsid,
    libc::SYS_setsid,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_getrlimit,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_setrlimit,
    libc::SYS_prlimit64,
    libc::SYS_getrusage,
    libc::SYS_getpriority,
    libc::SYS_setpriority,
    libc::SYS_ioprio_get,
    libc::SYS_ioprio_set,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sched_setaffinity,
    libc::SYS_sched_getparam,
    libc::SYS_sched_setparam,
    libc::SYS_sched_getscheduler,
    libc::SYS_sched_setscheduler,
    libc::SYS_sched_getattr,
    libc::SYS_sched_setattr,
    libc::SYS_sched_get_priority_max,
    libc::SYS_sched_get_priority_min,
    libc::SYS_sched_rr_get_interval,
    libc::SYS_getcpu,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    libc::SYS_getrandom,
    // Clocks and timers (setting a clock needs CAP_SYS_TIME; `adjtimex` reads).
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_gettimeofday,
    libc::SYS_nanosleep,
    libc::SYS_getitimer,
    libc::SYS_setitimer,
    libc::SYS_timer_create,
    libc::SYS_timer_settime,
    libc::SYS_timer_gettime,
    libc::SYS_timer_getoverrun,
    libc::SYS_timer_delete,
    libc::SYS_times,
    // System V and POSIX IPC, private to the sandbox's IPC namespace.
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmdt,
    libc::SYS_shmctl,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_semctl,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    libc::SYS_mq_open,
    libc::SYS_mq_unlink,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_timedreceive,
    libc::SYS_mq_notify,
    libc::SYS_mq_getsetattr,
    // x86_64's legacy calls, which old binaries and static runtimes still make.
    #[cfg(target_arch = "x86_64")]
    libc::SYS_arch_prctl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_open,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_creat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_stat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lstat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_access,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_poll,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_select,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_pipe,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_dup2,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_fork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_vfork,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mkdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rmdir,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_rename,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_link,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_unlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_symlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_readlink,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chmod,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_chown,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_lchown,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_mknod,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_getdents,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_utime,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_utimes,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_futimesat,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_alarm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_pause,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_time,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_getpgrp,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_create,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_epoll_wait,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_eventfd,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_signalfd,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_inotify_init,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_get_thread_area,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_set_thread_area,
];

/// Calls of Linux 6.5 to 6.10 that this libc crate does not name (on every
/// architecture) yet; their
/// numbers are the same on every 64-bit architecture (the shared table from 424 on).
const SYS_CACHESTAT: c_long = 451;
const SYS_FCHMODAT2: c_long = 452;
const SYS_MAP_SHADOW_STACK: c_long = 453;
const SYS_FUTEX_WAKE: c_long = 454;
const SYS_FUTEX_WAIT: c_long = 455;
const SYS_FUTEX_REQUEUE: c_long = 456;
const SYS_LSM_GET_SELF_ATTR: c_long = 459;
const SYS_LSM_SET_SELF_ATTR: c_long = 460;
const SYS_LSM_LIST_MODULES: c_long = 461;

/// System calls refused with `EPERM`, as a permission error, rather than
/// `ENOSYS`: the calls of Docker's profile that need a capability no
/// sandbox has, and lamb's own additions. Off the allow list, they would
/// fail anyway; naming them keeps the answer Docker's and lets the probes
/// check each one.
pub const DENIED: &[c_long] = &[
    // Mounts and root changes.
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    // Entering other namespaces.
    libc::SYS_setns,
    // io_uring: a large kernel surface that container engines now deny too.
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // Watching the whole file system.
    libc::SYS_fanotify_init,
    // Kernel keyrings, bpf, perf, userfaultfd.
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_userfaultfd,
    // Modules, kexec, reboot, swap, accounting, quotas.
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_quotactl,
    // Clocks and host identity.
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    // File handles bypass path checks; the rest are legacy or privileged.
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
    libc::SYS_syslog,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_uselib,
    // Other processes' memory and descriptors, and the machine's NUMA
    // placement (Docker: CAP_SYS_PTRACE and CAP_SYS_NICE).
    libc::SYS_kcmp,
    libc::SYS_pidfd_getfd,
    libc::SYS_process_madvise,
    libc::SYS_move_pages,
    libc::SYS_migrate_pages,
    libc::SYS_set_mempolicy,
    libc::SYS_set_mempolicy_home_node,
    libc::SYS_mbind,
    // Security modules' attributes, and quotas by descriptor.
    SYS_LSM_GET_SELF_ATTR,
    SYS_LSM_SET_SELF_ATTR,
    SYS_LSM_LIST_MODULES,
    libc::SYS_quotactl_fd,
];

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// Refuses `nr` when its first argument carries a namespace flag, allows it otherwise.
fn refuse_namespace_flags(nr: c_long) -> [sock_filter; 5] {
    [
        jump(JEQ, nr as u32, 0, 4),
        stmt(LD_W_ABS, DATA_ARG0_LOW),
        jump(JSET, NAMESPACE_FLAGS, 0, 1),
        stmt(RET, RET_ERRNO | libc::EPERM as u32),
        stmt(RET, RET_ALLOW),
    ]
}

/// Allows `nr` when the low word of its argument at `arg` is one of
/// `values`, refuses it with `EPERM` otherwise. The calls checked this way
/// take an `int` there, so the low word is the whole value.
fn allow_values(nr: c_long, arg: u32, values: &[u32]) -> Vec<sock_filter> {
    let n = values.len();
    let mut block = vec![jump(JEQ, nr as u32, 0, (n + 3) as u8), stmt(LD_W_ABS, arg)];
    for (i, &value) in values.iter().enumerate() {
        block.push(jump(JEQ, value, (n - i) as u8, 0));
    }
    block.push(stmt(RET, RET_ERRNO | libc::EPERM as u32));
    block.push(stmt(RET, RET_ALLOW));
    block
}

/// `socket`: the families a function needs, and netlink for routes only
/// (what `ip` and the C library's interface listing use).
fn socket_families() -> [sock_filter; 10] {
    [
        jump(JEQ, libc::SYS_socket as u32, 0, 9),
        stmt(LD_W_ABS, DATA_ARG0_LOW),
        jump(JEQ, libc::AF_UNIX as u32, 6, 0),
        jump(JEQ, libc::AF_INET as u32, 5, 0),
        jump(JEQ, libc::AF_INET6 as u32, 4, 0),
        jump(JEQ, libc::AF_NETLINK as u32, 0, 2),
        stmt(LD_W_ABS, DATA_ARG2_LOW),
        jump(JEQ, NETLINK_ROUTE, 1, 0),
        stmt(RET, RET_ERRNO | libc::EPERM as u32),
        stmt(RET, RET_ALLOW),
    ]
}

/// `linux/netlink.h`: routes, addresses and links, what `ip` and `getifaddrs` use.
const NETLINK_ROUTE: u32 = 0;

/// `personality` values Docker's profile allows: Linux (0), 32-bit Linux
/// (8), the 2.6-uname flag and both together, and the query (`0xffffffff`);
/// never `ADDR_NO_RANDOMIZE` or the other flags that weaken the process.
const SAFE_PERSONALITIES: [u32; 5] = [0, 0x0008, 0x0002_0000, 0x0002_0008, 0xffff_ffff];

/// A binary search over `runs`: call numbers from each run's first one up
/// to the next run's share its verdict, and the first run starts at 0.
///
/// The kernel converts and checks the whole program, then runs it once per
/// call number to find the calls whose verdict does not depend on their
/// arguments, when the filter is installed: at every cold start. Runs keep
/// the program to about 200 instructions and each number's walk to a few:
/// installing it took 65 us here, against 300 us for the same list checked
/// one call after another, 190 us for a search over single calls, and 90 us
/// for the deny list it replaced. The hot path of kernels without that
/// cache stays short too.
fn search(runs: &[(u32, u32)]) -> Vec<sock_filter> {
    if let [(_, verdict)] = runs {
        return vec![stmt(RET, *verdict)];
    }
    let (low, high) = runs.split_at(runs.len() / 2);
    let low = search(low);
    let mut block = Vec::with_capacity(low.len() + 2);
    // Numbers from the upper half's first one skip the lower half; a jump's
    // own offsets reach 255 instructions, a JA further.
    match u8::try_from(low.len()) {
        Ok(skip) => block.push(jump(JGE, high[0].0, skip, 0)),
        Err(_) => block.extend([jump(JGE, high[0].0, 0, 1), stmt(JA, low.len() as u32)]),
    }
    block.extend(low);
    block.extend(search(high));
    block
}

/// The verdict of every call number as runs for [`search`]: allowed, `EPERM`
/// for [`DENIED`], `ENOSYS` for every number on no list, up to any the
/// kernel may add.
fn runs() -> Vec<(u32, u32)> {
    let enosys = RET_ERRNO | libc::ENOSYS as u32;
    let eperm = RET_ERRNO | libc::EPERM as u32;
    let highest = ALLOWED.iter().chain(DENIED).copied().max().unwrap_or(0) as u32;
    let verdict = |nr: u32| {
        if ALLOWED.contains(&c_long::from(nr)) {
            RET_ALLOW
        } else if DENIED.contains(&c_long::from(nr)) {
            eperm
        } else {
            enosys
        }
    };
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for nr in 0..=highest + 1 {
        let v = if nr > highest { enosys } else { verdict(nr) };
        if runs.last().is_none_or(|&(_, last)| last != v) {
            runs.push((nr, v));
        }
    }
    runs
}

/// The whole filter program, built once per process: every sandbox shares it.
pub(crate) fn filter() -> &'static [sock_filter] {
    static PROGRAM: std::sync::OnceLock<Vec<sock_filter>> = std::sync::OnceLock::new();
    PROGRAM.get_or_init(program)
}

fn program() -> Vec<sock_filter> {
    let mut program = vec![
        stmt(LD_W_ABS, DATA_ARCH),
        // Another architecture's calls would be numbered differently: kill.
        jump(JEQ, AUDIT_ARCH, 1, 0),
        stmt(RET, RET_KILL_PROCESS),
        stmt(LD_W_ABS, DATA_NR),
    ];
    #[cfg(target_arch = "x86_64")]
    program.extend([
        jump(JGE, X32_SYSCALL_BIT, 0, 1),
        stmt(RET, RET_ERRNO | libc::EPERM as u32),
    ]);
    program.extend([
        jump(JEQ, libc::SYS_clone3 as u32, 0, 1),
        stmt(RET, RET_ERRNO | libc::ENOSYS as u32),
    ]);
    // Each block below returns for its call and leaves the accumulator
    // holding the call's number for every other.
    program.extend(refuse_namespace_flags(libc::SYS_clone));
    program.extend(refuse_namespace_flags(libc::SYS_unshare));
    program.extend(socket_families());
    program.extend(allow_values(
        libc::SYS_socketpair,
        DATA_ARG0_LOW,
        &[libc::AF_UNIX as u32],
    ));
    program.extend(allow_values(libc::SYS_personality, DATA_ARG0_LOW, &SAFE_PERSONALITIES));
    program.extend(search(&runs()));
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the filter program on one system call, as the kernel would.
    fn evaluate(program: &[sock_filter], arch: u32, nr: u32, arg0: u64) -> u32 {
        evaluate_args(program, arch, nr, [arg0, 0, 0])
    }

    fn evaluate_args(program: &[sock_filter], arch: u32, nr: u32, args: [u64; 3]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, arg) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = program[pc];
            match ins.code {
                LD_W_ABS => acc = u32::from_ne_bytes(data[ins.k as usize..ins.k as usize + 4].try_into().unwrap()),
                RET => return ins.k,
                JA => pc += ins.k as usize,
                code => {
                    let taken = match code {
                        JEQ => acc == ins.k,
                        JSET => acc & ins.k != 0,
                        _ => acc >= ins.k,
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
            }
            pc += 1;
        }
    }

    fn verdict(nr: c_long, arg0: u64) -> u32 {
        evaluate(filter(), AUDIT_ARCH, nr as u32, arg0)
    }

    const EPERM: u32 = RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

    #[test]
    fn every_allowed_call_is_allowed_wherever_the_search_puts_it() {
        assert!(filter().len() < 400, "a short program: {} instructions", filter().len());
        for &nr in ALLOWED {
            assert_eq!(verdict(nr, 0), RET_ALLOW, "syscall {nr}");
        }
    }

    /// The calls whose verdict depends on their arguments.
    const SPECIAL: [libc::c_long; 6] = [
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_unshare,
        libc::SYS_socket,
        libc::SYS_socketpair,
        libc::SYS_personality,
    ];

    #[test]
    fn every_number_gets_its_list_s_verdict() {
        let special = SPECIAL;
        for nr in (0..1024).filter(|nr| !special.contains(nr)) {
            let expected = if ALLOWED.contains(&nr) {
                RET_ALLOW
            } else if DENIED.contains(&nr) {
                EPERM
            } else {
                ENOSYS
            };
            assert_eq!(verdict(nr, 0), expected, "syscall {nr}");
        }
    }

    #[test]
    fn calls_on_no_list_answer_enosys() {
        // 1000: not a call yet; whatever Linux numbers it will be refused until reviewed.
        assert_eq!(verdict(1000, 0), ENOSYS);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(verdict(libc::SYS_modify_ldt, 0), ENOSYS);
        assert_eq!(
            verdict(libc::SYS_io_uring_setup, 0),
            EPERM,
            "a named refusal stays EPERM"
        );
    }

    #[test]
    fn no_call_is_on_both_lists_or_decided_twice() {
        let special = SPECIAL;
        for nr in ALLOWED {
            assert!(!DENIED.contains(nr) && !special.contains(nr), "syscall {nr}");
        }
        for nr in DENIED {
            assert!(!special.contains(nr), "syscall {nr}");
        }
    }

    #[test]
    fn sockets_of_four_families_only_and_netlink_for_routes() {
        let socket = |domain: i32, protocol: i32| {
            evaluate_args(
                filter(),
                AUDIT_ARCH,
                libc::SYS_socket as u32,
                [domain as u64, libc::SOCK_STREAM as u64, protocol as u64],
            )
        };
        for domain in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
            assert_eq!(socket(domain, 0), RET_ALLOW, "family {domain}");
        }
        assert_eq!(socket(libc::AF_NETLINK, 0), RET_ALLOW, "NETLINK_ROUTE");
        assert_eq!(socket(libc::AF_NETLINK, libc::NETLINK_KOBJECT_UEVENT), EPERM);
        for domain in [libc::AF_VSOCK, libc::AF_ALG, libc::AF_PACKET, libc::AF_BLUETOOTH, 46] {
            assert_eq!(socket(domain, 0), EPERM, "family {domain}");
        }
        assert_eq!(verdict(libc::SYS_socketpair, libc::AF_UNIX as u64), RET_ALLOW);
        assert_eq!(verdict(libc::SYS_socketpair, libc::AF_VSOCK as u64), EPERM);
    }

    #[test]
    fn personality_only_with_safe_values() {
        for value in SAFE_PERSONALITIES {
            assert_eq!(
                verdict(libc::SYS_personality, u64::from(value)),
                RET_ALLOW,
                "{value:#x}"
            );
        }
        // ADDR_NO_RANDOMIZE turns address space randomisation off; READ_IMPLIES_EXEC.
        for value in [0x0004_0000u64, 0x0040_0000] {
            assert_eq!(verdict(libc::SYS_personality, value), EPERM, "{value:#x}");
        }
    }

    #[test]
    fn ordinary_calls_are_allowed() {
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_futex,
        ] {
            assert_eq!(verdict(nr, 0), RET_ALLOW);
        }
    }

    #[test]
    fn denied_calls_get_eperm() {
        for &nr in DENIED {
            assert_eq!(verdict(nr, 0), RET_ERRNO | libc::EPERM as u32, "syscall {nr}");
        }
    }

    #[test]
    fn clone_is_checked_for_namespace_flags() {
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(verdict(libc::SYS_clone, thread), RET_ALLOW);
        assert_eq!(verdict(libc::SYS_clone, libc::SIGCHLD as u64), RET_ALLOW);
        assert_eq!(
            verdict(libc::SYS_clone, libc::CLONE_NEWUSER as u64),
            RET_ERRNO | libc::EPERM as u32
        );
        assert_eq!(
            verdict(libc::SYS_unshare, libc::CLONE_NEWNET as u64),
            RET_ERRNO | libc::EPERM as u32
        );
        assert_eq!(verdict(libc::SYS_unshare, libc::CLONE_FILES as u64), RET_ALLOW);
        assert_eq!(verdict(libc::SYS_clone3, 0), RET_ERRNO | libc::ENOSYS as u32);
    }

    #[test]
    fn other_architectures_are_killed() {
        assert_eq!(
            evaluate(filter(), 0x4000_0003, libc::SYS_read as u32, 0),
            RET_KILL_PROCESS
        );
    }
}
