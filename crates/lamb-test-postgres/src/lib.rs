//! A throwaway PostgreSQL for the Rust tests of lamb-store and lamb-cluster
//! (the same as `integration-tests/postgres.py`): Debian's `postgresql` binaries,
//! `initdb` into a temporary directory with trust authentication, listening
//! on 127.0.0.1 at a free port and on a unix socket in that directory; run as
//! the `postgres` user when the tests run as root (PostgreSQL refuses root).
//! Dropping it stops the server and removes its files.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const USER: &str = "lamb";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    run_as: Option<(u32, u32)>,
    child: Option<Child>,
}

/// The newest installed PostgreSQL's `bin` directory. Panics when there is
/// none: `make test` installs the `postgresql` package.
fn bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!("PostgreSQL is not installed (the `postgresql` Debian package; `make deps` installs it)"),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The `postgres` user's uid and gid when running as root.
fn server_user() -> Option<(u32, u32)> {
    if !nix::unistd::geteuid().is_root() {
        return None;
    }
    let user = nix::unistd::User::from_name("postgres")
        .unwrap()
        .expect("no `postgres` user");
    Some((user.uid.as_raw(), user.gid.as_raw()))
}

impl Postgres {
    /// A fresh server with an empty database `lamb`, accepting connections.
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new().prefix("lamb-pg-").tempdir().unwrap();
        let mut pg = Postgres {
            dir,
            bin: bin_dir(),
            port: free_port(),
            run_as: server_user(),
            child: None,
        };
        std::fs::create_dir(pg.socket_dir()).unwrap();
        if let Some((uid, gid)) = pg.run_as {
            for p in [pg.dir.path(), &pg.socket_dir()] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        let data = pg.data_dir();
        pg.run(&[
            "initdb",
            "-D",
            data.to_str().unwrap(),
            "-U",
            USER,
            "--auth=trust",
            "--locale=C",
            "--no-sync",
        ]);
        pg.resume();
        let (socket, port) = (pg.socket_dir(), pg.port.to_string());
        pg.run(&[
            "createdb",
            "-h",
            socket.to_str().unwrap(),
            "-p",
            &port,
            "-U",
            USER,
            "lamb",
        ]);
        pg
    }

    /// `postgres://lamb@127.0.0.1:PORT/lamb`
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/lamb", self.port)
    }

    /// A new empty database; its URL.
    pub fn create_database(&self) -> String {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let name = format!("t{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut admin = postgres::Client::connect(&self.url(), postgres::NoTls).unwrap();
        admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            // std drops the supplementary groups too when it sets the uid as root.
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn run(&self, args: &[&str]) {
        let out = self.command(args[0]).args(&args[1..]).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Starts the server again on the same port and data; returns once it
    /// accepts connections.
    pub fn resume(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("postgres.log")).unwrap();
        let mut cmd = self.command("postgres");
        let (data, socket) = (self.data_dir(), self.socket_dir());
        cmd.args(["-D", data.to_str().unwrap(), "-p", &self.port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", socket.display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        self.child = Some(cmd.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("postgres exited {status}: {}", self.log());
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    USER,
                    "-d",
                    "postgres",
                ])
                .status()
                .unwrap();
            if ready.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("postgres did not start: {}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    /// A fast shutdown (SIGINT to the postmaster): sessions end, data stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
            child.wait().unwrap();
        }
    }

    /// SIGKILL of the server and its backends (its process group): a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            child.wait().unwrap();
            // The backends are reaped by whoever inherits them; a new start
            // refuses while the lock file's owner is still there.
            let deadline = Instant::now() + Duration::from_secs(60);
            while nix::sys::signal::killpg(pgid, None).is_ok() {
                assert!(Instant::now() < deadline, "postgres's processes outlived SIGKILL");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
