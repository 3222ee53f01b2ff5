//! Owning a data directory: one daemon at a time on it, machine-global names
//! derived from it, and modes that keep what it holds from other local users.
//!
//! Two `flock` locks, both on files in the directory:
//!
//! - `lock` is the daemon's alone. It is taken first, without waiting, so a
//!   second daemon on the directory exits before touching anything. The
//!   spawner is a fork and would share it (a `flock` belongs to the open file
//!   description, which `fork` shares, and `O_CLOEXEC` only acts on `exec`),
//!   so the spawner closes its copy at once ([`DataDirLock::daemon_only_fd`]):
//!   the lock then ends with the daemon, even by `kill -9`.
//! - `spawner.lock` is the daemon's and its spawner's. After a `kill -9` the
//!   orphaned spawner still destroys its sandboxes, under this data
//!   directory's cgroup parent and state directory; the next daemon waits for
//!   this lock before its own spawner and sweep touch either, so the two never
//!   remove the same things at once.
//!
//! Each file holds the pid of its holder, for the messages.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lamb_store::registry::DB_FILE;
use lamb_store::BundleKind;
use sha2::{Digest, Sha256};

/// The daemon's lock, in the data directory.
pub const LOCK_FILE: &str = "lock";
/// The lock the daemon's spawner holds too, until it has destroyed its sandboxes.
pub const SPAWNER_LOCK_FILE: &str = "spawner.lock";
/// How long a daemon waits for a dead daemon's spawner to finish its clean-up.
pub const SPAWNER_WAIT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error(
        "the data directory {dir} is in use by another lamb serve (pid {pid}); stop it, or give this one another --data-dir"
    )]
    InUse { dir: PathBuf, pid: String },
    #[error(
        "the spawner (pid {pid}) of a lamb serve that died is still destroying its sandboxes in {dir} after {waited:?}; wait for it to exit, or kill it"
    )]
    SpawnerBusy {
        dir: PathBuf,
        pid: String,
        waited: Duration,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> DataDirError {
    let path = path.to_path_buf();
    move |source| DataDirError::Io { op, path, source }
}

/// Creates the data directory (0700) when missing and answers its canonical
/// path; an existing directory is left as it is.
pub fn create(dir: &Path) -> Result<PathBuf, DataDirError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err("create", dir))?;
    dir.canonicalize().map_err(io_err("resolve", dir))
}

/// The cgroup parent of the daemon on `canonical_dir`: `lamb-` and 12 hex
/// digits of the SHA-256 of the path, so that daemons on different data
/// directories never share (and never sweep) each other's sandboxes, and a
/// restart on the same directory finds what the dead one left.
pub fn cgroup_parent(canonical_dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let digest = Sha256::digest(canonical_dir.as_os_str().as_bytes());
    format!("lamb-{}", &hex::encode(digest)[..12])
}

/// This data directory's node id (a UUID made at its first start, in the
/// file `node-id`): what its leases on a shared registry are known by
/// across restarts, where paths and host names may repeat.
pub fn node_id(dir: &Path) -> io::Result<String> {
    let path = dir.join("node-id");
    match fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = uuid::Uuid::new_v4().to_string();
    // Written whole then renamed: a crash never leaves half an id.
    let tmp = dir.join("node-id.tmp");
    fs::write(&tmp, &id)?;
    fs::rename(&tmp, &path)?;
    Ok(id)
}

/// The data directory's locks, held while this value lives.
#[derive(Debug)]
pub struct DataDirLock {
    daemon: File,
    spawner: File,
}

impl DataDirLock {
    /// Takes `lock` at once, or fails with [`DataDirError::InUse`] naming the
    /// holder; then waits up to `spawner_wait` for `spawner.lock`, which only
    /// a dead daemon's spawner can still hold. Writes this process's pid in both.
    pub fn take(dir: &Path, spawner_wait: Duration) -> Result<DataDirLock, DataDirError> {
        let daemon = open_lock_file(&dir.join(LOCK_FILE))?;
        if !try_flock(&daemon).map_err(io_err("lock", &dir.join(LOCK_FILE)))? {
            return Err(DataDirError::InUse {
                dir: dir.to_path_buf(),
                pid: holder(&daemon),
            });
        }
        let spawner = open_lock_file(&dir.join(SPAWNER_LOCK_FILE))?;
        let start = Instant::now();
        let mut told = false;
        while !try_flock(&spawner).map_err(io_err("lock", &dir.join(SPAWNER_LOCK_FILE)))? {
            if start.elapsed() >= spawner_wait {
                return Err(DataDirError::SpawnerBusy {
                    dir: dir.to_path_buf(),
                    pid: holder(&spawner),
                    waited: spawner_wait,
                });
            }
            if !told {
                tracing::info!(spawner = %holder(&spawner), "waiting for a dead daemon's spawner to destroy its sandboxes");
                told = true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = std::process::id();
        write_pid(&daemon, pid).map_err(io_err("write", &dir.join(LOCK_FILE)))?;
        write_pid(&spawner, pid).map_err(io_err("write", &dir.join(SPAWNER_LOCK_FILE)))?;
        Ok(DataDirLock { daemon, spawner })
    }

    /// The descriptor the spawner must close right after its fork.
    pub fn daemon_only_fd(&self) -> RawFd {
        self.daemon.as_raw_fd()
    }

    /// Records the spawner's pid in `spawner.lock`, for the next daemon's message.
    pub fn record_spawner(&self, pid: i32) -> io::Result<()> {
        write_pid(&self.spawner, pid.unsigned_abs())
    }
}

/// Opens (creating, 0600) a lock file without changing its content.
fn open_lock_file(path: &Path) -> Result<File, DataDirError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(io_err("open", path))
}

/// `flock(LOCK_EX | LOCK_NB)`: whether the lock is now ours.
fn try_flock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(true);
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::EWOULDBLOCK) => return Ok(false),
            e if e.kind() == io::ErrorKind::Interrupted => continue,
            e => return Err(e),
        }
    }
}

