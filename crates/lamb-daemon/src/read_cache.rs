//! What an invocation reads from the registry (the version a qualifier
//! names, an alias's weights, the concurrency settings, an async event's
//! invoke configuration), kept between
//! invocations so that a warm invoke makes no registry round trip: on
//! PostgreSQL each read is a round trip to the database (docs/registry.md).
//!
//! Every entry is kept under the registry's generation
//! (`Registry::generation`), which every write through this node bumps at
//! once and every write through another node bumps once PostgreSQL has
//! announced it: an entry of an older generation is never served. A registry
//! that cannot tell (a shared one whose listener is disconnected) is read
//! through. Errors are not kept: a missing function is read again.

use lamb_store::{AliasRecord, FunctionRecord, Registry, StoreError};
use lamb_types::{ErrorKind, PutFunctionEventInvokeConfigRequest, Qualifier};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Past this many entries the cache starts again (a bound, not a policy:
/// an invocation's reads are a handful per function).
const MAX_ENTRIES: usize = 4096;

/// The registry's per-invocation reads, by what was asked.
#[derive(Debug, Default)]
pub struct ReadCache {
    entries: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    generation: u64,
    map: HashMap<Key, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Function(String, Qualifier),
    Alias(String, String),
    Reserved(String),
    /// The reserved and provisioned-unreserved totals of the account.
    Pool,
    EventConfig(String, Qualifier),
}

#[derive(Debug, Clone)]
enum Value {
    Function(Box<FunctionRecord>),
    Alias(AliasRecord),
    Reserved(Option<u32>),
    Pool(u64),
    EventConfig(PutFunctionEventInvokeConfigRequest),
}

impl ReadCache {
    /// `Registry::get_function`.
    pub fn function(&self, reg: &dyn Registry, name: &str, q: &Qualifier) -> Result<FunctionRecord, StoreError> {
        let key = Key::Function(name.to_owned(), q.clone());
        self.cached(
            reg,
            key,
            || reg.get_function(name, q),
            |r| Value::Function(Box::new(r)),
            |v| match v {
                Value::Function(r) => Some(*r),
                _ => None,
            },
        )
    }

    /// `Registry::get_alias`.
    pub fn alias(&self, reg: &dyn Registry, function: &str, name: &str) -> Result<AliasRecord, StoreError> {
        let key = Key::Alias(function.to_owned(), name.to_owned());
        self.cached(
            reg,
            key,
            || reg.get_alias(function, name),
            Value::Alias,
            |v| match v {
                Value::Alias(r) => Some(r),
                _ => None,
            },
        )
    }

    /// `Registry::get_reserved_concurrency`.
    pub fn reserved(&self, reg: &dyn Registry, function: &str) -> Result<Option<u32>, StoreError> {
        let key = Key::Reserved(function.to_owned());
        let read = || reg.get_reserved_concurrency(function);
        self.cached(reg, key, read, Value::Reserved, |v| match v {
            Value::Reserved(n) => Some(n),
            _ => None,
        })
    }

    /// The account's reserved concurrency plus the provisioned concurrency
    /// of unreserved functions: what the unreserved pool loses.
    pub fn pool(&self, reg: &dyn Registry) -> Result<u64, StoreError> {
        let read = || Ok(reg.total_reserved_concurrency(None)? + reg.total_provisioned_unreserved(None)?);
        self.cached(reg, Key::Pool, read, Value::Pool, |v| match v {
            Value::Pool(n) => Some(n),
            _ => None,
        })
    }

    /// The event invoke configuration of `function:q`, the defaults when it
    /// has none (`Registry::get_event_invoke_config`): read for every async
    /// event the worker runs, so that absence is kept too.
    pub fn event_config(
        &self,
        reg: &dyn Registry,
        function: &str,
        q: &Qualifier,
    ) -> Result<PutFunctionEventInvokeConfigRequest, StoreError> {
        let key = Key::EventConfig(function.to_owned(), q.clone());
        let read = || match reg.get_event_invoke_config(function, q) {
            Ok(c) => Ok(c.config),
            Err(e) if e.to_lambda().kind == ErrorKind::ResourceNotFound => Ok(Default::default()),
            Err(e) => Err(e),
        };
        self.cached(reg, key, read, Value::EventConfig, |v| match v {
            Value::EventConfig(c) => Some(c),
            _ => None,
        })
    }

    /// What [`ReadCache::function`] gives when it needs no read; `None`
    /// where it would read. The `peek_` lookups are for a caller that must
    /// not wait on the registry (an async task: a warm invocation prepared
    /// without a hop to the blocking pool).
    pub fn peek_function(&self, reg: &dyn Registry, name: &str, q: &Qualifier) -> Option<FunctionRecord> {
        self.peek(reg, &Key::Function(name.to_owned(), q.clone()))
            .and_then(|v| match v {
                Value::Function(r) => Some(*r),
                _ => None,
            })
    }

    /// [`ReadCache::alias`] without a read.
    pub fn peek_alias(&self, reg: &dyn Registry, function: &str, name: &str) -> Option<AliasRecord> {
        self.peek(reg, &Key::Alias(function.to_owned(), name.to_owned()))
            .and_then(|v| match v {
                Value::Alias(r) => Some(r),
                _ => None,
            })
    }

    /// [`ReadCache::reserved`] without a read.
    pub fn peek_reserved(&self, reg: &dyn Registry, function: &str) -> Option<Option<u32>> {
        self.peek(reg, &Key::Reserved(function.to_owned()))
            .and_then(|v| match v {
                Value::Reserved(n) => Some(n),
                _ => None,
            })
    }

    /// [`ReadCache::pool`] without a read.
    pub fn peek_pool(&self, reg: &dyn Registry) -> Option<u64> {
        self.peek(reg, &Key::Pool).and_then(|v| match v {
            Value::Pool(n) => Some(n),
            _ => None,
        })
    }

    /// The entry under `key` if it is of the registry's generation now (a
    /// registry that cannot tell has none).
    fn peek(&self, reg: &dyn Registry, key: &Key) -> Option<Value> {
        self.lookup(reg.generation()?, key)
    }

    fn cached<T: Clone>(
        &self,
        reg: &dyn Registry,
        key: Key,
        read: impl FnOnce() -> Result<T, StoreError>,
        wrap: impl FnOnce(T) -> Value,
        unwrap: impl FnOnce(Value) -> Option<T>,
    ) -> Result<T, StoreError> {
        // The generation before the read: a write that commits meanwhile
        // bumps it, so what this read found is dropped at the next lookup.
        let Some(generation) = reg.generation() else {
            return read();
        };
        if let Some(hit) = self.lookup(generation, &key).and_then(unwrap) {
            return Ok(hit);
        }
        let value = read()?;
        self.insert(generation, key, wrap(value.clone()));
        Ok(value)
    }

    fn lookup(&self, generation: u64, key: &Key) -> Option<Value> {
        let mut e = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if e.generation != generation {
            e.map.clear();
            e.generation = generation;
        }
        e.map.get(key).cloned()
    }

    fn insert(&self, generation: u64, key: Key, value: Value) {
        let mut e = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Another thread saw a newer generation: this read may be stale.
        if e.generation != generation {
            return;
        }
        if e.map.len() >= MAX_ENTRIES {
            e.map.clear();
        }
        e.map.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lamb_store::{CodeDigest, CodeInfo, NewFunction, SqliteRegistry};
    use lamb_types::{ArnContext, FunctionSpec};

    fn spec(memory: u32) -> FunctionSpec {
        FunctionSpec {
            role: "arn:aws:iam::123456789012:role/r".into(),
            runtime: Some("provided.al2023".into()),
            handler: Some("bootstrap".into()),
            memory_size: memory,
            ..Default::default()
        }
    }

    fn create(reg: &dyn Registry) {
        reg.create_function(NewFunction {
            name: "f".into(),
            spec: spec(256),
            code: CodeInfo {
                digest: CodeDigest::of(b"f"),
                code_size: 1,
                unzipped_size: 1,
            },
            publish: false,
        })
        .unwrap();
    }

    #[test]
    fn a_write_through_the_registry_is_seen_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
        let reg: &dyn Registry = &reg;
        let cache = ReadCache::default();
        let latest = Qualifier::latest();
        let missing = cache.function(reg, "f", &latest).unwrap_err();
        assert!(matches!(missing, StoreError::Lambda(_)), "{missing:?}");
        create(reg);
        // The missing function was not kept.
        let first = cache.function(reg, "f", &latest).unwrap();
        assert_eq!(first.spec.memory_size, 256);
        assert_eq!(cache.function(reg, "f", &latest).unwrap(), first);
        assert_eq!(cache.reserved(reg, "f").unwrap(), None);
        assert_eq!(cache.pool(reg).unwrap(), 0);

        reg.update_function_configuration("f", spec(512), None).unwrap();
        reg.put_reserved_concurrency("f", 7).unwrap();
        assert_eq!(cache.function(reg, "f", &latest).unwrap().spec.memory_size, 512);
        assert_eq!(cache.reserved(reg, "f").unwrap(), Some(7));
        assert_eq!(cache.pool(reg).unwrap(), 7);
    }

    /// A registry in a directory of its own, holding function `f`.
    fn registry_with_f() -> (tempfile::TempDir, SqliteRegistry) {
        let dir = tempfile::tempdir().unwrap();
        let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
        create(&reg);
        (dir, reg)
    }

    #[test]
    fn an_event_configuration_and_its_absence_are_kept_until_a_write() {
        let (_dir, reg) = registry_with_f();
        let reg: &dyn Registry = &reg;
        let cache = ReadCache::default();
        let latest = Qualifier::latest();
        let none = cache.event_config(reg, "f", &latest).unwrap();
        assert_eq!(none, PutFunctionEventInvokeConfigRequest::default());
        let config = PutFunctionEventInvokeConfigRequest {
            maximum_retry_attempts: Some(0),
            ..Default::default()
        };
        reg.put_event_invoke_config("f", &latest, &config, false).unwrap();
        assert_eq!(cache.event_config(reg, "f", &latest).unwrap(), config);
    }

    #[test]
    fn a_peek_never_reads_and_sees_only_the_generation_now() {
        let (_dir, reg) = registry_with_f();
        let reg: &dyn Registry = &reg;
        let cache = ReadCache::default();
        let latest = Qualifier::latest();
        // Nothing read yet: a peek does not read it.
        assert!(cache.peek_function(reg, "f", &latest).is_none());
        assert!(cache.peek_reserved(reg, "f").is_none());
        assert!(cache.peek_pool(reg).is_none());
        let read = cache.function(reg, "f", &latest).unwrap();
        cache.reserved(reg, "f").unwrap();
        cache.pool(reg).unwrap();
        assert_eq!(cache.peek_function(reg, "f", &latest), Some(read));
        assert_eq!(cache.peek_reserved(reg, "f"), Some(None));
        assert_eq!(cache.peek_pool(reg), Some(0));
        // A write: what was kept is of an older generation.
        reg.put_reserved_concurrency("f", 7).unwrap();
        assert!(cache.peek_function(reg, "f", &latest).is_none());
        assert!(cache.peek_reserved(reg, "f").is_none());
        assert!(cache.peek_alias(reg, "f", "live").is_none());
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
        let reg: &dyn Registry = &reg;
        let cache = ReadCache::default();
        create(reg);
        let before = reg.generation().unwrap();
        // A read made at `before`, answered after a write committed and a
        // newer lookup moved the cache on: dropped, never served.
        reg.put_reserved_concurrency("f", 1).unwrap();
        let now = reg.generation().unwrap();
        assert_ne!(before, now);
        assert!(cache.lookup(now, &Key::Pool).is_none());
        cache.insert(before, Key::Pool, Value::Pool(0));
        assert!(cache.lookup(now, &Key::Pool).is_none());
        assert_eq!(cache.pool(reg).unwrap(), 1);
    }

    /// What a hit costs (the same on either engine: a hit reads only the
    /// generation, an atomic). A measurement, not a check (`--ignored
    /// --nocapture`; docs/benchmarks.md).
    #[test]
    #[ignore]
    fn measure_a_hit() {
        let dir = tempfile::tempdir().unwrap();
        let reg = SqliteRegistry::open_in(dir.path(), ArnContext::default()).unwrap();
        let reg: &dyn Registry = &reg;
        let cache = ReadCache::default();
        create(reg);
        let latest = Qualifier::latest();
        let mut times: Vec<f64> = (0..2000)
            .map(|_| {
                let t = std::time::Instant::now();
                cache.function(reg, "f", &latest).unwrap();
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "cached get_function p50 {:.1} us, p99 {:.1} us",
            times[1000], times[1980]
        );
    }
}
