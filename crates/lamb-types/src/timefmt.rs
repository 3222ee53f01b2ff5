//! Lambda's two timestamp encodings: `2020-04-10T19:06:32.563+0000` strings
//! and epoch seconds as JSON numbers (spec 3.1).

use time::format_description::FormatItem;
use time::macros::format_description;
use time::OffsetDateTime;

const LAST_MODIFIED: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]+0000");

/// `LastModified` / `CreatedDate` text: milliseconds, UTC, `+0000`.
pub fn lambda_timestamp(t: OffsetDateTime) -> String {
    let utc = t.to_offset(time::UtcOffset::UTC);
    utc.format(LAST_MODIFIED)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000+0000".to_owned())
}

/// Members typed `timestamp` (event invoke config): fractional epoch seconds.
pub fn epoch_seconds(t: OffsetDateTime) -> f64 {
    (t.unix_timestamp_nanos() / 1_000_000) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_like_lambda() {
        let t = datetime!(2020-04-10 19:06:32.563 UTC);
        assert_eq!(lambda_timestamp(t), "2020-04-10T19:06:32.563+0000");
        let t = datetime!(2020-04-10 21:06:32.5 +02:00);
        assert_eq!(lambda_timestamp(t), "2020-04-10T19:06:32.500+0000");
        assert_eq!(epoch_seconds(datetime!(2019-09-24 00:22:00.333 UTC)), 1569284520.333);
    }
}
