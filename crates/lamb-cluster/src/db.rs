//! One connection to PostgreSQL that is made again after the database
//! restarts or the network breaks (docs/cluster.md, "When the database
//! dies"): every caller asks for the client at each use, and a closed one is
//! replaced then, so no task has to notice the failure itself.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

/// How long one exchange with the database may take: past it, the
/// connection is dropped and the next use makes a new one. A cut-off link
/// would otherwise hold a query for TCP's retransmission timeout (minutes).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("connecting to the cluster database")]
    Connect(#[source] tokio_postgres::Error),
    #[error("the cluster database did not answer within {QUERY_TIMEOUT:?}")]
    Timeout,
    #[error("{what}")]
    Query {
        what: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
}

impl DbError {
    /// A `map_err` for a query's failure, saying what it was doing.
    pub fn query(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> DbError {
        move |source| DbError::Query { what, source }
    }
}

/// The node's connection to the cluster database.
pub struct Db {
    url: String,
    client: Mutex<Option<Arc<Client>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password.
        f.write_str("Db(..)")
    }
}

impl Db {
    /// Remembers the URL; nothing is connected until the first use.
    pub fn new(url: &str) -> Db {
        Db {
            url: url.to_owned(),
            client: Mutex::new(None),
        }
    }

    /// The open client, connecting (again) when there is none or it closed.
    pub async fn client(&self) -> Result<Arc<Client>, DbError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .map_err(DbError::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "cluster database connection closed");
            }
        });
        let client = Arc::new(client);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }

    /// Runs `f` with the client (connecting first if need be) within
    /// [`QUERY_TIMEOUT`]; a timeout drops the connection.
    pub async fn with<T, F, Fut>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, DbError>>,
    {
        let run = async { f(self.client().await?).await };
        match tokio::time::timeout(QUERY_TIMEOUT, run).await {
            Ok(result) => result,
            Err(_) => {
                self.client.lock().await.take();
                Err(DbError::Timeout)
            }
        }
    }
}
