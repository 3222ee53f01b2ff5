//! `make bench`, part one: the cold start of a sandbox, against its peers on
//! the same root file system and payload.
//!
//! Each run creates a sandbox (every namespace, network included; the overlay
//! root; a cgroup; capabilities dropped; seccomp), runs busybox `true` (static)
//! to its exit and destroys it. In the same run it times `crun run` and
//! `runc run` with a minimal bundle made from the same spec (`lamb_sandbox::oci`),
//! `bwrap --unshare-all`, and a bare fork+exec of the same binary; once back
//! to back and once with 100 ms of idle time before every start (sporadic
//! traffic, the common case). It also compares the two ways a daemon can
//! start a sandbox: through the spawner process (one request over a socket)
//! and by fork+exec of `lamb sandbox-exec`.
//!
//! Root only. Writes a markdown section into the file given with `--out`,
//! between the markers below, leaving the rest of the file as it is.

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lamb_sandbox::{
    oci, CgroupVersion, Limits, ProcessSpec, SandboxIo, SandboxSpec, Sandboxer, SandboxerConfig, Spawner, User,
};

const START: &str = "<!-- sandbox-bench:start -->";
const END: &str = "<!-- sandbox-bench:end -->";
const IDLE_GAP: Duration = Duration::from_millis(100);

struct Options {
    out: Option<PathBuf>,
    runs: usize,
    sporadic_runs: usize,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs = value("--runs").and_then(|v| v.parse().ok()).unwrap_or(300);
    Options {
        out: value("--out").map(PathBuf::from),
        runs,
        sporadic_runs: value("--sporadic-runs").and_then(|v| v.parse().ok()).unwrap_or(runs),
    }
}

/// Latency statistics of one series, in milliseconds.
struct Series {
    name: String,
    what: String,
    samples: Vec<f64>,
}

impl Series {
    fn percentile(&self, p: f64) -> f64 {
        let mut sorted = self.samples.clone();
        sorted.sort_by(|a, b| a.total_cmp(b));
        let index = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
        sorted[index]
    }

    fn row(&self) -> String {
        let min = self.samples.iter().copied().fold(f64::INFINITY, f64::min);
        let max = self.samples.iter().copied().fold(0.0, f64::max);
        format!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} |",
            self.name,
            self.samples.len(),
            min,
            self.percentile(0.5),
            self.percentile(0.9),
            self.percentile(0.99),
            max,
            self.what
        )
    }
}

/// Times `runs` calls of `once`, sleeping `gap` before each one.
fn measure(name: &str, what: &str, runs: usize, gap: Duration, once: impl FnMut()) -> Series {
    measure_prepared(name, what, runs, gap, || {}, once)
}

