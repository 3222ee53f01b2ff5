//! `lamb`: one binary for the daemon (`lamb serve`), the client commands, and
//! the hidden commands a sandbox and the benchmarks start.
//!
//! Sandbox-side commands are dispatched first, before any thread or async
//! runtime exists (the way Kata's agent handles its `init`), so that anything
//! they clone or fork happens in a single-threaded process.

mod bench;
mod cluster;
mod load;
mod sandbox_exec;
mod serve;
mod session_credentials;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "lamb", version, about = "AWS Lambda on one Linux box")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    client: lamb_cli::ClientOpts,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create one sandbox from a JSON spec, run it to exit and destroy it
    /// (measures the fork+exec path against the in-process spawner).
    #[command(hide = true)]
    SandboxExec(sandbox_exec::Args),
    /// Measure the invocation engine through the API (`make bench`).
    #[command(hide = true)]
    BenchEngine(bench::Args),
    /// Many synchronous invocations over several functions (the load tests).
    #[command(hide = true)]
    LoadEngine(load::Args),
    /// Run the daemon (as root): the Lambda API on --listen.
    Serve(Box<serve::Args>),
    /// Cluster mode's nodes (docs/cluster.md).
    #[command(subcommand)]
    Cluster(cluster::Command),
    /// Mint a function's session credentials with the running daemon's key
    /// (root: the key is in the data directory), as STS would for its role.
    #[command(hide = true)]
    SessionCredentials(session_credentials::Args),
    #[command(flatten)]
    Client(lamb_cli::ClientCommand),
}

fn main() -> anyhow::Result<()> {
    // `lamb init`, PID 1 of a sandbox: before clap, threads or allocation
    // beyond the argument list, and hidden from --help.
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("init") {
        std::process::exit(lamb_init::main(&args[2..]));
    }
    let cli = Cli::parse();
    match cli.command {
        // Sandbox-side: first, and before any runtime or thread exists.
        Command::SandboxExec(args) => sandbox_exec::run(args),
        Command::Serve(args) => serve::run(*args),
        Command::SessionCredentials(args) => session_credentials::run(args),
        Command::BenchEngine(args) => {
            let keys = lamb_cli::client::Keys::find(&cli.client.data_dir)?;
            bench::run(args, &cli.client.endpoint, keys)
        }
        Command::LoadEngine(args) => {
            let keys = lamb_cli::client::Keys::find(&cli.client.data_dir)?;
            load::run(args, &cli.client.endpoint, keys)
        }
        Command::Cluster(cmd) => cluster::run(cmd),
        Command::Client(cmd) => {
            // Client errors are one readable line, not a debug chain.
            if let Err(e) = lamb_cli::run(&cli.client, cmd) {
                eprintln!("lamb: {e:#}");
                std::process::exit(1);
            }
            Ok(())
        }
    }
}
