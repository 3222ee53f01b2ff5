//! lamb's own endpoints, signed like the rest:
//!
//! - `GET /lamb/status`: version, uptime, counts, data directory, runtimes,
//!   cgroup version.
//! - `GET /2015-03-31/functions/{name}/lamb-logs[?NextToken=T]`: the log
//!   lines written under `<data-dir>/logs/<name>/` (one file per stream),
//!   at most 1 MiB an answer, with a `NextToken` to ask for what follows;
//!   `lamb logs --follow` polls with it.

use super::concurrency::count_functions;
use crate::error::{ApiError, ApiResult};
use crate::state::{AppState, Shared};
use crate::util::Params;
use crate::util::{json, Query};
use axum::extract::State;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use lamb_store::PageRequest;
use lamb_types::{LambdaError, Qualifier};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub const STATUS_PATH: &str = "/lamb/status";
pub const LOGS_PATH: &str = "/2015-03-31/functions/{name}/lamb-logs";
const MAX_LOG_ANSWER: usize = 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatusResponse {
    pub version: String,
    pub uptime_seconds: u64,
    pub functions: u64,
    pub layers: u64,
    pub data_dir: String,
    pub runtimes_dir: String,
    pub runtimes: Vec<String>,
    pub cgroup_version: String,
    pub total_code_size: u64,
}

fn count_layers(s: &Shared) -> Result<u64, ApiError> {
    let mut count = 0u64;
    let mut marker: Option<String> = None;
    loop {
        let page = s.registry.list_layers(PageRequest {
            marker: marker.as_deref(),
            max_items: 10_000,
        })?;
        count += page.items.len() as u64;
        match page.next_marker {
            Some(m) => marker = Some(m),
            None => return Ok(count),
        }
    }
}

pub async fn status(State(st): State<AppState>) -> ApiResult {
    let out = st
        .blocking(|s| {
            let cgroup = match lamb_sandbox::cgroup::detect_version(Path::new("/sys/fs/cgroup")) {
                Ok(v) => format!("{v:?}").to_lowercase(),
                Err(e) => format!("unavailable ({e})"),
            };
            Ok(StatusResponse {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                uptime_seconds: s.started.elapsed().as_secs(),
                functions: count_functions(s)?,
                layers: count_layers(s)?,
                data_dir: s.data_dir.display().to_string(),
                runtimes_dir: s.runtimes_dir.display().to_string(),
                runtimes: s.runtimes(),
                cgroup_version: cgroup,
                total_code_size: s.registry.total_code_size()?,
            })
        })
        .await?;
    Ok(json(200, &out))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogEvent {
    pub stream: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogsResponse {
    pub events: Vec<LogEvent>,
    pub next_token: String,
}

/// Byte offsets reached in each stream.
type Offsets = BTreeMap<String, u64>;

fn decode_token(token: Option<&str>) -> Result<Offsets, ApiError> {
    match token {
        None | Some("") => Ok(Offsets::new()),
        Some(t) => URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| LambdaError::invalid_parameter("NextToken is not one lamb gave out").into()),
    }
}

fn read_streams(dir: &Path, mut offsets: Offsets) -> LogsResponse {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut events = Vec::new();
    let mut budget = MAX_LOG_ANSWER;
    for name in names {
        let from = offsets.get(&name).copied().unwrap_or(0);
        let Ok(mut f) = std::fs::File::open(dir.join(&name)) else {
            continue;
        };
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(from)).is_err() || f.take(budget as u64).read_to_end(&mut buf).is_err() {
            continue;
        }
        // Only whole lines: a line being written is read next time.
        let whole = buf.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        for line in buf[..whole].split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            events.push(LogEvent {
                stream: name.clone(),
                message: String::from_utf8_lossy(line).into_owned(),
            });
        }
        budget = budget.saturating_sub(whole);
        offsets.insert(name, from + whole as u64);
        if budget == 0 {
            break;
        }
    }
    let token = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&offsets).unwrap_or_default());
    LogsResponse {
        events,
        next_token: token,
    }
}

pub async fn logs(State(st): State<AppState>, params: Params, query: Query) -> ApiResult {
    let name = params.unqualified_function()?;
    let offsets = decode_token(query.get("NextToken"))?;
    let out = st
        .blocking(move |s| {
            s.registry.get_function(&name, &Qualifier::latest())?;
            Ok(read_streams(&s.data_dir.join("logs").join(&name), offsets))
        })
        .await?;
    Ok(json(200, &out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_whole_lines_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "one\ntwo\npart").unwrap();
        let first = read_streams(dir.path(), Offsets::new());
        let msgs: Vec<_> = first.events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(msgs, ["one", "two"]);
        std::fs::write(dir.path().join("a"), "one\ntwo\npartial\n").unwrap();
        let next = read_streams(dir.path(), decode_token(Some(&first.next_token)).unwrap());
        assert_eq!(next.events.len(), 1);
        assert_eq!(next.events[0].message, "partial");
        assert!(decode_token(Some("!!")).is_err());
    }
}
