//! Starting the daemon: open the data directory, the registry and the code
//! store, load the keys, bind, serve until SIGTERM or SIGINT.

use crate::credentials::{Credentials, CredentialsError};
use crate::invoker::Invoker;
use crate::state::{AppState, Shared};
use lamb_store::{CodeStore, PostgresRegistry, SqliteRegistry, StoreError};
use lamb_types::{ArnContext, Limits};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// What runs beside the API: function URLs, schedules, workers.
    pub background: crate::background::BackgroundConfig,
    pub data_dir: PathBuf,
    /// The registry's PostgreSQL URL (`--registry`); `None`: SQLite in
    /// `data_dir`.
    pub registry_url: Option<String>,
    pub runtimes_dir: PathBuf,
    /// The account's concurrency limit (`--concurrency-limit`).
    pub concurrency_limit: u32,
    /// Waits before async retry 1, 2, ... (`--async-retry-delays`); empty
    /// means Lambda's 1 and 2 minutes.
    pub async_retry_delays: Vec<std::time::Duration>,
    /// Host directories functions may mount (`--filesystem`).
    pub filesystems: crate::filesystems::Filesystems,
    /// RabbitMQ brokers event source mappings may read (`--rabbitmq`).
    pub brokers: crate::esm::brokers::Brokers,
    /// Endpoints of the AWS services mappings read (`--aws-endpoint`).
    pub aws_endpoints: crate::esm::aws::AwsEndpoints,
    /// Where `GET /metrics` is served (`--metrics-listen`); `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    /// Create and update functions with runtimes past AWS's block dates
    /// (`--allow-deprecated-runtimes`).
    pub allow_deprecated_runtimes: bool,
    /// The functions' session credentials, shared with the engine that
    /// hands them to sandboxes; `None`: a new key of the default duration.
    pub sessions: Option<Arc<crate::sessions::Sessions>>,
    /// How image registries are reached (`--registry-auth`,
    /// `--insecure-registry`, a Docker `config.json`).
    pub registries: lamb_store::image::RegistryConfig,
    /// Cluster mode (`--cluster-listen`, docs/cluster.md); `None`: one box.
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("create data directory {path:?}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("write the session key in {path:?}")]
    SessionKey { path: PathBuf, source: std::io::Error },
    #[error("open the store")]
    Store(#[from] StoreError),
    #[error("listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("serve: {0}")]
    Serve(std::io::Error),
    #[error("join the cluster")]
    Cluster(#[from] lamb_cluster::DbError),
}

/// Whether `url` can be `--registry`'s PostgreSQL URL; why not.
pub fn check_registry_url(url: &str) -> Result<(), String> {
    PostgresRegistry::check_url(url)
}

/// Opens everything under the data directory and builds the state.
pub fn open_state(config: &ServeConfig, invoker: Arc<dyn Invoker>) -> Result<AppState, ServeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let credentials = Credentials::load_or_create(&config.data_dir)?;
    let sessions = match &config.sessions {
        Some(s) => Arc::clone(s),
        None => Arc::new(
            crate::sessions::Sessions::rotate(&config.data_dir, crate::sessions::DEFAULT_DURATION).map_err(
                |source| ServeError::SessionKey {
                    path: config.data_dir.clone(),
                    source,
                },
            )?,
        ),
    };
    let ctx = ArnContext::default();
    let node = crate::data_dir::node_id(&config.data_dir).map_err(|source| ServeError::DataDir {
        path: config.data_dir.clone(),
        source,
    })?;
    let events = Arc::new(crate::events::queue::EventQueue::new(
        &node,
        config.async_retry_delays.clone(),
    ));
    let registry: Arc<dyn lamb_store::Registry> = match &config.registry_url {
        Some(url) => {
            let reg = PostgresRegistry::connect(url, ctx.clone())?;
            reg.on_enqueue(events.waker());
            Arc::new(reg)
        }
        None => {
            let reg = SqliteRegistry::open_in(&config.data_dir, ctx.clone())?;
            reg.on_enqueue(events.waker());
            Arc::new(reg)
        }
    };
    let store = Arc::new(CodeStore::open(&config.data_dir)?);
    // Bundles unpacked by a request that never committed (a crash, a
    // refused create) are removed here.
    let reg = Arc::clone(&registry);
    let report = store.gc(|| lamb_store::Registry::referenced_bundles(&*reg))?;
    if !report.removed.is_empty() {
        tracing::info!(removed = report.removed.len(), "removed unreferenced bundles");
    }
    // And the shared ones a deletion left past their grace (a cluster).
    match lamb_store::Registry::collect_shared_bundles(&*reg, crate::api::SHARED_BUNDLE_GRACE) {
        Ok(0) => {}
        Ok(n) => tracing::info!(removed = n, "removed unreferenced shared bundles"),
        Err(e) => tracing::warn!(error = %lamb_protocol::errors::Chain(&e), "shared bundle garbage collection failed"),
    }
    Ok(AppState::new(Shared {
        registry,
        store,
        ctx,
        limits: Limits {
            concurrent_executions: config.concurrency_limit,
            ..Limits::default()
        },
        data_dir: config.data_dir.clone(),
        runtimes_dir: config.runtimes_dir.clone(),
        credentials,
        sessions,
        invoker,
        started: Instant::now(),
        events,
        filesystems: config.filesystems.clone(),
        brokers: config.brokers.clone(),
        aws_endpoints: config.aws_endpoints.clone(),
        allow_deprecated_runtimes: config.allow_deprecated_runtimes,
        images: lamb_store::image::Puller::new(config.registries.clone()),
        cluster: None,
        reads: Default::default(),
    }))
}

/// Resolves at the first SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM");
            return std::future::pending().await;
        }
    };
    let mut int = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGINT");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// Serves the API until `shutdown` resolves; requests in flight finish.
