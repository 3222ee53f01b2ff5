//! Turns a [`SandboxSpec`] into the [`ChildPlan`] the cloned process executes:
//! every path, mount option and pointer array built here, in the parent,
//! where allocating is safe.

use std::ffi::{CString, OsStr};
use std::fs;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use libc::c_ulong;

use crate::child::{ChildPlan, RootOp};
use crate::error::{Result, SandboxError};
use crate::spec::{MountSpec, SandboxSpec};

/// Size of the `/dev` tmpfs: it holds only device nodes and links.
const DEV_TMPFS_OPTIONS: &str = "size=64k,nr_inodes=64,mode=755";
/// `/dev/shm` is charged to the sandbox's memory cgroup like any tmpfs page.
const SHM_TMPFS_OPTIONS: &str = "size=64m,mode=1777";

/// The character devices of a minimal `/dev`: name, major, minor.
const DEVICES: [(&str, u32, u32); 5] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
];

/// Files of `/proc` that tell a function about the host's kernel and nothing
/// it needs (the build configuration, kernel memory, keys, timers and the
/// scheduler's state): `/dev/null` is bound over each one present, as Docker
/// masks them.
const MASKED_PROC_FILES: [&str; 7] = [
    "config.gz",
    "kcore",
    "keys",
    "latency_stats",
    "timer_list",
    "timer_stats",
    "sched_debug",
];

/// The links of a minimal `/dev`: name and target.
const DEV_LINKS: [(&str, &str); 5] = [
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
];

/// The descriptors a child gets, as raw numbers owned by the caller during the clone.
pub(crate) struct ChildFds {
    pub error_fd: RawFd,
    /// The read end of the pipe the child waits on while the parent writes its
    /// id maps, and the write end the child closes; both -1 without a user namespace.
    pub sync: [RawFd; 2],
    /// A prepared network namespace, or -1.
    pub netns_fd: RawFd,
    /// Whether the child brings `lo` up: not in a prepared namespace, where it is up already.
    pub loopback_up: bool,
    pub stdio: [RawFd; 3],
    pub extra: Vec<RawFd>,
}

/// Where the parent prepared the root: the shared mount point, the top
/// layer, and an empty directory to stack under a lone layer.
pub(crate) struct RootDirs<'a> {
    pub new_root: &'a Path,
    pub top_layer: &'a Path,
    pub empty: &'a Path,
    /// The mounted file system bound at `/tmp`; `None`: a tmpfs.
    pub tmp: Option<&'a Path>,
}

/// Directories the child mounts by descriptor, so that the host's paths
/// never reach the sandbox: an overlay's options, which the sandbox reads in
/// `/proc/self/mountinfo`, say `lowerdir=/proc/self/fd/7:...` instead of the
/// data directory, a code digest or the runtimes' directory.
///
/// The parent opens each directory to reserve a descriptor number in the
/// table the child copies; the child opens the directory again, in its own
/// mount namespace, onto that number (overlayfs refuses a layer whose mount
/// belongs to another namespace). The plan holds the parent's until the clone.
#[derive(Debug, Default)]
pub(crate) struct HeldDirs {
    fds: Vec<OwnedFd>,
    reopen: Vec<RootOp>,
}

impl HeldDirs {
    /// Reserves a descriptor for `dir` and returns the name the child reaches it by.
    fn hold(&mut self, dir: &Path) -> Result<PathBuf> {
        let fd: OwnedFd = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(dir)
            .map_err(|source| SandboxError::PrepareDir {
                path: dir.to_path_buf(),
                source,
            })?
            .into();
        let name = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
        self.reopen.push(RootOp::ReopenAt {
            path: path_cstring(dir)?,
            fd: fd.as_raw_fd(),
        });
        self.fds.push(fd);
        Ok(name)
    }
}

pub(crate) fn cstring(bytes: impl AsRef<[u8]>) -> Result<CString> {
    CString::new(bytes.as_ref()).map_err(|_| SandboxError::InvalidSpec("a string contains NUL".into()))
}

