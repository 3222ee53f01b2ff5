//! `lamb session-credentials` (hidden): a function's session credentials,
//! minted with the running daemon's session key from its data directory,
//! printed as STS's `Credentials`. Only who can read the data directory
//! (root) can mint; the expiry may lie in the past, so that tests see an
//! expired token refused without waiting for one to expire.

use anyhow::Context;
use lamb_daemon::sessions::{Sessions, DEFAULT_DURATION};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The running daemon's data directory.
    #[arg(long, env = "LAMB_DATA_DIR", default_value = "/var/lib/lamb")]
    data_dir: PathBuf,
    /// The function the session is for (its unqualified ARN).
    #[arg(long)]
    function_arn: String,
    /// The function's execution role.
    #[arg(long)]
    role: String,
    /// Seconds until the session expires; negative for one already expired.
    #[arg(long, allow_hyphen_values = true, default_value_t = DEFAULT_DURATION.as_secs() as i64)]
    expires_in: i64,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let sessions = Sessions::load(&args.data_dir, DEFAULT_DURATION)
        .with_context(|| format!("read the session key in {}", args.data_dir.display()))?;
    let credentials = sessions.mint_expiring_in(&args.function_arn, &args.role, args.expires_in);
    println!("{}", serde_json::to_string_pretty(&credentials.to_json())?);
    Ok(())
}
