//! The AWS services event source mappings read (`lamb serve --aws-endpoint
//! SERVICE=URL`, for `sqs`, `kinesis` and `dynamodbstreams`, and `s3` for
//! code given as an S3 object (crate::s3_code); without one,
//! AWS's own endpoint of the source's region), and their clients, AWS's
//! SDK for Rust with the standard credential chain (environment, profile,
//! web identity, container, instance metadata).

use std::collections::BTreeMap;

/// The services `--aws-endpoint` may name.
pub const SERVICES: &[&str] = &["sqs", "kinesis", "dynamodbstreams", "s3"];

#[derive(Debug, thiserror::Error)]
#[error("--aws-endpoint {0:?}: expected SERVICE=URL, SERVICE one of sqs, kinesis, dynamodbstreams, s3, URL http(s)://HOST[:PORT]")]
pub struct EndpointSyntax(String);

/// Endpoint URLs by service name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsEndpoints(BTreeMap<String, String>);

impl AwsEndpoints {
    pub fn parse(args: &[String]) -> Result<Self, EndpointSyntax> {
        let mut out = BTreeMap::new();
        for arg in args {
            let bad = || EndpointSyntax(arg.clone());
            let (service, url) = arg.split_once('=').ok_or_else(bad)?;
            let host = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .ok_or_else(bad)?;
            if !SERVICES.contains(&service) || host.is_empty() {
                return Err(bad());
            }
            out.insert(service.to_owned(), url.trim_end_matches('/').to_owned());
        }
        Ok(Self(out))
    }

    pub fn get(&self, service: &str) -> Option<&str> {
        self.0.get(service).map(String::as_str)
    }
}

/// The SDK's shared configuration for `region`: the standard credential
/// chain, and an HTTPS client of rustls with ring (no aws-lc to build).
pub async fn config(region: &str) -> aws_config::SdkConfig {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .http_client(http)
        .load()
        .await
}

pub async fn sqs(endpoints: &AwsEndpoints, region: &str) -> aws_sdk_sqs::Client {
    let base = config(region).await;
    let mut b = aws_sdk_sqs::config::Builder::from(&base);
    if let Some(url) = endpoints.get("sqs") {
        b = b.endpoint_url(url);
    }
    aws_sdk_sqs::Client::from_conf(b.build())
}

pub async fn kinesis(endpoints: &AwsEndpoints, region: &str) -> aws_sdk_kinesis::Client {
    let base = config(region).await;
    let mut b = aws_sdk_kinesis::config::Builder::from(&base);
    if let Some(url) = endpoints.get("kinesis") {
        b = b.endpoint_url(url);
    }
    aws_sdk_kinesis::Client::from_conf(b.build())
}

pub async fn dynamodbstreams(endpoints: &AwsEndpoints, region: &str) -> aws_sdk_dynamodbstreams::Client {
    let base = config(region).await;
    let mut b = aws_sdk_dynamodbstreams::config::Builder::from(&base);
    if let Some(url) = endpoints.get("dynamodbstreams") {
        b = b.endpoint_url(url);
    }
    aws_sdk_dynamodbstreams::Client::from_conf(b.build())
}

/// The region of an ARN (`arn:PARTITION:SERVICE:REGION:...`).
pub fn region_of(arn: &str) -> &str {
    arn.split(':').nth(3).unwrap_or_default()
}

/// A short description of an SDK error: its code and message when the
/// service answered, else the chain of causes.
pub fn describe<E, R>(e: &aws_sdk_sqs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(se) => format!("{}: {}", se.code().unwrap_or("error"), se.message().unwrap_or_default()),
        None => lamb_protocol::errors::Chain(e).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_flags() {
        let e = AwsEndpoints::parse(&["sqs=http://127.0.0.1:4566/".into(), "kinesis=https://k".into()]).unwrap();
        assert_eq!(e.get("sqs"), Some("http://127.0.0.1:4566"));
        assert_eq!(e.get("kinesis"), Some("https://k"));
        assert_eq!(e.get("dynamodbstreams"), None);
        for bad in ["sqs", "ec2=http://h", "sqs=ftp://h", "sqs=http://"] {
            assert!(AwsEndpoints::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
