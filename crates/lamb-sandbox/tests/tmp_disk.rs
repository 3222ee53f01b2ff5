//! Root tests of `/tmp` on disk: a file system of its own of the asked
//! size, full with `ENOSPC` rather than a kill, outside the memory limit,
//! and never shared with a later sandbox.

mod common;

use std::io::{BufRead, BufReader};

use common::{run, sandboxer, shell};
use lamb_sandbox::{CgroupVersion, Exit, Limits, Sandbox, SandboxIo, SandboxSpec};

/// The sandbox's memory cgroup's `memory.stat` value `key`, in bytes.
fn memory_stat(sandbox: &Sandbox, key: &str) -> u64 {
    let dir = match sandboxer().cgroup_version() {
        CgroupVersion::V1 => format!("/sys/fs/cgroup/memory/lamb-test/{}", sandbox.id()),
        CgroupVersion::V2 => format!("/sys/fs/cgroup/lamb-test/{}", sandbox.id()),
    };
    let stat = std::fs::read_to_string(format!("{dir}/memory.stat")).unwrap();
    stat.lines()
        .find_map(|line| line.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {stat}"))
}

/// Starts `spec` and reads what it prints up to a line `done`, leaving it running.
fn start_until_done(spec: &SandboxSpec) -> (Sandbox, Vec<String>) {
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write.try_clone().unwrap()),
        stderr: Some(write),
        ..SandboxIo::default()
    };
    let sandbox = sandboxer().create(spec, io).unwrap();
    let lines = BufReader::new(std::fs::File::from(read))
        .lines()
        .map(Result::unwrap)
        .take_while(|line| line != "done")
        .collect();
    (sandbox, lines)
}

#[test]
fn filling_tmp_gives_enospc_and_holds_no_memory() {
    require_root!();
    // 600 MB into Lambda's default 512 MB /tmp, at Lambda's smallest memory.
    let mut s =
        shell("dd if=/dev/zero of=/tmp/fill bs=1M count=600 2>&1 | grep -o 'No space left'; echo done; exec sleep 100");
    s.limits = Limits::for_memory_mb(128);
    let (sandbox, lines) = start_until_done(&s);
    assert_eq!(lines, ["No space left"], "the write fails with ENOSPC");
    let stats = sandbox.stats().unwrap();
    assert_eq!(stats.oom_kills, 0, "{stats:?}");
    assert_eq!(stats.pids_current, 1, "the sandbox lives on: {stats:?}");
    // A tmpfs's pages would be here, held until /tmp is emptied: 512 MB.
    let shmem = memory_stat(&sandbox, "shmem");
    assert!(shmem < 8 << 20, "{shmem} bytes of shared memory held");
    sandbox.destroy().unwrap();
}

#[test]
fn a_2048_mb_tmp_takes_1_5_gb_at_128_mb_of_memory() {
    require_root!();
    let mut s = shell("dd if=/dev/zero of=/tmp/big bs=1M count=1536 2>&1 | grep -c 'No space'; ls -l /tmp/big");
    s.limits = Limits::for_memory_mb(128);
    s.tmp_size_bytes = 2048 << 20;
    let out = run(&s);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stdout);
    assert_eq!(out.stats.oom_kills, 0, "{:?}", out.stats);
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("0"), "no ENOSPC: {}", out.stdout);
    let size: u64 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(size, 1536 << 20);
}

#[test]
fn tmp_is_an_ext4_of_the_asked_size_that_names_no_host_path() {
    require_root!();
    let mut s = shell("grep ' /tmp ' /proc/self/mountinfo; df -k /tmp | tail -n 1");
    s.tmp_size_bytes = 700 << 20;
    let out = run(&s);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stdout);
    let mut lines = out.stdout.lines();
    let mountinfo = lines.next().unwrap();
    assert!(mountinfo.contains(" - ext4 /dev/loop"), "{mountinfo}");
    assert!(mountinfo.contains("nosuid,nodev"), "{mountinfo}");
    let state = common::state_dir();
    assert!(!mountinfo.contains(state.to_str().unwrap()), "{mountinfo}");
    let kb = df_size_kb(lines.next().unwrap());
    // ext4's own structures take a little of the image, never more than it.
    assert!(kb <= 700 << 10 && kb > 680 << 10, "{kb} KB");
}

#[test]
fn a_new_sandbox_sees_an_empty_tmp() {
    require_root!();
    // The second sandbox takes a prepared image, the first one made now: both paths.
    let (first, lines) = start_until_done(&shell(
        "echo s3cr3t > /tmp/secret; mkdir /tmp/d; ls -A /tmp; echo done; exec sleep 100",
    ));
    assert_eq!(lines, ["d", "secret"]);
    first.destroy().unwrap();
    while sandboxer().prepare_tmp_disk().unwrap() {}
    assert!(sandboxer().prepared_tmp_disks() > 0);
    let out = run(&shell("ls -A /tmp; echo listed"));
    assert_eq!(out.stdout, "listed\n", "a former sandbox's files are gone");
    sandboxer().discard_prepared_tmp_disks();
}

#[test]
fn two_live_sandboxes_copied_from_one_template_share_no_file() {
    require_root!();
    // Both images are copies of the same 512 MB template, alive at once.
    let script = |name: &str| {
        shell(&format!(
            "ls -A /tmp; echo mine > /tmp/{name}; sync; echo done; exec sleep 100"
        ))
    };
    let (first, lines_a) = start_until_done(&script("a"));
    let (second, lines_b) = start_until_done(&script("b"));
    assert_eq!(lines_a, Vec::<String>::new(), "a's /tmp starts empty");
    assert_eq!(lines_b, Vec::<String>::new(), "b's /tmp starts empty, without a's file");
    let out = run(&shell("ls -A /tmp; echo listed"));
    assert_eq!(out.stdout, "listed\n", "a third sandbox sees neither file");
    first.destroy().unwrap();
    second.destroy().unwrap();
}

#[test]
fn a_swept_template_is_made_again() {
    require_root!();
    // A size no other test asks for: no image of it is ready, so this
    // create copies its template, which the sweep of a restart removed.
    let size: u64 = 333 << 20;
    let templates = common::state_dir().join("lamb-tmp-templates");
    let _ = std::fs::remove_dir_all(&templates);
    let mut s = shell("df -k /tmp | tail -n 1; echo x > /tmp/x && cat /tmp/x");
    s.tmp_size_bytes = size;
    let out = run(&s);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stdout);
    let mut lines = out.stdout.lines();
    let kb = df_size_kb(lines.next().unwrap());
    assert!(kb <= size >> 10 && kb > (size >> 10) * 9 / 10, "{kb} KB");
    assert_eq!(lines.next(), Some("x"));
    let template = templates.join(size.to_string());
    assert_eq!(
        std::fs::metadata(&template).unwrap().len(),
        size,
        "the template is back"
    );
}

/// The size column of a `df -k` line, in KB.
fn df_size_kb(line: &str) -> u64 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}
