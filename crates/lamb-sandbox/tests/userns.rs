//! Root tests of sandboxes in their own user namespace (`SandboxSpec::user_namespace`):
//! the ids inside and outside, capabilities, refused calls, `/dev`, limits
//! and clean-up. Each runs a real sandbox.

mod common;

use std::fs;

use common::{run, sandboxer, shell, spec, SANDBOX_USER};
use lamb_sandbox::{Exit, IdMapping, Limits, MountSpec, SandboxIo, SandboxSpec};

const MAPPING: IdMapping = IdMapping {
    outside_uid_base: 1_000_000,
    outside_gid_base: 1_000_000,
    size: IdMapping::MIN_SIZE,
};

fn in_userns(mut s: SandboxSpec) -> SandboxSpec {
    s.user_namespace = Some(MAPPING);
    s
}

/// The value of a `Name:` line of a `/proc/<pid>/status` text, fields joined by one space.
fn field(status: &str, name: &str) -> String {
    status
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("{name} missing: {status}"))
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_user_is_993_inside_and_unprivileged_outside() {
    require_root!();
    let s = in_userns(shell(
        "cat /proc/self/uid_map /proc/self/gid_map; cat /proc/self/status",
    ));
    let out = run(&s);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stdout);
    let maps: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps[0], ["0", "1000000", "65536"], "{}", out.stdout);
    assert_eq!(maps[1], ["0", "1000000", "65536"], "{}", out.stdout);
    assert_eq!(field(&out.stdout, "Uid:"), "993 993 993 993");
    assert_eq!(field(&out.stdout, "Gid:"), "990 990 990 990");
    assert_eq!(field(&out.stdout, "Groups:"), "990");
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(&out.stdout, set), "0000000000000000", "{set} not empty");
    }
    assert_eq!(field(&out.stdout, "NoNewPrivs:"), "1");
    assert!(
        field(&out.stdout, "Seccomp:") == "2",
        "the filter stays: {}",
        out.stdout
    );
}

#[test]
fn the_host_sees_the_outside_uid() {
    require_root!();
    let sandbox = sandboxer()
        .create(&in_userns(spec(&["/bin/sleep", "30"])), SandboxIo::default())
        .unwrap();
    let status = fs::read_to_string(format!("/proc/{}/status", sandbox.pid())).unwrap();
    let uid = MAPPING.outside_uid(SANDBOX_USER.uid);
    let gid = MAPPING.outside_gid_base + SANDBOX_USER.gid;
    assert_eq!(field(&status, "Uid:"), format!("{uid} {uid} {uid} {uid}"));
    assert_eq!(field(&status, "Gid:"), format!("{gid} {gid} {gid} {gid}"));
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(&status, set), "0000000000000000", "{set} not empty");
    }
    let own = fs::read_link("/proc/self/ns/user").unwrap();
    let theirs = fs::read_link(format!("/proc/{}/ns/user", sandbox.pid())).unwrap();
    assert_ne!(own, theirs, "the sandbox has its own user namespace");
    sandbox.destroy().unwrap();
}

#[test]
fn privileged_calls_still_fail() {
    require_root!();
    let s = in_userns(shell(
        "for p in mount unshare unshare-ns setuid0 chroot raw-socket packet-socket; do /bin/probe $p; done; /bin/suid-probe ids",
    ));
    let out = run(&s);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", out.stdout);
    for (probe, result) in [
        "mount",
        "unshare",
        "unshare-ns",
        "setuid0",
        "chroot",
        "raw-socket",
        "packet-socket",
    ]
    .iter()
    .zip(&lines)
    {
        assert_eq!(*result, "EPERM", "{probe} was allowed");
    }
    assert_eq!(lines[7], "993 993 990", "a setuid-root binary stays unprivileged");
}

#[test]
fn devices_work_and_the_root_stays_read_only() {
    require_root!();
    let code = common::tree("code-userns", &[("handler.txt", "code")]);
    let mut s = in_userns(shell(
        "echo gone > /dev/null && echo null-ok; head -c 16 /dev/zero | wc -c; head -c 16 /dev/urandom | wc -c; \
         head -c 16 /dev/random | wc -c; { echo x > /dev/full; } 2>/dev/null || echo full-refused; cat /var/task/handler.txt; echo; \
         touch /etc/x 2>/dev/null || echo root-read-only; touch /dev/x 2>/dev/null || echo dev-read-only; \
         echo tmp > /tmp/t && cat /tmp/t; ip link | grep -c 'lo:.*UP'",
    ));
    s.mounts.push(MountSpec::Bind {
        source: code,
        target: "/var/task".into(),
    });
    let out = run(&s);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    assert_eq!(
        lines,
        [
            "null-ok",
            "16",
            "16",
            "16",
            "full-refused",
            "code",
            "root-read-only",
            "dev-read-only",
            "tmp",
            "1"
        ],
        "{}",
        out.stdout
    );
}

#[test]
fn memory_and_pids_limits_still_apply() {
    require_root!();
    let mut hog = in_userns(spec(&["/bin/probe", "hog", "512"]));
    hog.limits = Limits::for_memory_mb(128);
    let out = run(&hog);
    assert_eq!(out.exit, Exit::Signal(libc::SIGKILL), "{}", out.stdout);
    assert!(out.stats.oom_kills >= 1, "{:?}", out.stats);
    assert!(out.stats.memory_peak_bytes <= 128 << 20, "{:?}", out.stats);

    let mut bomb = in_userns(spec(&["/bin/probe", "fork-bomb"]));
    bomb.limits.pids = 64;
    let out = run(&bomb);
    let mut words = out.stdout.split_whitespace();
    let children: u64 = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("EAGAIN"), "{}", out.stdout);
    assert!(children < 64, "{children} children with a limit of 64");
}

#[test]
fn destroy_leaves_nothing() {
    require_root!();
    // Each sandbox's /tmp is mounted on the host (the tests running beside
    // this one have theirs): those are counted by cleanup.rs, not here.
    let mounts = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|line| !line.contains("/lamb-tmp-"))
            .count()
    };
    sandboxer()
        .run(&in_userns(spec(&["/bin/true"])), SandboxIo::default())
        .unwrap();
    let mounts_before = mounts();
    let sandbox = sandboxer()
        .create(&in_userns(shell("sleep 100 & sleep 100 & wait")), SandboxIo::default())
        .unwrap();
    let (pid, id) = (sandbox.pid(), sandbox.id().to_string());
    assert!(sandboxer().cgroups().list().unwrap().contains(&id));
    // The shell forks its two children after the create returns: wait for them.
    let start = std::time::Instant::now();
    while sandboxer().cgroups().procs(&id).unwrap().len() < 3 && start.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        sandboxer().cgroups().procs(&id).unwrap().len(),
        3,
        "every process is in the cgroup"
    );
    sandbox.destroy().unwrap();
    // SAFETY: kill with signal 0 only checks for existence.
    assert!(unsafe { libc::kill(pid, 0) } != 0, "PID 1 of the sandbox is gone");
    assert!(!sandboxer().cgroups().list().unwrap().contains(&id), "cgroup removed");
    assert_eq!(mounts(), mounts_before, "no mount reached the host");
}

#[test]
fn the_default_path_has_no_user_namespace() {
    require_root!();
    let out = run(&shell("cat /proc/self/uid_map"));
    let map: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(map, ["0", "0", "4294967295"], "{}", out.stdout);
}
