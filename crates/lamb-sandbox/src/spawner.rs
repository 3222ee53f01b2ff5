//! The spawner: a small process that owns every sandbox's clone, so that a
//! multi-threaded daemon never clones into set-up code and the clone copies
//! a small address space instead of the daemon's. Requests are served on one
//! thread; a second one only makes and deletes `/tmp` file systems
//! (`crate::tmp_disk`). That work, and the network namespaces made ahead,
//! wait after a create until the caller's `Idle` (its start is over), so
//! they never take CPU from a sandbox's start.
//!
//! [`Spawner::fork`] forks it once, at start-up, before the daemon starts any
//! thread. The daemon then sends requests over a `SOCK_SEQPACKET` socketpair:
//! one JSON message per request and reply, with descriptors (stdio and extra
//! fds down, the sandbox's pidfd up) passed as `SCM_RIGHTS`. Freezing, thawing,
//! stats and kills need no clone and are done by the daemon directly on the
//! cgroup; creation and destruction (which reaps) go through the spawner.
//! A destroy never holds up the others: the spawner kills at once, reaps from
//! its poll loop when the sandbox's pidfd turns readable, and says so on a
//! socket that came with that request alone.
//!
//! When the daemon goes away (even by `kill -9`), the spawner reads end of
//! file, destroys every sandbox it still holds, removes the parent cgroup if
//! it is empty and exits. It ignores the signals that stop a whole process
//! group (Ctrl-C, a service manager's SIGTERM), so that it outlives the
//! daemon's shutdown to do so.

use std::collections::HashMap;
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::cgroup::{self, CgroupBackend, CgroupVersion};
use crate::error::{Result, SandboxError};
use crate::handle::Handle;
use crate::sandbox::{Exit, Sandbox, SandboxIo, Sandboxer, SandboxerConfig, SweepReport};
use crate::spec::SandboxSpec;
use lamb_protocol::errors::Chain;

/// The largest request or reply: a spec with Lambda's 4 KB of environment is far smaller.
const MAX_MESSAGE: usize = 256 * 1024;
/// The most descriptors one request carries.
const MAX_FDS: usize = 16;
/// Network namespaces the spawner keeps ready while idle.
const PREPARED_NETWORK_NAMESPACES: usize = 8;
/// How long the work kept for idle time (network namespaces, `/tmp`
/// images) waits after a create or a bind for the caller's `Idle` before
/// it runs anyway, for a caller that never sends one.
const QUIET_AFTER_START: std::time::Duration = std::time::Duration::from_millis(50);

#[derive(Debug, Serialize, Deserialize)]
enum Request {
    Create {
        spec: Box<SandboxSpec>,
        fds: FdLayout,
    },
    /// Comes with one descriptor, a socket on which the spawner answers
    /// `Destroyed` once the sandbox is gone; on the main socket it answers
    /// `Destroying` at once, so a slow death holds up no other request.
    Destroy {
        id: String,
    },
    Sweep,
    /// `Sandboxer::bind_directory` on a live sandbox (docs/prewarm.md).
    BindDirectory {
        id: String,
        source: std::path::PathBuf,
        target: std::path::PathBuf,
    },
    /// The caller's start of a sandbox is over (the daemon: the cold
    /// start's caller has its answer): the work kept for idle time may run.
    Idle,
}

/// Which descriptors travel with a `Create`, in this order.
#[derive(Debug, Serialize, Deserialize)]
struct FdLayout {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    extra: usize,
}

#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Created { id: String, pid: i32 },
    Destroying,
    Destroyed { exit: Exit },
    Swept { report: SweepReport },
    Bound,
    Noted,
    Failed { message: String },
}

/// The daemon's handle on the spawner process. Cheap to clone; requests are
/// serialised, as the spawner handles one at a time.
#[derive(Debug, Clone)]
pub struct Spawner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    socket: Mutex<OwnedFd>,
    pid: i32,
    cgroups: Arc<dyn CgroupBackend>,
}

impl Spawner {
    /// Forks the spawner process.
    ///
    /// Call it while the process is still single-threaded (before a tokio
    /// runtime or any other thread starts): the child goes on running Rust code.
    pub fn fork(config: SandboxerConfig) -> Result<Spawner> {
        Spawner::fork_closing(config, &[])
    }

