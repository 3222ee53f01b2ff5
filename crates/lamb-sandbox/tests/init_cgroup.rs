//! Root tests of the split layout (`SandboxSpec::init_cgroup`): PID 1 in a
//! CPU group of its own, the processes it starts in the function's group,
//! which carries the quota. A busybox shell stands in for `lamb init`: it
//! starts a child that writes `0` to the descriptor it was given (the
//! function group's `cgroup.procs`) before it `exec`s, as init does.

mod common;

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{sandboxer, shell};
use lamb_sandbox::cgroup::{FUNCTION_GROUP, INIT_GROUP};
use lamb_sandbox::{CgroupVersion, Limits, Sandbox, SandboxIo, SandboxSpec};

/// The sandbox's cgroup directory carrying the CPU controller.
fn cpu_dir(sandbox: &Sandbox) -> PathBuf {
    match sandboxer().cgroup_version() {
        CgroupVersion::V1 => PathBuf::from("/sys/fs/cgroup/cpu/lamb-test").join(sandbox.id()),
        CgroupVersion::V2 => PathBuf::from("/sys/fs/cgroup/lamb-test").join(sandbox.id()),
    }
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

fn pids(dir: PathBuf) -> Vec<i32> {
    read(dir.join("cgroup.procs"))
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// A 128 MB split sandbox running `script` as PID 1; the function group's
/// `cgroup.procs` is its descriptor 3. Its output goes to the returned file.
fn split(script: &str) -> (Sandbox, std::fs::File) {
    let mut s: SandboxSpec = shell(script);
    s.limits = Limits::for_memory_mb(128);
    s.init_cgroup = true;
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write),
        ..SandboxIo::default()
    };
    let sandbox = sandboxer().create(&s, io).unwrap();
    (sandbox, std::fs::File::from(read))
}