/// Like [`measure`], with untimed `prepare` work before each run (what a
/// spawner does while idle).
fn measure_prepared(
    name: &str,
    what: &str,
    runs: usize,
    gap: Duration,
    mut prepare: impl FnMut(),
    mut once: impl FnMut(),
) -> Series {
    for _ in 0..runs.min(20) / 4 {
        prepare();
        once(); // warm-up
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        prepare();
        if !gap.is_zero() {
            std::thread::sleep(gap);
        }
        let start = Instant::now();
        once();
        samples.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let series = Series {
        name: name.to_owned(),
        what: what.to_owned(),
        samples,
    };
    eprintln!("{}", series.row());
    series
}

/// The bench's files: the payload layer and the overlay merged for the peers.
struct Workspace {
    dir: PathBuf,
    rootfs: PathBuf,
    layer: PathBuf,
    merged: PathBuf,
}

impl Workspace {
    fn new() -> Workspace {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let rootfs = std::env::var("LAMB_BENCH_ROOTFS")
            .map(PathBuf::from)
            .unwrap_or_else(|_| repo.join("rootfs/build/provided.al2023"));
        assert!(
            rootfs.join("usr").is_dir(),
            "{} is missing: run `make rootfs`",
            rootfs.display()
        );
        let dir = repo.join("target/bench-sandbox");
        let layer = dir.join("layer");
        let merged = dir.join("merged");
        let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(layer.join("bench")).unwrap();
        fs::create_dir_all(&merged).unwrap();
        let busybox = std::env::var("LAMB_TEST_BUSYBOX").unwrap_or_else(|_| "/bin/busybox".into());
        fs::copy(busybox, layer.join("bench/busybox")).expect("busybox-static is installed");
        let rootfs = rootfs.canonicalize().unwrap();
        let dir = dir.canonicalize().unwrap();
        Workspace {
            layer: dir.join("layer"),
            merged: dir.join("merged"),
            dir,
            rootfs,
        }
    }

    fn spec(&self) -> SandboxSpec {
        let process = ProcessSpec {
            argv: vec!["/bench/busybox".into(), "true".into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            cwd: "/".into(),
        };
        let mut spec = SandboxSpec::new(
            vec![self.rootfs.clone(), self.layer.clone()],
            process,
            User { uid: 993, gid: 990 },
        );
        spec.limits = Limits::for_memory_mb(128);
        spec
    }

    /// The peers get the same layers as one read-only overlay, mounted here.
    fn mount_merged(&self) {
        let data = format!("lowerdir={}:{}", self.layer.display(), self.rootfs.display());
        nix::mount::mount(
            Some("overlay"),
            &self.merged,
            Some("overlay"),
            nix::mount::MsFlags::MS_RDONLY,
            Some(data.as_str()),
        )
        .expect("overlay for the peers");
    }

    /// An OCI bundle whose config.json is `lamb_sandbox::oci::to_oci` of our spec.
    fn bundle(&self) -> PathBuf {
        let bundle = self.dir.join("bundle");
        fs::create_dir_all(&bundle).unwrap();
        let config = oci::to_oci(&self.spec(), &self.merged).unwrap();
        fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        bundle
    }
}

fn run_quiet(cmd: &mut Command) {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("command starts");
    assert!(status.success(), "{cmd:?} failed");
}

/// crun 1.8 refuses a hybrid (v1 + empty v2) layout: hide the v2 mount from it
/// in a private mount namespace of this (single-threaded) process.
fn hide_unified_hierarchy() {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare the mount namespace");
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    let _ = nix::mount::umount2("/sys/fs/cgroup/unified", nix::mount::MntFlags::MNT_DETACH);
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

fn main() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("the sandbox benchmark needs root");
        std::process::exit(1);
    }
    let opts = options();
    let ws = Workspace::new();
    let config = SandboxerConfig {
        state_dir: ws.dir.join("state"),
        cgroup_parent: "lamb-bench".into(),
        network: None,
    };
    // Leaked, to live as long as its `/tmp` thread: as in the spawner, a
    // thread of its own makes the `/tmp` file systems and deletes the used ones.
    let sandboxer: &'static Sandboxer = Box::leak(Box::new(Sandboxer::new(config.clone()).unwrap()));
    // The spawner first, while this process has one thread: forked beside
    // the `/tmp` thread, it kept the write ends of the pipes of the `mkfs`
    // that thread was running, and the thread waited for their end forever.
    let spawner = Spawner::fork(config.clone()).unwrap();
    let keeper = std::thread::spawn(|| sandboxer.keep_tmp_disks_ready());
    let version = sandboxer.cgroup_version();
    if version == CgroupVersion::V1 {
        hide_unified_hierarchy();
    }
    ws.mount_merged();
    let bundle = ws.bundle();
    let spec = ws.spec();
    let spec_file = ws.dir.join("spec.json");
    fs::write(&spec_file, serde_json::to_vec(&spec).unwrap()).unwrap();
    let lamb_bin = std::env::var("LAMB_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/lamb"));
    let busybox = ws.layer.join("bench/busybox");
    let mut counter = 0u64;
    let mut next_id = move || {
        counter += 1;
        format!("lamb-bench-{}-{counter}", std::process::id())
    };

    let mut back_to_back = Vec::new();
    let mut sporadic = Vec::new();
    let favordynmods_before = lamb_sandbox::v1_tuning::favordynmods_enabled();
    for (gap, runs, table) in [
        (Duration::ZERO, opts.runs, &mut back_to_back),
        (IDLE_GAP, opts.sporadic_runs, &mut sporadic),
    ] {
        // Every lamb series but one has its `/tmp` file system made ahead
        // (untimed), as the spawner does on a thread of its own.
        let prepare_tmp = || {
            sandboxer.prepare_tmp_disk().unwrap();
            sandboxer.idle();
        };
        table.push(measure_prepared(
            "lamb in-process, new network namespace",
            "create, run busybox true, destroy",
            runs,
            gap,
            prepare_tmp,
            || {
                let out = sandboxer.run(&spec, SandboxIo::default()).unwrap();
                assert_eq!(out.exit, lamb_sandbox::Exit::Code(0));
            },
        ));
        table.push(measure_prepared(
            "lamb in-process, user namespace",
            "the same in its own user namespace (`lamb serve --userns`): maps written, new network namespace",
            runs,
            gap,
            prepare_tmp,
            {
                let spec = SandboxSpec {
                    user_namespace: Some(lamb_sandbox::IdMapping {
                        outside_uid_base: 1_000_000,
                        outside_gid_base: 1_000_000,
                        size: lamb_sandbox::IdMapping::MIN_SIZE,
                    }),
                    ..spec.clone()
                };
                let sandboxer = &sandboxer;
                move || {
                    let out = sandboxer.run(&spec, SandboxIo::default()).unwrap();
                    assert_eq!(out.exit, lamb_sandbox::Exit::Code(0));
                }
            },
        ));
        table.push(measure_prepared(
            "lamb in-process, prepared network namespace",
            "the same, with a network namespace made while idle",
            runs,
            gap,
            || {
                sandboxer.prepare_network_namespaces(1).unwrap();
                sandboxer.idle();
                sandboxer.prepare_tmp_disk().unwrap();
            },
            || {
                sandboxer.run(&spec, SandboxIo::default()).unwrap();
            },
        ));
        table.push(measure_prepared(
            "lamb in-process, /tmp copied at the create",
            "the same, with no `/tmp` file system made ahead (a burst outran them): a copy of the size's template and a loop mount in the create",
            runs,
            gap,
            || {
                sandboxer.prepare_network_namespaces(1).unwrap();
                // None ready, and the `/tmp` thread not woken to make one.
                sandboxer.discard_prepared_tmp_disks();
            },
            || {
                sandboxer.run(&spec, SandboxIo::default()).unwrap();
            },
        ));
        table.push(measure_prepared(
            "lamb in-process, /tmp made at the create",
            "the same, with a size asked for the first time: its template made with mkfs.ext4, then copied and loop-mounted in the create",
            runs,
            gap,
            || {
                sandboxer.prepare_network_namespaces(1).unwrap();
                sandboxer.idle();
            },
            {
                let mut spec = spec.clone();
                move || {
                    spec.tmp_size_bytes += 1 << 20;
                    sandboxer.run(&spec, SandboxIo::default()).unwrap();
                }
            },
        ));
        table.push(measure_prepared(
            "lamb in-process, /tmp a tmpfs",
            "the same with a prepared network namespace and `/tmp` in memory, as before issue 12",
            runs,
            gap,
            || {
                sandboxer.prepare_network_namespaces(1).unwrap();
                sandboxer.idle();
            },
            {
                let spec = SandboxSpec {
                    tmp_storage: lamb_sandbox::TmpStorage::Memory,
                    ..spec.clone()
                };
                let sandboxer = &sandboxer;
                move || {
                    sandboxer.run(&spec, SandboxIo::default()).unwrap();
                }
            },
        ));
        table.push(measure(
            "lamb via the spawner process",
            "the daemon's path: a request over a socket, pidfd, destroy; network namespaces prepared while idle",
            runs,
            gap,
            || {
                let sandbox = spawner.create(&spec, SandboxIo::default()).unwrap();
                wait_readable(sandbox.pidfd().as_raw_fd());
                sandbox.destroy().unwrap();
            },
        ));
        table.push(measure(
            "lamb via the spawner process, /tmp a tmpfs",
            "the same with `/tmp` in memory, as before issue 12",
            runs,
            gap,
            {
                let spec = SandboxSpec {
                    tmp_storage: lamb_sandbox::TmpStorage::Memory,
                    ..spec.clone()
                };
                let spawner = &spawner;
                move || {
                    let sandbox = spawner.create(&spec, SandboxIo::default()).unwrap();
                    wait_readable(sandbox.pidfd().as_raw_fd());
                    sandbox.destroy().unwrap();
                }
            },
        ));
        if lamb_bin.exists() {
            table.push(measure(
                "lamb sandbox-exec (fork+exec)",
                "a fresh `lamb` process per sandbox",
                runs,
                gap,
                || {
                    run_quiet(
                        Command::new(&lamb_bin)
                            .arg("sandbox-exec")
                            .arg(&spec_file)
                            .arg("--state-dir")
                            .arg(&config.state_dir)
                            .args(["--cgroup-parent", "lamb-bench"]),
                    );
                },
            ));
        }
        if have("crun") {
            table.push(measure(
                "crun run",
                "minimal bundle from the same spec",
                runs.min(300),
                gap,
                || {
                    run_quiet(
                        Command::new("crun")
                            .args(["--root", &ws.dir.join("crun").to_string_lossy(), "run", "--bundle"])
                            .arg(&bundle)
                            .arg(next_id()),
                    );
                },
            ));
        }
        if have("runc") {
            table.push(measure(
                "runc run",
                "minimal bundle from the same spec",
                runs.min(300),
                gap,
                || {
                    run_quiet(
                        Command::new("runc")
                            .args(["--root", &ws.dir.join("runc").to_string_lossy(), "run", "--bundle"])
                            .arg(&bundle)
                            .arg(next_id()),
                    );
                },
            ));
        }
        if have("bwrap") {
            table.push(measure(
                "bwrap --unshare-all",
                "read-only bind of the same root, /proc, /dev",
                runs,
                gap,
                || {
                    run_quiet(
                        Command::new("bwrap")
                            .args(["--unshare-all", "--ro-bind"])
                            .arg(&ws.merged)
                            .args(["/", "--proc", "/proc", "--dev", "/dev", "/bench/busybox", "true"]),
                    );
                },
            ));
        }
        table.push(measure(
            "fork+exec, no isolation",
            "the same busybox true on the host",
            runs,
            gap,
            || {
                run_quiet(Command::new(&busybox).arg("true"));
            },
        ));
    }
    let mut favordynmods = Vec::new();
    if version == CgroupVersion::V1 && !favordynmods_before {
        let mount_point = Path::new(lamb_sandbox::v1_tuning::DEFAULT_MOUNT_POINT);
        match lamb_sandbox::v1_tuning::enable_favordynmods(mount_point) {
            Ok(()) => {
                favordynmods.push(measure_prepared(
                    "lamb in-process, new network namespace",
                    "favordynmods on",
                    opts.sporadic_runs,
                    IDLE_GAP,
                    || {
                        sandboxer.prepare_tmp_disk().unwrap();
                    },
                    || {
                        sandboxer.run(&spec, SandboxIo::default()).unwrap();
                    },
                ));
                favordynmods.push(measure(
                    "lamb via the spawner process",
                    "favordynmods on",
                    opts.sporadic_runs,
                    IDLE_GAP,
                    || {
                        let sandbox = spawner.create(&spec, SandboxIo::default()).unwrap();
                        wait_readable(sandbox.pidfd().as_raw_fd());
                        sandbox.destroy().unwrap();
                    },
                ));
            }
            Err(e) => eprintln!("favordynmods: {e}"),
        }
    }
    sandboxer.stop_keeping_tmp_disks_ready();
    keeper.join().unwrap();
    sandboxer.discard_prepared_tmp_disks();
    let _ = nix::mount::umount2(&ws.merged, nix::mount::MntFlags::MNT_DETACH);
    let _ = sandboxer.cgroups().remove_parent();
    let report = report(&back_to_back, &sporadic, &favordynmods, version, favordynmods_before);
    println!("{report}");
    if let Some(out) = opts.out {
        write_section(&out, &report);
    }
}

