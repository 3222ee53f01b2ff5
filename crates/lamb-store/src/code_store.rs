//! The content-addressed bundle store: `code/<hex sha256>/` for function code
//! and `layers/<hex sha256>/` for layers, each an unpacked, read-only tree
//! shared by every version that uploaded the same bytes.
//!
//! A bundle is unpacked into `<kind>/.tmp-<random>/`, synced, and renamed to
//! its hex name, so a directory under a hex name is always complete; a
//! failure or a crash leaves only a `.tmp-` directory, removed at the next
//! open. Removal renames to `.trash-<random>` first for the same reason.

use crate::digest::CodeDigest;
use crate::error::StoreError;
use crate::unpack::{self, UnpackError, UnpackLimits};
use std::collections::{HashMap, HashSet};
use std::fs::{self, DirBuilder, File, Permissions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

const TMP_PREFIX: &str = ".tmp-";
const TRASH_PREFIX: &str = ".trash-";
/// The original zip of a bundle: `<hex sha256>.zip` beside its tree.
const ZIP_SUFFIX: &str = ".zip";

/// Which half of the store a bundle lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleKind {
    Function,
    Layer,
    /// A layer of a container image, named by its blob's digest.
    ImageLayer,
}

impl BundleKind {
    /// Its directory in the data directory.
    pub fn dir_name(self) -> &'static str {
        match self {
            Self::Function => "code",
            Self::Layer => "layers",
            Self::ImageLayer => "image-layers",
        }
    }
}

type Pins = Arc<Mutex<HashMap<(BundleKind, CodeDigest), usize>>>;

fn lock(pins: &Pins) -> MutexGuard<'_, HashMap<(BundleKind, CodeDigest), usize>> {
    // A panic while holding the map leaves it consistent (plain inserts).
    pins.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Keeps a bundle safe from [`CodeStore::gc`] until the registry refers to
/// it: drop it after the registry transaction committed (or failed).
#[derive(Debug)]
pub struct Pin {
    pins: Pins,
    key: (BundleKind, CodeDigest),
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut map = lock(&self.pins);
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// A bundle in the store, pinned while this value lives.
#[derive(Debug)]
pub struct StoredBundle {
    pub kind: BundleKind,
    pub digest: CodeDigest,
    /// Size of the uploaded archive (`CodeSize`).
    pub code_size: u64,
    /// File bytes of the unpacked tree.
    pub unzipped_size: u64,
    /// The unpacked tree.
    pub path: PathBuf,
    pub pin: Pin,
}

/// The bundles the registry still refers to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Referenced {
    pub code: HashSet<CodeDigest>,
    pub layers: HashSet<CodeDigest>,
    /// Image layers, by blob digest.
    pub image_layers: HashSet<CodeDigest>,
}

/// What one garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: Vec<(BundleKind, CodeDigest)>,
}

/// The bundle store under one data directory. One process owns it.
#[derive(Debug)]
pub struct CodeStore {
    root: PathBuf,
    pins: Pins,
}

