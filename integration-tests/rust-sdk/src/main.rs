//! A scenario of the AWS SDK for Rust against lamb's API, run by
//! integration-tests/test_sdk_clients.py:
//!
//!     lamb-rust-sdk-scenario core|permissions FUNCTION ZIP
//!
//! with `LAMB_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
//! `LAMB_ROLE` in the environment. Each step prints one line, `step: what
//! came back`; the first failure ends it with exit status 1.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, InvokeWithResponseStreamResponseEvent, Runtime};
use aws_sdk_lambda::Client;
use std::process::ExitCode;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

fn client() -> Result<Client> {
    let creds = aws_credential_types::Credentials::new(
        env("AWS_ACCESS_KEY_ID")?,
        env("AWS_SECRET_ACCESS_KEY")?,
        None,
        None,
        "lamb-tests",
    );
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
        .region(aws_sdk_lambda::config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(env("LAMB_ENDPOINT")?)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Ok(Client::from_conf(config))
}

/// Create, publish, alias, invoke (plain and streamed, by the alias), delete.
async fn core(lam: &Client, name: &str, zip: Vec<u8>) -> Result<()> {
    let created = lam
        .create_function()
        .function_name(name)
        .runtime(Runtime::Nodejs18x)
        .role(env("LAMB_ROLE")?)
        .handler("index.handler")
        .code(FunctionCode::builder().zip_file(Blob::new(zip)).build())
        .send()
        .await?;
    println!("create: {}", created.function_arn().unwrap_or_default());
    let version = lam.publish_version().function_name(name).send().await?;
    let version = version.version().unwrap_or_default().to_owned();
    println!("publish: {version}");
    let alias = lam
        .create_alias()
        .function_name(name)
        .name("live")
        .function_version(&version)
        .send()
        .await?;
    println!("alias: {}", alias.alias_arn().unwrap_or_default());
    let out = lam
        .invoke()
        .function_name(name)
        .qualifier("live")
        .payload(Blob::new(b"{}".to_vec()))
        .send()
        .await?;
    let payload = out.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
    println!(
        "invoke: {} {}",
        out.executed_version().unwrap_or_default(),
        String::from_utf8_lossy(&payload)
    );
    let mut streamed = lam
        .invoke_with_response_stream()
        .function_name(name)
        .qualifier("live")
        .payload(Blob::new(b"{}".to_vec()))
        .send()
        .await?;
    // The chunks' bytes together (how the runtime's writes fall into
    // chunks is not the test's), then how it ended.
    let (mut bytes, mut end) = (Vec::new(), "missing".to_owned());
    while let Some(event) = streamed.event_stream.recv().await? {
        match event {
            InvokeWithResponseStreamResponseEvent::PayloadChunk(c) => {
                bytes.extend_from_slice(c.payload().map(|b| b.as_ref()).unwrap_or_default());
            }
            InvokeWithResponseStreamResponseEvent::InvokeComplete(c) => {
                end = c.error_code().unwrap_or("none").to_owned();
            }
            other => end = format!("other {other:?}"),
        }
    }
    println!("stream: {} complete={end}", String::from_utf8_lossy(&bytes));
    lam.delete_function().function_name(name).send().await?;
    println!("delete: ok");
    Ok(())
}

/// AddPermission, GetPolicy, RemovePermission on a function that exists.
async fn permissions(lam: &Client, name: &str) -> Result<()> {
    let added = lam
        .add_permission()
        .function_name(name)
        .statement_id("sdk-test")
        .action("lambda:InvokeFunction")
        .principal("s3.amazonaws.com")
        .send()
        .await?;
    println!("add_permission: {}", added.statement().unwrap_or_default());
    let policy = lam.get_policy().function_name(name).send().await?;
    println!("get_policy: {}", policy.policy().unwrap_or_default());
    lam.remove_permission()
        .function_name(name)
        .statement_id("sdk-test")
        .send()
        .await?;
    println!("remove_permission: ok");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let run = async {
        let [_, mode, name, zip] = args.as_slice() else {
            return Err("usage: lamb-rust-sdk-scenario core|permissions FUNCTION ZIP".into());
        };
        let lam = client()?;
        match mode.as_str() {
            "core" => core(&lam, name, std::fs::read(zip)?).await,
            "permissions" => permissions(&lam, name).await,
            _ => Err(format!("unknown mode {mode}").into()),
        }
    };
    match run.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("error: {}", aws_sdk_lambda::error::DisplayErrorContext(&*e));
            ExitCode::FAILURE
        }
    }
}
