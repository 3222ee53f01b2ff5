//! ext4 images in sparse files, made with e2fsprogs: each sandbox's `/tmp`
//! (`crate::tmp_disk`) and the daemon's size-limited served file systems.

use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;

/// Whether an image has a journal: a file system that must survive a crash
/// has one; a `/tmp`, thrown away, is faster and a little larger without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    Yes,
    No,
}

/// A new sparse file of `bytes` holding an empty ext4 file system, all of
/// whose blocks are for use (none reserved for root). Without a journal the
/// inode tables are also left for the kernel to find zeroed (the file is
/// sparse) rather than written now. The file is removed if mkfs fails.
pub fn make_image(image: &Path, bytes: u64, journal: Journal) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(image)?;
    f.set_len(bytes)?;
    drop(f);
    let mut mkfs = Command::new("mkfs.ext4");
    mkfs.args(["-q", "-F", "-m", "0"]);
    if journal == Journal::No {
        mkfs.args(["-O", "^has_journal", "-E", "lazy_itable_init=1,nodiscard"]);
    }
    let made = run(mkfs.arg(image));
    if made.is_err() {
        let _ = fs::remove_file(image);
    }
    made
}

/// Runs a tool of e2fsprogs or util-linux, its error output in the error.
pub fn run(cmd: &mut Command) -> io::Result<()> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("run {program} (e2fsprogs and mount must be installed): {e}"),
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{program} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Whether `image` is a file of exactly `bytes` whose superblock carries
/// ext4's magic: a template fit to copy. Anything else (missing, truncated,
/// another size, overwritten) is made again.
pub fn is_image_of(image: &Path, bytes: u64) -> bool {
    use std::io::Read;
    use std::io::{Seek, SeekFrom};
    // The superblock starts at 1024; its magic, 0xEF53 little-endian, at 56 in it.
    const MAGIC_AT: u64 = 1024 + 56;
    let Ok(mut f) = fs::File::open(image) else {
        return false;
    };
    let mut magic = [0u8; 2];
    f.metadata().is_ok_and(|m| m.is_file() && m.len() == bytes)
        && f.seek(SeekFrom::Start(MAGIC_AT)).is_ok()
        && f.read_exact(&mut magic).is_ok()
        && magic == [0x53, 0xEF]
}

/// A new file at `image` with the same contents as `template`, holes kept:
/// a clone of it (`FICLONE`) where the file system shares blocks (btrfs,
/// XFS), else a copy of its data extents only (`SEEK_DATA`/`SEEK_HOLE` and
/// `copy_file_range`), a few hundred kilobytes of metadata for an empty file
/// system of any size. The file is removed if the copy fails.
pub fn copy_image(template: &Path, image: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let from = fs::File::open(template)?;
    let to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(image)?;
    let copied = clone_file(&from, &to).or_else(|_| copy_extents(&from, &to));
    if copied.is_err() {
        let _ = fs::remove_file(image);
    }
    copied
}

/// `ioctl(FICLONE)`: shares every block of `from` with `to`, copy-on-write.
fn clone_file(from: &fs::File, to: &fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // _IOW(0x94, 9, int), from linux/fs.h.
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: both descriptors are open for the duration of the call.
    match unsafe { libc::ioctl(to.as_raw_fd(), FICLONE, from.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// Copies the data extents of `from` into `to` at the same offsets, and
/// gives `to` the same length (the rest stays a hole).
fn copy_extents(from: &fs::File, to: &fs::File) -> io::Result<()> {
    use nix::unistd::{lseek, Whence};
    use std::os::fd::AsRawFd;
    let len = from.metadata()?.len();
    to.set_len(len)?;
    let mut at: i64 = 0;
    while (at as u64) < len {
        let data = match lseek(from.as_raw_fd(), at, Whence::SeekData) {
            Ok(data) => data,
            // No data after `at`: the rest is a hole.
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(e.into()),
        };
        let hole = lseek(from.as_raw_fd(), data, Whence::SeekHole)?;
        let (mut off_in, mut off_out) = (data, data);
        while off_in < hole {
            let want = (hole - off_in) as usize;
            // SAFETY: both descriptors are open; the offsets are ours.
            let n =
                unsafe { libc::copy_file_range(from.as_raw_fd(), &mut off_in, to.as_raw_fd(), &mut off_out, want, 0) };
            match n {
                n if n > 0 => {}
                0 => return Err(io::Error::other("the template ended while being copied")),
                _ => return Err(io::Error::last_os_error()),
            }
        }
        at = hole;
    }
    Ok(())
}
