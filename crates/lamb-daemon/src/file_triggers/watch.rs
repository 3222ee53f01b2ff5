//! The inotify watch of one served file system: every directory under its
//! root, recursively, for files finished writing (`IN_CLOSE_WRITE`) or moved
//! in (`IN_MOVED_TO`). A directory created or moved in is watched at once,
//! and the files it already holds are reported (they were moved in, or
//! written before its watch existed): each once. A file still open for
//! writing when the scan finds it is left to its close event, and a file
//! the scan reported is not reported again by a close event that came for
//! the same version of it (it was finished between the watch and the scan).
//!
//! Every directory is opened beneath the root without following symlinks
//! (`beneath::open`) and watched through its descriptor, so a symlinked
//! directory a function planted never makes the watcher look outside.

use super::beneath;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Gets each finished file, as a path under the watched root.
pub type OnFile = Box<dyn FnMut(&Path) + Send>;

struct Watcher {
    inotify: Inotify,
    root: PathBuf,
    dirs: HashMap<WatchDescriptor, PathBuf>,
    /// Files a scan reported, as they were then.
    scanned: HashMap<PathBuf, Version>,
}

/// Forgotten past this many: a duplicate event is the worst that follows.
const MAX_SCANNED: usize = 10_000;

/// One version of a file's content, as far as its metadata tells.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
struct Version {
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl Version {
    fn of(file: &File) -> Option<Version> {
        let m = file.metadata().ok()?;
        Some(Version {
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        })
    }
}

/// Whether some process has `file` open for writing: the kernel refuses a
/// read lease then (root may take one on any file). Where leases are not
/// supported the file counts as finished.
fn open_for_writing(file: &File) -> bool {
    // SAFETY: fcntl on a descriptor `file` owns; F_SETLEASE takes an int.
    let taken = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_RDLCK) };
    if taken == 0 {
        // SAFETY: as above; releasing the lease just taken.
        unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLEASE, libc::F_UNLCK) };
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)
}

/// No `IN_DONT_FOLLOW`: the watch is added through `/proc/self/fd/N`,
/// whose magic link must be followed to the directory opened.
fn flags() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CREATE | AddWatchFlags::IN_ONLYDIR
}

impl Watcher {
    /// Watches `dir` and every directory below it; answers the regular
    /// files found on the way when `report` is set. A loop, not recursion:
    /// a function can nest directories as deep as paths go.
    fn add_tree(&mut self, dir: &Path, report: bool, found: &mut Vec<PathBuf>) {
        let mut todo = vec![dir.to_path_buf()];
        while let Some(dir) = todo.pop() {
            let Some(mut entries) = self.add_dir(&dir) else {
                continue;
            };
            for entry in entries.iter().flatten() {
                let name = std::ffi::OsStr::from_bytes(entry.file_name().to_bytes());
                if name == "." || name == ".." {
                    continue;
                }
                match entry.file_type() {
                    Some(nix::dir::Type::Directory) => todo.push(dir.join(name)),
                    Some(nix::dir::Type::File) if report => {
                        let path = dir.join(name);
                        if self.finished(&path) {
                            found.push(path);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Whether a file a scan found is finished (no writer has it open); if
    /// so, its version is kept to tell its close event, if one comes, apart.
    fn finished(&mut self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let Ok((file, _)) = beneath::open_regular(&self.root, rel) else {
            return false;
        };
        if open_for_writing(&file) {
            return false;
        }
        if self.scanned.len() >= MAX_SCANNED {
            self.scanned.clear();
        }
        if let Some(v) = Version::of(&file) {
            self.scanned.insert(path.to_path_buf(), v);
        }
        true
    }

    /// Whether a close or move event is for the version of the file a scan
    /// already reported.
    fn already_reported(&mut self, path: &Path) -> bool {
        let Some(seen) = self.scanned.remove(path) else {
            return false;
        };
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        beneath::open_regular(&self.root, rel)
            .ok()
            .and_then(|(file, _)| Version::of(&file))
            == Some(seen)
    }

    /// Watches one directory, opened beneath the root; answers its entries.
    fn add_dir(&mut self, dir: &Path) -> Option<nix::dir::Dir> {
        let opened = dir
            .strip_prefix(&self.root)
            .map_err(|_| std::io::Error::from_raw_os_error(libc::EXDEV))
            .and_then(|rel| beneath::open(&self.root, rel, true));
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot open directory to watch");
                return None;
            }
        };
        let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
        match self.inotify.add_watch(via.as_str(), flags()) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
                return None;
            }
        }
        nix::dir::Dir::from_fd(fd.into_raw_fd()).ok()
    }

    fn run(mut self, mut on_file: OnFile) {
        let root = self.root.clone();
        loop {
            let events = match self.inotify.read_events() {
                Ok(ev) => ev,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(root = %root.display(), error = %e, "inotify read failed; file triggers stop");
                    return;
                }
            };
            for ev in events {
                if ev.mask.contains(AddWatchFlags::IN_Q_OVERFLOW) {
                    tracing::warn!(root = %root.display(), "inotify queue overflowed: some new files were missed");
                    continue;
                }
                if ev.mask.contains(AddWatchFlags::IN_IGNORED) {
                    self.dirs.remove(&ev.wd);
                    continue;
                }
                let (Some(dir), Some(name)) = (self.dirs.get(&ev.wd), ev.name.as_ref()) else {
                    continue;
                };
                let path = dir.join(name);
                if ev.mask.contains(AddWatchFlags::IN_ISDIR) {
                    if ev
                        .mask
                        .intersects(AddWatchFlags::IN_CREATE | AddWatchFlags::IN_MOVED_TO)
                    {
                        let mut found = Vec::new();
                        self.add_tree(&path, true, &mut found);
                        found.iter().for_each(|f| on_file(f));
                    }
                } else if ev
                    .mask
                    .intersects(AddWatchFlags::IN_CLOSE_WRITE | AddWatchFlags::IN_MOVED_TO)
                {
                    // Whether it is a regular file is checked on the opened
                    // descriptor (`beneath::open_regular`).
                    if !self.already_reported(&path) {
                        on_file(&path);
                    }
                }
            }
        }
    }
}

/// Starts a thread watching `root`; `on_file` runs on that thread. Every
/// directory is watched before this returns, so a file finished after it is
/// reported.
pub fn spawn(name: &str, root: PathBuf, on_file: OnFile) -> std::io::Result<()> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    let mut watcher = Watcher {
        inotify,
        root: root.clone(),
        dirs: HashMap::new(),
        scanned: HashMap::new(),
    };
    watcher.add_tree(&root, false, &mut Vec::new());
    tracing::info!(root = %root.display(), dirs = watcher.dirs.len(), "watching for new files");
    std::thread::Builder::new()
        .name(format!("watch-{name}"))
        .spawn(move || watcher.run(on_file))
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A watcher on a fresh directory; each reported path comes down the channel.
    fn watching() -> (tempfile::TempDir, mpsc::Receiver<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let (tx, rx) = mpsc::channel();
        spawn(
            "test",
            root,
            Box::new(move |p: &Path| tx.send(p.to_path_buf()).unwrap()),
        )
        .unwrap();
        (dir, rx)
    }

