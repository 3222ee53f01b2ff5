//! cgroup v2: one unified hierarchy; lamb's parent delegates memory, pids and
//! cpu to one child per sandbox, and new processes are cloned straight into it.
//! A split sandbox's cgroup delegates cpu alone to its init and function
//! groups and holds no process itself (v2 allows processes in leaves only):
//! its memory, pids, freezer and kill cover both leaves, as they are
//! hierarchical.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::files::{self, poll_until};
use super::{
    CgroupBackend, CgroupStats, CgroupVersion, JoinTarget, Layout, FUNCTION_GROUP, GROUPS, INIT_GROUP, SETTLE_TIMEOUT,
};
use crate::error::{cgroup_err, Result};
use crate::spec::{CpuLimit, Limits};
use crate::SANDBOX_PREFIX;

/// The controllers each sandbox cgroup needs.
const CONTROLLERS: &str = "+memory +pids +cpu";
/// The controllers a split sandbox delegates to its init and function groups.
const GROUP_CONTROLLERS: &str = "+cpu";

/// cgroup v2 back end rooted at lamb's parent cgroup directory.
#[derive(Debug, Clone)]
pub struct CgroupV2 {
    parent: PathBuf,
}

impl CgroupV2 {
    /// `parent` is lamb's cgroup, e.g. `/sys/fs/cgroup/lamb`; tests pass a directory of plain files.
    pub fn new(parent: PathBuf) -> CgroupV2 {
        CgroupV2 { parent }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.parent.join(name)
    }

    /// Where the quota of `name` goes: its function group when it is split.
    fn quota_dir(&self, name: &str) -> PathBuf {
        let function = self.dir(name).join(FUNCTION_GROUP);
        if function.is_dir() {
            function
        } else {
            self.dir(name)
        }
    }

    /// Makes the init and function groups of `name`, with the cpu controller.
    fn split(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        files::write(&dir.join("cgroup.subtree_control"), GROUP_CONTROLLERS)?;
        for group in GROUPS {
            let group = dir.join(group);
            fs::create_dir(&group).map_err(cgroup_err("mkdir", &group))?;
        }
        write_cpu_max(&dir.join(INIT_GROUP), &CpuLimit::supervisor())
    }

    fn set_frozen(&self, name: &str, frozen: bool) -> Result<()> {
        let dir = self.dir(name);
        files::write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" })?;
        let want = u64::from(frozen);
        let events = dir.join("cgroup.events");
        let settled = poll_until(SETTLE_TIMEOUT, || {
            Ok(files::keyed_value(&files::read(&events)?, "frozen") == Some(want))
        })?;
        if settled {
            Ok(())
        } else {
            Err(cgroup_err("freeze", events)(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                files::FreezeTimeout,
            )))
        }
    }
}

