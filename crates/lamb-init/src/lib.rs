//! `lamb init`: PID 1 of every sandbox. It serves the Runtime API on
//! 127.0.0.1:9001, starts the runtime's bootstrap with the environment it
//! was given (Lambda's, built by the daemon) in `/var/task`, reaps every
//! process that ends, and relays events and results to and from the daemon
//! over descriptor 3 ([`protocol`]).
//!
//! Plain threads, no async runtime: a warm invocation is two socketpair
//! messages and one loopback HTTP exchange, and a blocking thread per
//! connection is the cheapest way to serve those.
//!
//! The order of start-up matters: the listener is bound before the
//! bootstrap starts (its first connect must not be refused), and descriptor
//! 3 is close-on-exec before anything is started (the runtime must not hold
//! the daemon's socket, or the daemon would never see this process end).

mod api;
mod cgroup;
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod prewarm;
mod relay;
pub mod telemetry;

/// The fingerprint of the sources `lamb init` is built from (this crate's
/// and `lamb-protocol`'s; build.rs): `lamb serve` uses a `lamb-init` binary
/// only when its fingerprint is the daemon's own.
pub const FINGERPRINT: &str = env!("LAMB_INIT_FINGERPRINT");

use lamb_protocol::errors::caller_error;
use lamb_protocol::init as protocol;
use lamb_protocol::{is_custom_runtime, RUNTIME_API};
use protocol::{FromInit, ToInit};
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The descriptor the daemon's socket arrives on.
pub const CONTROL_FD: RawFd = 3;
/// What the runtime gets between SIGTERM and SIGKILL at shutdown (Lambda
/// gives the runtime 300 ms of its 2 s shutdown phase).
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);

/// The daemon end of the conversation; writes from any thread.
pub struct Link {
    out: Mutex<UnixStream>,
}

impl Link {
    /// Sends one message. A daemon that went away leaves nothing to serve:
    /// init exits, which ends the sandbox.
    pub fn send(&self, msg: &FromInit) {
        let frame = msg.encode();
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if out.write_all(&frame).is_err() {
            std::process::exit(2);
        }
    }
}

/// An image's process: the command line (entry point and command) and the
/// directory it starts in, given after `--cwd DIR --` on init's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ImageCommand {
    cwd: String,
    argv: Vec<String>,
}

/// What follows `--runtime NAME --account ID`: nothing, `--prewarm`, or an
/// image's command.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Plain,
    /// A pre-initialised sandbox: the runtime starts before its function is
    /// known ([`prewarm`]).
    Prewarm,
    Image(ImageCommand),
}

fn mode(rest: &[String]) -> Result<Mode, ()> {
    match rest {
        [p] if p == "--prewarm" => Ok(Mode::Prewarm),
        _ => Ok(image_command(rest)?.map_or(Mode::Plain, Mode::Image)),
    }
}

/// The image command that follows `--runtime NAME --account ID`, if any.
fn image_command(rest: &[String]) -> Result<Option<ImageCommand>, ()> {
    match rest {
        [] => Ok(None),
        [c, dir, dashes, argv @ ..] if c == "--cwd" && dashes == "--" => Ok(Some(ImageCommand {
            cwd: dir.clone(),
            argv: argv.to_vec(),
        })),
        _ => Err(()),
    }
}

/// An image without `ENTRYPOINT` and `CMD` (nor `ImageConfig`) has nothing to start.
fn image_argv(image: &ImageCommand) -> Result<Vec<String>, FromInit> {
    if image.argv.is_empty() {
        return Err(FromInit::InitError {
            error_type: "Runtime.InvalidEntrypoint".into(),
            body: caller_error(
                "Runtime.InvalidEntrypoint",
                "The image has no ENTRYPOINT or CMD, and ImageConfig sets none",
            ),
        });
    }
    Ok(image.argv.clone())
}

/// The command line of the runtime, or the init error to report.
fn bootstrap_command(runtime: &str) -> Result<Vec<String>, FromInit> {
    if is_custom_runtime(runtime) {
        let candidates = ["/var/task/bootstrap", "/opt/bootstrap"];
        return match candidates.iter().find(|p| is_executable(Path::new(p))) {
            Some(p) => Ok(vec![(*p).to_owned()]),
            None => Err(invalid_entrypoint(&candidates)),
        };
    }
    let bootstrap = "/var/runtime/bootstrap";
    if !is_executable(Path::new(bootstrap)) {
        return Err(invalid_entrypoint(&[bootstrap]));
    }
    // `$AWS_LAMBDA_EXEC_WRAPPER` is applied by the managed runtime's own
    // bootstrap, as on Lambda: the wrapper gets the interpreter's command line
    // (`python3 /var/runtime/bootstrap.py`), so it can add interpreter options.
    Ok(vec![bootstrap.to_owned()])
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn invalid_entrypoint(tried: &[&str]) -> FromInit {
    let message = format!("Couldn't find valid bootstrap(s): [{}]", tried.join(" "));
    FromInit::InitError {
        error_type: "Runtime.InvalidEntrypoint".into(),
        body: caller_error("Runtime.InvalidEntrypoint", &message),
    }
}

/// Go's wording of how a process ended (`exit status 1`, `signal: killed`).
pub fn exit_text(status: nix::sys::wait::WaitStatus) -> Option<String> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(lamb_protocol::exit::exited(code)),
        WaitStatus::Signaled(_, sig, _) => Some(lamb_protocol::exit::signaled(sig as i32)),
        _ => None,
    }
}

