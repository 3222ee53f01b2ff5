//! [`PostgresRegistry`]: the registry in a PostgreSQL database that several
//! lamb nodes share. Its queries are the SQLite registry's own (written once
//! against `registry::sql`); this module only connects, migrates and runs
//! transactions.
//!
//! Driver: the synchronous `postgres` crate (tokio-postgres underneath, a
//! small runtime per connection) in an r2d2 pool. The registry's trait is
//! synchronous and the daemon calls it from `spawn_blocking`, so a blocking
//! client keeps each method a plain closure over one transaction, exactly as
//! on SQLite, with no runtime handle to carry or futures to bridge. r2d2
//! checks a connection before lending it and drops closed ones, so the
//! registry reconnects by itself after PostgreSQL restarts (the calls made
//! while it is down fail as a `ServiceException`, which clients retry).
//!
//! Transactions: a write takes the transaction-scoped advisory lock
//! [`WRITE_LOCK`] first, so writes run one at a time across the cluster as
//! they do on SQLite (its one writer): every check-then-write (a revision,
//! the next version number, a conflict) sees every earlier commit. Reads run
//! in a read-only REPEATABLE READ transaction: one snapshot. The async queue
//! is the exception: its hot operations ([`Engine::write_queue`]) lock rows
//! instead (`FOR UPDATE SKIP LOCKED` claims), so nodes claim events side by
//! side without waiting for each other or for control-plane writes.
//!
//! Wake-ups: an enqueue sends `NOTIFY lamb_events` in its transaction; a
//! thread per registry `LISTEN`s and runs the `on_enqueue` callback, so a
//! node's async worker wakes for events queued through any node. Every
//! registry write sends `NOTIFY lamb_registry` the same way, and the same
//! thread bumps the registry's generation for it (the read cache's
//! invalidation across nodes).
//!
//! Migrations: SQLite's V1..Vn, translated to PostgreSQL's types when they
//! run ([`translate`]), each in its own transaction with the bump of
//! `lamb_schema.version`, all under the session advisory lock
//! [`MIGRATE_LOCK`], so nodes starting together migrate once.

use super::sql::Transaction;
use super::sqlite::{Engine, Generation, SqlRegistry, MIGRATIONS, SCHEMA_VERSION};
use crate::error::StoreError;
use lamb_types::ArnContext;
use postgres::{IsolationLevel, NoTls};
use r2d2_postgres::PostgresConnectionManager;
use std::cell::RefCell;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// The advisory lock every registry write holds (the registry's one writer).
pub const WRITE_LOCK: i64 = 0x6c61_6d62_0001;
/// The advisory lock migrations run under.
pub const MIGRATE_LOCK: i64 = 0x6c61_6d62_0002;
/// The channel enqueues notify.
pub const EVENTS_CHANNEL: &str = "lamb_events";
/// The channel every registry write notifies (on commit), so that each
/// node's cache of its reads (`Registry::generation`) drops what it held.
pub const REGISTRY_CHANNEL: &str = "lamb_registry";

/// Uploaded bundles (function code, layers) by kind and digest, stored once
/// for every node (`Registry::share_bundle`).
const SHARED_BUNDLES: &str = r#"
CREATE TABLE IF NOT EXISTS shared_bundles (
    kind   TEXT COLLATE "C" NOT NULL,
    digest TEXT COLLATE "C" NOT NULL,
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (kind, digest)
);
-- When it was last shared (uploaded, or uploaded again): a bundle younger
-- than the collection's grace period is kept though nothing refers to it
-- yet (`Registry::collect_shared_bundles`).
ALTER TABLE shared_bundles ADD COLUMN IF NOT EXISTS shared_at timestamptz NOT NULL DEFAULT now();
"#;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// PostgreSQL: a pool of connections.
pub struct PostgresEngine {
    /// Always `Some` but in `drop`.
    pool: Option<Pool>,
}

impl Drop for PostgresEngine {
    /// Each connection owns a runtime, which tokio refuses to drop on a
    /// thread that drives async tasks (where the daemon drops its state).
    fn drop(&mut self) {
        let pool = self.pool.take();
        tokio::task::block_in_place(move || drop(pool));
    }
}

/// The registry in PostgreSQL.
pub type PostgresRegistry = SqlRegistry<PostgresEngine>;

impl std::fmt::Debug for PostgresRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresRegistry").finish_non_exhaustive()
    }
}

impl PostgresRegistry {
    /// Whether `url` is a `postgres://` URL the driver understands; why not.
    pub fn check_url(url: &str) -> Result<(), String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("expected a postgres:// URL".into());
        }
        url.parse::<postgres::Config>()
            .map(drop)
            .map_err(|e| format!("bad PostgreSQL URL: {e}"))
    }

    /// Connects to `url` (`postgres://user@host:port/db`), migrating the
    /// database as needed, and starts listening for enqueues.
    pub fn connect(url: &str, ctx: ArnContext) -> Result<Self, StoreError> {
        let config: postgres::Config = url.parse()?;
        let manager = PostgresConnectionManager::new(config.clone(), NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        migrate(&mut *pool.get()?)?;
        let reg = Self::with_engine(PostgresEngine { pool: Some(pool) }, ctx);
        let wake = Arc::downgrade(&reg.on_enqueue);
        let generation = Arc::clone(&reg.generation);
        std::thread::Builder::new()
            .name("lamb-pg-listen".into())
            .spawn(move || listen(config, wake, &generation))
            .map_err(|e| StoreError::io("spawn", "lamb-pg-listen", e))?;
        Ok(reg)
    }
}

