//! The runtime's and the extensions' output through init, for the
//! Telemetry API's `function` and `extension` records: with extensions,
//! they write to pipes that init reads, copies to its own stdout (the
//! daemon's log pipe) and cuts into lines.
//! Without extensions the runtime writes to the daemon's pipe directly, as
//! before: nothing to relay, nothing paid.
//!
//! [`Relay::drain`] copies what is already in the pipe; init calls it
//! before it sends an answer, so the invocation's lines are in the log
//! before its END, as they are without a relay.

use crate::telemetry::{now_rfc3339, Telemetry};
use serde_json::json;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// A line longer than this is cut into records of this size.
const MAX_LINE: usize = 256 * 1024;

pub struct Relay {
    inner: Mutex<Inner>,
    telemetry: Arc<Telemetry>,
    /// The records' type: `function` or `extension`.
    kind: &'static str,
}

struct Inner {
    pipe: File,
    out: std::io::Stdout,
    partial: Vec<u8>,
}

impl Relay {
    /// The pipe's write end (for the runtime's stdout and stderr) and the
    /// relay over its read end.
    pub fn new(telemetry: Arc<Telemetry>, kind: &'static str) -> std::io::Result<(OwnedFd, Arc<Relay>)> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)?;
        // The runtime's end blocks as a pipe normally does.
        nix::fcntl::fcntl(
            write.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )?;
        let relay = Arc::new(Relay {
            inner: Mutex::new(Inner {
                pipe: File::from(read),
                out: std::io::stdout(),
                partial: Vec::new(),
            }),
            telemetry,
            kind,
        });
        Ok((write, relay))
    }

    /// Starts the thread that copies until every writer has closed the
    /// pipe; `false` if it cannot be started.
    pub fn start(self: &Arc<Self>) -> bool {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || me.run())
            .is_ok()
    }

    /// Copies until every writer has closed the pipe.
    pub fn run(&self) {
        loop {
            let fd = {
                let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
                inner.pipe.as_fd().as_raw_fd()
            };
            let mut pfd = [libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            }];
            // SAFETY: one valid pollfd; -1 waits without a timeout.
            let n = unsafe { libc::poll(pfd.as_mut_ptr(), 1, -1) };
            if n < 0 {
                continue;
            }
            if !self.drain() {
                return;
            }
        }
    }

    /// Copies what the pipe holds now; `false` once it is closed.
    pub fn drain(&self) -> bool {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = [0u8; 16 * 1024];
        loop {
            match inner.pipe.read(&mut buf) {
                Ok(0) => {
                    let rest = std::mem::take(&mut inner.partial);
                    self.lines(&rest);
                    return false;
                }
                Ok(n) => {
                    let _ = inner.out.write_all(&buf[..n]);
                    inner.partial.extend_from_slice(&buf[..n]);
                    let cut = inner.partial.iter().rposition(|b| *b == b'\n').map(|i| i + 1);
                    let cut = cut.or((inner.partial.len() >= MAX_LINE).then_some(inner.partial.len()));
                    if let Some(cut) = cut {
                        let done: Vec<u8> = inner.partial.drain(..cut).collect();
                        self.lines(&done);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => {
                    let _ = inner.out.flush();
                    return true;
                }
            }
        }
    }

    fn lines(&self, bytes: &[u8]) {
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            for piece in line.chunks(MAX_LINE) {
                let text = String::from_utf8_lossy(piece);
                self.telemetry.emit(
                    self.kind,
                    json!({"time": now_rfc3339(), "type": self.kind, "record": text}),
                );
            }
        }
    }
}
