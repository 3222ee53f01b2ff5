//! The registry: functions, versions, aliases, layers, concurrency, async
//! invoke configuration and the async event queue, behind the narrow
//! [`Registry`] trait so that the metadata can later move to a networked
//! store. [`SqliteRegistry`] is the embedded implementation;
//! [`PostgresRegistry`] the shared one of a cluster. Both are one
//! [`SqlRegistry`]: the same queries on two engines.
//!
//! Every method is one transaction. Failures the caller caused come back as
//! [`StoreError::Lambda`] with Lambda's exception (not found, conflict,
//! `RevisionId` mismatch).

mod documents;
mod file_triggers;
mod postgres;
mod provisioned;
mod records;
pub(crate) mod sql;
mod sqlite;
mod triggers;

pub use documents::{Document, DocumentRegistry, Expect};
pub use file_triggers::{FileTriggerRecord, NewFileTrigger};
pub use postgres::{PostgresEngine, PostgresRegistry};
pub use provisioned::ProvisionedConcurrencyRecord;
pub use records::{
    AliasRecord, AliasUpdate, CodeInfo, CodeUpdate, EventInvokeConfigRecord, EventRecord, EventStatus, FunctionRecord,
    LayerVersionRecord, NewAlias, NewEvent, NewFunction, NewLayerVersion, Page, QueuedEvent, ResolvedLayer,
};
pub use sqlite::{Engine, SqlRegistry, SqliteEngine, SqliteRegistry, DB_FILE, SCHEMA_VERSION};
pub use triggers::{FunctionUrlRecord, ScheduleRecord, TriggerRegistry};

use crate::code_store::Referenced;
use crate::error::StoreError;
use lamb_types::{
    LastUpdateStatus, PublishVersionRequest, PutFunctionEventInvokeConfigRequest, Qualifier, State, Version,
};

/// Where a list starts and how long it may be (`Marker`, `MaxItems`).
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest<'a> {
    /// A `NextMarker` from the previous page.
    pub marker: Option<&'a str>,
    /// At most this many items; 0 means the default of 50.
    pub max_items: usize,
}

impl PageRequest<'_> {
    pub(crate) fn limit(&self) -> usize {
        match self.max_items {
            0 => 50,
            n => n.min(10_000),
        }
    }
}

/// The function metadata store. Synchronous: the daemon calls it from
/// `spawn_blocking`.
pub trait Registry: TriggerRegistry + DocumentRegistry + Send + Sync {
    // Functions and versions.

