//! The one key pair the daemon accepts: from `LAMB_ACCESS_KEY_ID` and
//! `LAMB_SECRET_ACCESS_KEY`, else from `<data-dir>/credentials`, which is
//! created with random keys (mode 0600) on first start. The file is in the
//! aws CLI's format, so `AWS_SHARED_CREDENTIALS_FILE` can point at it.

use rand::distributions::Alphanumeric;
use rand::Rng;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

pub const FILE_NAME: &str = "credentials";
pub const ENV_ACCESS_KEY: &str = "LAMB_ACCESS_KEY_ID";
pub const ENV_SECRET_KEY: &str = "LAMB_SECRET_ACCESS_KEY";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.access_key_id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path:?} holds no aws_access_key_id and aws_secret_access_key")]
    Malformed { path: PathBuf },
}

impl Credentials {
    /// From the environment when both variables are set and not empty.
    pub fn from_env() -> Option<Self> {
        let id = std::env::var(ENV_ACCESS_KEY).ok().filter(|s| !s.is_empty())?;
        let secret = std::env::var(ENV_SECRET_KEY).ok().filter(|s| !s.is_empty())?;
        Some(Self {
            access_key_id: id,
            secret_access_key: secret,
        })
    }

    /// Parses the `[default]` profile of an aws-style credentials file.
    pub fn parse(text: &str) -> Option<Self> {
        let (mut id, mut secret) = (None, None);
        for line in text.lines() {
            if let Some((k, v)) = line.split_once('=') {
                match k.trim() {
                    "aws_access_key_id" => id = Some(v.trim().to_owned()),
                    "aws_secret_access_key" => secret = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
        }
        Some(Self {
            access_key_id: id.filter(|s| !s.is_empty())?,
            secret_access_key: secret.filter(|s| !s.is_empty())?,
        })
    }

    pub fn render(&self) -> String {
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            self.access_key_id, self.secret_access_key
        )
    }

    pub fn read(path: &Path) -> Result<Self, CredentialsError> {
        let text = fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            op: "read",
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).ok_or_else(|| CredentialsError::Malformed { path: path.to_owned() })
    }

    pub fn random() -> Self {
        let mut rng = rand::thread_rng();
        let id: String = (0..16)
            .map(|_| rng.sample(Alphanumeric) as char)
            .collect::<String>()
            .to_ascii_uppercase();
        let secret: String = (0..40).map(|_| rng.sample(Alphanumeric) as char).collect();
        Self {
            access_key_id: format!("LAMB{id}"),
            secret_access_key: secret,
        }
    }

    /// The environment's keys, else the data directory's file, created
    /// with random keys when missing.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, CredentialsError> {
        if let Some(c) = Self::from_env() {
            return Ok(c);
        }
        let path = data_dir.join(FILE_NAME);
        if path.exists() {
            // Tighten a file someone loosened: it holds a secret.
            let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o600));
            return Self::read(&path);
        }
        let creds = Self::random();
        let io = |op, source| CredentialsError::Io {
            op,
            path: path.clone(),
            source,
        };
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io("create", e))?;
        f.write_all(creds.render().as_bytes()).map_err(|e| io("write", e))?;
        f.sync_all().map_err(|e| io("sync", e))?;
        Ok(creds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn creates_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        // The environment may carry keys in CI; test the file path directly.
        let path = dir.path().join(FILE_NAME);
        let c = Credentials::random();
        fs::write(&path, c.render()).unwrap();
        assert_eq!(Credentials::read(&path).unwrap(), c);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        if Credentials::from_env().is_none() {
            assert_eq!(Credentials::load_or_create(dir.path()).unwrap(), c);
            assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
            let fresh = tempfile::tempdir().unwrap();
            let made = Credentials::load_or_create(fresh.path()).unwrap();
            let p = fresh.path().join(FILE_NAME);
            assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
            assert_eq!(Credentials::load_or_create(fresh.path()).unwrap(), made);
        }
        assert!(Credentials::parse("[default]\n").is_none());
    }
}
