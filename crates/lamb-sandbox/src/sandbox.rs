//! Creating, running, freezing and destroying sandboxes: the parent's side.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cgroup::{self, CgroupBackend, CgroupStats, CgroupVersion, JoinTarget, Layout};
use crate::child::{self, ChildReport, Step};
use crate::error::{Result, SandboxError};
use crate::handle::{kill_through_pidfd, Handle};
use crate::network::{Lease, Netlink, Network, NetworkConfig};
use crate::plan::{self, ChildFds, RootDirs};
use crate::spec::{IdMapping, SandboxSpec, TmpStorage};
use crate::tmp_disk::{TmpDisk, TmpDisks};
use crate::SANDBOX_PREFIX;

/// Where a [`Sandboxer`] keeps its state and cgroups.
#[derive(Debug, Clone)]
pub struct SandboxerConfig {
    /// A root-owned directory for the shared mount point and cached top layers.
    pub state_dir: PathBuf,
    /// The parent cgroup (a name, such as `lamb`) under which every sandbox cgroup lives.
    pub cgroup_parent: String,
    /// A network for every sandbox (`crate::network`); `None`: loopback only.
    pub network: Option<NetworkConfig>,
}

/// Creates sandboxes on this machine. One per process; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Sandboxer {
    config: SandboxerConfig,
    cgroups: Arc<dyn CgroupBackend>,
    last_cap: u32,
    /// Every sandbox mounts its root here, each in its own mount namespace,
    /// so the host never sees the mount and no per-sandbox directory is made.
    new_root: PathBuf,
    /// An empty directory stacked under a lone layer: overlayfs wants two.
    empty: PathBuf,
    /// Top layers already on disk, by key.
    top_layers: Mutex<HashSet<String>>,
    /// Network namespaces made ahead of time (see [`Sandboxer::prepare_network_namespaces`]).
    network_namespaces: Mutex<Vec<PreparedNetns>>,
    /// The sandboxes' network, with `SandboxerConfig::network`.
    network: Option<Arc<Network>>,
    /// This process's own network namespace, to come back to after entering a prepared one.
    host_netns: OwnedFd,
    /// `/tmp` file systems, made ahead of time (see [`Sandboxer::prepare_tmp_disk`]).
    tmp_disks: TmpDisks,
}

/// A network namespace made ahead of time, with its veth when there is a network.
#[derive(Debug)]
struct PreparedNetns {
    fd: OwnedFd,
    lease: Option<Lease>,
}

/// Descriptors handed to the sandbox's process. `None` stdio reads and writes `/dev/null`.
#[derive(Debug, Default)]
pub struct SandboxIo {
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// Passed as descriptors 3, 4, ... in order.
    pub extra_fds: Vec<OwnedFd>,
}

/// How the sandbox's first process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl fmt::Display for Exit {
    /// Formats like Go's `os.ProcessState`, which Lambda's error messages quote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(code) => f.write_str(&lamb_protocol::exit::exited(code)),
            Exit::Signal(signal) => f.write_str(&lamb_protocol::exit::signaled(signal)),
        }
    }
}

/// The result of [`Sandboxer::run`].
#[derive(Debug, Clone, Copy)]
pub struct RunOutcome {
    pub exit: Exit,
    pub stats: CgroupStats,
}

impl Sandboxer {
    /// Detects the cgroup version, prepares the parent cgroup and the state directory.
    pub fn new(config: SandboxerConfig) -> Result<Sandboxer> {
        let backend: Arc<dyn CgroupBackend> = cgroup::detect(&config.cgroup_parent)?.into();
        Sandboxer::with_backend(config, backend)
    }

