//! `lamb init --prewarm`: a pre-initialised sandbox (docs/prewarm.md).
//!
//! Init starts the runtime's bootstrap at once, before any function is
//! known, with one end of a socketpair at descriptor 3 (`LAMB_PREWARM_FD`).
//! The runtime client imports what it needs, writes `ready\n` and blocks
//! reading; init tells the daemon ([`FromInit::Prewarmed`]) and blocks on
//! its own socket. The daemon binds the code at `/var/task` from outside and
//! sends [`ToInit::Assign`] with the function's environment: init takes it
//! for its own (nothing else runs in init yet), writes it to the client
//! (`KEY=VALUE` entries, each ended by a NUL, then end of file) and goes on
//! as a plain start does, the runtime already started.

use crate::Link;
use lamb_protocol::init::{self as protocol, FromInit, ToInit};
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};

/// The descriptor the runtime client finds its end of the socket on.
const CLIENT_FD: RawFd = 3;

/// A started runtime waiting for its function.
pub(crate) struct Waiting {
    pub child: Child,
    socket: UnixStream,
}

/// Starts `argv` in `/var/task` with the client's socket at descriptor 3 and
/// waits for its `ready`; then tells the daemon. `None`: the runtime could
/// not start or ended first (init then has nothing to offer and exits).
pub(crate) fn start(argv: &[String], link: &Link) -> Option<Waiting> {
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
    let child = command.spawn().ok()?;
    drop(theirs);
    let mut line = String::new();
    BufReader::new(&ours).read_line(&mut line).ok()?;
    if line != "ready\n" {
        return None;
    }
    link.send(&FromInit::Prewarmed);
    Some(Waiting { child, socket: ours })
}

/// The function's environment, from the daemon's first message; `None`
/// when the daemon sends anything else (a shutdown) or goes away.
pub(crate) fn assignment(control: &mut UnixStream) -> Option<Vec<String>> {
    match protocol::read_frame(control) {
        Ok(Some(frame)) => match ToInit::decode(&frame) {
            Ok(ToInit::Assign { env }) => Some(env),
            _ => None,
        },
        _ => None,
    }
}

/// Makes `env` init's whole environment, as a plain start's `execve` would
/// have. Only while init runs a single thread: nothing else reads the
/// environment meanwhile.
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

/// Hands `env` to the waiting client; the runtime process.
pub(crate) fn hand_over(waiting: Waiting, env: &[String]) -> Child {
    let mut bytes = Vec::with_capacity(env.iter().map(|e| e.len() + 1).sum());
    for entry in env {
        bytes.extend_from_slice(entry.as_bytes());
        bytes.push(0);
    }
    // A client that died meanwhile is reaped and reported as any runtime.
    let mut socket = waiting.socket;
    let _ = socket.write_all(&bytes);
    drop(socket);
    waiting.child
}
