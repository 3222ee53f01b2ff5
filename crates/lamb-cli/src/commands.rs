//! One function per `lamb` client command.

use crate::client::{ApiError, Call, Client};
use crate::output::{cell, human_size, key_values, print_json, table};
use crate::{bundle, ClientCommand, ClientOpts};
use anyhow::{anyhow, bail, Context};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

const FUNCTIONS: &str = "/2015-03-31/functions";
const DEFAULT_ROLE: &str = "arn:aws:iam::000000000000:role/lamb";

#[derive(Debug, Args)]
pub struct DeployArgs {
    pub name: String,
    #[arg(long)]
    pub runtime: String,
    #[arg(long)]
    pub handler: String,
    /// A directory (zipped here) or a zip file.
    #[arg(long)]
    pub code: PathBuf,
    #[arg(long)]
    pub memory: Option<u32>,
    /// Seconds.
    #[arg(long)]
    pub timeout: Option<u32>,
    /// KEY=VALUE, repeatable; replaces the function's environment.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// A layer version ARN, repeatable; replaces the function's layers.
    #[arg(long = "layer", value_name = "ARN")]
    pub layers: Vec<String>,
    /// Publish a version after the update.
    #[arg(long)]
    pub publish: bool,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// NAME or NAME:QUALIFIER.
    pub name: String,
    /// The event: JSON text, or @FILE.
    #[arg(long, default_value = "{}")]
    pub payload: String,
    /// Invoke asynchronously (queued, answered 202).
    #[arg(long)]
    pub event: bool,
    /// Print the invocation's log tail to stderr.
    #[arg(long)]
    pub log: bool,
}

#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create or update an alias.
    Set {
        name: String,
        alias: String,
        version: String,
        /// VERSION=FRACTION: send that share of traffic to another version.
        #[arg(long, value_name = "VERSION=FRACTION")]
        weight: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LayerCommand {
    /// Publish a layer version from a zip or a directory.
    Publish {
        name: String,
        code: PathBuf,
        /// Compatible runtime, repeatable.
        #[arg(long = "runtime")]
        runtimes: Vec<String>,
    },
    /// List layers.
    Ls,
}

pub fn run(c: &Client, opts: &ClientOpts, cmd: ClientCommand) -> anyhow::Result<()> {
    match cmd {
        ClientCommand::Deploy(a) => deploy(c, opts, a),
        ClientCommand::Invoke(a) => invoke(c, opts, a),
        ClientCommand::Ls => list(c, opts),
        ClientCommand::Get { name } => get(c, opts, &name),
        ClientCommand::Rm { name } => remove(c, &name),
        ClientCommand::Publish { name } => publish(c, opts, &name),
        ClientCommand::Alias(AliasCommand::Set {
            name,
            alias,
            version,
            weight,
        }) => alias_set(c, opts, &name, &alias, &version, weight.as_deref()),
        ClientCommand::Layer(LayerCommand::Publish { name, code, runtimes }) => {
            layer_publish(c, opts, &name, &code, &runtimes)
        }
        ClientCommand::Layer(LayerCommand::Ls) => layer_list(c, opts),
        ClientCommand::Concurrency { name, value } => concurrency(c, opts, &name, &value),
        ClientCommand::Logs { name, follow } => logs(c, &name, follow),
        ClientCommand::Status => status(c, opts),
        ClientCommand::Trigger(cmd) => crate::file_triggers::run(c, opts, cmd),
        ClientCommand::Events { name } => crate::events::run(c, opts, &name),
        ClientCommand::Schedule(cmd) => crate::schedules::run(c, opts, cmd),
    }
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiError>()
        .is_some_and(|a| a.code == "ResourceNotFoundException")
}

fn show_function(opts: &ClientOpts, config: &Value) {
    if opts.json {
        print_json(config);
        return;
    }
    println!(
        "{}",
        key_values(
            config,
            &[
                "FunctionName",
                "FunctionArn",
                "Version",
                "Runtime",
                "Handler",
                "MemorySize",
                "Timeout",
                "CodeSize",
                "CodeSha256",
                "State",
                "LastUpdateStatus",
                "LastModified",
                "RevisionId",
            ]
        )
    );
}

fn env_map(pairs: &[String]) -> anyhow::Result<Map<String, Value>> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| anyhow!("--env {p}: expected KEY=VALUE"))?;
            Ok((k.to_owned(), Value::String(v.to_owned())))
        })
        .collect()
}