    /// Like [`Sandboxer::new`] with a given cgroup back end.
    pub fn with_backend(config: SandboxerConfig, cgroups: Arc<dyn CgroupBackend>) -> Result<Sandboxer> {
        cgroups.prepare()?;
        let new_root = config.state_dir.join("lamb-root");
        let empty = config.state_dir.join(EMPTY_DIR);
        for dir in [&new_root, &empty] {
            fs::create_dir_all(dir).map_err(|source| SandboxError::PrepareDir {
                path: dir.clone(),
                source,
            })?;
        }
        let host_netns = fs::File::open("/proc/thread-self/ns/net")
            .map_err(SandboxError::Network)?
            .into();
        let network = match &config.network {
            Some(network) => Some(Network::start(network).map_err(SandboxError::Network)?),
            None => None,
        };
        Ok(Sandboxer {
            network,
            host_netns,
            last_cap: last_capability(),
            tmp_disks: TmpDisks::new(config.state_dir.clone()),
            new_root,
            empty,
            config,
            cgroups,
            top_layers: Mutex::new(HashSet::new()),
            network_namespaces: Mutex::new(Vec::new()),
        })
    }

    pub fn cgroup_version(&self) -> CgroupVersion {
        self.cgroups.version()
    }

    pub fn cgroups(&self) -> &Arc<dyn CgroupBackend> {
        &self.cgroups
    }

    pub fn config(&self) -> &SandboxerConfig {
        &self.config
    }

    /// Creates a sandbox and starts `spec.process` as its PID 1.
    ///
    /// Returns once the process has been executed (or the set-up failed, in
    /// which case nothing of the sandbox is left).
    /// Mounts the host directory `source` read-only at `target` inside the
    /// running sandbox `handle`, as its creation would have mounted it
    /// (`MountSpec::Bind` of a directory): how a pre-initialised sandbox
    /// gets its function's code (docs/prewarm.md). `target` must exist in the
    /// sandbox (a mount point of its top layer).
    pub fn bind_directory(&self, handle: &Handle, source: &Path, target: &Path) -> Result<()> {
        if !target.is_absolute() {
            return Err(SandboxError::InvalidSpec(format!(
                "bind target {} is not absolute",
                target.display()
            )));
        }
        crate::assign::bind_directory(handle.pidfd(), source, &self.empty, target)
    }

    pub fn create(&self, spec: &SandboxSpec, io: SandboxIo) -> Result<Sandbox> {
        spec.validate()?;
        let began = std::time::Instant::now();
        let id = new_id();
        let top_layer = self.top_layer(spec)?;
        let tmp = match spec.tmp_storage {
            TmpStorage::Disk => Some(self.tmp_disks.take(spec.tmp_size_bytes)?),
            TmpStorage::Memory => None,
        };
        let tmp_taken = began.elapsed();
        self.cgroups.create(&id, &spec.limits, layout_of(spec))?;
        let cgroups_made = began.elapsed();
        match self.start(&id, spec, &top_layer, tmp.as_ref(), io) {
            Ok((pid, pidfd, net)) => {
                // The create's own steps, each since it began (docs/benchmarks.md).
                tracing::debug!(
                    sandbox = %id,
                    tmp_us = tmp_taken.as_micros() as u64,
                    cgroups_us = cgroups_made.as_micros() as u64,
                    executed_us = began.elapsed().as_micros() as u64,
                    "sandbox created"
                );
                Ok(Sandbox {
                    handle: Handle {
                        id,
                        pid,
                        pidfd,
                        cgroups: Arc::clone(&self.cgroups),
                    },
                    exit: None,
                    destroyed: false,
                    _tmp: tmp,
                    _net: net,
                })
            }
            Err(err) => {
                let _ = self.cgroups.kill_all(&id);
                let _ = self.cgroups.remove(&id);
                Err(err)
            }
        }
    }

    /// Creates a sandbox, waits for its process to exit, reads its stats and destroys it.
    pub fn run(&self, spec: &SandboxSpec, io: SandboxIo) -> Result<RunOutcome> {
        let mut sandbox = self.create(spec, io)?;
        let exit = sandbox.wait()?;
        let stats = sandbox.stats()?;
        sandbox.destroy()?;
        Ok(RunOutcome { exit, stats })
    }