fn wait_readable(fd: i32) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd.
    unsafe { libc::poll(&mut pfd, 1, 10_000) };
}

fn machine(version: CgroupVersion, favordynmods: bool) -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_kb: u64 = fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0);
    let tool = |t: &str| {
        Command::new(t)
            .arg("--version")
            .output()
            .ok()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_else(|| "absent".into())
    };
    format!(
        "{cores} cores ({cpu}), {} GiB, kernel {}, cgroup {:?}{}; {}, {}, {}",
        mem_kb / 1024 / 1024,
        kernel.trim(),
        version,
        if favordynmods {
            " with favordynmods already on"
        } else {
            ""
        },
        tool("crun"),
        tool("runc"),
        tool("bwrap"),
    )
}

fn table(series: &[Series]) -> String {
    let mut out =
        String::from("| what | runs | min | p50 | p90 | p99 | max | notes |\n|---|---|---|---|---|---|---|---|\n");
    for s in series {
        out.push_str(&s.row());
        out.push('\n');
    }
    out
}

fn report(
    back_to_back: &[Series],
    sporadic: &[Series],
    favordynmods: &[Series],
    version: CgroupVersion,
    fdm: bool,
) -> String {
    let mut out = format!("{START}\n## Sandbox cold start (`cargo bench -p lamb-sandbox --bench cold_start`)\n\n");
    out.push_str(&format!("Machine: {}.\n\nPayload: busybox `true` (static); every sandbox has mount, PID, IPC, UTS, network (loopback up) and cgroup namespaces, the overlay root, `/proc`, `/dev`, `/tmp`, a memory/pids/cpu cgroup, no capabilities, no_new_privs and the seccomp filter. Times in ms, wall clock from the start of the create to the end of the destroy.\n\n", machine(version, fdm)));
    out.push_str("### Back to back\n\n");
    out.push_str(&table(back_to_back));
    out.push_str("\n### Sporadic: 100 ms idle before each start\n\n");
    out.push_str(&table(sporadic));
    if !favordynmods.is_empty() {
        out.push_str("\n### Sporadic, after remounting a cgroup v1 hierarchy with `favordynmods`\n\n");
        out.push_str(&table(favordynmods));
    }
    out.push_str(&format!("\n{END}\n"));
    out
}

/// Replaces the section between the markers (or appends it) in `path`.
fn write_section(path: &Path, section: &str) {
    let old = fs::read_to_string(path).unwrap_or_else(|_| "# Benchmarks\n\n".into());
    let new = match (old.find(START), old.find(END)) {
        (Some(a), Some(b)) if a < b => format!("{}{}{}", &old[..a], section.trim_end(), &old[b + END.len()..]),
        _ => format!("{}\n{}", old.trim_end(), section),
    };
    fs::write(path, new).unwrap();
}
