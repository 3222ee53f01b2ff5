//! [`SqliteRegistry`]: the registry in one SQLite database, `lamb.db` under
//! the data directory; and [`SqlRegistry`], the registry on any SQL
//! [`Engine`]: the queries in this directory's modules are written once
//! against `registry::sql` and run on SQLite and on PostgreSQL
//! (`registry::postgres`) alike.
//!
//! Durability: WAL with `synchronous=FULL`. WAL with NORMAL already survives
//! `kill -9` of the process at any point (the WAL is in the page cache and
//! replayed on open), but it may lose the last commits on power loss; FULL
//! syncs the WAL at every commit, so what the API answered as done (a
//! created function, a 202 for a queued async event) survives power loss too.
//! Control-plane writes are few, so one fsync per commit costs little.

mod aliases;
mod code;
mod concurrency;
mod documents;
mod esm;
mod events;
mod file_triggers;
mod functions;
mod group;
mod images;
mod invoke_configs;
mod layers;
mod provisioned;
mod schema;
mod tags;
mod triggers;

pub(crate) use schema::MIGRATIONS;
pub use schema::SCHEMA_VERSION;

use super::{
    AliasRecord, AliasUpdate, CodeUpdate, EventInvokeConfigRecord, EventRecord, FunctionRecord, LayerVersionRecord,
    NewAlias, NewEvent, NewFunction, NewLayerVersion, Page, PageRequest, ProvisionedConcurrencyRecord, QueuedEvent,
    Registry,
};
use crate::code_store::Referenced;
use crate::error::StoreError;
use crate::registry::sql::Transaction;
use lamb_types::{
    ArnContext, FunctionSpec, LastUpdateStatus, PublishVersionRequest, PutFunctionEventInvokeConfigRequest, Qualifier,
    State, Version,
};
use rusqlite::{Connection, TransactionBehavior};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The database file under the data directory.
pub const DB_FILE: &str = "lamb.db";

/// How a [`SqlRegistry`] runs a transaction on its database. Every query of
/// the registry is written once against [`Transaction`]; an engine only
/// opens, locks and commits.
pub trait Engine: Send + Sync {
    /// Whether several nodes share the database: bundles are kept in it too
    /// (`Registry::share_bundle`).
    const SHARED: bool = false;
    /// Runs `f` in one transaction that no other write runs beside (SQLite's
    /// one writer; PostgreSQL's registry write lock), and commits it.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError>;
    /// Runs one operation of the async queue, which may run beside other
    /// writes where the engine locks rows (PostgreSQL); else as [`Engine::write`].
    fn write_queue<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.write(f)
    }
    /// A queue write its caller waits on (an accepted event, an attempt's
    /// outcome), which may share one commit with concurrent ones (SQLite's
    /// group commit, `group.rs`); else as [`Engine::write_queue`]. Answers
    /// only once the transaction holding it has committed.
    fn write_grouped<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.write_queue(f)
    }
    /// A queue write that nothing answered depends on (a claim: lost, its
    /// events run again), which may skip the sync on commit; else as
    /// [`Engine::write_queue`].
    fn write_unsynced<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.write_queue(f)
    }
    /// Runs `f` in one read transaction, so it sees one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError>;
}

/// The registry on an SQL [`Engine`]: [`SqliteRegistry`] or
/// [`crate::PostgresRegistry`].
pub struct SqlRegistry<E> {
    pub(crate) engine: E,
    ctx: ArnContext,
    /// Called after every enqueue committed (wakes the async worker).
    pub(crate) on_enqueue: std::sync::Arc<std::sync::OnceLock<Box<dyn Fn() + Send + Sync>>>,
    /// Bumped by every registry write (`Registry::generation`).
    pub(crate) generation: std::sync::Arc<Generation>,
}

/// A count of the registry's writes, so that a cache of what it read can
/// tell whether it may still hold: bumped after each write through this
/// registry and, where nodes share the database, for each write another node
/// announces (PostgreSQL's `lamb_registry` channel). `live` is false while
/// announcements may be missed (no listening connection): then nothing may
/// be trusted but a read.
#[derive(Debug)]
pub(crate) struct Generation {
    count: std::sync::atomic::AtomicU64,
    live: std::sync::atomic::AtomicBool,
}

