//! Temporary credentials for functions, as Lambda hands every execution
//! environment its role's session (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; docs/security.md).
//!
//! Nothing is stored per session: the session token carries its claims (the
//! access key id, the function's ARN, its role, the expiry) and an
//! HMAC-SHA256 over them under the daemon's session key, and the secret key
//! is an HMAC of the same claims, so the daemon checks a token and derives
//! the secret to verify the SigV4 signature with from the token alone.
//!
//! The session key is 32 random bytes made at every start and written to
//! `<data-dir>/session-key` (mode 0600; only so that an administrator's
//! `lamb session-credentials` can mint one): a restart revokes every session
//! the previous start minted, and another daemon, with its own key, refuses
//! them as tokens it never issued.

use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// The session key's file in the data directory.
pub const KEY_FILE: &str = "session-key";
/// How long a minted session lasts unless `lamb serve --session-duration`
/// says otherwise: IAM's longest role session.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(12 * 3600);
/// The shortest and longest `--session-duration`, as STS's `DurationSeconds`.
pub const MIN_DURATION: Duration = Duration::from_secs(15 * 60);
pub const MAX_DURATION: Duration = DEFAULT_DURATION;
/// The length of an access key id, `ASIA` and 16 more, as STS's.
const KEY_ID_LEN: usize = 20;
/// The length of a secret access key, as AWS's.
const SECRET_LEN: usize = 40;

type HmacSha256 = Hmac<Sha256>;

/// The credentials one sandbox gets.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expiration: OffsetDateTime,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SessionCredentials({}, until {})",
            self.access_key_id, self.expiration
        )
    }
}

impl SessionCredentials {
    /// As STS answers them (`Credentials` of AssumeRole), for
    /// `lamb session-credentials`.
    pub fn to_json(&self) -> serde_json::Value {
        let t = self.expiration;
        serde_json::json!({
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
            "SessionToken": self.session_token,
            "Expiration": format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(), u8::from(t.month()), t.day(), t.hour(), t.minute(), t.second()
            ),
        })
    }
}

/// A verified session: whose it is and the secret its requests are signed with.
#[derive(Clone, PartialEq, Eq)]
pub struct Session {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub function_arn: String,
    pub role: String,
    pub expiration: OffsetDateTime,
}

impl Session {
    /// Who the caller is, as STS names a role session Lambda opens for a
    /// function: `arn:aws:sts::ACCOUNT:assumed-role/ROLE-NAME/FUNCTION-NAME`.
    pub fn assumed_role_arn(&self) -> String {
        let fields: Vec<&str> = self.function_arn.split(':').collect();
        let account = fields.get(4).copied().unwrap_or_default();
        let function = fields.get(6).copied().unwrap_or_default();
        let role = self.role.rsplit('/').next().unwrap_or_default();
        format!("arn:aws:sts::{account}:assumed-role/{role}/{function}")
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Session({}, {})", self.access_key_id, self.function_arn)
    }
}

/// Why a session token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionError {
    /// Not a token this start of the daemon minted (another daemon's, an
    /// earlier start's, altered, or not a token at all).
    Invalid,
    /// Minted here, past its expiry.
    Expired,
}

/// What a token says, signed by the session key.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(rename = "k")]
    access_key_id: String,
    #[serde(rename = "f")]
    function_arn: String,
    #[serde(rename = "r")]
    role: String,
    /// Unix seconds.
    #[serde(rename = "e")]
    expires: i64,
}

/// The daemon's session key and how long the sessions it mints last.
pub struct Sessions {
    key: [u8; 32],
    duration: Duration,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sessions(<key>, {:?})", self.duration)
    }
}

impl Sessions {
    /// A new random key, written over `<data-dir>/session-key`: every
    /// session an earlier start minted stops working.
    pub fn rotate(data_dir: &Path, duration: Duration) -> std::io::Result<Self> {
        let sessions = Self::with_key(rand::thread_rng().gen(), duration);
        write_key(&data_dir.join(KEY_FILE), &sessions.key)?;
        Ok(sessions)
    }

