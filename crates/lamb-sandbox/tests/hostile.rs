//! Root tests of a hostile function: each one runs real sandboxes and tries,
//! from inside, one way out: a denied system call, another sandbox's files
//! or memory, a signal to the host, an escape through `/proc`, symlinks or a
//! layer, the host's disk, the CPU of others, a socket to the host.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use common::{run, sandboxer, shell, spec, tree};
use lamb_sandbox::{Limits, MountSpec, SandboxIo};

#[test]
fn every_denied_system_call_is_refused_inside() {
    require_root!();
    let out = run(&spec(&["/bin/probe", "denied-syscalls"]));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "not refused: []", "{}", out.stdout);
    assert_eq!(lines[1], "clone3: ENOSYS", "{}", out.stdout);
    assert_eq!(lines[2], "Seccomp: 2", "the filter is on: {}", out.stdout);
}

/// The calls the allow list decides by their arguments, tried from inside:
/// only four socket families (netlink for routes only), `socketpair` for
/// `AF_UNIX`, Docker's safe personalities, and a call on no list answers
/// `ENOSYS` as a kernel without it would.
#[test]
fn the_allow_list_holds_inside() {
    require_root!();
    let out = run(&spec(&["/bin/probe", "allow-list"]));
    let expected = "\
vsock: EPERM
alg: EPERM
packet: EPERM
uevent: EPERM
route: ok
unix: ok
inet: ok
inet6: ok
socketpair-unix: ok
socketpair-vsock: EPERM
personality-query: ok
personality-linux: ok
personality-no-aslr: EPERM
unlisted: ENOSYS
";
    assert_eq!(out.stdout, expected);
}

/// Nothing inside names a path of the host: the overlays' options in
/// `mountinfo` name held descriptors, not the layers', state or code
/// directories (all under the tests' temporary directory here), and
/// `/proc/config.gz` (the host kernel's build) reads empty.
#[test]
fn mountinfo_and_proc_reveal_no_host_path() {
    require_root!();
    let code = tree("mountinfo-code", &[("handler", "code")]);
    let mut s = shell("cat /var/task/handler; echo; cat /proc/self/mountinfo; wc -c < /proc/config.gz");
    s.mounts.push(MountSpec::Bind {
        source: code.clone(),
        target: "/var/task".into(),
    });
    let out = run(&s);
    let host = code.parent().unwrap().display().to_string();
    assert!(out.stdout.starts_with("code\n"), "the code is mounted: {}", out.stdout);
    assert!(!out.stdout.contains(&host), "{host} shows inside: {}", out.stdout);
    let config_size = out.stdout.lines().last().unwrap_or_default().trim();
    if std::path::Path::new("/proc/config.gz").exists() {
        assert_eq!(config_size, "0", "/proc/config.gz is masked: {}", out.stdout);
    }
}

/// Starts a sandbox that keeps a secret in its `/tmp` and sleeps; returns it
/// with its host PID.
fn sandbox_with_a_secret() -> lamb_sandbox::Sandbox {
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write),
        ..SandboxIo::default()
    };
    let sandbox = sandboxer()
        .create(&shell("echo s3cr3t > /tmp/secret; echo ready; exec sleep 100"), io)
        .unwrap();
    let mut ready = [0u8; 6];
    std::fs::File::from(read).read_exact(&mut ready).unwrap();
    sandbox
}

#[test]
fn another_sandbox_s_tmp_and_memory_are_out_of_reach() {
    require_root!();
    let victim = sandbox_with_a_secret();
    let pid = victim.pid();
    let out = run(&shell(&format!(
        "cat /tmp/secret 2>&1; grep -rl s3cr3t /tmp /var /opt /etc 2>/dev/null | wc -l; \
         ls /proc/{pid} 2>&1 | head -1; /bin/probe peek {pid}; /bin/probe kill {pid}"
    )));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].contains("No such file"), "{}", out.stdout);
    assert_eq!(lines[1], "0", "the secret is nowhere in this sandbox: {}", out.stdout);
    assert!(
        lines[2].contains("No such file"),
        "the victim is not in this /proc: {}",
        out.stdout
    );
    assert_eq!(lines[3], "ESRCH", "its memory is out of reach: {}", out.stdout);
    assert_eq!(lines[4], "ESRCH", "and so is signalling it: {}", out.stdout);
    // SAFETY: signal 0 only checks for existence.
    assert_eq!(unsafe { libc::kill(pid, 0) }, 0, "the victim still runs");
    victim.destroy().unwrap();
}

#[test]
fn host_processes_cannot_be_signalled() {
    require_root!();
    let host = std::process::Command::new("sleep").arg("30").spawn().unwrap();
    let out = run(&shell(&format!(
        "/bin/probe kill {}; kill -9 -1; echo after",
        host.id()
    )));
    assert!(out.stdout.starts_with("ESRCH"), "{}", out.stdout);
    let mut host = host;
    assert!(
        host.try_wait().unwrap().is_none(),
        "the host process survived `kill -9 -1` inside"
    );
    host.kill().unwrap();
    host.wait().unwrap();
}