pub async fn serve(
    config: ServeConfig,
    invoker: Arc<dyn Invoker>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (cluster, invoker) = match &config.cluster {
        Some(c) => join_cluster(c, invoker, &config).await?,
        None => (None, invoker),
    };
    let cfg = config.clone();
    let mut state = tokio::task::spawn_blocking(move || open_state(&cfg, invoker))
        .await
        .map_err(|e| ServeError::Serve(std::io::Error::other(e)))??;
    if let Some(shared) = Arc::get_mut(&mut state.0) {
        shared.cluster = cluster.clone();
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().unwrap_or(config.listen);
    crate::images::resume(&state);
    tracing::info!(
        %addr,
        data_dir = %config.data_dir.display(),
        runtimes = ?state.runtimes(),
        "lamb is listening"
    );
    let background = crate::background::start(&config.background, state.clone())
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.background.url_listen.unwrap_or(config.listen),
            source,
        })?;
    let metrics = match config.metrics_listen {
        Some(addr) => Some(serve_router(addr, crate::metrics_router(state.clone())).await?),
        None => None,
    };
    let node = match (&cluster, &config.cluster) {
        (Some(cluster), Some(c)) => Some(start_node(cluster, c.listen, &state).await?),
        _ => None,
    };
    crate::listen::serve(listener, crate::router(state), crate::listen::API_LIMITS, shutdown).await;
    for (stop, task) in metrics.into_iter().chain(node.into_iter().flatten()) {
        let _ = stop.send(true);
        let _ = task.await;
    }
    background.stop().await;
    tracing::info!("stopped");
    Ok(())
}

type Stoppable = (tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>);

/// Joins the cluster and puts its admission in front of the engine.
async fn join_cluster(
    c: &crate::cluster::ClusterConfig,
    engine: Arc<dyn Invoker>,
    config: &ServeConfig,
) -> Result<(Option<Arc<crate::cluster::Cluster>>, Arc<dyn Invoker>), ServeError> {
    let mut c = c.clone();
    if config.registry_url.as_deref() == Some(c.database_url.as_str()) {
        // The queue is in the cluster's database: a dead node's events can
        // be freed by its heartbeat's end (docs/cluster.md).
        c.registry_node = Some(
            crate::data_dir::node_id(&config.data_dir).map_err(|source| ServeError::DataDir {
                path: config.data_dir.clone(),
                source,
            })?,
        );
    }
    let cluster = crate::cluster::Cluster::join(c, &*engine).await?;
    let invoker = Arc::new(crate::cluster::admission::ClusterInvoker {
        engine,
        cluster: Arc::clone(&cluster),
        limit: config.concurrency_limit,
    });
    Ok((Some(cluster), invoker))
}

/// This node's side of the cluster: the listener other nodes forward to,
/// and the heartbeat (which leaves the cluster when stopped).
async fn start_node(
    cluster: &Arc<crate::cluster::Cluster>,
    addr: SocketAddr,
    state: &AppState,
) -> Result<[Stoppable; 2], ServeError> {
    let listener = serve_router(addr, crate::cluster::forward::router(state.clone())).await?;
    let (stop, rx) = tokio::sync::watch::channel(false);
    let beat = crate::cluster::heartbeat::start(Arc::clone(cluster), Arc::clone(&state.invoker), rx);
    Ok([listener, (stop, beat)])
}

/// Binds `addr` and serves `router` on it (the metrics, or the cluster's
/// forwards) until the sender turns true.
async fn serve_router(addr: SocketAddr, router: axum::Router) -> Result<Stoppable, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving");
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let task = tokio::spawn(crate::listen::serve(
        listener,
        router,
        crate::listen::API_LIMITS,
        shutdown,
    ));
    Ok((stop, task))
}
