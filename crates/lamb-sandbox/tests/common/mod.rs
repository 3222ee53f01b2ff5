//! Shared set-up of the root tests: a tiny rootfs (static busybox and the
//! probe example with its libraries), a sandboxer, and a way to run a spec and
//! collect what it printed.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use lamb_sandbox::{CgroupStats, Exit, ProcessSpec, SandboxIo, SandboxSpec, Sandboxer, SandboxerConfig, User};

pub const SANDBOX_USER: User = User { uid: 993, gid: 990 };

/// Root tests say so and stop when not run as root. On this project's
/// machines and in CI they run as root, every time.
#[macro_export]
macro_rules! require_root {
    () => {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("SKIPPED {}: needs root", module_path!());
            return;
        }
    };
}

const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "id", "hostname", "ip", "dd", "sleep", "touch", "mkdir", "wc", "grep", "head", "true",
    "seq", "ps", "df", "tail", "mount", "unshare", "sort", "tr",
];

fn tmp_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("lamb-sandbox-tests-{}", std::process::id()))
}

/// The probe example next to this test binary.
pub fn probe_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap();
    let probe = profile_dir.join("examples/sandbox_probe");
    assert!(
        probe.exists(),
        "{} is missing: cargo test builds examples",
        probe.display()
    );
    probe
}

/// A rootfs built once per test process: `/bin` with busybox and the probe.
pub fn rootfs() -> &'static Path {
    static ROOTFS: OnceLock<PathBuf> = OnceLock::new();
    ROOTFS.get_or_init(|| {
        let root = tmp_root().join("rootfs");
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        // LAMB_TEST_BUSYBOX lets a machine without Debian's busybox-static bring its own.
        let busybox = std::env::var("LAMB_TEST_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
        fs::copy(&busybox, root.join("bin/busybox")).expect("busybox-static is installed");
        for applet in BUSYBOX_APPLETS {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        let probe = probe_binary();
        fs::copy(&probe, root.join("bin/probe")).unwrap();
        copy_libraries(&probe, &root);
        // A setuid-root copy: nosuid and no_new_privs must make the bit useless.
        fs::copy(&probe, root.join("bin/suid-probe")).unwrap();
        fs::set_permissions(root.join("bin/suid-probe"), fs::Permissions::from_mode(0o4755)).unwrap();
        fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nsbx_user1051:x:993:990::/tmp:/bin/sh\n",
        )
        .unwrap();
        root
    })
}

/// Copies the shared libraries `binary` needs (as `ldd` lists them) into `root`.
fn copy_libraries(binary: &Path, root: &Path) {
    let out = Command::new("ldd").arg(binary).output().expect("ldd runs");
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let path = line.split_whitespace().find(|w| w.starts_with('/'));
        if let Some(lib) = path {
            let dest = root.join(lib.trim_start_matches('/'));
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(lib, &dest).unwrap();
        }
    }
}

/// A directory of test files, laid out from (relative path, content) pairs.
pub fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = tmp_root().join(name);
    let _ = fs::remove_dir_all(&dir);
    for (path, content) in files {
        let file = dir.join(path);
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, content).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn state_dir() -> PathBuf {
    tmp_root().join("state")
}

/// The sandboxer shared by the tests of one process, under the `lamb-test` cgroup.
pub fn sandboxer() -> &'static Sandboxer {
    static SANDBOXER: OnceLock<Sandboxer> = OnceLock::new();
    SANDBOXER.get_or_init(|| {
        Sandboxer::new(SandboxerConfig {
            state_dir: state_dir(),
            cgroup_parent: "lamb-test".into(),
            network: None,
        })
        .expect("sandboxer starts")
    })
}

/// A spec running `argv` in the test rootfs with Lambda's defaults.
pub fn spec(argv: &[&str]) -> SandboxSpec {
    let process = ProcessSpec {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
    };
    SandboxSpec::new(vec![rootfs().to_path_buf()], process, SANDBOX_USER)
}

/// A spec running a shell command.
pub fn shell(script: &str) -> SandboxSpec {
    spec(&["/bin/sh", "-c", script])
}

/// What a finished sandbox printed, how it ended, and its cgroup's numbers.
pub struct Output {
    pub exit: Exit,
    pub stdout: String,
    pub stats: CgroupStats,
}

/// Runs `spec` to completion with stdout and stderr captured together.
pub fn run(spec: &SandboxSpec) -> Output {
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write.try_clone().unwrap()),
        stderr: Some(write),
        ..SandboxIo::default()
    };
    let mut sandbox = sandboxer().create(spec, io).expect("sandbox starts");
    let stdout = read_all(read);
    let exit = sandbox.wait().unwrap();
    let stats = sandbox.stats().unwrap();
    sandbox.destroy().expect("sandbox is destroyed");
    Output { exit, stdout, stats }
}

pub fn read_all(fd: OwnedFd) -> String {
    let mut file = fs::File::from(fd);
    let mut out = String::new();
    file.read_to_string(&mut out).unwrap();
    out
}

/// Whether a process exists (a zombie counts).
pub fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Starts the ignored test `name` of this test binary as a child process:
/// the owner of sandboxes that a test then kills. Reads the PIDs the owner
/// prints (lines with one of `keys` before the number) until its `ready`.
pub fn start_owner(name: &str, env: &[(&str, &std::ffi::OsStr)], keys: &[&str]) -> (std::process::Child, Vec<i32>) {
    use std::io::BufRead;
    let mut owner = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pids = Vec::new();
    for line in std::io::BufReader::new(owner.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        // libtest prints its own "test ... " prefix on the first line.
        for key in keys {
            if let Some(pid) = line.split(key).nth(1) {
                pids.push(pid.trim().parse::<i32>().unwrap());
            }
        }
        if line.ends_with("ready") {
            break;
        }
    }
    (owner, pids)
}

/// Kills the owner with SIGKILL (no destructor runs) and reaps it.
pub fn kill_owner(mut owner: std::process::Child) {
    owner.kill().unwrap();
    owner.wait().unwrap();
}

/// Waits until none of `pids` is alive, `limit` at most (a hang guard);
/// whether they all went.
pub fn wait_gone(pids: &[i32], limit: std::time::Duration) -> bool {
    let start = std::time::Instant::now();
    while pids.iter().any(|&pid| alive(pid)) && start.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    pids.iter().all(|&pid| !alive(pid))
}

/// Mounts of this mount namespace at or below `dir`.
pub fn tmp_mounts_under(dir: &Path) -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4))
        .filter(|target| Path::new(target).starts_with(dir))
        .count()
}

/// Loop devices whose backing file is below `dir`.
pub fn loop_devices_under(dir: &Path) -> usize {
    let Ok(devices) = fs::read_dir("/sys/block") else {
        return 0;
    };
    devices
        .flatten()
        .filter_map(|d| fs::read_to_string(d.path().join("loop/backing_file")).ok())
        .filter(|file| Path::new(file.trim()).starts_with(dir))
        .count()
}

/// Waits until no loop device is backed by a file below `dir`, 10 s at most
/// (a hang guard): a loop device clears itself once the last mount of it,
/// in dead sandboxes' namespaces too, is gone.
pub fn wait_loop_devices_gone(dir: &Path) -> bool {
    let start = std::time::Instant::now();
    while loop_devices_under(dir) > 0 && start.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    loop_devices_under(dir) == 0
}