impl Generation {
    pub(crate) fn new(live: bool) -> Self {
        Self {
            count: std::sync::atomic::AtomicU64::new(0),
            live: std::sync::atomic::AtomicBool::new(live),
        }
    }

    pub(crate) fn bump(&self) {
        self.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Marks whether writes elsewhere are heard; a change either way is a
    /// bump too, so nothing read before it is trusted after.
    pub(crate) fn set_live(&self, live: bool) {
        self.live.store(live, std::sync::atomic::Ordering::SeqCst);
        self.bump();
    }

    pub(crate) fn current(&self) -> Option<u64> {
        // `live` first: a bump that follows a reconnect is seen with it.
        let live = self.live.load(std::sync::atomic::Ordering::SeqCst);
        let count = self.count.load(std::sync::atomic::Ordering::SeqCst);
        live.then_some(count)
    }
}

/// The registry in SQLite: one database file.
pub type SqliteRegistry = SqlRegistry<SqliteEngine>;

/// SQLite: one writing connection, serialized by a mutex (SQLite has one
/// writer anyway), and connections for reads beside it: in WAL mode a
/// reader sees the last commit without waiting for a writer, so a read (an
/// invoke's cache miss, the async worker's event configuration) never
/// queues behind a group commit's sync of the WAL.
pub struct SqliteEngine {
    conn: Mutex<Connection>,
    /// Idle read connections, [`IDLE_READERS`] from the start; one more is
    /// opened when none is idle, and closed after its read.
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    /// The async queue's writes, committed in groups.
    group: group::GroupCommit,
}

impl std::fmt::Debug for SqliteRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteRegistry")
            .field("path", &self.engine.path)
            .finish_non_exhaustive()
    }
}

impl<E: Engine> SqlRegistry<E> {
    /// `E::SHARED` engines hear other nodes' writes only once listening.
    pub(crate) fn with_engine(engine: E, ctx: ArnContext) -> Self {
        Self {
            engine,
            ctx,
            on_enqueue: Default::default(),
            generation: std::sync::Arc::new(Generation::new(!E::SHARED)),
        }
    }

    /// Sets what runs after each enqueue has committed; the first call wins.
    pub fn on_enqueue(&self, f: impl Fn() + Send + Sync + 'static) {
        let _ = self.on_enqueue.set(Box::new(f));
    }

    pub fn context(&self) -> &ArnContext {
        &self.ctx
    }

    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &ArnContext) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let out = self.engine.write(|tx| f(tx, &self.ctx));
        // Even a failed write may have committed (a lost answer).
        self.generation.bump();
        out
    }

    fn write_queue<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &ArnContext) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.engine.write_queue(|tx| f(tx, &self.ctx))
    }

    fn write_grouped<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &ArnContext) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let ctx = self.ctx.clone();
        self.engine.write_grouped(move |tx| f(tx, &ctx))
    }

    fn write_unsynced<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>, &ArnContext) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.engine.write_unsynced(|tx| f(tx, &self.ctx))
    }

    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>, &ArnContext) -> Result<T, StoreError>) -> Result<T, StoreError> {
        self.engine.read(|tx| f(tx, &self.ctx))
    }
}

/// Prepared statements kept per connection: more than the registry's hot
/// statements (the queue's insert, claim and finish, the reads an invoke
/// makes), so that none of them is parsed again while the daemon runs.
const STATEMENT_CACHE: usize = 128;

impl SqliteRegistry {
    /// Opens `<data_dir>/lamb.db`, creating and migrating it as needed.
    pub fn open_in(data_dir: &Path, ctx: ArnContext) -> Result<Self, StoreError> {
        Self::open(&data_dir.join(DB_FILE), ctx)
    }

    /// Opens the database at `path`, creating and migrating it as needed.
    pub fn open(path: &Path, ctx: ArnContext) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::corrupt("database", format!("journal mode stays {mode}")));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn, path)?;
        let engine = SqliteEngine {
            conn: Mutex::new(conn),
            // Opened now, not as reads first run at once: the daemon's
            // descriptors stay the same from start to end (a leak shows).
            readers: Mutex::new((0..IDLE_READERS).map(|_| open_reader(path)).collect::<Result<_, _>>()?),
            path: path.to_owned(),
            group: group::GroupCommit::default(),
        };
        Ok(Self::with_engine(engine, ctx))
    }

    pub fn path(&self) -> &Path {
        &self.engine.path
    }

    /// `PRAGMA integrity_check`: `Ok` when the database reports "ok".
    pub fn integrity_check(&self) -> Result<(), StoreError> {
        let conn = self.engine.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let result: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if result != "ok" {
            return Err(StoreError::corrupt("database", result));
        }
        Ok(())
    }
}

