//! `lamb serve`: the daemon. Root only: it creates cgroups, mounts and
//! namespaces for every sandbox.
//!
//! First the data directory's lock, so that a second daemon on it exits
//! having changed nothing; then the spawner process is forked, while this
//! process has one thread; its start-up sweep removes what a killed daemon of
//! this data directory left; only then does the async runtime start and bind.

use anyhow::{bail, Context};
use lamb_daemon::data_dir::{self, DataDirLock};
use lamb_daemon::server::{serve, shutdown_signal, ServeConfig};
use lamb_daemon::{Engine, EngineConfig};
use lamb_sandbox::{SandboxerConfig, Spawner};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The log filter without `LAMB_LOG`: netlink-packet-route warns of every
/// link attribute newer than itself at each start-up sweep.
const DEFAULT_LOG: &str = "info,netlink_packet_route=error";

/// How long a stopping daemon waits for its spawner to destroy its sandboxes.
const SPAWNER_EXIT_LIMIT: Duration = Duration::from_secs(10);
/// How long a stopping daemon waits for its blocking tasks (image pulls).
const BLOCKING_EXIT_LIMIT: Duration = Duration::from_secs(2);

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address the API listens on.
    #[arg(long, env = "LAMB_LISTEN", default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
    /// Address function URLs are served on (`http://<address>/<url-id>/`, or
    /// any Host `<url-id>.lambda-url.<...>`).
    #[arg(long, env = "LAMB_URL_LISTEN", default_value = lamb_daemon::urls::DEFAULT_URL_LISTEN)]
    url_listen: SocketAddr,
    /// The `FunctionUrl`s answered: a prefix the URL id is appended to
    /// (`http://box.example:9081/`), or a template with `{id}`
    /// (`http://{id}.lambda-url.localhost:9081/`). Default: the URL listener's
    /// address, `http://127.0.0.1:9081/<url-id>/`.
    #[arg(long, env = "LAMB_URL_BASE", value_parser = lamb_daemon::urls::parse_url_base)]
    url_base: Option<String>,
    /// Cluster mode (docs/cluster.md): other nodes forward invocations to
    /// this address, which is also this node's id (so not 0.0.0.0); needs
    /// --cluster-secret and a PostgreSQL (--cluster-database or --registry).
    #[arg(long, env = "LAMB_CLUSTER_LISTEN", requires = "cluster_secret")]
    cluster_listen: Option<SocketAddr>,
    /// The secret every node shares, a file of at least 32 bytes, mode 0600:
    /// node-to-node requests are signed with it.
    #[arg(long, env = "LAMB_CLUSTER_SECRET", value_name = "FILE", requires = "cluster_listen")]
    cluster_secret: Option<PathBuf>,
    /// The PostgreSQL the nodes share their membership, leases and
    /// concurrency in (`postgres://USER@HOST/DB`) [default: --registry's].
    #[arg(long, env = "LAMB_CLUSTER_DATABASE", value_name = "URL", requires = "cluster_listen")]
    cluster_database: Option<String>,
    /// Invocations this node runs at once before routing prefers other
    /// nodes [default: --concurrency-limit].
    #[arg(long, requires = "cluster_listen")]
    cluster_capacity: Option<u32>,
    /// Serve Prometheus metrics (`GET /metrics`, unsigned) on this address;
    /// off by default, as the metrics name every function.
    #[arg(long, env = "LAMB_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Schedule time runs this many times faster than real time, so that
    /// tests see `rate(1 minute)` fire every second with 60.
    #[arg(long, default_value_t = 1.0, hide = true)]
    schedule_time_scale: f64,
    /// Where the registry, code, credentials and logs live.
    #[arg(long, env = "LAMB_DATA_DIR", default_value = "/var/lib/lamb")]
    data_dir: PathBuf,
    /// The registry (functions, versions, aliases, layers, the async
    /// queue): a PostgreSQL URL (`postgres://USER@HOST:PORT/DB`) that
    /// several nodes share [default: SQLite in the data directory].
    #[arg(long = "registry", env = "LAMB_REGISTRY", value_name = "URL", value_parser = parse_registry_url)]
    registry_url: Option<String>,
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
    /// Snapshots (initialised, frozen sandboxes) kept ready per published
    /// SnapStart version; they count in --memory-capacity (docs/design.md).
    #[arg(long, default_value_t = 1)]
    snapstart_pool: u32,
    /// On cgroup v1: mount a small hierarchy with `favordynmods`, which removes
    /// a ~5 ms wait from cold starts after idle time, for the whole machine,
    /// until that mount is removed (docs/sandbox.md). No effect on cgroup v2.
    #[arg(long)]
    cgroup_favordynmods: bool,
    /// Waits before the retries of a failed async invocation, comma
    /// separated (`1s,2s` for tests) [default: Lambda's 1m,2m].
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    async_retry_delays: Vec<Duration>,
    /// The parent cgroup of every sandbox [default: `lamb-` and a hash of
    /// the data directory's path, one per data directory on a machine].
    #[arg(long, env = "LAMB_CGROUP_PARENT", hide = true)]
    cgroup_parent: Option<String>,
    /// Serve a host directory as a file system functions may mount, as
    /// `arn:aws:elasticfilesystem:<region>:<account>:access-point/NAME`
    /// (NAME=PATH[,size=SIZE]; repeatable). The directory is given group 990,
    /// g+rwxs and a group-writable default ACL so that every sandbox can
    /// write to it, and is mounted nosuid,nodev over itself while lamb
    /// serves. With size= (`10G`), it is an ext4 image of that size under
    /// <data-dir>/filesystems mounted on PATH: writes past it fail with
    /// ENOSPC (PATH must be empty when the image is first made).
    #[arg(long = "filesystem", value_name = "NAME=PATH[,size=SIZE]")]
    filesystems: Vec<String>,
    /// A RabbitMQ broker event source mappings may read, named in their
    /// `EventSourceArn` as `arn:aws:mq:<region>:<account>:broker:NAME:<id>`
    /// (NAME=amqp://USER:PASS@HOST:PORT[/VHOST]; repeatable).
    #[arg(long = "rabbitmq", value_name = "NAME=URL")]
    rabbitmq: Vec<String>,
    /// Where event source mappings reach an AWS service: SERVICE=URL for
    /// sqs, kinesis or dynamodbstreams, and s3 for code given as
    /// `Code: {S3Bucket, S3Key}` (an emulator such as moto, or a region's
    /// endpoint; repeatable). Without one, AWS's endpoint of the source's
    /// (for s3, the daemon's) region; credentials from the standard AWS chain.
    #[arg(long = "aws-endpoint", value_name = "SERVICE=URL")]
    aws_endpoints: Vec<String>,
    /// A function's log streams older than this are removed (`7d`, `12h`),
    /// as a CloudWatch log group's retention does.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    log_retention: Duration,
    /// Log streams kept per function (one per sandbox); the oldest go first.
    #[arg(long, default_value_t = 1000)]
    log_max_streams: usize,
    /// Log bytes kept per function, in MB; the oldest streams go first.
    #[arg(long, default_value_t = 1024)]
    log_max_mb: u64,
    /// Run every sandbox in its own user namespace: root inside is an
    /// unprivileged uid outside, the sandbox in slot N mapping ids 0-65535 to
    /// 1000000 + N * 65536 onwards, so a process that escaped its other
    /// namespaces would be nobody on the host. With `--network none` costs a
    /// little on each cold start (no prepared network namespace; docs/sandbox.md).
    #[arg(long)]
    userns: bool,
    /// Create and update functions with runtimes past AWS's block-create and
    /// block-update dates (e.g. `provided`; nodejs18.x from 2027-02-01),
    /// which are refused otherwise with AWS's error. Their existing functions
    /// run either way.
    #[arg(long)]
    allow_deprecated_runtimes: bool,
    /// How long the session credentials minted for each sandbox last
    /// (`15m` to `12h`, as STS's role sessions); a sandbox whose session
    /// would expire during an invocation is replaced by a fresh one.
    #[arg(long, default_value = "12h", value_parser = parse_session_duration)]
    session_duration: Duration,
    /// `nat`: each sandbox gets an address, a default route and outbound NAT,
    /// reaches the Lambda API and the --host-port ports at host.lamb.internal,
    /// and no private address (docs/network.md); `none`: loopback only.
    #[arg(long, value_enum, default_value_t = NetworkMode::Nat)]
    network: NetworkMode,
    /// The sandboxes' IPv4 subnet (/12 to /28), refused if a host route overlaps it
    /// [default: the first /20 of 198.18.0.0/15 that none does].
    #[arg(long, value_name = "CIDR")]
    subnet: Option<lamb_sandbox::Ipv4Cidr>,
    /// A port of the host's 127.0.0.1 that functions reach at host.lamb.internal:PORT
    /// (repeatable), e.g. a CI job's PostgreSQL on 5432.
    #[arg(long = "host-port", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    host_ports: Vec<u16>,
    /// A private or link-local IPv4 range (RFC 1918, CGNAT, 169.254/16)
    /// that functions may reach after all (repeatable).
    #[arg(long = "egress-allow", value_name = "CIDR")]
    egress_allow: Vec<lamb_sandbox::Ipv4Cidr>,
    /// Credentials for an image registry (HOST[:PORT]=USER:PASS; repeatable),
    /// over those of the Docker config file.
    #[arg(long = "registry-auth", value_name = "HOST=USER:PASS")]
    registry_auth: Vec<String>,
    /// An image registry reached over plain HTTP instead of HTTPS
    /// (HOST[:PORT]; repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure_registry: Vec<String>,
    /// A Docker `config.json` whose `auths` give registry credentials
    /// (default: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`,
    /// when present).
    #[arg(long, value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// A PEM file of certificate authorities trusted for HTTPS registries
    /// beside the public ones (a private CA, a self-signed registry).
    #[arg(long = "registry-ca", value_name = "FILE")]
    registry_ca: Vec<PathBuf>,
    /// Most MB an image may unpack to, instead of Lambda's 10 GB, so that
    /// tests can reach the limit.
    #[arg(long, hide = true)]
    image_max_mb: Option<u64>,
    /// `on`: a cold start of a Python or Node.js function (without layers,
    /// file systems, a larger /tmp or a startup variable of its own) takes a
    /// sandbox whose runtime started ahead, kept per runtime within
    /// --memory-capacity and gone after --idle-ttl (docs/prewarm.md);
    /// `off`: every cold start starts its runtime.
    #[arg(long, value_enum, default_value_t = Switch::On)]
    prewarm: Switch,
}

