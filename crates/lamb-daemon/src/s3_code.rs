//! Code given as an S3 object (`Code: {S3Bucket, S3Key, S3ObjectVersion}` of
//! CreateFunction, UpdateFunctionCode and PublishLayerVersion): the daemon
//! reads the object with a SigV4-signed GET, path-style, from
//! `lamb serve --aws-endpoint s3=URL` or else S3's own endpoint of the
//! daemon's region, with the SDK's standard credential chain, and goes on as
//! if the bytes had come inline as `ZipFile`. An object S3 does not give is
//! answered as Lambda does: `InvalidParameterValueException` quoting S3's
//! error code and message (the recorded test_lambda_code_location_s3_errors).

use crate::esm::aws::AwsEndpoints;
use lamb_sigv4::{canonical_request, format_amz_date, signature, SignedRequest, ALGORITHM, EMPTY_SHA256};
use lamb_types::{Blob, FunctionCode, LambdaError};
use std::io::Read;
use std::time::Duration;

/// Where an object is and who reads it.
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub version: Option<String>,
}

/// Replaces an S3 source in `code` by the object's bytes (`ZipFile`); a
/// code without one is left as it is. `max` bounds the bytes read: a larger
/// object is read to `max + 1` bytes, which the zipped-size rule refuses.
pub async fn inline(
    endpoints: &AwsEndpoints,
    region: &str,
    code: &mut FunctionCode,
    max: u64,
) -> Result<(), LambdaError> {
    let (Some(bucket), None) = (code.s3_bucket.clone(), &code.zip_file) else {
        return Ok(());
    };
    let Some(key) = code.s3_key.clone() else {
        return Err(LambdaError::invalid_parameter(
            "Please provide both S3Bucket and S3Key for the function code.",
        ));
    };
    let object = ObjectRef {
        bucket,
        key,
        version: code.s3_object_version.clone(),
    };
    let bytes = fetch(endpoints, region, &object, max).await?;
    code.zip_file = Some(Blob(bytes));
    code.s3_bucket = None;
    code.s3_key = None;
    code.s3_object_version = None;
    Ok(())
}

/// GETs the object, signed with the standard chain's credentials.
pub async fn fetch(
    endpoints: &AwsEndpoints,
    region: &str,
    object: &ObjectRef,
    max: u64,
) -> Result<Vec<u8>, LambdaError> {
    use aws_credential_types::provider::ProvideCredentials;
    let config = crate::esm::aws::config(region).await;
    let creds = match config.credentials_provider() {
        Some(p) => Some(p.provide_credentials().await.map_err(|e| {
            LambdaError::invalid_parameter(format!(
                "Error occurred while GetObject. No credentials to read S3 with: {e}"
            ))
        })?),
        None => None,
    };
    let base = endpoints
        .get("s3")
        .map_or_else(|| format!("https://s3.{region}.amazonaws.com"), str::to_owned);
    let request = signed_get(&base, region, object, creds.as_ref(), time::OffsetDateTime::now_utc());
    tokio::task::spawn_blocking(move || send(&request, max))
        .await
        .map_err(|e| LambdaError::service(format!("reading the S3 object stopped: {e}")))?
}

/// A GET ready to send: its URL and headers.
struct Get {
    url: String,
    headers: Vec<(String, String)>,
}

