//! The one place that prepares an invocation, whoever asks for it: the
//! Invoke route, function URLs, the async worker and the RabbitMQ poller
//! each name a [`Target`] and a [`Call`]; [`prepare`] resolves the qualifier
//! (rolling a weighted alias's dice once), reads the concurrency settings,
//! finds the unpacked code and layers and builds the [`InvokeRequest`] that
//! [`invoke`] hands to the [`Invoker`](crate::invoker::Invoker). Nothing here
//! knows HTTP, so the background workers need not reach into the API.
//! [`start_streamed`] runs a call whose caller takes a streamed response
//! as it comes (InvokeWithResponseStream, `RESPONSE_STREAM` URLs).

use crate::error::ApiError;
use crate::invoker::{InvokeRequest, InvokeResponse, LogType, StreamPart};
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
    let rec = s.reads.function(&*s.registry, name, q)?;
    let Qualifier::Alias(alias) = q else {
        return Ok(rec);
    };
    let alias = s.reads.alias(&*s.registry, name, alias)?;
    match roll(&alias) {
        Some(q) => Ok(s.reads.function(&*s.registry, name, &q)?),
        None => Ok(rec),
    }
}

/// A weighted alias's dice, rolled once: the additional version when it
/// wins, else `None` (the alias's own version).
fn roll(alias: &lamb_store::AliasRecord) -> Option<Qualifier> {
    let mut roll: f64 = rand::random();
    for (version, weight) in &alias.weights {
        if roll < *weight {
            return Some(Qualifier::Version(Version::Published(*version)));
        }
        roll -= weight;
    }
    None
}

/// [`resolve_version`] from the read cache alone: `None` where it would
/// read the registry. When a weighted alias's dice pick a version the cache
/// does not hold, `target` is narrowed to that version (its invoked ARN
/// kept), so the read that follows does not roll them again.
fn cached_version(s: &Shared, target: &mut Target) -> Option<FunctionRecord> {
    let (reg, name) = (&*s.registry, &target.function);
    let rec = s.reads.peek_function(reg, name, &target.qualifier)?;
    let Qualifier::Alias(alias) = &target.qualifier else {
        return Some(rec);
    };
    let Some(q) = roll(&s.reads.peek_alias(reg, name, alias)?) else {
        return Some(rec);
    };
    let picked = s.reads.peek_function(reg, name, &q);
    if picked.is_none() {
        target.qualifier = q;
    }
    picked
}

/// Unpacks a bundle this node does not hold from the shared registry (it
/// was uploaded through another node) into the local store, which keeps it
/// by the SHA-256 of its bytes: bytes that are not `digest`'s are refused.
/// Nothing to do on one box, where every bundle is local.
fn fetch_shared(s: &Shared, kind: BundleKind, digest: &CodeDigest) -> Result<(), ApiError> {
    if s.store.contains(kind, digest) {
        return Ok(());
    }
    let Some(bytes) = s.registry.shared_bundle(kind, digest)? else {
        return Ok(());
    };
    if CodeDigest::of(&bytes) != *digest {
        tracing::error!(digest = %digest.hex(), "a shared bundle's bytes are not its digest's");
        return Err(lamb_types::LambdaError::service("a shared bundle is corrupt").into());
    }
    let mut limits = lamb_store::UnpackLimits::from_limits(&s.limits);
    limits.max_zipped = limits.max_zipped.max(bytes.len() as u64);
    s.store.put(kind, &bytes, &limits)?;
    Ok(())
}

