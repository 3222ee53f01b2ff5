//! Root tests of what a sandboxed process can see and do: namespaces, the
//! root file system, its identity and capabilities. Each runs a real sandbox.

mod common;

use common::{run, shell, spec, tree};
use lamb_sandbox::{Exit, MountSpec};

#[test]
fn sees_only_its_own_processes_and_loopback() {
    require_root!();
    let mut s = shell("echo pid=$$; ls -d /proc/[0-9]* | wc -l; cat /proc/net/dev | tail -n +3; ip link; hostname");
    s.hostname = "fn-under-test".into();
    let out = run(&s);
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stdout);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "pid=1", "the process is PID 1 of its own namespace");
    // The shell and `ls` are the only processes: the host's are invisible.
    assert!(lines[1].trim().parse::<u32>().unwrap() <= 3, "{}", out.stdout);
    let interfaces: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains(':') && l.trim_start().starts_with(char::is_alphanumeric) && l.contains("mtu"))
        .collect();
    assert_eq!(interfaces.len(), 1, "only loopback: {}", out.stdout);
    assert!(
        interfaces[0].contains("lo:") && interfaces[0].contains("UP"),
        "loopback is up: {}",
        out.stdout
    );
    assert_eq!(*lines.last().unwrap(), "fn-under-test");
}

/// A session and process group of its own: seen from the sandbox, PID 1
/// leads both (a session or group outside the PID namespace reads as 0), so
/// the daemon's terminal or service manager signalling its group misses it.
#[test]
fn leads_a_session_and_process_group_of_its_own() {
    require_root!();
    let out = run(&shell("cut -d' ' -f5,6 /proc/1/stat"));
    assert_eq!(out.exit, Exit::Code(0), "{}", out.stdout);
    assert_eq!(out.stdout.trim(), "1 1", "process group and session of PID 1");
}

#[test]
fn loopback_carries_traffic() {
    require_root!();
    let out = run(&shell("ip addr show lo | grep -c 127.0.0.1"));
    assert_eq!(out.stdout.trim(), "1", "{}", out.stdout);
}

#[test]
fn cgroup_namespace_is_rooted_at_the_sandbox() {
    require_root!();
    let out = run(&shell("cat /proc/self/cgroup"));
    for line in out.stdout.lines() {
        assert!(line.ends_with(":/"), "cgroup path not hidden: {line}");
    }
}

#[test]
fn ipc_namespace_is_private() {
    require_root!();
    // A fresh IPC namespace has no System V objects, whatever the host has.
    let out = run(&shell("cat /proc/sysvipc/shm | wc -l"));
    assert_eq!(out.stdout.trim(), "1", "only the header line: {}", out.stdout);
}

#[test]
fn code_and_layers_are_mounted_read_only_and_merged_in_order() {
    require_root!();
    let code = tree("code", &[("handler.txt", "code")]);
    let layer1 = tree("layer1", &[("shared.txt", "first"), ("only1.txt", "one")]);
    let layer2 = tree("layer2", &[("shared.txt", "second")]);
    let mut s = shell("cat /var/task/handler.txt /opt/shared.txt /opt/only1.txt; echo; cat /etc/hosts");
    s.mounts.push(MountSpec::Bind {
        source: code,
        target: "/var/task".into(),
    });
    s.mounts.push(MountSpec::Layers {
        layers: vec![layer1, layer2],
        target: "/opt".into(),
    });
    let out = run(&s);
    assert!(
        out.stdout.starts_with("codesecondone"),
        "later layer wins: {}",
        out.stdout
    );
    assert!(out.stdout.contains("127.0.0.1\tlocalhost"), "{}", out.stdout);
}

#[test]
fn everything_but_tmp_is_read_only() {
    require_root!();
    let code = tree("code-ro", &[("f", "x")]);
    let layer = tree("layer-ro", &[("f", "x")]);
    let mut s = shell(
        "for p in /x /var/task/x /opt/x /etc/x /dev/x /bin/x; do /bin/probe write $p; done; /bin/probe write /tmp/x",
    );
    s.mounts.push(MountSpec::Bind {
        source: code,
        target: "/var/task".into(),
    });
    s.mounts.push(MountSpec::Layers {
        layers: vec![layer],
        target: "/opt".into(),
    });
    let out = run(&s);
    let results: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(results.len(), 7, "{}", out.stdout);
    for (path, result) in ["/", "/var/task", "/opt", "/etc", "/dev", "/bin"].iter().zip(&results) {
        assert!(
            matches!(*result, "EROFS" | "EACCES"),
            "write under {path} gave {result}"
        );
    }
    assert_eq!(results[6], "ok", "/tmp is writable");
}

