//! `Code.Location` (GetFunction) and `Content.Location` (GetLayerVersion,
//! PublishLayerVersion): an HTTP URL on the API listener that serves the
//! original zip, presigned as S3's are: the query carries an expiry and an
//! HMAC over what it names, keyed by the daemon's secret key, so
//! `curl -o code.zip "$(aws lambda get-function --query Code.Location ...)"`
//! works with no SigV4 header. An expired or altered URL is 403, with S3's
//! `AccessDenied` body.

use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use lamb_store::{BundleKind, CodeDigest};
use sha2::Sha256;
use time::OffsetDateTime;

/// The route, outside SigV4: the signature in the query is the
/// authentication.
pub const CODE_PATH: &str = "/lamb/code/{kind}/{file}";

/// How long a URL works: AWS's presigned code URLs last 10 minutes.
pub const VALID_SECONDS: i64 = 600;

fn kind_name(kind: BundleKind) -> &'static str {
    match kind {
        BundleKind::Function => "function",
        BundleKind::Layer => "layer",
        // Never presigned: an image's code is its registry's.
        BundleKind::ImageLayer => "image-layer",
    }
}

fn kind_of(name: &str) -> Option<BundleKind> {
    match name {
        "function" => Some(BundleKind::Function),
        "layer" => Some(BundleKind::Layer),
        _ => None,
    }
}

/// The MAC of one URL: kind, digest and expiry, keyed by the secret key.
fn mac(secret: &str, kind: &str, hex: &str, expires: i64) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(format!("lamb code location {secret}").as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    m.update(format!("{kind}/{hex}/{expires}").as_bytes());
    m
}

/// The URL of a bundle's zip, valid for [`VALID_SECONDS`] from `now`, on
/// the host the caller reached the API at (its `Host` header).
pub fn presign(
    st: &AppState,
    headers: &HeaderMap,
    kind: BundleKind,
    digest: &CodeDigest,
    now: OffsetDateTime,
) -> String {
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1:9080");
    let expires = now.unix_timestamp() + VALID_SECONDS;
    let kind = kind_name(kind);
    let hex = digest.hex();
    let sig = hex::encode(
        mac(&st.credentials.secret_access_key, kind, &hex, expires)
            .finalize()
            .into_bytes(),
    );
    format!("http://{host}/lamb/code/{kind}/{hex}.zip?Expires={expires}&Signature={sig}")
}

/// S3's answer to a presigned URL it refuses.
fn denied(why: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [("content-type", "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>{why}</Message></Error>"),
    )
        .into_response()
}

/// Checks the query's expiry and signature for `kind`/`hex` at `now`; the
/// error is S3's message for the refusal.
fn verify(
    secret: &str,
    kind: &str,
    hex: &str,
    query: &crate::util::Query,
    now: OffsetDateTime,
) -> Result<(), &'static str> {
    let expires = query.get("Expires").and_then(|e| e.parse::<i64>().ok());
    let sig = query.get("Signature").and_then(|s| hex::decode(s).ok());
    let (Some(expires), Some(sig)) = (expires, sig) else {
        return Err("Query-string authentication requires the Signature and Expires parameters");
    };
    mac(secret, kind, hex, expires)
        .verify_slice(&sig)
        .map_err(|_| "The request signature we calculated does not match the signature you provided.")?;
    if now.unix_timestamp() > expires {
        return Err("Request has expired");
    }
    Ok(())
}

pub async fn download(
    State(st): State<AppState>,
    Path((kind, file)): Path<(String, String)>,
    query: crate::util::Query,
) -> Response {
    let hex = file.strip_suffix(".zip").unwrap_or_default();
    let (Some(bundle_kind), Some(digest)) = (kind_of(&kind), CodeDigest::from_hex(hex)) else {
        return denied("Access Denied");
    };
    if let Err(why) = verify(
        &st.credentials.secret_access_key,
        &kind,
        hex,
        &query,
        OffsetDateTime::now_utc(),
    ) {
        return denied(why);
    }
    let path = st.store.zip_path(bundle_kind, &digest);
    match tokio::fs::read(&path).await {
        Ok(bytes) => (StatusCode::OK, [("content-type", "application/zip")], Body::from(bytes)).into_response(),
        // Deleted since, or stored before lamb kept zips.
        Err(_) => (
            StatusCode::NOT_FOUND,
            [("content-type", "application/xml")],
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::Query;

    fn signed(expires: i64) -> Query {
        let sig = hex::encode(mac("s", "function", "ab", expires).finalize().into_bytes());
        Query::parse(Some(&format!("Expires={expires}&Signature={sig}")))
    }

    #[test]
    fn expiry_and_signature_are_checked() {
        let now = OffsetDateTime::from_unix_timestamp(1_000).unwrap();
        assert!(verify("s", "function", "ab", &signed(1_000), now).is_ok());
        assert!(verify("s", "function", "ab", &signed(999), now).is_err(), "expired");
        assert!(
            verify("other", "function", "ab", &signed(1_000), now).is_err(),
            "another key"
        );
        assert!(verify("s", "layer", "ab", &signed(1_000), now).is_err(), "another kind");
        assert!(
            verify("s", "function", "cd", &signed(1_000), now).is_err(),
            "another bundle"
        );
        let tampered = Query::parse(Some(&format!(
            "Expires=2000&Signature={}",
            signed(1_000).get("Signature").unwrap()
        )));
        assert!(verify("s", "function", "ab", &tampered, now).is_err(), "a later expiry");
        assert!(verify("s", "function", "ab", &Query::parse(None), now).is_err());
    }
}
