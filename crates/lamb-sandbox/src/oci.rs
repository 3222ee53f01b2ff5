//! The sandbox in the OCI runtime vocabulary: [`to_oci`] turns a
//! [`SandboxSpec`] into an `oci_spec::runtime::Spec` (a `config.json`), so the
//! same sandbox can be run by crun, runc or gVisor's runsc as an alternative
//! back end. The benchmark uses it to give crun and runc the same sandbox.
//!
//! OCI has a single root directory, so the caller of an OCI runtime mounts
//! the overlay of the rootfs layers at `root` first (the built-in back end
//! does that inside the sandbox's own mount namespace instead).

use std::path::Path;

use oci_spec::runtime::{
    LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::error::{Result, SandboxError};
use crate::plan::lowerdir;
use crate::spec::{MountSpec, SandboxSpec};

fn oci_err(e: impl std::fmt::Display) -> SandboxError {
    SandboxError::InvalidSpec(format!("cannot express the sandbox in OCI terms: {e}"))
}

/// The OCI runtime spec of `spec`, with `root` as the (pre-mounted) root directory.
pub fn to_oci(spec: &SandboxSpec, root: &Path) -> Result<Spec> {
    spec.validate()?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(spec.user.uid)
                .gid(spec.user.gid)
                .additional_gids(vec![spec.user.gid])
                .build()
                .map_err(oci_err)?,
        )
        .args(spec.process.argv.clone())
        .env(spec.process.env.clone())
        .cwd(spec.process.cwd.clone())
        .no_new_privileges(true)
        .rlimits(vec![
            rlimit(PosixRlimitType::RlimitNofile, spec.limits.nofile)?,
            rlimit(PosixRlimitType::RlimitNproc, spec.limits.nproc)?,
        ])
        .capabilities(no_capabilities()?)
        .build()
        .map_err(oci_err)?;
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(root)
                .readonly(true)
                .build()
                .map_err(oci_err)?,
        )
        .hostname(spec.hostname.clone())
        .process(process)
        .mounts(mounts(spec)?)
        .linux(linux(spec)?)
        .build()
        .map_err(oci_err)
}

/// Every capability set empty (oci-spec's default process keeps a few).
fn no_capabilities() -> Result<oci_spec::runtime::LinuxCapabilities> {
    let empty = oci_spec::runtime::Capabilities::new;
    LinuxCapabilitiesBuilder::default()
        .bounding(empty())
        .effective(empty())
        .inheritable(empty())
        .permitted(empty())
        .ambient(empty())
        .build()
        .map_err(oci_err)
}

fn rlimit(typ: PosixRlimitType, value: u64) -> Result<oci_spec::runtime::PosixRlimit> {
    PosixRlimitBuilder::default()
        .typ(typ)
        .hard(value)
        .soft(value)
        .build()
        .map_err(oci_err)
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(oci_err)
}

fn mounts(spec: &SandboxSpec) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for m in &spec.mounts {
        let target = m.target().to_string_lossy().into_owned();
        match m {
            MountSpec::BindWritable { source, .. } => {
                mounts.push(mount(
                    &target,
                    "bind",
                    &source.to_string_lossy(),
                    &["bind", "rw", "nosuid", "nodev"],
                )?);
            }
            MountSpec::Bind { source, .. } => {
                mounts.push(mount(
                    &target,
                    "bind",
                    &source.to_string_lossy(),
                    &["rbind", "ro", "nosuid", "nodev"],
                )?);
            }
            MountSpec::Layers { layers, .. } => {
                let highest_first: Vec<&Path> = layers.iter().rev().map(|p| p.as_path()).collect();
                let lower = lowerdir(&highest_first)?;
                mounts.push(mount(
                    &target,
                    "overlay",
                    "overlay",
                    &["ro", "nosuid", "nodev", &lower],
                )?);
            }
        }
    }
    // An OCI runtime gets a tmpfs whatever `tmp_storage` says: the pool of
    // disk images is the built-in back end's (`crate::tmp_disk`).
    let tmp_size = format!("size={}", spec.tmp_size_bytes);
    mounts.push(mount(
        "/tmp",
        "tmpfs",
        "tmpfs",
        &["nosuid", "nodev", "mode=1777", &tmp_size],
    )?);
    mounts.push(mount("/proc", "proc", "proc", &["nosuid", "nodev", "noexec"])?);
    mounts.push(mount(
        "/dev",
        "tmpfs",
        "tmpfs",
        &["nosuid", "noexec", "mode=755", "size=64k"],
    )?);
    mounts.push(mount(
        "/dev/pts",
        "devpts",
        "devpts",
        &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    )?);
    mounts.push(mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "nodev", "mode=1777", "size=64m"],
    )?);
    Ok(mounts)
}

