//! Known vectors (AWS's documented key derivation and `get-vanilla` case, a
//! request signed by botocore) and round trips against an independent,
//! deliberately naive signer written below.

use super::*;

const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

#[test]
fn derives_the_documented_signing_key() {
    let key = signing_key(DOC_SECRET, "20120215", "us-east-1", "iam");
    assert_eq!(
        hex::encode(key),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
}

#[test]
fn signs_get_vanilla() {
    let headers = vec![
        ("Host".to_string(), "example.amazonaws.com".to_string()),
        ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
    ];
    let req = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    let cr = canonical_request(&req, &["host".into(), "x-amz-date".into()]);
    assert_eq!(
        cr,
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n".to_string()
            + EMPTY_SHA256
    );
    let sig = signature(
        DOC_SECRET,
        "20150830T123600Z",
        ("20150830", "us-east-1", "service"),
        &cr,
    );
    assert_eq!(sig, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

/// Captured from botocore 1.43 `SigV4Auth(creds, "lambda", "us-east-1")`
/// signing a GET with an ARN in the path and `$LATEST` in the query.
#[test]
fn accepts_a_botocore_signed_request() {
    let body = br#"{"FunctionName":"f","Role":"r"}"#;
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Host".to_string(), "127.0.0.1:9080".to_string()),
        ("X-Amz-Date".to_string(), "20261126T182947Z".to_string()),
        (
            "Authorization".to_string(),
            "AWS4-HMAC-SHA256 Credential=AKIDLAMBTEST/20261126/us-east-1/lambda/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=e173d04d2586e1f304a39ae66f05803c12430b80b7a4292726ff239079ef114d"
                .to_string(),
        ),
        ("User-Agent".to_string(), "not signed".to_string()),
    ];
    let hash = sha256_hex(body);
    let req = SignedRequest {
        method: "GET",
        raw_path:
            "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn/configuration",
        raw_query: "Qualifier=%24LATEST",
        headers: &headers,
        body_sha256: &hash,
    };
    let now = parse_amz_date("20261126T183000Z").unwrap();
    let auth = verify(&req, "AKIDLAMBTEST", "secretsecretsecret", now).unwrap();
    assert_eq!(auth.region, "us-east-1");
    assert_eq!(
        verify(&req, "AKIDLAMBTEST", "other", now).unwrap_err(),
        AuthError::BadSignature
    );
    let other_body = sha256_hex(b"{}");
    let tampered = SignedRequest {
        body_sha256: &other_body,
        ..req.clone()
    };
    assert_eq!(
        verify(&tampered, "AKIDLAMBTEST", "secretsecretsecret", now).unwrap_err(),
        AuthError::BadSignature
    );
}

/// A second, naive signer: string concatenation straight from the spec's
/// numbered steps, sharing nothing with the code under test but `hmac`.
fn naive_sign(method: &str, path_encoded_twice: &str, query: &str, host: &str, date: &str, body: &[u8]) -> String {
    use hmac::Mac;
    use sha2::Digest;
    let h = |k: &[u8], m: &str| {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(k).unwrap();
        mac.update(m.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let body_hash = hex::encode(sha2::Sha256::digest(body));
    let cr = format!(
        "{method}\n{path_encoded_twice}\n{query}\nhost:{host}\nx-amz-date:{date}\n\nhost;x-amz-date\n{body_hash}"
    );
    let day = &date[..8];
    let sts = format!(
        "AWS4-HMAC-SHA256\n{date}\n{day}/eu-west-1/lambda/aws4_request\n{}",
        hex::encode(sha2::Sha256::digest(cr.as_bytes()))
    );
    let k = h(&h(&h(&h(b"AWS4s3cr3t", day), "eu-west-1"), "lambda"), "aws4_request");
    let sig = hex::encode(h(&k, &sts));
    format!("AWS4-HMAC-SHA256 Credential=AK/{day}/eu-west-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}")
}

fn request_headers(auth: String, date: &str) -> Vec<(String, String)> {
    vec![
        ("host".into(), "localhost:9999".into()),
        ("x-amz-date".into(), date.into()),
        ("authorization".into(), auth),
    ]
}

#[test]
fn round_trips_with_an_independent_signer() {
    let date = "20240102T030405Z";
    let now = parse_amz_date(date).unwrap();
    let body = b"{\"a\":1}";
    let auth = naive_sign(
        "DELETE",
        "/2017-03-31/tags/arn%253Aaws%253Alambda%253Aus-east-1%253A000000000000%253Afunction%253Af",
        "tagKeys=a&tagKeys=b%20c",
        "localhost:9999",
        date,
        body,
    );
    let headers = request_headers(auth, date);
    let hash = sha256_hex(body);
    let req = SignedRequest {
        method: "DELETE",
        raw_path: "/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af",
        // Out of order and with a space encoded as `+`-free `%20`: sorted on our side.
        raw_query: "tagKeys=b%20c&tagKeys=a",
        headers: &headers,
        body_sha256: &hash,
    };
    verify(&req, "AK", "s3cr3t", now).unwrap();
    assert_eq!(verify(&req, "OTHER", "s3cr3t", now).unwrap_err(), AuthError::UnknownKey);
    // 15 minutes of skew either way pass; more does not.
    verify(&req, "AK", "s3cr3t", now + time::Duration::minutes(15)).unwrap();
    verify(&req, "AK", "s3cr3t", now - time::Duration::minutes(15)).unwrap();
    for skew in [16, -16] {
        let e = verify(&req, "AK", "s3cr3t", now + time::Duration::minutes(skew)).unwrap_err();
        assert!(matches!(e, AuthError::Invalid(_)), "{e:?}");
    }
    let other_path = SignedRequest {
        raw_path: "/2017-03-31/tags/x",
        ..req.clone()
    };
    assert_eq!(
        verify(&other_path, "AK", "s3cr3t", now).unwrap_err(),
        AuthError::BadSignature
    );
}

#[test]
fn refuses_missing_and_malformed_headers() {
    let now = OffsetDateTime::now_utc();
    let headers = vec![("host".to_string(), "h".to_string())];
    let req = SignedRequest {
        method: "GET",
        raw_path: "/",
        raw_query: "",
        headers: &headers,
        body_sha256: EMPTY_SHA256,
    };
    assert_eq!(verify(&req, "AK", "s", now).unwrap_err(), AuthError::Missing);
    let headers = request_headers("Basic abc".into(), "20240102T030405Z");
    let req = SignedRequest {
        headers: &headers,
        ..req
    };
    assert!(matches!(
        verify(&req, "AK", "s", now).unwrap_err(),
        AuthError::Incomplete(_)
    ));
    let bad_service = "AWS4-HMAC-SHA256 Credential=AK/20240102/us-east-1/s3/aws4_request, \
                       SignedHeaders=host;x-amz-date, Signature=00";
    let headers = request_headers(bad_service.into(), "20240102T030405Z");
    let req = SignedRequest {
        headers: &headers,
        ..req
    };
    assert!(matches!(
        verify(&req, "AK", "s", now).unwrap_err(),
        AuthError::Invalid(_)
    ));
}

#[test]
fn canonical_forms() {
    assert_eq!(canonical_uri(""), "/");
    assert_eq!(canonical_uri("/a//b/./c/../d"), "/a/b/d");
    assert_eq!(canonical_uri("/f/%24LATEST"), "/f/%2524LATEST");
    assert_eq!(canonical_query("b=2&a=x%2Fy&a=1"), "a=1&a=x%2Fy&b=2");
    assert_eq!(canonical_query("Marker"), "Marker=");
}