impl CodeStore {
    /// Opens (creating) `code/` and `layers/` under `data_dir` and removes
    /// what an interrupted unpack or removal left.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let store = Self {
            root: data_dir.to_owned(),
            pins: Pins::default(),
        };
        for kind in [BundleKind::Function, BundleKind::Layer, BundleKind::ImageLayer] {
            let dir = store.kind_dir(kind);
            DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(&dir)
                .map_err(|e| StoreError::io("create directory", &dir, e))?;
            for name in list(&dir)? {
                if name.starts_with(TMP_PREFIX) || name.starts_with(TRASH_PREFIX) {
                    let path = dir.join(name);
                    if path.is_file() {
                        fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
                    } else {
                        remove_tree(&path)?;
                    }
                }
            }
        }
        Ok(store)
    }

    fn kind_dir(&self, kind: BundleKind) -> PathBuf {
        self.root.join(kind.dir_name())
    }

    /// Where the unpacked tree of `digest` is (whether or not it exists).
    pub fn path(&self, kind: BundleKind, digest: &CodeDigest) -> PathBuf {
        self.kind_dir(kind).join(digest.hex())
    }

    /// Where the original zip of `digest` is kept, beside its tree, for
    /// `Code.Location` (bundles stored before lamb kept zips have none).
    pub fn zip_path(&self, kind: BundleKind, digest: &CodeDigest) -> PathBuf {
        self.kind_dir(kind).join(format!("{}{ZIP_SUFFIX}", digest.hex()))
    }

    pub fn contains(&self, kind: BundleKind, digest: &CodeDigest) -> bool {
        self.path(kind, digest).is_dir()
    }

    fn pin(&self, kind: BundleKind, digest: CodeDigest) -> Pin {
        *lock(&self.pins).entry((kind, digest)).or_insert(0) += 1;
        Pin {
            pins: Arc::clone(&self.pins),
            key: (kind, digest),
        }
    }

    /// Stores an uploaded bundle: unpacks it unless the same bytes are
    /// already stored, and pins it. `limits.max_unzipped` is the budget left
    /// for this bundle once the function's other bundles are counted.
    pub fn put(&self, kind: BundleKind, bytes: &[u8], limits: &UnpackLimits) -> Result<StoredBundle, StoreError> {
        let code_size = bytes.len() as u64;
        if code_size > limits.max_zipped {
            return Err(UnpackError::ZippedTooLarge {
                size: code_size,
                limit: limits.max_zipped,
            }
            .into());
        }
        let digest = CodeDigest::of(bytes);
        let pin = self.pin(kind, digest);
        let path = self.path(kind, &digest);
        let unzipped_size = if path.is_dir() {
            let size = tree_size(&path)?;
            if size >= limits.max_unzipped {
                return Err(UnpackError::UnzippedTooLarge {
                    limit: limits.max_unzipped,
                }
                .into());
            }
            size
        } else {
            self.unpack_into_place(kind, bytes, &path, limits)?
        };
        self.keep_zip(kind, &digest, bytes)?;
        Ok(StoredBundle {
            kind,
            digest,
            code_size,
            unzipped_size,
            path,
            pin,
        })
    }

    fn unpack_into_place(
        &self,
        kind: BundleKind,
        bytes: &[u8],
        path: &Path,
        limits: &UnpackLimits,
    ) -> Result<u64, StoreError> {
        let parent = self.kind_dir(kind);
        let staging = Staging::create(&parent)?;
        let stats = unpack::unpack(bytes, &staging.0, limits)?;
        // The rename must not become visible before the files it names.
        sync_filesystem(&staging.0)?;
        match fs::rename(&staging.0, path) {
            Ok(()) => {
                staging.keep();
                sync_dir(&parent)?;
            }
            // Another put of the same bytes won the race: same content.
            Err(_) if path.is_dir() => drop(staging),
            Err(e) => return Err(StoreError::io("rename", path, e)),
        }
        Ok(stats.unzipped_bytes)
    }

    /// Stores an image layer under its blob digest, pinned: `unpack` fills
    /// an empty staging directory and answers the file bytes it wrote; the
    /// directory appears under the digest only once complete. A layer
    /// already stored is not unpacked again.
    pub fn put_image_layer(
        &self,
        digest: CodeDigest,
        unpack: impl FnOnce(&Path) -> Result<u64, StoreError>,
    ) -> Result<(u64, Pin), StoreError> {
        let kind = BundleKind::ImageLayer;
        let pin = self.pin(kind, digest);
        let path = self.path(kind, &digest);
        if path.is_dir() {
            return Ok((tree_size(&path)?, pin));
        }
        let parent = self.kind_dir(kind);
        let staging = Staging::create(&parent)?;
        let bytes = unpack(&staging.0)?;
        sync_filesystem(&staging.0)?;
        match fs::rename(&staging.0, &path) {
            Ok(()) => {
                staging.keep();
                sync_dir(&parent)?;
            }
            Err(_) if path.is_dir() => drop(staging),
            Err(e) => return Err(StoreError::io("rename", &path, e)),
        }
        Ok((bytes, pin))
    }

    /// A scratch file beside the image layers (a blob being downloaded),
    /// removed with the other leftovers at the next open.
    pub fn scratch_path(&self) -> PathBuf {
        self.kind_dir(BundleKind::ImageLayer)
            .join(format!("{TMP_PREFIX}{:016x}.blob", rand::random::<u64>()))
    }

    /// Writes the zip beside its tree (staged, synced, renamed) unless it is
    /// there already.
    fn keep_zip(&self, kind: BundleKind, digest: &CodeDigest, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.zip_path(kind, digest);
        if path.is_file() {
            return Ok(());
        }
        let dir = self.kind_dir(kind);
        let staging = dir.join(format!("{TMP_PREFIX}{:016x}{ZIP_SUFFIX}", rand::random::<u64>()));
        let written = File::create(&staging).and_then(|mut f| {
            std::io::Write::write_all(&mut f, bytes)?;
            f.sync_all()
        });
        if let Err(e) = written.and_then(|()| fs::rename(&staging, &path)) {
            let _ = fs::remove_file(&staging);
            return Err(StoreError::io("write", &path, e));
        }
        sync_dir(&dir)
    }

    /// File bytes of a stored bundle, as counted when it was unpacked.
    pub fn unzipped_size(&self, kind: BundleKind, digest: &CodeDigest) -> Result<u64, StoreError> {
        tree_size(&self.path(kind, digest))
    }

    /// Removes every bundle that `referenced` (asked while no bundle can be
    /// pinned) does not name and that no [`Pin`] holds.
    pub fn gc(&self, referenced: impl FnOnce() -> Result<Referenced, StoreError>) -> Result<GcReport, StoreError> {
        let pins = lock(&self.pins);
        let referenced = referenced()?;
        let mut report = GcReport::default();
        for (kind, keep) in [
            (BundleKind::Function, &referenced.code),
            (BundleKind::Layer, &referenced.layers),
            (BundleKind::ImageLayer, &referenced.image_layers),
        ] {
            let dir = self.kind_dir(kind);
            for name in list(&dir)? {
                // A tree, or the zip kept beside it: both go with the bundle.
                let Some(digest) = CodeDigest::from_hex(name.strip_suffix(ZIP_SUFFIX).unwrap_or(&name)) else {
                    continue;
                };
                if keep.contains(&digest) || pins.contains_key(&(kind, digest)) {
                    continue;
                }
                let trash = dir.join(format!("{TRASH_PREFIX}{:016x}", rand::random::<u64>()));
                let from = dir.join(&name);
                fs::rename(&from, &trash).map_err(|e| StoreError::io("rename", &from, e))?;
                remove_tree(&trash)?;
                if !name.ends_with(ZIP_SUFFIX) {
                    report.removed.push((kind, digest));
                }
            }
        }
        Ok(report)
    }
}

