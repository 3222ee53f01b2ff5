//! What a sandbox is made of: the spec a caller hands to [`crate::Sandboxer::create`].
//!
//! The vocabulary follows the OCI runtime spec (root, mounts, process, user,
//! resources); [`crate::oci`] converts a spec to `oci_spec::runtime::Spec` so the
//! same sandbox can be handed to crun or runsc. The built-in back end reads it
//! directly, because that is the fast path.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Result, SandboxError};

/// 512 MiB, Lambda's default `/tmp`.
pub const DEFAULT_TMP_SIZE: u64 = 512 * 1024 * 1024;
/// Lambda's process and thread limit per execution environment.
pub const DEFAULT_PIDS_LIMIT: u64 = 1024;
/// Lambda's file descriptor limit.
pub const DEFAULT_NOFILE: u64 = 1024;
/// Lambda gives one full vCPU at this much memory, and CPU in proportion below and above.
pub const MEMORY_MB_PER_VCPU: u64 = 1769;
/// The CFS period lamb uses; quota is a share of it.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Everything needed to create one sandbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SandboxSpec {
    /// Read-only root filesystem layers, lowest first; the first is the runtime rootfs.
    pub rootfs_layers: Vec<PathBuf>,
    /// Read-only mounts inside the root, applied in order.
    pub mounts: Vec<MountSpec>,
    /// Size of the writable `/tmp`, in bytes.
    pub tmp_size_bytes: u64,
    /// What holds `/tmp`: the host's disk (the default, Lambda's) or memory.
    #[serde(default)]
    pub tmp_storage: TmpStorage,
    /// Host name seen inside the sandbox's UTS namespace.
    pub hostname: String,
    /// The unprivileged user the process runs as.
    pub user: User,
    /// The process started as PID 1 of the sandbox.
    pub process: ProcessSpec,
    /// Kernel-enforced limits.
    pub limits: Limits,
    /// Kill the sandbox when the process that created it dies (`PR_SET_PDEATHSIG`).
    pub kill_on_parent_death: bool,
    /// Run the sandbox in its own user namespace, root inside mapped to an
    /// unprivileged range outside; `None` (the default) keeps the host's ids.
    #[serde(default)]
    pub user_namespace: Option<IdMapping>,
    /// PID 1 is a supervisor (`lamb init`) that runs in a CPU group of its
    /// own and starts the function's processes in the function's group,
    /// which carries the quota (`cgroup::Layout::Split`). It gets that
    /// group's `cgroup.procs`, open for writing, as the descriptor after the
    /// extra ones (`SandboxIo::extra_fds`), and every process it starts must
    /// write `0` to it before `execve`.
    #[serde(default)]
    pub init_cgroup: bool,
}

/// The ids a user namespace maps: inside `0..size` is outside
/// `outside_uid_base..outside_uid_base + size` (and the same for groups).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdMapping {
    pub outside_uid_base: u32,
    pub outside_gid_base: u32,
    pub size: u32,
}

impl IdMapping {
    /// The smallest mapping lamb accepts: every 16-bit id.
    pub const MIN_SIZE: u32 = 65_536;

    /// The outside uid of `uid` inside.
    pub fn outside_uid(&self, uid: u32) -> u32 {
        self.outside_uid_base + uid
    }

    /// The `uid_map` line, `0 <base> <size>`.
    pub fn uid_map(&self) -> String {
        format!("0 {} {}\n", self.outside_uid_base, self.size)
    }

    /// The `gid_map` line, `0 <base> <size>`.
    pub fn gid_map(&self) -> String {
        format!("0 {} {}\n", self.outside_gid_base, self.size)
    }
}

/// What a sandbox's `/tmp` is made of.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum TmpStorage {
    /// An ext4 file system of its own on the host's disk (`crate::tmp_disk`),
    /// as Lambda's `/tmp`: not held against the memory limit.
    #[default]
    Disk,
    /// A tmpfs, whose pages count against the sandbox's memory limit.
    Memory,
}

/// A read-only mount inside the sandbox root.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum MountSpec {
    /// A host directory or file bound read-only at `target`.
    Bind { source: PathBuf, target: PathBuf },
    /// Directories merged read-only at `target`, lowest first: a later layer wins on the same path.
    Layers { layers: Vec<PathBuf>, target: PathBuf },
    /// A host directory bound read-write at `target` (nosuid, nodev), the way
    /// Lambda mounts an EFS file system: the one writable path besides `/tmp`.
    BindWritable { source: PathBuf, target: PathBuf },
}

impl MountSpec {
    /// The absolute path inside the sandbox where this mount appears.
    pub fn target(&self) -> &PathBuf {
        match self {
            MountSpec::Bind { target, .. }
            | MountSpec::Layers { target, .. }
            | MountSpec::BindWritable { target, .. } => target,
        }
    }
}

/// A numeric user and group; never root.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The process to execute once the sandbox is set up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct ProcessSpec {
    /// `argv[0]` is an absolute path inside the sandbox root.
    pub argv: Vec<String>,
    /// `KEY=VALUE` strings; nothing of the caller's environment is inherited.
    pub env: Vec<String>,
    /// Working directory inside the sandbox.
    pub cwd: PathBuf,
}