    /// Clones the process into its namespaces and waits until it has executed.
    fn start(
        &self,
        id: &str,
        spec: &SandboxSpec,
        top_layer: &Path,
        tmp: Option<&TmpDisk>,
        io: SandboxIo,
    ) -> Result<(i32, OwnedFd, Option<Lease>)> {
        let join = self.cgroups.join_target(id, layout_of(spec))?;
        // A supervising PID 1 gets the function group's `cgroup.procs` after its other descriptors.
        let function_procs = match layout_of(spec) {
            Layout::Split => Some(self.cgroups.function_procs(id)?),
            Layout::Single => None,
        };
        let (procs, cgroup_fd) = match &join {
            JoinTarget::ProcsFiles(files) => (files.as_slice(), None),
            JoinTarget::CloneInto(fd) => (&[][..], Some(fd.as_raw_fd())),
        };
        let (error_read, error_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Sync(e.into()))?;
        let sync = match spec.user_namespace {
            Some(_) => {
                Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SandboxError::Sync(e.into()))?)
            }
            None => None,
        };
        let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        let user_namespace = spec.user_namespace.is_some();
        let netns = self.take_network_namespace(user_namespace)?;
        // A prepared network namespace belongs to the host's user namespace,
        // and entering it needs CAP_SYS_ADMIN there, which a process inside a
        // new user namespace never has: setns after the clone fails. With a
        // user namespace, this thread enters it for the clone instead, which
        // the child inherits (see `Sandboxer::take_network_namespace`).
        let child_joins = netns.as_ref().filter(|_| !user_namespace).map(|n| n.fd.as_raw_fd());
        let fds = ChildFds {
            error_fd: error_write.as_raw_fd(),
            sync: sync
                .as_ref()
                .map_or([-1, -1], |(read, write)| [read.as_raw_fd(), write.as_raw_fd()]),
            netns_fd: child_joins.unwrap_or(-1),
            loopback_up: netns.is_none(),
            stdio: [raw(&io.stdin), raw(&io.stdout), raw(&io.stderr)],
            extra: io
                .extra_fds
                .iter()
                .chain(&function_procs)
                .map(|fd| fd.as_raw_fd())
                .collect(),
        };
        let tmp_mount = tmp.map(TmpDisk::mount_point);
        let dirs = RootDirs {
            new_root: &self.new_root,
            top_layer,
            empty: &self.empty,
            tmp: tmp_mount.as_deref(),
        };
        let plan = plan::build(spec, dirs, procs, fds, self.last_cap)?;
        let inherited = netns.as_ref().filter(|_| user_namespace).map(|n| n.fd.as_fd());
        let (pid, pidfd) = self.clone_in(inherited, || {
            clone_sandbox(&plan, cgroup_fd, netns.is_some(), user_namespace)
        })?;
        let lease = netns.and_then(|n| n.lease);
        // The child holds its own copies now; closing ours lets the pipe reach EOF at exec.
        drop(error_write);
        drop(io);
        drop(function_procs);
        if let (Some(map), Some((sync_read, sync_write))) = (&spec.user_namespace, sync) {
            drop(sync_read);
            if let Err(err) = release_into_user_namespace(pid, map, procs, sync_write) {
                let _ = kill_through_pidfd(pidfd.as_fd());
                reap(pid);
                return Err(err);
            }
        }
        match read_report(&error_read) {
            Ok(None) => Ok((pid, pidfd, lease)),
            Ok(Some(report)) => {
                reap(pid);
                Err(SandboxError::ChildSetup {
                    step: Step::from_u32(report.step).unwrap_or(Step::Exec),
                    source: io::Error::from_raw_os_error(report.errno),
                })
            }
            Err(err) => {
                let _ = kill_through_pidfd(pidfd.as_fd());
                reap(pid);
                Err(SandboxError::Sync(err))
            }
        }
    }

    /// The prepared network namespace a sandbox enters: one from the pool, or
    /// with a network one made now (a burst outran the pool), since a sandbox
    /// without its veth would have no network. Without a network a user
    /// namespace's clone makes its own namespace, owned by it, as the
    /// sandbox then needs no veth; with one it shares the prepared namespace,
    /// owned by the host, where root in the sandbox cannot change its address or routes.
    fn take_network_namespace(&self, user_namespace: bool) -> Result<Option<PreparedNetns>> {
        if self.network.is_none() && user_namespace {
            return Ok(None);
        }
        let pooled = self.network_namespaces.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(netns) => Ok(Some(netns)),
            None if self.network.is_some() => Ok(Some(self.new_prepared_netns()?)),
            None => Ok(None),
        }
    }

    /// Runs `clone` with this thread in `netns` (when given), then brings the thread back.
    fn clone_in<T>(&self, netns: Option<BorrowedFd<'_>>, clone: impl FnOnce() -> Result<T>) -> Result<T> {
        let Some(netns) = netns else {
            return clone();
        };
        nix::sched::setns(netns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| SandboxError::Clone(e.into()))?;
        let cloned = clone();
        // Staying in the sandbox's namespace would cut this thread off the host's network.
        nix::sched::setns(&self.host_netns, nix::sched::CloneFlags::CLONE_NEWNET)
            .expect("returning to the original network namespace");
        cloned
    }

    /// A new network namespace, with its veth when there is a network.
    fn new_prepared_netns(&self) -> Result<PreparedNetns> {
        new_network_namespace(self.network.as_ref(), &self.host_netns).map_err(SandboxError::Network)
    }

    /// The sandboxes' network, if there is one.
    pub fn network(&self) -> Option<&Arc<Network>> {
        self.network.as_ref()
    }

    /// Removes the network's veths, bridge and rules, after the last sandbox:
    /// the spawner's last act.
    pub fn stop_network(&self) {
        self.network_namespaces
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if let Some(network) = &self.network {
            if let Err(e) = network.stop() {
                tracing::warn!(error = %e, "removing the sandboxes' network failed; the next start sweeps it");
            }
        }
    }

    /// The per-machine top layer for this set of mount points: `/etc/hosts` and
    /// empty mount points, so the runtime rootfs needs none of its own. Cached on
    /// disk by key; built in a temporary directory and renamed into place.
    fn top_layer(&self, spec: &SandboxSpec) -> Result<PathBuf> {
        let points = plan::mount_points(spec);
        let key = plan::mount_points_key(&points);
        let dir = self.config.state_dir.join(format!("{SANDBOX_PREFIX}top-{key}"));
        let mut known = self.top_layers.lock().unwrap_or_else(|e| e.into_inner());
        if known.contains(&key) || dir.is_dir() {
            known.insert(key);
            return Ok(dir);
        }
        let prepare_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SandboxError::PrepareDir { path, source }
        };
        let staging = self
            .config
            .state_dir
            .join(format!("{SANDBOX_PREFIX}top-{key}.{}.tmp", std::process::id()));
        let _ = fs::remove_dir_all(&staging);
        fs::create_dir_all(staging.join("etc")).map_err(prepare_err(&staging))?;
        let hosts = self.network.as_ref().map_or_else(|| HOSTS.to_owned(), |n| n.hosts());
        fs::write(staging.join("etc/hosts"), hosts).map_err(prepare_err(&staging))?;
        if let Some(network) = &self.network {
            fs::write(staging.join("etc/resolv.conf"), network.resolv_conf()).map_err(prepare_err(&staging))?;
        }
        for (point, is_file) in points {
            let path = staging.join(point.strip_prefix("/").unwrap_or(&point));
            let parent = path.parent().unwrap_or(&staging);
            fs::create_dir_all(parent).map_err(prepare_err(parent))?;
            let made = if is_file {
                fs::write(&path, b"")
            } else {
                fs::create_dir_all(&path)
            };
            made.map_err(prepare_err(&path))?;
        }
        fs::rename(&staging, &dir).map_err(prepare_err(&dir))?;
        known.insert(key);
        Ok(dir)
    }

    /// Makes network namespaces ahead of time, with loopback up, until `target`
    /// are waiting; a sandbox then enters one instead of creating its own,
    /// which takes the most expensive namespace off its cold start. Call it
    /// when idle; returns how many were made.
    pub fn prepare_network_namespaces(&self, target: usize) -> Result<usize> {
        let mut made = 0;
        while self.network_namespaces.lock().unwrap_or_else(|e| e.into_inner()).len() < target {
            let netns = self.new_prepared_netns()?;
            self.network_namespaces
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(netns);
            made += 1;
        }
        Ok(made)
    }

    /// Makes one `/tmp` file system ahead of time, of a size recently asked
    /// for (Lambda's default at first), if the pool is short of one: a
    /// sandbox then binds it instead of waiting for a copy of its template
    /// and a loop mount. Call it when idle; returns whether one was made.
    pub fn prepare_tmp_disk(&self) -> Result<bool> {
        self.tmp_disks.prepare_one()
    }

    /// Prepares `/tmp` file systems (as [`Sandboxer::prepare_tmp_disk`])
    /// whenever a create took one, until [`Sandboxer::stop_keeping_tmp_disks_ready`]:
    /// call it on a thread of its own.
    pub fn keep_tmp_disks_ready(&self) {
        self.tmp_disks.keep_ready()
    }

    /// Says that no request waits: [`Sandboxer::keep_tmp_disks_ready`] works
    /// then (and at least once a second), so that its work competes with no create.
    pub fn idle(&self) {
        self.tmp_disks.idle()
    }

    /// Ends [`Sandboxer::keep_tmp_disks_ready`].
    pub fn stop_keeping_tmp_disks_ready(&self) {
        self.tmp_disks.stop()
    }

    /// Unmounts and deletes the prepared `/tmp` file systems.
    pub fn discard_prepared_tmp_disks(&self) {
        self.tmp_disks.clear();
    }

    /// How many prepared `/tmp` file systems are waiting.
    pub fn prepared_tmp_disks(&self) -> usize {
        self.tmp_disks.ready()
    }

    /// How many prepared network namespaces are waiting.
    pub fn prepared_network_namespaces(&self) -> usize {
        self.network_namespaces.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Removes whatever an earlier process (a killed daemon) left: it kills every
    /// process in every sandbox cgroup under the parent, removes those cgroups,
    /// detaches mounts under the state directory and removes lamb's files there.
    pub fn sweep(&self) -> Result<SweepReport> {
        let keep = [self.new_root.as_path(), self.empty.as_path()];
        // The sweep unmounts and removes every `/tmp` image, the ready ones too.
        let _paused = self.tmp_disks.pause();
        let report = crate::sweep::sweep(self.cgroups.as_ref(), &self.config.state_dir, &keep)?;
        // The sweep removed the cached top layers too.
        self.top_layers.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Ok(report)
    }
}