impl PostgresEngine {
    /// One transaction. The client blocks on a runtime of its own, which
    /// tokio refuses on a thread that drives async tasks; the daemon calls
    /// the registry from `spawn_blocking`, but not everywhere (start-up
    /// paths call it from tasks, which SQLite never minded), so the call
    /// leaves the async context first: `block_in_place` runs it on this
    /// thread and moves the worker's tasks elsewhere (elsewhere it just runs).
    fn run<T>(
        &self,
        isolation: IsolationLevel,
        read_only: bool,
        lock: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        tokio::task::block_in_place(|| self.run_here(isolation, read_only, lock, f))
    }

    fn run_here<T>(
        &self,
        isolation: IsolationLevel,
        read_only: bool,
        lock: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pool = self.pool.as_ref().expect("a pool until dropped");
        let mut conn = pool.get()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(isolation)
            .read_only(read_only)
            .start()?;
        if lock {
            // The announcement goes out on commit only, in the same round trip.
            tx.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({WRITE_LOCK}); NOTIFY {REGISTRY_CHANNEL}"
            ))?;
        }
        let sql = Transaction::Postgres(RefCell::new(tx));
        let out = f(&sql)?;
        let Transaction::Postgres(tx) = sql else {
            unreachable!("made as Postgres above")
        };
        tx.into_inner().commit()?;
        Ok(out)
    }
}

impl Engine for PostgresEngine {
    const SHARED: bool = true;

    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.run(IsolationLevel::ReadCommitted, false, true, f)
    }

    fn write_queue<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.run(IsolationLevel::ReadCommitted, false, false, f)
    }

    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.run(IsolationLevel::RepeatableRead, true, false, f)
    }
}

/// SQLite's DDL in PostgreSQL's types: BIGINT integers, byte-ordered text
/// (`COLLATE "C"`, as SQLite compares: markers and `ORDER BY name` agree),
/// identity columns for AUTOINCREMENT, no STRICT.
pub(crate) fn translate(sqlite: &str) -> String {
    let mut out = sqlite
        .replace(
            "INTEGER PRIMARY KEY AUTOINCREMENT",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        )
        .replace(") STRICT;", ");");
    for (from, to) in [
        (" INTEGER", " BIGINT"),
        (" REAL", " DOUBLE PRECISION"),
        (" BLOB", " BYTEA"),
        (" TEXT", " TEXT COLLATE \"C\""),
    ] {
        out = out.replace(from, to);
    }
    out
}

fn migrate(conn: &mut postgres::Client) -> Result<(), StoreError> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK])?;
    let result = migrate_locked(conn);
    // A failed unlock ends with the session anyway.
    let _ = conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]);
    result
}

fn migrate_locked(conn: &mut postgres::Client) -> Result<(), StoreError> {
    conn.batch_execute("CREATE TABLE IF NOT EXISTS lamb_schema (version BIGINT NOT NULL)")?;
    let found: i64 = match conn.query_opt("SELECT version FROM lamb_schema", &[])? {
        Some(row) => row.get(0),
        None => {
            conn.execute("INSERT INTO lamb_schema (version) VALUES (0)", &[])?;
            0
        }
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: "postgres:lamb_schema".into(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let mut tx = conn.transaction()?;
        tx.batch_execute(&translate(sql))?;
        tx.execute("UPDATE lamb_schema SET version = $1", &[&(done as i64 + 1)])?;
        tx.commit()?;
    }
    // PostgreSQL's own: the bundles nodes share (SQLite never has them).
    conn.batch_execute(SHARED_BUNDLES)?;
    Ok(())
}

/// Runs the enqueue callback for every `NOTIFY lamb_events` and bumps the
/// registry's generation for every `NOTIFY lamb_registry`, reconnecting
/// after failures, until the registry is gone. After each (re)connect it
/// runs the callback once: events may have come while it was away; while
/// it is away the generation is not live (writes may go unheard).
fn listen(config: postgres::Config, wake: Weak<OnceLock<Box<dyn Fn() + Send + Sync>>>, generation: &Generation) {
    let fire = |wake: &Weak<OnceLock<Box<dyn Fn() + Send + Sync>>>| match wake.upgrade() {
        Some(cell) => {
            if let Some(f) = cell.get() {
                f();
            }
            true
        }
        None => false,
    };
    loop {
        if let Ok(mut client) = config.connect(NoTls) {
            if client
                .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}; LISTEN {REGISTRY_CHANNEL}"))
                .is_ok()
            {
                generation.set_live(true);
                if !fire(&wake) {
                    return;
                }
                while !client.is_closed() {
                    use postgres::fallible_iterator::FallibleIterator;
                    // A second at a time: is the registry still there?
                    match client.notifications().timeout_iter(Duration::from_secs(1)).next() {
                        Ok(Some(n)) if n.channel() == REGISTRY_CHANNEL => generation.bump(),
                        Ok(Some(_)) if !fire(&wake) => return,
                        Ok(Some(_)) => {}
                        Ok(None) if wake.strong_count() == 0 => return,
                        Ok(None) => {}
                        Err(_) => break,
                    }
                }
                generation.set_live(false);
            }
        }
        if wake.strong_count() == 0 {
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
