//! Lambda's managed runtime identifiers and AWS's deprecation schedule.
//!
//! Lambda deprecates a runtime in steps: from its deprecation date it is
//! unsupported, from its block-create date CreateFunction refuses it, and
//! from its block-update date UpdateFunctionConfiguration and
//! UpdateFunctionCode refuse functions that use it. Functions already
//! created keep running. The dates are those of AWS's tables "Supported
//! runtimes" and "Deprecated runtimes" in
//! <https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html>, as
//! revised in June 2026 (AWS moved most block dates to 2027-02-01 and
//! 2027-03-03), taken from the machine-readable copy AWS's cfn-lint keeps
//! (`src/cfnlint/data/AdditionalSpecs/LmbdRuntimeLifecycle.json`, 2026-06-02).

// Days are written yyyy_mm_dd, which reads as a date.
#![allow(clippy::inconsistent_digit_grouping)]

use crate::error::LambdaError;

/// A calendar day as `yyyymmdd` (e.g. `20260203`), so that days compare as
/// numbers.
pub type Day = u32;

/// One runtime identifier and its deprecation dates (`None`: none announced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeInfo {
    pub name: &'static str,
    pub deprecated: Option<Day>,
    pub block_create: Option<Day>,
    pub block_update: Option<Day>,
}

const fn rt(name: &'static str, deprecated: Day, block_create: Day, block_update: Day) -> RuntimeInfo {
    RuntimeInfo {
        name,
        deprecated: Some(deprecated),
        block_create: Some(block_create),
        block_update: Some(block_update),
    }
}

/// The identifiers CreateFunction's `Runtime` enum takes, in the order AWS
/// lists them in its validation message, with AWS's dates.
pub const RUNTIMES: &[RuntimeInfo] = &[
    rt("nodejs20.x", 2026_04_30, 2027_02_01, 2027_03_03),
    rt("python3.14", 2029_06_30, 2029_07_31, 2029_08_31),
    rt("provided.al2023", 2029_06_30, 2029_07_31, 2029_08_31),
    rt("python3.12", 2028_10_31, 2028_11_30, 2029_01_10),
    rt("python3.13", 2029_06_30, 2029_07_31, 2029_08_31),
    rt("nodejs24.x", 2028_04_30, 2028_06_01, 2028_07_01),
    rt("nodejs22.x", 2027_04_30, 2027_06_01, 2027_07_01),
    rt("java25", 2029_06_30, 2029_07_31, 2029_08_31),
    rt("python3.10", 2026_10_31, 2027_02_01, 2027_03_03),
    rt("python3.11", 2027_06_30, 2027_07_31, 2027_08_31),
    rt("java21", 2029_06_30, 2029_07_31, 2029_08_31),
    rt("ruby3.3", 2027_03_31, 2027_04_30, 2027_05_31),
    rt("ruby3.4", 2028_03_31, 2028_04_30, 2028_05_31),
    rt("ruby3.2", 2026_03_31, 2027_02_01, 2027_03_03),
    rt("python3.8", 2024_10_14, 2027_02_01, 2027_03_03),
    rt("python3.9", 2025_12_15, 2027_02_01, 2027_03_03),
    rt("java17", 2027_06_30, 2027_07_31, 2027_08_31),
    rt("nodejs16.x", 2024_06_12, 2027_02_01, 2027_03_03),
    rt("dotnet10", 2028_11_14, 2028_12_14, 2029_01_15),
    rt("dotnet8", 2026_11_10, 2027_02_01, 2027_03_03),
    rt("java11", 2027_06_30, 2027_07_31, 2027_08_31),
    rt("dotnet6", 2024_12_20, 2027_02_01, 2027_03_03),
    rt("nodejs18.x", 2025_09_01, 2027_02_01, 2027_03_03),
    rt("provided.al2", 2026_07_31, 2027_02_01, 2027_03_03),
    rt("java8.al2", 2027_06_30, 2027_07_31, 2027_08_31),
];

/// Identifiers no longer in the enum, all past their block-create date, that
/// AWS answers with its deprecation error rather than the enum's (lamb
/// serves `provided` as an alias of `provided.al2023`).
const RETIRED: &[RuntimeInfo] = &[
    rt("dotnetcore1.0", 2019_06_27, 2019_06_30, 2019_07_30),
    rt("dotnetcore2.0", 2019_05_30, 2019_04_30, 2019_05_30),
    rt("dotnetcore2.1", 2022_01_05, 2022_01_05, 2022_04_13),
    rt("dotnetcore3.1", 2023_04_03, 2023_04_03, 2023_05_03),
    rt("go1.x", 2024_01_08, 2024_02_08, 2027_03_03),
    rt("java8", 2024_01_08, 2024_02_08, 2027_03_03),
    rt("nodejs", 2016_08_30, 2016_09_30, 2016_10_31),
    rt("nodejs10.x", 2021_07_30, 2021_07_30, 2022_02_14),
    rt("nodejs12.x", 2023_03_31, 2023_03_31, 2023_04_30),
    rt("nodejs14.x", 2023_12_04, 2024_01_09, 2027_03_03),
    rt("nodejs4.3", 2020_03_05, 2020_02_03, 2020_03_05),
    rt("nodejs4.3-edge", 2020_03_05, 2019_03_31, 2019_04_30),
    rt("nodejs6.10", 2019_08_12, 2019_07_12, 2019_08_12),
    rt("nodejs8.10", 2020_03_06, 2020_02_04, 2020_03_06),
    rt("provided", 2024_01_08, 2024_02_08, 2027_03_03),
    rt("python2.7", 2021_07_15, 2021_07_15, 2022_05_30),
    rt("python3.6", 2022_07_18, 2022_07_18, 2022_08_29),
    rt("python3.7", 2023_12_04, 2024_01_09, 2027_03_03),
    rt("ruby2.5", 2021_07_30, 2021_07_30, 2022_03_31),
    rt("ruby2.7", 2023_12_07, 2024_01_09, 2027_03_03),
];