#[test]
fn tmp_fills_at_its_limit() {
    require_root!();
    let mut s =
        shell("dd if=/dev/zero of=/tmp/fill bs=1M count=64 2>&1 | grep -o 'No space left on device'; ls -l /tmp/fill");
    s.tmp_size_bytes = 8 * 1024 * 1024;
    let out = run(&s);
    assert!(out.stdout.starts_with("No space left on device"), "{}", out.stdout);
    let size: u64 = out
        .stdout
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .nth(4)
        .unwrap()
        .parse()
        .unwrap();
    assert!(size <= 8 * 1024 * 1024, "tmp grew to {size}");
}

#[test]
fn fresh_proc_and_minimal_dev() {
    require_root!();
    let out = run(&shell(
        "ls /dev | sort | tr '\\n' ' '; echo; head -c 4 /dev/urandom | wc -c; echo hi > /dev/null && echo null-ok",
    ));
    let listing = out.stdout.lines().next().unwrap();
    for name in [
        "fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero",
    ] {
        assert!(
            listing.split_whitespace().any(|n| n == name),
            "/dev/{name} missing: {listing}"
        );
    }
    assert!(out.stdout.contains("null-ok"), "{}", out.stdout);
}

#[test]
fn old_root_is_gone() {
    require_root!();
    let host_path = common::rootfs().display().to_string();
    let out = run(&shell(&format!("ls {host_path} 2>&1; cat /proc/self/mountinfo")));
    assert!(out.stdout.contains("No such file"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("lamb-root"),
        "no mount shows the host path: {}",
        out.stdout
    );
}

#[test]
fn runs_unprivileged_with_every_capability_set_empty() {
    require_root!();
    let out = run(&shell(
        "grep -E '^(Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs):' /proc/self/status; ulimit -n; ulimit -u",
    ));
    let field = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing: {}", out.stdout))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(field("Uid:"), "993 993 993 993");
    assert_eq!(field("Gid:"), "990 990 990 990");
    assert_eq!(field("Groups:"), "990");
    for set in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "{set} not empty");
    }
    assert_eq!(field("NoNewPrivs:"), "1");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[lines.len() - 2], "1024", "nofile");
    assert_eq!(lines[lines.len() - 1], "1024", "nproc");
}

#[test]
fn privileged_calls_fail() {
    require_root!();
    let out = run(&spec(&["/bin/sh", "-c", "for p in mount unshare unshare-ns setuid0 chroot raw-socket packet-socket; do /bin/probe $p; done; /bin/suid-probe ids"]));
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
fn environment_and_working_directory_are_the_specs() {
    require_root!();
    let code = tree("code-env", &[("marker", "")]);
    let mut s = shell("pwd; ls; env | sort");
    s.process.cwd = "/var/task".into();
    s.process.env.push("FUNCTION=demo".into());
    s.mounts.push(MountSpec::Bind {
        source: code,
        target: "/var/task".into(),
    });
    let out = run(&s);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "/var/task");
    assert_eq!(lines[1], "marker");
    assert!(lines.contains(&"FUNCTION=demo"), "{}", out.stdout);
    assert!(
        !out.stdout.contains("CARGO"),
        "nothing of the host environment leaks: {}",
        out.stdout
    );
}

#[test]
fn a_missing_program_is_a_setup_error() {
    require_root!();
    let err = common::sandboxer()
        .create(&spec(&["/bin/does-not-exist"]), Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("Exec"), "{err}");
}

#[test]
fn a_prepared_network_namespace_is_private_with_loopback_up() {
    require_root!();
    let sandboxer = common::sandboxer();
    sandboxer.prepare_network_namespaces(1).unwrap();
    let out = run(&shell("ip link | grep mtu; ip addr show lo | grep -c 127.0.0.1"));
    let links: Vec<&str> = out.stdout.lines().filter(|l| l.contains("mtu")).collect();
    assert_eq!(links.len(), 1, "{}", out.stdout);
    assert!(links[0].contains("lo:") && links[0].contains("UP"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().last(), Some("1"));
}

#[test]
fn a_writable_bind_is_the_one_writable_path_besides_tmp() {
    require_root!();
    let shared = tree("efs", &[("existing.txt", "hello")]);
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mut s = shell("cat /mnt/efs/existing.txt; echo; /bin/probe write /mnt/efs/new.txt; /bin/probe write /mnt/x");
    s.mounts.push(MountSpec::BindWritable {
        source: shared.clone(),
        target: "/mnt/efs".into(),
    });
    let out = run(&s);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines, ["hello", "ok", "EROFS"], "{}", out.stdout);
    assert_eq!(
        std::fs::read_to_string(shared.join("new.txt")).unwrap(),
        "x",
        "the write reached the host"
    );
}