pub use crate::sweep::SweepReport;

/// The empty directory under the state directory (see `Sandboxer::empty`).
const EMPTY_DIR: &str = "lamb-empty";

/// `/etc/hosts` inside every sandbox (and `host.lamb.internal` with a network).
pub(crate) const HOSTS: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// A new network namespace with loopback up, made by this thread entering it
/// and coming back (to `host`), and with a network its veth, address and
/// route. Only the calling thread moves, so other threads are safe.
fn new_network_namespace(network: Option<&Arc<Network>>, host: &OwnedFd) -> io::Result<PreparedNetns> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    let made = child::loopback_up()
        .map_err(|(_, errno)| io::Error::from_raw_os_error(errno))
        .and_then(|()| fs::File::open("/proc/thread-self/ns/net"))
        // A netlink socket stays in the namespace it was opened in.
        .and_then(|fd| Ok((OwnedFd::from(fd), network.map(|_| Netlink::open()).transpose()?)));
    // Staying in the new namespace would cut this thread off the host's network.
    nix::sched::setns(host, nix::sched::CloneFlags::CLONE_NEWNET).expect("returning to the original network namespace");
    let (fd, inner) = made?;
    let lease = match (network, inner) {
        (Some(network), Some(mut inner)) => Some(network.attach(fd.as_fd(), &mut inner)?),
        _ => None,
    };
    Ok(PreparedNetns { fd, lease })
}

