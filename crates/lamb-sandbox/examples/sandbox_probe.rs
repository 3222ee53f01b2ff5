//! A probe that the root tests run inside sandboxes: each subcommand tries one
//! thing a hostile function might, and prints what the kernel answered.
//! Not part of lamb; built by `cargo test` as an example.

use std::io::Write;

fn errno_name() -> String {
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::EROFS) => "EROFS".into(),
        Some(libc::EAGAIN) => "EAGAIN".into(),
        Some(libc::ENOSPC) => "ENOSPC".into(),
        Some(libc::EINVAL) => "EINVAL".into(),
        Some(libc::ESRCH) => "ESRCH".into(),
        Some(libc::ENOSYS) => "ENOSYS".into(),
        _ => format!("{err}"),
    }
}

/// Prints `ok` when the call succeeded, else the errno's name.
fn report(ret: libc::c_long) {
    if ret < 0 {
        println!("{}", errno_name());
    } else {
        println!("ok");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    match arg(0).as_str() {
        "raw-socket" => {
            // SAFETY: plain socket(2) call.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
            report(fd as libc::c_long);
        }
        "packet-socket" => {
            // SAFETY: plain socket(2) call.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            report(fd as libc::c_long);
        }
        "mount" => {
            // SAFETY: mount(2) with static C strings.
            let ret = unsafe {
                libc::mount(
                    c"none".as_ptr(),
                    c"/tmp".as_ptr(),
                    c"tmpfs".as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            report(ret as libc::c_long);
        }
        "unshare" => {
            // SAFETY: unshare(2) with flag constants.
            let ret = unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWUSER) };
            report(ret as libc::c_long);
        }
        "unshare-ns" => {
            // SAFETY: unshare(2) with a flag constant.
            let ret = unsafe { libc::unshare(libc::CLONE_NEWNS) };
            report(ret as libc::c_long);
        }
        "setuid0" => {
            // SAFETY: setuid(2) with an integer.
            let ret = unsafe { libc::setuid(0) };
            report(ret as libc::c_long);
        }
        "chroot" => {
            // SAFETY: chroot(2) with a static C string.
            let ret = unsafe { libc::chroot(c"/tmp".as_ptr()) };
            report(ret as libc::c_long);
        }
        "write" => match std::fs::write(arg(1), b"x") {
            Ok(()) => println!("ok"),
            Err(e) => println!("{}", name_of(&e)),
        },
        "hog" => hog(arg(1).parse().unwrap_or(1024)),
        "denied-syscalls" => denied_syscalls(),
        "allow-list" => allow_list(),
        "peek" => peek(arg(1).parse().unwrap_or(1)),
        "kill" => {
            // SAFETY: kill(2) with integers.
            let ret = unsafe { libc::kill(arg(1).parse().unwrap_or(1), libc::SIGKILL) };
            report(ret as libc::c_long);
        }
        "fork-bomb" => fork_bomb(),
        "ids" => {
            // SAFETY: getters with no arguments.
            let (uid, euid, gid) = unsafe { (libc::getuid(), libc::geteuid(), libc::getgid()) };
            println!("{uid} {euid} {gid}");
        }
        other => {
            eprintln!("unknown probe {other:?}");
            std::process::exit(2);
        }
    }
}

fn name_of(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EROFS) => "EROFS".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::ENOSPC) => "ENOSPC".into(),
        _ => e.to_string(),
    }
}

/// Calls every system call of the seccomp `DENIED` list with zero arguments and
/// prints those that did not fail with EPERM; then the two special cases.
fn denied_syscalls() {
    let mut allowed = Vec::new();
    for &nr in lamb_sandbox::seccomp::DENIED {
        // SAFETY: the filter answers before the kernel looks at the (zero) arguments.
        let ret = unsafe { libc::syscall(nr, 0, 0, 0, 0, 0, 0) };
        let errno = std::io::Error::last_os_error().raw_os_error();
        if ret >= 0 || errno != Some(libc::EPERM) {
            allowed.push(nr.to_string());
        }
    }
    println!("not refused: [{}]", allowed.join(","));
    // SAFETY: clone3 with a NULL argument: the filter answers ENOSYS first.
    let ret = unsafe { libc::syscall(libc::SYS_clone3, 0, 0) };
    println!("clone3: {}", if ret < 0 { errno_name() } else { "ok".into() });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let seccomp = status
        .lines()
        .find(|l| l.starts_with("Seccomp:"))
        .unwrap_or("Seccomp: ?");
    println!("{}", seccomp.split_whitespace().collect::<Vec<_>>().join(" "));
}

