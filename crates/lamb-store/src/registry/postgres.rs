//! [`PostgresRegistry`]: the registry in a PostgreSQL database that several
//! lamb nodes share. Its queries are the SQLite registry's own (written once
//! against `registry::sql`); this module only connects, migrates and runs
//! transactions.
//!
//! Driver: tokio-postgres, in a deadpool-postgres pool, both driven by a
//! small runtime the engine owns (two workers, `lamb-pg`). The registry's
//! trait stays synchronous, as the daemon calls it from `spawn_blocking`:
//! each method is a closure over one transaction, exactly as on SQLite, and
//! each statement in it is a `block_on` of one tokio-postgres future from
//! the calling thread ([`PgTransaction`]); the connections' tasks run on
//! the engine's runtime, which no caller ever blocks. deadpool over bb8:
//! it is tokio-postgres' own pool in the deadpool family, and its `Fast`
//! recycling checks a connection without a round trip (is its connection
//! task still running?), where bb8-postgres and r2d2-postgres send an empty
//! query on every checkout. A connection that PostgreSQL closed (a
//! restart, a crash) ends its task, fails that check and is dropped, so the
//! registry reconnects by itself; the calls made while the database is
//! down fail as a `ServiceException`, which clients retry.
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
//! task on the engine's runtime per registry `LISTEN`s and runs the
//! `on_enqueue` callback, so a node's async worker wakes for events queued through any node. Every
//! registry write sends `NOTIFY lamb_registry` the same way, and the same
//! task bumps the registry's generation for it (the read cache's
//! invalidation across nodes).
//!
//! Migrations: SQLite's V1..Vn, translated to PostgreSQL's types when they
//! run ([`translate`]), each in its own transaction with the bump of
//! `lamb_schema.version`, all under the session advisory lock
//! [`MIGRATE_LOCK`], so nodes starting together migrate once.

use super::sql::{PgTransaction, Transaction};
use super::sqlite::{Engine, Generation, SqlRegistry, MIGRATIONS, SCHEMA_VERSION};
use crate::error::StoreError;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use lamb_types::ArnContext;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::runtime::{Handle, Runtime};
use tokio_postgres::{AsyncMessage, IsolationLevel, NoTls};

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

/// The most connections a node holds (the registry's concurrent calls).
const POOL_SIZE: usize = 16;
/// How long a call waits for a connection (a free one, or a new one).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The callback an enqueue anywhere runs (`SqlRegistry::on_enqueue`).
type Wake = Weak<OnceLock<Box<dyn Fn() + Send + Sync>>>;

/// PostgreSQL: a pool of connections and the runtime that drives them.
pub struct PostgresEngine {
    pool: Pool,
    /// Always `Some` but in `drop`.
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Drop for PostgresEngine {
    /// Ends the connections' tasks and the listener with the runtime,
    /// without waiting for them: a runtime may not be dropped (which waits)
    /// on a thread that drives async tasks, where the daemon drops its state.
    fn drop(&mut self) {
        self.pool.close();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
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
        url.parse::<tokio_postgres::Config>()
            .map(drop)
            .map_err(|e| format!("bad PostgreSQL URL: {e}"))
    }

    /// Connects to `url` (`postgres://user@host:port/db`), migrating the
    /// database as needed, and starts listening for enqueues.
    pub fn connect(url: &str, ctx: ArnContext) -> Result<Self, StoreError> {
        let config: tokio_postgres::Config = url.parse()?;
        let engine = PostgresEngine::open(config.clone())?;
        let mut conn = engine.block_on(engine.pool.get())?;
        engine.block_on(migrate(&mut conn))?;
        drop(conn);
        let reg = Self::with_engine(engine, ctx);
        let wake = Arc::downgrade(&reg.on_enqueue);
        let generation = Arc::clone(&reg.generation);
        reg.engine.handle.spawn(listen(config, wake, generation));
        Ok(reg)
    }
}

impl PostgresEngine {
    /// The runtime and the pool (no connection yet).
    fn open(config: tokio_postgres::Config) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("lamb-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::io("spawn", "lamb-pg", e))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .expect("a runtime is given for the timeouts");
        Ok(Self {
            pool,
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// Runs `f` to its end on the engine's runtime, from the calling thread.
    /// Blocking is refused on a thread that drives async tasks; the daemon
    /// calls the registry from `spawn_blocking`, but not everywhere
    /// (start-up paths call it from tasks, which SQLite never minded), so
    /// the call leaves the async context first: `block_in_place` runs it on
    /// this thread and moves the worker's tasks elsewhere (elsewhere it
    /// just runs).
    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        tokio::task::block_in_place(|| self.handle.block_on(f))
    }

    /// One transaction.
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
        let rt = &self.handle;
        let mut conn = rt.block_on(self.pool.get())?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let tx = rt.block_on(
            client
                .build_transaction()
                .isolation_level(isolation)
                .read_only(read_only)
                .start(),
        )?;
        if lock {
            // The announcement goes out on commit only, in the same round trip.
            rt.block_on(tx.batch_execute(&format!(
                "SELECT pg_advisory_xact_lock({WRITE_LOCK}); NOTIFY {REGISTRY_CHANNEL}"
            )))?;
        }
        let sql = Transaction::Postgres(PgTransaction { tx, rt });
        let out = f(&sql)?;
        let Transaction::Postgres(pg) = sql else {
            unreachable!("made as Postgres above")
        };
        if read_only {
            // A read-only transaction ends alike committed or rolled back,
            // and dropping it queues its `ROLLBACK` on the connection
            // without waiting for the answer: the read answers a round trip
            // sooner, and whoever takes the connection next is queued
            // behind the `ROLLBACK` (one connection answers in order).
            drop(pg);
        } else {
            rt.block_on(pg.tx.commit())?;
        }
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

async fn migrate(conn: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATE_LOCK]).await?;
    let result = migrate_locked(conn).await;
    // A failed unlock ends with the session anyway.
    let _ = conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATE_LOCK]).await;
    result
}

