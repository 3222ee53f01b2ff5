//! A small client of the OCI Distribution API (`/v2/<repo>/manifests|blobs`):
//! HTTPS unless the registry is named insecure, anonymous or with the
//! credentials configured for its host (Basic, or the Bearer token flow the
//! registry's `WWW-Authenticate` names).

use super::PullError;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

/// Every manifest kind lamb reads, OCI's and Docker's.
pub(super) const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// How lamb reaches registries: credentials by host, and which hosts speak
/// plain HTTP.
#[derive(Debug, Clone, Default)]
pub struct RegistryConfig {
    /// `host[:port]` to (user, password).
    pub auth: HashMap<String, (String, String)>,
    /// `host[:port]` reached over plain HTTP.
    pub insecure: HashSet<String>,
    /// Most bytes an image may unpack to; `None`: Lambda's 10 GB
    /// ([`super::MAX_IMAGE_BYTES`]). Lower only in tests.
    pub max_image_bytes: Option<u64>,
    /// Certificate authorities trusted beside the public ones (DER), for
    /// registries with a private CA or a self-signed certificate.
    pub extra_roots: Vec<Vec<u8>>,
}

impl RegistryConfig {
    /// Adds the certificates of a PEM file as trusted authorities.
    pub fn add_ca_pem(&mut self, pem: &[u8]) -> Result<(), String> {
        use rustls_pki_types::pem::PemObject;
        let before = self.extra_roots.len();
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("not PEM certificates: {e}"))?;
            // Refused here, at start-up, rather than at the first pull.
            rustls::RootCertStore::empty()
                .add(cert.clone())
                .map_err(|e| format!("a certificate is not usable as an authority: {e}"))?;
            self.extra_roots.push(cert.to_vec());
        }
        if self.extra_roots.len() == before {
            return Err("no certificate in it".into());
        }
        Ok(())
    }

    /// Adds the `auths` of a Docker `config.json` (base64 `user:password`
    /// in `auth`, or `username`/`password`); hosts given already keep theirs.
    pub fn add_docker_config(&mut self, json: &str) -> Result<(), String> {
        use base64::Engine;
        let v: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
        let Some(auths) = v.get("auths").and_then(|a| a.as_object()) else {
            return Ok(());
        };
        for (host, entry) in auths {
            let host = host.trim_start_matches("https://").trim_start_matches("http://");
            let host = host.split('/').next().unwrap_or(host).to_owned();
            let pair = if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth)
                    .map_err(|_| format!("the auth of {host} is not base64"))?;
                let text = String::from_utf8(raw).map_err(|_| format!("the auth of {host} is not text"))?;
                let (u, p) = text
                    .split_once(':')
                    .ok_or_else(|| format!("the auth of {host} is not user:password"))?;
                (u.to_owned(), p.to_owned())
            } else {
                let field = |k: &str| entry.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_owned();
                (field("username"), field("password"))
            };
            self.auth.entry(host).or_insert(pair);
        }
        Ok(())
    }
}

