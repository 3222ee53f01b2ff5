//! lamb's store: the content-addressed bundle store ([`CodeStore`], with the
//! safe unpacker in [`unpack`]) and the metadata registry ([`Registry`],
//! implemented by [`SqliteRegistry`]).
//!
//! Data directory layout:
//!
//! ```text
//! lamb.db               the registry (SQLite, WAL)
//! code/<hex sha256>/    unpacked, read-only function code
//! code/<hex sha256>.zip its original zip (Code.Location)
//! layers/<hex sha256>/  unpacked, read-only layer contents (and its .zip)
//! image-layers/<hex>/   unpacked, read-only container image layers (by blob digest)
//! ```
//!
//! A create or update goes: validate (lamb-types), [`CodeStore::put`] (pins
//! the bundle), the registry call, then drop the pin. A crash between the two
//! leaves an unreferenced bundle that [`CodeStore::gc`] removes.

pub mod code_store;
pub mod digest;
pub mod error;
pub mod image;
pub mod registry;
pub mod unpack;

pub use code_store::{BundleKind, CodeStore, GcReport, Pin, Referenced, StoredBundle};
pub use digest::CodeDigest;
pub use error::StoreError;
pub use registry::ProvisionedConcurrencyRecord;
pub use registry::{
    AliasRecord, AliasUpdate, CodeInfo, CodeUpdate, EventInvokeConfigRecord, EventRecord, EventStatus, FunctionRecord,
    LayerVersionRecord, NewAlias, NewEvent, NewFunction, NewLayerVersion, Page, PageRequest, QueuedEvent, Registry,
    ResolvedLayer, SqliteRegistry,
};
pub use registry::{Document, DocumentRegistry, Expect};
pub use registry::{FileTriggerRecord, NewFileTrigger};
pub use registry::{FunctionUrlRecord, ScheduleRecord, TriggerRegistry};
pub use registry::{PostgresRegistry, SqlRegistry};
pub use unpack::{unpack, UnpackError, UnpackLimits, UnpackStats};