/// A staging directory, removed on drop unless kept after the rename.
struct Staging(PathBuf);

impl Staging {
    fn create(parent: &Path) -> Result<Self, StoreError> {
        let path = parent.join(format!("{TMP_PREFIX}{:016x}", rand::random::<u64>()));
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|e| StoreError::io("create directory", &path, e))?;
        Ok(Self(path))
    }

    /// Its path now names the bundle: nothing to remove. (Not
    /// `mem::forget`, which leaked the path, as the API fuzz target found.)
    fn keep(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.0.as_os_str().is_empty() {
            return;
        }
        // Best effort: a leftover is removed by the next `CodeStore::open`.
        let _ = remove_tree(&self.0);
    }
}

fn list(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| StoreError::io("read directory", dir, e))? {
        let entry = entry.map_err(|e| StoreError::io("read directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// Removes a read-only tree: directories are made writable first so that
/// removal also works without CAP_DAC_OVERRIDE.
pub(crate) fn remove_tree(path: &Path) -> Result<(), StoreError> {
    if fs::symlink_metadata(path).is_ok_and(|m| !m.is_dir()) {
        return fs::remove_file(path).map_err(|e| StoreError::io("remove", path, e));
    }
    make_dirs_writable(path)?;
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io("remove", path, e)),
    }
}

fn make_dirs_writable(path: &Path) -> Result<(), StoreError> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    fs::set_permissions(path, Permissions::from_mode(0o700)).map_err(|e| StoreError::io("chmod", path, e))?;
    for entry in fs::read_dir(path).map_err(|e| StoreError::io("read directory", path, e))? {
        let entry = entry.map_err(|e| StoreError::io("read directory", path, e))?;
        make_dirs_writable(&entry.path())?;
    }
    Ok(())
}

/// Sum of the regular files' sizes under `path`, symlinks not followed.
fn tree_size(path: &Path) -> Result<u64, StoreError> {
    let meta = fs::symlink_metadata(path).map_err(|e| StoreError::io("stat", path, e))?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    if !meta.is_dir() {
        return Ok(0);
    }
    let mut total = 0;
    for entry in fs::read_dir(path).map_err(|e| StoreError::io("read directory", path, e))? {
        let entry = entry.map_err(|e| StoreError::io("read directory", path, e))?;
        total += tree_size(&entry.path())?;
    }
    Ok(total)
}

/// One syncfs instead of an fsync per file: unpacks write many small files.
fn sync_filesystem(path: &Path) -> Result<(), StoreError> {
    let dir = File::open(path).map_err(|e| StoreError::io("open", path, e))?;
    nix::unistd::syncfs(dir.as_raw_fd()).map_err(|e| StoreError::io("syncfs", path, std::io::Error::from(e)))
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io("fsync", path, e))
}
