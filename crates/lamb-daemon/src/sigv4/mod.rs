//! AWS Signature Version 4 verification (spec 3.9): parses `Authorization`,
//! rebuilds the canonical request from the signed headers only, derives the
//! signing key and compares signatures in constant time. The primitives are
//! `lamb_sigv4`'s, shared with the client.

pub use lamb_sigv4::{
    canonical_query, canonical_request, canonical_uri, format_amz_date, parse_amz_date, sha256_hex, signature,
    signing_key, uri_encode, SignedRequest, ALGORITHM, EMPTY_SHA256,
};
use time::OffsetDateTime;

/// How far a request's date may be from ours.
pub const MAX_SKEW: time::Duration = time::Duration::minutes(15);
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
    /// A function's session token past its expiry.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// A function's credentials used outside what they may do.
    #[error("{0}")]
    AccessDenied(String),
}

/// A request's headers as the signature sees them: names as given (lower
/// case in HTTP/1 from hyper), values as text (invalid UTF-8 replaced, so it
/// can only fail to match a signature, never panic).
pub fn header_pairs(headers: &axum::http::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
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
mod tests;
