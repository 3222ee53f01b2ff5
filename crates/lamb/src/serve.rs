//! `lamb serve`: the daemon. Root only: it creates cgroups, mounts and
//! namespaces for every sandbox.

use anyhow::{bail, Context};
use lamb_daemon::server::{serve, shutdown_signal, ServeConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address the API listens on.
    #[arg(long, env = "LAMB_LISTEN", default_value = "127.0.0.1:9080")]
    listen: SocketAddr,
    /// Where the registry, code, credentials and logs live.
    #[arg(long, env = "LAMB_DATA_DIR", default_value = "/var/lib/lamb")]
    data_dir: PathBuf,
    /// Runtime root filesystems, one directory per runtime name
    /// [default: <data-dir>/runtimes].
    #[arg(long, env = "LAMB_RUNTIMES_DIR")]
    runtimes_dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    if !nix::unistd::geteuid().is_root() {
        bail!("lamb serve must run as root (it creates namespaces, mounts and cgroups for every sandbox); try: sudo lamb serve");
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LAMB_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtimes_dir = args.runtimes_dir.unwrap_or_else(|| args.data_dir.join("runtimes"));
    let config = ServeConfig {
        listen: args.listen,
        data_dir: args.data_dir,
        runtimes_dir,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime
        .block_on(serve(config, Arc::new(lamb_daemon::NoEngine), shutdown_signal()))
        .context("lamb serve")
}
