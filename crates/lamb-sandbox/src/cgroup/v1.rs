//! cgroup v1: one hierarchy per controller (memory, pids, cpu, cpuacct, freezer),
//! each with a lamb parent and one child per sandbox. A split sandbox's init
//! and function groups exist in the cpu hierarchy only (with cpuacct when
//! the two are mounted together): every other controller keeps the whole
//! sandbox in one cgroup.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::files::{self, poll_until};
use super::{
    CgroupBackend, CgroupStats, CgroupVersion, JoinTarget, Layout, FUNCTION_GROUP, GROUPS, INIT_GROUP, SETTLE_TIMEOUT,
};
use crate::error::{cgroup_err, Result, SandboxError};
use crate::spec::{CpuLimit, Limits};
use crate::SANDBOX_PREFIX;

/// The controllers lamb uses, in the order their directories are created.
const CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "freezer"];

/// cgroup v1 back end. Each field is lamb's parent directory in that controller's hierarchy.
#[derive(Debug, Clone)]
pub struct CgroupV1 {
    memory: PathBuf,
    pids: PathBuf,
    cpu: PathBuf,
    cpuacct: PathBuf,
    freezer: PathBuf,
}

impl CgroupV1 {
    /// Finds each controller's mount point in `/proc/self/mountinfo` and puts the parent `parent` under it.
    pub fn from_mountinfo(parent: &str) -> Result<CgroupV1> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| SandboxError::NoCgroups(format!("reading mountinfo: {e}")))?;
        let find = |controller: &str| -> Result<PathBuf> {
            v1_mount_point(&mountinfo, controller)
                .map(|mount| mount.join(parent))
                .ok_or_else(|| SandboxError::NoCgroups(format!("no cgroup v1 `{controller}` hierarchy is mounted")))
        };
        Ok(CgroupV1 {
            memory: find("memory")?,
            pids: find("pids")?,
            cpu: find("cpu")?,
            cpuacct: find("cpuacct")?,
            freezer: find("freezer")?,
        })
    }

    /// The mount points of every cgroup v1 hierarchy lamb uses (for `favordynmods`).
    pub fn hierarchy_mounts(&self) -> Vec<PathBuf> {
        let mut mounts: Vec<PathBuf> = self
            .parents()
            .iter()
            .filter_map(|p| p.parent().map(Path::to_path_buf))
            .collect();
        mounts.dedup();
        mounts
    }

    /// Parent directories, once each (cpu and cpuacct are often mounted together).
    fn parents(&self) -> Vec<&Path> {
        let mut parents: Vec<&Path> = Vec::with_capacity(CONTROLLERS.len());
        for p in [&self.memory, &self.pids, &self.cpu, &self.cpuacct, &self.freezer] {
            if !parents.contains(&p.as_path()) {
                parents.push(p);
            }
        }
        parents
    }

    fn dirs(&self, name: &str) -> Vec<PathBuf> {
        self.parents().into_iter().map(|p| p.join(name)).collect()
    }

    /// Where the quota of `name` goes: its function group when it is split.
    fn quota_dir(&self, name: &str) -> PathBuf {
        let function = self.cpu.join(name).join(FUNCTION_GROUP);
        if function.is_dir() {
            function
        } else {
            self.cpu.join(name)
        }
    }

    /// Makes the init and function groups of `name` in the cpu hierarchy.
    fn split(&self, name: &str) -> Result<()> {
        for group in GROUPS {
            let dir = self.cpu.join(name).join(group);
            fs::create_dir(&dir).map_err(cgroup_err("mkdir", &dir))?;
        }
        write_quota(&self.cpu.join(name).join(INIT_GROUP), &CpuLimit::supervisor())
    }

    fn set_freezer_state(&self, name: &str, state: &str) -> Result<()> {
        let path = self.freezer.join(name).join("freezer.state");
        files::write(&path, state)?;
        let settled = poll_until(SETTLE_TIMEOUT, || Ok(files::read(&path)?.trim() == state))?;
        if settled {
            Ok(())
        } else {
            Err(cgroup_err("freeze", path)(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                files::FreezeTimeout,
            )))
        }
    }
}

