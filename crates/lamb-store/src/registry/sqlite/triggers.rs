//! Function URLs and schedules. Both go with their function
//! (`ON DELETE CASCADE`); a URL's alias must exist when the URL is made.

use super::functions::{function_exists, require_function};
use super::{bad_marker, from_json, now, paginate, to_json};
use super::{Engine, SqlRegistry};
use crate::error::StoreError;
use crate::registry::sql::{params, OptionalExtension, Row, Transaction};
use crate::registry::{FunctionUrlRecord, Page, PageRequest, ScheduleRecord, TriggerRegistry};
use lamb_types::{ArnContext, FunctionUrlSettings, LambdaError, Qualifier, UpdateFunctionUrlConfigRequest};
use time::OffsetDateTime;

const URL_COLUMNS: &str = "url_id, function, qualifier, settings, created_ms, modified_ms";

fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn url_row(r: &Row<'_>) -> crate::registry::sql::Result<(FunctionUrlRecord, String)> {
    let qualifier: String = r.get(2)?;
    Ok((
        FunctionUrlRecord {
            url_id: r.get(0)?,
            function: r.get(1)?,
            qualifier: (!qualifier.is_empty()).then_some(qualifier),
            settings: FunctionUrlSettings {
                auth_type: lamb_types::FunctionUrlAuthType::None,
                cors: None,
                invoke_mode: Default::default(),
            },
            creation_time: from_ms(r.get(4)?),
            last_modified_time: from_ms(r.get(5)?),
        },
        r.get(3)?,
    ))
}

fn query_urls(
    tx: &Transaction<'_>,
    where_sql: &str,
    params: impl crate::registry::sql::Params,
) -> Result<Vec<FunctionUrlRecord>, StoreError> {
    let mut stmt = tx.prepare(&format!("SELECT {URL_COLUMNS} FROM function_urls {where_sql}"))?;
    let rows = stmt.query_map(params, url_row)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(mut rec, settings)| {
            rec.settings = from_json("function_urls", &settings)?;
            Ok(rec)
        })
        .collect()
}

/// AWS's texts (test_url_config_exceptions of the recorded answers): a
/// URL config that is not there, whether or not its function is...
fn url_not_found() -> StoreError {
    LambdaError::not_found("The resource you requested does not exist.").into()
}

/// ...and, where an operation needs the function or alias, its absence.
fn url_function_missing() -> StoreError {
    LambdaError::not_found("Function does not exist").into()
}

fn require_url_target(tx: &Transaction<'_>, function: &str, qualifier: Option<&str>) -> Result<(), StoreError> {
    if !function_exists(tx, function)? {
        return Err(url_function_missing());
    }
    if let Some(alias) = qualifier {
        let exists: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM aliases WHERE function = ?1 AND name = ?2",
                params![function, alias],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Err(url_function_missing());
        }
    }
    Ok(())
}

fn find_url(
    tx: &Transaction<'_>,
    function: &str,
    qualifier: Option<&str>,
) -> Result<Option<FunctionUrlRecord>, StoreError> {
    Ok(query_urls(
        tx,
        "WHERE function = ?1 AND qualifier = ?2",
        params![function, qualifier.unwrap_or_default()],
    )?
    .pop())
}

pub(super) fn create_url(
    tx: &Transaction<'_>,
    ctx: &ArnContext,
    function: &str,
    qualifier: Option<&str>,
    settings: &FunctionUrlSettings,
    url_id: &str,
) -> Result<FunctionUrlRecord, StoreError> {
    require_url_target(tx, function, qualifier)?;
    if find_url(tx, function, qualifier)?.is_some() {
        let arn = match qualifier {
            Some(a) => ctx.qualified_function_arn(function, &Qualifier::Alias(a.to_owned())),
            None => ctx.function_arn(function),
        };
        return Err(LambdaError::conflict(format!(
            "Failed to create function url config for [functionArn = {arn}]. Error message:  \
             FunctionUrlConfig exists for this Lambda function"
        ))
        .into());
    }
    let t = now();
    let rec = FunctionUrlRecord {
        url_id: url_id.to_owned(),
        function: function.to_owned(),
        qualifier: qualifier.map(str::to_owned),
        settings: settings.clone(),
        creation_time: t,
        last_modified_time: t,
    };
    tx.execute(
        &format!("INSERT INTO function_urls ({URL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?5)"),
        params![
            rec.url_id,
            rec.function,
            qualifier.unwrap_or_default(),
            to_json(&rec.settings)?,
            to_ms(t)
        ],
    )?;
    Ok(rec)
}

pub(super) fn get_url(
    tx: &Transaction<'_>,
    function: &str,
    qualifier: Option<&str>,
) -> Result<FunctionUrlRecord, StoreError> {
    find_url(tx, function, qualifier)?.ok_or_else(url_not_found)
}