fn linux(spec: &SandboxSpec) -> Result<oci_spec::runtime::Linux> {
    let user = spec.user_namespace.map(|_| LinuxNamespaceType::User);
    let namespaces = [
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .chain(user)
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build().map_err(oci_err))
    .collect::<Result<Vec<_>>>()?;
    let limits = &spec.limits;
    let memory = i64::try_from(limits.memory_bytes).map_err(oci_err)?;
    let resources = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(memory)
                .swap(memory)
                .build()
                .map_err(oci_err)?,
        )
        .pids(
            LinuxPidsBuilder::default()
                .limit(limits.pids as i64)
                .build()
                .map_err(oci_err)?,
        )
        .cpu(
            LinuxCpuBuilder::default()
                .quota(limits.cpu.quota_us as i64)
                .period(limits.cpu.period_us)
                .shares(limits.cpu.shares())
                .build()
                .map_err(oci_err)?,
        )
        .build()
        .map_err(oci_err)?;
    let mut builder = LinuxBuilder::default();
    if let Some(map) = &spec.user_namespace {
        let mapping = |host_id: u32| {
            oci_spec::runtime::LinuxIdMappingBuilder::default()
                .container_id(0u32)
                .host_id(host_id)
                .size(map.size)
                .build()
                .map_err(oci_err)
        };
        builder = builder
            .uid_mappings(vec![mapping(map.outside_uid_base)?])
            .gid_mappings(vec![mapping(map.outside_gid_base)?]);
    }
    builder
        .namespaces(namespaces)
        .resources(resources)
        .masked_paths(vec![
            "/proc/kcore".into(),
            "/proc/keys".into(),
            "/proc/timer_list".into(),
            "/proc/sched_debug".into(),
        ])
        .readonly_paths(vec![
            "/proc/sys".into(),
            "/proc/sysrq-trigger".into(),
            "/proc/bus".into(),
            "/proc/irq".into(),
        ])
        .build()
        .map_err(oci_err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ProcessSpec, User};

    #[test]
    fn oci_spec_carries_namespaces_limits_and_user() {
        let process = ProcessSpec {
            argv: vec!["/bin/true".into()],
            env: vec!["A=1".into()],
            cwd: "/var/task".into(),
        };
        let mut spec = SandboxSpec::new(vec!["/rootfs".into()], process, User { uid: 993, gid: 990 });
        spec.mounts.push(MountSpec::Layers {
            layers: vec!["/l1".into(), "/l2".into()],
            target: "/opt".into(),
        });
        let oci = to_oci(&spec, Path::new("/bundle/rootfs")).unwrap();
        let json = serde_json::to_value(&oci).unwrap();
        assert_eq!(json["process"]["user"]["uid"], 993);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert_eq!(json["root"]["readonly"], true);
        assert_eq!(json["linux"]["namespaces"].as_array().unwrap().len(), 6);
        assert_eq!(json["linux"]["resources"]["pids"]["limit"], 1024);
        let opt = json["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/opt")
            .unwrap();
        assert!(opt["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "lowerdir=/l2:/l1"));
        for set in ["bounding", "effective", "inheritable", "permitted", "ambient"] {
            assert_eq!(json["process"]["capabilities"][set], serde_json::json!([]), "{set}");
        }
    }
}