fn deploy(c: &Client, opts: &ClientOpts, a: DeployArgs) -> anyhow::Result<()> {
    let zip = bundle::load(&a.code)?;
    let zip_b64 = STANDARD.encode(&zip);
    let mut config = Map::new();
    config.insert("Runtime".into(), json!(a.runtime));
    config.insert("Handler".into(), json!(a.handler));
    if let Some(m) = a.memory {
        config.insert("MemorySize".into(), json!(m));
    }
    if let Some(t) = a.timeout {
        config.insert("Timeout".into(), json!(t));
    }
    if !a.env.is_empty() {
        config.insert("Environment".into(), json!({"Variables": env_map(&a.env)?}));
    }
    if !a.layers.is_empty() {
        config.insert("Layers".into(), json!(a.layers));
    }
    let exists = match c.json(Call::new("GET", &[FUNCTIONS, &a.name])) {
        Ok(_) => true,
        Err(e) if is_not_found(&e) => false,
        Err(e) => return Err(e),
    };
    let out = if exists {
        c.json(Call::new("PUT", &[FUNCTIONS, &a.name, "configuration"]).json(&Value::Object(config)))?;
        c.json(
            Call::new("PUT", &[FUNCTIONS, &a.name, "code"]).json(&json!({"ZipFile": zip_b64, "Publish": a.publish})),
        )?
    } else {
        let mut body = config;
        body.insert("FunctionName".into(), json!(a.name));
        body.insert("Role".into(), json!(DEFAULT_ROLE));
        body.insert("Code".into(), json!({"ZipFile": zip_b64}));
        body.insert("Publish".into(), json!(a.publish));
        c.json(Call::new("POST", &[FUNCTIONS]).json(&Value::Object(body)))?
    };
    if !opts.json {
        let verb = if exists { "updated" } else { "created" };
        println!(
            "{verb} {} (version {}, {})",
            a.name,
            cell(&out["Version"]),
            human_size(zip.len() as u64)
        );
    } else {
        print_json(&out);
    }
    Ok(())
}

fn split_qualifier(name: &str) -> (&str, Option<&str>) {
    // An ARN has colons of its own: only a short name splits here.
    if name.starts_with("arn:") {
        return (name, None);
    }
    match name.split_once(':') {
        Some((n, q)) => (n, Some(q)),
        None => (name, None),
    }
}

fn invoke(c: &Client, opts: &ClientOpts, a: InvokeArgs) -> anyhow::Result<()> {
    let payload = match a.payload.strip_prefix('@') {
        Some(file) => std::fs::read(file).with_context(|| format!("read {file}"))?,
        None => a.payload.clone().into_bytes(),
    };
    let (name, qualifier) = split_qualifier(&a.name);
    let mut call = Call::new("POST", &[FUNCTIONS, name, "invocations"])
        .raw(payload)
        .header(
            "x-amz-invocation-type",
            if a.event { "Event" } else { "RequestResponse" },
        )
        .header("x-amz-log-type", if a.log && !a.event { "Tail" } else { "None" });
    if let Some(q) = qualifier {
        call = call.query("Qualifier", q);
    }
    let answer = c.send(call)?;
    if a.event {
        let id = answer.header("x-amzn-requestid").unwrap_or("-");
        if opts.json {
            print_json(&json!({"StatusCode": answer.status, "RequestId": id}));
        } else {
            println!("queued (request {id})");
        }
        return Ok(());
    }
    if let Some(log) = answer.header("x-amz-log-result") {
        let text = STANDARD.decode(log).unwrap_or_default();
        eprint!("{}", String::from_utf8_lossy(&text));
    }
    let mut out = std::io::stdout();
    out.write_all(&answer.body)?;
    if !answer.body.ends_with(b"\n") {
        writeln!(out)?;
    }
    if let Some(e) = answer.header("x-amz-function-error") {
        bail!(
            "the function failed ({e}), version {}",
            answer.header("x-amz-executed-version").unwrap_or("?")
        );
    }
    Ok(())
}

