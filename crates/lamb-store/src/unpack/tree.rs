//! The tree being unpacked: which path is what, so that no entry can go
//! through a symlink, overwrite another entry or escape the root; and the
//! writes themselves, with the byte budget and the final read-only modes.

use super::{UnpackError, UnpackLimits};
use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Longest symlink target taken (Linux's PATH_MAX less the NUL).
pub(crate) const MAX_LINK_TARGET: usize = 4095;
/// Symlinks followed while resolving one target, as the kernel's ELOOP.
const MAX_HOPS: u32 = 40;

/// What an unpack produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnpackStats {
    /// File bytes written.
    pub unzipped_bytes: u64,
    /// Entries unpacked (files, directories, symlinks).
    pub entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir,
    File,
    Symlink(PathBuf),
}

pub(crate) struct Tree<'a> {
    root: &'a Path,
    limits: UnpackLimits,
    nodes: HashMap<PathBuf, Node>,
    /// Symlinks in archive order, created by `finish`.
    symlinks: Vec<(PathBuf, PathBuf)>,
    stats: UnpackStats,
    /// An image layer: absolute symlink targets are rooted at the image's
    /// root (they resolve inside the sandbox's root), not refused.
    rooted_links: bool,
}

/// An entry's path made relative and checked: no root, no `..`, no NUL.
/// `.` components vanish; an empty result is the bundle root itself.
pub(crate) fn clean_path(raw: &Path) -> Result<PathBuf, UnpackError> {
    let shown = || raw.to_string_lossy().into_owned();
    if raw.as_os_str().as_bytes().contains(&0) {
        return Err(UnpackError::BadName { path: shown() });
    }
    let mut out = PathBuf::new();
    for c in raw.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err(UnpackError::ParentDir { path: shown() }),
            Component::RootDir | Component::Prefix(_) => return Err(UnpackError::AbsolutePath { path: shown() }),
        }
    }
    Ok(out)
}

impl<'a> Tree<'a> {
    pub(crate) fn new(root: &'a Path, limits: &UnpackLimits) -> Self {
        Self {
            root,
            limits: *limits,
            nodes: HashMap::new(),
            symlinks: Vec::new(),
            stats: UnpackStats::default(),
            rooted_links: false,
        }
    }

    /// A tree for an image layer (see `rooted_links`).
    pub(crate) fn for_image_layer(root: &'a Path, limits: &UnpackLimits) -> Self {
        Self {
            rooted_links: true,
            ..Self::new(root, limits)
        }
    }

    /// An OCI whiteout of `raw`: overlayfs's own form, a 0/0 character
    /// device, hides the entry of the lower layers.
    pub(crate) fn add_whiteout(&mut self, raw: &Path) -> Result<(), UnpackError> {
        let path = self.prepare(raw)?.ok_or_else(|| UnpackError::BadName {
            path: raw.to_string_lossy().into_owned(),
        })?;
        self.refuse_existing(&path)?;
        self.nodes.insert(path.clone(), Node::File);
        let full = self.root.join(&path);
        nix::sys::stat::mknod(
            &full,
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            nix::sys::stat::makedev(0, 0),
        )
        .map_err(|e| UnpackError::io("create whiteout", &full, e.into()))
    }