/// The parent's half of a user namespace's start, while the child waits on
/// the sync pipe: on cgroup v1 it moves the child into its cgroup (the child,
/// unprivileged outside, may not), writes the id maps, then releases it.
///
/// `setgroups` is left at `allow`: a parent with `CAP_SETGID` in the host's
/// namespace may write `gid_map` without denying it first, and the child
/// needs `setgroups` to drop root's supplementary groups for its own one.
fn release_into_user_namespace(pid: i32, map: &IdMapping, procs: &[PathBuf], release: OwnedFd) -> Result<()> {
    let write = |path: PathBuf, content: String| {
        // One write(2): the kernel takes a map in a single write only.
        fs::write(&path, content).map_err(|source| SandboxError::UserNamespace { path, source })
    };
    for file in procs {
        write(file.clone(), pid.to_string())?;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    write(proc_dir.join("uid_map"), map.uid_map())?;
    write(proc_dir.join("gid_map"), map.gid_map())?;
    nix::unistd::write(&release, &[1]).map_err(|e| SandboxError::Sync(e.into()))?;
    Ok(())
}

/// `lamb-` and 16 random hex digits: unique, and recognisable by the sweep.
fn new_id() -> String {
    format!("{SANDBOX_PREFIX}{:016x}", rand::random::<u64>())
}

/// The highest capability number this kernel knows.
fn last_capability() -> u32 {
    fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Mirrors `struct clone_args` of `linux/sched.h`.
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// The namespaces every sandbox gets; the cgroup namespace comes after the join.
const NAMESPACES: libc::c_int =
    libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS | libc::CLONE_NEWNET;

/// How `spec`'s processes are grouped for the CPU controller.
fn layout_of(spec: &SandboxSpec) -> Layout {
    if spec.init_cgroup {
        Layout::Split
    } else {
        Layout::Single
    }
}

/// `clone3` into new namespaces (and, on v2, straight into the cgroup).
/// The child runs [`child::run`] and never returns here.
fn clone_sandbox(
    plan: &child::ChildPlan,
    cgroup_fd: Option<RawFd>,
    prepared_net: bool,
    user_namespace: bool,
) -> Result<(i32, OwnedFd)> {
    let mut pidfd: libc::c_int = -1;
    let mut namespaces = if prepared_net {
        NAMESPACES & !libc::CLONE_NEWNET
    } else {
        NAMESPACES
    };
    if user_namespace {
        // The kernel creates the user namespace first, so every other new
        // namespace of this clone is owned by it: the child, root there, may
        // mount, set the host name and bring loopback up.
        namespaces |= libc::CLONE_NEWUSER;
    }
    let mut args = CloneArgs {
        flags: (namespaces | libc::CLONE_PIDFD) as u64,
        pidfd: &mut pidfd as *mut libc::c_int as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with a valid, fully initialised clone_args and no new stack:
    // the child continues on a copy of this stack, like fork(2).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        // SAFETY: we are the freshly cloned child, and `plan` was built for it.
        0 => unsafe { child::run(plan) },
        pid if pid > 0 => {
            // SAFETY: the kernel stored a new pidfd that nobody else owns.
            let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
            Ok((pid as i32, pidfd))
        }
        _ => Err(SandboxError::Clone(io::Error::last_os_error())),
    }
}

/// Reads the child's report: `None` at end of file, which means `execve` succeeded.
fn read_report(pipe: &OwnedFd) -> io::Result<Option<ChildReport>> {
    let mut buf = [0u8; ChildReport::SIZE];
    let mut filled = 0;
    while filled < buf.len() {
        match nix::unistd::read(pipe.as_raw_fd(), &mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "short report from the sandbox",
                ))
            }
            Ok(n) => filled += n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(ChildReport::from_bytes(buf)))
}

