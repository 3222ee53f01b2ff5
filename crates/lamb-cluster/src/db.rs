//! One connection to PostgreSQL that is made again after the database
//! restarts or the network breaks (docs/cluster.md, "When the database
//! dies"): every caller asks for the client at each use, and a closed one is
//! replaced then, so no task has to notice the failure itself.

use std::sync::Arc;
use tokio::sync::Mutex;
use tokio_postgres::{Client, NoTls};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("connecting to the cluster database")]
    Connect(#[source] tokio_postgres::Error),
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
}