impl Engine for SqliteEngine {
    /// One immediate (write-locked) transaction.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&Transaction::Sqlite(&tx))?;
        tx.commit()?;
        Ok(out)
    }

    /// One read transaction (a snapshot) on an idle read connection.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.take_reader()?;
        let out = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let out = f(&Transaction::Sqlite(&tx));
            out
        })();
        self.give_back_reader(conn);
        out
    }

    /// The next group of concurrent queue writes (`group.rs`).
    fn write_grouped<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.group.write(&self.conn, f)
    }

    /// An immediate transaction whose commit does not wait for the disk
    /// (the WAL still survives `kill -9`).
    fn write_unsynced<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let out = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&Transaction::Sqlite(&tx))?;
            tx.commit()?;
            Ok(out)
        })();
        conn.pragma_update(None, "synchronous", "FULL")?;
        out
    }
}

/// Read connections kept: as many as reads usually run at once (the
/// blocking threads of a busy daemon); more are opened when needed and
/// closed after use.
const IDLE_READERS: usize = 8;

impl SqliteEngine {
    fn take_reader(&self) -> Result<Connection, StoreError> {
        let idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(conn) => Ok(conn),
            None => open_reader(&self.path),
        }
    }

    fn give_back_reader(&self, conn: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// A connection for reads only (`query_only`: a write through it fails
/// rather than bypassing the writer's lock and group commit).
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// `$LATEST` is stored as version 0.
pub(crate) fn version_num(v: Version) -> i64 {
    match v {
        Version::Latest => 0,
        Version::Published(n) => n as i64,
    }
}

pub(crate) fn version_from(n: i64) -> Version {
    match n {
        0 => Version::Latest,
        n => Version::Published(n as u64),
    }
}

pub(crate) fn new_revision() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::corrupt("json", e))
}

pub(crate) fn from_json<T: DeserializeOwned>(table: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::corrupt(table, e))
}

/// A unit enum's wire spelling (`Active`, `Successful`).
pub(crate) fn enum_text<T: Serialize>(v: &T) -> Result<String, StoreError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(StoreError::corrupt("enum", "not a unit variant")),
    }
}

pub(crate) fn enum_from<T: DeserializeOwned>(table: &'static str, s: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|e| StoreError::corrupt(table, e))
}

/// Splits `limit + 1` fetched rows into a page and the next marker.
pub(crate) fn paginate<T>(mut rows: Vec<T>, limit: usize, marker_of: impl Fn(&T) -> String) -> Page<T> {
    let next_marker = if rows.len() > limit {
        rows.truncate(limit + 1);
        rows.pop().map(|r| marker_of(&r))
    } else {
        None
    };
    Page {
        items: rows,
        next_marker,
    }
}

pub(crate) fn bad_marker(marker: &str) -> StoreError {
    lamb_types::LambdaError::invalid_parameter(format!("Invalid marker: {marker}")).into()
}

impl<E: Engine> Registry for SqlRegistry<E> {
    fn tag_function(
        &self,
        function: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), StoreError> {
        self.write(|tx, ctx| tags::tag(tx, ctx, function, tags))
    }

    fn untag_function(&self, function: &str, keys: &[String]) -> Result<(), StoreError> {
        self.write(|tx, ctx| tags::untag(tx, ctx, function, keys))
    }

    fn function_tags(&self, function: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        self.read(|tx, ctx| tags::tags(tx, ctx, function))
    }

    fn create_function(&self, new: NewFunction) -> Result<FunctionRecord, StoreError> {
        self.write(|tx, ctx| functions::create(tx, ctx, new))
    }

    fn get_function(&self, name: &str, q: &Qualifier) -> Result<FunctionRecord, StoreError> {
        self.read(|tx, ctx| functions::get(tx, ctx, name, q))
    }

    fn update_function_code(&self, name: &str, update: CodeUpdate) -> Result<FunctionRecord, StoreError> {
        self.write(|tx, ctx| functions::update_code(tx, ctx, name, update))
    }

