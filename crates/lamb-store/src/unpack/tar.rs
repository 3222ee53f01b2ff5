//! tar.gz bundles. Regular files, directories and symlinks are taken; hard
//! links, devices, fifos and other entry types are refused. GNU long names
//! and PAX headers are applied by the tar crate before an entry reaches us.

use super::tree::Tree;
use super::UnpackError;
use flate2::read::GzDecoder;
use std::path::PathBuf;
use tar::EntryType;

pub(super) fn unpack(bytes: &[u8], tree: &mut Tree<'_>) -> Result<(), UnpackError> {
    let mut archive = tar::Archive::new(GzDecoder::new(bytes));
    let entries = archive.entries().map_err(UnpackError::corrupt)?;
    for entry in entries {
        let mut entry = entry.map_err(UnpackError::corrupt)?;
        let path: PathBuf = entry.path().map_err(UnpackError::corrupt)?.into_owned();
        let shown = || path.to_string_lossy().into_owned();
        let kind = entry.header().entry_type();
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let mode = entry.header().mode().map_err(UnpackError::corrupt)?;
                tree.add_file(&path, mode & 0o111 != 0, &mut entry)?;
            }
            EntryType::Directory => tree.add_dir(&path)?,
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(UnpackError::corrupt)?
                    .ok_or_else(|| UnpackError::BadName { path: shown() })?
                    .into_owned();
                tree.add_symlink(&path, target)?;
            }
            // A global PAX header describes the archive, not a file.
            EntryType::XGlobalHeader => {}
            EntryType::Link => return Err(UnpackError::HardLink { path: shown() }),
            other => {
                return Err(UnpackError::SpecialFile {
                    path: shown(),
                    kind: special_kind(other),
                })
            }
        }
    }
    Ok(())
}

fn special_kind(kind: EntryType) -> &'static str {
    match kind {
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::GNUSparse => "sparse file",
        _ => "entry of unsupported type",
    }
}