/// A feature's `on` or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

fn parse_session_duration(s: &str) -> Result<Duration, String> {
    lamb_daemon::sessions::check_duration(parse_duration(s)?)
}

/// `--network`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum NetworkMode {
    Nat,
    None,
}

/// How image registries are reached, from the flags and the Docker config.
/// `--registry`: only PostgreSQL URLs (SQLite is the default, no URL).
fn parse_registry_url(s: &str) -> Result<String, String> {
    lamb_daemon::server::check_registry_url(s)?;
    Ok(s.to_owned())
}

fn registries(args: &Args) -> anyhow::Result<lamb_daemon::images::RegistryConfig> {
    let mut config = lamb_daemon::images::RegistryConfig::default();
    for entry in &args.registry_auth {
        let (host, creds) = entry
            .split_once('=')
            .and_then(|(h, c)| Some((h, c.split_once(':')?)))
            .with_context(|| format!("--registry-auth {entry:?}: expected HOST=USER:PASS"))?;
        config
            .auth
            .insert(host.to_owned(), (creds.0.to_owned(), creds.1.to_owned()));
    }
    config.insecure.extend(args.insecure_registry.iter().cloned());
    config.max_image_bytes = args.image_max_mb.map(|mb| mb.saturating_mul(1024 * 1024));
    for file in &args.registry_ca {
        let pem = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
        config
            .add_ca_pem(&pem)
            .map_err(|e| anyhow::anyhow!("--registry-ca {}: {e}", file.display()))?;
    }
    let default_file = std::env::var_os("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
        .map(|d| d.join("config.json"))
        .filter(|f| f.is_file());
    if let Some(file) = args.docker_config.clone().or(default_file) {
        let text = std::fs::read_to_string(&file).with_context(|| format!("read {}", file.display()))?;
        config
            .add_docker_config(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    }
    Ok(config)
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
        "d" => n * 86400.0,
        _ => return Err(format!("unknown unit in {s} (ms, s, m, h, d)")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// The cluster flags, checked: the secret read, the address one that other
/// nodes can reach.
fn cluster_config(args: &Args) -> anyhow::Result<Option<lamb_daemon::cluster::ClusterConfig>> {
    let (Some(listen), Some(secret)) = (args.cluster_listen, &args.cluster_secret) else {
        return Ok(None);
    };
    let Some(url) = args.cluster_database.as_ref().or(args.registry_url.as_ref()) else {
        bail!("--cluster-listen: the nodes share a PostgreSQL; give --registry postgres://... (or --cluster-database)");
    };
    if listen.ip().is_unspecified() || listen.port() == 0 {
        bail!("--cluster-listen {listen}: other nodes connect to it, so it needs a specific address and port");
    }
    if !url.starts_with("postgres://") && !url.starts_with("postgresql://") {
        bail!("--cluster-database: expected a postgres:// URL");
    }
    Ok(Some(lamb_daemon::cluster::ClusterConfig {
        database_url: url.clone(),
        listen,
        secret: lamb_cluster::auth::Secret::read(secret).context("--cluster-secret")?,
        api_addr: args.listen,
        capacity: args.cluster_capacity.unwrap_or(args.concurrency_limit),
        registry_node: None,
    }))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("lamb serve must run as root (it creates namespaces, mounts and cgroups for every sandbox); try: sudo lamb serve");
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LAMB_LOG").unwrap_or_else(|_| DEFAULT_LOG.into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // Flags first, which only read: a daemon refused for one changes nothing.
    let filesystems = lamb_daemon::filesystems::Filesystems::parse(&args.filesystems)?;
    let brokers = lamb_daemon::esm::Brokers::parse(&args.rabbitmq)?;
    let aws_endpoints = lamb_daemon::esm::aws::AwsEndpoints::parse(&args.aws_endpoints)?;
    let registries = registries(&args)?;
    let cluster = cluster_config(&args)?;
    // Then the lock, before anything touches the data directory or the machine.
    let canonical_data_dir = data_dir::create(&args.data_dir)?;
    let lock = DataDirLock::take(&canonical_data_dir, data_dir::SPAWNER_WAIT)?;
    data_dir::restrict(&canonical_data_dir, args.userns)?;
    let network = network_config(&args, &canonical_data_dir)?;
    let lambda_endpoint = network
        .as_ref()
        .and_then(lamb_sandbox::NetworkConfig::lambda_endpoint_url);
    let runtimes_dir = args.runtimes_dir.unwrap_or_else(|| args.data_dir.join("runtimes"));
    if args.cgroup_favordynmods
        && lamb_sandbox::cgroup::detect_version(std::path::Path::new("/sys/fs/cgroup"))?
            == lamb_sandbox::CgroupVersion::V1
    {
        let mount_point = std::path::Path::new(lamb_sandbox::v1_tuning::DEFAULT_MOUNT_POINT);
        lamb_sandbox::v1_tuning::enable_favordynmods(mount_point).context("enable favordynmods")?;
    }
    let init_exe = init_executable()?;
    if args.userns {
        for path in [&args.data_dir, &runtimes_dir, &init_exe] {
            searchable_by_others(path)?;
        }
    }
    let cgroup_parent = args
        .cgroup_parent
        .unwrap_or_else(|| data_dir::cgroup_parent(&canonical_data_dir));
    // Before any thread: the spawner is a fork of this process. It keeps the
    // spawner lock (until its sandboxes are destroyed), not the daemon's.
    let spawner = Spawner::fork_closing(
        SandboxerConfig {
            state_dir: args.data_dir.join("sandboxes"),
            cgroup_parent,
            network,
        },
        &[lock.daemon_only_fd()],
    )
    .context("start the sandbox spawner")?;
    if let Err(e) = lock.record_spawner(spawner.pid()) {
        tracing::warn!(error = %e, "cannot record the spawner's pid in the data directory");
    }
    let swept = spawner.sweep().context("sweep what an earlier daemon left")?;
    if swept.cgroups_removed + swept.paths_removed + swept.mounts_detached > 0 {
        tracing::info!(?swept, "removed sandboxes an earlier daemon left");
    }
    // Held until this function returns: the mounts go when the daemon stops.
    let _host_mounts = filesystems.mount_on_host(&args.data_dir)?;
    filesystems.prepare(lamb_daemon::engine::SANDBOX_GID)?;
    lamb_daemon::log_retention::start(
        args.data_dir.join("logs"),
        lamb_daemon::log_retention::LogRetention {
            max_age: args.log_retention,
            max_streams: args.log_max_streams,
            max_bytes: args.log_max_mb.saturating_mul(1024 * 1024),
        },
    );
    // A new key at every start: the sessions an earlier start minted stop working.
    let sessions = Arc::new(
        lamb_daemon::sessions::Sessions::rotate(&args.data_dir, args.session_duration)
            .context("write the session key")?,
    );
    let mut engine_config = EngineConfig::new(args.data_dir.clone(), runtimes_dir.clone(), init_exe);
    engine_config.idle_ttl = args.idle_ttl;
    engine_config.concurrency_limit = args.concurrency_limit;
    engine_config.freeze_grace = args.freeze_grace;
    engine_config.snapstart_pool = args.snapstart_pool;
    engine_config.filesystems = filesystems.clone();
    engine_config.user_namespaces = args.userns;
    engine_config.sessions = Some(Arc::clone(&sessions));
    engine_config.lambda_endpoint = lambda_endpoint;
    engine_config.prewarm = args.prewarm == Switch::On;
    if let Some(mb) = args.memory_capacity {
        engine_config.memory_capacity_mb = mb;
    }
    let config = ServeConfig {
        listen: args.listen,
        background: lamb_daemon::background::BackgroundConfig {
            url_listen: Some(args.url_listen),
            url_base: args.url_base,
            schedule_time_scale: args.schedule_time_scale,
        },
        data_dir: args.data_dir,
        registry_url: args.registry_url,
        runtimes_dir,
        concurrency_limit: args.concurrency_limit,
        async_retry_delays: args.async_retry_delays,
        filesystems,
        brokers,
        aws_endpoints,
        metrics_listen: args.metrics_listen,
        allow_deprecated_runtimes: args.allow_deprecated_runtimes,
        sessions: Some(sessions),
        registries,
        cluster,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    let spawner_handle = spawner.clone();
    let engine = Arc::new(Engine::new(spawner, engine_config));
    let result = runtime.block_on(async {
        engine.start();
        let served = serve(
            config,
            Arc::clone(&engine) as Arc<dyn lamb_daemon::Invoker>,
            shutdown_signal(),
        )
        .await;
        engine.shutdown().await;
        served.context("lamb serve")
    });
    // An image pull in flight (a blocking task) is abandoned rather than
    // awaited: it resumes at the next start, and a stalled registry must not
    // hold the stop for its read timeout.
    runtime.shutdown_timeout(BLOCKING_EXIT_LIMIT);
    // The spawner unmounts the sandboxes' `/tmp` file systems on its way out:
    // once this returns, nothing of the daemon is left mounted on the host.
    if !spawner_handle.close_and_wait(SPAWNER_EXIT_LIMIT) {
        tracing::warn!(
            spawner = spawner_handle.pid(),
            "the spawner is still destroying sandboxes; the next start waits for it"
        );
    }
    drop(lock);
    result
}

/// The sandboxes' network for `--network nat`, named after the data
/// directory as its cgroup parent is, so that daemons of other data
/// directories keep to their own links and rules.
fn network_config(
    args: &Args,
    canonical_data_dir: &std::path::Path,
) -> anyhow::Result<Option<lamb_sandbox::NetworkConfig>> {
    if args.network == NetworkMode::None {
        return Ok(None);
    }
    let api = match args.listen {
        SocketAddr::V4(api) => Some(api),
        SocketAddr::V6(_) => {
            tracing::warn!(listen = %args.listen, "the API listens on IPv6 only: sandboxes cannot reach it");
            None
        }
    };
    let parent = data_dir::cgroup_parent(canonical_data_dir);
    Ok(Some(lamb_sandbox::NetworkConfig {
        id: parent.trim_start_matches("lamb-").to_owned(),
        subnet: args.subnet,
        api,
        host_ports: args.host_ports.clone(),
        egress_allow: args.egress_allow.clone(),
    }))
}

/// With `--userns` a sandbox's set-up runs as an unprivileged uid outside,
/// which reaches code, layers and runtimes only through directories every
/// user may search: refuse to start rather than fail every cold start.
/// What every sandbox runs as PID 1 (`/.lamb/lamb init ...`): `lamb-init`
/// next to this executable, built with it (src/init_main.rs: `lamb init`
/// alone, a fraction of the loader's work at each start), when it was built
/// from the same init code (`lamb_init::FINGERPRINT`); else this executable,
/// whose `lamb init` is that code.
fn init_executable() -> anyhow::Result<PathBuf> {
    let lamb = std::env::current_exe().context("find this executable")?;
    let small = lamb.with_file_name("lamb-init");
    if !small.is_file() {
        return Ok(lamb);
    }
    let expected = format!("lamb-init {} {}", env!("CARGO_PKG_VERSION"), lamb_init::FINGERPRINT);
    match std::process::Command::new(&small).arg("--version").output() {
        Ok(out) if String::from_utf8_lossy(&out.stdout).trim() == expected => Ok(small),
        answer => {
            tracing::warn!(
                path = %small.display(),
                ?answer,
                "lamb-init is not this lamb's ({expected}): sandboxes run `lamb init` instead"
            );
            Ok(lamb)
        }
    }
}

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
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86400));
        assert!(parse_duration("3w").is_err());
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
