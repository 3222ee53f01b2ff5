//! AWS Signature Version 4 verification (spec 3.9): parses `Authorization`,
//! rebuilds the canonical request from the signed headers only, derives the
//! signing key and compares signatures in constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

type HmacSha256 = Hmac<Sha256>;

/// Hex SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// How far a request's date may be from ours.
pub const MAX_SKEW: time::Duration = time::Duration::minutes(15);
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
const SERVICE: &str = "lambda";

/// Why a request was refused. The API layer maps each to AWS's exception.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing Authentication Token")]
    Missing,
    #[error("{0}")]
    Incomplete(String),
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    BadSignature,
    #[error("{0}")]
    Invalid(String),
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl Authorization {
    pub fn parse(header: &str) -> Result<Self, AuthError> {
        let rest = header
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| AuthError::Incomplete(format!("Authorization header requires {ALGORITHM}")))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let Some((k, v)) = part.trim().split_once('=') else {
                continue;
            };
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
        let missing = |what: &str| AuthError::Incomplete(format!("Authorization header requires '{what}' parameter"));
        let credential = credential.ok_or_else(|| missing("Credential"))?;
        let signed = signed.ok_or_else(|| missing("SignedHeaders"))?;
        let signature = signature.ok_or_else(|| missing("Signature"))?;
        let parts: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, "aws4_request"] = parts[..] else {
            return Err(AuthError::Incomplete(format!(
                "Credential should be of the form <key>/<date>/<region>/<service>/aws4_request, not '{credential}'"
            )));
        };
        Ok(Self {
            access_key: key.to_owned(),
            date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers: signed.split(';').map(str::to_ascii_lowercase).collect(),
            signature: signature.to_ascii_lowercase(),
        })
    }

    pub fn scope(&self) -> String {
        format!("{}/{}/{}/aws4_request", self.date, self.region, self.service)
    }
}

/// What the verifier needs of one request.
#[derive(Debug, Clone)]
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path exactly as it arrived, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string as it arrived, without `?`.
    pub raw_query: &'a str,
    /// Every header, names in any case; repeated names appear repeatedly.
    pub headers: &'a [(String, String)],
    pub body_sha256: &'a str,
}

impl SignedRequest<'_> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `kSigning` for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

/// Hex signature of a canonical request.
pub fn signature(secret: &str, amz_date: &str, auth_scope: (&str, &str, &str), canonical_request: &str) -> String {
    let (date, region, service) = auth_scope;
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    hex::encode(hmac(
        &signing_key(secret, date, region, service),
        string_to_sign.as_bytes(),
    ))
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// RFC 3986 encoding of everything but unreserved characters (and `/`
/// when `keep_slash`).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The path normalised (`.`, `..`, empty segments) and encoded once more,
/// as non-S3 services sign it.
pub fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut path = format!("/{}", segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        path.push('/');
    }
    uri_encode(&path, true)
}

/// Query parameters decoded, re-encoded the RFC 3986 way and sorted.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(",")
}

/// The canonical request over the headers named in `signed_headers`.
pub fn canonical_request(req: &SignedRequest<'_>, signed_headers: &[String]) -> String {
    let mut headers = String::new();
    for name in signed_headers {
        let values = req.header_values(name);
        headers.push_str(&format!("{name}:{}\n", canonical_header_value(&values)));
    }
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method.to_ascii_uppercase(),
        canonical_uri(req.raw_path),
        canonical_query(req.raw_query),
        headers,
        signed_headers.join(";"),
        req.body_sha256
    )
}

/// `20261126T171945Z` as a time.
pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, fmt).ok().map(PrimitiveDateTime::assume_utc)
}

pub fn format_amz_date(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_else(|_| "19700101T000000Z".into())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Verifies `req` against one key pair at time `now`; answers the parsed
/// `Authorization` when the signature is good.
pub fn verify(
    req: &SignedRequest<'_>,
    access_key: &str,
    secret: &str,
    now: OffsetDateTime,
) -> Result<Authorization, AuthError> {
    let (auth, amz_date) = check_headers(req, access_key, now)?;
    let canonical = canonical_request(req, &auth.signed_headers);
    let expected = signature(secret, amz_date, (&auth.date, &auth.region, &auth.service), &canonical);
    if !constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        return Err(AuthError::BadSignature);
    }
    Ok(auth)
}

/// Everything [`verify`] checks but the signature itself, which needs the
/// body's hash: the key, the scope, the signed headers and the date. A
/// request that fails here is refused before its body is read. Answers the
/// parsed `Authorization` and `X-Amz-Date`.
pub fn check_headers<'r>(
    req: &'r SignedRequest<'_>,
    access_key: &str,
    now: OffsetDateTime,
) -> Result<(Authorization, &'r str), AuthError> {
    let header = req.header("authorization").ok_or(AuthError::Missing)?;
    let auth = Authorization::parse(header)?;
    if auth.access_key != access_key {
        return Err(AuthError::UnknownKey);
    }
    if auth.service != SERVICE {
        return Err(AuthError::Invalid(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    if !auth.signed_headers.iter().any(|h| h == "host") {
        return Err(AuthError::Invalid(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    if req.header("x-amz-security-token").is_some() && !auth.signed_headers.iter().any(|h| h == "x-amz-security-token")
    {
        return Err(AuthError::Invalid("X-Amz-Security-Token must be signed".into()));
    }
    let amz_date = req
        .header("x-amz-date")
        .ok_or_else(|| AuthError::Incomplete("Authorization requires an X-Amz-Date header".into()))?;
    let when = parse_amz_date(amz_date)
        .ok_or_else(|| AuthError::Incomplete(format!("X-Amz-Date '{amz_date}' is not of the form YYYYMMDDTHHMMSSZ")))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(AuthError::Invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{}' != '{}'",
            auth.date,
            &amz_date[..8.min(amz_date.len())]
        )));
    }
    if when < now - MAX_SKEW {
        return Err(AuthError::Invalid(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(now - MAX_SKEW),
            format_amz_date(now)
        )));
    }
    if when > now + MAX_SKEW {
        return Err(AuthError::Invalid(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(now + MAX_SKEW),
            format_amz_date(now)
        )));
    }
    Ok((auth, amz_date))
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
