//! Small helpers for reading and writing cgroup control files, shared by v1 and v2.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{cgroup_err, Result};

/// Writes `value` to a control file in one `write(2)`, as the kernel expects.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    write_io(path, value).map_err(cgroup_err("write", path))
}

pub(crate) fn write_io(path: &Path, value: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    file.write_all(value.as_bytes())
}

/// Writes a control file that some kernels or configurations lack (swap accounting,
/// burst): a missing file is not an error.
pub(crate) fn write_optional(path: &Path, value: &str) -> Result<()> {
    match write_io(path, value) {
        Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied) => Ok(()),
        other => other.map_err(cgroup_err("write", path)),
    }
}

pub(crate) fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(cgroup_err("read", path))
}

/// Reads a single number; a missing file reads as 0 (older kernels lack some stats).
pub(crate) fn read_u64_or_zero(path: &Path) -> Result<u64> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(cgroup_err("read", path)(e)),
    }
}

/// The value of `key` in a flat keyed file such as `memory.events` or `cpu.stat`.
pub(crate) fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Reads a keyed file, treating a missing file as empty.
pub(crate) fn read_keyed_or_empty(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(cgroup_err("read", path)(e)),
    }
}

/// The PIDs listed in a `cgroup.procs` file.
pub(crate) fn read_pids(path: &Path) -> Result<Vec<i32>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(cgroup_err("read", path)(e)),
    }
}

/// The kernel did not finish freezing or thawing in time.
#[derive(Debug, thiserror::Error)]
#[error("the cgroup did not reach the requested freezer state in time")]
pub struct FreezeTimeout;

/// Polls `done` with a short, growing sleep until it is true or `timeout` passes.
pub(crate) fn poll_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(20);
    loop {
        if done()? {
            return Ok(true);
        }
        if start.elapsed() > timeout {
            return Ok(false);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// `rmdir` that waits while the kernel still counts exiting processes (EBUSY).
pub(crate) fn remove_dir_settled(dir: &Path, timeout: Duration) -> Result<()> {
    let mut last_err = None;
    let removed = poll_until(timeout, || match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            last_err = Some(e);
            Ok(false)
        }
        Err(e) => Err(cgroup_err("rmdir", dir)(e)),
    })?;
    match (removed, last_err) {
        (true, _) => Ok(()),
        (false, err) => Err(cgroup_err("rmdir", dir)(
            err.unwrap_or_else(|| io::Error::from_raw_os_error(libc::EBUSY)),
        )),
    }
}

/// `rmdir` of a sandbox's cgroup `dir`, its init and function groups first
/// (a cgroup with children cannot go).
pub(crate) fn remove_tree_settled(dir: &Path, timeout: Duration) -> Result<()> {
    for group in super::GROUPS {
        remove_dir_settled(&dir.join(group), timeout)?;
    }
    remove_dir_settled(dir, timeout)
}

/// One attempt at [`remove_tree_settled`]: `false` while the kernel still counts exiting processes.
pub(crate) fn try_remove_tree(dir: &Path) -> Result<bool> {
    for group in super::GROUPS {
        if !try_remove_dir(&dir.join(group))? {
            return Ok(false);
        }
    }
    try_remove_dir(dir)
}

/// The PIDs in the cgroup `dir` and in its init and function groups.
pub(crate) fn read_pids_tree(dir: &Path) -> Result<Vec<i32>> {
    let mut pids = read_pids(&dir.join("cgroup.procs"))?;
    for group in super::GROUPS {
        pids.extend(read_pids(&dir.join(group).join("cgroup.procs"))?);
    }
    Ok(pids)
}

/// `dir`'s `cgroup.procs`, opened for writing (close-on-exec, as std opens every file).
pub(crate) fn open_procs(dir: &Path) -> Result<std::os::fd::OwnedFd> {
    let path = dir.join("cgroup.procs");
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(cgroup_err("open", &path))?;
    Ok(file.into())
}

/// One `rmdir`: `true` when `dir` is gone, `false` while the kernel still
/// counts exiting processes in it (EBUSY).
pub(crate) fn try_remove_dir(dir: &Path) -> Result<bool> {
    match fs::remove_dir(dir) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(false),
        Err(e) => Err(cgroup_err("rmdir", dir)(e)),
    }
}

/// Subdirectories of `dir` whose names start with `prefix`.
pub(crate) fn child_names(dir: &Path, prefix: &str) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(cgroup_err("list", dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) && entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Sends SIGKILL to each PID; a PID that already exited is not an error.
pub(crate) fn kill_pids(pids: &[i32]) {
    for &pid in pids {
        // SAFETY: kill(2) takes plain integers and touches no memory of ours.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_values_are_found_by_exact_key() {
        let content = "oom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_value(content, "oom_kill"), Some(1));
        assert_eq!(keyed_value(content, "oom"), Some(2));
        assert_eq!(keyed_value(content, "missing"), None);
    }
}
