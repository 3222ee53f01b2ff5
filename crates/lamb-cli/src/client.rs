//! A small blocking client of the daemon's API: SigV4-signed requests
//! (service `lambda`), Lambda's error bodies turned into one-line errors,
//! and a progress bar while a large body uploads.

use crate::sigv4;
use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const ENV_ACCESS_KEY: &str = "LAMB_ACCESS_KEY_ID";
pub const ENV_SECRET_KEY: &str = "LAMB_SECRET_ACCESS_KEY";
const REGION: &str = "us-east-1";
/// Bodies larger than this get a progress bar (when stderr is a terminal).
const PROGRESS_FROM: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Keys {
    /// From the environment, else from the daemon's credentials file (readable
    /// by root on the daemon's box).
    pub fn find(data_dir: &Path) -> anyhow::Result<Self> {
        let env = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        if let (Some(id), Some(secret)) = (env(ENV_ACCESS_KEY), env(ENV_SECRET_KEY)) {
            return Ok(Self {
                access_key_id: id,
                secret_access_key: secret,
            });
        }
        let path = data_dir.join("credentials");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow!(
                "no API keys: set {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}, or run as root on the daemon's box \
                 ({}: {e})",
                path.display()
            )
        })?;
        Self::parse(&text).ok_or_else(|| anyhow!("{} holds no aws_access_key_id/aws_secret_access_key", path.display()))
    }

    fn parse(text: &str) -> Option<Self> {
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        Some(Self {
            access_key_id: value("aws_access_key_id")?,
            secret_access_key: value("aws_secret_access_key")?,
        })
    }
}

/// A Lambda-shaped error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (HTTP {})", self.code, self.message, self.status)
    }
}

impl std::error::Error for ApiError {}

/// One answer: status, the headers lamb's commands read, the body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> anyhow::Result<Value> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).context("the daemon answered something that is not JSON")
    }
}

#[derive(Debug)]
pub struct Client {
    endpoint: String,
    host: String,
    keys: Keys,
    agent: ureq::Agent,
}

/// One request to send.
#[derive(Debug, Default)]
pub struct Call<'a> {
    pub method: &'a str,
    /// Segments already joined; each one is encoded here.
    pub path: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl<'a> Call<'a> {
    pub fn new(method: &'a str, path: &[&str]) -> Self {
        Self {
            method,
            path: path.iter().map(|s| (*s).to_owned()).collect(),
            ..Default::default()
        }
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    pub fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_owned(), v.into()));
        self
    }

    pub fn json(mut self, v: &Value) -> Self {
        self.body = v.to_string().into_bytes();
        self.headers.push(("content-type".into(), "application/json".into()));
        self
    }

    pub fn raw(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }
}

impl Client {
    pub fn new(endpoint: &str, keys: Keys) -> anyhow::Result<Self> {
        let endpoint = endpoint.trim_end_matches('/').to_owned();
        let Some(rest) = endpoint.strip_prefix("http://") else {
            bail!("endpoint {endpoint} must start with http:// (lamb's daemon serves plain HTTP)");
        };
        let host = rest.split('/').next().unwrap_or_default().to_owned();
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(960))
            .build();
        Ok(Self {
            endpoint,
            host,
            keys,
            agent,
        })
    }

    /// Sends `call`; a Lambda error answer becomes an [`ApiError`].
    pub fn send(&self, call: Call<'_>) -> anyhow::Result<Answer> {
        let path: String = call
            .path
            .iter()
            .map(|s| {
                if s.starts_with('/') || s.is_empty() {
                    s.clone()
                } else {
                    format!("/{}", sigv4::uri_encode(s, false))
                }
            })
            .collect();
        let query = call
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", sigv4::uri_encode(k, false), sigv4::uri_encode(v, false)))
            .collect::<Vec<_>>()
            .join("&");
        let mut headers = call.headers.clone();
        headers.push(("host".into(), self.host.clone()));
        let auth = sigv4::sign(
            &mut sigv4::Request {
                method: call.method,
                path: &path,
                query: &query,
                headers: &mut headers,
                body: &call.body,
            },
            &self.keys.access_key_id,
            &self.keys.secret_access_key,
            REGION,
            time::OffsetDateTime::now_utc(),
        );
        headers.push(("authorization".into(), auth));
        let url = if query.is_empty() {
            format!("{}{path}", self.endpoint)
        } else {
            format!("{}{path}?{query}", self.endpoint)
        };
        let mut req = self.agent.request(call.method, &url);
        for (k, v) in &headers {
            req = req.set(k, v);
        }
        let len = call.body.len();
        let result = if len == 0 {
            req.call()
        } else {
            req = req.set("content-length", &len.to_string());
            if len >= PROGRESS_FROM {
                let bar = indicatif::ProgressBar::new(len as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template("uploading {bar:40} {bytes}/{total_bytes} {bytes_per_sec}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                let r = req.send(bar.wrap_read(std::io::Cursor::new(call.body)));
                bar.finish_and_clear();
                r
            } else {
                req.send_bytes(&call.body)
            }
        };
        match result {
            Ok(resp) => read_answer(resp),
            Err(ureq::Error::Status(_, resp)) => {
                let answer = read_answer(resp)?;
                Err(api_error(&answer).into())
            }
            Err(ureq::Error::Transport(t)) => Err(anyhow!("cannot reach the lamb daemon at {}: {t}", self.endpoint)),
        }
    }

    pub fn json(&self, call: Call<'_>) -> anyhow::Result<Value> {
        self.send(call)?.json()
    }
}

fn read_answer(resp: ureq::Response) -> anyhow::Result<Answer> {
    let status = resp.status();
    let headers = resp
        .headers_names()
        .into_iter()
        .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_owned())))
        .collect();
    let mut body = Vec::new();
    resp.into_reader()
        .take(64 * 1024 * 1024)
        .read_to_end(&mut body)
        .context("read the daemon's answer")?;
    Ok(Answer { status, headers, body })
}

fn api_error(a: &Answer) -> ApiError {
    let v: Value = serde_json::from_slice(&a.body).unwrap_or(Value::Null);
    let code = a
        .header("x-amzn-errortype")
        .map(|c| c.split(':').next().unwrap_or(c).to_owned())
        .or_else(|| v["__type"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("HTTP{}", a.status));
    let message = v["message"]
        .as_str()
        .or_else(|| v["Message"].as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&a.body).into_owned());
    ApiError {
        status: a.status,
        code,
        message,
    }
}

/// The data directory whose credentials file a local root user may read.
pub fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/lamb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_credentials_file() {
        let k = Keys::parse("[default]\naws_access_key_id = AK\naws_secret_access_key = S\n").unwrap();
        assert_eq!(k.access_key_id, "AK");
        assert_eq!(k.secret_access_key, "S");
        assert!(Keys::parse("[default]\n").is_none());
    }

    #[test]
    fn error_answers_read_as_one_line() {
        let a = Answer {
            status: 404,
            headers: vec![("x-amzn-ErrorType".into(), "ResourceNotFoundException".into())],
            body: br#"{"Type":"User","message":"Function not found: f"}"#.to_vec(),
        };
        assert_eq!(
            api_error(&a).to_string(),
            "ResourceNotFoundException: Function not found: f (HTTP 404)"
        );
    }
}
