//! A registry in a temporary directory and functions to fill it with.

use lamb_store::{CodeDigest, CodeInfo, FunctionRecord, NewFunction, Registry, SqliteRegistry};
use lamb_types::{ArnContext, FunctionSpec};

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
pub fn create(reg: &SqliteRegistry, name: &str, publish: bool) -> FunctionRecord {
    reg.create_function(NewFunction {
        name: name.into(),
        spec: spec(),
        code: code(name),
        publish,
    })
    .unwrap()
}