/// The kernel-enforced limits of one sandbox.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limits {
    /// Hard memory limit in bytes, swap included (there is no swap).
    pub memory_bytes: u64,
    /// Maximum number of processes and threads (pids controller).
    pub pids: u64,
    /// CPU bandwidth.
    pub cpu: CpuLimit,
    /// `RLIMIT_NOFILE`.
    pub nofile: u64,
    /// `RLIMIT_NPROC` (counted per user by the kernel; the pids limit is the per-sandbox bound).
    pub nproc: u64,
}

impl Limits {
    /// The limits Lambda applies to a function of `memory_mb` megabytes.
    pub fn for_memory_mb(memory_mb: u64) -> Limits {
        Limits {
            memory_bytes: memory_mb * 1024 * 1024,
            pids: DEFAULT_PIDS_LIMIT,
            cpu: CpuLimit::proportional_to_memory(memory_mb),
            nofile: DEFAULT_NOFILE,
            nproc: DEFAULT_PIDS_LIMIT,
        }
    }
}

/// CFS bandwidth: `quota_us` of CPU time per `period_us`, and a relative weight.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct CpuLimit {
    pub quota_us: u64,
    pub period_us: u64,
    /// cgroup v2 `cpu.weight` (1-10000, 100 is the default); v1 shares are derived from it.
    pub weight: u64,
}

impl CpuLimit {
    /// One vCPU at 1769 MB and in proportion to memory elsewhere, as Lambda allocates CPU.
    pub fn proportional_to_memory(memory_mb: u64) -> CpuLimit {
        let quota_us = (memory_mb * CPU_PERIOD_US / MEMORY_MB_PER_VCPU).max(1000);
        // The weight follows the same proportion so that, under contention, a
        // larger function also gets the larger share.
        let weight = (memory_mb * 100 / MEMORY_MB_PER_VCPU).clamp(1, 10_000);
        CpuLimit {
            quota_us,
            period_us: CPU_PERIOD_US,
            weight,
        }
    }

    /// The CPU of a sandbox's init, from its creation to the runtime's
    /// first `/next`: at least one vCPU's quota and weight, whatever the
    /// memory, as Lambda runs init (a 128 MB function inits as fast as a
    /// 1792 MB one, on a busy host too).
    pub fn during_init(memory_mb: u64) -> CpuLimit {
        let invoke = CpuLimit::proportional_to_memory(memory_mb);
        let vcpu = CpuLimit::proportional_to_memory(MEMORY_MB_PER_VCPU);
        CpuLimit {
            quota_us: invoke.quota_us.max(vcpu.quota_us),
            period_us: invoke.period_us,
            weight: invoke.weight.max(vcpu.weight),
        }
    }

    /// The CPU of a supervising PID 1 (`lamb init`) in its own group: one
    /// core at most, whatever the function's memory. Its relaying is the
    /// platform's work, not the function's, so it is not charged to the
    /// function's quota; but a function that makes init work (a flood of
    /// Runtime API calls) must not make it burn the machine either, so one
    /// core bounds it; and the sandbox's weight, above both groups, still
    /// bounds the two together when the machine is contended.
    pub fn supervisor() -> CpuLimit {
        CpuLimit {
            quota_us: CPU_PERIOD_US,
            period_us: CPU_PERIOD_US,
            weight: 100,
        }
    }

    /// cgroup v1 `cpu.shares` equivalent of the v2 weight (1024 shares = weight 100).
    pub fn shares(&self) -> u64 {
        (self.weight * 1024 / 100).max(2)
    }
}

impl SandboxSpec {
    /// A spec with Lambda's defaults for everything but the layers and the process.
    pub fn new(rootfs_layers: Vec<PathBuf>, process: ProcessSpec, user: User) -> SandboxSpec {
        SandboxSpec {
            rootfs_layers,
            mounts: Vec::new(),
            tmp_size_bytes: DEFAULT_TMP_SIZE,
            tmp_storage: TmpStorage::Disk,
            hostname: "sandbox".to_owned(),
            user,
            process,
            limits: Limits::for_memory_mb(128),
            kill_on_parent_death: true,
            user_namespace: None,
            init_cgroup: false,
        }
    }

