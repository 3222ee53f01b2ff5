//! `lamb serve`: the daemon. Root only: it creates cgroups, mounts and
//! namespaces for every sandbox.
//!
//! The spawner process is forked first, while this process has one thread;
//! its start-up sweep removes what a killed daemon left; only then does the
//! async runtime start.

use anyhow::{bail, Context};
use lamb_daemon::server::{serve, shutdown_signal, ServeConfig};
use lamb_daemon::{Engine, EngineConfig};
use lamb_sandbox::{SandboxerConfig, Spawner};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address the API listens on.
    #[arg(long, env = "LAMB_LISTEN", default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
    /// Address function URLs are served on (`http://<url-id>.lambda-url.localhost:<port>/`
    /// or `http://<address>/<url-id>/`).
    #[arg(long, env = "LAMB_URL_LISTEN", default_value = lamb_daemon::urls::DEFAULT_URL_LISTEN)]
    url_listen: SocketAddr,
    /// Schedule time runs this many times faster than real time, so that
    /// tests see `rate(1 minute)` fire every second with 60.
    #[arg(long, default_value_t = 1.0, hide = true)]
    schedule_time_scale: f64,
    /// Where the registry, code, credentials and logs live.
    #[arg(long, env = "LAMB_DATA_DIR", default_value = "/var/lib/lamb")]
    data_dir: PathBuf,
    /// Runtime root filesystems, one directory per runtime name
    /// [default: <data-dir>/runtimes].
    #[arg(long, env = "LAMB_RUNTIMES_DIR")]
    runtimes_dir: Option<PathBuf>,
    /// An idle sandbox is destroyed after this long (`600s`, `10m`, `500ms`).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    idle_ttl: Duration,
    /// Memory all sandboxes together may be given, in MB [default: three
    /// quarters of the host's memory].
    #[arg(long)]
    memory_capacity: Option<u64>,
    /// Concurrent invocations in the account, as Lambda's default quota.
    #[arg(long, default_value_t = 1000)]
    concurrency_limit: u32,
    /// An idle sandbox is frozen after this long without work.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    freeze_grace: Duration,
    /// On cgroup v1: mount a small hierarchy with `favordynmods`, which removes
    /// a ~5 ms wait from cold starts after idle time, for the whole machine,
    /// until that mount is removed (docs/sandbox.md). No effect on cgroup v2.
    #[arg(long)]
    cgroup_favordynmods: bool,
    /// Waits before the retries of a failed async invocation, comma
    /// separated (`1s,2s` for tests) [default: Lambda's 1m,2m].
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    async_retry_delays: Vec<Duration>,
    /// The parent cgroup of every sandbox (one per daemon on a machine).
    #[arg(long, env = "LAMB_CGROUP_PARENT", default_value = "lamb", hide = true)]
    cgroup_parent: String,
    /// Serve a host directory as a file system functions may mount, as
    /// `arn:aws:elasticfilesystem:<region>:<account>:access-point/NAME`
    /// (NAME=PATH; repeatable). The directory is given group 990, g+rwxs and
    /// a group-writable default ACL so that every sandbox can write to it.
    #[arg(long = "filesystem", value_name = "NAME=PATH")]
    filesystems: Vec<String>,
    /// A RabbitMQ broker event source mappings may read, named in their
    /// `EventSourceArn` as `arn:aws:mq:<region>:<account>:broker:NAME:<id>`
    /// (NAME=amqp://USER:PASS@HOST:PORT[/VHOST]; repeatable).
    #[arg(long = "rabbitmq", value_name = "NAME=URL")]
    rabbitmq: Vec<String>,
    /// Run every sandbox in its own user namespace: root inside is an
    /// unprivileged uid outside, the sandbox in slot N mapping ids 0-65535 to
    /// 1000000 + N * 65536 onwards, so a process that escaped its other
    /// namespaces would be nobody on the host. Costs a little on each cold
    /// start (no prepared network namespace; docs/sandbox.md).
    #[arg(long)]
    userns: bool,
}

