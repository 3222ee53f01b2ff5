//! The seam between the daemon and the invocation engine:
//! [`crate::invocation`] prepares an [`InvokeRequest`] and hands it to the
//! [`Invoker`] held in the app state, which runs it and waits for the answer.

use crate::error::ApiError;
use lamb_store::FunctionRecord;
use lamb_types::{LambdaError, Version};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// `X-Amz-Log-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogType {
    None,
    Tail,
}

/// One invocation, resolved; always synchronous: asynchronous events are
/// queued by the Invoke route and run by `crate::events`' worker, which
/// waits for the answer like any other caller.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    /// Also the response's `x-amzn-RequestId`.
    pub request_id: String,
    /// The version that runs: its configuration, code and layers.
    pub function: FunctionRecord,
    /// `$LATEST` or the number; alias weights already applied.
    pub executed_version: Version,
    /// The ARN the caller invoked (qualified with the alias when one was
    /// used): the runtime's `Lambda-Runtime-Invoked-Function-Arn`.
    pub invoked_function_arn: String,
    /// The unpacked code, mounted at `/var/task`.
    pub code_path: PathBuf,
    /// The unpacked layers in merge order, for `/opt`.
    pub layer_paths: Vec<PathBuf>,
    /// An Image function's unpacked image layers, lowest first: its root.
    pub image_layers: Vec<PathBuf>,
    pub payload: Vec<u8>,
    pub log_type: LogType,
    /// `X-Amz-Client-Context` decoded from base64.
    pub client_context: Option<String>,
    /// The function's reserved concurrency, if it has one.
    pub reserved_concurrency: Option<u32>,
    /// Reserved concurrency of all functions together, and provisioned
    /// concurrency of those without a reservation: what the unreserved ones'
    /// on-demand invocations may not use.
    pub total_reserved_concurrency: u64,
    /// Where a streamed response goes as the function writes it
    /// (InvokeWithResponseStream, `RESPONSE_STREAM` URLs). Without one, a
    /// streamed response is gathered into the answer's payload.
    pub stream: Option<StreamSink>,
}

/// The caller's end of a streamed response.
pub type StreamSink = tokio::sync::mpsc::Sender<StreamPart>;

/// A piece of a streamed response, in order: `Begin` once, then the
/// bytes; the invocation's answer (its payload empty unless it failed)
/// ends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamPart {
    Begin { content_type: String },
    Chunk(Vec<u8>),
}

/// What a finished invocation answers.
#[derive(Debug, Clone, Default)]
pub struct InvokeResponse {
    /// The function's response bytes.
    pub payload: Vec<u8>,
    /// `X-Amz-Function-Error`, `Unhandled` when the function failed.
    pub function_error: Option<String>,
    /// The log text of this invocation (START to REPORT) when `Tail` was
    /// asked; the route base64-encodes its last 4 KB.
    pub log_tail: Option<String>,
}

/// One version's share of a provisioned concurrency configuration: `want`
/// sandboxes initialised ahead for what `request` (its payload unused)
/// runs.
#[derive(Debug, Clone)]
pub struct ProvisionTarget {
    pub want: u32,
    pub request: InvokeRequest,
}

/// `Status` of a provisioned concurrency configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvisionedState {
    InProgress,
    Ready,
    Failed,
}

impl ProvisionedState {
    pub fn name(self) -> &'static str {
        match self {
            ProvisionedState::InProgress => "IN_PROGRESS",
            ProvisionedState::Ready => "READY",
            ProvisionedState::Failed => "FAILED",
        }
    }
}

/// How far the engine is with a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedStatus {
    /// Sandboxes initialised (idle or busy): `Allocated` and `Available`.
    pub allocated: u32,
    pub state: ProvisionedState,
    /// `StatusReason` when `Failed`.
    pub reason: Option<String>,
}

pub type InvokeFuture<'a> = Pin<Box<dyn Future<Output = Result<InvokeResponse, ApiError>> + Send + 'a>>;

/// Runs invocations. Errors are API errors (throttling); function errors,
/// sandbox failures included, are an `Ok` with `function_error` set.
pub trait Invoker: Send + Sync + 'static {
    fn invoke(&self, req: InvokeRequest) -> InvokeFuture<'_>;

    /// `GET /metrics` in Prometheus' text format, if this invoker keeps any.
    fn metrics(&self) -> Option<String> {
        None
    }

    /// The function (or only its published `version`) was deleted: its idle
    /// sandboxes are destroyed now rather than at the idle TTL.
    fn forget(&self, _function: &str, _version: Option<u64>) {}

    /// Keeps the sandboxes of `function`'s provisioned concurrency
    /// configuration for `qualifier` (a version or an alias): `targets`
    /// replace what it had; none releases them all.
    fn provision(&self, _function: &str, _qualifier: &str, _targets: Vec<ProvisionTarget>) {}

    /// Where the configuration stands; `None` when this invoker keeps none.
    fn provisioned_status(&self, _function: &str, _qualifier: &str) -> Option<ProvisionedStatus> {
        None
    }

    /// Idle sandboxes by pool key (`crate::engine::pool_key`): what the
    /// cluster's heartbeat says this node holds warm.
    fn idle(&self) -> std::collections::HashMap<String, u32> {
        std::collections::HashMap::new()
    }

    /// Idle sandboxes of one pool key.
    fn idle_of(&self, _pool_key: &str) -> u32 {
        0
    }

    /// Invocations running now.
    fn in_flight(&self) -> u32 {
        0
    }

    /// SnapStart: keeps snapshots of the published version `request` runs
    /// (its payload unused), made now and refilled as they are used.
    fn snapstart(&self, _request: InvokeRequest) {}

    /// Where a SnapStart version's snapshot stands; `None` when this
    /// invoker keeps none for it.
    fn snapstart_state(&self, _function: &str, _version: u64) -> Option<SnapshotState> {
        None
    }
}

/// How far a SnapStart version's snapshot is: the version's `State`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotState {
    /// Being made: `Pending`.
    Pending,
    /// One was made: `Active`.
    Ready,
    /// Its init failed before any was made: `Failed`, with the reason.
    Failed(String),
}

/// The invoker of a daemon built without an engine.
///
/// Lambda answers `ServiceException` (500) when the service itself cannot
/// run a function, and that is the case here: nothing about the request or
/// the function is wrong. botocore retries a 500 twice, which is harmless as
/// nothing ran.
#[derive(Debug, Default)]
pub struct NoEngine;

impl Invoker for NoEngine {
    fn invoke(&self, req: InvokeRequest) -> InvokeFuture<'_> {
        Box::pin(async move {
            Err(LambdaError::service(format!(
                "lamb cannot run {}: this daemon has no invocation engine",
                req.invoked_function_arn
            ))
            .into())
        })
    }
}
