//! An in-process [`Launcher`] for the engine's unit tests: each "sandbox" is
//! a thread that speaks `lamb init`'s protocol on the socket the engine
//! hands it, so admission, the pool and the exchange run as in the daemon,
//! without root. What a sandbox does follows its function's name and the
//! payload (see [`FakeLauncher`]); what happened to the sandboxes is kept in
//! a [`Book`] the tests wait on.

use super::launcher::{Launcher, SandboxHandle};
use lamb_protocol::init::{read_frame, FromInit, ToInit};
use lamb_sandbox::{CpuLimit, Exit, Result, SandboxError, SandboxIo, SandboxSpec};
use std::fs::File;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use tokio::sync::watch;

/// The memory peak every fake sandbox's cgroup reports: 80 MiB and a byte.
pub const FAKE_PEAK_BYTES: u64 = 80 * 1024 * 1024 + 1;

/// What happened to the fake's sandboxes.
#[derive(Debug, Clone, Default)]
pub struct Book {
    /// The function of every sandbox created, in order.
    pub created: Vec<String>,
    /// The function of every sandbox destroyed, in order.
    pub destroyed: Vec<String>,
    /// Freezes begun, held or not (see [`FakeLauncher::hold_freezes`]).
    pub freezes_started: u32,
    pub freezes: u32,
    pub thaws: u32,
    pub kills: u32,
    /// Invocations a sandbox has been handed and not yet answered.
    pub running: u32,
    /// Invocations handed to a frozen sandbox: must stay 0.
    pub invoked_while_frozen: u32,
    /// The CPU quota (µs per period) of every sandbox created, as its init
    /// starts under it.
    pub init_quotas: Vec<u64>,
    /// The CPU weight of every sandbox created, as its init starts.
    pub init_weights: Vec<u64>,
    /// CPU limits written to a sandbox's cgroup after its creation.
    pub cpu_writes: u32,
    /// How many sandboxes had been created as each invocation reached its
    /// sandbox.
    pub created_at_invoke: Vec<usize>,
    /// The CPU quota in force as each invocation reached its sandbox.
    pub invoke_quotas: Vec<u64>,
    /// The command line of every sandbox's init, in order.
    pub init_argv: Vec<Vec<String>>,
    /// The environment of every sandbox created, in order.
    pub init_env: Vec<Vec<String>>,
    /// `maxMemoryUsedMB` of every `Report` the engine sent init.
    pub reported_mb: Vec<u64>,
    /// `AWS_LAMBDA_INITIALIZATION_TYPE` of every sandbox created, in order.
    pub init_types: Vec<String>,
    /// SnapStart restores a sandbox was asked for.
    pub restores: u32,
    /// Restores asked of a frozen sandbox: must stay 0.
    pub restored_while_frozen: u32,
    /// The CPU quota in force as each restore reached its sandbox.
    pub restore_quotas: Vec<u64>,
}

/// Sandboxes that behave by their function's name: `init-hangs` never
/// becomes ready, `init-hangs-once` only in its first sandbox,
/// `init-fails` reports an init error, `no-sandbox` cannot be created;
/// others are ready at once. Payloads: `"hold"` answers at the
/// next [`FakeLauncher::open_gate`], `"hang"` never answers, `"crash"`
/// ends the runtime, `"fail"` is a function error, `"extension-holds"` is
/// answered at once and completed at the next gate opening (an extension
/// still working), `"stream"` streams `a`, then `b` at the next gate
/// opening, as init relays a streamed response (`"stream-big"`: 7 MiB more
/// after `b`), `"stream-held"` streams `a` and ends while an extension
/// holds the invocation until the next gate opening; anything else is echoed
/// (and printed on stdout).
#[derive(Clone)]
pub struct FakeLauncher {
    book: Arc<watch::Sender<Book>>,
    gate: Arc<Gate>,
    /// Freezes wait here while `freezes_held`.
    freeze_gate: Arc<Gate>,
    freezes_held: Arc<AtomicBool>,
}

/// Where `"hold"` invocations wait: each opening releases those waiting.
#[derive(Default)]
struct Gate {
    /// How many times the gate was opened.
    openings: Mutex<u64>,
    changed: Condvar,
}

impl Gate {
    /// The gate's openings so far: taken before an invocation shows as
    /// running, so an opening the test makes after seeing it is not missed.
    fn ticket(&self) -> u64 {
        *self.openings.lock().unwrap()
    }

    /// Blocks until `killed` is set or, with a ticket, the gate opens after
    /// it was taken.
    fn wait(&self, killed: &AtomicBool, ticket: Option<u64>) {
        let mut openings = self.openings.lock().unwrap();
        while ticket.is_none_or(|t| *openings == t) && !killed.load(Ordering::SeqCst) {
            openings = self.changed.wait(openings).unwrap();
        }
    }

