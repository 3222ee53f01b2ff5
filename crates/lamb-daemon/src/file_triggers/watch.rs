//! The inotify watch of one served file system: every directory under its
//! root, recursively, for files finished writing (`IN_CLOSE_WRITE`) or moved
//! in (`IN_MOVED_TO`). A directory created or moved in is watched at once,
//! and the files it already holds are reported (they were moved in, or
//! written before its watch existed).
//!
//! Every directory is opened beneath the root without following symlinks
//! (`beneath::open`) and watched through its descriptor, so a symlinked
//! directory a function planted never makes the watcher look outside.

use super::beneath;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::os::fd::{AsRawFd, IntoRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Gets each finished file, as a path under the watched root.
pub type OnFile = Box<dyn FnMut(&Path) + Send>;

struct Watcher {
    inotify: Inotify,
    root: PathBuf,
    dirs: HashMap<WatchDescriptor, PathBuf>,
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
                    Some(nix::dir::Type::File) if report => found.push(dir.join(name)),
                    _ => {}
                }
            }
        }
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
        self.add_tree(&root, false, &mut Vec::new());
        tracing::info!(root = %root.display(), dirs = self.dirs.len(), "watching for new files");
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
                    on_file(&path);
                }
            }
        }
    }
}

/// Starts a thread watching `root`; `on_file` runs on that thread.
pub fn spawn(name: &str, root: PathBuf, on_file: OnFile) -> std::io::Result<()> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC).map_err(std::io::Error::from)?;
    let watcher = Watcher {
        inotify,
        root,
        dirs: HashMap::new(),
    };
    std::thread::Builder::new()
        .name(format!("watch-{name}"))
        .spawn(move || watcher.run(on_file))
        .map(drop)
}
