//! The client half of SigV4 (service `lambda`): signs a request with
//! `host` and `x-amz-date` (plus any `content-type`) as botocore does.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use time::macros::format_description;

type HmacSha256 = Hmac<Sha256>;

pub struct Request<'a> {
    pub method: &'a str,
    /// Already percent-encoded once.
    pub path: &'a str,
    /// Already encoded, `k=v&...`.
    pub query: &'a str,
    /// Lowercase names; `x-amz-date` is added here.
    pub headers: &'a mut Vec<(String, String)>,
    pub body: &'a [u8],
}

pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Adds `x-amz-date` to the headers and answers the `Authorization` value.
pub fn sign(req: &mut Request<'_>, key_id: &str, secret: &str, region: &str, now: time::OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    let amz_date = now
        .to_offset(time::UtcOffset::UTC)
        .format(fmt)
        .unwrap_or_else(|_| "19700101T000000Z".into());
    let day = &amz_date[..8];
    req.headers.push(("x-amz-date".into(), amz_date.clone()));
    let mut signed: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .filter(|(k, _)| k == "host" || k == "content-type" || k.starts_with("x-amz-"))
        .collect();
    signed.sort();
    let names = signed.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(";");
    let canonical_headers: String = signed.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let mut query: Vec<&str> = req.query.split('&').filter(|p| !p.is_empty()).collect();
    query.sort();
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{names}\n{}",
        req.method,
        uri_encode(req.path, true),
        query.join("&"),
        hex::encode(Sha256::digest(req.body))
    );
    let scope = format!("{day}/{region}/lambda/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(
        &hmac(&hmac(&hmac(format!("AWS4{secret}").as_bytes(), day), region), "lambda"),
        "aws4_request",
    );
    let sig = hex::encode(hmac(&k, &to_sign));
    format!("AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={names}, Signature={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same request botocore signed for the daemon's vector test.
    #[test]
    fn matches_botocore() {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("host".to_string(), "127.0.0.1:9080".to_string()),
        ];
        let mut req = Request {
            method: "GET",
            path:
                "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/configuration",
            query: "Qualifier=%24LATEST",
            headers: &mut headers,
            body: br#"{"FunctionName":"f","Role":"r"}"#,
        };
        let now = time::macros::datetime!(2026-11-26 18:29:47 UTC);
        let auth = sign(&mut req, "AKIDLAMBTEST", "secretsecretsecret", "us-east-1", now);
        assert!(
            auth.ends_with("Signature=e173d04d2586e1f304a39ae66f05803c12430b80b7a4292726ff239079ef114d"),
            "{auth}"
        );
    }
}