pub(super) fn update_url(
    tx: &Transaction<'_>,
    function: &str,
    qualifier: Option<&str>,
    update: &UpdateFunctionUrlConfigRequest,
) -> Result<FunctionUrlRecord, StoreError> {
    require_url_target(tx, function, qualifier)?;
    let mut rec = get_url(tx, function, qualifier)?;
    update.apply(&mut rec.settings);
    rec.last_modified_time = now();
    tx.execute(
        "UPDATE function_urls SET settings = ?1, modified_ms = ?2 WHERE url_id = ?3",
        params![to_json(&rec.settings)?, to_ms(rec.last_modified_time), rec.url_id],
    )?;
    Ok(rec)
}

pub(super) fn delete_url(tx: &Transaction<'_>, function: &str, qualifier: Option<&str>) -> Result<(), StoreError> {
    let rec = get_url(tx, function, qualifier)?;
    tx.execute("DELETE FROM function_urls WHERE url_id = ?1", params![rec.url_id])?;
    Ok(())
}

pub(super) fn list_urls(
    tx: &Transaction<'_>,
    function: &str,
    page: PageRequest<'_>,
) -> Result<Page<FunctionUrlRecord>, StoreError> {
    require_url_target(tx, function, None)?;
    let limit = page.limit();
    let from = page.marker.unwrap_or_default();
    if from.len() > 128 {
        return Err(bad_marker(from));
    }
    let rows = query_urls(
        tx,
        "WHERE function = ?1 AND qualifier >= ?2 ORDER BY qualifier LIMIT ?3",
        params![function, from, (limit + 1) as i64],
    )?;
    Ok(paginate(rows, limit, |r| r.qualifier.clone().unwrap_or_default()))
}

pub(super) fn url_by_id(tx: &Transaction<'_>, url_id: &str) -> Result<Option<FunctionUrlRecord>, StoreError> {
    Ok(query_urls(tx, "WHERE url_id = ?1", params![url_id])?.pop())
}

const SCHEDULE_COLUMNS: &str = "name, function, qualifier, expression, created_ms";

fn schedule_row(r: &Row<'_>) -> crate::registry::sql::Result<ScheduleRecord> {
    let qualifier: String = r.get(2)?;
    Ok(ScheduleRecord {
        name: r.get(0)?,
        function: r.get(1)?,
        qualifier: (!qualifier.is_empty()).then_some(qualifier),
        expression: r.get(3)?,
        created_ms: r.get(4)?,
    })
}

pub(super) fn put_schedule(tx: &Transaction<'_>, ctx: &ArnContext, s: &ScheduleRecord) -> Result<(), StoreError> {
    require_function(tx, ctx, &s.function)?;
    tx.execute(
        &format!(
            "INSERT INTO schedules ({SCHEDULE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (name) DO UPDATE SET function = excluded.function, qualifier = excluded.qualifier, \
             expression = excluded.expression, created_ms = excluded.created_ms"
        ),
        params![
            s.name,
            s.function,
            s.qualifier.as_deref().unwrap_or_default(),
            s.expression,
            s.created_ms
        ],
    )?;
    Ok(())
}

pub(super) fn list_schedules(tx: &Transaction<'_>) -> Result<Vec<ScheduleRecord>, StoreError> {
    let mut stmt = tx.prepare(&format!("SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY name"))?;
    let rows = stmt
        .query_map(params![], schedule_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn delete_schedule(tx: &Transaction<'_>, name: &str) -> Result<(), StoreError> {
    if tx.execute("DELETE FROM schedules WHERE name = ?1", params![name])? == 0 {
        return Err(LambdaError::not_found(format!("Schedule not found: {name}")).into());
    }
    Ok(())
}

impl<E: Engine> TriggerRegistry for SqlRegistry<E> {
    fn create_function_url(
        &self,
        function: &str,
        qualifier: Option<&str>,
        settings: &FunctionUrlSettings,
        url_id: &str,
    ) -> Result<FunctionUrlRecord, StoreError> {
        self.write(|tx, ctx| create_url(tx, ctx, function, qualifier, settings, url_id))
    }

    fn get_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<FunctionUrlRecord, StoreError> {
        self.read(|tx, _| get_url(tx, function, qualifier))
    }

    fn update_function_url(
        &self,
        function: &str,
        qualifier: Option<&str>,
        update: &UpdateFunctionUrlConfigRequest,
    ) -> Result<FunctionUrlRecord, StoreError> {
        self.write(|tx, _| update_url(tx, function, qualifier, update))
    }

    fn delete_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<(), StoreError> {
        self.write(|tx, _| delete_url(tx, function, qualifier))
    }

    fn list_function_urls(&self, function: &str, page: PageRequest<'_>) -> Result<Page<FunctionUrlRecord>, StoreError> {
        self.read(|tx, _| list_urls(tx, function, page))
    }

    fn function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlRecord>, StoreError> {
        self.read(|tx, _| url_by_id(tx, url_id))
    }

    fn put_schedule(&self, schedule: &ScheduleRecord) -> Result<(), StoreError> {
        self.write(|tx, ctx| put_schedule(tx, ctx, schedule))
    }

    fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError> {
        self.read(|tx, _| list_schedules(tx))
    }

    fn delete_schedule(&self, name: &str) -> Result<(), StoreError> {
        self.write(|tx, _| delete_schedule(tx, name))
    }
}