/// Runs init; `args` follow `init` on the command line: `--runtime NAME
/// --account ID` (the function's account, which Lambda's environment has no
/// variable for). Returns only on a set-up failure, with the exit code.
pub fn main(args: &[String]) -> i32 {
    let parsed = match args {
        [r, name, a, account, rest @ ..] if r == "--runtime" && a == "--account" => {
            mode(rest).map(|mode| (name.clone(), account.clone(), mode))
        }
        _ => Err(()),
    };
    let Ok((runtime, account, mode)) = parsed else {
        eprintln!("lamb init: usage: lamb init --runtime NAME --account ID [--prewarm | --cwd DIR -- COMMAND...]");
        return 64;
    };
    let image = match &mode {
        Mode::Image(image) => Some(image.clone()),
        Mode::Plain | Mode::Prewarm => None,
    };
    // 0. Not dumpable: the function runs as init's own user and could
    //    otherwise ptrace init, or write its memory through /proc/1/mem, and
    //    forge messages to the daemon on its socket. The bootstrap's execve
    //    makes the runtime dumpable again, for its own debuggers.
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        eprintln!("lamb init: cannot make itself non-dumpable");
        return 70;
    }
    // 1. The daemon's socket, kept from every child.
    // SAFETY: the sandbox is started with the daemon's socket as descriptor 3
    // and nothing else in this process owns it.
    let control = unsafe { UnixStream::from_raw_fd(CONTROL_FD) };
    if nix::fcntl::fcntl(
        CONTROL_FD,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .is_err()
    {
        eprintln!("lamb init: descriptor 3 is not the daemon's socket");
        return 70;
    }
    let Ok(reader) = control.try_clone() else {
        return 70;
    };
    // The function group's descriptor, kept from every child as well.
    cgroup::take();
    let link = Arc::new(Link {
        out: Mutex::new(control),
    });
    // 2. The Runtime API listener, before the bootstrap can connect.
    let listener = match TcpListener::bind(RUNTIME_API) {
        Ok(l) => l,
        Err(e) => {
            link.send(&FromInit::InitError {
                error_type: "Sandbox.Failure".into(),
                body: caller_error("Sandbox.Failure", &format!("cannot listen on {RUNTIME_API}: {e}")),
            });
            return 71;
        }
    };
    let api = api::Api::new(Arc::clone(&link));
    api.set_account(account);
    // A pre-initialised sandbox's function (its environment) comes later;
    // its runtime's extensions come only from layers, which take the plain
    // path (docs/prewarm.md).
    let prewarm = mode == Mode::Prewarm;
    if !prewarm {
        init_start(&api, &runtime);
    }
    // 3. The external extensions, before the runtime (Lambda's Extension
    //    init), and the threads that serve them and reap them.
    let launched = if prewarm {
        Ok(Vec::new())
    } else {
        launch_extensions(Path::new(EXTENSIONS_DIR), &api)
    };
    let extensions = match launched {
        Ok(started) => started,
        Err(init_error) => {
            link.send(&init_error);
            return 0;
        }
    };
    api.launched(extensions.iter().map(|(_, name)| name.clone()).collect());
    let (api_for_server, api_for_control, api_for_reaper) = (Arc::clone(&api), Arc::clone(&api), Arc::clone(&api));
    let link_for_reaper = Arc::clone(&link);
    let (assigned, assignment) = std::sync::mpsc::channel();
    let threads = [
        std::thread::Builder::new()
            .name("api".into())
            .spawn(move || api_for_server.serve(listener)),
        std::thread::Builder::new()
            .name("control".into())
            .spawn(move || control_loop(reader, api_for_control, assigned)),
        std::thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap(&api_for_reaper, &extensions, &link_for_reaper)),
    ];
    if threads.iter().any(Result::is_err) {
        return 70;
    }
    // 3b. A pre-initialised sandbox starts its runtime now, after init's
    //     threads as a plain start does (so with the same PID), and waits
    //     for its function.
    let prewarmed = if prewarm {
        match prewarm_runtime(&runtime, &api, &link, &assignment) {
            Some(started) => Some(started),
            None => return 0,
        }
    } else {
        None
    };
    // 4. The bootstrap once every extension registered, in /var/task with
    //    the environment init was given. A failed extension was reported
    //    already; init's exit ends the sandbox.
    if api.wait_registered().is_err() {
        return 0;
    }
    if let Some((waiting, env)) = prewarmed {
        // Its output goes to the log as it was started (no extensions).
        prewarm::hand_over(waiting, &env);
        loop {
            std::thread::park();
        }
    }
    let argv = match image.as_ref().map_or_else(|| bootstrap_command(&runtime), image_argv) {
        Ok(argv) => argv,
        Err(init_error) => {
            link.send(&init_error);
            link.send(&FromInit::Exited {
                status: "exit status 127".into(),
            });
            return 0;
        }
    };
    let mut command = Command::new(&argv[0]);
    let cwd = image.as_ref().map_or("/var/task", |i| i.cwd.as_str());
    command.args(&argv[1..]).current_dir(cwd).stdin(Stdio::null());
    if api.has_extensions() {
        relay_output(&api, &mut command, "function");
    }
    cgroup::place(&mut command);
    let spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
    let child = command.spawn();
    match child {
        Ok(c) => api.started(c.id() as i32),
        Err(e) => {
            let tried: Vec<&str> = argv.iter().take(1).map(String::as_str).collect();
            let mut err = invalid_entrypoint(&tried);
            if let FromInit::InitError { body, .. } = &mut err {
                *body = caller_error(
                    "Runtime.InvalidEntrypoint",
                    &format!("cannot start {}: {e}", argv.join(" ")),
                );
            }
            link.send(&err);
            link.send(&FromInit::Exited {
                status: "exit status 127".into(),
            });
            return 0;
        }
    }
    drop(spawning);
    // 5. The reaper ends the process when the bootstrap ends.
    loop {
        std::thread::park();
    }
}

