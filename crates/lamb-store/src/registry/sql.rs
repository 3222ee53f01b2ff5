//! The one SQL interface the registry's queries are written against, so
//! that every method's logic (its checks, its errors, its statements) exists
//! once and runs on both engines: SQLite (rusqlite) and PostgreSQL
//! (tokio-postgres, each statement awaited on the engine's runtime from the
//! calling thread: [`PgTransaction`]). It is the small subset of
//! rusqlite's API the queries use: [`Transaction::execute`],
//! [`Transaction::query_row`],
//! [`Transaction::prepare`] + [`Statement::query_map`], [`params!`],
//! [`Row::get`] and [`OptionalExtension::optional`].
//!
//! The statements are written in the SQL both engines share: `?N`
//! placeholders (rewritten to PostgreSQL's `$N` here), `ON CONFLICT` upserts,
//! `RETURNING`, and `CAST(... AS BIGINT)` around sums (PostgreSQL's
//! `SUM(bigint)` is numeric). Integers are BIGINT on PostgreSQL; a `u32` or
//! `usize` parameter or column goes through `i64`, as SQLite stores it.

/// A failure of either engine, or a row that is not there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Postgres(#[from] tokio_postgres::Error),
    #[error("query returned no rows")]
    NoRows,
    #[error("column {0}: {1}")]
    Conversion(usize, String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// One transaction of either engine.
pub enum Transaction<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(PgTransaction<'a>),
}

/// An async tokio-postgres transaction used synchronously, as the queries
/// are written: each statement is a `block_on` on the runtime that drives
/// the connection, from the calling thread, which is never one of that
/// runtime's workers (the engine's callers block: `spawn_blocking` or
/// `block_in_place`). Dropped uncommitted, it rolls back (tokio-postgres
/// queues the `ROLLBACK` without awaiting).
pub struct PgTransaction<'a> {
    pub(crate) tx: tokio_postgres::Transaction<'a>,
    pub(crate) rt: &'a tokio::runtime::Handle,
}

impl PgTransaction<'_> {
    fn execute(&self, sql: &str, values: &[Value]) -> Result<u64> {
        Ok(self
            .rt
            .block_on(self.tx.execute_typed(&dollar_placeholders(sql), &pg_typed(values)))?)
    }

    fn query(&self, sql: &str, values: &[Value]) -> Result<Vec<tokio_postgres::Row>> {
        Ok(self
            .rt
            .block_on(self.tx.query_typed(&dollar_placeholders(sql), &pg_typed(values)))?)
    }
}

impl<'a> Transaction<'a> {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres(_))
    }

    /// Runs a statement; answers how many rows it changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize> {
        match self {
            // Cached: the registry runs the same few statements again and
            // again (each accepted event's insert), and parsing one costs
            // more than running it.
            Self::Sqlite(c) => Ok(c.prepare_cached(sql)?.execute(params.sqlite().as_slice())?),
            Self::Postgres(tx) => Ok(tx.execute(sql, &params.postgres())? as usize),
        }
    }

    /// The first row through `f`; [`Error::NoRows`] when there is none.
    pub fn query_row<T>(&self, sql: &str, params: impl Params, f: impl FnOnce(&Row<'_>) -> Result<T>) -> Result<T> {
        match self {
            Self::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(params.sqlite().as_slice())?;
                match rows.next()? {
                    Some(r) => f(&Row::Sqlite(r)),
                    None => Err(Error::NoRows),
                }
            }
            Self::Postgres(tx) => {
                let rows = tx.query(sql, &params.postgres())?;
                match rows.first() {
                    Some(r) => f(&Row::Postgres(r)),
                    None => Err(Error::NoRows),
                }
            }
        }
    }

    /// A statement to run with [`Statement::query_map`].
    pub fn prepare<'t>(&'t self, sql: &str) -> Result<Statement<'t, 'a>> {
        Ok(Statement {
            tx: self,
            sql: sql.to_owned(),
        })
    }

    /// Every row through `f`, in order.
    fn query_all<T>(&self, sql: &str, params: impl Params, mut f: impl FnMut(&Row<'_>) -> Result<T>) -> Result<Vec<T>> {
        match self {
            Self::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(params.sqlite().as_slice())?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Self::Postgres(tx) => {
                let rows = tx.query(sql, &params.postgres())?;
                rows.iter().map(|r| f(&Row::Postgres(r))).collect()
            }
        }
    }
}