    /// Every path reported up to and including `sentinel`, which the test
    /// writes last: events come in order, so nothing before it is pending.
    fn reported_until(rx: &mpsc::Receiver<PathBuf>, sentinel: &Path) -> Vec<PathBuf> {
        let mut got = Vec::new();
        loop {
            let p = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the sentinel is reported");
            if p == sentinel {
                return got;
            }
            got.push(p);
        }
    }

    #[test]
    fn a_file_still_being_written_when_its_directory_is_scanned_is_reported_once_at_close() {
        let (dir, rx) = watching();
        let root = dir.path().join("root");
        // A directory holding a file open for writing, moved in: the scan
        // finds the file unfinished and leaves it to its close event.
        let outside = dir.path().join("upload");
        std::fs::create_dir(&outside).unwrap();
        let mut writer = File::create(outside.join("photo.ppm")).unwrap();
        writer.write_all(b"P6 half").unwrap();
        std::fs::rename(&outside, root.join("upload")).unwrap();
        // The scan ran once this sentinel, moved in after, is reported.
        let first = root.join("first.txt");
        std::fs::write(dir.path().join("first.txt"), b"x").unwrap();
        std::fs::rename(dir.path().join("first.txt"), &first).unwrap();
        assert_eq!(reported_until(&rx, &first), Vec::<PathBuf>::new());
        writer.write_all(b" and the rest").unwrap();
        drop(writer);
        let last = root.join("last.txt");
        std::fs::write(&last, b"x").unwrap();
        assert_eq!(reported_until(&rx, &last), vec![root.join("upload/photo.ppm")]);
    }

    #[test]
    fn a_close_event_for_the_version_a_scan_reported_is_not_reported_again() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let mut w = Watcher {
            inotify: Inotify::init(InitFlags::IN_CLOEXEC).unwrap(),
            root: root.clone(),
            dirs: HashMap::new(),
            scanned: HashMap::new(),
        };
        let file = root.join("f");
        std::fs::write(&file, b"one").unwrap();
        assert!(w.finished(&file));
        assert!(w.already_reported(&file), "the same version");
        assert!(w.finished(&file));
        std::fs::write(&file, b"two, longer").unwrap();
        assert!(!w.already_reported(&file), "a new version is new");
        assert!(!w.already_reported(&file), "nothing kept after a close event");
    }
}