    /// Like [`Spawner::fork`]; the child first closes `daemon_only`, the
    /// descriptors it must not share with the daemon (the data directory's
    /// `flock`, which a fork would hold on to after the daemon died).
    pub fn fork_closing(config: SandboxerConfig, daemon_only: &[RawFd]) -> Result<Spawner> {
        // Fail here, in the caller, if the machine cannot run sandboxes at all.
        let sandboxer = Sandboxer::new(config.clone())?;
        let cgroups: Arc<dyn CgroupBackend> = cgroup::detect(&config.cgroup_parent)?.into();
        let (ours, theirs) = seqpacket_pair()?;
        // SAFETY: fork(2); the child only runs `serve` and exits, never returning here.
        match unsafe { libc::fork() } {
            0 => {
                for &fd in daemon_only {
                    // SAFETY: the child owns its copies of the parent's descriptors and never returns.
                    unsafe { libc::close(fd) };
                }
                drop(ours);
                ignore_stop_signals();
                serve(&sandboxer, theirs);
                // SAFETY: leave without running the parent's destructors or atexit handlers.
                unsafe { libc::_exit(0) }
            }
            pid if pid > 0 => Ok(Spawner {
                inner: Arc::new(Inner {
                    socket: Mutex::new(ours),
                    pid,
                    cgroups,
                }),
            }),
            _ => Err(SandboxError::Spawner(format!(
                "fork: {}",
                std::io::Error::last_os_error()
            ))),
        }
    }

    /// The spawner's PID.
    pub fn pid(&self) -> i32 {
        self.inner.pid
    }

    /// Tells the spawner to destroy every sandbox and exit (it reads end of
    /// file, whatever other handles are left), and waits for it, `limit` at
    /// most: a daemon that stops cleanly leaves no sandbox's `/tmp` mounted
    /// behind it. Whether it exited within `limit` (then it is reaped).
    pub fn close_and_wait(&self, limit: std::time::Duration) -> bool {
        let socket = self.inner.socket.lock().unwrap_or_else(|e| e.into_inner());
        let _ = socket::shutdown(socket.as_raw_fd(), socket::Shutdown::Both);
        drop(socket);
        let pid = self.inner.pid;
        // SAFETY: pidfd_open on our own child, which is not reaped before this returns.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return false;
        }
        // SAFETY: pidfd_open returned a new descriptor that nothing else owns.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as RawFd) };
        let mut pfd = libc::pollfd {
            fd: pidfd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let timeout = libc::c_int::try_from(limit.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: poll on one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, timeout) } <= 0 {
            return false;
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child, which has exited.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        true
    }

    pub fn cgroup_version(&self) -> CgroupVersion {
        self.inner.cgroups.version()
    }

