//! The client half of SigV4 (service `lambda`): signs a request with
//! `host` and `x-amz-date` (plus any `content-type`) as botocore does.

use lamb_sigv4::{canonical_request, format_amz_date, sha256_hex, signature, SignedRequest, ALGORITHM};

const SERVICE: &str = "lambda";

pub use lamb_sigv4::uri_encode;

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

/// Adds `x-amz-date` to the headers and answers the `Authorization` value.
pub fn sign(req: &mut Request<'_>, key_id: &str, secret: &str, region: &str, now: time::OffsetDateTime) -> String {
    let amz_date = format_amz_date(now);
    let day = &amz_date[..8];
    req.headers.push(("x-amz-date".into(), amz_date.clone()));
    let mut names: Vec<String> = req
        .headers
        .iter()
        .map(|(k, _)| k.to_ascii_lowercase())
        .filter(|k| k == "host" || k == "content-type" || k.starts_with("x-amz-"))
        .collect();
    names.sort();
    names.dedup();
    let signed = SignedRequest {
        method: req.method,
        raw_path: req.path,
        raw_query: req.query,
        headers: req.headers,
        body_sha256: &sha256_hex(req.body),
    };
    let canonical = canonical_request(&signed, &names);
    let sig = signature(secret, &amz_date, (day, region, SERVICE), &canonical);
    format!(
        "{ALGORITHM} Credential={key_id}/{day}/{region}/{SERVICE}/aws4_request, SignedHeaders={}, Signature={sig}",
        names.join(";")
    )
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
