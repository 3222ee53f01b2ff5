//! Small JSON documents the registry keeps beside functions and layers,
//! each with a `RevisionId`: resource-based policies (a function's per
//! qualifier, a layer version's), code signing configs and a function's
//! settings that have their own operations (its code signing config, its
//! recursion and runtime management configs).
//!
//! The store only keeps them and compares revisions; what a document means
//! (a policy's statements, a config's members) is the daemon's.

use crate::error::StoreError;

/// A stored document and the revision it was written as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub body: String,
    pub revision_id: String,
}

/// What a write expects to replace: `Any` overwrites whatever is there;
/// `Revision` replaces only that revision (`None`: only when there is no
/// document yet), else `PreconditionFailedException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect<'a> {
    Any,
    Revision(Option<&'a str>),
}

/// Documents of a function (gone with it; a kind `<what>:<qualifier>` goes
/// with that version or alias) and of other resources, found by `kind` and
/// `key`.
pub trait DocumentRegistry {
    /// A function's document of `kind`; not found when the function is not.
    fn function_document(&self, function: &str, kind: &str) -> Result<Option<Document>, StoreError>;
    /// Writes (`Some`) or deletes (`None`) a function's document of `kind`;
    /// answers the new revision (`None` after a delete).
    fn put_function_document(
        &self,
        function: &str,
        kind: &str,
        body: Option<&str>,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StoreError>;
    /// The functions whose document of `kind` is exactly `body`, by name.
    fn functions_with_document(&self, kind: &str, body: &str) -> Result<Vec<String>, StoreError>;
    /// Every function document of `kind` whose kind starts with `prefix`
    /// (a policy per qualifier), as `(kind, document)`.
    fn function_documents(&self, function: &str, prefix: &str) -> Result<Vec<(String, Document)>, StoreError>;

    /// A document of another resource (a layer version's policy, a code
    /// signing config).
    fn document(&self, kind: &str, key: &str) -> Result<Option<Document>, StoreError>;
    /// Writes or deletes one; answers the new revision as above.
    fn put_document(
        &self,
        kind: &str,
        key: &str,
        body: Option<&str>,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StoreError>;
    /// Every document of `kind`, oldest first, as `(key, document)`.
    fn documents(&self, kind: &str) -> Result<Vec<(String, Document)>, StoreError>;
}
