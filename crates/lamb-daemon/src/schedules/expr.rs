//! EventBridge schedule expressions, all in UTC: `rate(N minute|minutes|
//! hour|hours|day|days)` and `cron(minutes hours day-of-month month
//! day-of-week year)` with `*`, `?`, `,`, `-`, `/`, names (`JAN`, `MON`),
//! `L` (last day of the month; `L` or `NL` in day-of-week: the last
//! Saturday or the last day N of the month) and `N#k` (the k-th day N).
//! `W` (nearest weekday) is refused with a clear error.

use time::{Date, Duration, Month, OffsetDateTime, Time};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule expression {expr:?}: {reason}")]
pub struct ExprError {
    pub expr: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfMonth {
    Any,
    Days(Vec<bool>),
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DayOfWeek {
    Any,
    /// Index 1 (Sunday) to 7 (Saturday).
    Days(Vec<bool>),
    /// The last such weekday of the month.
    Last(u8),
    /// The n-th such weekday of the month.
    Nth(u8, u8),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    dom: DayOfMonth,
    months: Vec<bool>,
    dow: DayOfWeek,
    /// Index is year - 1970.
    years: Vec<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Rate(Duration),
    Cron(Box<Cron>),
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: i32 = 1970;
const LAST_YEAR: i32 = 2199;

fn value(tok: &str, min: u32, max: u32, names: &[&str]) -> Result<u32, String> {
    let n = match names.iter().position(|n| n.eq_ignore_ascii_case(tok)) {
        Some(i) => i as u32 + min,
        None => tok.parse::<u32>().map_err(|_| format!("'{tok}' is not a value"))?,
    };
    if n < min || n > max {
        return Err(format!("{n} is outside {min}-{max}"));
    }
    Ok(n)
}

/// A set field: `*`, `a`, `a-b`, each optionally `/step`, comma-separated.
fn set(field: &str, min: u32, max: u32, names: &[&str]) -> Result<Vec<bool>, String> {
    let mut out = vec![false; max as usize + 1];
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or(format!("bad step in '{part}'"))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, min, max, names)?, value(b, min, max, names)?)
        } else {
            let v = value(range, min, max, names)?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo > hi {
            return Err(format!("range '{range}' runs backwards"));
        }
        for v in (lo..=hi).step_by(step as usize) {
            out[v as usize] = true;
        }
    }
    Ok(out)
}

fn parse_cron(body: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [min, hour, dom, month, dow, year] = fields[..] else {
        return Err(format!(
            "cron takes 6 fields (minutes hours day-of-month month day-of-week year), not {}",
            fields.len()
        ));
    };
    if field_has_w(dom) {
        return Err("'W' (nearest weekday) is not supported by lamb".into());
    }
    let dom = match dom {
        "?" => DayOfMonth::Any,
        "L" => DayOfMonth::Last,
        d if d.contains('L') => return Err(format!("day-of-month '{d}': only a lone 'L' is supported")),
        d => DayOfMonth::Days(set(d, 1, 31, &[])?),
    };
    let dow = match dow {
        "?" => DayOfWeek::Any,
        "L" => DayOfWeek::Days({
            let mut v = vec![false; 8];
            v[7] = true;
            v
        }),
        d if d.ends_with('L') => DayOfWeek::Last(value(&d[..d.len() - 1], 1, 7, &DAYS)? as u8),
        d if d.contains('#') => {
            let (day, n) = d.split_once('#').unwrap_or_default();
            let n = n
                .parse::<u8>()
                .ok()
                .filter(|n| (1..=5).contains(n))
                .ok_or(format!("bad '#' in '{d}'"))?;
            DayOfWeek::Nth(value(day, 1, 7, &DAYS)? as u8, n)
        }
        d => DayOfWeek::Days(set(d, 1, 7, &DAYS)?),
    };
    match (&dom, &dow) {
        (DayOfMonth::Any, DayOfWeek::Any) => return Err("day-of-month and day-of-week cannot both be '?'".into()),
        (DayOfMonth::Any, _) | (_, DayOfWeek::Any) => {}
        _ => return Err("one of day-of-month and day-of-week must be '?'".into()),
    }
    let years = set(year, FIRST_YEAR as u32, LAST_YEAR as u32, &[])?.split_off(FIRST_YEAR as usize);
    Ok(Cron {
        minutes: set(min, 0, 59, &[])?,
        hours: set(hour, 0, 23, &[])?,
        dom,
        months: set(month, 1, 12, &MONTHS)?,
        dow,
        years,
    })
}

fn field_has_w(f: &str) -> bool {
    f.contains('W') || f.contains('w')
}

fn parse_rate(body: &str) -> Result<Duration, String> {
    let parts: Vec<&str> = body.split_whitespace().collect();
    let [n, unit] = parts[..] else {
        return Err("rate takes a value and a unit, as rate(5 minutes)".into());
    };
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(format!("'{n}' is not a positive whole number"))?;
    let (one, many, secs) = match unit {
        "minute" | "minutes" => ("minute", "minutes", 60),
        "hour" | "hours" => ("hour", "hours", 3600),
        "day" | "days" => ("day", "days", 86_400),
        other => return Err(format!("unit '{other}' is not minute(s), hour(s) or day(s)")),
    };
    // EventBridge's own rule: singular for 1, plural otherwise.
    if (n == 1 && unit != one) || (n > 1 && unit != many) {
        return Err(format!("write rate({n} {})", if n == 1 { one } else { many }));
    }
    Ok(Duration::seconds(n * secs))
}