fn all_pages(c: &Client, path: &[&str], key: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut call = Call::new("GET", path);
        if let Some(m) = &marker {
            call = call.query("Marker", m.clone());
        }
        let page = c.json(call)?;
        items.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["NextMarker"].as_str() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => return Ok(items),
        }
    }
}

fn list(c: &Client, opts: &ClientOpts) -> anyhow::Result<()> {
    let items = all_pages(c, &[FUNCTIONS], "Functions")?;
    if opts.json {
        print_json(&json!({ "Functions": items }));
        return Ok(());
    }
    let rows = items
        .iter()
        .map(|f| {
            vec![
                cell(&f["FunctionName"]),
                cell(&f["Runtime"]),
                cell(&f["MemorySize"]),
                cell(&f["Timeout"]),
                human_size(f["CodeSize"].as_u64().unwrap_or(0)),
                cell(&f["LastModified"]),
            ]
        })
        .collect();
    println!(
        "{}",
        table(&["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "CODE", "LAST MODIFIED"], rows)
    );
    Ok(())
}

fn get(c: &Client, opts: &ClientOpts, name: &str) -> anyhow::Result<()> {
    let (name, qualifier) = split_qualifier(name);
    let mut call = Call::new("GET", &[FUNCTIONS, name]);
    if let Some(q) = qualifier {
        call = call.query("Qualifier", q);
    }
    let v = c.json(call)?;
    if opts.json {
        print_json(&v);
        return Ok(());
    }
    show_function(opts, &v["Configuration"]);
    if let Some(n) = v["Concurrency"]["ReservedConcurrentExecutions"].as_u64() {
        println!(" ReservedConcurrency  {n}");
    }
    Ok(())
}

fn remove(c: &Client, name: &str) -> anyhow::Result<()> {
    let (name, qualifier) = split_qualifier(name);
    let mut call = Call::new("DELETE", &[FUNCTIONS, name]);
    if let Some(q) = qualifier {
        call = call.query("Qualifier", q);
    }
    c.send(call)?;
    println!(
        "deleted {name}{}",
        qualifier.map(|q| format!(":{q}")).unwrap_or_default()
    );
    Ok(())
}

fn publish(c: &Client, opts: &ClientOpts, name: &str) -> anyhow::Result<()> {
    let v = c.json(Call::new("POST", &[FUNCTIONS, name, "versions"]).json(&json!({})))?;
    if opts.json {
        print_json(&v);
    } else {
        println!("published {name} version {}", cell(&v["Version"]));
    }
    Ok(())
}

fn alias_set(
    c: &Client,
    opts: &ClientOpts,
    name: &str,
    alias: &str,
    version: &str,
    weight: Option<&str>,
) -> anyhow::Result<()> {
    let mut body = json!({"FunctionVersion": version});
    match weight {
        Some(w) => {
            let (v, f) = w
                .split_once('=')
                .ok_or_else(|| anyhow!("--weight {w}: expected VERSION=FRACTION"))?;
            let f: f64 = f
                .parse()
                .with_context(|| format!("--weight {w}: {f} is not a number"))?;
            body["RoutingConfig"] = json!({"AdditionalVersionWeights": {v: f}});
        }
        None => body["RoutingConfig"] = json!({"AdditionalVersionWeights": {}}),
    }
    let out = match c.json(Call::new("GET", &[FUNCTIONS, name, "aliases", alias])) {
        Ok(_) => c.json(Call::new("PUT", &[FUNCTIONS, name, "aliases", alias]).json(&body))?,
        Err(e) if is_not_found(&e) => {
            body["Name"] = json!(alias);
            c.json(Call::new("POST", &[FUNCTIONS, name, "aliases"]).json(&body))?
        }
        Err(e) => return Err(e),
    };
    if opts.json {
        print_json(&out);
    } else {
        println!(
            "{name}:{alias} -> version {}{}",
            version,
            weight.map(|w| format!(" ({w})")).unwrap_or_default()
        );
    }
    Ok(())
}

fn layer_publish(
    c: &Client,
    opts: &ClientOpts,
    name: &str,
    code: &std::path::Path,
    runtimes: &[String],
) -> anyhow::Result<()> {
    let zip = bundle::load(code)?;
    let mut body = json!({"Content": {"ZipFile": STANDARD.encode(&zip)}});
    if !runtimes.is_empty() {
        body["CompatibleRuntimes"] = json!(runtimes);
    }
    let v = c.json(Call::new("POST", &["/2018-10-31/layers", name, "versions"]).json(&body))?;
    if opts.json {
        print_json(&v);
    } else {
        println!("{}", cell(&v["LayerVersionArn"]));
    }
    Ok(())
}

fn layer_list(c: &Client, opts: &ClientOpts) -> anyhow::Result<()> {
    let items = all_pages(c, &["/2018-10-31/layers"], "Layers")?;
    if opts.json {
        print_json(&json!({ "Layers": items }));
        return Ok(());
    }
    let rows = items
        .iter()
        .map(|l| {
            let v = &l["LatestMatchingVersion"];
            vec![
                cell(&l["LayerName"]),
                cell(&v["Version"]),
                cell(&v["CompatibleRuntimes"]),
                cell(&v["LayerVersionArn"]),
            ]
        })
        .collect();
    println!("{}", table(&["NAME", "VERSION", "RUNTIMES", "ARN"], rows));
    Ok(())
}

fn concurrency(c: &Client, opts: &ClientOpts, name: &str, value: &str) -> anyhow::Result<()> {
    if value == "none" {
        c.send(Call::new("DELETE", &["/2017-10-31/functions", name, "concurrency"]))?;
        if !opts.json {
            println!("{name}: no reserved concurrency");
        }
        return Ok(());
    }
    let n: u32 = value
        .parse()
        .map_err(|_| anyhow!("concurrency must be a number or 'none', not {value:?}"))?;
    let v = c.json(
        Call::new("PUT", &["/2017-10-31/functions", name, "concurrency"])
            .json(&json!({"ReservedConcurrentExecutions": n})),
    )?;
    if opts.json {
        print_json(&v);
    } else {
        println!("{name}: reserved concurrency {n}");
    }
    Ok(())
}

fn logs(c: &Client, name: &str, follow: bool) -> anyhow::Result<()> {
    let mut token: Option<String> = None;
    loop {
        let mut call = Call::new("GET", &[FUNCTIONS, name, "lamb-logs"]);
        if let Some(t) = &token {
            call = call.query("NextToken", t.clone());
        }
        let v = c.json(call)?;
        let events = v["Events"].as_array().cloned().unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for e in &events {
            writeln!(out, "{}", e["Message"].as_str().unwrap_or_default())?;
        }
        out.flush()?;
        token = v["NextToken"].as_str().map(str::to_owned);
        if events.is_empty() {
            if !follow {
                return Ok(());
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn status(c: &Client, opts: &ClientOpts) -> anyhow::Result<()> {
    let v = c.json(Call::new("GET", &["/lamb/status"]))?;
    if opts.json {
        print_json(&v);
        return Ok(());
    }
    println!(
        "{}",
        key_values(
            &v,
            &[
                "Version",
                "UptimeSeconds",
                "Functions",
                "Layers",
                "TotalCodeSize",
                "DataDir",
                "RuntimesDir",
                "Runtimes",
                "CgroupVersion",
            ]
        )
    );
    Ok(())
}
