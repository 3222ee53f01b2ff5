//! Root tests of the cgroup side: memory, pids and CPU limits, freeze and
//! thaw, stats, and killing every process of a sandbox.

mod common;

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{run, sandboxer, shell, spec};
use lamb_sandbox::{CgroupVersion, CpuLimit, Exit, Limits, SandboxIo};

#[test]
fn a_memory_hog_is_killed_at_its_limit_and_reported_oom() {
    require_root!();
    let mut s = spec(&["/bin/probe", "hog", "512"]);
    s.limits = Limits::for_memory_mb(128);
    let out = run(&s);
    assert_eq!(out.exit, Exit::Signal(libc::SIGKILL), "{}", out.stdout);
    assert!(!out.stdout.contains("survived"), "{}", out.stdout);
    assert!(out.stats.oom_kills >= 1, "the OOM kill is reported: {:?}", out.stats);
    assert!(
        out.stats.memory_peak_bytes <= 128 << 20,
        "peak above the limit: {:?}",
        out.stats
    );
    assert!(
        out.stats.memory_peak_bytes >= 100 << 20,
        "peak too low: {:?}",
        out.stats
    );
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit_and_the_host_stays_healthy() {
    require_root!();
    let mut s = spec(&["/bin/probe", "fork-bomb"]);
    s.limits.pids = 64;
    let out = run(&s);
    let mut words = out.stdout.split_whitespace();
    let children: u64 = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("EAGAIN"), "{}", out.stdout);
    assert!(children < 64, "{children} children with a limit of 64");
    let host = std::process::Command::new("true").status().unwrap();
    assert!(host.success(), "the host can still start processes");
}

#[test]
fn peak_memory_and_cpu_time_are_read_back() {
    require_root!();
    let out = run(&shell(
        "dd if=/dev/zero of=/tmp/blob bs=1M count=24 2>/dev/null; i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
    ));
    assert_eq!(out.exit, Exit::Code(0));
    assert!(
        out.stats.memory_peak_bytes >= 24 << 20,
        "tmpfs pages count: {:?}",
        out.stats
    );
    assert!(out.stats.cpu_usage_ns > 1_000_000, "{:?}", out.stats);
}

#[test]
fn cpu_and_pids_limits_reach_the_cgroup() {
    require_root!();
    let mut s = spec(&["/bin/sleep", "30"]);
    s.limits = Limits::for_memory_mb(1769);
    let sandbox = sandboxer().create(&s, SandboxIo::default()).unwrap();
    let read = |path: String| std::fs::read_to_string(path).unwrap().trim().to_string();
    match sandboxer().cgroup_version() {
        CgroupVersion::V1 => {
            let cpu = v1_dir("cpu", sandbox.id());
            assert_eq!(read(format!("{cpu}/cpu.cfs_quota_us")), "100000");
            assert_eq!(read(format!("{cpu}/cpu.cfs_period_us")), "100000");
            assert_eq!(read(format!("{}/pids.max", v1_dir("pids", sandbox.id()))), "1024");
            let memory = v1_dir("memory", sandbox.id());
            assert_eq!(
                read(format!("{memory}/memory.limit_in_bytes")),
                (1769u64 << 20).to_string()
            );
        }
        CgroupVersion::V2 => {
            let dir = format!("/sys/fs/cgroup/lamb-test/{}", sandbox.id());
            assert_eq!(read(format!("{dir}/cpu.max")), "100000 100000");
            assert_eq!(read(format!("{dir}/pids.max")), "1024");
            assert_eq!(read(format!("{dir}/memory.swap.max")), "0");
        }
    }
    sandbox.destroy().unwrap();
}

#[test]
fn a_live_sandbox_s_cpu_quota_is_changed_in_its_cgroup() {
    require_root!();
    let mut s = spec(&["/bin/sleep", "30"]);
    s.limits = Limits::for_memory_mb(128);
    s.limits.cpu = CpuLimit::during_init(128);
    let sandbox = sandboxer().create(&s, SandboxIo::default()).unwrap();
    let quota = |id: &str| -> String {
        let read = |path: String| std::fs::read_to_string(path).unwrap().trim().to_string();
        match sandboxer().cgroup_version() {
            CgroupVersion::V1 => read(format!("{}/cpu.cfs_quota_us", v1_dir("cpu", id))),
            CgroupVersion::V2 => read(format!("/sys/fs/cgroup/lamb-test/{id}/cpu.max")),
        }
    };
    let full = quota(sandbox.id());
    assert!(full == "100000" || full == "100000 100000", "init's full core: {full}");
    sandbox.set_cpu(&CpuLimit::proportional_to_memory(128)).unwrap();
    let share = quota(sandbox.id());
    assert!(
        share == "7235" || share == "7235 100000",
        "the invocations' share: {share}"
    );
    sandbox.destroy().unwrap();
}

fn v1_dir(controller: &str, id: &str) -> String {
    format!("/sys/fs/cgroup/{controller}/lamb-test/{id}")
}

#[test]
fn freeze_stops_every_process_and_thaw_resumes_them() {
    require_root!();
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write),
        ..SandboxIo::default()
    };
    let s = shell("while true; do echo tick; sleep 0.01; done");
    let sandbox = sandboxer().create(&s, io).unwrap();
    let mut pipe = std::fs::File::from(read);
    nix::fcntl::fcntl(
        pipe.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    assert!(
        wait_for_output(&mut pipe, Duration::from_secs(5)) > 0,
        "ticks before the freeze"
    );

    sandbox.freeze().unwrap();
    drain(&mut pipe);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(drain(&mut pipe), 0, "a frozen sandbox prints nothing");

    sandbox.thaw().unwrap();
    assert!(
        wait_for_output(&mut pipe, Duration::from_secs(5)) > 0,
        "ticks after the thaw"
    );
    sandbox.destroy().unwrap();
}

fn drain(pipe: &mut std::fs::File) -> usize {
    let mut buf = [0u8; 4096];
    let mut total = 0;
    while let Ok(n) = pipe.read(&mut buf) {
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

fn wait_for_output(pipe: &mut std::fs::File, timeout: Duration) -> usize {
    let start = Instant::now();
    loop {
        let n = drain(pipe);
        if n > 0 || start.elapsed() > timeout {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn kill_all_reaches_every_process_even_when_frozen() {
    require_root!();
    let s = shell("sleep 100 & sleep 100 & sleep 100 & wait");
    let mut sandbox = sandboxer().create(&s, SandboxIo::default()).unwrap();
    let cgroups = sandboxer().cgroups();
    let start = Instant::now();
    while cgroups.procs(sandbox.id()).unwrap().len() < 4 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        cgroups.procs(sandbox.id()).unwrap().len(),
        4,
        "the shell and three sleeps"
    );
    sandbox.freeze().unwrap();
    cgroups.kill_all(sandbox.id()).unwrap();
    assert_eq!(sandbox.wait().unwrap(), Exit::Signal(libc::SIGKILL));
    assert!(cgroups.procs(sandbox.id()).unwrap().is_empty());
    sandbox.destroy().unwrap();
}

#[test]
fn the_cgroup_version_matches_the_machine() {
    require_root!();
    let expected = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    };
    assert_eq!(sandboxer().cgroup_version(), expected);
}