    /// Refuses specs the kernel would refuse later, with a readable reason.
    pub fn validate(&self) -> Result<()> {
        let invalid = |why: String| Err(SandboxError::InvalidSpec(why));
        if self.rootfs_layers.is_empty() {
            return invalid("at least one rootfs layer is needed".into());
        }
        if self.user.uid == 0 || self.user.gid == 0 {
            return invalid("the sandbox user must not be root".into());
        }
        if self.process.argv.is_empty() || !self.process.argv[0].starts_with('/') {
            return invalid("argv[0] must be an absolute path".into());
        }
        if !self.process.cwd.is_absolute() {
            return invalid("the working directory must be absolute".into());
        }
        if self.hostname.is_empty() || self.hostname.len() > 64 {
            return invalid("the host name must have 1 to 64 characters".into());
        }
        for mount in &self.mounts {
            let target = mount.target();
            if !target.is_absolute() || target.components().any(|c| c.as_os_str() == "..") {
                return invalid(format!(
                    "mount target {} must be absolute, without ..",
                    target.display()
                ));
            }
            if let MountSpec::Layers { layers, .. } = mount {
                if layers.is_empty() {
                    return invalid(format!("no layers for {}", target.display()));
                }
            }
        }
        if let Some(map) = &self.user_namespace {
            let fits = |base: u32| base.checked_add(map.size).is_some();
            if map.size < IdMapping::MIN_SIZE || !fits(map.outside_uid_base) || !fits(map.outside_gid_base) {
                return invalid(format!("the id mapping must cover at least 0..{}", IdMapping::MIN_SIZE));
            }
            if map.outside_uid_base == 0 || map.outside_gid_base == 0 {
                return invalid("root inside a user namespace must not be root outside".into());
            }
            if self.user.uid >= map.size || self.user.gid >= map.size {
                return invalid("the sandbox user must lie inside the id mapping".into());
            }
        }
        if self.limits.memory_bytes < 16 * 1024 * 1024 {
            return invalid("the memory limit must be at least 16 MiB".into());
        }
        if self.limits.pids == 0 || self.limits.cpu.period_us == 0 || self.limits.cpu.quota_us == 0 {
            return invalid("pids and cpu limits must be positive".into());
        }
        let strings = self
            .process
            .argv
            .iter()
            .chain(&self.process.env)
            .chain([&self.hostname]);
        if strings.into_iter().any(|s| s.contains('\0')) {
            return invalid("argv, env and host name must not contain NUL".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        let process = ProcessSpec {
            argv: vec!["/bin/true".into()],
            env: vec![],
            cwd: "/".into(),
        };
        SandboxSpec::new(vec!["/rootfs".into()], process, User { uid: 993, gid: 990 })
    }

    #[test]
    fn cpu_is_one_vcpu_at_1769_mb() {
        assert_eq!(CpuLimit::proportional_to_memory(1769).quota_us, CPU_PERIOD_US);
        assert_eq!(CpuLimit::proportional_to_memory(3538).quota_us, 2 * CPU_PERIOD_US);
        let small = CpuLimit::proportional_to_memory(128);
        assert_eq!(small.quota_us, 128 * CPU_PERIOD_US / 1769);
        assert_eq!(
            CpuLimit::during_init(128).quota_us,
            CPU_PERIOD_US,
            "init gets a full core"
        );
        assert_eq!(CpuLimit::during_init(128).weight, 100, "and one vCPU's weight");
        assert_eq!(
            CpuLimit::during_init(3538).quota_us,
            2 * CPU_PERIOD_US,
            "never less than invocations"
        );
        assert!(small.shares() < 1024);
    }

    #[test]
    fn root_user_is_refused() {
        let mut s = spec();
        assert!(s.validate().is_ok());
        s.user.uid = 0;
        assert!(matches!(s.validate(), Err(SandboxError::InvalidSpec(_))));
    }

    #[test]
    fn relative_argv_and_dotdot_targets_are_refused() {
        let mut s = spec();
        s.process.argv = vec!["true".into()];
        assert!(s.validate().is_err());
        let mut s = spec();
        s.mounts.push(MountSpec::Bind {
            source: "/x".into(),
            target: "/opt/../etc".into(),
        });
        assert!(s.validate().is_err());
    }

    #[test]
    fn id_mappings_must_cover_the_user_and_leave_root() {
        let mut s = spec();
        s.user_namespace = Some(IdMapping {
            outside_uid_base: 1_000_000,
            outside_gid_base: 1_000_000,
            size: IdMapping::MIN_SIZE,
        });
        assert!(s.validate().is_ok());
        assert_eq!(s.user_namespace.unwrap().outside_uid(993), 1_000_993);
        assert_eq!(s.user_namespace.unwrap().uid_map(), "0 1000000 65536\n");
        let mut small = s.clone();
        small.user_namespace.as_mut().unwrap().size = 1000;
        assert!(small.validate().is_err());
        let mut root = s.clone();
        root.user_namespace.as_mut().unwrap().outside_uid_base = 0;
        assert!(root.validate().is_err());
        let mut overflow = s.clone();
        overflow.user_namespace.as_mut().unwrap().outside_gid_base = u32::MAX - 10;
        assert!(overflow.validate().is_err());
    }

    #[test]
    fn specs_without_a_user_namespace_still_parse() {
        let mut json = serde_json::to_value(spec()).unwrap();
        json.as_object_mut().unwrap().remove("user_namespace");
        let parsed: SandboxSpec = serde_json::from_value(json).unwrap();
        assert_eq!(parsed.user_namespace, None);
    }

    #[test]
    fn nul_bytes_are_refused() {
        let mut s = spec();
        s.process.env.push("A=\0".into());
        assert!(s.validate().is_err());
    }
}
