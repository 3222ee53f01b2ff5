//! [`DocumentRegistry`] in two tables: `function_documents` (removed with
//! their function) and `documents`.

use super::functions::require_function;
use super::{Engine, SqlRegistry};
use crate::error::StoreError;
use crate::registry::documents::{Document, DocumentRegistry, Expect};
use crate::registry::sql::{params, OptionalExtension, Transaction};
use lamb_types::LambdaError;

/// The table and key columns a document lives under.
struct Place<'a> {
    table: &'static str,
    owner_col: &'static str,
    owner: &'a str,
    kind: &'a str,
}

const FUNCTIONS: (&str, &str) = ("function_documents", "function");
const OTHERS: (&str, &str) = ("documents", "key");

impl<'a> Place<'a> {
    fn new((table, owner_col): (&'static str, &'static str), owner: &'a str, kind: &'a str) -> Self {
        Self {
            table,
            owner_col,
            owner,
            kind,
        }
    }

    fn get(&self, tx: &Transaction<'_>) -> Result<Option<Document>, StoreError> {
        let sql = format!(
            "SELECT body, revision_id FROM {} WHERE {} = ?1 AND kind = ?2",
            self.table, self.owner_col
        );
        Ok(tx
            .query_row(&sql, params![self.owner, self.kind], |r| {
                Ok(Document {
                    body: r.get(0)?,
                    revision_id: r.get(1)?,
                })
            })
            .optional()?)
    }

    fn put(&self, tx: &Transaction<'_>, body: Option<&str>, expect: Expect<'_>) -> Result<Option<String>, StoreError> {
        let current = self.get(tx)?;
        if let Expect::Revision(want) = expect {
            if current.as_ref().map(|d| d.revision_id.as_str()) != want {
                return Err(LambdaError::revision_mismatch().into());
            }
        }
        let Some(body) = body else {
            let sql = format!("DELETE FROM {} WHERE {} = ?1 AND kind = ?2", self.table, self.owner_col);
            tx.execute(&sql, params![self.owner, self.kind])?;
            return Ok(None);
        };
        let revision = uuid::Uuid::new_v4().to_string();
        let sql = format!(
            "INSERT INTO {t} ({o}, kind, body, revision_id, created_ms) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT ({o}, kind) DO UPDATE SET body = excluded.body, revision_id = excluded.revision_id",
            t = self.table,
            o = self.owner_col
        );
        let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
        tx.execute(&sql, params![self.owner, self.kind, body, revision, now as i64])?;
        Ok(Some(revision))
    }
}

fn rows(
    tx: &Transaction<'_>,
    sql: &str,
    params: impl crate::registry::sql::Params,
) -> Result<Vec<(String, Document)>, StoreError> {
    let mut stmt = tx.prepare(sql)?;
    let rows = stmt.query_map(params, |r| {
        Ok((
            r.get::<_, String>(0)?,
            Document {
                body: r.get(1)?,
                revision_id: r.get(2)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

impl<E: Engine> DocumentRegistry for SqlRegistry<E> {
    fn function_document(&self, function: &str, kind: &str) -> Result<Option<Document>, StoreError> {
        self.read(|tx, ctx| {
            require_function(tx, ctx, function)?;
            Place::new(FUNCTIONS, function, kind).get(tx)
        })
    }

    fn put_function_document(
        &self,
        function: &str,
        kind: &str,
        body: Option<&str>,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StoreError> {
        self.write(|tx, ctx| {
            require_function(tx, ctx, function)?;
            Place::new(FUNCTIONS, function, kind).put(tx, body, expect)
        })
    }

    fn functions_with_document(&self, kind: &str, body: &str) -> Result<Vec<String>, StoreError> {
        self.read(|tx, _| {
            let mut stmt =
                tx.prepare("SELECT function FROM function_documents WHERE kind = ?1 AND body = ?2 ORDER BY function")?;
            let rows = stmt.query_map(params![kind, body], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    fn function_documents(&self, function: &str, prefix: &str) -> Result<Vec<(String, Document)>, StoreError> {
        self.read(|tx, ctx| {
            require_function(tx, ctx, function)?;
            rows(
                tx,
                "SELECT kind, body, revision_id FROM function_documents \
                 WHERE function = ?1 AND substr(kind, 1, length(CAST(?2 AS TEXT))) = ?2 ORDER BY kind",
                params![function, prefix],
            )
        })
    }

    fn document(&self, kind: &str, key: &str) -> Result<Option<Document>, StoreError> {
        self.read(|tx, _| Place::new(OTHERS, key, kind).get(tx))
    }

    fn put_document(
        &self,
        kind: &str,
        key: &str,
        body: Option<&str>,
        expect: Expect<'_>,
    ) -> Result<Option<String>, StoreError> {
        self.write(|tx, _| Place::new(OTHERS, key, kind).put(tx, body, expect))
    }

    fn documents(&self, kind: &str) -> Result<Vec<(String, Document)>, StoreError> {
        self.read(|tx, _| {
            rows(
                tx,
                "SELECT key, body, revision_id FROM documents WHERE kind = ?1 ORDER BY created_ms, key",
                params![kind],
            )
        })
    }
}

/// Deletes the documents of one layer version (its policy) in the
/// transaction that deletes the version.
pub(super) fn delete_layer_version_documents(tx: &Transaction<'_>, key: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM documents WHERE key = ?1", [key])?;
    Ok(())
}

/// Deletes a function's documents of one qualifier (kinds `<what>:<qualifier>`,
/// such as its policy) with the version or alias they belong to.
pub(super) fn delete_qualifier_documents(
    tx: &Transaction<'_>,
    function: &str,
    qualifier: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "DELETE FROM function_documents WHERE function = ?1 \
         AND length(kind) > length(CAST(?2 AS TEXT)) + 1 \
         AND substr(kind, length(kind) - length(CAST(?2 AS TEXT))) = ':' || ?2",
        params![function, qualifier],
    )?;
    Ok(())
}