#[test]
fn proc_links_lead_back_into_the_sandbox() {
    require_root!();
    let host_path = common::state_dir().display().to_string();
    let out = run(&shell(&format!(
        "readlink /proc/1/root; readlink /proc/self/exe; ls /proc/1/root{host_path} 2>&1 | head -1; \
         /bin/probe write /proc/self/exe; /bin/probe write /proc/1/root/bin/probe"
    )));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "/", "PID 1's root is the sandbox's own: {}", out.stdout);
    assert_eq!(
        lines[1], "/bin/busybox",
        "readlink's own binary, inside: {}",
        out.stdout
    );
    assert!(
        lines[2].contains("No such file"),
        "no host path through /proc/1/root: {}",
        out.stdout
    );
    assert!(
        !lines[3].starts_with("ok") && !lines[4].starts_with("ok"),
        "binaries stay unwritable: {}",
        out.stdout
    );
}

#[test]
fn symlinks_resolve_inside_the_sandbox_root() {
    require_root!();
    let host_path = common::state_dir().display().to_string();
    // A layer that ships a symlink climbing out, and one made at run time in /tmp.
    let layer = tree("layer-escape", &[("marker", "layer")]);
    let _ = std::fs::remove_file(layer.join("escape"));
    std::os::unix::fs::symlink("../../../../../../..", layer.join("escape")).unwrap();
    let mut s = shell(&format!(
        "ln -s {host_path} /tmp/out; ls /tmp/out/ 2>&1 | head -1; ls /opt/escape{host_path} 2>&1 | head -1; \
         ls /opt/escape/bin/probe"
    ));
    s.mounts.push(MountSpec::Layers {
        layers: vec![layer],
        target: "/opt".into(),
    });
    let out = run(&s);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[0].contains("No such file"), "{}", out.stdout);
    assert!(lines[1].contains("No such file"), "{}", out.stdout);
    assert_eq!(
        lines[2], "/opt/escape/bin/probe",
        "`..` stops at the sandbox's own root: {}",
        out.stdout
    );
}

#[test]
fn tmp_cannot_fill_the_host_disk_past_its_size() {
    require_root!();
    let mut s = shell(
        "grep ' /tmp ' /proc/mounts | cut -d' ' -f3; dd if=/dev/zero of=/tmp/fill bs=1M count=256 2>&1 | grep -o 'No space left' | head -n 1; echo done; exec sleep 100",
    );
    s.tmp_size_bytes = 32 << 20;
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write.try_clone().unwrap()),
        stderr: Some(write),
        ..SandboxIo::default()
    };
    let sandbox = sandboxer().create(&s, io).unwrap();
    let mut out = String::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(std::fs::File::from(read))) {
        let line = line.unwrap();
        if line == "done" {
            break;
        }
        out.push_str(&line);
        out.push('\n');
    }
    assert!(out.starts_with("ext4"), "{out}");
    assert!(out.contains("No space left"), "{out}");
    // While it is full, the host's disk holds at most the /tmp images (this
    // one and any made ahead): what they occupy, not the free space of a
    // disk other processes write to as well.
    let held = allocated_tmp_images(&common::state_dir());
    assert!(held < 48 << 20, "the /tmp images hold {held} bytes of the host's disk");
    sandbox.destroy().unwrap();
}

#[test]
fn a_cpu_hog_gets_no_more_than_its_share() {
    require_root!();
    let mut s = shell("while :; do :; done & while :; do :; done & wait");
    s.limits = Limits::for_memory_mb(128); // 7% of one CPU, as Lambda gives 128 MB
    let sandbox = sandboxer().create(&s, SandboxIo::default()).unwrap();
    let start_cpu = sandbox.stats().unwrap().cpu_usage_ns;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = sandbox.stats().unwrap().cpu_usage_ns - start_cpu;
    let wall = start.elapsed().as_nanos() as u64;
    sandbox.destroy().unwrap();
    // Two spinning processes would take two full CPUs without the quota.
    let share = wall * 128 / 1769;
    assert!(
        used < 3 * share,
        "the hog used {used} ns of CPU in {wall} ns (share {share})"
    );
}

#[test]
fn listening_sockets_do_not_reach_the_host_and_the_host_is_unreachable() {
    require_root!();
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host.local_addr().unwrap().port();
    host.set_nonblocking(true).unwrap();
    // The sandbox listens on a port and tries to reach the host's listener.
    let (read, write) = nix::unistd::pipe().unwrap();
    let io = SandboxIo {
        stdout: Some(write),
        ..SandboxIo::default()
    };
    let script = format!(
        "nc -l -p 18181 -e /bin/true & sleep 0.2; echo | nc -w 1 127.0.0.1 {host_port} && echo reached || echo refused; \
         echo listening; sleep 100"
    );
    let sandbox = sandboxer().create(&shell(&script), io).unwrap();
    let mut pipe = std::fs::File::from(read);
    let mut out = String::new();
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + Duration::from_secs(10);
    while !out.contains("listening") && Instant::now() < deadline {
        let n = pipe.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        out.contains("refused"),
        "the host's loopback is not the sandbox's: {out}"
    );
    assert!(host.accept().is_err(), "nothing reached the host listener");
    let connected = TcpStream::connect_timeout(&"127.0.0.1:18181".parse().unwrap(), Duration::from_secs(1));
    if let Ok(mut stream) = connected {
        // Something else on the host may own that port; it must not be the sandbox.
        let _ = stream.write_all(b"x");
        let _ = stream.as_raw_fd();
        panic!("port 18181 on the host answered; it must not be the sandbox's listener");
    }
    sandbox.destroy().unwrap();
}

/// Bytes of the host's disk held by the /tmp images (files named `image`)
/// under `dir`, by their allocated blocks.
fn allocated_tmp_images(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => allocated_tmp_images(&e.path()),
            Ok(m) if e.file_name() == "image" => m.blocks() * 512,
            _ => 0,
        })
        .sum()
}