    fn update_function_configuration(
        &self,
        name: &str,
        spec: FunctionSpec,
        revision_id: Option<&str>,
    ) -> Result<FunctionRecord, StoreError> {
        self.write(|tx, ctx| functions::update_configuration(tx, ctx, name, spec, revision_id))
    }

    fn delete_function(&self, name: &str, version: Option<u64>) -> Result<(), StoreError> {
        self.write(|tx, ctx| functions::delete(tx, ctx, name, version))
    }

    fn list_functions(&self, all_versions: bool, page: PageRequest<'_>) -> Result<Page<FunctionRecord>, StoreError> {
        self.read(|tx, _| functions::list(tx, all_versions, page))
    }

    fn publish_version(&self, name: &str, req: &PublishVersionRequest) -> Result<FunctionRecord, StoreError> {
        self.write(|tx, ctx| functions::publish(tx, ctx, name, req))
    }

    fn list_versions(&self, name: &str, page: PageRequest<'_>) -> Result<Page<FunctionRecord>, StoreError> {
        self.read(|tx, ctx| functions::list_versions(tx, ctx, name, page))
    }

    fn set_function_state(
        &self,
        name: &str,
        version: Version,
        state: State,
        status: LastUpdateStatus,
    ) -> Result<(), StoreError> {
        self.write(|tx, ctx| functions::set_state(tx, ctx, name, version, state, status))
    }

    fn update_function_image(
        &self,
        name: &str,
        image: lamb_types::FunctionImage,
        architectures: Option<Vec<lamb_types::Architecture>>,
        revision_id: Option<&str>,
    ) -> Result<FunctionRecord, StoreError> {
        self.write(|tx, ctx| images::update_image(tx, ctx, name, image, architectures, revision_id))
    }

    fn finish_image_pull(
        &self,
        name: &str,
        revision_id: &str,
        outcome: Result<lamb_types::PulledImage, lamb_types::PullFailure>,
    ) -> Result<bool, StoreError> {
        self.write(|tx, ctx| images::finish_pull(tx, ctx, name, revision_id, outcome))
    }

