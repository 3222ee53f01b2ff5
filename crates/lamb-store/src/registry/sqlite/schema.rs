//! The schema and its migrations. `PRAGMA user_version` holds how many
//! migrations a database has had; each runs in its own transaction together
//! with the bump, so a crash leaves the database at one version or the next.
//! Append migrations; never edit one that was released.

use crate::error::StoreError;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

const V1: &str = r#"
CREATE TABLE functions (
    name                 TEXT PRIMARY KEY NOT NULL,
    -- highest version number ever published; numbers are never reused
    last_version         INTEGER NOT NULL DEFAULT 0,
    reserved_concurrency INTEGER
) STRICT;

CREATE TABLE function_versions (
    function            TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    -- 0 is $LATEST
    version             INTEGER NOT NULL,
    spec                TEXT NOT NULL,
    version_description TEXT,
    code_sha256         TEXT NOT NULL,
    code_size           INTEGER NOT NULL,
    code_unzipped       INTEGER NOT NULL,
    layers              TEXT NOT NULL,
    revision_id         TEXT NOT NULL,
    last_modified       TEXT NOT NULL,
    state               TEXT NOT NULL,
    last_update_status  TEXT NOT NULL,
    PRIMARY KEY (function, version)
) STRICT;

CREATE TABLE aliases (
    function    TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    description TEXT NOT NULL,
    weights     TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    PRIMARY KEY (function, name)
) STRICT;

CREATE TABLE layers (
    name         TEXT PRIMARY KEY NOT NULL,
    last_version INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE layer_versions (
    layer                    TEXT NOT NULL REFERENCES layers(name),
    version                  INTEGER NOT NULL,
    description              TEXT NOT NULL,
    compatible_runtimes      TEXT NOT NULL,
    compatible_architectures TEXT NOT NULL,
    license_info             TEXT,
    code_sha256              TEXT NOT NULL,
    code_size                INTEGER NOT NULL,
    code_unzipped            INTEGER NOT NULL,
    created_date             TEXT NOT NULL,
    PRIMARY KEY (layer, version)
) STRICT;

CREATE TABLE event_invoke_configs (
    function      TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT NOT NULL,
    config        TEXT NOT NULL,
    last_modified REAL NOT NULL,
    PRIMARY KEY (function, qualifier)
) STRICT;

CREATE TABLE async_events (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    id                 TEXT NOT NULL UNIQUE,
    function           TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier          TEXT NOT NULL,
    payload            BLOB NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    enqueued_at_ms     INTEGER NOT NULL,
    next_attempt_at_ms INTEGER NOT NULL
) STRICT;

CREATE INDEX async_events_due ON async_events (next_attempt_at_ms, seq);
"#;

/// Tags of functions (TagResource), removed with their function.
const V2: &str = r#"
CREATE TABLE function_tags (
    function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (function, key)
) STRICT;
"#;

/// The async queue's leases and failed records (see `events.rs`).
const V3: &str = r#"
ALTER TABLE async_events ADD COLUMN status TEXT NOT NULL DEFAULT 'queued';
ALTER TABLE async_events ADD COLUMN lease_owner TEXT;
ALTER TABLE async_events ADD COLUMN last_error TEXT;
ALTER TABLE async_events ADD COLUMN finished_at_ms INTEGER;
CREATE INDEX async_events_function ON async_events (function, seq);
"#;

/// Function URLs (one per function or alias, found by the URL id of an
/// HTTP request) and schedules; both go with their function.
const V4: &str = r#"
CREATE TABLE function_urls (
    url_id      TEXT PRIMARY KEY NOT NULL,
    function    TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    -- '' for $LATEST, else an alias name
    qualifier   TEXT NOT NULL,
    settings    TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    UNIQUE (function, qualifier)
) STRICT;

CREATE TABLE schedules (
    name       TEXT PRIMARY KEY NOT NULL,
    function   TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    -- '' for $LATEST
    qualifier  TEXT NOT NULL,
    expression TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
"#;

/// File triggers (`lamb trigger add`), removed with their function.
const V5: &str = r#"
CREATE TABLE file_triggers (
    id         TEXT PRIMARY KEY NOT NULL,
    function   TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier  TEXT NOT NULL,
    filesystem TEXT NOT NULL,
    dir        TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    suffix     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
) STRICT;
"#;

/// Event source mappings (RabbitMQ queues), removed with their function.
const V6: &str = r#"
CREATE TABLE event_source_mappings (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid     TEXT NOT NULL UNIQUE,
    function TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    config   TEXT NOT NULL
) STRICT;
"#;

/// Provisioned concurrency configurations (a version number or an alias
/// name as qualifier), removed with their function.
const V7: &str = r#"
CREATE TABLE provisioned_concurrency (
    function      TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    qualifier     TEXT NOT NULL,
    requested     INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (function, qualifier)
) STRICT;
"#;

/// Where each shard of a stream's event source mapping was read to: the
/// sequence number of the last record done with, or `SHARD_END`.
const V8: &str = r#"
CREATE TABLE esm_checkpoints (
    uuid     TEXT NOT NULL REFERENCES event_source_mappings(uuid) ON DELETE CASCADE,
    shard    TEXT NOT NULL,
    sequence TEXT NOT NULL,
    PRIMARY KEY (uuid, shard)
) STRICT;
"#;

/// Documents with a revision (`registry::documents`): resource-based
/// policies, code signing configs and per-function settings.
const V9: &str = r#"
CREATE TABLE function_documents (
    function    TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
    -- 'policy:<qualifier>' ('' unqualified), 'code-signing-config', ...
    kind        TEXT NOT NULL,
    body        TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (function, kind)
) STRICT;

CREATE TABLE documents (
    -- 'layer-policy' (key '<layer>:<version>'), 'code-signing-config' (key its id)
    kind        TEXT NOT NULL,
    key         TEXT NOT NULL,
    body        TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    PRIMARY KEY (key, kind)
) STRICT;
"#;

/// Every migration, in order; the database's `user_version` counts how many
/// have run.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (done, sql) in MIGRATIONS.iter().enumerate().skip(found.max(0) as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", done as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}
