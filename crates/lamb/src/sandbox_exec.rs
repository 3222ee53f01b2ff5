//! `lamb sandbox-exec SPEC.json`: one sandbox, run to its exit, from a fresh
//! process. The benchmark times this fork+exec path against calling the
//! sandbox library from an already running single-threaded spawner.

use std::path::PathBuf;

use anyhow::Context;
use lamb_sandbox::{SandboxIo, SandboxSpec, Sandboxer, SandboxerConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The sandbox spec, as JSON.
    spec: PathBuf,
    /// Where the sandboxer keeps its state.
    #[arg(long, default_value = "/var/lib/lamb/sandboxes")]
    state_dir: PathBuf,
    /// The parent cgroup.
    #[arg(long, default_value = "lamb")]
    cgroup_parent: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let spec: SandboxSpec =
        serde_json::from_slice(&std::fs::read(&args.spec).context("reading the spec")?).context("parsing the spec")?;
    let sandboxer = Sandboxer::new(SandboxerConfig {
        state_dir: args.state_dir,
        cgroup_parent: args.cgroup_parent,
        network: None,
    })?;
    let outcome = sandboxer.run(&spec, SandboxIo::default())?;
    if outcome.exit != lamb_sandbox::Exit::Code(0) {
        anyhow::bail!("sandbox process ended with {}", outcome.exit);
    }
    Ok(())
}