    /// The running daemon's key, for `lamb session-credentials`.
    pub fn load(data_dir: &Path, duration: Duration) -> std::io::Result<Self> {
        let path = data_dir.join(KEY_FILE);
        let text = fs::read_to_string(&path)?;
        let key = hex::decode(text.trim())
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| std::io::Error::other(format!("{} is not a session key", path.display())))?;
        Ok(Self::with_key(key, duration))
    }

    pub fn with_key(key: [u8; 32], duration: Duration) -> Self {
        Self { key, duration }
    }

    /// How long the sessions this daemon mints last.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// A session for `function_arn` under `role`, from `now` for the
    /// configured duration.
    pub fn mint(&self, function_arn: &str, role: &str, now: OffsetDateTime) -> SessionCredentials {
        self.mint_until(function_arn, role, now + self.duration)
    }

    /// A session that expires at `expiration` (in the past for a test of
    /// expiry: only the key's holder can mint).
    pub fn mint_until(&self, function_arn: &str, role: &str, expiration: OffsetDateTime) -> SessionCredentials {
        let claims = Claims {
            access_key_id: access_key_id(),
            function_arn: function_arn.to_owned(),
            role: role.to_owned(),
            expires: expiration.unix_timestamp(),
        };
        // Serializing plain strings and an integer cannot fail.
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let mac = URL_SAFE_NO_PAD.encode(self.mac(b"token", &body));
        SessionCredentials {
            secret_access_key: self.secret(&body),
            session_token: format!("{body}.{mac}"),
            access_key_id: claims.access_key_id,
            expiration: OffsetDateTime::from_unix_timestamp(claims.expires).unwrap_or(expiration),
        }
    }

    /// A session that expires `seconds` from now (negative: ago).
    pub fn mint_expiring_in(&self, function_arn: &str, role: &str, seconds: i64) -> SessionCredentials {
        let expiration = OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
        self.mint_until(function_arn, role, expiration)
    }

    /// The session a token stands for, if this daemon minted it and it has
    /// not expired at `now`.
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<Session, SessionError> {
        let (body, mac) = token.split_once('.').ok_or(SessionError::Invalid)?;
        let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| SessionError::Invalid)?;
        let mut check = self.hmac(b"token");
        check.update(body.as_bytes());
        // Constant time: the comparison tells nothing of the expected MAC.
        check.verify_slice(&mac).map_err(|_| SessionError::Invalid)?;
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(SessionError::Invalid)?;
        let expiration = OffsetDateTime::from_unix_timestamp(claims.expires).map_err(|_| SessionError::Invalid)?;
        if expiration <= now {
            return Err(SessionError::Expired);
        }
        Ok(Session {
            secret_access_key: self.secret(body),
            access_key_id: claims.access_key_id,
            function_arn: claims.function_arn,
            role: claims.role,
            expiration,
        })
    }

    fn hmac(&self, purpose: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length.
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length");
        mac.update(purpose);
        mac.update(b"\n");
        mac
    }

    fn mac(&self, purpose: &[u8], body: &str) -> Vec<u8> {
        let mut mac = self.hmac(purpose);
        mac.update(body.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// The secret of the session whose claims are `body`: derived, so that
    /// no table of sessions is kept, and of another purpose than the
    /// token's MAC, so that the token (which travels with every request)
    /// does not give it away.
    fn secret(&self, body: &str) -> String {
        let mut secret = STANDARD_NO_PAD.encode(self.mac(b"secret", body));
        secret.truncate(SECRET_LEN);
        secret
    }
}

/// `ASIA` and 16 characters of base32's alphabet, as STS's session keys.
fn access_key_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::thread_rng();
    let mut id = String::from("ASIA");
    while id.len() < KEY_ID_LEN {
        id.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    id
}

/// Writes the key (hex) to a new file with mode 0600, then renames it over
/// the old one: the file never holds half a key.
fn write_key(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    let tmp: PathBuf = path.with_extension("new");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(hex::encode(key).as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// `--session-duration` within [`MIN_DURATION`] and [`MAX_DURATION`].
pub fn check_duration(d: Duration) -> Result<Duration, String> {
    if d < MIN_DURATION || d > MAX_DURATION {
        return Err(format!(
            "the session duration must be between {} and {} seconds (as STS's DurationSeconds)",
            MIN_DURATION.as_secs(),
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";
    const ROLE: &str = "arn:aws:iam::000000000000:role/r";

    fn sessions() -> Sessions {
        Sessions::with_key([7; 32], DEFAULT_DURATION)
    }

    #[test]
    fn a_minted_session_verifies_with_its_secret() {
        let now = OffsetDateTime::now_utc();
        let c = sessions().mint(ARN, ROLE, now);
        assert!(c.access_key_id.starts_with("ASIA") && c.access_key_id.len() == 20);
        assert_eq!(c.secret_access_key.len(), 40);
        let s = sessions().verify(&c.session_token, now).unwrap();
        assert_eq!(s.access_key_id, c.access_key_id);
        assert_eq!(s.secret_access_key, c.secret_access_key);
        assert_eq!((s.function_arn.as_str(), s.role.as_str()), (ARN, ROLE));
        assert_eq!(s.assumed_role_arn(), "arn:aws:sts::000000000000:assumed-role/r/f");
    }

    #[test]
    fn expired_altered_and_foreign_tokens_are_refused() {
        let now = OffsetDateTime::now_utc();
        let c = sessions().mint(ARN, ROLE, now);
        let later = now + DEFAULT_DURATION + time::Duration::SECOND;
        assert_eq!(sessions().verify(&c.session_token, later), Err(SessionError::Expired));
        let other = Sessions::with_key([8; 32], DEFAULT_DURATION);
        assert_eq!(other.verify(&c.session_token, now), Err(SessionError::Invalid));
        // Another function's ARN in the claims, the MAC kept.
        let (body, mac) = c.session_token.split_once('.').unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(json.replace("function:f", "function:g"));
        assert_eq!(
            sessions().verify(&format!("{forged}.{mac}"), now),
            Err(SessionError::Invalid)
        );
        for junk in ["", ".", "a.b", "no-dot"] {
            assert_eq!(sessions().verify(junk, now), Err(SessionError::Invalid));
        }
        let past = sessions().mint_until(ARN, ROLE, now - time::Duration::MINUTE);
        assert_eq!(sessions().verify(&past.session_token, now), Err(SessionError::Expired));
    }

    #[test]
    fn rotate_replaces_the_key_that_load_reads() {
        let dir = tempfile::tempdir().unwrap();
        let first = Sessions::rotate(dir.path(), DEFAULT_DURATION).unwrap();
        let loaded = Sessions::load(dir.path(), DEFAULT_DURATION).unwrap();
        let now = OffsetDateTime::now_utc();
        let c = loaded.mint(ARN, ROLE, now);
        assert!(first.verify(&c.session_token, now).is_ok());
        let second = Sessions::rotate(dir.path(), DEFAULT_DURATION).unwrap();
        assert_eq!(second.verify(&c.session_token, now), Err(SessionError::Invalid));
        use std::os::unix::fs::MetadataExt;
        let mode = fs::metadata(dir.path().join(KEY_FILE)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn durations_outside_sts_bounds_are_refused() {
        assert!(check_duration(Duration::from_secs(60)).is_err());
        assert!(check_duration(Duration::from_secs(13 * 3600)).is_err());
        assert_eq!(check_duration(MIN_DURATION), Ok(MIN_DURATION));
    }
}