/// Everything the engine needs to run `call` on `target`; reads the
/// registry (through `Shared::reads`, so a warm call usually does not), so it
/// runs on the blocking pool ([`prepare_now`] skips the hop when the read
/// cache holds everything).
pub fn prepare(s: &Shared, target: &Target, call: Call) -> Result<InvokeRequest, ApiError> {
    let rec = resolve_version(s, &target.function, &target.qualifier)?;
    fetch_shared(s, BundleKind::Function, &rec.code.digest)?;
    for d in rec.layers.iter().filter_map(|l| l.digest()) {
        fetch_shared(s, BundleKind::Layer, &d)?;
    }
    let reserved_concurrency = s.reads.reserved(&*s.registry, &target.function)?;
    // Provisioned concurrency of unreserved functions comes out of the
    // unreserved pool too, as on Lambda.
    let total_reserved_concurrency = s.reads.pool(&*s.registry)?;
    let concurrency = (reserved_concurrency, total_reserved_concurrency);
    request(s, target, call, rec, concurrency)
}

/// [`prepare`] on an async task: at once from the read cache when it holds
/// every record the call needs and this node every bundle (a warm call:
/// no hop to the blocking pool and back, on the receiving node and again on
/// a node that takes a forward), else on the blocking pool.
pub async fn prepare_now(st: &AppState, mut target: Target, call: Call) -> Result<InvokeRequest, ApiError> {
    match prepare_cached(st, &mut target, call) {
        Ok(prepared) => prepared,
        Err(call) => st.blocking(move |s| prepare(s, &target, call)).await,
    }
}

/// [`prepare`] without a registry read: `Err(call)`, given back, where it
/// would read (a record not in the read cache, a bundle not unpacked here).
fn prepare_cached(s: &Shared, target: &mut Target, call: Call) -> Result<Result<InvokeRequest, ApiError>, Call> {
    let reg = &*s.registry;
    let Some(rec) = cached_version(s, target) else {
        return Err(call);
    };
    let held = std::iter::once((BundleKind::Function, rec.code.digest))
        .chain(
            rec.layers
                .iter()
                .filter_map(|l| l.digest())
                .map(|d| (BundleKind::Layer, d)),
        )
        .all(|(kind, d)| s.store.contains(kind, &d));
    let reserved = s.reads.peek_reserved(reg, &target.function);
    let (true, Some(reserved), Some(pool)) = (held, reserved, s.reads.peek_pool(reg)) else {
        return Err(call);
    };
    Ok(request(s, target, call, rec, (reserved, pool)))
}

/// The [`InvokeRequest`] of `call` on the version `rec`, with its reserved
/// concurrency and the account's reserved total.
fn request(
    s: &Shared,
    target: &Target,
    call: Call,
    rec: FunctionRecord,
    (reserved_concurrency, total_reserved_concurrency): (Option<u32>, u64),
) -> Result<InvokeRequest, ApiError> {
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
        stream: None,
    })
}

/// Prepares the call and runs it: what a caller without anything to check
/// between the two steps uses.
pub async fn invoke(st: &AppState, target: Target, call: Call) -> Result<InvokeResponse, ApiError> {
    let req = prepare_now(st, target, call).await?;
    st.invoker.invoke(req).await
}

/// How a call run by [`start_streamed`] began.
pub enum Started {
    /// The function streams: `content_type` is its response's, and
    /// `stream` gives the rest.
    Streaming { content_type: String, stream: Streamed },
    /// It answered whole (a function that does not stream), or the call
    /// failed before the function ran (a throttle).
    Whole(Result<InvokeResponse, ApiError>),
}

/// What a streamed call gives after its beginning, in order.
pub enum Piece {
    /// Bytes the function streamed.
    Bytes(Vec<u8>),
    /// How the invocation ended: its payload empty unless it failed.
    End(Result<InvokeResponse, ApiError>),
}

/// The rest of a streamed call: its pieces as they come, then its end.
pub struct Streamed {
    parts: tokio::sync::mpsc::Receiver<StreamPart>,
    done: Option<tokio::task::JoinHandle<Result<InvokeResponse, ApiError>>>,
    answer: Option<Result<InvokeResponse, ApiError>>,
}

