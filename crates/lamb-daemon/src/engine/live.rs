//! One live sandbox as the engine holds it, busy, idle or frozen: the
//! sandbox handle from the launcher, the socket to its `lamb init`, and the
//! pipe its output comes through. Output is read while the engine waits for init's messages, so a
//! chatty function never fills the pipe, and drained once the answer is in,
//! so the function's lines land between START and END.

use super::launcher::SandboxHandle;
use super::logs::{keep_tail, LineBuffer, LogStream};
use lamb_protocol::init::{frame_len, FromInit, ShutdownReason, ToInit};
use lamb_sandbox::CpuLimit;
use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::net::UnixStream;
use tokio::time::Instant;

/// The most a pipe can hold (`/proc/sys/fs/pipe-max-size`'s default).
const DRAIN_BYTES: usize = 1024 * 1024;

/// What came from the sandbox while waiting.
#[derive(Debug)]
pub enum Event {
    Msg(FromInit),
    /// Init's socket closed without `Exited`: init itself died (killed by
    /// the OOM killer, or the sandbox was killed).
    Closed,
    /// The deadline passed first.
    Deadline,
}

#[derive(Debug)]
pub struct LiveSandbox {
    pub sandbox: Option<Box<dyn SandboxHandle>>,
    ctl: UnixStream,
    rx: Vec<u8>,
    out: pipe::Receiver,
    /// Output after the last newline (at most a line's limit).
    lines: LineBuffer,
    pub log: LogStream,
    /// The uid slot (uid = base + slot).
    pub slot: u32,
    pub memory_mb: u32,
    pub frozen: bool,
    /// Set by a cold start, taken by the first invocation's REPORT.
    pub init_duration: Option<Duration>,
    /// Set by a SnapStart restore, taken by its invocation's REPORT.
    pub restore_duration: Option<Duration>,
    /// Set by an init retried within the invocation (a suppressed init):
    /// when the invocation began, for its Duration and its deadline.
    pub invoke_began: Option<Instant>,
    /// The pool this sandbox belongs to.
    pub key: String,
    /// When the session credentials in its environment expire (none: it
    /// was given none).
    pub credentials_expire: Option<time::OffsetDateTime>,
    /// The provisioned concurrency target that keeps it, if one does
    /// (`super::provisioned`).
    pub provisioned: Option<u64>,
    /// The CPU limit this sandbox's cgroup was last given here (none yet:
    /// the spec's): a limit already in force is not written again.
    cpu: Option<CpuLimit>,
}

impl LiveSandbox {
    pub fn new(
        sandbox: Box<dyn SandboxHandle>,
        ctl: std::os::unix::net::UnixStream,
        out: std::os::fd::OwnedFd,
        log: LogStream,
        slot: u32,
        memory_mb: u32,
        key: String,
    ) -> io::Result<LiveSandbox> {
        ctl.set_nonblocking(true)?;
        Ok(LiveSandbox {
            sandbox: Some(sandbox),
            ctl: UnixStream::from_std(ctl)?,
            rx: Vec::with_capacity(64 * 1024),
            out: pipe::Receiver::from_owned_fd(out)?,
            lines: LineBuffer::default(),
            log,
            slot,
            memory_mb,
            frozen: false,
            init_duration: None,
            restore_duration: None,
            invoke_began: None,
            key,
            credentials_expire: None,
            provisioned: None,
            cpu: None,
        })
    }

    /// Whether its credentials outlive an invocation that may run `timeout`
    /// from `now`. Environment variables cannot be changed under a running
    /// runtime, so a sandbox whose session would expire mid-invocation is
    /// recycled instead: the cold start that replaces it mints a new one.
    pub fn credentials_fresh_for(&self, timeout: Duration, now: time::OffsetDateTime) -> bool {
        self.credentials_expire.is_none_or(|at| at - now > timeout)
    }

