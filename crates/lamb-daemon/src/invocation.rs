//! The one place that prepares an invocation, whoever asks for it: the
//! Invoke route, function URLs, the async worker and the RabbitMQ poller
//! each name a [`Target`] and a [`Call`]; [`prepare`] resolves the qualifier
//! (rolling a weighted alias's dice once), reads the concurrency settings,
//! finds the unpacked code and layers and builds the [`InvokeRequest`] that
//! [`invoke`] hands to the [`Invoker`](crate::invoker::Invoker). Nothing here
//! knows HTTP, so the background workers need not reach into the API.

use crate::error::ApiError;
use crate::invoker::{InvokeRequest, InvokeResponse, LogType};
use crate::state::{AppState, Shared};
use lamb_store::{BundleKind, CodeDigest, FunctionRecord};
use lamb_types::{ArnContext, FunctionRef, Qualifier, Version};

/// The function a caller names, and the ARN the runtime is told was invoked.
#[derive(Debug, Clone)]
pub struct Target {
    pub function: String,
    pub qualifier: Qualifier,
    /// `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_arn: String,
}

impl Target {
    /// `function:qualifier`, invoked by its unqualified ARN for `$LATEST` and
    /// its qualified one otherwise, as Lambda shows it.
    pub fn new(ctx: &ArnContext, function: String, qualifier: Qualifier) -> Target {
        let invoked_arn = match &qualifier {
            Qualifier::Version(Version::Latest) => ctx.function_arn(&function),
            q => ctx.qualified_function_arn(&function, q),
        };
        Target {
            function,
            qualifier,
            invoked_arn,
        }
    }

    /// The function an ARN names (`$LATEST` when unqualified), invoked by
    /// that ARN as written: an event source mapping's `FunctionArn`.
    pub fn by_arn(arn: &str) -> Result<Target, ApiError> {
        let fref = FunctionRef::parse(arn)?;
        Ok(Target {
            qualifier: fref.qualifier.unwrap_or_else(Qualifier::latest),
            function: fref.name,
            invoked_arn: arn.to_owned(),
        })
    }
}

/// What this one call carries besides its target.
#[derive(Debug, Clone)]
pub struct Call {
    /// Also the response's `x-amzn-RequestId`.
    pub request_id: String,
    pub payload: Vec<u8>,
    pub log_type: LogType,
    /// `X-Amz-Client-Context`, decoded.
    pub client_context: Option<String>,
}

impl Call {
    /// A call with no log tail and no client context, as every caller but
    /// the Invoke route makes.
    pub fn new(request_id: String, payload: Vec<u8>) -> Call {
        Call {
            request_id,
            payload,
            log_type: LogType::None,
            client_context: None,
        }
    }
}

/// The version that runs: the qualifier's, or for a weighted alias the
/// additional version with its probability.
pub fn resolve_version(s: &Shared, name: &str, q: &Qualifier) -> Result<FunctionRecord, ApiError> {
    let rec = s.registry.get_function(name, q)?;
    let Qualifier::Alias(alias) = q else {
        return Ok(rec);
    };
    let alias = s.registry.get_alias(name, alias)?;
    let mut roll: f64 = rand::random();
    for (version, weight) in &alias.weights {
        if roll < *weight {
            return Ok(s
                .registry
                .get_function(name, &Qualifier::Version(Version::Published(*version)))?);
        }
        roll -= weight;
    }
    Ok(rec)
}

/// Everything the engine needs to run `call` on `target`; reads the
/// registry, so it runs on the blocking pool (`AppState::blocking`).
pub fn prepare(s: &Shared, target: &Target, call: Call) -> Result<InvokeRequest, ApiError> {
    let rec = resolve_version(s, &target.function, &target.qualifier)?;
    crate::images::check_runnable(&rec)?;
    let image_layers = rec
        .spec
        .image
        .iter()
        .filter_map(|i| i.pulled.as_ref())
        .flat_map(|p| &p.layers)
        .filter_map(|hex| CodeDigest::from_hex(hex))
        .map(|d| s.store.path(BundleKind::ImageLayer, &d))
        .collect();
    let reserved_concurrency = s.registry.get_reserved_concurrency(&target.function)?;
    let total_reserved_concurrency = s.registry.total_reserved_concurrency(None)?;
    let layer_paths = rec
        .layers
        .iter()
        .filter_map(|l| l.digest())
        .map(|d| s.store.path(BundleKind::Layer, &d))
        .collect();
    Ok(InvokeRequest {
        request_id: call.request_id,
        code_path: s.store.path(BundleKind::Function, &rec.code.digest),
        layer_paths,
        image_layers,
        invoked_function_arn: target.invoked_arn.clone(),
        executed_version: rec.version,
        function: rec,
        payload: call.payload,
        log_type: call.log_type,
        client_context: call.client_context,
        reserved_concurrency,
        total_reserved_concurrency,
    })
}

/// Prepares the call and runs it: what a caller without anything to check
/// between the two steps uses.
pub async fn invoke(st: &AppState, target: Target, call: Call) -> Result<InvokeResponse, ApiError> {
    let req = st.blocking(move |s| prepare(s, &target, call)).await?;
    st.invoker.invoke(req).await
}
