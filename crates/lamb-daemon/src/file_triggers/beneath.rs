//! Opening what functions made in a served directory, from the root
//! watcher, without following what they planted there.
//!
//! The served directory is writable by every sandbox: a function can leave a
//! symlink to `/etc/shadow`, a FIFO, a device node or a symlinked directory
//! where the watcher looks. Every open here resolves the path beneath the
//! served root with no symlink in any component (`openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`; before Linux 5.6, a walk of
//! `openat(O_NOFOLLOW)` calls on directory descriptors), never blocks on a
//! FIFO (`O_NONBLOCK`) and never takes a terminal (`O_NOCTTY`); the caller
//! then checks the descriptor's own type with `fstat`.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};

/// Opens `rel` (relative to `root`) read-only, beneath `root` with no
/// symlink anywhere on the way; `directory` asks for a directory.
pub fn open(root: &Path, rel: &Path, directory: bool) -> io::Result<OwnedFd> {
    let root_fd = open_root(root)?;
    let flags = libc::O_RDONLY
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_NOCTTY
        | libc::O_CLOEXEC
        | if directory { libc::O_DIRECTORY } else { 0 };
    if rel.as_os_str().is_empty() {
        // The root itself, opened again for reading (`root_fd` is O_PATH).
        // SAFETY: a NUL-terminated literal; `root_fd` is open.
        return owned(unsafe { libc::openat(root_fd.as_raw_fd(), c".".as_ptr(), flags) });
    }
    match openat2(root_fd.as_raw_fd(), rel, flags) {
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => walk(root_fd, rel, flags),
        r => r,
    }
}

/// Opens a regular file beneath `root`: anything else (a FIFO, a socket, a
/// device node, a directory) is refused after the open, by the descriptor's
/// own type, so nothing can be swapped in between a check and the open.
pub fn open_regular(root: &Path, rel: &Path) -> io::Result<(File, u64)> {
    let file = File::from(open(root, rel, false)?);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok((file, meta.len()))
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    let c = cstring(root.as_os_str().as_bytes())?;
    // SAFETY: `c` is NUL-terminated and outlives the call.
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    owned(fd)
}

fn openat2(dir: RawFd, rel: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cstring(rel.as_os_str().as_bytes())?;
    // SAFETY: zeroed is a valid `open_how`; every field is then set.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = flags as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `c` and `how` outlive the call, and the size passed is `how`'s.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir,
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    owned(fd as libc::c_int)
}

/// The same without `openat2`: one `openat(O_NOFOLLOW)` per component,
/// each from the directory descriptor before it; `..` and absolute
/// components are refused.
fn walk(root: OwnedFd, rel: &Path, flags: libc::c_int) -> io::Result<OwnedFd> {
    let names: Vec<_> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(io::Error::from_raw_os_error(libc::EXDEV)),
        })
        .collect::<io::Result<_>>()?;
    let mut dir = root;
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let f = if last {
            flags
        } else {
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC
        };
        let c = cstring(name.as_bytes())?;
        // SAFETY: `c` is NUL-terminated; `dir` is an open descriptor.
        dir = owned(unsafe { libc::openat(dir.as_raw_fd(), c.as_ptr(), f) })?;
    }
    Ok(dir)
}

fn cstring(bytes: &[u8]) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(bytes).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

fn owned(fd: libc::c_int) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a descriptor the kernel just gave us, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn refused(root: &Path, rel: &str) -> bool {
        open_regular(root, Path::new(rel)).is_err()
    }

    #[test]
    fn follows_nothing_planted() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("served");
        let outside = tmp.path().join("secret");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("f"), b"secret").unwrap();
        std::fs::write(root.join("d/ok"), b"ok").unwrap();
        symlink(outside.join("f"), root.join("link")).unwrap();
        symlink(&outside, root.join("dirlink")).unwrap();
        symlink("../secret/f", root.join("d/rel")).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
        let (_, size) = open_regular(&root, Path::new("d/ok")).unwrap();
        assert_eq!(size, 2);
        for rel in [
            "link",
            "dirlink/f",
            "d/rel",
            "../secret/f",
            "fifo",
            "d",
            "d/../../secret/f",
        ] {
            assert!(refused(&root, rel), "{rel} was opened");
        }
        assert!(open(&root, Path::new("dirlink"), true).is_err());
        assert!(open(&root, Path::new("d"), true).is_ok());
        // The root itself can be listed (watched and walked at start).
        let fd = open(&root, Path::new(""), true).unwrap();
        let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)).unwrap();
        assert!(dir.iter().flatten().any(|e| e.file_name().to_bytes() == b"d"));
        assert!(refused(&root, ""));
    }

    #[test]
    fn the_walk_without_openat2_refuses_the_same() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("served");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/ok"), b"ok").unwrap();
        symlink(tmp.path(), root.join("up")).unwrap();
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let walked = |rel: &str| walk(open_root(&root).unwrap(), Path::new(rel), flags);
        assert!(walked("d/ok").is_ok());
        assert!(walked("up/served/d/ok").is_err());
        assert!(walked("d/../d/ok").is_err());
    }
}
