//! The store's error type, and how each failure maps to the Lambda error the
//! API answers with.

use crate::unpack::UnpackError;
use lamb_types::LambdaError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A failure the caller caused (not found, conflict, bad value): the API
    /// answers with it as it is.
    #[error(transparent)]
    Lambda(#[from] LambdaError),
    #[error("bundle refused")]
    Bundle(#[from] UnpackError),
    #[error("database")]
    Database(#[from] rusqlite::Error),
    #[error("database")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("database pool: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("database {path:?} has schema version {found}, newer than this lamb's {supported}")]
    SchemaTooNew { path: PathBuf, found: i64, supported: i64 },
    #[error("corrupt record in {table}: {detail}")]
    CorruptRecord { table: &'static str, detail: String },
    #[error("{op} {path:?}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(table: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::CorruptRecord {
            table,
            detail: detail.to_string(),
        }
    }

    /// The Lambda error the API answers with; internal failures become a
    /// `ServiceException` whose message hides paths and SQL.
    pub fn to_lambda(&self) -> LambdaError {
        match self {
            Self::Lambda(e) => e.clone(),
            Self::Bundle(e) => e.to_lambda(),
            _ => LambdaError::service("internal error in the function store"),
        }
    }
}

impl From<crate::registry::sql::Error> for StoreError {
    fn from(e: crate::registry::sql::Error) -> Self {
        use crate::registry::sql::Error;
        match e {
            Error::Sqlite(e) => Self::Database(e),
            Error::Postgres(e) => Self::Postgres(e),
            Error::NoRows => Self::Database(rusqlite::Error::QueryReturnedNoRows),
            Error::Conversion(column, detail) => Self::corrupt("registry", format!("column {column}: {detail}")),
        }
    }
}

impl From<StoreError> for LambdaError {
    fn from(e: StoreError) -> Self {
        e.to_lambda()
    }
}