    /// Releases those waiting now.
    fn open(&self) {
        *self.openings.lock().unwrap() += 1;
        self.wake();
    }

    /// Wakes the waiters; under the lock, so none misses it between its
    /// check and its wait.
    fn wake(&self) {
        let _openings = self.openings.lock().unwrap();
        self.changed.notify_all();
    }
}

impl FakeLauncher {
    pub fn new() -> FakeLauncher {
        FakeLauncher {
            book: Arc::new(watch::channel(Book::default()).0),
            gate: Arc::default(),
            freeze_gate: Arc::default(),
            freezes_held: Arc::default(),
        }
    }

    pub fn book(&self) -> Book {
        self.book.borrow().clone()
    }

    /// Waits until `done` holds for the book; a hang guard, not a timing.
    pub async fn wait_for(&self, what: &str, done: impl FnMut(&Book) -> bool) -> Book {
        let mut rx = self.book.subscribe();
        let wait = async move { rx.wait_for(done).await.map(|b| b.clone()) };
        match tokio::time::timeout(std::time::Duration::from_secs(60), wait).await {
            Ok(Ok(book)) => book,
            _ => panic!("never happened: {what}; book: {:?}", self.book()),
        }
    }

    /// Lets the `"hold"` invocations waiting now answer.
    pub fn open_gate(&self) {
        self.gate.open();
    }

    /// Makes every freeze from now on wait until [`Self::release_freezes`].
    pub fn hold_freezes(&self) {
        self.freezes_held.store(true, Ordering::SeqCst);
    }

    /// Lets the held freezes end, and later ones run at once.
    pub fn release_freezes(&self) {
        self.freezes_held.store(false, Ordering::SeqCst);
        self.freeze_gate.open();
    }

    fn note(&self, f: impl FnOnce(&mut Book)) {
        self.book.send_modify(f);
    }
}

fn function_of(spec: &SandboxSpec) -> String {
    env_of(spec, "AWS_LAMBDA_FUNCTION_NAME")
}

fn env_of(spec: &SandboxSpec, name: &str) -> String {
    let prefix = format!("{name}=");
    spec.process
        .env
        .iter()
        .find_map(|v| v.strip_prefix(&prefix))
        .unwrap_or_default()
        .to_owned()
}

impl Launcher for FakeLauncher {
    fn create(&self, spec: &SandboxSpec, mut io: SandboxIo) -> Result<Box<dyn SandboxHandle>> {
        let function = function_of(spec);
        if function == "no-sandbox" {
            return Err(SandboxError::Spawner("the fake refuses no-sandbox".into()));
        }
        let socket = UnixStream::from(io.extra_fds.remove(0));
        let stdout = File::from(io.stdout.take().expect("the engine passes stdout"));
        let shared = Arc::new(Shared {
            cpu_quota: AtomicU64::new(spec.limits.cpu.quota_us),
            ..Shared::default()
        });
        let first = !self.book().created.contains(&function);
        let behaviour = match function.as_str() {
            "init-hangs-once" if first => "init-hangs",
            other => other,
        }
        .to_owned();
        let init = FakeInit {
            launcher: self.clone(),
            socket: socket.try_clone().expect("dup the socket"),
            stdout,
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::spawn(move || init.run(&behaviour));
        self.note(|b| {
            b.created.push(function.clone());
            b.init_quotas.push(spec.limits.cpu.quota_us);
            b.init_weights.push(spec.limits.cpu.weight);
            b.init_argv.push(spec.process.argv.clone());
            b.init_env.push(spec.process.env.clone());
            b.init_types.push(env_of(spec, "AWS_LAMBDA_INITIALIZATION_TYPE"));
        });
        Ok(Box::new(FakeSandbox {
            launcher: self.clone(),
            function,
            socket,
            shared,
            thread: Some(thread),
        }))
    }
}

/// What a sandbox and its init thread share.
#[derive(Default)]
struct Shared {
    frozen: AtomicBool,
    killed: AtomicBool,
    cpu_quota: AtomicU64,
}

#[derive(Debug)]
struct FakeSandbox {
    launcher: FakeLauncher,
    function: String,
    /// The engine's end of the socket, shut down to kill.
    socket: UnixStream,
    shared: Arc<Shared>,
    /// The init thread; it returns how its runtime ended.
    thread: Option<JoinHandle<Exit>>,
}

impl std::fmt::Debug for FakeLauncher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FakeLauncher")
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Shared")
    }
}