/// Init's `platform.initStart` record, from the function's environment.
fn init_start(api: &api::Api, runtime: &str) {
    api.telemetry.platform(
        "platform.initStart",
        serde_json::json!({
            "initializationType": api::initialization_type(),
            "phase": "init",
            "runtimeVersion": runtime,
            "functionName": std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_default(),
            "functionVersion": std::env::var("AWS_LAMBDA_FUNCTION_VERSION").unwrap_or_default(),
        }),
    );
}

/// Starts a pre-initialised sandbox's runtime, waits for its client's
/// `ready` and then for the function's environment ([`ToInit::Assign`], by
/// way of the control thread), which it makes init's own. `None`: the
/// runtime cannot start, or the daemon sent something else.
fn prewarm_runtime(
    runtime: &str,
    api: &api::Api,
    link: &Link,
    assignment: &std::sync::mpsc::Receiver<Vec<String>>,
) -> Option<(prewarm::Waiting, Vec<String>)> {
    let argv = bootstrap_command(runtime).ok()?;
    let spawning = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
    let waiting = prewarm::spawn(&argv)?;
    // Recorded before the reaper may see it end.
    api.started(waiting.pid as i32);
    drop(spawning);
    prewarm::ready(&waiting, link)?;
    let env = assignment.recv().ok()?;
    prewarm::adopt(&env);
    init_start(api, runtime);
    Some((waiting, env))
}

/// With extensions, the runtime's output goes through init, for the
/// Telemetry API's `function` records ([`relay`]); if the pipe cannot be
/// made, it goes to the log directly and the records are missing.
fn relay_output(api: &Arc<api::Api>, command: &mut Command, kind: &'static str) -> Option<()> {
    let (write, relay) = relay::Relay::new(Arc::clone(&api.telemetry), kind).ok()?;
    let stderr = write.try_clone().ok()?;
    if !relay.start() {
        return None;
    }
    api.add_flush(Box::new(move || {
        relay.drain();
    }));
    command.stdout(Stdio::from(write)).stderr(Stdio::from(stderr));
    Some(())
}

/// Where layers put external extensions.
const EXTENSIONS_DIR: &str = "/opt/extensions";

/// Held while the bootstrap is spawned and its pid recorded, so that the
/// reaper cannot take its end for a stranger's.
static SPAWNING: Mutex<()> = Mutex::new(());

/// Starts every executable file in `dir`, in name order as Lambda does;
/// (pid, file name) of each, or the init error of one that cannot start.
fn launch_extensions(dir: &Path, api: &Arc<api::Api>) -> Result<Vec<(i32, String)>, FromInit> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_executable(p))
        .collect();
    paths.sort();
    let mut started = Vec::new();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut command = Command::new(&path);
        command.current_dir("/opt").stdin(Stdio::null());
        relay_output(api, &mut command, "extension");
        cgroup::place(&mut command);
        let child = command.spawn();
        match child {
            Ok(c) => started.push((c.id() as i32, name)),
            Err(e) => {
                return Err(FromInit::InitError {
                    error_type: "Extension.LaunchError".into(),
                    body: caller_error("Extension.LaunchError", &format!("cannot start extension {name}: {e}")),
                })
            }
        }
    }
    Ok(started)
}