    /// An OCI opaque directory (`.wh..wh..opq` in it): overlayfs's opaque
    /// attribute hides everything the lower layers have under it.
    pub(crate) fn make_opaque(&mut self, raw_dir: &Path) -> Result<(), UnpackError> {
        self.add_dir(raw_dir)?;
        let full = self.root.join(clean_path(raw_dir)?);
        let name = c"trusted.overlay.opaque";
        let path = std::ffi::CString::new(full.as_os_str().as_bytes()).map_err(|_| UnpackError::BadName {
            path: raw_dir.to_string_lossy().into_owned(),
        })?;
        // SAFETY: both strings are NUL-terminated and live across the call;
        // the value is one byte long, as passed.
        let rc = unsafe { nix::libc::lsetxattr(path.as_ptr(), name.as_ptr(), b"y".as_ptr().cast(), 1, 0) };
        if rc != 0 {
            return Err(UnpackError::io("mark opaque", &full, std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// A hard link of an image layer, to a regular file of the same layer
    /// already written (a link to anything else is refused).
    pub(crate) fn add_hard_link(&mut self, raw: &Path, target: &Path) -> Result<(), UnpackError> {
        let shown = || raw.to_string_lossy().into_owned();
        let target = clean_path(target)?;
        if self.nodes.get(&target) != Some(&Node::File) {
            return Err(UnpackError::HardLink { path: shown() });
        }
        let path = self
            .prepare(raw)?
            .ok_or_else(|| UnpackError::BadName { path: shown() })?;
        self.refuse_existing(&path)?;
        self.nodes.insert(path.clone(), Node::File);
        let full = self.root.join(&path);
        fs::hard_link(self.root.join(&target), &full).map_err(|e| UnpackError::io("link", &full, e))
    }

    fn count_entry(&mut self) -> Result<(), UnpackError> {
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    /// Makes sure every parent of `path` is a directory of ours, creating the
    /// missing ones; refuses a parent that is a symlink or a file.
    fn claim_parents(&mut self, path: &Path) -> Result<(), UnpackError> {
        let mut prefix = PathBuf::new();
        let parents: Vec<_> = path.parent().map(|p| p.components().collect()).unwrap_or_default();
        for c in parents {
            prefix.push(c);
            match self.nodes.get(&prefix) {
                Some(Node::Dir) => {}
                Some(Node::Symlink(_)) => {
                    return Err(UnpackError::ThroughSymlink {
                        path: path.to_string_lossy().into_owned(),
                        link: prefix.to_string_lossy().into_owned(),
                    })
                }
                Some(Node::File) => {
                    return Err(UnpackError::Duplicate {
                        path: path.to_string_lossy().into_owned(),
                    })
                }
                None => self.make_dir(&prefix)?,
            }
        }
        Ok(())
    }

    fn make_dir(&mut self, rel: &Path) -> Result<(), UnpackError> {
        let full = self.root.join(rel);
        DirBuilder::new()
            .mode(0o700)
            .create(&full)
            .map_err(|e| UnpackError::io("create directory", &full, e))?;
        self.nodes.insert(rel.to_owned(), Node::Dir);
        Ok(())
    }

    /// Cleans `raw` and claims its parents; `None` for the root itself.
    fn prepare(&mut self, raw: &Path) -> Result<Option<PathBuf>, UnpackError> {
        self.count_entry()?;
        let path = clean_path(raw)?;
        if path.as_os_str().is_empty() {
            return Ok(None);
        }
        self.claim_parents(&path)?;
        Ok(Some(path))
    }

    fn refuse_existing(&self, path: &Path) -> Result<(), UnpackError> {
        if self.nodes.contains_key(path) {
            return Err(UnpackError::Duplicate {
                path: path.to_string_lossy().into_owned(),
            });
        }
        Ok(())
    }

    pub(crate) fn add_dir(&mut self, raw: &Path) -> Result<(), UnpackError> {
        let Some(path) = self.prepare(raw)? else {
            return Ok(());
        };
        match self.nodes.get(&path) {
            // A directory named twice overwrites nothing.
            Some(Node::Dir) => Ok(()),
            Some(_) => Err(UnpackError::Duplicate {
                path: path.to_string_lossy().into_owned(),
            }),
            None => self.make_dir(&path),
        }
    }

    /// Writes a regular file from `data`, counting its bytes against the
    /// budget as they arrive (not as the archive claims them).
    pub(crate) fn add_file(&mut self, raw: &Path, executable: bool, data: &mut dyn Read) -> Result<(), UnpackError> {
        let path = self.prepare(raw)?.ok_or_else(|| UnpackError::BadName {
            path: raw.to_string_lossy().into_owned(),
        })?;
        self.refuse_existing(&path)?;
        self.nodes.insert(path.clone(), Node::File);
        let full = self.root.join(&path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&full)
            .map_err(|e| UnpackError::io("create file", &full, e))?;
        self.copy_counted(data, &mut file, &full)?;
        // Setuid, setgid and sticky bits never survive: only 0444 or 0555.
        let mode = if executable { 0o555 } else { 0o444 };
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(|e| UnpackError::io("chmod", &full, e))
    }

    fn copy_counted(&mut self, data: &mut dyn Read, file: &mut fs::File, full: &Path) -> Result<(), UnpackError> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(UnpackError::corrupt(e)),
            };
            self.stats.unzipped_bytes += n as u64;
            // "Unzipped size must be smaller than" the limit: the limit itself
            // is refused too (the recorded test_oversized_unzipped_lambda).
            if self.stats.unzipped_bytes >= self.limits.max_unzipped {
                return Err(UnpackError::UnzippedTooLarge {
                    limit: self.limits.max_unzipped,
                });
            }
            file.write_all(&buf[..n])
                .map_err(|e| UnpackError::io("write", full, e))?;
        }
    }

    /// Records a symlink; it is checked and created by [`Tree::finish`], when
    /// every entry it could resolve through is known.
    pub(crate) fn add_symlink(&mut self, raw: &Path, target: PathBuf) -> Result<(), UnpackError> {
        let path = self.prepare(raw)?.ok_or_else(|| UnpackError::BadName {
            path: raw.to_string_lossy().into_owned(),
        })?;
        self.refuse_existing(&path)?;
        let bytes = target.as_os_str().as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_LINK_TARGET || bytes.contains(&0) {
            return Err(UnpackError::BadName {
                path: path.to_string_lossy().into_owned(),
            });
        }
        self.nodes.insert(path.clone(), Node::Symlink(target.clone()));
        self.symlinks.push((path, target));
        Ok(())
    }

    /// Resolves `target` as the kernel would, from directory `dir`, following
    /// the bundle's own symlinks; `None` when it leaves the bundle or loops.
    fn resolve(&self, dir: &[OsString], target: &Path, hops: &mut u32) -> Option<Vec<OsString>> {
        let mut cur = dir.to_vec();
        for c in target.components() {
            match c {
                Component::RootDir if self.rooted_links => cur.clear(),
                Component::RootDir | Component::Prefix(_) => return None,
                Component::CurDir => {}
                Component::ParentDir => {
                    cur.pop()?;
                }
                Component::Normal(n) => {
                    cur.push(n.to_owned());
                    let key: PathBuf = cur.iter().collect();
                    if let Some(Node::Symlink(next)) = self.nodes.get(&key) {
                        *hops += 1;
                        if *hops > MAX_HOPS {
                            return None;
                        }
                        cur.pop();
                        cur = self.resolve(&cur, next, hops)?;
                    }
                }
            }
        }
        Some(cur)
    }

    /// Checks and creates the symlinks, then makes every directory read-only,
    /// deepest first so that no chmod blocks a later one.
    pub(crate) fn finish(self) -> Result<UnpackStats, UnpackError> {
        for (path, target) in &self.symlinks {
            let dir: Vec<OsString> = path
                .parent()
                .map(|p| p.iter().map(|c| c.to_owned()).collect())
                .unwrap_or_default();
            if self.resolve(&dir, target, &mut 0).is_none() {
                return Err(UnpackError::SymlinkEscape {
                    path: path.to_string_lossy().into_owned(),
                    target: target.to_string_lossy().into_owned(),
                });
            }
        }
        for (path, target) in &self.symlinks {
            let full = self.root.join(path);
            std::os::unix::fs::symlink(target, &full).map_err(|e| UnpackError::io("create symlink", &full, e))?;
        }
        let mut dirs: Vec<&PathBuf> = self
            .nodes
            .iter()
            .filter(|(_, n)| **n == Node::Dir)
            .map(|(p, _)| p)
            .collect();
        dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for rel in dirs {
            set_mode(&self.root.join(rel), 0o555)?;
        }
        set_mode(self.root, 0o555)?;
        Ok(self.stats)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), UnpackError> {
    fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|e| UnpackError::io("chmod", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_path_rules() {
        assert_eq!(clean_path(Path::new("a/b")).unwrap(), Path::new("a/b"));
        assert_eq!(clean_path(Path::new("./a/./b/")).unwrap(), Path::new("a/b"));
        assert_eq!(clean_path(Path::new("./")).unwrap(), Path::new(""));
        assert!(matches!(
            clean_path(Path::new("/etc/passwd")),
            Err(UnpackError::AbsolutePath { .. })
        ));
        assert!(matches!(
            clean_path(Path::new("a/../b")),
            Err(UnpackError::ParentDir { .. })
        ));
        assert!(matches!(
            clean_path(Path::new("a\0b")),
            Err(UnpackError::BadName { .. })
        ));
    }

    fn tree_with(links: &[(&str, &str)], dirs: &[&str]) -> (tempfile::TempDir, Vec<bool>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("r");
        fs::create_dir(&root).unwrap();
        let mut t = Tree::new(&root, &UnpackLimits::default());
        for d in dirs {
            t.add_dir(Path::new(d)).unwrap();
        }
        let mut inside = Vec::new();
        for (l, target) in links {
            t.add_symlink(Path::new(l), PathBuf::from(target)).unwrap();
        }
        for (l, target) in links {
            let p = Path::new(l);
            let parent: Vec<OsString> = p
                .parent()
                .map(|p| p.iter().map(|c| c.to_owned()).collect())
                .unwrap_or_default();
            inside.push(t.resolve(&parent, Path::new(target), &mut 0).is_some());
        }
        (dir, inside)
    }

    #[test]
    fn resolves_through_bundle_symlinks() {
        let (_d, r) = tree_with(
            &[
                ("d/up", ".."),
                ("ok", "d/up/d"),
                ("chain_escape", "d/up/.."),
                ("abs", "/etc"),
                ("loop_a", "loop_b"),
                ("loop_b", "loop_a"),
                ("dangling", "no/such/file"),
            ],
            &["d"],
        );
        assert_eq!(r, vec![true, true, false, false, false, false, true]);
    }
}
