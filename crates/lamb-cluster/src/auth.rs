//! Node-to-node authentication with the shared cluster secret
//! (docs/cluster.md, "Node-to-node traffic"): an HMAC-SHA256 over what the
//! request does (method, path, sender, date, body digest), checked in
//! constant time within a clock window.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// The sending node's id.
pub const NODE_HEADER: &str = "x-lamb-cluster-node";
/// The signing time, Unix seconds.
pub const DATE_HEADER: &str = "x-lamb-cluster-date";
/// Hex HMAC-SHA256 of [`string_to_sign`].
pub const SIGNATURE_HEADER: &str = "x-lamb-cluster-signature";
/// How far a request's date may be from the receiver's clock, in seconds.
pub const CLOCK_WINDOW_S: u64 = 30;
/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading the cluster secret {path}")]
    Read { path: String, source: std::io::Error },
    #[error("the cluster secret {path} is readable by other users (mode {mode:o}); make it 0600")]
    Mode { path: String, mode: u32 },
    #[error("the cluster secret {path} has {len} bytes; it needs at least {MIN_SECRET_LEN}")]
    TooShort { path: String, len: usize },
    #[error("missing header {0}")]
    Missing(&'static str),
    #[error("the request's date is not within {CLOCK_WINDOW_S} s of this node's clock")]
    Stale,
    #[error("the request's signature does not match")]
    Signature,
}

/// The secret every node of a cluster shares.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// What a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub node: &'a str,
    pub date: u64,
    pub body: &'a [u8],
}

impl Secret {
    /// Reads `--cluster-secret FILE`: refused when others may read it or it
    /// is shorter than [`MIN_SECRET_LEN`]. A trailing newline is not part
    /// of the secret, so `echo` and editors agree.
    pub fn read(path: &Path) -> Result<Secret, AuthError> {
        use std::os::unix::fs::MetadataExt;
        let shown = path.display().to_string();
        let read = |source| AuthError::Read {
            path: shown.clone(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(read)?.mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(AuthError::Mode { path: shown, mode });
        }
        let mut bytes = std::fs::read(path).map_err(read)?;
        while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            bytes.pop();
        }
        Secret::new(bytes).map_err(|len| AuthError::TooShort { path: shown, len })
    }

    /// A secret from bytes; `Err(len)` when too short.
    pub fn new(bytes: Vec<u8>) -> Result<Secret, usize> {
        if bytes.len() < MIN_SECRET_LEN {
            return Err(bytes.len());
        }
        Ok(Secret(bytes))
    }

    /// The hex signature of a request.
    pub fn sign(&self, req: &Signed<'_>) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(string_to_sign(req).as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Checks a received request's signature and date against `now` (Unix
    /// seconds).
    pub fn verify(&self, req: &Signed<'_>, signature: &str, now: u64) -> Result<(), AuthError> {
        if req.date.abs_diff(now) > CLOCK_WINDOW_S {
            return Err(AuthError::Stale);
        }
        let expected = self.sign(req);
        if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) {
            return Err(AuthError::Signature);
        }
        Ok(())
    }
}

/// One line per element, the body as its hex SHA-256, so no two requests
/// that differ in any part sign the same text.
pub fn string_to_sign(req: &Signed<'_>) -> String {
    format!(
        "LAMB-CLUSTER-1\n{}\n{}\n{}\n{}\n{}",
        req.method,
        req.path,
        req.node,
        req.date,
        hex::encode(Sha256::digest(req.body))
    )
}

/// Unix seconds now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn secret() -> Secret {
        Secret::new(vec![7; 32]).unwrap()
    }

    fn req(body: &[u8]) -> Signed<'_> {
        Signed {
            method: "POST",
            path: "/cluster/v1/invoke",
            node: "node-a",
            date: 1_000_000,
            body,
        }
    }

    #[test]
    fn a_signed_request_verifies() {
        let s = secret();
        let sig = s.sign(&req(b"{}"));
        s.verify(&req(b"{}"), &sig, 1_000_010).unwrap();
    }

    #[test]
    fn any_changed_part_fails() {
        let s = secret();
        let sig = s.sign(&req(b"{}"));
        let changed = [
            Signed {
                body: b"{ }",
                ..req(b"")
            },
            Signed {
                method: "GET",
                ..req(b"{}")
            },
            Signed {
                path: "/cluster/v1/health",
                ..req(b"{}")
            },
            Signed {
                node: "node-b",
                ..req(b"{}")
            },
            Signed {
                date: 1_000_001,
                ..req(b"{}")
            },
        ];
        for c in changed {
            assert!(
                matches!(s.verify(&c, &sig, 1_000_000), Err(AuthError::Signature)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn another_secret_fails() {
        let sig = Secret::new(vec![8; 32]).unwrap().sign(&req(b"{}"));
        assert!(matches!(
            secret().verify(&req(b"{}"), &sig, 1_000_000),
            Err(AuthError::Signature)
        ));
    }

    #[test]
    fn a_date_outside_the_window_fails_even_signed() {
        let s = secret();
        let sig = s.sign(&req(b"{}"));
        assert!(matches!(s.verify(&req(b"{}"), &sig, 1_000_031), Err(AuthError::Stale)));
        assert!(matches!(s.verify(&req(b"{}"), &sig, 999_969), Err(AuthError::Stale)));
        s.verify(&req(b"{}"), &sig, 999_970).unwrap();
    }

    #[test]
    fn the_secret_file_must_be_private_and_long_enough() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, format!("{}\n", "x".repeat(32))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(Secret::read(&path), Err(AuthError::Mode { mode: 0o644, .. })));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let read = Secret::read(&path).unwrap();
        // The newline is not part of the secret.
        let direct = Secret::new(b"x".repeat(32)).unwrap();
        assert_eq!(read.sign(&req(b"")), direct.sign(&req(b"")));
        std::fs::write(&path, "short\n").unwrap();
        assert!(matches!(Secret::read(&path), Err(AuthError::TooShort { len: 5, .. })));
    }
}