/// Milliseconds since the Unix epoch, for the events' `deadlineMs`.
pub(crate) fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Events from the daemon, until it says shut down or goes away; a
/// pre-initialised sandbox's assignment goes to `assigned`.
fn control_loop(mut reader: UnixStream, api: Arc<api::Api>, assigned: std::sync::mpsc::Sender<Vec<String>>) {
    loop {
        let msg = match protocol::read_frame(&mut reader) {
            Ok(Some(frame)) => ToInit::decode(&frame),
            Ok(None) | Err(_) => std::process::exit(0),
        };
        match msg {
            Ok(ToInit::Invoke(invoke)) => api.deliver(invoke),
            Ok(ToInit::Report {
                request_id,
                max_memory_used_mb,
            }) => api.peak_memory(request_id, max_memory_used_mb),
            Ok(ToInit::Restore) => api.restore(),
            // Only ever the first message of a pre-initialised sandbox;
            // main waits for it (nobody does elsewhere).
            Ok(ToInit::Assign { env }) => {
                let _ = assigned.send(env);
            }
            Ok(ToInit::Shutdown(reason)) => {
                api.shutdown(reason.as_str());
                std::process::exit(0)
            }
            Err(_) => std::process::exit(3),
        }
    }
}

/// PID 1 reaps everything: an extension's end is reported to the API, the
/// bootstrap's ends the sandbox.
fn reap(api: &api::Api, extensions: &[(i32, String)], link: &Link) -> ! {
    use nix::sys::wait::{waitpid, WaitStatus};
    use nix::unistd::Pid;
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(status @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _))) => {
                let text = exit_text(status).unwrap_or_default();
                if let Some((_, name)) = extensions.iter().find(|(p, _)| *p == pid.as_raw()) {
                    api.extension_exited(name, &text);
                    continue;
                }
                let _spawned = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
                // In the shutdown phase the runtime's end is expected; the
                // extensions still have theirs to finish, and the shutdown
                // ends init.
                if api.bootstrap_pid() == pid.as_raw() && !api.shutting_down() {
                    link.send(&FromInit::Exited { status: text });
                    std::process::exit(0);
                }
            }
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // No children: before the bootstrap starts (every extension
            // ended, which was reported), wait for main to give up; after,
            // the bootstrap is gone without a status.
            Err(_) => {
                if api.bootstrap_pid() == 0 {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
                link.send(&FromInit::Exited {
                    status: "exit status 1".into(),
                });
                std::process::exit(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_texts_are_gos() {
        use nix::sys::signal::Signal;
        use nix::sys::wait::WaitStatus;
        use nix::unistd::Pid;
        let pid = Pid::from_raw(5);
        assert_eq!(exit_text(WaitStatus::Exited(pid, 1)).unwrap(), "exit status 1");
        assert_eq!(
            exit_text(WaitStatus::Signaled(pid, Signal::SIGKILL, false)).unwrap(),
            "signal: killed"
        );
    }

    #[test]
    fn prewarm_is_a_mode_of_its_own() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(mode(&args(&["--prewarm"])), Ok(Mode::Prewarm));
        assert_eq!(mode(&[]), Ok(Mode::Plain));
        assert!(matches!(mode(&args(&["--cwd", "/", "--", "x"])), Ok(Mode::Image(_))));
        assert!(mode(&args(&["--prewarm", "x"])).is_err());
    }

    #[test]
    fn an_image_command_follows_cwd_and_dashes() {
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(image_command(&[]), Ok(None));
        let image = image_command(&args(&["--cwd", "/app", "--", "/lambda-entrypoint.sh", "app.handler"]))
            .unwrap()
            .unwrap();
        assert_eq!(image.cwd, "/app");
        assert_eq!(image.argv, ["/lambda-entrypoint.sh", "app.handler"]);
        assert!(image_command(&args(&["--cwd", "/app"])).is_err());
        let empty = image_command(&args(&["--cwd", "/", "--"])).unwrap().unwrap();
        assert!(matches!(image_argv(&empty), Err(FromInit::InitError { .. })));
    }

    #[test]
    fn missing_bootstrap_is_an_invalid_entrypoint() {
        let Err(FromInit::InitError { error_type, body }) = bootstrap_command("provided.al2023") else {
            panic!("a bootstrap was found on the build host");
        };
        assert_eq!(error_type, "Runtime.InvalidEntrypoint");
        let body = String::from_utf8(body).unwrap();
        assert!(body.contains("Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"));
    }
}
