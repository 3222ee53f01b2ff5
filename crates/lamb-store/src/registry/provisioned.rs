//! Provisioned concurrency configurations: how many sandboxes of a published
//! version or of an alias's version(s) the engine keeps initialised. Only
//! the request is stored; how many are up (`Allocated`, `Status`) is the
//! engine's, and a restarted daemon makes them again from these records.

/// One `PutProvisionedConcurrencyConfig`, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedConcurrencyRecord {
    pub function: String,
    /// A version number or an alias name (never `$LATEST`).
    pub qualifier: String,
    /// `RequestedProvisionedConcurrentExecutions`.
    pub requested: u32,
    /// `LastModified`, in AWS's `2019-11-21T19:32:12+0000` form.
    pub last_modified: String,
}
