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
