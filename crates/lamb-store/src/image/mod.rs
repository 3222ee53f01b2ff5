//! Container images from an OCI Distribution registry: [`Puller::pull`]
//! resolves an `ImageUri` to a manifest (through an index, for the
//! function's architecture), reads the image's configuration, and stores
//! each layer once, unpacked under its blob digest in the code store
//! (`image-layers/<hex>/`), with the bundle rules plus OCI whiteouts.
//!
//! Every blob is checked against its digest before anything of it is used;
//! a layer is downloaded to a scratch file first, so a registry that dies
//! mid-pull leaves only leftovers the store removes, never half a layer.

mod client;

pub use client::RegistryConfig;

use crate::code_store::{CodeStore, Pin};
use crate::digest::CodeDigest;
use crate::error::StoreError;
use crate::unpack::{unpack_image_layer, UnpackLimits};
use lamb_types::image::ImageRef;
use lamb_types::{Architecture, PullFailure, PulledImage};
use oci_spec::image::{Arch, ImageConfiguration, ImageIndex, ImageManifest, Os};
use sha2::{Digest as _, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};

/// Lambda's limit on an image, unpacked.
pub const MAX_IMAGE_BYTES: u64 = 10 * 1024 * 1024 * 1024;
/// Largest manifest, index or configuration read.
const MAX_DOCUMENT: u64 = 4 * 1024 * 1024;
/// Most entries one layer may have (an OS layer has tens of thousands).
const MAX_LAYER_ENTRIES: u64 = 1_000_000;

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Unreachable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

impl PullError {
    /// The reason and code the function's state shows, as AWS's
    /// (`ImageDeleted`, `ImageAccessDenied`, `InvalidImage`).
    pub fn failure(&self, uri: &str) -> PullFailure {
        let (code, reason) = match self {
            Self::NotFound(d) => ("ImageDeleted", format!("Source image {uri} does not exist ({d}).")),
            Self::AccessDenied(d) => (
                "ImageAccessDenied",
                format!("Lambda does not have permission to access image {uri} ({d})."),
            ),
            Self::Unreachable(d) => ("ImageAccessDenied", format!("Cannot pull image {uri}: {d}.")),
            Self::Invalid(d) => ("InvalidImage", format!("Image {uri} is not valid: {d}.")),
            Self::Store(StoreError::Bundle(e)) => ("InvalidImage", format!("Image {uri} has a refused layer: {e}.")),
            Self::Store(e) => ("InternalError", format!("Cannot store image {uri}: {e}.")),
        };
        PullFailure {
            reason,
            code: code.to_owned(),
        }
    }
}

/// A pulled image, its layers pinned in the store until the registry refers
/// to them.
pub struct Pulled {
    pub image: PulledImage,
    pub pins: Vec<Pin>,
}

/// Pulls images into a [`CodeStore`].
pub struct Puller {
    client: client::Client,
    max_bytes: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hex of a `sha256:` digest; other algorithms are refused.
fn hex_of(digest: &oci_spec::image::Digest) -> Result<String, PullError> {
    let text = digest.to_string();
    let hex = text
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| PullError::Invalid(format!("digest {text} is not sha256")))?;
    Ok(hex.to_ascii_lowercase())
}

/// The image configuration. `history` is optional in the OCI spec but not
/// to oci-spec 0.7's parser: a missing one is read as empty.
fn parse_config(bytes: &[u8]) -> Result<ImageConfiguration, PullError> {
    let bad = |e: serde_json::Error| PullError::Invalid(format!("config: {e}"));
    let mut v: serde_json::Value = serde_json::from_slice(bytes).map_err(bad)?;
    if let Some(o) = v.as_object_mut() {
        o.entry("history").or_insert_with(|| serde_json::json!([]));
    }
    serde_json::from_value(v).map_err(bad)
}

fn oci_arch(a: Architecture) -> Arch {
    match a {
        Architecture::X86_64 => Arch::Amd64,
        Architecture::Arm64 => Arch::ARM64,
    }
}

impl Puller {
    pub fn new(config: RegistryConfig) -> Self {
        Self {
            max_bytes: config.max_image_bytes.unwrap_or(MAX_IMAGE_BYTES),
            client: client::Client::new(config),
        }
    }

    /// Pulls `uri` for `arch` into `store`.
    pub fn pull(&self, store: &CodeStore, uri: &str, arch: Architecture) -> Result<Pulled, PullError> {
        let r = ImageRef::parse(uri).map_err(|e| PullError::Invalid(e.message))?;
        let (manifest, manifest_sha) = self.manifest(&r, arch)?;
        let config = self.config(&r, &manifest, arch)?;
        let mut image = PulledImage {
            resolved_uri: r.resolved(&manifest_sha),
            manifest_sha256: manifest_sha,
            ..Default::default()
        };
        if let Some(c) = config.config() {
            image.env = c.env().clone().unwrap_or_default();
            image.entrypoint = c.entrypoint().clone().unwrap_or_default();
            image.cmd = c.cmd().clone().unwrap_or_default();
            image.working_dir = c.working_dir().clone().unwrap_or_default();
        }
        let mut pins = Vec::new();
        for layer in manifest.layers() {
            let hex = hex_of(layer.digest())?;
            let left = self.max_bytes.saturating_sub(image.unpacked_bytes);
            let (bytes, pin) = self.layer(store, &r, &hex, layer.size(), left)?;
            image.unpacked_bytes += bytes;
            image.layers.push(hex);
            pins.push(pin);
        }
        Ok(Pulled { image, pins })
    }