fn path_cstring(path: &Path) -> Result<CString> {
    cstring(path.as_os_str().as_bytes())
}

/// `root` joined with an absolute in-sandbox path.
fn inside(root: &Path, target: &Path) -> PathBuf {
    root.join(target.strip_prefix("/").unwrap_or(target))
}

/// The overlay `lowerdir=` value: the highest layer first, as overlayfs wants it.
/// A layer path holding `:` or `,` would be parsed as two, so it is refused.
pub(crate) fn lowerdir(layers_highest_first: &[&Path]) -> Result<String> {
    let mut value = String::from("lowerdir=");
    for (i, layer) in layers_highest_first.iter().enumerate() {
        let text = layer
            .to_str()
            .filter(|t| !t.contains([':', ',', '\\']))
            .ok_or_else(|| {
                SandboxError::InvalidSpec(format!("layer path {} cannot be used by overlayfs", layer.display()))
            })?;
        if i > 0 {
            value.push(':');
        }
        value.push_str(text);
    }
    Ok(value)
}

/// Builds the whole plan for one sandbox.
pub(crate) fn build(
    spec: &SandboxSpec,
    dirs: RootDirs<'_>,
    cgroup_procs: &[PathBuf],
    fds: ChildFds,
    last_cap: u32,
) -> Result<ChildPlan> {
    let argv = spec.process.argv.iter().map(cstring).collect::<Result<Vec<_>>>()?;
    let env = spec.process.env.iter().map(cstring).collect::<Result<Vec<_>>>()?;
    let null_terminated = |strings: &[CString]| {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    // In a user namespace the child is not root outside, so cannot write a v1
    // `cgroup.procs`: the parent moves it while the child waits for its id maps.
    let cgroup_procs = if spec.user_namespace.is_some() {
        &[]
    } else {
        cgroup_procs
    };
    let mut held = HeldDirs::default();
    let mounts = root_ops(spec, &dirs, &mut held)?;
    // The directories first, before any mount covers a path to them.
    let root_ops = std::mem::take(&mut held.reopen).into_iter().chain(mounts).collect();
    Ok(ChildPlan {
        error_fd: fds.error_fd,
        sync_fds: fds.sync,
        kill_on_parent_death: spec.kill_on_parent_death,
        cgroup_procs: cgroup_procs.iter().map(|p| path_cstring(p)).collect::<Result<_>>()?,
        root_ops,
        held_dirs: held,
        new_root: path_cstring(dirs.new_root)?,
        hostname: cstring(&spec.hostname)?,
        stdio: fds.stdio,
        extra_fds: fds.extra,
        rlimits: vec![
            (libc::RLIMIT_NOFILE, spec.limits.nofile),
            (libc::RLIMIT_NPROC, spec.limits.nproc),
        ],
        last_cap,
        uid: spec.user.uid,
        gid: spec.user.gid,
        cwd: path_cstring(&spec.process.cwd)?,
        dev_null: cstring("/dev/null")?,
        argv_ptrs: null_terminated(&argv),
        envp_ptrs: null_terminated(&env),
        argv,
        env,
        netns_fd: fds.netns_fd,
        loopback_up: fds.loopback_up,
        seccomp: crate::seccomp::filter(),
    })
}

/// The root's mounts in order: overlay root, the spec's mounts, `/tmp`,
/// `/proc` (with its host-revealing files masked), `/dev`. Every directory
/// from the host is mounted as an overlay of held descriptors (a lone one
/// over an empty directory), so that no host path shows in `mountinfo`.
fn root_ops(spec: &SandboxSpec, dirs: &RootDirs<'_>, held: &mut HeldDirs) -> Result<Vec<RootOp>> {
    let root = dirs.new_root;
    let mut ops = Vec::with_capacity(32);
    let mut layers: Vec<&Path> = vec![dirs.top_layer];
    layers.extend(spec.rootfs_layers.iter().rev().map(PathBuf::as_path));
    ops.push(overlay(root, &layers, held)?);
    for mount in &spec.mounts {
        let target = inside(root, mount.target());
        match mount {
            MountSpec::Bind { source, .. } if source.is_dir() => {
                ops.push(overlay(&target, &[source, dirs.empty], held)?)
            }
            MountSpec::Bind { source, .. } => ops.extend(read_only_bind(source, &target)?),
            MountSpec::BindWritable { source, .. } => ops.extend(writable_bind(source, &target)?),
            MountSpec::Layers { layers, .. } if layers.len() == 1 => {
                ops.push(overlay(&target, &[&layers[0], dirs.empty], held)?)
            }
            MountSpec::Layers { layers, .. } => {
                let highest_first: Vec<&Path> = layers.iter().rev().map(PathBuf::as_path).collect();
                ops.push(overlay(&target, &highest_first, held)?);
            }
        }
    }
    match dirs.tmp {
        Some(disk) => ops.extend(writable_bind(disk, &root.join("tmp"))?),
        None => {
            let tmp_options = format!("size={},mode=1777", spec.tmp_size_bytes);
            ops.push(mount(
                "tmpfs",
                &root.join("tmp"),
                "tmpfs",
                libc::MS_NOSUID | libc::MS_NODEV,
                &tmp_options,
            )?);
        }
    }
    let no_exec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    ops.push(mount("proc", &root.join("proc"), "proc", no_exec, "")?);
    ops.extend(dev_ops(&root.join("dev"), spec.user_namespace.is_some())?);
    // After `/dev`, whose `null` the masks are bound from.
    let null = path_cstring(&root.join("dev/null"))?;
    for name in MASKED_PROC_FILES {
        ops.push(RootOp::MaskIfPresent {
            source: null.clone(),
            target: path_cstring(&root.join("proc").join(name))?,
        });
    }
    Ok(ops)
}

/// A minimal `/dev`: a small tmpfs with the usual nodes and links, `pts` and
/// `shm`, then made read-only.
///
/// In a user namespace `mknod` of a device is refused, and a node on a tmpfs
/// mounted there would not open anyway (the kernel marks such a superblock
/// nodev), so the host's own nodes are bound onto empty files instead: a bind
/// keeps the host's superblock, where devices work.
fn dev_ops(dev: &Path, user_namespace: bool) -> Result<Vec<RootOp>> {
    let mut ops = vec![mount(
        "tmpfs",
        dev,
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        DEV_TMPFS_OPTIONS,
    )?];
    for (name, major, minor) in DEVICES {
        let path = path_cstring(&dev.join(name))?;
        if user_namespace {
            // mknod of a regular file needs no capability.
            ops.push(RootOp::Mknod {
                path: path.clone(),
                mode: libc::S_IFREG | 0o666,
                dev: 0,
            });
            ops.push(RootOp::Mount {
                source: path_cstring(&Path::new("/dev").join(name))?,
                target: path,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            });
        } else {
            ops.push(RootOp::Mknod {
                path,
                mode: libc::S_IFCHR | 0o666,
                dev: libc::makedev(major, minor),
            });
        }
    }
    for (name, target) in DEV_LINKS {
        ops.push(RootOp::Symlink {
            target: cstring(target)?,
            link: path_cstring(&dev.join(name))?,
        });
    }
    for (name, mode) in [("pts", 0o755), ("shm", 0o1777)] {
        ops.push(RootOp::Mkdir {
            path: path_cstring(&dev.join(name))?,
            mode,
        });
    }
    ops.push(mount(
        "devpts",
        &dev.join("pts"),
        "devpts",
        libc::MS_NOSUID | libc::MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )?);
    ops.push(mount(
        "shm",
        &dev.join("shm"),
        "tmpfs",
        libc::MS_NOSUID | libc::MS_NODEV,
        SHM_TMPFS_OPTIONS,
    )?);
    ops.push(remount_read_only(dev, libc::MS_NOSUID | libc::MS_NOEXEC)?);
    Ok(ops)
}

/// A read-only overlay of `layers_highest_first`, each named by a held descriptor.
fn overlay(target: &Path, layers_highest_first: &[&Path], held: &mut HeldDirs) -> Result<RootOp> {
    lowerdir(layers_highest_first)?;
    let names = layers_highest_first
        .iter()
        .map(|layer| held.hold(layer))
        .collect::<Result<Vec<_>>>()?;
    let names: Vec<&Path> = names.iter().map(PathBuf::as_path).collect();
    let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
    mount("overlay", target, "overlay", flags, &lowerdir(&names)?)
}

/// A bind mount is read-only only after a second, remounting call.
fn read_only_bind(source: &Path, target: &Path) -> Result<[RootOp; 2]> {
    let bind = RootOp::Mount {
        source: path_cstring(source)?,
        target: path_cstring(target)?,
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REC,
        data: None,
    };
    Ok([bind, remount_read_only(target, libc::MS_NOSUID | libc::MS_NODEV)?])
}

/// A writable bind still loses setuid bits and device nodes.
fn writable_bind(source: &Path, target: &Path) -> Result<[RootOp; 2]> {
    let bind = RootOp::Mount {
        source: path_cstring(source)?,
        target: path_cstring(target)?,
        fstype: None,
        flags: libc::MS_BIND,
        data: None,
    };
    let restrict = RootOp::Mount {
        source: cstring("none")?,
        target: path_cstring(target)?,
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV,
        data: None,
    };
    Ok([bind, restrict])
}

fn remount_read_only(target: &Path, extra: c_ulong) -> Result<RootOp> {
    Ok(RootOp::Mount {
        source: cstring("none")?,
        target: path_cstring(target)?,
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | extra,
        data: None,
    })
}

fn mount(source: &str, target: &Path, fstype: &str, flags: c_ulong, data: &str) -> Result<RootOp> {
    Ok(RootOp::Mount {
        source: cstring(source)?,
        target: path_cstring(target)?,
        fstype: Some(cstring(fstype)?),
        flags,
        data: (!data.is_empty()).then(|| cstring(data)).transpose()?,
    })
}

/// The in-sandbox paths the top layer must provide as mount points, with
/// whether each is a file (a file bind needs a file to land on).
pub(crate) fn mount_points(spec: &SandboxSpec) -> Vec<(PathBuf, bool)> {
    let mut points: Vec<(PathBuf, bool)> = ["/tmp", "/proc", "/dev"]
        .iter()
        .map(|p| (PathBuf::from(p), false))
        .collect();
    for mount in &spec.mounts {
        let is_file = match mount {
            MountSpec::Bind { source, .. } | MountSpec::BindWritable { source, .. } => source.is_file(),
            MountSpec::Layers { .. } => false,
        };
        points.push((mount.target().clone(), is_file));
    }
    points
}

/// A stable key for a set of mount points, naming the cached top layer.
pub(crate) fn mount_points_key(points: &[(PathBuf, bool)]) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for (path, is_file) in points {
        OsStr::as_bytes(path.as_os_str()).hash(&mut hasher);
        is_file.hash(&mut hasher);
    }
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_lists_highest_first_and_refuses_separators() {
        let value = lowerdir(&[Path::new("/top"), Path::new("/l2"), Path::new("/l1")]).unwrap();
        assert_eq!(value, "lowerdir=/top:/l2:/l1");
        assert!(lowerdir(&[Path::new("/a:b")]).is_err());
        assert!(lowerdir(&[Path::new("/a,upperdir=/x")]).is_err());
    }

    #[test]
    fn inside_keeps_targets_under_the_root() {
        assert_eq!(
            inside(Path::new("/r"), Path::new("/var/task")),
            PathBuf::from("/r/var/task")
        );
    }
}
