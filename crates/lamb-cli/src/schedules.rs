//! `lamb schedule add|ls|rm`: schedules through the daemon's signed
//! `/lamb/schedules` endpoints.

use crate::client::{Call, Client};
use crate::output::{cell, print_json, table};
use crate::ClientOpts;
use clap::Subcommand;
use serde_json::json;

const SCHEDULES: &str = "/lamb/schedules";

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Invoke a function (asynchronously) on a schedule: `rate(5 minutes)`
    /// or `cron(0 12 * * ? *)`, EventBridge's syntax, in UTC.
    Add {
        /// NAME or NAME:QUALIFIER of the function.
        function: String,
        expression: String,
        /// The schedule's name [default: the function's name]; adding one
        /// of the same name replaces it.
        #[arg(long)]
        name: Option<String>,
    },
    /// List schedules.
    Ls,
    /// Remove a schedule.
    Rm { name: String },
}

pub fn run(c: &Client, opts: &ClientOpts, cmd: ScheduleCommand) -> anyhow::Result<()> {
    match cmd {
        ScheduleCommand::Add {
            function,
            expression,
            name,
        } => {
            let name = name.unwrap_or_else(|| function.replace(':', "-"));
            let out = c.json(Call::new("POST", &[SCHEDULES]).json(&json!({
                "Name": name,
                "FunctionName": function,
                "Expression": expression,
            })))?;
            if opts.json {
                print_json(&out);
            } else {
                println!(
                    "scheduled {} ({}) for {}",
                    cell(&out["Name"]),
                    cell(&out["Expression"]),
                    function
                );
            }
        }
        ScheduleCommand::Ls => {
            let out = c.json(Call::new("GET", &[SCHEDULES]))?;
            if opts.json {
                print_json(&out);
                return Ok(());
            }
            let rows = out["Schedules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| {
                    let target = match s["Qualifier"].as_str() {
                        Some(q) => format!("{}:{q}", cell(&s["FunctionName"])),
                        None => cell(&s["FunctionName"]),
                    };
                    vec![cell(&s["Name"]), target, cell(&s["Expression"])]
                })
                .collect();
            println!("{}", table(&["NAME", "FUNCTION", "EXPRESSION"], rows));
        }
        ScheduleCommand::Rm { name } => {
            c.send(Call::new("DELETE", &[SCHEDULES, &name]))?;
            if !opts.json {
                println!("removed schedule {name}");
            }
        }
    }
    Ok(())
}
