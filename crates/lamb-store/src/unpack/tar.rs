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
        let kind = entry.header().entry_type();
        add_entry(&mut entry, &path, kind, tree)?;
    }
    Ok(())
}

/// One entry of a bundle's kind: a file, a directory or a symlink.
fn add_entry<R: std::io::Read>(
    entry: &mut tar::Entry<'_, R>,
    path: &std::path::Path,
    kind: EntryType,
    tree: &mut Tree<'_>,
) -> Result<(), UnpackError> {
    let shown = || path.to_string_lossy().into_owned();
    match kind {
        EntryType::Regular | EntryType::Continuous => {
            let mode = entry.header().mode().map_err(UnpackError::corrupt)?;
            tree.add_file(path, mode & 0o111 != 0, entry)?;
        }
        EntryType::Directory => tree.add_dir(path)?,
        EntryType::Symlink => {
            let target = entry
                .link_name()
                .map_err(UnpackError::corrupt)?
                .ok_or_else(|| UnpackError::BadName { path: shown() })?
                .into_owned();
            tree.add_symlink(path, target)?;
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

/// OCI whiteout names: `.wh.NAME` hides NAME, `.wh..wh..opq` makes its
/// directory opaque.
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// An image layer (a tar stream, already decompressed): the bundle rules,
/// plus OCI whiteouts and hard links within the layer. Devices and fifos are
/// still refused, setuid bits still dropped.
pub(super) fn unpack_layer(reader: &mut dyn std::io::Read, tree: &mut Tree<'_>) -> Result<(), UnpackError> {
    let mut archive = tar::Archive::new(reader);
    let entries = archive.entries().map_err(UnpackError::corrupt)?;
    for entry in entries {
        let mut entry = entry.map_err(UnpackError::corrupt)?;
        let path: PathBuf = entry.path().map_err(UnpackError::corrupt)?.into_owned();
        let shown = || path.to_string_lossy().into_owned();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = path.parent().map(PathBuf::from).unwrap_or_default();
        if name == OPAQUE {
            tree.make_opaque(&parent)?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT) {
            if hidden.is_empty() || hidden.starts_with(WHITEOUT) {
                return Err(UnpackError::BadName { path: shown() });
            }
            tree.add_whiteout(&parent.join(hidden))?;
            continue;
        }
        match entry.header().entry_type() {
            EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(UnpackError::corrupt)?
                    .ok_or_else(|| UnpackError::BadName { path: shown() })?
                    .into_owned();
                tree.add_hard_link(&path, &target)?;
            }
            kind => add_entry(&mut entry, &path, kind, tree)?,
        }
    }
    Ok(())
}
