//! Served file systems: host directories `lamb serve --filesystem NAME=PATH`
//! offers to functions, which mount them through `FileSystemConfigs`
//! (access point `arn:aws:elasticfilesystem:<region>:<account>:access-point/NAME`).
//!
//! Ownership, as an EFS access point's root directory with creation info
//! `OwnerGid=990, Permissions=2775` would have it: every sandbox runs as its
//! own uid (20000 + slot) in group 990, so at start-up the daemon gives the
//! served directory group 990, adds `g+rwxs` (new files and directories
//! inherit the group) and a default ACL `user::rwx group::rwx other::r-x`
//! (new files are group-writable whatever the process's umask, so a file one
//! sandbox made can be written by the next). The owner is left as it is.
//!
//! While the daemon runs, each served directory is a `nosuid,nodev` mount
//! of its own on the host, and `NAME=PATH,size=10G` makes it a file system
//! of that size (`host_mount`).

mod acl;
mod host_mount;
mod scrub;

pub use host_mount::HostMounts;

use lamb_sandbox::MountSpec;
use lamb_types::filesystem::{file_system_name, is_file_system_name};
use lamb_types::{ArnContext, FileSystemConfig, LambdaError};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum FilesystemError {
    #[error(
        "--filesystem {0:?}: expected NAME=PATH[,size=SIZE], NAME of [a-zA-Z0-9-_.], at most 64 characters, \
         SIZE at least 16M (K, M, G, T)"
    )]
    Syntax(String),
    #[error("--filesystem {name}: {path:?} is not a directory")]
    NotADirectory {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--filesystem {name} given twice")]
    Duplicate { name: String },
    #[error("prepare {path:?} for sandboxes (group, mode, default ACL)")]
    Prepare { path: PathBuf, source: std::io::Error },
    #[error("mount the served directories nosuid,nodev (and their size-limited images): {0}")]
    Mount(std::io::Error),
}

/// The served file systems by name, each an absolute, canonical path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filesystems {
    served: BTreeMap<String, PathBuf>,
    /// The size of those given `,size=`, bytes.
    sizes: BTreeMap<String, u64>,
}

impl Filesystems {
    /// From `NAME=PATH[,size=SIZE]` arguments; each path must be an
    /// existing directory.
    pub fn parse(args: &[String]) -> Result<Self, FilesystemError> {
        let mut served = BTreeMap::new();
        let mut sizes = BTreeMap::new();
        for arg in args {
            let (name, path) = arg
                .split_once('=')
                .filter(|(n, p)| is_file_system_name(n) && !p.is_empty())
                .ok_or_else(|| FilesystemError::Syntax(arg.clone()))?;
            let (path, size) = match path.rsplit_once(",size=") {
                Some((p, size)) => {
                    let bytes = host_mount::parse_size(size).ok_or_else(|| FilesystemError::Syntax(arg.clone()))?;
                    (p, Some(bytes))
                }
                None => (path, None),
            };
            let canonical = std::fs::canonicalize(path)
                .and_then(|p| {
                    if p.is_dir() {
                        Ok(p)
                    } else {
                        Err(std::io::Error::other("not a directory"))
                    }
                })
                .map_err(|source| FilesystemError::NotADirectory {
                    name: name.to_owned(),
                    path: path.into(),
                    source,
                })?;
            if served.insert(name.to_owned(), canonical).is_some() {
                return Err(FilesystemError::Duplicate { name: name.to_owned() });
            }
            if let Some(bytes) = size {
                sizes.insert(name.to_owned(), bytes);
            }
        }
        Ok(Self { served, sizes })
    }