/// The pid the holder wrote, or `unknown` (it may not have written it yet).
fn holder(mut file: &File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    match text.trim() {
        "" => "unknown".into(),
        pid => pid.to_owned(),
    }
}

fn write_pid(mut file: &File, pid: u32) -> io::Result<()> {
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(format!("{pid}\n").as_bytes())
}

/// Closes the data directory to other local users: the directory 0700 (0711
/// with `--userns`, whose sandboxes' set-up, an unprivileged uid on the host,
/// must reach code, layers and the mount point through it), and the files
/// that hold secrets 0600 whatever the directory's mode: the registry and its
/// WAL (functions' environment variables) and the keys. With `--userns` the
/// logs directory is 0700 and `code/` and `layers/` 0711 (entered by digest,
/// not listed). Run at each start, so a directory someone loosened is fixed.
///
/// A new registry is created here, empty and 0600, because SQLite gives its
/// WAL and shared-memory files the database's mode.
pub fn restrict(dir: &Path, user_namespaces: bool) -> Result<(), DataDirError> {
    chmod(dir, if user_namespaces { 0o711 } else { 0o700 })?;
    let db = dir.join(DB_FILE);
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&db)
        .map_err(io_err("create", &db))?;
    for file in [DB_FILE.to_owned(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
        chmod_if_present(&dir.join(file), 0o600)?;
    }
    chmod_if_present(&dir.join(crate::credentials::FILE_NAME), 0o600)?;
    if user_namespaces {
        make_dir(&dir.join("logs"), 0o700)?;
        for kind in [BundleKind::Function, BundleKind::Layer, BundleKind::ImageLayer] {
            make_dir(&dir.join(kind.dir_name()), 0o711)?;
        }
    }
    Ok(())
}

fn make_dir(path: &Path, mode: u32) -> Result<(), DataDirError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(io_err("create", path))?;
    chmod(path, mode)
}

fn chmod(path: &Path, mode: u32) -> Result<(), DataDirError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err("chmod", path))
}

fn chmod_if_present(path: &Path, mode: u32) -> Result<(), DataDirError> {
    match fs::set_permissions(path, fs::Permissions::from_mode(mode)) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other.map_err(io_err("chmod", path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_cgroup_parent_is_per_data_directory() {
        // integration-tests/conftest.py computes the same name (its `cgroup_parent`).
        assert_eq!(cgroup_parent(Path::new("/var/lib/lamb")), "lamb-cee6b5ed2c29");
        let a = cgroup_parent(Path::new("/tmp/a/data"));
        let b = cgroup_parent(Path::new("/tmp/b/data"));
        assert_ne!(a, b);
        assert_eq!(a, cgroup_parent(Path::new("/tmp/a/data")));
        assert!(
            a.len() == 17
                && a.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        );
    }

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = create(&tmp.path().join("data")).unwrap();
        let first = DataDirLock::take(&dir, Duration::ZERO).unwrap();
        // flock locks of two open file descriptions conflict even in one process.
        let err = DataDirLock::take(&dir, Duration::ZERO).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DataDirError::InUse { .. }), "{message}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        assert!(message.contains(&format!("pid {}", std::process::id())), "{message}");
        drop(first);
        let again = DataDirLock::take(&dir, Duration::ZERO).unwrap();
        drop(again);
    }

    #[test]
    fn a_held_spawner_lock_is_waited_for_then_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = create(&tmp.path().join("data")).unwrap();
        // A dead daemon's spawner: the spawner lock held, the daemon's free.
        let orphan = open_lock_file(&dir.join(SPAWNER_LOCK_FILE)).unwrap();
        assert!(try_flock(&orphan).unwrap());
        write_pid(&orphan, 4242).unwrap();
        let err = DataDirLock::take(&dir, Duration::ZERO).unwrap_err();
        assert!(matches!(err, DataDirError::SpawnerBusy { .. }), "{err}");
        assert!(err.to_string().contains("pid 4242"), "{err}");
        // The refused daemon released its own lock on the way out.
        drop(orphan);
        let lock = DataDirLock::take(&dir, Duration::ZERO).unwrap();
        lock.record_spawner(77).unwrap();
        assert_eq!(fs::read_to_string(dir.join(SPAWNER_LOCK_FILE)).unwrap(), "77\n");
    }

    #[test]
    fn restrict_closes_the_directory_and_its_secrets() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = create(&tmp.path().join("data")).unwrap();
        assert_eq!(fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("lamb.db-wal"), b"").unwrap();
        fs::set_permissions(dir.join("lamb.db-wal"), fs::Permissions::from_mode(0o644)).unwrap();
        let mode = |name: &str| fs::metadata(dir.join(name)).unwrap().mode() & 0o777;
        restrict(&dir, false).unwrap();
        assert_eq!(mode(""), 0o700);
        assert_eq!(mode("lamb.db"), 0o600);
        assert_eq!(mode("lamb.db-wal"), 0o600);
        assert!(!dir.join("credentials").exists() && !dir.join("code").exists());
        restrict(&dir, true).unwrap();
        assert_eq!(
            (mode(""), mode("logs"), mode("code"), mode("layers")),
            (0o711, 0o700, 0o711, 0o711)
        );
    }
}