/// Reads `out` until it holds `line` (the sandbox says when it is ready).
fn wait_for_line(out: &mut std::fs::File, line: &str) -> String {
    let mut seen = String::new();
    let mut buf = [0u8; 512];
    while !seen.lines().any(|l| l == line) {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0, "the sandbox ended before `{line}`: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    seen
}

/// The child PID 1 starts: joins the function group, drops the descriptor, then runs `then`.
fn child(then: &str) -> String {
    format!("( echo 0 >&3 && exec 3>&- && {then} ) &")
}

#[test]
fn init_and_its_children_sit_in_their_own_groups_and_the_quota_is_the_functions() {
    require_root!();
    let (sandbox, mut out) = split(&format!(
        "{} exec 3>&-; echo started; sleep 30",
        child("echo joined; exec sleep 30")
    ));
    let seen = wait_for_line(&mut out, "joined");
    assert!(seen.contains("started"), "{seen}");
    let dir = cpu_dir(&sandbox);
    assert_eq!(pids(dir.join(INIT_GROUP)), [sandbox.pid()], "PID 1 in init's group");
    let function = pids(dir.join(FUNCTION_GROUP));
    assert_eq!(function.len(), 1, "the child in the function's group: {function:?}");
    assert_ne!(function[0], sandbox.pid());
    match sandboxer().cgroup_version() {
        CgroupVersion::V1 => {
            assert!(
                pids(dir.clone()).is_empty(),
                "no process left in the sandbox's own cpu group"
            );
            assert_eq!(read(dir.join(FUNCTION_GROUP).join("cpu.cfs_quota_us")), "7235");
            assert_eq!(read(dir.join(INIT_GROUP).join("cpu.cfs_quota_us")), "100000");
            assert_eq!(read(dir.join("cpu.cfs_quota_us")), "-1", "no quota above both");
            assert_eq!(read(dir.join("cpu.shares")), "71", "the weight where sandboxes compete");
            // Memory, pids and the freezer keep the whole sandbox in one cgroup.
            let memory = PathBuf::from("/sys/fs/cgroup/memory/lamb-test").join(sandbox.id());
            assert_eq!(pids(memory).len(), 2);
        }
        CgroupVersion::V2 => {
            assert!(pids(dir.clone()).is_empty(), "v2: no internal process");
            assert_eq!(read(dir.join(FUNCTION_GROUP).join("cpu.max")), "7235 100000");
            assert_eq!(read(dir.join(INIT_GROUP).join("cpu.max")), "100000 100000");
            assert_eq!(read(dir.join("cpu.weight")), "7");
        }
    }
    let mut procs = sandboxer().cgroups().procs(sandbox.id()).unwrap();
    procs.sort();
    assert_eq!(procs.len(), 2, "the sandbox's processes are both groups': {procs:?}");
    assert_eq!(sandbox.stats().unwrap().pids_current, 2);
    sandbox.destroy().unwrap();
    assert!(!dir.exists(), "the sandbox's cgroup and its groups are removed");
}

#[test]
fn a_function_cannot_leave_its_group_nor_write_any_cgroup_file() {
    require_root!();
    // The child holds no descriptor of a cgroup file once it joined; it
    // tries init's through /proc (a new open, checked against its own
    // credentials), mounting a cgroup file system, and finding one mounted.
    let attempts = [
        "echo 0 > /proc/1/fd/3 && echo WROTE-INIT-FD",
        "mkdir -p /tmp/cg && mount -t cgroup2 none /tmp/cg && echo MOUNTED-V2",
        "mount -t cgroup -o cpu none /tmp/cg && echo MOUNTED-V1",
        "grep -q cgroup /proc/self/mountinfo && echo CGROUPFS-VISIBLE",
    ]
    .join("; ");
    let (sandbox, mut out) = split(&format!(
        "{} sleep 30",
        child(&format!("{attempts}; echo done; exec sleep 30"))
    ));
    let seen = wait_for_line(&mut out, "done");
    for escaped in ["WROTE-INIT-FD", "MOUNTED-V2", "MOUNTED-V1", "CGROUPFS-VISIBLE"] {
        assert!(!seen.contains(escaped), "{escaped}: {seen}");
    }
    let dir = cpu_dir(&sandbox);
    assert_eq!(
        pids(dir.join(INIT_GROUP)),
        [sandbox.pid()],
        "only PID 1 in init's group"
    );
    assert_eq!(
        pids(dir.join(FUNCTION_GROUP)).len(),
        1,
        "the child stayed in the function's group"
    );
    sandbox.destroy().unwrap();
}

#[test]
fn init_cpu_is_not_charged_to_the_functions_quota() {
    require_root!();
    // PID 1 works (more than the 128 MB quota's 7.2 ms of a period) while
    // its child sleeps: init's group counts the periods it ran in, and the
    // function's group, whose quota the work would have spent, is never
    // throttled. (Per-group CPU time is in v2's cpu.stat but in v1's
    // cpuacct, a hierarchy of its own on some machines: PID 1's own counts
    // come from /proc instead.)
    let (sandbox, mut out) = split(&format!(
        "{} i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; echo worked; sleep 30",
        child("exec sleep 30")
    ));
    wait_for_line(&mut out, "worked");
    let dir = cpu_dir(&sandbox);
    let stat = |group: &str, key: &str| -> u64 {
        let text = read(dir.join(group).join("cpu.stat"));
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {text}"))
    };
    let ticks = init_cpu_ticks(sandbox.pid());
    let tick_us = 1_000_000 / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as u64;
    assert!(
        ticks * tick_us > 7_235,
        "PID 1 worked more than a period's quota: {ticks} ticks"
    );
    assert!(stat(INIT_GROUP, "nr_periods") >= 1, "init's group counted its work");
    assert_eq!(
        stat(FUNCTION_GROUP, "nr_throttled"),
        0,
        "the function's group was never throttled"
    );
    sandbox.destroy().unwrap();
}

/// User and system CPU of `pid`, in clock ticks (`/proc/PID/stat` fields 14 and 15).
fn init_cpu_ticks(pid: i32) -> u64 {
    let stat = read(PathBuf::from(format!("/proc/{pid}/stat")));
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn a_split_sandbox_frozen_or_left_behind_is_killed_whole() {
    require_root!();
    let (sandbox, mut out) = split(&format!(
        "{} echo started; sleep 30",
        child("echo joined; exec sleep 30")
    ));
    wait_for_line(&mut out, "joined");
    let id = sandbox.id().to_owned();
    sandboxer().cgroups().freeze(&id).unwrap();
    // The sweep's kill and removal, as after a daemon's kill -9.
    sandboxer().cgroups().kill_all(&id).unwrap();
    let start = Instant::now();
    while !sandboxer().cgroups().procs(&id).unwrap().is_empty() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        sandboxer().cgroups().procs(&id).unwrap().is_empty(),
        "every process of both groups is gone"
    );
    sandboxer().cgroups().remove(&id).unwrap();
    assert!(
        !sandboxer().cgroups().list().unwrap().contains(&id),
        "nested groups removed"
    );
    drop(sandbox);
}
