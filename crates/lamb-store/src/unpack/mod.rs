//! Safe unpacking of zip and tar.gz bundles into a directory that the caller
//! created empty. Every entry's path is checked component by component and
//! the whole archive is refused on the first bad entry; file bytes are counted
//! as they are written against a running budget; symlinks are created last,
//! after their targets were resolved inside the bundle, so no write ever goes
//! through one. The caller throws the directory away on any error.

mod tar;
mod tree;
mod zip;

use lamb_types::LambdaError;
use std::path::{Path, PathBuf};

pub use tree::UnpackStats;

/// What one unpack may consume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnpackLimits {
    /// Largest archive accepted, in bytes.
    pub max_zipped: u64,
    /// Most file bytes the archive may write (what is left of the 250 MB
    /// once the function's other bundles are counted).
    pub max_unzipped: u64,
    /// Most entries (files, directories, symlinks).
    pub max_entries: u64,
}

impl UnpackLimits {
    /// Lambda's limits for one bundle on its own.
    pub fn from_limits(limits: &lamb_types::Limits) -> Self {
        Self {
            max_zipped: limits.max_zipped_bytes,
            max_unzipped: limits.max_unzipped_bytes,
            max_entries: limits.max_bundle_entries,
        }
    }
}

impl Default for UnpackLimits {
    fn default() -> Self {
        Self::from_limits(&lamb_types::Limits::default())
    }
}

/// Why a bundle was refused. Each variant names the entry at fault.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("entry {path:?} has an absolute path")]
    AbsolutePath { path: String },
    #[error("entry {path:?} has a '..' component")]
    ParentDir { path: String },
    #[error("entry {path:?} has an unusable name")]
    BadName { path: String },
    #[error("entry {path:?} goes through the symlink {link:?}")]
    ThroughSymlink { path: String, link: String },
    #[error("symlink {path:?} points outside the bundle ({target:?})")]
    SymlinkEscape { path: String, target: String },
    #[error("entry {path:?} is a hard link")]
    HardLink { path: String },
    #[error("entry {path:?} is a {kind}")]
    SpecialFile { path: String, kind: &'static str },
    #[error("entry {path:?} would overwrite another entry")]
    Duplicate { path: String },
    #[error("the bundle has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("the bundle is {size} bytes, more than {limit}")]
    ZippedTooLarge { size: u64, limit: u64 },
    #[error("the bundle unpacks to more than {limit} bytes")]
    UnzippedTooLarge { limit: u64 },
    #[error("the bundle is neither a zip nor a tar.gz")]
    UnknownFormat,
    #[error("corrupt archive: {detail}")]
    Corrupt { detail: String },
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl UnpackError {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }

    pub(crate) fn corrupt(detail: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            detail: detail.to_string(),
        }
    }

    /// The answer the API gives: Lambda's exception for each cause.
    pub fn to_lambda(&self) -> LambdaError {
        match self {
            Self::ZippedTooLarge { limit, .. } => {
                LambdaError::request_entity_too_large(format!("Zipped size must be smaller than {limit} bytes"))
            }
            Self::UnzippedTooLarge { limit } => {
                LambdaError::invalid_parameter(format!("Unzipped size must be smaller than {limit} bytes"))
            }
            Self::Corrupt { .. } | Self::UnknownFormat => LambdaError::invalid_parameter(
                "Could not unzip uploaded file. Please check your file, then try to upload again.",
            ),
            Self::Io { source, .. } if is_out_of_space(source) => {
                LambdaError::code_storage_exceeded("Code storage limit exceeded.")
            }
            Self::Io { .. } => LambdaError::service("internal error while storing code"),
            other => LambdaError::invalid_parameter(format!("Invalid bundle: {other}")),
        }
    }
}

fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(code) if code == nix::libc::ENOSPC || code == nix::libc::EDQUOT
    )
}

/// The archive formats lamb takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    TarGz,
}

/// Tells the format from the first bytes.
pub fn detect(bytes: &[u8]) -> Option<Format> {
    match bytes {
        [b'P', b'K', 3, 4, ..] | [b'P', b'K', 5, 6, ..] => Some(Format::Zip),
        [0x1f, 0x8b, ..] => Some(Format::TarGz),
        _ => None,
    }
}

/// Unpacks `bytes` (zip or tar.gz) into `dest`, an empty directory. On error
/// `dest` holds a partial tree that the caller must remove; nothing outside
/// it was touched.
pub fn unpack(bytes: &[u8], dest: &Path, limits: &UnpackLimits) -> Result<UnpackStats, UnpackError> {
    let size = bytes.len() as u64;
    if size > limits.max_zipped {
        return Err(UnpackError::ZippedTooLarge {
            size,
            limit: limits.max_zipped,
        });
    }
    let mut tree = tree::Tree::new(dest, limits);
    match detect(bytes).ok_or(UnpackError::UnknownFormat)? {
        Format::Zip => zip::unpack(bytes, &mut tree)?,
        Format::TarGz => tar::unpack(bytes, &mut tree)?,
    }
    tree.finish()
}

/// Unpacks an OCI image layer, a tar stream gzip-compressed or not (told by
/// its first bytes), into `dest`, an empty directory, with the bundle rules
/// and OCI whiteouts (see [`tar`]). On error `dest` must be removed.
pub fn unpack_image_layer(
    reader: impl std::io::Read,
    dest: &Path,
    limits: &UnpackLimits,
) -> Result<UnpackStats, UnpackError> {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::with_capacity(256 * 1024, reader);
    let head = reader.fill_buf().map_err(UnpackError::corrupt)?;
    let mut tree = tree::Tree::for_image_layer(dest, limits);
    match head {
        [0x1f, 0x8b, ..] => tar::unpack_layer(&mut flate2::read::GzDecoder::new(reader), &mut tree)?,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => {
            return Err(UnpackError::Corrupt {
                detail: "zstd-compressed layers are not supported; push the image with gzip layers".into(),
            })
        }
        _ => tar::unpack_layer(&mut reader, &mut tree)?,
    }
    tree.finish()
}