/// Waits for `pid`, ignoring how it ended.
fn reap(pid: i32) {
    let _ = wait_pid(pid, 0);
}

/// `waitpid` that retries on EINTR; `None` with WNOHANG while the process runs.
fn wait_pid(pid: i32, flags: libc::c_int) -> io::Result<Option<Exit>> {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes one int.
        let ret = unsafe { libc::waitpid(pid, &mut status, flags) };
        if ret < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(err);
        }
        if ret == 0 {
            return Ok(None);
        }
        if libc::WIFEXITED(status) {
            return Ok(Some(Exit::Code(libc::WEXITSTATUS(status))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some(Exit::Signal(libc::WTERMSIG(status))));
        }
    }
}

/// A live sandbox. Dropping it destroys it; [`Sandbox::destroy`] reports errors.
#[derive(Debug)]
pub struct Sandbox {
    handle: Handle,
    exit: Option<Exit>,
    destroyed: bool,
    /// Unmounted and deleted when the sandbox is dropped, after it is destroyed.
    _tmp: Option<TmpDisk>,
    /// Its veth and address, released likewise.
    _net: Option<Lease>,
}

impl std::ops::Deref for Sandbox {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl Sandbox {
    /// Waits for the first process to exit. Its exit takes every other process
    /// of the sandbox with it (PID namespace).
    pub fn wait(&mut self) -> Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let exit = wait_pid(self.handle.pid, 0)
            .map_err(SandboxError::Wait)?
            .ok_or_else(|| SandboxError::Wait(io::Error::other("process still running")))?;
        self.exit = Some(exit);
        Ok(exit)
    }

