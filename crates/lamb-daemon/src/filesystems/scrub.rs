//! Strips set-uid and set-gid bits from the files of a served directory
//! when the daemon starts and stops, so that what a function planted is
//! harmless on the host also once PATH is no longer lamb's `nosuid` mount
//! (`host_mount`). At those times no sandbox runs, so nothing races the
//! walk; it still follows no symlink (`file_triggers::beneath`): it runs
//! as root over what functions wrote. Directories keep their set-gid bit
//! (new files inherit the group through it).

use crate::file_triggers::beneath;
use nix::fcntl::OFlag;
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const SET_ID: u32 = libc::S_ISUID | libc::S_ISGID;

/// Walks `root` and clears the set-id bits of every non-directory; answers
/// how many files it changed.
pub fn strip_set_id(root: &Path) -> usize {
    let mut stripped = 0;
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let Ok(fd) = beneath::open(root, &rel, true) else {
            continue;
        };
        let dirfd = fd.as_raw_fd();
        let Ok(mut dir) = nix::dir::Dir::from_fd(fd.into_raw_fd()) else {
            continue;
        };
        for entry in dir.iter().flatten() {
            let name = OsStr::from_bytes(entry.file_name().to_bytes());
            if name == "." || name == ".." {
                continue;
            }
            let Ok(st) = fstatat(Some(dirfd), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) else {
                continue;
            };
            let kind = SFlag::from_bits_truncate(st.st_mode & libc::S_IFMT);
            if kind == SFlag::S_IFDIR {
                todo.push(rel.join(name));
            } else if kind == SFlag::S_IFREG && st.st_mode & SET_ID != 0 && strip(dirfd, name) {
                stripped += 1;
            }
        }
    }
    stripped
}

/// Clears the bits on the file itself, opened without following a link.
fn strip(dirfd: i32, name: &OsStr) -> bool {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let Ok(raw) = nix::fcntl::openat(Some(dirfd), name, flags, Mode::empty()) else {
        return false;
    };
    // SAFETY: a descriptor just opened, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let Ok(st) = fstat(fd.as_raw_fd()) else { return false };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return false;
    }
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777 & !SET_ID);
    nix::sys::stat::fchmod(fd.as_raw_fd(), mode).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn strips_files_keeps_directories_follows_no_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("served");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        for (p, m) in [
            (root.join("suid"), 0o4755),
            (root.join("a/b/sgid"), 0o2711),
            (outside.join("theirs"), 0o4755),
        ] {
            std::fs::write(&p, b"x").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).unwrap();
        }
        std::fs::set_permissions(root.join("a"), std::fs::Permissions::from_mode(0o2775)).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("theirs"), root.join("a/file-link")).unwrap();
        assert_eq!(strip_set_id(&root), 2);
        assert_eq!(mode(&root.join("suid")), 0o755);
        assert_eq!(mode(&root.join("a/b/sgid")), 0o711);
        assert_eq!(mode(&root.join("a")), 0o2775);
        assert_eq!(mode(&outside.join("theirs")), 0o4755);
    }
}
