//! The seccomp filter every sandboxed process runs under: a deny list of the
//! system calls a function never needs and that widen the kernel's attack
//! surface (mounts, namespaces, keyrings, bpf, perf, modules, kexec, clocks,
//! swap), in the spirit of the container engines' default profiles.
//!
//! The filter is a classic BPF program built here, in the parent, and
//! installed by the child as its last step before `execve` (it would refuse
//! the child's own mounts otherwise). Denied calls fail with `EPERM`, so
//! programs see an ordinary permission error; `clone3` fails with `ENOSYS`
//! because its flags live in memory a filter cannot read, and the C
//! libraries then fall back to `clone`, whose flags the filter checks.

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

/// System calls refused outright with `EPERM`.
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
#[cfg(target_arch = "x86_64")]
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
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

/// The whole filter program.
pub(crate) fn filter() -> Vec<sock_filter> {
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
    for &nr in DENIED {
        program.push(jump(JEQ, nr as u32, 0, 1));
        program.push(stmt(RET, RET_ERRNO | libc::EPERM as u32));
    }
    program.extend([
        jump(JEQ, libc::SYS_clone3 as u32, 0, 1),
        stmt(RET, RET_ERRNO | libc::ENOSYS as u32),
    ]);
    program.extend(refuse_namespace_flags(libc::SYS_clone));
    program.extend(refuse_namespace_flags(libc::SYS_unshare));
    program.push(stmt(RET, RET_ALLOW));
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the filter program on one system call, as the kernel would.
    fn evaluate(program: &[sock_filter], arch: u32, nr: u32, arg0: u64) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[16..24].copy_from_slice(&arg0.to_ne_bytes());
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = program[pc];
            match ins.code {
                LD_W_ABS => acc = u32::from_ne_bytes(data[ins.k as usize..ins.k as usize + 4].try_into().unwrap()),
                RET => return ins.k,
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
        evaluate(&filter(), AUDIT_ARCH, nr as u32, arg0)
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
            evaluate(&filter(), 0x4000_0003, libc::SYS_read as u32, 0),
            RET_KILL_PROCESS
        );
    }
}