/// A statement of one transaction (its text; both engines cache the plan).
pub struct Statement<'t, 'a> {
    tx: &'t Transaction<'a>,
    sql: String,
}

impl Statement<'_, '_> {
    /// Every row through `f`, collected before it answers (the iterator
    /// rusqlite would give is the queries' only use of it).
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let rows = self.tx.query_all(&self.sql, params, f)?;
        Ok(rows.into_iter().map(Ok).collect::<Vec<_>>().into_iter())
    }
}

/// `?N` to `$N`, outside quoted strings.
fn dollar_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => out.push('$'),
            _ => out.push(c),
        }
    }
    out
}

/// Parameters with their types, so that a statement is parsed, bound and run
/// in one round trip (no separate prepare): a NULL is `unknown`, typed by
/// where it stands, as a literal NULL would be.
fn pg_typed(values: &[Value]) -> Vec<(&(dyn tokio_postgres::types::ToSql + Sync), tokio_postgres::types::Type)> {
    use tokio_postgres::types::Type;
    values
        .iter()
        .map(|v| {
            let ty = match v {
                Value::Null => Type::UNKNOWN,
                Value::Int(_) => Type::INT8,
                Value::Real(_) => Type::FLOAT8,
                Value::Text(_) => Type::TEXT,
                Value::Blob(_) => Type::BYTEA,
            };
            (v as &(dyn tokio_postgres::types::ToSql + Sync), ty)
        })
        .collect()
}

/// One row of either engine.
pub enum Row<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `i` (from 0) as `T`.
    pub fn get<I: Index, T: Column>(&self, i: I) -> Result<T> {
        let i = i.index();
        match self {
            Self::Sqlite(r) => T::from_sqlite(r, i),
            Self::Postgres(r) => T::from_postgres(r, i),
        }
    }
}

/// A column's position (`usize` only, so that `get(0)` infers it).
pub trait Index {
    fn index(self) -> usize;
}

impl Index for usize {
    fn index(self) -> usize {
        self
    }
}

/// A type a column is read as.
pub trait Column: Sized {
    fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self>;
    fn from_postgres(r: &tokio_postgres::Row, i: usize) -> Result<Self>;
}

/// Types both engines read as they are.
macro_rules! column_as_is {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
                Ok(r.get(i)?)
            }
            fn from_postgres(r: &tokio_postgres::Row, i: usize) -> Result<Self> {
                Ok(r.try_get(i)?)
            }
        }
    )*};
}

column_as_is!(
    String,
    i64,
    f64,
    Vec<u8>,
    Option<String>,
    Option<i64>,
    Option<f64>,
    Option<Vec<u8>>
);

/// Integer types that PostgreSQL stores as BIGINT.
macro_rules! column_via_i64 {
    ($($t:ty),*) => {$(
        impl Column for $t {
            fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
                Ok(r.get(i)?)
            }
            fn from_postgres(r: &tokio_postgres::Row, i: usize) -> Result<Self> {
                let n: i64 = r.try_get(i)?;
                <$t>::try_from(n).map_err(|e| Error::Conversion(i, e.to_string()))
            }
        }
        impl Column for Option<$t> {
            fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self> {
                Ok(r.get(i)?)
            }
            fn from_postgres(r: &tokio_postgres::Row, i: usize) -> Result<Self> {
                let n: Option<i64> = r.try_get(i)?;
                n.map(<$t>::try_from).transpose().map_err(|e| Error::Conversion(i, e.to_string()))
            }
        }
    )*};
}

