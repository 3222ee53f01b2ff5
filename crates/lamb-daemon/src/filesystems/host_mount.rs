//! What the daemon mounts on the host over each served directory, for as
//! long as it runs, so that the host side honours what the sandboxes' side
//! does and a served directory cannot fill the host's disk.
//!
//! A sandbox binds a served directory `nosuid,nodev`, but the files it
//! leaves are on the host: a set-uid copy of a shell made by a function
//! (owner: its sandbox uid, which the next sandbox may get) would run as
//! that uid for any local user. So the daemon serves each directory through
//! a mount of its own on the same path, `nosuid,nodev` for everyone:
//! - `NAME=PATH`: PATH bound over itself, then remounted `nosuid,nodev`;
//! - `NAME=PATH,size=10G`: an ext4 image `<data-dir>/filesystems/NAME.ext4`
//!   (sparse, made at the first start with `mkfs.ext4`, grown when a larger
//!   size is given) loop-mounted `nosuid,nodev` on PATH. A write past the
//!   size fails with `ENOSPC` inside the function; the host's file system
//!   holds at most the image. No project quotas needed on the host.
//!
//! The mounts are recorded in `<data-dir>/filesystems/mounts` before they
//! are made and removed (lazily, `MNT_DETACH`) when the daemon stops; a
//! daemon killed before that leaves the record, and the next start on the
//! same data directory removes what it names before mounting again.
//!
//! At start and at stop, with no sandbox running, set-id bits are also
//! stripped from the files (`scrub`): the mount protects the host only
//! while it is there.

use lamb_sandbox::ext4::run;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Strips and logs.
fn strip_set_id(path: &Path) {
    let stripped = super::scrub::strip_set_id(path);
    if stripped > 0 {
        tracing::warn!(path = %path.display(), stripped, "set-uid/set-gid bits removed from files functions left");
    }
}

/// The served directories mounted by this daemon; unmounted when dropped.
#[derive(Debug)]
pub struct HostMounts {
    record: PathBuf,
    mounted: Vec<PathBuf>,
}

impl Drop for HostMounts {
    fn drop(&mut self) {
        for path in &self.mounted {
            strip_set_id(path);
            if let Err(e) = umount2(path, MntFlags::MNT_DETACH) {
                tracing::warn!(path = %path.display(), error = %e, "cannot unmount a served directory");
            }
        }
        let _ = std::fs::remove_file(&self.record);
    }
}

fn state_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("filesystems")
}

/// Removes the mounts a killed daemon of this data directory left.
pub fn sweep(data_dir: &Path) -> io::Result<()> {
    let record = state_dir(data_dir).join("mounts");
    let Ok(listed) = std::fs::read(&record) else {
        return Ok(());
    };
    for path in listed.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = Path::new(std::ffi::OsStr::from_bytes(path));
        match umount2(path, MntFlags::MNT_DETACH) {
            Ok(()) => tracing::info!(path = %path.display(), "removed a served directory's mount a killed daemon left"),
            // Not a mount point (any more): nothing left.
            Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::remove_file(&record)
}

/// Mounts every served directory (`(path, size)`), recording each first.
pub fn mount_all<'a>(
    data_dir: &Path,
    served: impl Iterator<Item = (&'a str, &'a Path, Option<u64>)>,
) -> io::Result<HostMounts> {
    sweep(data_dir)?;
    let dir = state_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let mut mounts = HostMounts {
        record: dir.join("mounts"),
        mounted: Vec::new(),
    };
    for (name, path, size) in served {
        let mut line = path.as_os_str().as_bytes().to_vec();
        line.push(0);
        append(&mounts.record, &line)?;
        match size {
            Some(bytes) => mount_image(&dir.join(format!("{name}.ext4")), path, bytes)?,
            None => bind_nosuid(path)?,
        }
        mounts.mounted.push(path.to_path_buf());
        strip_set_id(path);
    }
    Ok(mounts)
}

fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// PATH over itself, `nosuid,nodev`, keeping the flags it had (read-only,
/// noexec, atime).
fn bind_nosuid(path: &Path) -> io::Result<()> {
    use nix::sys::statvfs::{statvfs, FsFlags};
    let had = statvfs(path)?.flags();
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for (st, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if had.contains(st) {
            flags |= ms;
        }
    }
    mount(Some(path), path, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    if let Err(e) = mount(None::<&str>, path, None::<&str>, flags, None::<&str>) {
        let _ = umount2(path, MntFlags::MNT_DETACH);
        return Err(e.into());
    }
    Ok(())
}

/// The image of a size-limited served directory, made or grown, mounted.
fn mount_image(image: &Path, path: &Path, bytes: u64) -> io::Result<()> {
    if !image.exists() {
        if std::fs::read_dir(path)?.next().is_some() {
            return Err(io::Error::other(format!(
                "{} is not empty: a size-limited file system starts empty (its files live in {}, \
                 mounted there while lamb serves); move the files out, or serve it without size=",
                path.display(),
                image.display()
            )));
        }
        make_image(image, bytes)?;
    } else {
        grow_image(image, bytes)?;
    }
    run(Command::new("mount")
        .args(["-o", "loop,nosuid,nodev"])
        .arg(image)
        .arg(path))
}

fn make_image(image: &Path, bytes: u64) -> io::Result<()> {
    lamb_sandbox::ext4::make_image(image, bytes, lamb_sandbox::ext4::Journal::Yes)
}

/// A larger size grows the image (offline, before it is mounted); a
/// smaller one is let be, with a warning: shrinking could lose files.
fn grow_image(image: &Path, bytes: u64) -> io::Result<()> {
    let had = std::fs::metadata(image)?.len();
    if bytes < had {
        tracing::warn!(image = %image.display(), had, asked = bytes, "a served file system is not shrunk; it keeps its size");
        return Ok(());
    }
    if bytes == had {
        return Ok(());
    }
    run(Command::new("e2fsck").args(["-f", "-p"]).arg(image))?;
    std::fs::OpenOptions::new().write(true).open(image)?.set_len(bytes)?;
    run(Command::new("resize2fs").arg("-p").arg(image))
}

/// `10G`, `512M`, `1T`, `65536K` or bytes; at least 16 MiB (room for
/// ext4's own structures).
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().ok()?;
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return None,
    };
    let bytes = n.checked_mul(1 << shift)?;
    (bytes >= 16 << 20).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10G"), Some(10 << 30));
        assert_eq!(parse_size("64M"), Some(64 << 20));
        assert_eq!(parse_size("1t"), Some(1 << 40));
        assert_eq!(parse_size("16777216"), Some(16 << 20));
        for bad in ["", "G", "10X", "1M", "-5G", "99999999999999999999T", "1.5G"] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
    }
}