async fn migrate_locked(conn: &mut tokio_postgres::Client) -> Result<(), StoreError> {
    conn.batch_execute("CREATE TABLE IF NOT EXISTS lamb_schema (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = match conn.query_opt("SELECT version FROM lamb_schema", &[]).await? {
        Some(row) => row.get(0),
        None => {
            conn.execute("INSERT INTO lamb_schema (version) VALUES (0)", &[])
                .await?;
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
        let tx = conn.transaction().await?;
        tx.batch_execute(&translate(sql)).await?;
        tx.execute("UPDATE lamb_schema SET version = $1", &[&(done as i64 + 1)])
            .await?;
        tx.commit().await?;
    }
    // PostgreSQL's own: the bundles nodes share (SQLite never has them).
    conn.batch_execute(SHARED_BUNDLES).await?;
    Ok(())
}

/// Runs the enqueue callback for every `NOTIFY lamb_events` and bumps the
/// registry's generation for every `NOTIFY lamb_registry`, reconnecting
/// after failures, until the registry is gone (its runtime ends this
/// task). After each (re)connect it runs the callback once: events may have
/// come while it was away; while it is away the generation is not live
/// (writes may go unheard).
async fn listen(config: tokio_postgres::Config, wake: Wake, generation: Arc<Generation>) {
    loop {
        if let Ok((client, connection)) = config.connect(NoTls).await {
            let (notified, mut notifications) = tokio::sync::mpsc::unbounded_channel();
            let reader = tokio::spawn(read_notifications(connection, notified));
            if client
                .batch_execute(&format!("LISTEN {EVENTS_CHANNEL}; LISTEN {REGISTRY_CHANNEL}"))
                .await
                .is_ok()
            {
                generation.set_live(true);
                if !fire(&wake) {
                    return;
                }
                // Until the connection ends (the reader drops its sender).
                while let Some(n) = notifications.recv().await {
                    if n.channel() == REGISTRY_CHANNEL {
                        generation.bump();
                    } else if !fire(&wake) {
                        return;
                    }
                }
                generation.set_live(false);
            }
            reader.abort();
        }
        if wake.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Drives a listening connection, passing on its notifications, until it
/// fails or closes. A connection spawned as a plain future would drop them.
async fn read_notifications(
    mut connection: tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    notified: tokio::sync::mpsc::UnboundedSender<tokio_postgres::Notification>,
) {
    while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
        if let AsyncMessage::Notification(n) = message {
            if notified.send(n).is_err() {
                return;
            }
        }
    }
}

/// Runs the enqueue callback; false once the registry is gone.
fn fire(wake: &Wake) -> bool {
    match wake.upgrade() {
        Some(cell) => {
            if let Some(f) = cell.get() {
                f();
            }
            true
        }
        None => false,
    }
}
