//! `lamb init --prewarm`: a pre-initialised sandbox (docs/prewarm.md).
//!
//! Init starts the runtime's bootstrap at once, before any function is
//! known, with one end of a socketpair at descriptor 3 (`LAMB_PREWARM_FD`).
//! The runtime client imports what it needs, writes `ready\n` and blocks
//! reading; init tells the daemon ([`FromInit::Prewarmed`]) and waits. The
//! daemon binds the code at `/var/task` from outside and sends
//! `ToInit::Assign` with the function's environment: init takes it for its
//! own, writes it to the client
//! (`KEY=VALUE` entries, each ended by a NUL, then end of file) and goes on
//! as a plain start does, the runtime already started.

use crate::Link;
use lamb_protocol::init::FromInit;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// The descriptor the runtime client finds its end of the socket on.
const CLIENT_FD: RawFd = 3;

/// A started runtime waiting for its function.
pub(crate) struct Waiting {
    /// The runtime's PID; init's reaper waits for it, as for any runtime.
    pub pid: u32,
    socket: UnixStream,
}

/// Starts `argv` in `/var/task` with the client's socket at descriptor 3.
pub(crate) fn spawn(argv: &[String]) -> Option<Waiting> {
    let (ours, theirs) = UnixStream::pair().ok()?;
    let fd = theirs.as_raw_fd();
    let mut command = Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .current_dir("/var/task")
        .stdin(Stdio::null())
        .env("LAMB_PREWARM_FD", CLIENT_FD.to_string());
    // SAFETY: dup2 is async-signal-safe; the copy at 3 is not close-on-exec
    // (dup2 clears the flag), the daemon's socket there is replaced.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(fd, CLIENT_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    crate::cgroup::place(&mut command);
    let pid = command.spawn().ok()?.id();
    drop(theirs);
    Some(Waiting { pid, socket: ours })
}

/// Waits for the client's `ready`, then tells the daemon. `None`: the
/// runtime ended first.
pub(crate) fn ready(waiting: &Waiting, link: &Link) -> Option<()> {
    let mut line = String::new();
    BufReader::new(&waiting.socket).read_line(&mut line).ok()?;
    if line != "ready\n" {
        return None;
    }
    link.send(&FromInit::Prewarmed);
    Some(())
}

/// Makes `env` init's whole environment, as a plain start's `execve` would
/// have. Init's other threads are blocked meanwhile (in `accept`, `read` and
/// `waitpid`, none reading the environment), and Rust's own accesses take
/// the standard library's lock.
pub(crate) fn adopt(env: &[String]) {
    for (key, _) in std::env::vars_os() {
        std::env::remove_var(key);
    }
    for entry in env {
        if let Some((k, v)) = entry.split_once('=') {
            if !k.is_empty() {
                std::env::set_var(k, v);
            }
        }
    }
}

/// Hands `env` to the waiting client.
pub(crate) fn hand_over(waiting: Waiting, env: &[String]) {
    let mut bytes = Vec::with_capacity(env.iter().map(|e| e.len() + 1).sum());
    for entry in env {
        bytes.extend_from_slice(entry.as_bytes());
        bytes.push(0);
    }
    // A client that died meanwhile is reaped and reported as any runtime.
    let mut socket = waiting.socket;
    let _ = socket.write_all(&bytes);
    drop(socket);
}