fn signed_get(
    base: &str,
    region: &str,
    object: &ObjectRef,
    creds: Option<&aws_credential_types::Credentials>,
    now: time::OffsetDateTime,
) -> Get {
    let path = format!(
        "/{}/{}",
        lamb_sigv4::uri_encode(&object.bucket, false),
        lamb_sigv4::uri_encode(&object.key, true)
    );
    let query = object
        .version
        .as_deref()
        .map(|v| format!("versionId={}", lamb_sigv4::uri_encode(v, false)))
        .unwrap_or_default();
    let host = base.split_once("://").map_or(base, |(_, h)| h).to_owned();
    let amz_date = format_amz_date(now);
    let mut headers = vec![
        ("host".to_owned(), host),
        ("x-amz-content-sha256".to_owned(), EMPTY_SHA256.to_owned()),
        ("x-amz-date".to_owned(), amz_date.clone()),
    ];
    if let Some(c) = creds {
        if let Some(token) = c.session_token() {
            headers.push(("x-amz-security-token".to_owned(), token.to_owned()));
        }
        let names: Vec<String> = headers.iter().map(|(k, _)| k.clone()).collect();
        let canonical = canonical_request(
            &SignedRequest {
                method: "GET",
                raw_path: &path,
                raw_query: &query,
                headers: &headers,
                body_sha256: EMPTY_SHA256,
            },
            &names,
        );
        let day = &amz_date[..8];
        let sig = signature(c.secret_access_key(), &amz_date, (day, region, "s3"), &canonical);
        headers.push((
            "authorization".to_owned(),
            format!(
                "{ALGORITHM} Credential={}/{day}/{region}/s3/aws4_request, SignedHeaders={}, Signature={sig}",
                c.access_key_id(),
                names.join(";")
            ),
        ));
    }
    let query = if query.is_empty() { query } else { format!("?{query}") };
    Get {
        url: format!("{}{path}{query}", base.trim_end_matches('/')),
        headers,
    }
}

fn send(get: &Get, max: u64) -> Result<Vec<u8>, LambdaError> {
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(60))
        .build();
    let mut req = agent.get(&get.url);
    for (k, v) in get.headers.iter().filter(|(k, _)| k != "host") {
        req = req.set(k, v);
    }
    match req.call() {
        Ok(resp) => {
            let mut bytes = Vec::new();
            resp.into_reader()
                .take(max + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| s3_error("InternalError", &e.to_string()))?;
            Ok(bytes)
        }
        Err(ureq::Error::Status(_, resp)) => {
            let body = resp.into_string().unwrap_or_default();
            Err(s3_error(
                xml_text(&body, "Code").unwrap_or("UnknownError"),
                xml_text(&body, "Message").unwrap_or_default(),
            ))
        }
        Err(e) => Err(s3_error("ServiceUnavailable", &e.to_string())),
    }
}

/// Lambda's wording of an S3 error.
fn s3_error(code: &str, message: &str) -> LambdaError {
    LambdaError::invalid_parameter(format!(
        "Error occurred while GetObject. S3 Error Code: {code}. S3 Error Message: {message}"
    ))
}

/// The text of the first `<tag>` of S3's XML error.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_s3s_error() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                   <Message>The specified bucket does not exist</Message></Error>";
        let e = s3_error(xml_text(xml, "Code").unwrap(), xml_text(xml, "Message").unwrap());
        assert_eq!(
            e.message,
            "Error occurred while GetObject. S3 Error Code: NoSuchBucket. \
             S3 Error Message: The specified bucket does not exist"
        );
        assert_eq!(xml_text("<Error/>", "Code"), None);
    }

    /// A path-style GET signed with AWS's documentation keys; the signature
    /// was computed apart, by the SigV4 steps in Python's hmac and hashlib.
    #[test]
    fn signs_a_path_style_get() {
        let creds = aws_credential_types::Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let object = ObjectRef {
            bucket: "examplebucket".into(),
            key: "code/fn.zip".into(),
            version: Some("v 1".into()),
        };
        let now = time::macros::datetime!(2013-05-24 00:00:00 UTC);
        let get = signed_get("http://127.0.0.1:5000", "us-east-1", &object, Some(&creds), now);
        assert_eq!(
            get.url,
            "http://127.0.0.1:5000/examplebucket/code/fn.zip?versionId=v%201"
        );
        let auth = &get.headers.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, \
             Signature=2c519657fc15fd8eb46139526486e3920684870f203b1ca30980c32adc2b56bf"
        );
    }
}