    /// The exit of the first process, if it has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<Exit>> {
        if self.exit.is_none() {
            self.exit = wait_pid(self.handle.pid, libc::WNOHANG).map_err(SandboxError::Wait)?;
        }
        Ok(self.exit)
    }

    /// Kills the sandbox, reaps its process and removes its cgroup: nothing is left.
    /// Blocks until every process has died.
    pub fn destroy(mut self) -> Result<()> {
        self.destroy_inner()
    }

    /// One step of a destroy that never blocks, for a caller with other work
    /// (the spawner's event loop): after [`Handle::kill`], call it whenever
    /// the pidfd turns readable, and again a little later while it returns
    /// `None` after PID 1 has exited (the kernel still counts exiting tasks in
    /// the cgroup). `Some` once PID 1 is reaped and the cgroup removed.
    pub fn try_finish(&mut self) -> Result<Option<Exit>> {
        let Some(exit) = self.try_wait()? else {
            return Ok(None);
        };
        let cgroups = &self.handle.cgroups;
        if !cgroups.try_remove(&self.handle.id)? {
            // Tasks outside the PID namespace (none of lamb's making) would keep it busy.
            cgroups.kill_now(&self.handle.id)?;
            return Ok(None);
        }
        self.destroyed = true;
        Ok(Some(exit))
    }

    /// Whether PID 1 has been reaped (by [`Sandbox::wait`], `try_wait` or `try_finish`).
    pub fn exited(&self) -> bool {
        self.exit.is_some()
    }

    /// Drops the handle without destroying the sandbox, after a failed
    /// `try_finish`: the drop would otherwise block on it; the next sweep removes what is left.
    pub fn abandon(mut self) {
        self.destroyed = true;
    }

    fn destroy_inner(&mut self) -> Result<()> {
        if self.destroyed {
            return Ok(());
        }
        self.kill()?;
        self.wait()?;
        // PID 1's exit killed the namespace; anything still listed is on its way out.
        let cgroups = &self.handle.cgroups;
        if !cgroups.procs(&self.handle.id)?.is_empty() {
            cgroups.kill_all(&self.handle.id)?;
        }
        cgroups.remove(&self.handle.id)?;
        self.destroyed = true;
        Ok(())
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Err(err) = self.destroy_inner() {
            tracing::warn!(sandbox = %self.handle.id, error = %lamb_protocol::errors::Chain(&err), "destroying a dropped sandbox failed");
        }
    }
}