/// CFS bandwidth (period first: the kernel checks the quota against it).
fn write_quota(dir: &Path, cpu: &CpuLimit) -> Result<()> {
    files::write(&dir.join("cpu.cfs_period_us"), &cpu.period_us.to_string())?;
    files::write(&dir.join("cpu.cfs_quota_us"), &cpu.quota_us.to_string())
}

/// The mount point of the v1 hierarchy that carries `controller` among its super options.
fn v1_mount_point(mountinfo: &str, controller: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let mut right = right.split_whitespace();
        let fstype = right.next()?;
        let _source = right.next()?;
        let options = right.next()?;
        if fstype != "cgroup" || !options.split(',').any(|o| o == controller) {
            return None;
        }
        left.split_whitespace().nth(4).map(PathBuf::from)
    })
}

impl CgroupBackend for CgroupV1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn prepare(&self) -> Result<()> {
        for parent in self.parents() {
            fs::create_dir_all(parent).map_err(cgroup_err("mkdir", parent))?;
        }
        Ok(())
    }

    fn create(&self, name: &str, limits: &Limits, layout: Layout) -> Result<()> {
        for dir in self.dirs(name) {
            fs::create_dir(&dir).map_err(cgroup_err("mkdir", &dir))?;
        }
        if layout == Layout::Split {
            self.split(name)?;
        }
        let memory = self.memory.join(name);
        let bytes = limits.memory_bytes.to_string();
        files::write(&memory.join("memory.limit_in_bytes"), &bytes)?;
        // Memory plus swap equal to memory: no swap, where swap accounting exists.
        files::write_optional(&memory.join("memory.memsw.limit_in_bytes"), &bytes)?;
        files::write_optional(&memory.join("memory.swappiness"), "0")?;
        files::write(&self.pids.join(name).join("pids.max"), &limits.pids.to_string())?;
        self.set_cpu(name, &limits.cpu)
    }

    fn join_target(&self, name: &str, layout: Layout) -> Result<JoinTarget> {
        let cpu = self.cpu.join(name);
        let dirs = self.dirs(name).into_iter().map(|d| match layout {
            Layout::Split if d == cpu => d.join(INIT_GROUP),
            _ => d,
        });
        Ok(JoinTarget::ProcsFiles(dirs.map(|d| d.join("cgroup.procs")).collect()))
    }

    fn function_procs(&self, name: &str) -> Result<OwnedFd> {
        files::open_procs(&self.cpu.join(name).join(FUNCTION_GROUP))
    }

    fn freeze(&self, name: &str) -> Result<()> {
        self.set_freezer_state(name, "FROZEN")
    }

    fn thaw(&self, name: &str) -> Result<()> {
        self.set_freezer_state(name, "THAWED")
    }

    fn stats(&self, name: &str) -> Result<CgroupStats> {
        let memory = self.memory.join(name);
        let oom = files::read_keyed_or_empty(&memory.join("memory.oom_control"))?;
        Ok(CgroupStats {
            memory_peak_bytes: files::read_u64_or_zero(&memory.join("memory.max_usage_in_bytes"))?,
            memory_current_bytes: files::read_u64_or_zero(&memory.join("memory.usage_in_bytes"))?,
            cpu_usage_ns: files::read_u64_or_zero(&self.cpuacct.join(name).join("cpuacct.usage"))?,
            oom_kills: files::keyed_value(&oom, "oom_kill").unwrap_or(0),
            pids_current: files::read_u64_or_zero(&self.pids.join(name).join("pids.current"))?,
        })
    }

    fn memory_peak_bytes(&self, name: &str) -> Result<u64> {
        files::read_u64_or_zero(&self.memory.join(name).join("memory.max_usage_in_bytes"))
    }

    fn procs(&self, name: &str) -> Result<Vec<i32>> {
        // Every hierarchy lists the same processes; a half-removed cgroup may
        // have lost some directories, so take the union.
        let mut pids = Vec::new();
        for dir in self.dirs(name) {
            for pid in files::read_pids_tree(&dir)? {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
        }
        Ok(pids)
    }

    fn kill_all(&self, name: &str) -> Result<()> {
        // Freeze first so nothing forks between reading the list and the
        // kill (the sweep has no PID 1 whose death would stop forks); frozen
        // tasks act on SIGKILL once `kill_now` thaws them. A cgroup half
        // removed by a dying process may lack its freezer directory: kill anyway.
        if self.freezer.join(name).is_dir() {
            let _ = self.freeze(name);
        }
        self.kill_now(name)?;
        let emptied = poll_until(SETTLE_TIMEOUT, || {
            let pids = self.procs(name)?;
            files::kill_pids(&pids);
            Ok(pids.is_empty())
        })?;
        if emptied {
            Ok(())
        } else {
            Err(cgroup_err("kill", self.freezer.join(name))(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "processes survived SIGKILL",
            )))
        }
    }

    fn lift_limits(&self, name: &str) -> Result<()> {
        let dir = self.cpu.join(name);
        for group in GROUPS {
            if dir.join(group).is_dir() {
                files::write_optional(&dir.join(group).join("cpu.cfs_quota_us"), "-1")?;
            }
        }
        files::write_optional(&dir.join("cpu.cfs_quota_us"), "-1")
    }

    fn set_cpu(&self, name: &str, cpu: &CpuLimit) -> Result<()> {
        write_quota(&self.quota_dir(name), cpu)?;
        files::write(&self.cpu.join(name).join("cpu.shares"), &cpu.shares().to_string())
    }

    fn set_memory(&self, name: &str, bytes: u64) -> Result<()> {
        let memory = self.memory.join(name);
        let limit = memory.join("memory.limit_in_bytes");
        let memsw = memory.join("memory.memsw.limit_in_bytes");
        let value = bytes.to_string();
        // The kernel keeps memory+swap at or above memory alone: raise it
        // first, lower it last.
        let current = fs::read_to_string(&limit).map_err(cgroup_err("read", &limit))?;
        if current.trim().parse::<u64>().is_ok_and(|c| bytes > c) {
            files::write_optional(&memsw, &value)?;
            files::write(&limit, &value)
        } else {
            files::write(&limit, &value)?;
            files::write_optional(&memsw, &value)
        }
    }

    fn kill_now(&self, name: &str) -> Result<()> {
        files::kill_pids(&self.procs(name)?);
        // A v1-frozen task does not act on SIGKILL until thawed, and the
        // sandbox may have been frozen by another process (the daemon freezes
        // what its spawner created), so thaw whatever anyone believes. Killed
        // before the thaw, no task runs a single instruction more.
        if self.freezer.join(name).is_dir() {
            self.thaw(name)?;
        }
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        for dir in self.dirs(name) {
            files::remove_tree_settled(&dir, SETTLE_TIMEOUT)?;
        }
        Ok(())
    }

    fn try_remove(&self, name: &str) -> Result<bool> {
        let mut removed = true;
        for dir in self.dirs(name) {
            removed &= files::try_remove_tree(&dir)?;
        }
        Ok(removed)
    }

    fn list(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for parent in self.parents() {
            for name in files::child_names(parent, SANDBOX_PREFIX)? {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        Ok(names)
    }

    fn remove_parent(&self) -> Result<()> {
        for parent in self.parents() {
            files::remove_dir_settled(parent, SETTLE_TIMEOUT)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn mount_points_are_found_by_super_option() {
        assert_eq!(
            v1_mount_point(MOUNTINFO, "memory"),
            Some("/sys/fs/cgroup/memory".into())
        );
        assert_eq!(
            v1_mount_point(MOUNTINFO, "cpuacct"),
            Some("/sys/fs/cgroup/cpu,cpuacct".into())
        );
        assert_eq!(v1_mount_point(MOUNTINFO, "pids"), None);
    }

    #[test]
    fn comounted_controllers_get_one_directory() {
        let v1 = CgroupV1 {
            memory: "/m/lamb".into(),
            pids: "/p/lamb".into(),
            cpu: "/c/lamb".into(),
            cpuacct: "/c/lamb".into(),
            freezer: "/f/lamb".into(),
        };
        assert_eq!(v1.dirs("lamb-x").len(), 4);
    }

    /// Hierarchies as directories under `root` (`cpuacct` co-mounted with
    /// `cpu` when it names the same one), each with lamb's parent.
    fn fake_tree(root: &Path, cpuacct: &str) -> CgroupV1 {
        let dir = |c: &str| root.join(c).join("lamb");
        CgroupV1 {
            memory: dir("memory"),
            pids: dir("pids"),
            cpu: dir("cpu"),
            cpuacct: dir(cpuacct),
            freezer: dir("freezer"),
        }
    }

    #[test]
    fn the_cpu_quota_and_shares_are_set() {
        let root = tempfile::tempdir().unwrap();
        let dir = |c: &str| root.path().join(c).join("lamb");
        let v1 = fake_tree(root.path(), "cpu");
        v1.prepare().unwrap();
        v1.create("lamb-q", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let cpu = dir("cpu").join("lamb-q");
        let read = |f: &str| fs::read_to_string(cpu.join(f)).unwrap();
        v1.set_cpu("lamb-q", &CpuLimit::during_init(128)).unwrap();
        assert_eq!(read("cpu.shares"), "1024");
        assert_eq!(
            (read("cpu.cfs_quota_us").as_str(), read("cpu.cfs_period_us").as_str()),
            ("100000", "100000")
        );
        v1.set_cpu("lamb-q", &CpuLimit::proportional_to_memory(128)).unwrap();
        assert_eq!(read("cpu.cfs_quota_us"), "7235");
        assert_eq!(read("cpu.shares"), "71");
    }

    #[test]
    fn a_split_sandbox_has_its_groups_in_the_cpu_hierarchy_only() {
        let root = tempfile::tempdir().unwrap();
        let dir = |c: &str| root.path().join(c).join("lamb");
        let v1 = fake_tree(root.path(), "cpuacct");
        v1.prepare().unwrap();
        v1.create("lamb-p", &Limits::for_memory_mb(128), Layout::Split).unwrap();
        let cpu = dir("cpu").join("lamb-p");
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(cpu.join("init/cpu.cfs_quota_us")), "100000", "init: one core");
        assert_eq!(read(cpu.join("function/cpu.cfs_quota_us")), "7235");
        assert_eq!(read(cpu.join("cpu.shares")), "71", "the weight where sandboxes compete");
        assert!(!cpu.join("cpu.cfs_quota_us").exists(), "no quota above both groups");
        for other in ["memory", "pids", "cpuacct", "freezer"] {
            assert!(!dir(other).join("lamb-p/init").exists(), "{other}");
        }
        // PID 1 joins init's group in cpu, the sandbox's cgroup elsewhere.
        let JoinTarget::ProcsFiles(files) = v1.join_target("lamb-p", Layout::Split).unwrap() else {
            panic!("v1 writes cgroup.procs");
        };
        assert!(files.contains(&cpu.join("init/cgroup.procs")));
        assert!(files.contains(&dir("memory").join("lamb-p/cgroup.procs")));
        assert!(!files.contains(&cpu.join("cgroup.procs")));
        assert_eq!(files.len(), 5);
        v1.set_cpu("lamb-p", &CpuLimit::during_init(128)).unwrap();
        assert_eq!(read(cpu.join("function/cpu.cfs_quota_us")), "100000");
        assert_eq!(read(cpu.join("cpu.shares")), "1024");
    }

    #[test]
    fn the_peak_is_read_from_the_memory_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        let v1 = fake_tree(root.path(), "cpu");
        v1.prepare().unwrap();
        v1.create("lamb-m", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let memory = root.path().join("memory/lamb/lamb-m");
        fs::write(memory.join("memory.max_usage_in_bytes"), "8192\n").unwrap();
        fs::write(memory.join("memory.usage_in_bytes"), "4096\n").unwrap();
        assert_eq!(v1.memory_peak_bytes("lamb-m").unwrap(), 8192);
        assert_eq!(v1.stats("lamb-m").unwrap().memory_peak_bytes, 8192);
    }
}