/// What a request does with a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// CreateFunction.
    Create,
    /// UpdateFunctionConfiguration or UpdateFunctionCode.
    Update,
}

/// Whether the deprecation schedule is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deprecation {
    /// Refuse past the block dates, as of this day (UTC).
    Enforce { today: Day },
    /// `lamb serve --allow-deprecated-runtimes`: never refuse.
    Allow,
}

impl Deprecation {
    /// Enforced as of the current UTC day.
    pub fn enforce_now() -> Self {
        Deprecation::Enforce {
            today: day_of(time::OffsetDateTime::now_utc().date()),
        }
    }
}

/// `date` as a [`Day`].
pub fn day_of(date: time::Date) -> Day {
    date.year() as u32 * 10_000 + u8::from(date.month()) as u32 * 100 + date.day() as u32
}

/// The schedule of `name`, an enum identifier or a retired one.
pub fn lookup(name: &str) -> Option<&'static RuntimeInfo> {
    RUNTIMES.iter().chain(RETIRED).find(|r| r.name == name)
}

/// The identifiers of CreateFunction's enum, in AWS's order.
pub fn enum_names() -> impl Iterator<Item = &'static str> {
    RUNTIMES.iter().map(|r| r.name)
}

/// AWS's refusal of `change` with `runtime` past its block date, if it is.
pub fn check_deprecation(runtime: &str, change: Change, policy: Deprecation) -> Result<(), LambdaError> {
    let Deprecation::Enforce { today } = policy else {
        return Ok(());
    };
    let Some(info) = lookup(runtime) else {
        return Ok(());
    };
    let block = match change {
        Change::Create => info.block_create,
        Change::Update => info.block_update,
    };
    if block.is_some_and(|d| today >= d) {
        return Err(LambdaError::invalid_parameter(format!(
            "The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda \
             functions. We recommend you use a supported runtime while creating or updating functions."
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn at(today: Day) -> Deprecation {
        Deprecation::Enforce { today }
    }

    #[test]
    fn nodejs18_blocks_create_then_update() {
        // Deprecated since 2025-09-01, but still created until 2027-02-01.
        assert!(check_deprecation("nodejs18.x", Change::Create, at(2026_12_01)).is_ok());
        assert!(check_deprecation("nodejs18.x", Change::Create, at(2027_01_31)).is_ok());
        let e = check_deprecation("nodejs18.x", Change::Create, at(2027_02_01)).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
        assert_eq!(
            e.message,
            "The runtime parameter of nodejs18.x is no longer supported for creating or updating AWS Lambda \
             functions. We recommend you use a supported runtime while creating or updating functions."
        );
        assert!(check_deprecation("nodejs18.x", Change::Update, at(2027_03_02)).is_ok());
        assert!(check_deprecation("nodejs18.x", Change::Update, at(2027_03_03)).is_err());
    }

    #[test]
    fn allow_never_refuses_and_current_runtimes_pass() {
        assert!(check_deprecation("provided", Change::Update, Deprecation::Allow).is_ok());
        // Amazon Linux 1's provided: no new functions since 2024-02-08.
        assert!(check_deprecation("provided", Change::Create, at(2026_12_01)).is_err());
        assert!(check_deprecation("provided", Change::Update, at(2026_12_01)).is_ok());
        assert!(check_deprecation("python3.6", Change::Update, at(2026_12_01)).is_err());
        for rt in [
            "python3.13",
            "python3.14",
            "nodejs22.x",
            "nodejs24.x",
            "java21",
            "ruby3.3",
            "provided.al2023",
        ] {
            assert!(check_deprecation(rt, Change::Create, at(2026_12_01)).is_ok(), "{rt}");
        }
        // Not Lambda's: no schedule, left to the enum check.
        assert!(check_deprecation("cobol1.0", Change::Create, at(2026_12_01)).is_ok());
    }

    #[test]
    fn schedule_is_ordered_and_days_are_real() {
        for r in RUNTIMES.iter().chain(RETIRED) {
            let days = [r.deprecated, r.block_create, r.block_update].map(|d| d.unwrap());
            // (Some of the oldest were blocked before their deprecation date.)
            assert!(days[1] <= days[2], "{}", r.name);
            for d in days {
                let month = time::Month::try_from((d / 100 % 100) as u8).unwrap();
                assert!(time::Date::from_calendar_date((d / 10_000) as i32, month, (d % 100) as u8).is_ok());
            }
        }
        let date = time::Date::from_calendar_date(2026, time::Month::February, 3).unwrap();
        assert_eq!(day_of(date), 2026_02_03);
    }
}