impl CgroupBackend for CgroupV2 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn prepare(&self) -> Result<()> {
        fs::create_dir_all(&self.parent).map_err(cgroup_err("mkdir", &self.parent))?;
        // Controllers must be enabled on every level above a sandbox cgroup.
        if let Some(grandparent) = self.parent.parent() {
            enable_controllers(grandparent)?;
        }
        enable_controllers(&self.parent)
    }

    fn create(&self, name: &str, limits: &Limits, layout: Layout) -> Result<()> {
        let dir = self.dir(name);
        fs::create_dir(&dir).map_err(cgroup_err("mkdir", &dir))?;
        files::write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
        files::write_optional(&dir.join("memory.swap.max"), "0")?;
        // One OOM kill takes the whole sandbox down, as a killed microVM would.
        files::write_optional(&dir.join("memory.oom.group"), "1")?;
        files::write(&dir.join("pids.max"), &limits.pids.to_string())?;
        if layout == Layout::Split {
            self.split(name)?;
        }
        self.set_cpu(name, &limits.cpu)
    }

    fn join_target(&self, name: &str, layout: Layout) -> Result<JoinTarget> {
        let dir = match layout {
            Layout::Single => self.dir(name),
            Layout::Split => self.dir(name).join(INIT_GROUP),
        };
        let fd: OwnedFd = fs::File::open(&dir).map_err(cgroup_err("open", &dir))?.into();
        Ok(JoinTarget::CloneInto(fd))
    }

    fn function_procs(&self, name: &str) -> Result<OwnedFd> {
        files::open_procs(&self.dir(name).join(FUNCTION_GROUP))
    }

    fn freeze(&self, name: &str) -> Result<()> {
        self.set_frozen(name, true)
    }

    fn thaw(&self, name: &str) -> Result<()> {
        self.set_frozen(name, false)
    }

    fn stats(&self, name: &str) -> Result<CgroupStats> {
        let dir = self.dir(name);
        let cpu = files::read_keyed_or_empty(&dir.join("cpu.stat"))?;
        let events = files::read_keyed_or_empty(&dir.join("memory.events"))?;
        Ok(CgroupStats {
            memory_peak_bytes: files::read_u64_or_zero(&dir.join("memory.peak"))?,
            memory_current_bytes: files::read_u64_or_zero(&dir.join("memory.current"))?,
            cpu_usage_ns: files::keyed_value(&cpu, "usage_usec").unwrap_or(0) * 1000,
            oom_kills: files::keyed_value(&events, "oom_kill").unwrap_or(0),
            pids_current: files::read_u64_or_zero(&dir.join("pids.current"))?,
        })
    }

    fn memory_peak_bytes(&self, name: &str) -> Result<u64> {
        files::read_u64_or_zero(&self.dir(name).join("memory.peak"))
    }

    fn procs(&self, name: &str) -> Result<Vec<i32>> {
        files::read_pids_tree(&self.dir(name))
    }

    fn kill_all(&self, name: &str) -> Result<()> {
        // Before Linux 5.14 (no cgroup.kill): freeze, so nothing forks
        // between the list and the kill; a v2-frozen task acts on SIGKILL.
        let froze = !self.dir(name).join("cgroup.kill").exists() && self.freeze(name).is_ok();
        self.kill_now(name)?;
        if froze {
            self.thaw(name)?;
        }
        Ok(())
    }

    fn lift_limits(&self, name: &str) -> Result<()> {
        let dir = self.dir(name);
        for group in GROUPS {
            // Only where the group exists: a write would create a plain file in a fake tree.
            if dir.join(group).is_dir() {
                files::write_optional(&dir.join(group).join("cpu.max"), "max")?;
            }
        }
        files::write_optional(&dir.join("cpu.max"), "max")?;
        files::write_optional(&dir.join("memory.high"), "max")
    }

    fn set_cpu(&self, name: &str, cpu: &CpuLimit) -> Result<()> {
        write_cpu_max(&self.quota_dir(name), cpu)?;
        files::write(&self.dir(name).join("cpu.weight"), &cpu.weight.to_string())
    }

    fn set_memory(&self, name: &str, bytes: u64) -> Result<()> {
        files::write(&self.dir(name).join("memory.max"), &bytes.to_string())
    }

    fn kill_now(&self, name: &str) -> Result<()> {
        // cgroup.kill (Linux 5.14) kills every task at once, frozen ones
        // included, and races no fork; before it, one by one.
        let kill = self.dir(name).join("cgroup.kill");
        if kill.exists() {
            return files::write(&kill, "1");
        }
        files::kill_pids(&self.procs(name)?);
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<()> {
        files::remove_tree_settled(&self.dir(name), SETTLE_TIMEOUT)
    }

    fn try_remove(&self, name: &str) -> Result<bool> {
        files::try_remove_tree(&self.dir(name))
    }

    fn list(&self) -> Result<Vec<String>> {
        files::child_names(&self.parent, SANDBOX_PREFIX)
    }

    fn remove_parent(&self) -> Result<()> {
        files::remove_dir_settled(&self.parent, SETTLE_TIMEOUT)
    }
}