    /// Whether init has said nothing yet that was not read: no message and
    /// not the end of its socket. A waiting pre-initialised sandbox's init
    /// says nothing until its assignment, so anything there means its
    /// runtime ended (init reports the exit and ends) or init itself died.
    /// A peek at the socket, not the reactor's readiness: the kernel's
    /// state is what counts, whether or not the reactor saw it yet.
    pub fn quiet(&self) -> bool {
        use nix::sys::socket::{recv, MsgFlags};
        use std::os::fd::AsRawFd;
        let mut byte = [0u8; 1];
        self.rx.is_empty()
            && recv(
                self.ctl.as_raw_fd(),
                &mut byte,
                MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
            ) == Err(nix::errno::Errno::EAGAIN)
    }

    pub async fn send(&mut self, msg: &ToInit) -> io::Result<()> {
        self.ctl.write_all(&msg.encode()).await
    }

    /// Waits for init's next message until `deadline`, copying the
    /// function's output to the log (and to `tail`, when kept) meanwhile.
    pub async fn next_event(&mut self, deadline: Instant, mut tail: Option<&mut Vec<u8>>) -> Event {
        let mut chunk = [0u8; 16 * 1024];
        let mut out_open = true;
        loop {
            match frame_len(&self.rx) {
                Ok(Some(n)) => {
                    let msg = FromInit::decode(&self.rx[4..n]);
                    self.rx.drain(..n);
                    return match msg {
                        Ok(m) => Event::Msg(m),
                        Err(_) => Event::Closed,
                    };
                }
                Ok(None) => {}
                Err(_) => return Event::Closed,
            }
            if self.rx.capacity() - self.rx.len() < 16 * 1024 {
                self.rx.reserve(64 * 1024);
            }
            tokio::select! {
                biased;
                r = self.ctl.read_buf(&mut self.rx) => match r {
                    Ok(0) | Err(_) => return Event::Closed,
                    Ok(_) => {}
                },
                r = self.out.read(&mut chunk), if out_open => match r {
                    Ok(0) | Err(_) => out_open = false,
                    Ok(n) => self.output(&chunk[..n], tail.as_deref_mut()),
                },
                _ = tokio::time::sleep_until(deadline) => return Event::Deadline,
            }
        }
    }

    /// Reads what output is already in the pipe, and ends a partial last
    /// line. At most a full pipe's worth: a function that keeps printing
    /// after its answer cannot hold the invocation here.
    pub fn drain_output(&mut self, mut tail: Option<&mut Vec<u8>>) {
        let mut chunk = [0u8; 16 * 1024];
        let mut budget = DRAIN_BYTES;
        while let Ok(n) = self.out.try_read(&mut chunk) {
            if n == 0 {
                break;
            }
            self.output(&chunk[..n], tail.as_deref_mut());
            budget = budget.saturating_sub(n);
            if budget == 0 {
                break;
            }
        }
        let mut last = Vec::new();
        self.lines.finish(&mut last);
        self.write_lines(&last, tail);
    }

    fn output(&mut self, bytes: &[u8], tail: Option<&mut Vec<u8>>) {
        let mut lines = Vec::new();
        self.lines.push(bytes, &mut lines);
        self.write_lines(&lines, tail);
    }

    fn write_lines(&mut self, lines: &[u8], tail: Option<&mut Vec<u8>>) {
        self.log.write(lines);
        if let Some(t) = tail {
            keep_tail(t, lines);
        }
    }

    /// Drops init's full core for the memory-proportional quota and
    /// weight invocations run at. A failure is logged, not fatal: the limit is one
    /// of fairness, and a sandbox whose cgroup is gone fails its event anyway.
    pub fn set_invocation_quota(&mut self) {
        self.set_cpu(
            CpuLimit::proportional_to_memory(u64::from(self.memory_mb)),
            "invocation",
        );
    }

    /// Init's quota and weight again (one vCPU at least): a SnapStart
    /// restore is that sandbox's Init phase. Failures as above.
    pub fn set_init_quota(&mut self) {
        self.set_cpu(CpuLimit::during_init(u64::from(self.memory_mb)), "restore");
    }

