//! The `lamb` command's client side: every command is one or a few calls
//! of the daemon's signed API, the same one boto3 and the aws CLI use.

pub mod bundle;
pub mod client;
mod commands;
mod events;
mod file_triggers;
pub mod output;
mod schedules;
pub mod sigv4;

use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Options every client command takes.
#[derive(Debug, Clone, Args)]
pub struct ClientOpts {
    /// The daemon's API.
    #[arg(long, env = "LAMB_ENDPOINT", default_value = "http://127.0.0.1:9080", global = true)]
    pub endpoint: String,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where to find the daemon's credentials when `LAMB_ACCESS_KEY_ID` and
    /// `LAMB_SECRET_ACCESS_KEY` are not set (root on the daemon's box).
    #[arg(
        long = "client-data-dir",
        env = "LAMB_DATA_DIR",
        default_value = "/var/lib/lamb",
        global = true
    )]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Create a function, or update its code and configuration.
    Deploy(commands::DeployArgs),
    /// Invoke a function and print its response.
    Invoke(commands::InvokeArgs),
    /// List functions.
    Ls,
    /// Show one function.
    Get {
        /// NAME or NAME:QUALIFIER.
        name: String,
    },
    /// Delete a function (or NAME:VERSION, one version).
    Rm { name: String },
    /// Publish $LATEST as a new version.
    Publish { name: String },
    /// Aliases.
    #[command(subcommand)]
    Alias(commands::AliasCommand),
    /// Layers.
    #[command(subcommand)]
    Layer(commands::LayerCommand),
    /// Set reserved concurrency: a number, or `none` to remove it.
    Concurrency { name: String, value: String },
    /// Print a function's logs.
    Logs {
        name: String,
        /// Keep printing new lines as they come.
        #[arg(long, short)]
        follow: bool,
    },
    /// Show the daemon's state.
    Status,
    /// File triggers: invoke a function for each new file in a directory.
    #[command(subcommand)]
    Trigger(file_triggers::TriggerCommand),
    /// List a function's queued, running and failed async events.
    Events { name: String },
    /// Schedules: invoke a function at a rate or on a cron expression.
    #[command(subcommand)]
    Schedule(schedules::ScheduleCommand),
}

/// Runs one client command.
pub fn run(opts: &ClientOpts, cmd: ClientCommand) -> anyhow::Result<()> {
    let keys = client::Keys::find(&opts.data_dir)?;
    let c = client::Client::new(&opts.endpoint, keys)?;
    commands::run(&c, opts, cmd)
}
