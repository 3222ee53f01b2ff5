//! The numeric limits validation enforces, with Lambda's defaults (spec 4).
//! A daemon may change them in its configuration.

/// Smallest `MemorySize` in MB.
pub const MIN_MEMORY_MB: u32 = 128;
/// `Timeout` when none is given, in seconds.
pub const DEFAULT_TIMEOUT_S: u32 = 3;
/// `MemorySize` when none is given, in MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// `EphemeralStorage.Size` when none is given, and its smallest value, in MB.
pub const DEFAULT_EPHEMERAL_MB: u32 = 512;
/// Largest `EphemeralStorage.Size` in MB.
pub const MAX_EPHEMERAL_MB: u32 = 10_240;

/// Limits a daemon enforces; [`Limits::default`] is Lambda's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest `MemorySize` in MB (128–3008 in 1 MB steps by default).
    pub max_memory_mb: u32,
    /// Largest `Timeout` in seconds.
    pub max_timeout_s: u32,
    /// Largest uploaded bundle (`CodeSizeZipped`).
    pub max_zipped_bytes: u64,
    /// Largest function plus its layers, unpacked (`CodeSizeUnzipped`).
    pub max_unzipped_bytes: u64,
    /// Most entries one bundle may unpack to (files, dirs, links).
    pub max_bundle_entries: u64,
    /// Most layers one function may use.
    pub max_layers: usize,
    /// Largest size of all environment variables together, in bytes.
    pub max_env_bytes: usize,
    /// Largest sum of all stored bundles, zipped (`TotalCodeSize`).
    pub total_code_size: u64,
    /// Account concurrency (`ConcurrentExecutions`).
    pub concurrent_executions: u32,
    /// Concurrency reservations must leave at least this much unreserved.
    pub min_unreserved_concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_memory_mb: 3008,
            max_timeout_s: 900,
            max_zipped_bytes: 52_428_800,
            max_unzipped_bytes: 262_144_000,
            max_bundle_entries: 100_000,
            max_layers: 5,
            max_env_bytes: 4096,
            total_code_size: 80_530_636_800,
            concurrent_executions: 1000,
            min_unreserved_concurrency: 100,
        }
    }
}