/// `label: ok` or `label: ERRNO` for one call's return, closing a descriptor it made.
fn labelled(label: &str, ret: libc::c_long) {
    let answer = if ret < 0 { errno_name() } else { "ok".into() };
    println!("{label}: {answer}");
    if ret > 2 {
        // SAFETY: closing the descriptor the call just returned.
        unsafe { libc::close(ret as libc::c_int) };
    }
}

/// The calls the allow list decides by their arguments, and one it does not list.
fn allow_list() {
    // SAFETY: socket(2), socketpair(2) and personality(2) with integers and a local array.
    unsafe {
        let socket = |domain, kind, protocol| libc::socket(domain, kind, protocol) as libc::c_long;
        labelled("vsock", socket(libc::AF_VSOCK, libc::SOCK_STREAM, 0));
        labelled("alg", socket(libc::AF_ALG, libc::SOCK_SEQPACKET, 0));
        labelled("packet", socket(libc::AF_PACKET, libc::SOCK_DGRAM, 0));
        labelled(
            "uevent",
            socket(libc::AF_NETLINK, libc::SOCK_DGRAM, libc::NETLINK_KOBJECT_UEVENT),
        );
        labelled("route", socket(libc::AF_NETLINK, libc::SOCK_DGRAM, libc::NETLINK_ROUTE));
        labelled("unix", socket(libc::AF_UNIX, libc::SOCK_STREAM, 0));
        labelled("inet", socket(libc::AF_INET, libc::SOCK_STREAM, 0));
        labelled("inet6", socket(libc::AF_INET6, libc::SOCK_DGRAM, 0));
        let mut pair = [-1; 2];
        let ret = libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, pair.as_mut_ptr());
        labelled("socketpair-unix", ret as libc::c_long);
        let ret = libc::socketpair(libc::AF_VSOCK, libc::SOCK_STREAM, 0, pair.as_mut_ptr());
        labelled("socketpair-vsock", ret as libc::c_long);
        labelled("personality-query", libc::personality(0xffff_ffff) as libc::c_long);
        labelled("personality-linux", libc::personality(0) as libc::c_long);
        // ADDR_NO_RANDOMIZE: turns address space randomisation off for what this process runs.
        labelled("personality-no-aslr", libc::personality(0x0040000) as libc::c_long);
        libc::personality(0);
        // modify_ldt(0: read, buffer, size): a call lamb does not list; Docker allows it.
        let mut ldt = [0u8; 16];
        let ret = libc::syscall(libc::SYS_modify_ldt, 0, ldt.as_mut_ptr(), ldt.len());
        labelled("unlisted", ret);
    }
}

/// Tries to read another process's memory.
fn peek(pid: i32) {
    let mut buf = [0u8; 16];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: 0x400000 as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: the local iovec points at our own buffer; the remote one is only read by the kernel.
    let ret = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if ret < 0 {
        let name = match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::ESRCH) => "ESRCH".to_string(),
            Some(libc::EPERM) => "EPERM".to_string(),
            _ => errno_name(),
        };
        println!("{name}");
    } else {
        println!("ok");
    }
}

/// Touches `mb` megabytes of anonymous memory, printing progress every 16 MB.
fn hog(mb: usize) {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    for i in 0..mb {
        chunks.push(vec![1u8; 1 << 20]);
        if i % 16 == 0 {
            println!("{i}");
            let _ = std::io::stdout().flush();
        }
    }
    println!("survived {}", chunks.len());
}

/// Forks until the kernel refuses, then reports how many children it got.
fn fork_bomb() {
    let mut children = 0u32;
    loop {
        // SAFETY: the child only pauses until it is killed.
        match unsafe { libc::fork() } {
            0 => loop {
                // SAFETY: pause(2) has no arguments.
                unsafe { libc::pause() };
            },
            pid if pid > 0 => children += 1,
            _ => {
                println!("{children} {}", errno_name());
                return;
            }
        }
    }
}