    /// Mounts every served directory `nosuid,nodev` on the host (an image
    /// of its size for those given one), until the answer is dropped; first
    /// removes what a killed daemon of `data_dir` left. Before `prepare`.
    pub fn mount_on_host(&self, data_dir: &Path) -> Result<HostMounts, FilesystemError> {
        let served = self
            .served
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_path(), self.sizes.get(n).copied()));
        host_mount::mount_all(data_dir, served).map_err(FilesystemError::Mount)
    }

    pub fn get(&self, name: &str) -> Option<&Path> {
        self.served.get(name).map(PathBuf::as_path)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Path)> {
        self.served.iter().map(|(n, p)| (n.as_str(), p.as_path()))
    }

    pub fn is_empty(&self) -> bool {
        self.served.is_empty()
    }

    /// The served file system a host path lies in, and the path relative to
    /// its root (empty for the root itself).
    pub fn locate(&self, path: &Path) -> Option<(&str, PathBuf)> {
        self.served.iter().find_map(|(name, root)| {
            path.strip_prefix(root)
                .ok()
                .map(|rel| (name.as_str(), rel.to_path_buf()))
        })
    }

    /// Makes every served directory writable by every sandbox (see the
    /// module's comment).
    pub fn prepare(&self, gid: u32) -> Result<(), FilesystemError> {
        for root in self.served.values() {
            prepare_dir(root, gid).map_err(|source| FilesystemError::Prepare {
                path: root.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Refuses configurations naming a file system this daemon does not
    /// serve (the syntax was checked by `Rules::function_spec`).
    pub fn check(&self, ctx: &ArnContext, configs: &[FileSystemConfig]) -> Result<(), LambdaError> {
        for c in configs {
            let name = file_system_name(ctx, &c.arn)?;
            if self.get(name).is_none() {
                return Err(LambdaError::invalid_parameter(format!(
                    "FileSystemConfig Arn '{}': lamb serves no file system named {name} \
                     (start it with --filesystem {name}=PATH)",
                    c.arn
                )));
            }
        }
        Ok(())
    }

    /// The writable binds of a function's `FileSystemConfigs`. One naming a
    /// file system no longer served (the daemon restarted without it) is
    /// left out and logged: the function sees no mount there.
    pub fn mounts(&self, ctx: &ArnContext, configs: &[FileSystemConfig]) -> Vec<MountSpec> {
        configs
            .iter()
            .filter_map(|c| {
                let source = file_system_name(ctx, &c.arn).ok().and_then(|n| self.get(n));
                if source.is_none() {
                    tracing::warn!(arn = %c.arn, "file system not served; not mounted");
                }
                Some(MountSpec::BindWritable {
                    source: source?.to_path_buf(),
                    target: c.local_mount_path.clone().into(),
                })
            })
            .collect()
    }
}

fn prepare_dir(root: &Path, gid: u32) -> std::io::Result<()> {
    nix::unistd::chown(root, None, Some(nix::unistd::Gid::from_raw(gid))).map_err(std::io::Error::from)?;
    let mode = std::fs::metadata(root)?.permissions().mode() & 0o7777;
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(mode | 0o2070))?;
    acl::set_default_group_writable(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_locates() {
        let tmp = tempfile::tempdir().unwrap();
        let arg = format!("photos={}", tmp.path().display());
        let fs = Filesystems::parse(std::slice::from_ref(&arg)).unwrap();
        let root = fs.get("photos").unwrap().to_path_buf();
        let (name, rel) = fs.locate(&root.join("a/b.ppm")).unwrap();
        assert_eq!((name, rel), ("photos", PathBuf::from("a/b.ppm")));
        assert!(fs.locate(Path::new("/elsewhere")).is_none());
        assert!(matches!(
            Filesystems::parse(&[arg.clone(), arg]),
            Err(FilesystemError::Duplicate { .. })
        ));
        assert!(Filesystems::parse(&["x".into()]).is_err());
        assert!(Filesystems::parse(&["a/b=/tmp".into()]).is_err());
        assert!(Filesystems::parse(&["a=/no/such/dir".into()]).is_err());
        let sized = Filesystems::parse(&[format!("p={},size=64M", tmp.path().display())]).unwrap();
        assert_eq!(sized.get("p"), Some(root.as_path()));
        assert_eq!(sized.sizes.get("p"), Some(&(64 << 20)));
        let bad = format!("p={},size=64X", tmp.path().display());
        assert!(matches!(Filesystems::parse(&[bad]), Err(FilesystemError::Syntax(_))));
    }

    #[test]
    fn checks_and_mounts() {
        let tmp = tempfile::tempdir().unwrap();
        let fs = Filesystems::parse(&[format!("p={}", tmp.path().display())]).unwrap();
        let ctx = ArnContext::default();
        let ok = FileSystemConfig {
            arn: lamb_types::filesystem::access_point_arn(&ctx, "p"),
            local_mount_path: "/mnt/p".into(),
        };
        let unknown = FileSystemConfig {
            arn: lamb_types::filesystem::access_point_arn(&ctx, "q"),
            local_mount_path: "/mnt/q".into(),
        };
        fs.check(&ctx, std::slice::from_ref(&ok)).unwrap();
        assert!(fs.check(&ctx, std::slice::from_ref(&unknown)).is_err());
        let mounts = fs.mounts(&ctx, &[ok, unknown]);
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].target(), &PathBuf::from("/mnt/p"));
    }
}