/// `250ms`, `30s`, `10m`, `1h`; a bare number is seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s} (ms, s, m, h)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("lamb serve must run as root (it creates namespaces, mounts and cgroups for every sandbox); try: sudo lamb serve");
    }
    let runtimes_dir = args.runtimes_dir.unwrap_or_else(|| args.data_dir.join("runtimes"));
    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("create {}", args.data_dir.display()))?;
    if args.cgroup_favordynmods
        && lamb_sandbox::cgroup::detect_version(std::path::Path::new("/sys/fs/cgroup"))?
            == lamb_sandbox::CgroupVersion::V1
    {
        let mount_point = std::path::Path::new(lamb_sandbox::v1_tuning::DEFAULT_MOUNT_POINT);
        lamb_sandbox::v1_tuning::enable_favordynmods(mount_point).context("enable favordynmods")?;
    }
    if args.userns {
        let lamb_exe = std::env::current_exe().context("find this executable")?;
        for path in [&args.data_dir, &runtimes_dir, &lamb_exe] {
            searchable_by_others(path)?;
        }
    }
    // Before any thread: the spawner is a fork of this process.
    let spawner = Spawner::fork(SandboxerConfig {
        state_dir: args.data_dir.join("sandboxes"),
        cgroup_parent: args.cgroup_parent.clone(),
    })
    .context("start the sandbox spawner")?;
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LAMB_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let swept = spawner.sweep().context("sweep what an earlier daemon left")?;
    if swept.cgroups_removed + swept.paths_removed + swept.mounts_detached > 0 {
        tracing::info!(?swept, "removed sandboxes an earlier daemon left");
    }
    let filesystems = lamb_daemon::filesystems::Filesystems::parse(&args.filesystems)?;
    filesystems.prepare(lamb_daemon::engine::SANDBOX_GID)?;
    let brokers = lamb_daemon::esm::Brokers::parse(&args.rabbitmq)?;
    let lamb_exe = std::env::current_exe().context("find this executable")?;
    let mut engine_config = EngineConfig::new(args.data_dir.clone(), runtimes_dir.clone(), lamb_exe);
    engine_config.idle_ttl = args.idle_ttl;
    engine_config.concurrency_limit = args.concurrency_limit;
    engine_config.freeze_grace = args.freeze_grace;
    engine_config.filesystems = filesystems.clone();
    engine_config.user_namespaces = args.userns;
    if let Some(mb) = args.memory_capacity {
        engine_config.memory_capacity_mb = mb;
    }
    let config = ServeConfig {
        listen: args.listen,
        background: lamb_daemon::background::BackgroundConfig {
            url_listen: Some(args.url_listen),
            schedule_time_scale: args.schedule_time_scale,
        },
        data_dir: args.data_dir,
        runtimes_dir,
        concurrency_limit: args.concurrency_limit,
        async_retry_delays: args.async_retry_delays,
        filesystems,
        brokers,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let engine = Arc::new(Engine::new(spawner, engine_config));
    runtime.block_on(async {
        engine.start();
        let served = serve(
            config,
            Arc::clone(&engine) as Arc<dyn lamb_daemon::Invoker>,
            shutdown_signal(),
        )
        .await;
        engine.shutdown().await;
        served.context("lamb serve")
    })
}

/// With `--userns` a sandbox's set-up runs as an unprivileged uid outside,
/// which reaches code, layers and runtimes only through directories every
/// user may search: refuse to start rather than fail every cold start.
fn searchable_by_others(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(path) = path.canonicalize() else {
        return Ok(());
    };
    for dir in path.ancestors().filter(|p| p.is_dir()) {
        let mode = std::fs::metadata(dir)
            .with_context(|| format!("stat {}", dir.display()))?
            .permissions()
            .mode();
        if mode & 0o001 == 0 {
            bail!(
                "--userns: {} is not searchable by other users (chmod o+x), and root inside a sandbox's user namespace is an unprivileged user outside",
                dir.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("3d").is_err());
    }

    #[test]
    fn userns_needs_searchable_directories() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = std::env::temp_dir().join(format!("lamb-userns-check-{}", std::process::id()));
        let inner = tmp.join("data");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(searchable_by_others(&inner).is_err());
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
        let parents_ok = tmp
            .ancestors()
            .all(|p| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0));
        assert_eq!(searchable_by_others(&inner).is_ok(), parents_ok);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
