//! Zip bundles, as Lambda takes them. Unix modes decide what an entry is
//! (file, directory, symlink, or refused special file) and whether a file is
//! executable; entries without a Unix mode are plain files.

use super::tree::{Tree, MAX_LINK_TARGET};
use super::UnpackError;
use std::collections::HashSet;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

const CENTRAL_HEADER_SIG: u32 = 0x0201_4b50;

pub(super) fn unpack(bytes: &[u8], tree: &mut Tree<'_>) -> Result<(), UnpackError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(UnpackError::corrupt)?;
    refuse_collapsed_duplicates(bytes, &archive)?;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(UnpackError::corrupt)?;
        let name = PathBuf::from(entry.name());
        let mode = entry.unix_mode().unwrap_or(0);
        match mode & S_IFMT {
            _ if entry.is_dir() => tree.add_dir(&name)?,
            S_IFDIR => tree.add_dir(&name)?,
            S_IFLNK => {
                let target = read_link_target(&mut entry, &name)?;
                tree.add_symlink(&name, target)?;
            }
            0 | S_IFREG => tree.add_file(&name, mode & 0o111 != 0, &mut entry)?,
            other => {
                return Err(UnpackError::SpecialFile {
                    path: entry.name().to_owned(),
                    kind: special_kind(other),
                })
            }
        }
    }
    Ok(())
}

fn special_kind(fmt: u32) -> &'static str {
    match fmt {
        0o020_000 => "character device",
        0o060_000 => "block device",
        0o010_000 => "fifo",
        0o140_000 => "socket",
        _ => "file of unknown type",
    }
}

fn read_link_target(entry: &mut dyn Read, name: &Path) -> Result<PathBuf, UnpackError> {
    use std::os::unix::ffi::OsStringExt;
    let mut target = Vec::new();
    entry
        .take(MAX_LINK_TARGET as u64 + 1)
        .read_to_end(&mut target)
        .map_err(UnpackError::corrupt)?;
    if target.len() > MAX_LINK_TARGET {
        return Err(UnpackError::BadName {
            path: name.to_string_lossy().into_owned(),
        });
    }
    Ok(PathBuf::from(std::ffi::OsString::from_vec(target)))
}

/// The zip crate keeps one entry per name, silently dropping earlier ones;
/// count the central directory's own headers to see what it dropped.
fn refuse_collapsed_duplicates(bytes: &[u8], archive: &zip::ZipArchive<Cursor<&[u8]>>) -> Result<(), UnpackError> {
    let names = central_directory_names(bytes, archive.central_directory_start());
    if names.len() == archive.len() {
        return Ok(());
    }
    let mut seen = HashSet::new();
    for name in &names {
        if !seen.insert(name.as_slice()) {
            return Err(UnpackError::Duplicate {
                path: String::from_utf8_lossy(name).into_owned(),
            });
        }
    }
    Err(UnpackError::corrupt("central directory does not match its entry count"))
}

/// Raw names of the consecutive central directory headers from `start`.
fn central_directory_names(bytes: &[u8], start: u64) -> Vec<Vec<u8>> {
    let le16 = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let le32 = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut names = Vec::new();
    let mut at = usize::try_from(start).unwrap_or(usize::MAX);
    while le32(at) == Some(CENTRAL_HEADER_SIG) {
        let (Some(n), Some(e), Some(c)) = (le16(at + 28), le16(at + 30), le16(at + 32)) else {
            break;
        };
        let Some(name) = bytes.get(at + 46..at + 46 + n) else {
            break;
        };
        names.push(name.to_vec());
        at += 46 + n + e + c;
    }
    names
}