/// CFS bandwidth as `cpu.max` wants it: quota, then period.
fn write_cpu_max(dir: &Path, cpu: &CpuLimit) -> Result<()> {
    files::write(&dir.join("cpu.max"), &format!("{} {}", cpu.quota_us, cpu.period_us))
}

/// Adds lamb's controllers to `dir`'s `cgroup.subtree_control`, unless they are there already.
fn enable_controllers(dir: &Path) -> Result<()> {
    let control = dir.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control).unwrap_or_default();
    let missing = CONTROLLERS
        .split(' ')
        .any(|c| !enabled.split_whitespace().any(|e| e == &c[1..]));
    if missing {
        files::write(&control, CONTROLLERS)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The v2 back end against a fake cgroup tree of plain files; the real
    //! hierarchy is exercised by the root tests on a cgroup v2 machine.
    use super::*;
    use crate::spec::{CpuLimit, Limits};

    fn fake_tree() -> (tempfile::TempDir, CgroupV2) {
        let root = tempfile::tempdir().unwrap();
        fs::write(root.path().join("cgroup.subtree_control"), "").unwrap();
        let v2 = CgroupV2::new(root.path().join("lamb"));
        (root, v2)
    }

    fn read(path: PathBuf) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn prepare_enables_controllers_on_both_levels() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        assert_eq!(read(root.path().join("cgroup.subtree_control")), CONTROLLERS);
        assert_eq!(read(root.path().join("lamb/cgroup.subtree_control")), CONTROLLERS);
    }

    #[test]
    fn create_writes_lambda_limits() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-a", &Limits::for_memory_mb(1769), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-a");
        assert_eq!(read(dir.join("memory.max")), (1769u64 << 20).to_string());
        assert_eq!(read(dir.join("memory.swap.max")), "0");
        assert_eq!(read(dir.join("pids.max")), "1024");
        assert_eq!(read(dir.join("cpu.max")), "100000 100000");
        assert_eq!(v2.list().unwrap(), vec!["lamb-a".to_string()]);
    }

    #[test]
    fn stats_are_read_from_v2_files() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-s", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-s");
        fs::write(dir.join("memory.peak"), "4096\n").unwrap();
        fs::write(dir.join("memory.current"), "2048\n").unwrap();
        fs::write(dir.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        fs::write(dir.join("memory.events"), "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n").unwrap();
        fs::write(dir.join("pids.current"), "3\n").unwrap();
        let stats = v2.stats("lamb-s").unwrap();
        assert_eq!(stats.memory_peak_bytes, 4096);
        assert_eq!(stats.memory_current_bytes, 2048);
        assert_eq!(stats.cpu_usage_ns, 1_500_000);
        assert_eq!(stats.oom_kills, 1);
        assert_eq!(stats.pids_current, 3);
        assert_eq!(v2.memory_peak_bytes("lamb-s").unwrap(), 4096);
    }

    #[test]
    fn freeze_waits_for_the_frozen_event() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-f", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-f");
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        v2.freeze("lamb-f").unwrap();
        assert_eq!(read(dir.join("cgroup.freeze")), "1");
        fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        v2.thaw("lamb-f").unwrap();
        assert_eq!(read(dir.join("cgroup.freeze")), "0");
    }

    #[test]
    fn kill_uses_cgroup_kill_when_present() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-k", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-k");
        fs::write(dir.join("cgroup.kill"), "").unwrap();
        v2.kill_all("lamb-k").unwrap();
        assert_eq!(read(dir.join("cgroup.kill")), "1");
    }

    #[test]
    fn the_cpu_quota_and_weight_are_set() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-q", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-q");
        v2.set_cpu("lamb-q", &CpuLimit::during_init(128)).unwrap();
        assert_eq!(read(dir.join("cpu.max")), "100000 100000");
        assert_eq!(read(dir.join("cpu.weight")), "100");
        v2.set_cpu("lamb-q", &CpuLimit::proportional_to_memory(128)).unwrap();
        assert_eq!(read(dir.join("cpu.max")), "7235 100000");
        assert_eq!(read(dir.join("cpu.weight")), "7");
    }

    #[test]
    fn the_memory_limit_is_set_again() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-m", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-m");
        v2.set_memory("lamb-m", 1792 << 20).unwrap();
        assert_eq!(read(dir.join("memory.max")), (1792u64 << 20).to_string());
        assert_eq!(read(dir.join("memory.swap.max")), "0", "still no swap");
    }

    #[test]
    fn lifting_limits_frees_the_cpu_and_memory_high() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-l", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-l");
        assert_ne!(read(dir.join("cpu.max")), "max");
        v2.lift_limits("lamb-l").unwrap();
        assert_eq!(read(dir.join("cpu.max")), "max");
        assert_eq!(read(dir.join("memory.high")), "max");
        assert_eq!(
            read(dir.join("memory.max")),
            (128u64 << 20).to_string(),
            "the hard limit stays"
        );
        // A sandbox whose cgroup is already gone is not an error.
        v2.lift_limits("lamb-gone").unwrap();
    }

    /// Where an open descriptor points.
    fn target(fd: &OwnedFd) -> PathBuf {
        use std::os::fd::AsRawFd;
        fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap()
    }

    #[test]
    fn a_split_sandbox_has_two_leaves_and_the_quota_on_the_functions() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-p", &Limits::for_memory_mb(128), Layout::Split).unwrap();
        let dir = root.path().join("lamb/lamb-p");
        // Memory and pids on the sandbox's cgroup, cpu delegated below it.
        assert_eq!(read(dir.join("memory.max")), (128u64 << 20).to_string());
        assert_eq!(read(dir.join("pids.max")), "1024");
        assert_eq!(read(dir.join("cgroup.subtree_control")), "+cpu");
        assert_eq!(read(dir.join("init/cpu.max")), "100000 100000", "init: one core");
        assert_eq!(read(dir.join("function/cpu.max")), "7235 100000");
        assert_eq!(read(dir.join("cpu.weight")), "7", "the weight where sandboxes compete");
        assert!(!dir.join("cpu.max").exists(), "no quota above both groups");
        // PID 1 is cloned into init's leaf; its children join the function's.
        let JoinTarget::CloneInto(fd) = v2.join_target("lamb-p", Layout::Split).unwrap() else {
            panic!("v2 clones into the cgroup");
        };
        assert_eq!(target(&fd), dir.join("init"));
        fs::write(dir.join("function/cgroup.procs"), "").unwrap();
        assert_eq!(
            target(&v2.function_procs("lamb-p").unwrap()),
            dir.join("function/cgroup.procs")
        );
        // The sandbox's processes are both leaves'.
        fs::write(dir.join("init/cgroup.procs"), "10\n").unwrap();
        fs::write(dir.join("function/cgroup.procs"), "11\n12\n").unwrap();
        assert_eq!(v2.procs("lamb-p").unwrap(), [10, 11, 12]);
        // Init's quota, then the invocations', on the function's group.
        v2.set_cpu("lamb-p", &CpuLimit::during_init(128)).unwrap();
        assert_eq!(read(dir.join("function/cpu.max")), "100000 100000");
        assert_eq!(read(dir.join("cpu.weight")), "100");
        v2.lift_limits("lamb-p").unwrap();
        for group in ["init", "function"] {
            assert_eq!(read(dir.join(group).join("cpu.max")), "max", "{group}");
        }
    }

    #[test]
    fn a_single_sandbox_joins_its_own_cgroup() {
        let (root, v2) = fake_tree();
        v2.prepare().unwrap();
        v2.create("lamb-o", &Limits::for_memory_mb(128), Layout::Single)
            .unwrap();
        let dir = root.path().join("lamb/lamb-o");
        assert!(!dir.join("init").exists() && !dir.join("function").exists());
        assert_eq!(read(dir.join("cpu.max")), "7235 100000");
        let JoinTarget::CloneInto(fd) = v2.join_target("lamb-o", Layout::Single).unwrap() else {
            panic!("v2 clones into the cgroup");
        };
        assert_eq!(target(&fd), dir);
    }
}
