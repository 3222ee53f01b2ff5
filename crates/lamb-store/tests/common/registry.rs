//! A registry in a temporary directory and functions to fill it with; the
//! two engines the shared registry suite runs on ([`Backend`], [`suite!`]).

use super::postgres::Postgres;
use lamb_store::{CodeDigest, CodeInfo, FunctionRecord, NewFunction, PostgresRegistry, Registry, SqliteRegistry};
use lamb_types::{ArnContext, FunctionSpec};
use std::sync::{Arc, Mutex, Weak};

/// A fresh registry; keep the directory as long as the registry.
pub fn open() -> (tempfile::TempDir, SqliteRegistry) {
    let dir = tempfile::tempdir().unwrap();
    let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
    (dir, reg)
}

/// Code that differs by `tag`, as bundles of different functions do.
pub fn code(tag: &str) -> CodeInfo {
    CodeInfo {
        digest: CodeDigest::of(tag.as_bytes()),
        code_size: tag.len() as u64,
        unzipped_size: 10 * tag.len() as u64,
    }
}

pub fn spec() -> FunctionSpec {
    FunctionSpec {
        role: "arn:aws:iam::123456789012:role/r".into(),
        runtime: Some("provided.al2023".into()),
        handler: Some("bootstrap".into()),
        ..Default::default()
    }
}

/// Creates function `name` (version 1 too when `publish`).
pub fn create(reg: &dyn Registry, name: &str, publish: bool) -> FunctionRecord {
    reg.create_function(NewFunction {
        name: name.into(),
        spec: spec(),
        code: code(name),
        publish,
    })
    .unwrap()
}

/// Where a test of the shared suite keeps its registry: a fresh SQLite
/// database, or a fresh PostgreSQL database on the test binary's server.
/// `open` may be called again: a reopen, as after a daemon restart.
pub enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(Arc<Postgres>, String),
}

impl Backend {
    pub fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    /// A new database on the server the running tests share (started when
    /// none is running; stopped when the last test using it ends).
    pub fn postgres() -> Backend {
        static SERVER: Mutex<Weak<Postgres>> = Mutex::new(Weak::new());
        let server = {
            let mut weak = SERVER.lock().unwrap_or_else(|e| e.into_inner());
            weak.upgrade().unwrap_or_else(|| {
                let pg = Arc::new(Postgres::start());
                *weak = Arc::downgrade(&pg);
                pg
            })
        };
        let url = server.create_database();
        Backend::Postgres(server, url)
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Backend::Postgres(..))
    }

    pub fn open(&self) -> Box<dyn Registry> {
        match self {
            Backend::Sqlite(dir) => Box::new(SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap()),
            Backend::Postgres(_, url) => Box::new(PostgresRegistry::connect(url, ArnContext::default()).unwrap()),
        }
    }
}

/// `suite!(a, b)`: tests `sqlite::a`, `postgres::a`, ... each calling
/// `a(&Backend)` with a fresh database of that engine.
#[macro_export]
macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::common::registry::Backend::sqlite());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(&$crate::common::registry::Backend::postgres());
                }
            )*
        }
    };
}