    /// Creates a sandbox in the spawner and returns a handle to it. Blocks
    /// until the sandbox's process has been executed.
    pub fn create(&self, spec: &SandboxSpec, io: SandboxIo) -> Result<RemoteSandbox> {
        let layout = FdLayout {
            stdin: io.stdin.is_some(),
            stdout: io.stdout.is_some(),
            stderr: io.stderr.is_some(),
            extra: io.extra_fds.len(),
        };
        let fds: Vec<RawFd> = [&io.stdin, &io.stdout, &io.stderr]
            .into_iter()
            .flatten()
            .chain(&io.extra_fds)
            .map(|fd| fd.as_raw_fd())
            .collect();
        let request = Request::Create {
            spec: Box::new(spec.clone()),
            fds: layout,
        };
        let (reply, mut received) = self.call(&request, &fds)?;
        drop(io);
        match reply {
            Reply::Created { id, pid } => {
                let pidfd = received
                    .pop()
                    .ok_or_else(|| SandboxError::Spawner("no pidfd came with the sandbox".into()))?;
                Ok(RemoteSandbox {
                    handle: Handle {
                        id,
                        pid,
                        pidfd,
                        cgroups: Arc::clone(&self.inner.cgroups),
                    },
                    spawner: self.clone(),
                    destroyed: false,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Says that the sandbox just created (or bound) has done its start:
    /// the spawner's idle work (network namespaces and `/tmp` images made
    /// ahead, used ones removed) runs from now, not beside that start,
    /// where it took CPU from the sandbox's init on a small machine.
    pub fn idle(&self) -> Result<()> {
        match self.call(&Request::Idle, &[])?.0 {
            Reply::Noted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Runs the start-up sweep in the spawner.
    pub fn sweep(&self) -> Result<SweepReport> {
        match self.call(&Request::Sweep, &[])?.0 {
            Reply::Swept { report } => Ok(report),
            other => Err(unexpected(other)),
        }
    }

    /// Asks the spawner to kill and destroy `id`; with `wait`, blocks until
    /// the sandbox is gone and returns how its PID 1 ended. The spawner
    /// answers on a socket of this request's own, so other requests go on
    /// meanwhile.
    fn destroy(&self, id: &str, wait: bool) -> Result<Option<Exit>> {
        let (ours, theirs) = seqpacket_pair()?;
        let request = Request::Destroy { id: id.to_owned() };
        match self.call(&request, &[theirs.as_raw_fd()])?.0 {
            Reply::Destroying => {}
            other => return Err(unexpected(other)),
        }
        drop(theirs);
        if !wait {
            return Ok(None);
        }
        let (bytes, _) =
            receive(ours.as_fd())?.ok_or_else(|| SandboxError::Spawner("the spawner process is gone".into()))?;
        match serde_json::from_slice(&bytes).map_err(|e| SandboxError::Spawner(e.to_string()))? {
            Reply::Destroyed { exit } => Ok(Some(exit)),
            other => Err(unexpected(other)),
        }
    }

    /// One request and its reply, under the lock.
    fn call(&self, request: &Request, fds: &[RawFd]) -> Result<(Reply, Vec<OwnedFd>)> {
        let socket = self.inner.socket.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = serde_json::to_vec(request).map_err(|e| SandboxError::Spawner(e.to_string()))?;
        send(socket.as_fd(), &bytes, fds)?;
        let (bytes, fds) =
            receive(socket.as_fd())?.ok_or_else(|| SandboxError::Spawner("the spawner process is gone".into()))?;
        let reply = serde_json::from_slice(&bytes).map_err(|e| SandboxError::Spawner(e.to_string()))?;
        Ok((reply, fds))
    }
}

fn unexpected(reply: Reply) -> SandboxError {
    match reply {
        Reply::Failed { message } => SandboxError::Spawner(message),
        other => SandboxError::Spawner(format!("unexpected reply {other:?}")),
    }
}

/// A sandbox living in the spawner. Freeze, thaw, stats and kill act on its
/// cgroup and pidfd from the daemon's side; dropping it destroys it.
#[derive(Debug)]
pub struct RemoteSandbox {
    handle: Handle,
    spawner: Spawner,
    destroyed: bool,
}

impl std::ops::Deref for RemoteSandbox {
    type Target = Handle;

    fn deref(&self) -> &Handle {
        &self.handle
    }
}

impl RemoteSandbox {
    /// Mounts the host directory `source` read-only at `target` inside this
    /// running sandbox, as its creation would have (`Sandboxer::bind_directory`).
    pub fn bind_directory(&self, source: &std::path::Path, target: &std::path::Path) -> Result<()> {
        let request = Request::BindDirectory {
            id: self.handle.id.clone(),
            source: source.to_path_buf(),
            target: target.to_path_buf(),
        };
        match self.spawner.call(&request, &[])?.0 {
            Reply::Bound => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Kills and destroys the sandbox; returns, once every process of it has
    /// died, how its first process ended.
    pub fn destroy(mut self) -> Result<Exit> {
        self.destroyed = true;
        let exit = self.spawner.destroy(&self.handle.id, true)?;
        exit.ok_or_else(|| SandboxError::Spawner("no exit came with the destroy".into()))
    }
}

impl Drop for RemoteSandbox {
    /// Hands the sandbox to the spawner to destroy, without waiting for its death.
    fn drop(&mut self) {
        if !self.destroyed {
            if let Err(err) = self.spawner.destroy(&self.handle.id, false) {
                tracing::warn!(sandbox = %self.handle.id, error = %Chain(&err), "destroying a dropped sandbox failed");
            }
        }
    }
}

/// The signals that stop a whole process group or service at once: SIGINT
/// and SIGQUIT from the daemon's terminal (Ctrl-C), SIGTERM from a
/// service manager that signals every process of the unit (systemd's
/// default) or from `pkill lamb`, SIGHUP when the terminal goes. The daemon
/// catches them and shuts down; the spawner must outlive that shutdown to
/// destroy the sandboxes, remove the parent cgroup and unmount the `/tmp`
/// file systems, and it ends when the daemon's end of the socket closes,
/// whatever ended the daemon. Killed by one of them it left all of that to
/// the next start's sweep. SIGKILL still ends it (and the sandboxes with it:
/// their parent-death signal). The sandboxes do not inherit this: each
/// child resets every disposition before `execve` (`child::reset_signals`).
fn ignore_stop_signals() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        // SAFETY: signal(2) with SIG_IGN, in the single-threaded child of the fork.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
}

/// A killed sandbox the spawner reaps from its loop, and where to say it is gone.
struct Dying {
    sandbox: Sandbox,
    done: OwnedFd,
}

/// How often a dying sandbox whose PID 1 is reaped is retried while its
/// cgroup still counts exiting tasks.
const REMOVE_RETRY_MS: libc::c_int = 5;

/// The spawner's loop: one request at a time until the daemon's end closes,
/// and in between, the dying sandboxes whose pidfds turned readable.
fn serve(sandboxer: &Sandboxer, socket: OwnedFd) {
    // `/tmp` file systems take milliseconds each (a copy, a loop
    // mount; deleting one more): made on a thread of their own, so that no
    // request waits behind one.
    std::thread::scope(|scope| {
        scope.spawn(|| sandboxer.keep_tmp_disks_ready());
        serve_requests(sandboxer, socket);
        sandboxer.stop_keeping_tmp_disks_ready();
    });
    // Nor the `/tmp` file systems made ahead (the process exits without dropping them).
    sandboxer.discard_prepared_tmp_disks();
}

fn serve_requests(sandboxer: &Sandboxer, socket: OwnedFd) {
    let mut sandboxes: HashMap<String, Sandbox> = HashMap::new();
    let mut dying: Vec<Dying> = Vec::new();
    refill_while_idle(sandboxer, socket.as_fd());
    // The sandbox last created or bound, and when: until the caller's
    // `Idle`, its destroy or a quiet while, the idle work waits, so that it
    // runs after that sandbox's start rather than beside it.
    let mut starting: Option<(std::time::Instant, String)> = None;
    loop {
        let quiet = starting
            .as_ref()
            .map(|(since, _)| QUIET_AFTER_START.saturating_sub(since.elapsed()));
        if wait_for_work(socket.as_fd(), &dying, quiet) {
            let Ok(Some((bytes, fds))) = receive(socket.as_fd()) else {
                break;
            };
            let (reply, pidfd) = match serde_json::from_slice::<Request>(&bytes) {
                Ok(request) => {
                    starting = match &request {
                        Request::BindDirectory { id, .. } => Some((std::time::Instant::now(), id.clone())),
                        Request::Destroy { id } if starting.as_ref().is_some_and(|(_, s)| s == id) => None,
                        Request::Idle => None,
                        _ => starting,
                    };
                    let (reply, pidfd) = handle(sandboxer, &mut sandboxes, &mut dying, request, fds);
                    if let Reply::Created { id, .. } = &reply {
                        starting = Some((std::time::Instant::now(), id.clone()));
                    }
                    (reply, pidfd)
                }
                Err(e) => (
                    Reply::Failed {
                        message: format!("bad request: {e}"),
                    },
                    None,
                ),
            };
            let Ok(bytes) = serde_json::to_vec(&reply) else { break };
            let fds: Vec<RawFd> = pidfd.iter().copied().collect();
            if send(socket.as_fd(), &bytes, &fds).is_err() {
                break;
            }
        }
        finish_dying(&mut dying);
        if starting
            .as_ref()
            .is_some_and(|(since, _)| since.elapsed() >= QUIET_AFTER_START)
        {
            starting = None;
        }
        if starting.is_none() {
            refill_while_idle(sandboxer, socket.as_fd());
        }
    }
    // The daemon is gone: leave nothing behind, killing everything before waiting on anything.
    for sandbox in sandboxes.values_mut() {
        let _ = sandbox.kill();
    }
    for sandbox in sandboxes.into_values().chain(dying.into_iter().map(|d| d.sandbox)) {
        let _ = sandbox.destroy();
    }
    // Nor the parent cgroup (one per data directory), unless someone else's
    // sandboxes are in it.
    let cgroups = sandboxer.cgroups();
    if cgroups.list().is_ok_and(|left| left.is_empty()) {
        let _ = cgroups.remove_parent();
    }
    // Nor its network: veths, bridge and nftables table.
    sandboxer.stop_network();
}

/// Blocks until a request arrives (`true`) or a dying sandbox needs a look
/// (`false`): its pidfd turned readable, or its cgroup is due another try;
/// or `quiet` passes (`false`), when given.
fn wait_for_work(socket: BorrowedFd<'_>, dying: &[Dying], quiet: Option<std::time::Duration>) -> bool {
    let mut fds = vec![libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    // A reaped PID 1's pidfd stays readable: those wait on the retry timer instead.
    fds.extend(dying.iter().filter(|d| !d.sandbox.exited()).map(|d| libc::pollfd {
        fd: d.sandbox.pidfd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }));
    let retry = if dying.iter().any(|d| d.sandbox.exited()) {
        REMOVE_RETRY_MS
    } else {
        -1
    };
    // Rounded up: a zero would spin until the quiet while is over.
    let quiet = quiet.map(|q| q.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int);
    let timeout = match (retry, quiet) {
        (-1, Some(q)) => q,
        (r, Some(q)) => r.min(q),
        (r, None) => r,
    };
    // SAFETY: poll on a vector of valid pollfds, whose length is passed.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
    ready > 0 && fds[0].revents != 0
}

/// Moves every dying sandbox one step on; says `Destroyed` (or why not) for each that is gone.
fn finish_dying(dying: &mut Vec<Dying>) {
    let mut i = 0;
    while i < dying.len() {
        let reply = match dying[i].sandbox.try_finish() {
            Ok(None) => {
                i += 1;
                continue;
            }
            Ok(Some(exit)) => Reply::Destroyed { exit },
            Err(e) => Reply::Failed { message: e.to_string() },
        };
        let done = dying.swap_remove(i);
        if let Ok(bytes) = serde_json::to_vec(&reply) {
            // The daemon may have stopped listening (a dropped handle): nothing to tell then.
            let _ = send(done.done.as_fd(), &bytes, &[]);
        }
        done.sandbox.abandon();
    }
}

fn handle(
    sandboxer: &Sandboxer,
    sandboxes: &mut HashMap<String, Sandbox>,
    dying: &mut Vec<Dying>,
    request: Request,
    fds: Vec<OwnedFd>,
) -> (Reply, Option<RawFd>) {
    let failed = |e: SandboxError| {
        (
            Reply::Failed {
                message: Chain(&e).to_string(),
            },
            None,
        )
    };
    match request {
        Request::Create { spec, fds: layout } => {
            match sandbox_io(layout, fds).and_then(|io| sandboxer.create(&spec, io)) {
                Ok(sandbox) => {
                    let id = sandbox.id().to_owned();
                    let reply = Reply::Created {
                        id: id.clone(),
                        pid: sandbox.pid(),
                    };
                    let pidfd = sandbox.pidfd().as_raw_fd();
                    sandboxes.insert(id, sandbox);
                    (reply, Some(pidfd))
                }
                Err(e) => failed(e),
            }
        }
        Request::Destroy { id } => {
            let Some(done) = fds.into_iter().next() else {
                return failed(SandboxError::Spawner("a destroy comes with its reply socket".into()));
            };
            let Some(sandbox) = sandboxes.remove(&id) else {
                return failed(SandboxError::Spawner(format!("no sandbox {id}")));
            };
            match sandbox.kill() {
                Ok(()) => {
                    // Reaped from the loop: a slow death must not hold up other sandboxes.
                    dying.push(Dying { sandbox, done });
                    (Reply::Destroying, None)
                }
                Err(e) => {
                    sandboxes.insert(id, sandbox);
                    failed(e)
                }
            }
        }
        Request::BindDirectory { id, source, target } => {
            let Some(sandbox) = sandboxes.get(&id) else {
                return failed(SandboxError::Spawner(format!("no sandbox {id}")));
            };
            match sandboxer.bind_directory(sandbox, &source, &target) {
                Ok(()) => (Reply::Bound, None),
                Err(e) => failed(e),
            }
        }
        Request::Idle => (Reply::Noted, None),
        Request::Sweep => match sandboxer.sweep() {
            Ok(report) => (Reply::Swept { report }, None),
            Err(e) => failed(e),
        },
    }
}

/// Makes network namespaces ahead of time, one at a time, while no request
/// waits; then lets the `/tmp` thread work.
fn refill_while_idle(sandboxer: &Sandboxer, socket: BorrowedFd<'_>) {
    while sandboxer.prepared_network_namespaces() < PREPARED_NETWORK_NAMESPACES && !readable(socket) {
        if sandboxer
            .prepare_network_namespaces(sandboxer.prepared_network_namespaces() + 1)
            .is_err()
        {
            return;
        }
    }
    if !readable(socket) {
        sandboxer.idle();
    }
}

fn readable(socket: BorrowedFd<'_>) -> bool {
    let mut pfd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd without waiting.
    unsafe { libc::poll(&mut pfd, 1, 0) > 0 }
}

/// Rebuilds the caller's `SandboxIo` from the descriptors that came with the request.
fn sandbox_io(layout: FdLayout, fds: Vec<OwnedFd>) -> Result<SandboxIo> {
    let expected = usize::from(layout.stdin) + usize::from(layout.stdout) + usize::from(layout.stderr) + layout.extra;
    if fds.len() != expected {
        return Err(SandboxError::Spawner(format!(
            "expected {expected} descriptors, got {}",
            fds.len()
        )));
    }
    let mut fds = fds.into_iter();
    let mut take = |present: bool| if present { fds.next() } else { None };
    Ok(SandboxIo {
        stdin: take(layout.stdin),
        stdout: take(layout.stdout),
        stderr: take(layout.stderr),
        extra_fds: fds.collect(),
    })
}

fn send(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) -> Result<()> {
    let iov = [IoSlice::new(bytes)];
    let rights = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage<'_>] = if fds.is_empty() { &[] } else { &rights };
    loop {
        match socket::sendmsg::<()>(socket.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Ok(_) => return Ok(()),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::Spawner(format!("send: {e}"))),
        }
    }
}

/// One message and its descriptors; `None` when the other end has closed.
fn receive(socket: BorrowedFd<'_>) -> Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let flags = MsgFlags::MSG_CMSG_CLOEXEC;
        match socket::recvmsg::<()>(socket.as_raw_fd(), &mut iov, Some(&mut cmsg), flags) {
            Ok(msg) => {
                let mut fds = Vec::new();
                for c in msg
                    .cmsgs()
                    .map_err(|e| SandboxError::Spawner(format!("recvmsg: {e}")))?
                {
                    if let ControlMessageOwned::ScmRights(raw) = c {
                        // SAFETY: the kernel just installed these descriptors for us.
                        fds.extend(raw.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                    }
                }
                let len = msg.bytes;
                if len == 0 && fds.is_empty() {
                    return Ok(None);
                }
                buf.truncate(len);
                return Ok(Some((buf, fds)));
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(SandboxError::Spawner(format!("recvmsg: {e}"))),
        }
    }
}

/// A close-on-exec `SOCK_SEQPACKET` pair: the daemon's line to the spawner,
/// and each destroy's own answer.
fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd)> {
    socket::socketpair(
        socket::AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SandboxError::Spawner(format!("socketpair: {e}")))
}