impl SandboxHandle for FakeSandbox {
    fn freeze(&mut self) -> Result<()> {
        if self.launcher.freezes_held.load(Ordering::SeqCst) {
            let ticket = self.launcher.freeze_gate.ticket();
            self.launcher.note(|b| b.freezes_started += 1);
            self.launcher.freeze_gate.wait(&self.shared.killed, Some(ticket));
        } else {
            self.launcher.note(|b| b.freezes_started += 1);
        }
        self.shared.frozen.store(true, Ordering::SeqCst);
        self.launcher.note(|b| b.freezes += 1);
        Ok(())
    }

    fn thaw(&mut self) -> Result<()> {
        self.shared.frozen.store(false, Ordering::SeqCst);
        self.launcher.note(|b| b.thaws += 1);
        Ok(())
    }

    fn kill(&mut self) -> Result<()> {
        self.shared.killed.store(true, Ordering::SeqCst);
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.launcher.gate.wake();
        self.launcher.note(|b| b.kills += 1);
        Ok(())
    }

    /// A cgroup peak of [`FAKE_PEAK_BYTES`].
    fn memory_peak_bytes(&self) -> Result<u64> {
        Ok(FAKE_PEAK_BYTES)
    }

    fn set_cpu(&mut self, cpu: &CpuLimit) -> Result<()> {
        self.shared.cpu_quota.store(cpu.quota_us, Ordering::SeqCst);
        self.launcher.note(|b| b.cpu_writes += 1);
        Ok(())
    }

    fn set_memory(&mut self, _bytes: u64) -> Result<()> {
        Ok(())
    }

    /// The fake runs no pre-initialised sandboxes (the engine's tests keep
    /// `prewarm` off): a call is a bug there.
    fn bind_directory(&mut self, _source: &std::path::Path, _target: &std::path::Path) -> Result<()> {
        Err(lamb_sandbox::SandboxError::Spawner(
            "the fake launcher binds no directory".into(),
        ))
    }

    fn destroy(mut self: Box<Self>) -> Result<Exit> {
        let ended_itself = self.thread.as_ref().is_some_and(|t| t.is_finished());
        self.kill()?;
        let exit = self.thread.take().and_then(|t| t.join().ok());
        self.launcher.note(|b| b.destroyed.push(self.function.clone()));
        Ok(match exit {
            Some(e) if ended_itself => e,
            _ => Exit::Signal(libc::SIGKILL),
        })
    }
}

/// A dropped sandbox is destroyed, as a dropped `RemoteSandbox` is (a
/// cold start past its deadline drops the one made too late).
impl Drop for FakeSandbox {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.kill();
            let _ = thread.join();
            self.launcher.note(|b| b.destroyed.push(self.function.clone()));
        }
    }
}

/// The thread that plays `lamb init` and its runtime.
struct FakeInit {
    launcher: FakeLauncher,
    socket: UnixStream,
    stdout: File,
    shared: Arc<Shared>,
}

impl FakeInit {
    fn run(mut self, function: &str) -> Exit {
        match function {
            "init-hangs" => return self.hang(),
            "init-fails" => {
                let body = br#"{"errorType":"Runtime.Fake","errorMessage":"init failed"}"#.to_vec();
                self.send(&FromInit::InitError {
                    error_type: "Runtime.Fake".into(),
                    body,
                });
                return Exit::Code(1);
            }
            _ => self.send(&FromInit::Ready),
        }
        while let Ok(Some(frame)) = read_frame(&mut self.socket) {
            let invoke = match ToInit::decode(&frame) {
                Ok(ToInit::Invoke(invoke)) => invoke,
                Ok(ToInit::Report { max_memory_used_mb, .. }) => {
                    self.launcher.note(|b| b.reported_mb.push(max_memory_used_mb));
                    continue;
                }
                // A runtime without hooks: ready again at once.
                Ok(ToInit::Restore) => {
                    let frozen = self.shared.frozen.load(Ordering::SeqCst);
                    let quota = self.shared.cpu_quota.load(Ordering::SeqCst);
                    self.launcher.note(|b| {
                        b.restores += 1;
                        b.restore_quotas.push(quota);
                        b.restored_while_frozen += u32::from(frozen);
                    });
                    self.send(&FromInit::Ready);
                    continue;
                }
                _ => return Exit::Code(0),
            };
            if self.shared.frozen.load(Ordering::SeqCst) {
                self.launcher.note(|b| b.invoked_while_frozen += 1);
            }
            let quota = self.shared.cpu_quota.load(Ordering::SeqCst);
            self.launcher.note(|b| {
                b.invoke_quotas.push(quota);
                b.created_at_invoke.push(b.created.len());
            });
            let ticket = self.launcher.gate.ticket();
            self.launcher.note(|b| b.running += 1);
            if invoke.payload == b"\"stream-held\"" {
                self.stream_held(&invoke.request_id, ticket);
                self.launcher.note(|b| b.running -= 1);
                continue;
            }
            if invoke.payload == b"\"extension-holds\"" {
                self.extension_holds(&invoke.request_id, &invoke.payload, ticket);
                self.launcher.note(|b| b.running -= 1);
                continue;
            }
            let answer = self.answer(&invoke.request_id, &invoke.payload, ticket);
            self.launcher.note(|b| b.running -= 1);
            match answer {
                Some(msg) => self.send(&msg),
                None => return Exit::Code(2),
            }
        }
        Exit::Signal(libc::SIGKILL)
    }

