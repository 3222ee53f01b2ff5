//! Fuzzes SigV4 verification: any method, path, query, headers and body,
//! checked against a fixed key at the request's own date (so the date
//! checks pass and the canonical request and signature code run). It must
//! answer, never panic.
#![no_main]

mod common;

use lamb_daemon::sigv4::{self, Authorization, SignedRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(raw) = common::parse(data) else {
        // Not a request: the header parser alone still gets the bytes.
        let _ = Authorization::parse(&String::from_utf8_lossy(data));
        return;
    };
    let (path, query) = raw.target.split_once('?').unwrap_or((&raw.target, ""));
    let hash = sigv4::sha256_hex(&raw.body);
    let now = raw
        .headers
        .iter()
        .find(|(k, _)| k == "x-amz-date")
        .and_then(|(_, v)| sigv4::parse_amz_date(v))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let req = SignedRequest {
        method: &raw.method,
        raw_path: path,
        raw_query: query,
        headers: &raw.headers,
        body_sha256: &hash,
    };
    let _ = sigv4::verify(&req, "AKTEST", "secret", now);
    let _ = sigv4::canonical_uri(path);
    let _ = sigv4::canonical_query(query);
});