    /// The image manifest and its hex digest; an index is resolved to the
    /// manifest of `linux` on `arch`.
    fn manifest(&self, r: &ImageRef, arch: Architecture) -> Result<(ImageManifest, String), PullError> {
        let (bytes, media) = self.document(r, &format!("manifests/{}", r.reference))?;
        let mut sha = sha256_hex(&bytes);
        if let Some(want) = r.reference.strip_prefix("sha256:") {
            if sha != want {
                return Err(PullError::Invalid(format!(
                    "the manifest's digest is sha256:{sha}, not {}",
                    r.reference
                )));
            }
        }
        let is_index = media.contains("index") || media.contains("manifest.list") || {
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            v.get("manifests").is_some()
        };
        let bytes = if is_index {
            let index = ImageIndex::from_reader(&bytes[..]).map_err(|e| PullError::Invalid(format!("index: {e}")))?;
            let want = oci_arch(arch);
            let chosen = index
                .manifests()
                .iter()
                .find(|d| {
                    d.platform()
                        .as_ref()
                        .is_some_and(|p| *p.architecture() == want && *p.os() == Os::Linux)
                })
                .ok_or_else(|| PullError::Invalid(format!("the image index has no linux/{want} manifest")))?;
            let hex = hex_of(chosen.digest())?;
            let (inner, _) = self.document(r, &format!("manifests/sha256:{hex}"))?;
            sha = sha256_hex(&inner);
            if sha != hex {
                return Err(PullError::Invalid(format!(
                    "manifest sha256:{hex} has digest sha256:{sha}"
                )));
            }
            inner
        } else {
            bytes
        };
        let manifest =
            ImageManifest::from_reader(&bytes[..]).map_err(|e| PullError::Invalid(format!("manifest: {e}")))?;
        Ok((manifest, sha))
    }

    fn document(&self, r: &ImageRef, tail: &str) -> Result<(Vec<u8>, String), PullError> {
        self.client
            .get_small(&r.registry, &r.repository, tail, client::MANIFEST_TYPES, MAX_DOCUMENT)
    }

    /// The image configuration, checked against its digest and `arch`.
    fn config(&self, r: &ImageRef, m: &ImageManifest, arch: Architecture) -> Result<ImageConfiguration, PullError> {
        let hex = hex_of(m.config().digest())?;
        let (bytes, _) = self.client.get_small(
            &r.registry,
            &r.repository,
            &format!("blobs/sha256:{hex}"),
            "*/*",
            MAX_DOCUMENT,
        )?;
        if sha256_hex(&bytes) != hex {
            return Err(PullError::Invalid(format!(
                "config blob sha256:{hex} does not match its digest"
            )));
        }
        let config = parse_config(&bytes)?;
        let want = oci_arch(arch);
        if *config.architecture() != want || *config.os() != Os::Linux {
            return Err(PullError::Invalid(format!(
                "the image is for {}/{}, the function for linux/{want}",
                config.os(),
                config.architecture()
            )));
        }
        Ok(config)
    }

    /// One layer in the store: downloaded to a scratch file and checked
    /// against its digest, then unpacked, unless stored already.
    fn layer(&self, store: &CodeStore, r: &ImageRef, hex: &str, size: u64, left: u64) -> Result<(u64, Pin), PullError> {
        let digest = CodeDigest::from_hex(hex).ok_or_else(|| PullError::Invalid(format!("layer digest {hex}")))?;
        let mut failure = None;
        let stored = store.put_image_layer(digest, |dir| {
            let started = std::time::Instant::now();
            let mut file = match self.download(store, r, hex, size) {
                Ok(f) => f,
                Err(e) => {
                    failure = Some(e);
                    return Err(StoreError::Lambda(lamb_types::LambdaError::service("pull failed")));
                }
            };
            let downloaded = started.elapsed();
            let limits = UnpackLimits {
                max_zipped: u64::MAX,
                max_unzipped: left,
                max_entries: MAX_LAYER_ENTRIES,
            };
            let stats = unpack_image_layer(&mut file, dir, &limits)?;
            // What bounds a pull: the transfer or the unpack (the caller's
            // syncfs and rename follow).
            tracing::info!(
                layer = %hex,
                size,
                unpacked = stats.unzipped_bytes,
                entries = stats.entries,
                download_ms = downloaded.as_millis() as u64,
                unpack_ms = (started.elapsed() - downloaded).as_millis() as u64,
                "image layer unpacked"
            );
            Ok(stats.unzipped_bytes)
        });
        match (stored, failure) {
            (_, Some(e)) => Err(e),
            (Ok(done), None) => Ok(done),
            (Err(e), None) => Err(e.into()),
        }
    }

    /// The blob `hex` in an unlinked scratch file, its digest checked.
    fn download(&self, store: &CodeStore, r: &ImageRef, hex: &str, size: u64) -> Result<File, PullError> {
        let path = store.scratch_path();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| PullError::Store(StoreError::io("create", &path, e)))?;
        // Unlinked at once: a crash leaves nothing, a failure too.
        let _ = std::fs::remove_file(&path);
        let response = self
            .client
            .get(&r.registry, &r.repository, &format!("blobs/sha256:{hex}"), "*/*")?;
        let mut body = response.into_reader().take(size.saturating_add(1));
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        loop {
            let n = match body.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(PullError::Unreachable(format!("reading layer sha256:{hex}: {e}"))),
            };
            got += n as u64;
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| PullError::Store(StoreError::io("write", &path, e)))?;
        }
        if got != size {
            return Err(PullError::Unreachable(format!(
                "layer sha256:{hex} ended after {got} of {size} bytes"
            )));
        }
        if hex::encode(hasher.finalize()) != hex {
            return Err(PullError::Invalid(format!(
                "layer sha256:{hex} does not match its digest"
            )));
        }
        file.rewind()
            .map_err(|e| PullError::Store(StoreError::io("seek", &path, e)))?;
        Ok(file)
    }
}