    /// The runtime's answer; `None` when it crashed.
    fn answer(&mut self, request_id: &str, payload: &[u8], ticket: u64) -> Option<FromInit> {
        let request_id = request_id.to_owned();
        match payload {
            b"\"hold\"" => self.launcher.gate.wait(&self.shared.killed, Some(ticket)),
            b"\"hang\"" => {
                self.hang();
                return None;
            }
            b"\"crash\"" => {
                self.send(&FromInit::Exited {
                    status: "exit status 2".into(),
                });
                return None;
            }
            // What init sends when an extension crashes mid-invocation.
            b"\"extension-crash\"" => {
                return Some(FromInit::Error {
                    request_id,
                    error_type: "Extension.Crash".into(),
                    body: br#"{"errorType":"Extension.Crash"}"#.to_vec(),
                })
            }
            b"\"stream\"" => return Some(self.stream(request_id, ticket, 0)),
            b"\"stream-big\"" => return Some(self.stream(request_id, ticket, 7)),
            b"\"fail\"" => {
                return Some(FromInit::Error {
                    request_id,
                    error_type: "Fake".into(),
                    body: br#"{"errorType":"Fake"}"#.to_vec(),
                })
            }
            _ => {}
        }
        let _ = writeln!(self.stdout, "echo {}", String::from_utf8_lossy(payload));
        Some(FromInit::Response {
            request_id,
            body: payload.to_vec(),
        })
    }

    /// What init does when an extension still works after the runtime's
    /// answer: `Held`, the answer, and `Complete` once the gate opens.
    fn extension_holds(&mut self, request_id: &str, payload: &[u8], ticket: u64) {
        let request_id = request_id.to_owned();
        self.send(&FromInit::Held {
            request_id: request_id.clone(),
        });
        self.send(&FromInit::Response {
            request_id: request_id.clone(),
            body: payload.to_vec(),
        });
        self.launcher.gate.wait(&self.shared.killed, Some(ticket));
        if !self.shared.killed.load(Ordering::SeqCst) {
            self.send(&FromInit::Complete { request_id });
        }
    }

    /// A streamed response, as init relays it: its first piece now, its
    /// second once the gate opens (then `mib` pieces of 1 MiB), and the
    /// empty response that ends it.
    fn stream(&mut self, request_id: String, ticket: u64, mib: usize) -> FromInit {
        let chunk = |bytes: &[u8]| FromInit::StreamChunk {
            request_id: request_id.clone(),
            bytes: bytes.to_vec(),
        };
        self.send(&FromInit::StreamBegin {
            request_id: request_id.clone(),
            content_type: "text/plain".into(),
        });
        self.send(&chunk(b"a"));
        self.launcher.gate.wait(&self.shared.killed, Some(ticket));
        self.send(&chunk(b"b"));
        for _ in 0..mib {
            self.send(&chunk(&vec![b'x'; 1024 * 1024]));
        }
        FromInit::Response {
            request_id,
            body: Vec::new(),
        }
    }

    /// A streamed response that ends while an extension still works: the
    /// stream, `Held`, its end, and `Complete` once the gate opens.
    fn stream_held(&mut self, request_id: &str, ticket: u64) {
        let request_id = request_id.to_owned();
        self.send(&FromInit::StreamBegin {
            request_id: request_id.clone(),
            content_type: "text/plain".into(),
        });
        self.send(&FromInit::StreamChunk {
            request_id: request_id.clone(),
            bytes: b"a".to_vec(),
        });
        self.send(&FromInit::Held {
            request_id: request_id.clone(),
        });
        self.send(&FromInit::Response {
            request_id: request_id.clone(),
            body: Vec::new(),
        });
        self.launcher.gate.wait(&self.shared.killed, Some(ticket));
        if !self.shared.killed.load(Ordering::SeqCst) {
            self.send(&FromInit::Complete { request_id });
        }
    }

    /// Never answers: waits to be killed.
    fn hang(&self) -> Exit {
        self.launcher.gate.wait(&self.shared.killed, None);
        Exit::Signal(libc::SIGKILL)
    }

    fn send(&mut self, msg: &FromInit) {
        let _ = self.socket.write_all(&msg.encode());
    }
}
