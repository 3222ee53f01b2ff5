//! The inotify watch of one served file system: every directory under its
//! root, recursively, for files finished writing (`IN_CLOSE_WRITE`) or moved
//! in (`IN_MOVED_TO`). A directory created or moved in is watched at once,
//! and the files it already holds are reported (they were moved in, or
//! written before its watch existed).

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Gets each finished file, as a path under the watched root.
pub type OnFile = Box<dyn FnMut(&Path) + Send>;

struct Watcher {
    inotify: Inotify,
    root: PathBuf,
    dirs: HashMap<WatchDescriptor, PathBuf>,
}

fn flags() -> AddWatchFlags {
    AddWatchFlags::IN_CLOSE_WRITE
        | AddWatchFlags::IN_MOVED_TO
        | AddWatchFlags::IN_CREATE
        | AddWatchFlags::IN_ONLYDIR
        | AddWatchFlags::IN_DONT_FOLLOW
}

impl Watcher {
    /// Watches `dir` and every directory below it; answers the regular
    /// files found on the way when `report` is set.
    fn add_tree(&mut self, dir: &Path, report: bool, found: &mut Vec<PathBuf>) {
        match self.inotify.add_watch(dir, flags()) {
            Ok(wd) => {
                self.dirs.insert(wd, dir.to_path_buf());
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory");
                return;
            }
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                self.add_tree(&entry.path(), report, found);
            } else if kind.is_file() && report {
                found.push(entry.path());
            }
        }
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
                    && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file())
                {
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
