//! `Sandboxer::bind_directory`: a directory bound into a running sandbox
//! from outside (a pre-initialised sandbox's code, docs/prewarm.md) is the
//! mount a plain start makes, as far as the sandbox can tell, and the host's
//! mount table never changes. Root tests.

mod common;

use std::io::Write;
use std::path::Path;

use common::{read_all, sandboxer, shell, tree};
use lamb_sandbox::{MountSpec, SandboxIo, SandboxSpec};

const SCRIPT: &str = "grep ' /var/task ' /proc/self/mountinfo; cat /var/task/handler.txt; echo; \
                      echo x > /var/task/x; ls /var/task";

/// A `mountinfo` line without what differs between any two mounts: the
/// mount and parent ids, the anonymous device number, and the descriptor
/// numbers naming the layers. Other lines as they are.
fn normalized(line: &str) -> String {
    if !line.contains(" - ") {
        return line.to_owned();
    }
    let fields: Vec<&str> = line.split(' ').skip(3).collect();
    let mut out = fields.join(" ");
    while let Some(at) = out.find("/proc/self/fd/") {
        let digits = out[at + 14..].chars().take_while(char::is_ascii_digit).count();
        out.replace_range(at..at + 14 + digits, "FD");
    }
    out
}

/// A layer with an empty `/var/task`, of its own: `tree` makes a named
/// directory afresh, and the tests of this file run at once, so a shared
/// name would be removed under another test's sandbox.
fn task_mount_point() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    tree(&format!("task-mount-point-{n}"), &[("var/task/.keep", "")])
}

/// A spec whose root has an empty `/var/task` and nothing mounted there.
fn waiting_spec(script: &str) -> SandboxSpec {
    let mut s = shell(&format!("read go; {script}"));
    s.rootfs_layers.push(task_mount_point());
    s
}

/// Runs `spec`, binding `code` at /var/task once it runs; its output.
fn run_bound_later(spec: &SandboxSpec, code: &Path, target: &Path) -> (lamb_sandbox::Result<()>, String) {
    let (out_read, out_write) = nix::unistd::pipe().unwrap();
    let (in_read, in_write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdin: Some(in_read),
        stdout: Some(out_write.try_clone().unwrap()),
        stderr: Some(out_write),
        ..SandboxIo::default()
    };
    let mut sandbox = sandboxer().create(spec, io).expect("sandbox starts");
    let bound = sandboxer().bind_directory(&sandbox, code, target);
    std::fs::File::from(in_write).write_all(b"go\n").unwrap();
    let output = read_all(out_read);
    sandbox.wait().unwrap();
    sandbox.destroy().unwrap();
    (bound, output)
}

#[test]
fn a_directory_bound_later_is_the_one_a_plain_start_mounts() {
    require_root!();
    let code = tree("late-code", &[("handler.txt", "code")]);
    let mut plain = shell(SCRIPT);
    plain.rootfs_layers.push(task_mount_point());
    plain.mounts.push(MountSpec::Bind {
        source: code.clone(),
        target: "/var/task".into(),
    });
    let plain = common::run(&plain).stdout;
    let (bound, later) = run_bound_later(&waiting_spec(SCRIPT), &code, Path::new("/var/task"));
    bound.expect("the directory is bound");
    assert_eq!(
        later.lines().map(normalized).collect::<Vec<_>>(),
        plain.lines().map(normalized).collect::<Vec<_>>(),
        "plain start:\n{plain}\nbound later:\n{later}"
    );
    assert!(later.contains("\ncode\n"), "{later}");
    assert!(later.contains("Read-only file system"), "{later}");
    assert!(
        !later.contains(".keep"),
        "the mount point's own files are covered: {later}"
    );
    assert!(!later.contains(code.to_str().unwrap()), "no host path inside: {later}");
}

#[test]
fn binding_changes_nothing_on_the_host() {
    require_root!();
    let code = tree("late-code-host", &[("handler.txt", "code")]);
    let before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let (bound, later) = run_bound_later(&waiting_spec(SCRIPT), &code, Path::new("/var/task"));
    bound.expect("the directory is bound");
    assert!(later.contains("\ncode\n"), "{later}");
    let after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let overlays = |table: &str| table.lines().filter(|l| l.contains(" - overlay ")).count();
    assert_eq!(overlays(&after), overlays(&before), "no overlay left on the host");
}

#[test]
fn a_missing_target_or_source_is_an_error_and_the_sandbox_runs_on() {
    require_root!();
    let code = tree("late-code-missing", &[("handler.txt", "code")]);
    let (bound, out) = run_bound_later(&waiting_spec("echo still here"), &code, Path::new("/no/such/dir"));
    let err = bound.expect_err("no mount point there");
    assert!(format!("{err:?}").contains("move_mount"), "{err:?}");
    assert_eq!(out.trim(), "still here");
    let (bound, out) = run_bound_later(
        &waiting_spec("echo still here"),
        Path::new("/no/such/code"),
        Path::new("/var/task"),
    );
    assert!(bound.is_err());
    assert_eq!(out.trim(), "still here");
    let (bound, _) = run_bound_later(&waiting_spec("true"), &code, Path::new("var/task"));
    assert!(bound.is_err(), "a relative target is refused");
}
