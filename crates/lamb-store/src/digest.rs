//! The SHA-256 of an uploaded bundle: hex names its directory, base64 is
//! Lambda's `CodeSha256`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CodeDigest(pub [u8; 32]);

impl CodeDigest {
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Lowercase hex: the directory name under `code/` or `layers/`.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard padded base64: Lambda's `CodeSha256`.
    pub fn base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        // Only the canonical lowercase spelling names a directory.
        (s.bytes().all(|b| !b.is_ascii_uppercase())).then_some(Self(out))
    }

    pub fn from_base64(s: &str) -> Option<Self> {
        let v = STANDARD.decode(s).ok()?;
        Some(Self(v.try_into().ok()?))
    }
}

impl fmt::Debug for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeDigest({})", self.hex())
    }
}

impl fmt::Display for CodeDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_lambda_reports() {
        let d = CodeDigest::of(b"");
        assert_eq!(
            d.hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.base64(), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(CodeDigest::from_hex(&d.hex()), Some(d));
        assert_eq!(CodeDigest::from_base64(&d.base64()), Some(d));
        assert_eq!(CodeDigest::from_hex(&d.hex().to_uppercase()), None);
        assert_eq!(CodeDigest::from_hex("abc"), None);
    }
}