impl Streamed {
    /// The next piece; `None` after the end. The end comes when the
    /// invocation does, not when its sink is dropped (a completion that
    /// extensions hold keeps the sink for longer).
    pub async fn next(&mut self) -> Option<Piece> {
        loop {
            if let Some(done) = self.done.as_mut() {
                tokio::select! {
                    biased;
                    Some(part) = self.parts.recv() => match part {
                        StreamPart::Chunk(bytes) => return Some(Piece::Bytes(bytes)),
                        StreamPart::Begin { .. } => continue,
                    },
                    answer = done => {
                        self.done = None;
                        self.answer = Some(joined(answer));
                    }
                }
            }
            // Every piece was queued before the answer: those not taken yet
            // come first.
            match self.parts.try_recv() {
                Ok(StreamPart::Chunk(bytes)) => return Some(Piece::Bytes(bytes)),
                Ok(StreamPart::Begin { .. }) => continue,
                Err(_) => return self.answer.take().map(Piece::End),
            }
        }
    }
}

/// The answer of the invocation's task.
fn joined(
    answer: Result<Result<InvokeResponse, ApiError>, tokio::task::JoinError>,
) -> Result<InvokeResponse, ApiError> {
    answer
        .unwrap_or_else(|e| Err(lamb_types::LambdaError::service(format!("the invocation's task failed: {e}")).into()))
}

/// Runs a prepared call whose caller takes a streamed response, and waits
/// for its first sign: the stream's beginning or the whole answer. The
/// invocation runs on its own task: a caller that goes away stops only the
/// relay, not the function.
/// In a cluster, the call runs on the node routing chooses (a warm
/// sandbox of the version, else the least loaded), its stream relayed
/// chunk by chunk.
pub async fn start_streamed(st: &AppState, req: InvokeRequest) -> Started {
    if let Some((cluster, addr)) = routed(st, &req) {
        return cluster.start_remote(addr, req, true).await;
    }
    start_on(std::sync::Arc::clone(&st.invoker), req).await
}

/// Runs a client's synchronous call whose answer is taken whole (Invoke,
/// a `BUFFERED` URL): here, or in a cluster on the node routing chooses.
pub async fn invoke_routed(st: &AppState, req: InvokeRequest) -> Result<InvokeResponse, ApiError> {
    if let Some((cluster, addr)) = routed(st, &req) {
        return cluster.invoke_remote(&addr, &req).await;
    }
    st.invoker.invoke(req).await
}

/// The cluster and the address of the node a client's call goes to, when
/// not this one: the one routing decision of every synchronous path
/// (docs/cluster.md, "How a call is routed").
fn routed(st: &AppState, req: &InvokeRequest) -> Option<(std::sync::Arc<crate::cluster::Cluster>, String)> {
    let cluster = st.cluster.as_ref()?;
    let addr = cluster.destination(&*st.invoker, req)?;
    Some((std::sync::Arc::clone(cluster), addr))
}

/// [`start_streamed`] on `invoker`, here.
pub async fn start_on(invoker: std::sync::Arc<dyn crate::invoker::Invoker>, mut req: InvokeRequest) -> Started {
    let (tx, parts) = tokio::sync::mpsc::channel(crate::stream_body::QUEUED);
    req.stream = Some(tx);
    let done = tokio::spawn(async move { invoker.invoke(req).await });
    started(parts, done).await
}

/// Waits for a started call's first sign: the beginning of its stream
/// (`parts` gets `Begin`) or its whole answer (`done` ends).
pub async fn started(
    mut parts: tokio::sync::mpsc::Receiver<StreamPart>,
    mut done: tokio::task::JoinHandle<Result<InvokeResponse, ApiError>>,
) -> Started {
    tokio::select! {
        biased;
        Some(StreamPart::Begin { content_type }) = parts.recv() => Started::Streaming {
            content_type,
            stream: Streamed { parts, done: Some(done), answer: None },
        },
        answer = &mut done => Started::Whole(joined(answer)),
    }
}