/// The public roots (webpki-roots, as ureq's own) and `extra` ones (checked
/// by [`RegistryConfig::add_ca_pem`]).
fn tls_config(extra: &[Vec<u8>]) -> std::sync::Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for der in extra {
        if let Err(e) = roots.add(rustls_pki_types::CertificateDer::from(der.clone())) {
            tracing::warn!(error = %e, "a registry CA certificate is not usable as a root");
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .unwrap_or_else(|_| unreachable_tls());
    std::sync::Arc::new(config)
}

/// ring's default provider supports rustls's safe default versions.
fn unreachable_tls() -> rustls::ClientConfig {
    unreachable!("ring supports TLS 1.2 and 1.3")
}

pub(super) struct Client {
    agent: ureq::Agent,
    config: RegistryConfig,
    /// Bearer tokens by `host/repo`.
    tokens: Mutex<HashMap<String, String>>,
}

impl Client {
    pub(super) fn new(config: RegistryConfig) -> Self {
        let mut builder = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            // A read that stalls this long means the registry is gone.
            .timeout_read(Duration::from_secs(60));
        if !config.extra_roots.is_empty() {
            builder = builder.tls_config(tls_config(&config.extra_roots));
        }
        let agent = builder.build();
        Self {
            agent,
            config,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn url(&self, host: &str, repo: &str, tail: &str) -> String {
        let scheme = if self.config.insecure.contains(host) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{host}/v2/{repo}/{tail}")
    }

    /// GETs `tail` (`manifests/REF` or `blobs/DIGEST`) of `repo`, answering
    /// a 401 once with the credentials its challenge asks for.
    pub(super) fn get(&self, host: &str, repo: &str, tail: &str, accept: &str) -> Result<ureq::Response, PullError> {
        let url = self.url(host, repo, tail);
        let key = format!("{host}/{repo}");
        let mut retried = false;
        loop {
            let mut req = self.agent.get(&url).set("Accept", accept);
            let token = self.tokens.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
            if let Some(t) = token {
                req = req.set("Authorization", &t);
            }
            match req.call() {
                Ok(r) => return Ok(r),
                Err(ureq::Error::Status(401, r)) if !retried => {
                    retried = true;
                    let challenge = r.header("WWW-Authenticate").unwrap_or_default().to_owned();
                    let auth = self.answer(host, repo, &challenge)?;
                    self.tokens
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(key.clone(), auth);
                }
                Err(ureq::Error::Status(401 | 403, _)) => {
                    return Err(PullError::AccessDenied(format!(
                        "{host} refused the credentials for {repo}"
                    )))
                }
                Err(ureq::Error::Status(404, _)) => return Err(PullError::NotFound(format!("{repo}: {tail}"))),
                Err(ureq::Error::Status(code, _)) => {
                    return Err(PullError::Unreachable(format!(
                        "{host} answered {code} for {repo}/{tail}"
                    )))
                }
                Err(e) => return Err(PullError::Unreachable(format!("{host}: {e}"))),
            }
        }
    }

    /// The `Authorization` value that answers `challenge`.
    fn answer(&self, host: &str, repo: &str, challenge: &str) -> Result<String, PullError> {
        use base64::Engine;
        let creds = self.config.auth.get(host);
        let basic = creds.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return basic.ok_or_else(|| PullError::AccessDenied(format!("{host} needs credentials (--registry-auth)")));
        };
        let param = |name: &str| {
            params.split(',').find_map(|kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == name).then(|| v.trim_matches('"').to_owned())
            })
        };
        let realm = param("realm")
            .ok_or_else(|| PullError::AccessDenied(format!("{host}: a Bearer challenge without realm")))?;
        let mut req = self.agent.get(&realm).query(
            "scope",
            &param("scope").unwrap_or_else(|| format!("repository:{repo}:pull")),
        );
        if let Some(service) = param("service") {
            req = req.query("service", &service);
        }
        if let Some(b) = &basic {
            req = req.set("Authorization", b);
        }
        let body: serde_json::Value = req
            .call()
            .map_err(|e| PullError::AccessDenied(format!("token from {realm}: {e}")))?
            .into_json()
            .map_err(|e| PullError::AccessDenied(format!("token from {realm}: {e}")))?;
        let token = body
            .get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .ok_or_else(|| PullError::AccessDenied(format!("{realm} gave no token")))?;
        Ok(format!("Bearer {token}"))
    }

    /// A small document (manifest, index, config), read whole up to `max`.
    pub(super) fn get_small(
        &self,
        host: &str,
        repo: &str,
        tail: &str,
        accept: &str,
        max: u64,
    ) -> Result<(Vec<u8>, String), PullError> {
        let r = self.get(host, repo, tail, accept)?;
        let media = r.content_type().to_owned();
        let mut body = Vec::new();
        r.into_reader()
            .take(max + 1)
            .read_to_end(&mut body)
            .map_err(|e| PullError::Unreachable(format!("{host}: {e}")))?;
        if body.len() as u64 > max {
            return Err(PullError::Invalid(format!("{tail} is larger than {max} bytes")));
        }
        Ok((body, media))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_auths_are_read_and_flags_win() {
        let mut c = RegistryConfig::default();
        c.auth.insert("given:5000".into(), ("flag".into(), "pw".into()));
        c.add_docker_config(
            r#"{"auths": {
                "https://reg.example/v1/": {"auth": "dXNlcjpwYTpzcw=="},
                "given:5000": {"auth": "b3RoZXI6eA=="},
                "plain.example": {"username": "u", "password": "p"}}}"#,
        )
        .unwrap();
        assert_eq!(c.auth["reg.example"], ("user".into(), "pa:ss".into()));
        assert_eq!(c.auth["given:5000"], ("flag".into(), "pw".into()));
        assert_eq!(c.auth["plain.example"], ("u".into(), "p".into()));
        assert!(c
            .add_docker_config(r#"{"auths": {"x": {"auth": "not base64!"}}}"#)
            .is_err());
        assert!(c.add_docker_config("{}").is_ok());
    }
}