    fn unfinished_image_pulls(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|tx, _| images::unfinished(tx))
    }

    fn create_alias(&self, function: &str, alias: NewAlias) -> Result<AliasRecord, StoreError> {
        self.write(|tx, ctx| aliases::create(tx, ctx, function, alias))
    }

    fn get_alias(&self, function: &str, name: &str) -> Result<AliasRecord, StoreError> {
        self.read(|tx, ctx| aliases::get_for_caller(tx, ctx, function, name))
    }

    fn update_alias(&self, function: &str, name: &str, update: AliasUpdate) -> Result<AliasRecord, StoreError> {
        self.write(|tx, ctx| aliases::update(tx, ctx, function, name, update))
    }

    fn delete_alias(&self, function: &str, name: &str) -> Result<(), StoreError> {
        self.write(|tx, ctx| aliases::delete(tx, ctx, function, name))
    }

    fn list_aliases(
        &self,
        function: &str,
        version: Option<Version>,
        page: PageRequest<'_>,
    ) -> Result<Page<AliasRecord>, StoreError> {
        self.read(|tx, ctx| aliases::list(tx, ctx, function, version, page))
    }

    fn publish_layer_version(&self, new: NewLayerVersion) -> Result<LayerVersionRecord, StoreError> {
        self.write(|tx, _| layers::publish(tx, new))
    }

    fn get_layer_version(&self, name: &str, version: u64) -> Result<LayerVersionRecord, StoreError> {
        self.read(|tx, ctx| layers::get(tx, ctx, name, version))
    }

    fn list_layer_versions(&self, name: &str, page: PageRequest<'_>) -> Result<Page<LayerVersionRecord>, StoreError> {
        self.read(|tx, _| layers::list_versions(tx, name, page))
    }

    fn list_layers(&self, page: PageRequest<'_>) -> Result<Page<LayerVersionRecord>, StoreError> {
        self.read(|tx, _| layers::list_latest(tx, page))
    }

    fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), StoreError> {
        self.write(|tx, _| layers::delete(tx, name, version))
    }

    fn put_reserved_concurrency(&self, function: &str, n: u32) -> Result<(), StoreError> {
        self.write(|tx, ctx| concurrency::set_reserved(tx, ctx, function, Some(n)))
    }

    fn get_reserved_concurrency(&self, function: &str) -> Result<Option<u32>, StoreError> {
        self.read(|tx, ctx| concurrency::get_reserved(tx, ctx, function))
    }

    fn delete_reserved_concurrency(&self, function: &str) -> Result<(), StoreError> {
        self.write(|tx, ctx| concurrency::set_reserved(tx, ctx, function, None))
    }

    fn total_reserved_concurrency(&self, except: Option<&str>) -> Result<u64, StoreError> {
        self.read(|tx, _| concurrency::total_reserved(tx, except))
    }

    fn put_provisioned_concurrency(
        &self,
        function: &str,
        qualifier: &str,
        requested: u32,
    ) -> Result<ProvisionedConcurrencyRecord, StoreError> {
        self.write(|tx, ctx| provisioned::put(tx, ctx, function, qualifier, requested))
    }

    fn get_provisioned_concurrency(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<ProvisionedConcurrencyRecord>, StoreError> {
        self.read(|tx, _| provisioned::get(tx, function, qualifier))
    }

    fn delete_provisioned_concurrency(&self, function: &str, qualifier: &str) -> Result<(), StoreError> {
        self.write(|tx, _| provisioned::delete(tx, function, qualifier))
    }

    fn list_provisioned_concurrency(
        &self,
        function: Option<&str>,
    ) -> Result<Vec<ProvisionedConcurrencyRecord>, StoreError> {
        self.read(|tx, _| provisioned::list(tx, function))
    }

    fn total_provisioned_unreserved(&self, except: Option<&str>) -> Result<u64, StoreError> {
        self.read(|tx, _| provisioned::total_unreserved(tx, except))
    }

    fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &Qualifier,
        config: &PutFunctionEventInvokeConfigRequest,
        merge: bool,
    ) -> Result<EventInvokeConfigRecord, StoreError> {
        self.write(|tx, ctx| invoke_configs::put_invoke_config(tx, ctx, function, qualifier, config, merge))
    }

    fn get_event_invoke_config(
        &self,
        function: &str,
        qualifier: &Qualifier,
    ) -> Result<EventInvokeConfigRecord, StoreError> {
        self.read(|tx, ctx| invoke_configs::get_invoke_config(tx, ctx, function, qualifier))
    }

    fn delete_event_invoke_config(&self, function: &str, qualifier: &Qualifier) -> Result<(), StoreError> {
        self.write(|tx, ctx| invoke_configs::delete_invoke_config(tx, ctx, function, qualifier))
    }

    fn list_event_invoke_configs(
        &self,
        function: &str,
        page: PageRequest<'_>,
    ) -> Result<Page<EventInvokeConfigRecord>, StoreError> {
        self.read(|tx, _| invoke_configs::list_invoke_configs(tx, function, page))
    }

    fn enqueue_event(&self, event: NewEvent) -> Result<QueuedEvent, StoreError> {
        let queued = self.write_grouped(move |tx, ctx| events::enqueue(tx, ctx, event))?;
        if let Some(f) = self.on_enqueue.get() {
            f();
        }
        Ok(queued)
    }

    fn claim_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        // A claim lost on power loss leaves its events queued: they run
        // again, as after any crash (at least once); so it is not synced.
        self.write_unsynced(|tx, _| events::claim(tx, owner, now_ms, lease_until_ms, max))
    }

    fn release_events(&self, owner: &str, now_ms: i64) -> Result<u64, StoreError> {
        self.write(|tx, _| events::release(tx, owner, now_ms))
    }

    fn next_event_due(&self) -> Result<Option<i64>, StoreError> {
        self.read(|tx, _| events::next_due(tx))
    }

    fn retry_event(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let (id, error) = (id.to_owned(), error.map(str::to_owned));
        self.write_grouped(move |tx, _| events::retry(tx, &id, attempts, next_attempt_at_ms, error.as_deref()))
    }

    fn finish_event(
        &self,
        id: &str,
        attempts: u32,
        failure: Option<&str>,
        now_ms: i64,
        then: Option<NewEvent>,
    ) -> Result<(), StoreError> {
        let (id, failure) = (id.to_owned(), failure.map(str::to_owned));
        self.write_grouped(move |tx, ctx| events::finish(tx, ctx, &id, attempts, failure.as_deref(), now_ms, then))
    }

    fn purge_failed_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        self.write(|tx, _| events::purge_failed(tx, before_ms))
    }

    fn list_events(&self, function: &str) -> Result<Vec<EventRecord>, StoreError> {
        self.read(|tx, ctx| events::list(tx, ctx, function))
    }

    fn generation(&self) -> Option<u64> {
        self.generation.current()
    }

    fn referenced_bundles(&self) -> Result<Referenced, StoreError> {
        self.read(|tx, _| code::referenced(tx))
    }

    fn total_code_size(&self) -> Result<u64, StoreError> {
        self.read(|tx, _| code::total_code_size(tx))
    }

    fn share_bundle(
        &self,
        kind: crate::BundleKind,
        digest: &crate::CodeDigest,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        if !E::SHARED {
            return Ok(());
        }
        self.write_queue(|tx, _| code::share(tx, kind, digest, bytes))
    }

    fn shared_bundle(
        &self,
        kind: crate::BundleKind,
        digest: &crate::CodeDigest,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if !E::SHARED {
            return Ok(None);
        }
        self.read(|tx, _| code::shared(tx, kind, digest))
    }

    fn collect_shared_bundles(&self, grace: std::time::Duration) -> Result<u64, StoreError> {
        if !E::SHARED {
            return Ok(0);
        }
        self.write(|tx, _| code::collect_shared(tx, grace))
    }

    fn create_file_trigger(
        &self,
        new: crate::registry::NewFileTrigger,
    ) -> Result<crate::registry::FileTriggerRecord, StoreError> {
        self.write(|tx, ctx| file_triggers::create(tx, ctx, new))
    }

    fn list_file_triggers(&self) -> Result<Vec<crate::registry::FileTriggerRecord>, StoreError> {
        self.read(|tx, _| file_triggers::list(tx))
    }

    fn delete_file_trigger(&self, id: &str) -> Result<(), StoreError> {
        self.write(|tx, _| file_triggers::delete(tx, id))
    }

    fn put_event_source_mapping(
        &self,
        function: &str,
        mapping: &lamb_types::esm::EventSourceMappingConfiguration,
        create: bool,
    ) -> Result<(), StoreError> {
        self.write(|tx, ctx| esm::put(tx, ctx, function, mapping, create))
    }

    fn get_event_source_mapping(
        &self,
        uuid: &str,
    ) -> Result<lamb_types::esm::EventSourceMappingConfiguration, StoreError> {
        self.read(|tx, _| esm::get(tx, uuid))
    }

    fn list_event_source_mappings(&self) -> Result<Vec<lamb_types::esm::EventSourceMappingConfiguration>, StoreError> {
        self.read(|tx, _| esm::list(tx))
    }

    fn delete_event_source_mapping(&self, uuid: &str) -> Result<(), StoreError> {
        self.write(|tx, _| esm::delete(tx, uuid))
    }

    fn set_esm_last_processing_result(&self, uuid: &str, result: &str) -> Result<(), StoreError> {
        self.write(|tx, _| esm::set_result(tx, uuid, result))
    }

    fn put_esm_checkpoint(&self, uuid: &str, shard: &str, sequence: &str) -> Result<(), StoreError> {
        self.write(|tx, _| esm::put_checkpoint(tx, uuid, shard, sequence))
    }

    fn esm_checkpoints(&self, uuid: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        self.read(|tx, _| esm::checkpoints(tx, uuid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use lamb_types::Qualifier;
    use std::sync::mpsc::channel;

    /// A read answers while a write holds the writing connection (as a
    /// group commit does while it syncs the WAL): reads have connections of
    /// their own.
    #[test]
    fn a_read_does_not_wait_for_a_write_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let reg = std::sync::Arc::new(SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap());
        let (writing, in_write) = channel();
        let (read_done, read_seen) = channel::<()>();
        let writer = {
            let reg = reg.clone();
            std::thread::spawn(move || {
                reg.engine.write(|_| {
                    writing.send(()).unwrap();
                    // A bound for the failure only: with one connection the
                    // read below waits for this write, which gives up here.
                    read_seen
                        .recv_timeout(Duration::from_secs(60))
                        .map_err(|_| StoreError::corrupt("test", "the read waited for the write"))
                })
            })
        };
        in_write.recv().unwrap();
        let missing = reg.get_function("nothing", &Qualifier::latest());
        assert!(matches!(missing, Err(StoreError::Lambda(_))), "{missing:?}");
        read_done.send(()).unwrap();
        writer.join().unwrap().expect("the read answered during the write");
    }
}