    /// Creates `$LATEST` (and version 1 when `new.publish`); answers with the
    /// published version if one was made, else `$LATEST`.
    fn create_function(&self, new: NewFunction) -> Result<FunctionRecord, StoreError>;
    /// One version: `$LATEST`, a number, or the primary version of an alias.
    fn get_function(&self, name: &str, qualifier: &Qualifier) -> Result<FunctionRecord, StoreError>;
    /// Replaces `$LATEST`'s code (and publishes when asked).
    fn update_function_code(&self, name: &str, update: CodeUpdate) -> Result<FunctionRecord, StoreError>;
    /// Replaces `$LATEST`'s configuration with `spec` (already validated);
    /// `revision_id`, when given, must be `$LATEST`'s current one.
    fn update_function_configuration(
        &self,
        name: &str,
        spec: lamb_types::FunctionSpec,
        revision_id: Option<&str>,
    ) -> Result<FunctionRecord, StoreError>;
    /// Deletes the function with every version and alias, or, with a
    /// version, only that version (refused while an alias routes to it).
    fn delete_function(&self, name: &str, version: Option<u64>) -> Result<(), StoreError>;
    /// `$LATEST` of each function, or every version with `all_versions`.
    fn list_functions(&self, all_versions: bool, page: PageRequest<'_>) -> Result<Page<FunctionRecord>, StoreError>;
    /// Snapshots `$LATEST` as the next version, or answers with the latest
    /// version when nothing changed since it was published.
    fn publish_version(&self, name: &str, req: &PublishVersionRequest) -> Result<FunctionRecord, StoreError>;
    /// `$LATEST` then every published version, in order.
    fn list_versions(&self, name: &str, page: PageRequest<'_>) -> Result<Page<FunctionRecord>, StoreError>;
    /// Sets `State` and `LastUpdateStatus` of one version.
    fn set_function_state(
        &self,
        name: &str,
        version: Version,
        state: State,
        status: LastUpdateStatus,
    ) -> Result<(), StoreError>;
    /// UpdateFunctionCode of an Image function: the new image (its pull not
    /// done yet), `LastUpdateStatus: InProgress`.
    fn update_function_image(
        &self,
        name: &str,
        image: lamb_types::FunctionImage,
        architectures: Option<Vec<lamb_types::Architecture>>,
        revision_id: Option<&str>,
    ) -> Result<FunctionRecord, StoreError>;
    /// Records a pull's outcome on `$LATEST` if its revision is still
    /// `revision_id`; whether it did.
    fn finish_image_pull(
        &self,
        name: &str,
        revision_id: &str,
        outcome: Result<lamb_types::PulledImage, lamb_types::PullFailure>,
    ) -> Result<bool, StoreError>;
    /// `$LATEST` versions whose pull has not finished: (function, revision).
    fn unfinished_image_pulls(&self) -> Result<Vec<(String, String)>, StoreError>;

    // Aliases.

    fn create_alias(&self, function: &str, alias: NewAlias) -> Result<AliasRecord, StoreError>;
    fn get_alias(&self, function: &str, name: &str) -> Result<AliasRecord, StoreError>;
    fn update_alias(&self, function: &str, name: &str, update: AliasUpdate) -> Result<AliasRecord, StoreError>;
    fn delete_alias(&self, function: &str, name: &str) -> Result<(), StoreError>;
    /// Aliases of a function, optionally only those routing to `version`.
    fn list_aliases(
        &self,
        function: &str,
        version: Option<Version>,
        page: PageRequest<'_>,
    ) -> Result<Page<AliasRecord>, StoreError>;

    // Layers.

    fn publish_layer_version(&self, new: NewLayerVersion) -> Result<LayerVersionRecord, StoreError>;
    fn get_layer_version(&self, name: &str, version: u64) -> Result<LayerVersionRecord, StoreError>;
    /// Versions of one layer, newest first.
    fn list_layer_versions(&self, name: &str, page: PageRequest<'_>) -> Result<Page<LayerVersionRecord>, StoreError>;
    /// The newest version of every layer that has one.
    fn list_layers(&self, page: PageRequest<'_>) -> Result<Page<LayerVersionRecord>, StoreError>;
    /// Deletes a layer version; functions using it keep their copy. Deleting
    /// one that does not exist succeeds, as in Lambda.
    fn delete_layer_version(&self, name: &str, version: u64) -> Result<(), StoreError>;

    // Concurrency.

    fn put_reserved_concurrency(&self, function: &str, n: u32) -> Result<(), StoreError>;
    fn get_reserved_concurrency(&self, function: &str) -> Result<Option<u32>, StoreError>;
    fn delete_reserved_concurrency(&self, function: &str) -> Result<(), StoreError>;
    /// Reserved concurrency of all functions but `except`.
    fn total_reserved_concurrency(&self, except: Option<&str>) -> Result<u64, StoreError>;

    // Provisioned concurrency (`qualifier`: a version number or an alias).

    /// Creates or replaces the configuration of an existing function.
    fn put_provisioned_concurrency(
        &self,
        function: &str,
        qualifier: &str,
        requested: u32,
    ) -> Result<ProvisionedConcurrencyRecord, StoreError>;
    fn get_provisioned_concurrency(
        &self,
        function: &str,
        qualifier: &str,
    ) -> Result<Option<ProvisionedConcurrencyRecord>, StoreError>;
    /// Deleting one that is not there succeeds.
    fn delete_provisioned_concurrency(&self, function: &str, qualifier: &str) -> Result<(), StoreError>;
    /// The configurations of `function`, or of every function.
    fn list_provisioned_concurrency(
        &self,
        function: Option<&str>,
    ) -> Result<Vec<ProvisionedConcurrencyRecord>, StoreError>;
    /// Provisioned concurrency of the functions without reserved
    /// concurrency (but `except`): it comes out of the unreserved pool.
    fn total_provisioned_unreserved(&self, except: Option<&str>) -> Result<u64, StoreError>;

    // Async invoke configuration.

    /// Put (`merge == false`: replace) or Update (`merge == true`: given
    /// members replace stored ones) of one qualifier's configuration.
    fn put_event_invoke_config(
        &self,
        function: &str,
        qualifier: &Qualifier,
        config: &PutFunctionEventInvokeConfigRequest,
        merge: bool,
    ) -> Result<EventInvokeConfigRecord, StoreError>;
    fn get_event_invoke_config(
        &self,
        function: &str,
        qualifier: &Qualifier,
    ) -> Result<EventInvokeConfigRecord, StoreError>;
    fn delete_event_invoke_config(&self, function: &str, qualifier: &Qualifier) -> Result<(), StoreError>;
    fn list_event_invoke_configs(
        &self,
        function: &str,
        page: PageRequest<'_>,
    ) -> Result<Page<EventInvokeConfigRecord>, StoreError>;

    // The async event queue.

    /// Stores an event durably; once this returns, a 202 may be answered.
    fn enqueue_event(&self, event: NewEvent) -> Result<QueuedEvent, StoreError>;
    /// Takes up to `max` due events (oldest first) for `owner`, a daemon run:
    /// each becomes `running`, leased until `lease_until_ms`, when it is due
    /// again unless its worker retried or finished it.
    fn claim_events(
        &self,
        owner: &str,
        now_ms: i64,
        lease_until_ms: i64,
        max: usize,
    ) -> Result<Vec<QueuedEvent>, StoreError>;
    /// Makes every event that another owner (an earlier daemon run) leased
    /// due at `now_ms` again: what a crash left running runs again. On
    /// PostgreSQL the other owners are other nodes, alive or not, so only
    /// the earlier runs of `owner`'s node (`<node>/<run>`) are released;
    /// other nodes' leases expire.
    fn release_events(&self, owner: &str, now_ms: i64) -> Result<u64, StoreError>;
    /// When the next queued or leased event is due, if any is.
    fn next_event_due(&self) -> Result<Option<i64>, StoreError>;
    /// Queues an event again for `next_attempt_at_ms`, ending its lease,
    /// with the error of the attempt that failed, if one did.
    fn retry_event(
        &self,
        id: &str,
        attempts: u32,
        next_attempt_at_ms: i64,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Ends an event for good after `attempts` runs, in one transaction with
    /// queueing `then` (the
    /// invocation of a destination): a success is deleted, a failure kept as
    /// `failed` with its error until [`Registry::purge_failed_events`].
    fn finish_event(
        &self,
        id: &str,
        attempts: u32,
        failure: Option<&str>,
        now_ms: i64,
        then: Option<NewEvent>,
    ) -> Result<(), StoreError>;
    /// Deletes the failed events that finished before `before_ms`.
    fn purge_failed_events(&self, before_ms: i64) -> Result<u64, StoreError>;
    /// The queued, running and failed events of a function, oldest first.
    fn list_events(&self, function: &str) -> Result<Vec<EventRecord>, StoreError>;

    // Tags.

    /// Adds or replaces tags of a function.
    fn tag_function(&self, function: &str, tags: &std::collections::BTreeMap<String, String>)
        -> Result<(), StoreError>;
    /// Removes tags by key; absent keys are no error.
    fn untag_function(&self, function: &str, keys: &[String]) -> Result<(), StoreError>;
    fn function_tags(&self, function: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError>;

    /// A number that changes whenever what the registry holds may have
    /// changed (a write through this registry, or through another node
    /// sharing its database, once announced), so that a cache of its reads
    /// may keep what it read at the same number; `None` while it cannot
    /// tell (a shared registry not listening): read through then.
    fn generation(&self) -> Option<u64> {
        None
    }

    // Code accounting.

    /// Every bundle a function version or layer version refers to.
    fn referenced_bundles(&self) -> Result<Referenced, StoreError>;
    /// Sum of `CodeSize` over every version and layer version
    /// (`AccountUsage.TotalCodeSize`).
    fn total_code_size(&self) -> Result<u64, StoreError>;
    /// Keeps an uploaded bundle's bytes where every node can fetch them, by
    /// digest, once (a shared registry); nothing on one box.
    fn share_bundle(
        &self,
        _kind: crate::BundleKind,
        _digest: &crate::CodeDigest,
        _bytes: &[u8],
    ) -> Result<(), StoreError> {
        Ok(())
    }
    /// A bundle's bytes that some node shared, if any.
    fn shared_bundle(
        &self,
        _kind: crate::BundleKind,
        _digest: &crate::CodeDigest,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    /// Deletes the shared bundles no function version, `$LATEST` or layer
    /// version refers to, once `grace` has passed since they were last
    /// shared (so one being created or published meanwhile stays); how
    /// many. Nothing on one box.
    fn collect_shared_bundles(&self, _grace: std::time::Duration) -> Result<u64, StoreError> {
        Ok(0)
    }

    // File triggers.

    /// Stores a file trigger of an existing function.
    fn create_file_trigger(&self, new: NewFileTrigger) -> Result<FileTriggerRecord, StoreError>;
    /// Every file trigger, oldest first.
    fn list_file_triggers(&self) -> Result<Vec<FileTriggerRecord>, StoreError>;
    /// Deletes one by id; not found when there is none.
    fn delete_file_trigger(&self, id: &str) -> Result<(), StoreError>;

    // Event source mappings.

    /// Stores a new mapping (`create`) or replaces one, of `function`.
    fn put_event_source_mapping(
        &self,
        function: &str,
        mapping: &lamb_types::esm::EventSourceMappingConfiguration,
        create: bool,
    ) -> Result<(), StoreError>;
    fn get_event_source_mapping(
        &self,
        uuid: &str,
    ) -> Result<lamb_types::esm::EventSourceMappingConfiguration, StoreError>;
    /// Every mapping, oldest first.
    fn list_event_source_mappings(&self) -> Result<Vec<lamb_types::esm::EventSourceMappingConfiguration>, StoreError>;
    fn delete_event_source_mapping(&self, uuid: &str) -> Result<(), StoreError>;
    /// Sets a mapping's `LastProcessingResult` (one transaction).
    fn set_esm_last_processing_result(&self, uuid: &str, result: &str) -> Result<(), StoreError>;
    /// Records how far a stream mapping's shard was read (replacing the last).
    fn put_esm_checkpoint(&self, uuid: &str, shard: &str, sequence: &str) -> Result<(), StoreError>;
    /// A stream mapping's checkpoints by shard; removed with the mapping.
    fn esm_checkpoints(&self, uuid: &str) -> Result<std::collections::BTreeMap<String, String>, StoreError>;
}