impl Schedule {
    pub fn parse(expr: &str) -> Result<Self, ExprError> {
        let fail = |reason: String| ExprError {
            expr: expr.to_owned(),
            reason,
        };
        let e = expr.trim();
        if let Some(body) = e.strip_prefix("rate(").and_then(|b| b.strip_suffix(')')) {
            return parse_rate(body).map(Self::Rate).map_err(fail);
        }
        if let Some(body) = e.strip_prefix("cron(").and_then(|b| b.strip_suffix(')')) {
            return parse_cron(body).map(|c| Self::Cron(Box::new(c))).map_err(fail);
        }
        Err(fail("expected rate(...) or cron(...)".into()))
    }

    /// The first firing strictly after `after`, if there is one.
    pub fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        match self {
            Self::Rate(d) => Some(after + *d),
            Self::Cron(c) => c.next_after(after),
        }
    }
}

fn days_in_month(year: i32, month: Month) -> u8 {
    month.length(year)
}

impl Cron {
    fn day_matches(&self, d: Date) -> bool {
        let year_ok = self
            .years
            .get((d.year() - FIRST_YEAR) as usize)
            .copied()
            .unwrap_or(false);
        if !year_ok || !self.months[u8::from(d.month()) as usize] {
            return false;
        }
        let last = days_in_month(d.year(), d.month());
        let wd = d.weekday().number_from_sunday();
        match (&self.dom, &self.dow) {
            (DayOfMonth::Days(days), DayOfWeek::Any) => days[d.day() as usize],
            (DayOfMonth::Last, DayOfWeek::Any) => d.day() == last,
            (DayOfMonth::Any, DayOfWeek::Days(days)) => days[wd as usize],
            (DayOfMonth::Any, DayOfWeek::Last(w)) => wd == *w && d.day() + 7 > last,
            (DayOfMonth::Any, DayOfWeek::Nth(w, n)) => wd == *w && (d.day() - 1) / 7 + 1 == *n,
            _ => false,
        }
    }

    fn next_after(&self, after: OffsetDateTime) -> Option<OffsetDateTime> {
        let after = after.to_offset(time::UtcOffset::UTC);
        let mut day = after.date();
        while day.year() <= LAST_YEAR {
            if self.day_matches(day) {
                for h in 0..24u8 {
                    if !self.hours[h as usize] {
                        continue;
                    }
                    for m in 0..60u8 {
                        if !self.minutes[m as usize] {
                            continue;
                        }
                        let t = day.with_time(Time::from_hms(h, m, 0).ok()?).assume_utc();
                        if t > after {
                            return Some(t);
                        }
                    }
                }
            }
            day = day.next_day()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn next(expr: &str, after: OffsetDateTime) -> OffsetDateTime {
        Schedule::parse(expr).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn rates() {
        let t = datetime!(2026-11-26 10:00:30 UTC);
        assert_eq!(next("rate(5 minutes)", t), datetime!(2026-11-26 10:05:30 UTC));
        assert_eq!(next("rate(1 day)", t), datetime!(2026-11-27 10:00:30 UTC));
        for bad in [
            "rate(1 minutes)",
            "rate(2 minute)",
            "rate(0 minutes)",
            "rate(5 weeks)",
            "rate(x)",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn crons() {
        let t = datetime!(2026-11-26 10:07:00 UTC); // a Thursday
        assert_eq!(next("cron(0/15 * * * ? *)", t), datetime!(2026-11-26 10:15:00 UTC));
        assert_eq!(next("cron(0 12 * * ? *)", t), datetime!(2026-11-26 12:00:00 UTC));
        assert_eq!(next("cron(0 8 ? * MON-FRI *)", t), datetime!(2026-11-27 08:00:00 UTC));
        assert_eq!(next("cron(0 0 L * ? *)", t), datetime!(2026-11-30 00:00:00 UTC));
        assert_eq!(next("cron(0 0 ? * 6L *)", t), datetime!(2026-11-27 00:00:00 UTC));
        assert_eq!(next("cron(0 0 ? * 2#1 *)", t), datetime!(2026-12-07 00:00:00 UTC));
        assert_eq!(
            next("cron(30 9 1 JAN,JUL ? 2027)", t),
            datetime!(2027-01-01 09:30:00 UTC)
        );
        assert_eq!(Schedule::parse("cron(0 0 1 1 ? 2020)").unwrap().next_after(t), None);
        for bad in [
            "cron(0 0 * * * *)",
            "cron(0 0 ? * ? *)",
            "cron(0 0 15W * ? *)",
            "cron(60 0 * * ? *)",
            "cron(0 0 * *)",
            "cron(5-1 0 * * ? *)",
            "every day",
        ] {
            assert!(Schedule::parse(bad).is_err(), "{bad} accepted");
        }
    }
}
