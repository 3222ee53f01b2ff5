//! What every handler shares: the registry, the code store, the limits, the
//! key pair and the invoker.

use crate::credentials::Credentials;
use crate::error::ApiError;
use crate::invoker::Invoker;
use lamb_store::{CodeStore, Registry};
use lamb_types::{ArnContext, Deprecation, LambdaError, Limits, Rules};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// The daemon's shared state; cheap to clone.
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

pub struct Shared {
    pub registry: Arc<dyn Registry>,
    pub store: Arc<CodeStore>,
    pub ctx: ArnContext,
    pub limits: Limits,
    pub data_dir: PathBuf,
    pub runtimes_dir: PathBuf,
    pub credentials: Credentials,
    /// Mints and verifies the functions' session credentials.
    pub sessions: Arc<crate::sessions::Sessions>,
    pub invoker: Arc<dyn Invoker>,
    pub started: Instant,
    /// The async queue's worker side (`crate::events`).
    pub events: Arc<crate::events::queue::EventQueue>,
    /// Host directories functions may mount (`--filesystem`).
    pub filesystems: crate::filesystems::Filesystems,
    /// RabbitMQ brokers event source mappings may read (`--rabbitmq`).
    pub brokers: crate::esm::brokers::Brokers,
    /// Endpoints of the AWS services mappings read (`--aws-endpoint`).
    pub aws_endpoints: crate::esm::aws::AwsEndpoints,
    /// `--allow-deprecated-runtimes`: AWS's block dates refuse nothing.
    pub allow_deprecated_runtimes: bool,
    /// Pulls Image functions' images (`--registry-auth`, `--insecure-registry`).
    pub images: lamb_store::image::Puller,
    /// This node in its cluster (`--cluster-listen`); `None` on one box.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The registry's per-invocation reads (`crate::read_cache`).
    pub reads: crate::read_cache::ReadCache,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// Runs `f` on the blocking pool: the registry and the unpacker are
    /// synchronous.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&Shared) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me.0)).await.map_err(|e| {
            tracing::error!(error = %e, "blocking task failed");
            ApiError::Lambda(LambdaError::service("internal error"))
        })?
    }
}

impl Shared {
    /// The runtimes installed: directory names under the runtimes directory,
    /// symlinks included, read at each call so a new one needs no restart.
    pub fn runtimes(&self) -> Vec<String> {
        let mut out: Vec<String> = std::fs::read_dir(&self.runtimes_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() || t.is_symlink()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect();
        out.sort();
        out
    }

    pub fn rules<'a>(&'a self, runtimes: &'a [String]) -> Rules<'a> {
        Rules {
            limits: &self.limits,
            ctx: &self.ctx,
            runtimes,
            // As of each request's day, so a long-running daemon follows
            // the schedule.
            deprecation: if self.allow_deprecated_runtimes {
                Deprecation::Allow
            } else {
                Deprecation::enforce_now()
            },
        }
    }
}
