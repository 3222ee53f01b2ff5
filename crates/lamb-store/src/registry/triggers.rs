//! Records of what invokes a function from outside the API: function URLs
//! and schedules.

use super::{Page, PageRequest};
use crate::error::StoreError;
use lamb_types::timefmt::lambda_timestamp;
use lamb_types::{ArnContext, FunctionUrlConfig, FunctionUrlSettings, Qualifier, UpdateFunctionUrlConfigRequest};

/// A function URL: its id (the host's first label) and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionUrlRecord {
    /// 32 lower-case letters and digits, as Lambda's.
    pub url_id: String,
    pub function: String,
    /// The alias the URL invokes, or `None` for `$LATEST`.
    pub qualifier: Option<String>,
    pub settings: FunctionUrlSettings,
    pub creation_time: time::OffsetDateTime,
    pub last_modified_time: time::OffsetDateTime,
}

impl FunctionUrlRecord {
    /// Lambda's `https://<url-id>.lambda-url.<region>.on.aws/` shape; lamb
    /// serves the same id on its URL listener.
    pub fn function_url(&self, ctx: &ArnContext) -> String {
        format!("https://{}.lambda-url.{}.on.aws/", self.url_id, ctx.region)
    }

    pub fn function_arn(&self, ctx: &ArnContext) -> String {
        match &self.qualifier {
            None => ctx.function_arn(&self.function),
            Some(a) => ctx.qualified_function_arn(&self.function, &Qualifier::Alias(a.clone())),
        }
    }

    /// The wire shape; Create's answer has no `LastModifiedTime`.
    pub fn configuration(&self, ctx: &ArnContext, with_last_modified: bool) -> FunctionUrlConfig {
        FunctionUrlConfig {
            function_url: self.function_url(ctx),
            function_arn: self.function_arn(ctx),
            auth_type: self.settings.auth_type,
            cors: self.settings.cors.clone(),
            creation_time: lambda_timestamp(self.creation_time),
            last_modified_time: with_last_modified.then(|| lambda_timestamp(self.last_modified_time)),
            invoke_mode: self.settings.invoke_mode,
        }
    }
}

/// A schedule: a `rate(...)` or `cron(...)` expression that invokes a
/// function asynchronously at each firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRecord {
    pub name: String,
    pub function: String,
    /// An alias or version, or `None` for `$LATEST`.
    pub qualifier: Option<String>,
    /// The expression as given; parsed by the daemon.
    pub expression: String,
    pub created_ms: i64,
}

/// The registry's part for function URLs and schedules; a supertrait of
/// [`super::Registry`], so every registry has it.
pub trait TriggerRegistry {
    /// Creates the URL of `$LATEST` (`qualifier` `None`) or of an alias.
    fn create_function_url(
        &self,
        function: &str,
        qualifier: Option<&str>,
        settings: &FunctionUrlSettings,
        url_id: &str,
    ) -> Result<FunctionUrlRecord, StoreError>;
    fn get_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<FunctionUrlRecord, StoreError>;
    fn update_function_url(
        &self,
        function: &str,
        qualifier: Option<&str>,
        update: &UpdateFunctionUrlConfigRequest,
    ) -> Result<FunctionUrlRecord, StoreError>;
    fn delete_function_url(&self, function: &str, qualifier: Option<&str>) -> Result<(), StoreError>;
    fn list_function_urls(&self, function: &str, page: PageRequest<'_>) -> Result<Page<FunctionUrlRecord>, StoreError>;
    /// The URL an HTTP request names by its id, if there is one.
    fn function_url_by_id(&self, url_id: &str) -> Result<Option<FunctionUrlRecord>, StoreError>;

    /// Adds a schedule, or replaces the one of that name.
    fn put_schedule(&self, schedule: &ScheduleRecord) -> Result<(), StoreError>;
    /// Every schedule, by name.
    fn list_schedules(&self) -> Result<Vec<ScheduleRecord>, StoreError>;
    fn delete_schedule(&self, name: &str) -> Result<(), StoreError>;
}
