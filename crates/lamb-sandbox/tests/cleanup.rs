//! Root tests that nothing outlives a sandbox: destroy leaves no process,
//! mount, cgroup or directory, and the start-up sweep removes what a
//! SIGKILLed owner left behind.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::{alive, loop_devices_under, sandboxer, shell, spec, tmp_mounts_under};
use lamb_sandbox::{MountSpec, SandboxIo, Sandboxer, SandboxerConfig, SANDBOX_PREFIX};

fn state_entries(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn destroy_leaves_no_process_mount_cgroup_or_directory() {
    require_root!();
    let code = common::tree("code-cleanup", &[("f", "x")]);
    let mut s = shell("sleep 100 & sleep 100 & wait");
    s.mounts.push(MountSpec::Bind {
        source: code,
        target: "/var/task".into(),
    });
    // Warm the cached top layer, then take the baseline.
    sandboxer().run(&spec(&["/bin/true"]), SandboxIo::default()).unwrap();
    sandboxer()
        .run(
            &{
                let mut t = spec(&["/bin/true"]);
                t.mounts = s.mounts.clone();
                t
            },
            SandboxIo::default(),
        )
        .unwrap();
    // Under this binary's state directory only: another test's owner mounts elsewhere meanwhile.
    let state_mounts = || tmp_mounts_under(&common::state_dir());
    let mounts_before = state_mounts();
    let entries_before = state_entries(&common::state_dir());

    let sandbox = sandboxer().create(&s, SandboxIo::default()).unwrap();
    let pid = sandbox.pid();
    let id = sandbox.id().to_string();
    assert!(sandboxer().cgroups().list().unwrap().contains(&id));
    // Its /tmp file system, bound into the sandbox from the host's side.
    assert_eq!(
        state_mounts(),
        mounts_before + 1,
        "sandbox mounts stay in its own namespace"
    );
    sandbox.destroy().unwrap();

    assert!(!alive(pid), "PID 1 of the sandbox is gone");
    assert!(!sandboxer().cgroups().list().unwrap().contains(&id), "cgroup removed");
    assert_eq!(state_mounts(), mounts_before);
    assert_eq!(state_entries(&common::state_dir()), entries_before, "no directory left");
}

/// Not a test on its own: the child process of the sweep test, which creates
/// sandboxes that do not die with it, prints their PIDs and waits to be killed.
#[test]
#[ignore = "run by sweep_removes_what_a_killed_owner_left"]
fn sweep_owner_process() {
    let Ok(parent) = std::env::var("LAMB_SWEEP_CGROUP_PARENT") else {
        return;
    };
    let state_dir = std::env::var("LAMB_SWEEP_STATE_DIR").unwrap();
    let sandboxer = Sandboxer::new(SandboxerConfig {
        state_dir: state_dir.into(),
        cgroup_parent: parent,
        network: None,
    })
    .unwrap();
    let mut sandboxes = Vec::new();
    for _ in 0..3 {
        let mut s = shell("sleep 1000 & sleep 1000");
        s.kill_on_parent_death = false;
        let sandbox = sandboxer.create(&s, SandboxIo::default()).unwrap();
        println!("pid {}", sandbox.pid());
        sandboxes.push(sandbox);
    }
    println!("ready");
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn sweep_removes_what_a_killed_owner_left() {
    require_root!();
    let parent = format!("lamb-sweep-test-{}", std::process::id());
    let state_dir = common::state_dir().with_file_name("sweep-state");
    let (owner, pids) = common::start_owner(
        "sweep_owner_process",
        &[
            ("LAMB_SWEEP_CGROUP_PARENT", parent.as_ref()),
            ("LAMB_SWEEP_STATE_DIR", state_dir.as_ref()),
        ],
        &["pid "],
    );
    assert_eq!(pids.len(), 3);
    common::kill_owner(owner);
    assert!(pids.iter().all(|&pid| alive(pid)), "the sandboxes outlive their owner");
    assert_eq!(tmp_mounts_under(&state_dir), 3, "each left its /tmp mounted");
    assert_eq!(loop_devices_under(&state_dir), 3, "each /tmp is on a loop device");

    let sandboxer = Sandboxer::new(SandboxerConfig {
        state_dir: state_dir.clone(),
        cgroup_parent: parent,
        network: None,
    })
    .unwrap();
    assert_eq!(sandboxer.cgroups().list().unwrap().len(), 3);
    let report = sandboxer.sweep().unwrap();
    assert_eq!(report.cgroups_removed, 3);
    assert!(report.processes_killed >= 3, "{report:?}");

    assert!(
        common::wait_gone(&pids, Duration::from_secs(5)),
        "every process is gone"
    );
    assert!(sandboxer.cgroups().list().unwrap().is_empty(), "every cgroup is gone");
    assert_eq!(tmp_mounts_under(&state_dir), 0, "no /tmp mount is left");
    assert!(
        common::wait_loop_devices_gone(&state_dir),
        "every loop device is detached"
    );
    let left: Vec<String> = state_entries(&state_dir)
        .into_iter()
        // The shared mount point and the empty directory live as long as a sandboxer.
        .filter(|e| e.starts_with(SANDBOX_PREFIX) && e != "lamb-root" && e != "lamb-empty")
        .collect();
    assert!(left.is_empty(), "state left: {left:?}");
    sandboxer.cgroups().remove_parent().unwrap();
}