    /// Writes `cpu` to the cgroup unless it is in force already: from 1769
    /// MB up init's limit and the invocations' are the same, and a
    /// restore's two writes (three files each in v1) would be on the
    /// invocation's path for nothing.
    fn set_cpu(&mut self, cpu: CpuLimit, what: &str) {
        if self.cpu == Some(cpu) {
            return;
        }
        if let Some(s) = self.sandbox.as_mut() {
            match s.set_cpu(&cpu) {
                Ok(()) => self.cpu = Some(cpu),
                Err(err) => {
                    self.cpu = None;
                    tracing::warn!(key = %self.key.replace('\0', "/"), error = %err, "cannot set the {what} CPU quota");
                }
            }
        }
    }

    /// Writes a platform line to the log and the tail.
    pub fn platform(&mut self, line: &str, tail: Option<&mut Vec<u8>>) {
        self.write_lines(line.as_bytes(), tail);
    }

    /// Asks init to shut the runtime and the extensions down (Lambda's
    /// shutdown phase, `reason` in the extensions' SHUTDOWN event) and
    /// waits, at most `grace`, for it to go.
    pub async fn shutdown(&mut self, reason: ShutdownReason, grace: Duration) {
        if self.send(&ToInit::Shutdown(reason)).await.is_err() {
            return;
        }
        let deadline = Instant::now() + grace;
        while let Event::Msg(_) = self.next_event(deadline, None).await {}
        // What the extensions wrote in their shutdown phase, as far as it
        // is in the pipe: init's end can arrive before their last lines.
        self.drain_output(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamb_sandbox::{Exit, Result};
    use std::io::Write;
    use std::path::Path;

    /// A handle [`LiveSandbox::quiet`] never touches: only its socket counts.
    #[derive(Debug)]
    struct Untouched;

    impl SandboxHandle for Untouched {
        fn freeze(&mut self) -> Result<()> {
            unreachable!()
        }
        fn thaw(&mut self) -> Result<()> {
            unreachable!()
        }
        fn kill(&mut self) -> Result<()> {
            unreachable!()
        }
        fn memory_peak_bytes(&self) -> Result<u64> {
            unreachable!()
        }
        fn set_cpu(&mut self, _: &CpuLimit) -> Result<()> {
            unreachable!()
        }
        fn set_memory(&mut self, _: u64) -> Result<()> {
            unreachable!()
        }
        fn bind_directory(&mut self, _: &Path, _: &Path) -> Result<()> {
            unreachable!()
        }
        fn destroy(self: Box<Self>) -> Result<Exit> {
            unreachable!()
        }
    }

    fn waiting() -> (LiveSandbox, std::os::unix::net::UnixStream) {
        let (ours, init) = std::os::unix::net::UnixStream::pair().unwrap();
        let (out, _) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let w = LiveSandbox::new(Box::new(Untouched), ours, out, LogStream::none(), 0, 128, "k".into()).unwrap();
        (w, init)
    }

    #[tokio::test]
    async fn a_waiting_sandbox_is_quiet_until_init_reports_an_end_or_goes() {
        let (w, mut init) = waiting();
        assert!(w.quiet());
        init.write_all(
            &FromInit::Exited {
                status: "signal: killed".into(),
            }
            .encode(),
        )
        .unwrap();
        assert!(!w.quiet());

        let (w, init) = waiting();
        drop(init);
        assert!(!w.quiet());
    }

    #[tokio::test]
    async fn the_peek_leaves_the_message_for_the_next_event() {
        let (mut w, mut init) = waiting();
        let status = "exit status 1".to_owned();
        init.write_all(&FromInit::Exited { status: status.clone() }.encode())
            .unwrap();
        assert!(!w.quiet());
        let deadline = Instant::now() + Duration::from_secs(60);
        match w.next_event(deadline, None).await {
            Event::Msg(FromInit::Exited { status: got }) => assert_eq!(got, status),
            other => panic!("{other:?}"),
        }
    }
}