column_via_i64!(u32, u64, i32, usize);

/// A parameter value as PostgreSQL gets it.
#[derive(Debug)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl tokio_postgres::types::ToSql for Value {
    fn to_sql(
        &self,
        ty: &tokio_postgres::types::Type,
        out: &mut tokio_postgres::types::private::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use tokio_postgres::types::Type;
        match self {
            Self::Null => Ok(tokio_postgres::types::IsNull::Yes),
            // A parameter PostgreSQL typed smaller than BIGINT (compared with
            // an INTEGER expression) still gets the value, if it fits.
            Self::Int(n) if *ty == Type::INT4 => i32::try_from(*n)?.to_sql_checked(ty, out),
            Self::Int(n) if *ty == Type::INT2 => i16::try_from(*n)?.to_sql_checked(ty, out),
            Self::Int(n) => n.to_sql_checked(ty, out),
            Self::Real(x) => x.to_sql_checked(ty, out),
            Self::Text(s) => s.to_sql_checked(ty, out),
            Self::Blob(b) => b.to_sql_checked(ty, out),
        }
    }

    fn accepts(_: &tokio_postgres::types::Type) -> bool {
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A value that can be a parameter of either engine.
pub trait Param {
    fn sqlite(&self) -> &dyn rusqlite::ToSql;
    fn postgres(&self) -> Value;
}

impl<T: Param> Param for &T {
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        (**self).sqlite()
    }
    fn postgres(&self) -> Value {
        (**self).postgres()
    }
}

impl<T: Param> Param for Option<T>
where
    Option<T>: rusqlite::ToSql,
{
    fn sqlite(&self) -> &dyn rusqlite::ToSql {
        self
    }
    fn postgres(&self) -> Value {
        self.as_ref().map_or(Value::Null, Param::postgres)
    }
}

macro_rules! param {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {$(
        impl Param for $t {
            fn sqlite(&self) -> &dyn rusqlite::ToSql {
                self
            }
            fn postgres(&self) -> Value {
                let $v = self;
                $e
            }
        }
    )*};
}

param!(
    i64 => |n| Value::Int(*n),
    i32 => |n| Value::Int(i64::from(*n)),
    u32 => |n| Value::Int(i64::from(*n)),
    f64 => |x| Value::Real(*x),
    bool => |b| Value::Int(i64::from(*b)),
    String => |s| Value::Text(s.clone()),
    &str => |s| Value::Text((*s).to_owned()),
    Vec<u8> => |b| Value::Blob(b.clone()),
    &[u8] => |b| Value::Blob(b.to_vec()),
);

/// A statement's parameters: `params![a, b]` or an array of one type.
pub trait Params {
    fn sqlite(&self) -> Vec<&dyn rusqlite::ToSql>;
    fn postgres(&self) -> Vec<Value>;
}

impl Params for &[&dyn Param] {
    fn sqlite(&self) -> Vec<&dyn rusqlite::ToSql> {
        self.iter().map(|p| p.sqlite()).collect()
    }
    fn postgres(&self) -> Vec<Value> {
        self.iter().map(|p| p.postgres()).collect()
    }
}

impl<T: Param, const N: usize> Params for [T; N] {
    fn sqlite(&self) -> Vec<&dyn rusqlite::ToSql> {
        self.iter().map(|p| p.sqlite()).collect()
    }
    fn postgres(&self) -> Vec<Value> {
        self.iter().map(|p| p.postgres()).collect()
    }
}

/// `params![a, b, ...]`, as rusqlite's.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &dyn $crate::registry::sql::Param),*][..] as &[&dyn $crate::registry::sql::Param]
    };
}
pub(crate) use params;

/// `.optional()`: no row is `None`, as rusqlite's.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) | Err(Error::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dollar_placeholders;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(
            dollar_placeholders("SELECT '?x' FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?x' FROM t WHERE a = $1 AND b = $12"
        );
    }
}
