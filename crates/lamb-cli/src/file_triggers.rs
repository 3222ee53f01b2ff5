//! `lamb trigger add|ls|rm`: file triggers through the daemon's signed
//! `/lamb/triggers` endpoints. A new file in a watched directory of a
//! served file system invokes the function with an S3 `ObjectCreated:Put`
//! event.

use crate::client::{Call, Client};
use crate::output::{cell, print_json, table};
use crate::ClientOpts;
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use std::path::PathBuf;

const TRIGGERS: &str = "/lamb/triggers";

#[derive(Debug, Subcommand)]
pub enum TriggerCommand {
    /// Invoke a function (asynchronously) for each file written or moved
    /// into a directory of a file system the daemon serves (--filesystem).
    Add {
        /// NAME or NAME:QUALIFIER of the function.
        function: String,
        /// The directory to watch, subdirectories included.
        #[arg(long)]
        dir: PathBuf,
        /// Only keys (paths under the file system's root) starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
        /// Only keys ending with this, e.g. `.jpg`.
        #[arg(long, default_value = "")]
        suffix: String,
    },
    /// List file triggers.
    Ls,
    /// Remove a file trigger by id.
    Rm { id: String },
}

pub fn run(c: &Client, opts: &ClientOpts, cmd: TriggerCommand) -> anyhow::Result<()> {
    match cmd {
        TriggerCommand::Add {
            function,
            dir,
            prefix,
            suffix,
        } => {
            // The daemon runs on this host; it resolves the same path.
            let dir = std::path::absolute(&dir).with_context(|| format!("resolve {}", dir.display()))?;
            let (name, qualifier) = match function.split_once(':') {
                Some((n, q)) => (n.to_owned(), Some(q.to_owned())),
                None => (function.clone(), None),
            };
            let out = c.json(Call::new("POST", &[TRIGGERS]).json(&json!({
                "FunctionName": name,
                "Qualifier": qualifier,
                "Dir": dir.to_string_lossy(),
                "Prefix": prefix,
                "Suffix": suffix,
            })))?;
            if opts.json {
                print_json(&out);
            } else {
                println!(
                    "trigger {}: new files in {} invoke {}",
                    cell(&out["Id"]),
                    cell(&out["Dir"]),
                    function
                );
            }
        }
        TriggerCommand::Ls => {
            let out = c.json(Call::new("GET", &[TRIGGERS]))?;
            if opts.json {
                print_json(&out);
                return Ok(());
            }
            let rows = out["Triggers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    vec![
                        cell(&t["Id"]),
                        format!("{}:{}", cell(&t["FunctionName"]), cell(&t["Qualifier"])),
                        cell(&t["FileSystem"]),
                        cell(&t["Dir"]),
                        cell(&t["Prefix"]),
                        cell(&t["Suffix"]),
                    ]
                })
                .collect();
            println!(
                "{}",
                table(&["ID", "FUNCTION", "FILESYSTEM", "DIR", "PREFIX", "SUFFIX"], rows)
            );
        }
        TriggerCommand::Rm { id } => {
            c.send(Call::new("DELETE", &[TRIGGERS, &id]))?;
            if !opts.json {
                println!("removed trigger {id}");
            }
        }
    }
    Ok(())
}
