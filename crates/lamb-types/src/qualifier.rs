//! Qualifiers (`$LATEST`, a version number, an alias name) and function
//! versions, parsed by Lambda's patterns.

use crate::error::LambdaError;
use crate::validate::is_name_char;
use std::fmt;

/// The literal Lambda uses for the unpublished version.
pub const LATEST: &str = "$LATEST";

/// The most characters a qualifier may have.
pub const MAX_QUALIFIER_LEN: usize = 128;

/// A version of a function: `$LATEST` or a published number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    Latest,
    Published(u64),
}

impl Version {
    /// Parses `$LATEST` or a version number.
    pub fn parse(s: &str) -> Result<Self, LambdaError> {
        match Qualifier::parse(s)? {
            Qualifier::Version(v) => Ok(v),
            Qualifier::Alias(_) => Err(LambdaError::validation(format!(
                "1 validation error detected: Value '{s}' at 'functionVersion' failed to \
                 satisfy constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)"
            ))),
        }
    }

    pub fn is_latest(self) -> bool {
        self == Self::Latest
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str(LATEST),
            Self::Published(n) => write!(f, "{n}"),
        }
    }
}

/// What follows a function name: a version or an alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    Version(Version),
    Alias(String),
}

impl Qualifier {
    /// Parses a qualifier by the model's `Qualifier` member (1–128 of
    /// `[a-zA-Z0-9-_$]`, or `$LATEST.PUBLISHED`): `$LATEST`, digits (a
    /// version), else an alias name. A value the pattern allows but no alias
    /// can have (`$latest`) names no function, as on AWS (the recorded
    /// test_function_name_and_qualifier_validation[lowercase_latest_qualifier-*]).
    pub fn parse(s: &str) -> Result<Self, LambdaError> {
        if s.len() > MAX_QUALIFIER_LEN {
            return Err(LambdaError::validation(format!(
                "1 validation error detected: Value '{s}' at 'qualifier' failed to satisfy constraint: \
                 Member must have length less than or equal to {MAX_QUALIFIER_LEN}"
            )));
        }
        if s == LATEST {
            return Ok(Self::Version(Version::Latest));
        }
        if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse::<u64>()
                .map(|n| Self::Version(Version::Published(n)))
                .map_err(|_| bad_qualifier(s));
        }
        let allowed = |c: char| is_name_char(c) || c == '$';
        if s.is_empty() || !(s == "$LATEST.PUBLISHED" || s.chars().all(allowed)) {
            return Err(bad_qualifier(s));
        }
        Ok(Self::Alias(s.to_owned()))
    }

    /// Parses an optional `?Qualifier=`; absent or empty means `$LATEST`.
    pub fn parse_optional(s: Option<&str>) -> Result<Self, LambdaError> {
        match s {
            None | Some("") => Ok(Self::Version(Version::Latest)),
            Some(s) => Self::parse(s),
        }
    }

    pub const fn latest() -> Self {
        Self::Version(Version::Latest)
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Version(v) => v.fmt(f),
            Self::Alias(a) => f.write_str(a),
        }
    }
}

fn bad_qualifier(s: &str) -> LambdaError {
    LambdaError::validation(format!(
        "1 validation error detected: Value '{s}' at 'qualifier' failed to satisfy constraint: \
         Member must satisfy regular expression pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(Qualifier::parse("$LATEST").unwrap(), Qualifier::latest());
        assert_eq!(
            Qualifier::parse("12").unwrap(),
            Qualifier::Version(Version::Published(12))
        );
        assert_eq!(Qualifier::parse("prod").unwrap(), Qualifier::Alias("prod".into()));
        assert_eq!(Qualifier::parse_optional(None).unwrap(), Qualifier::latest());
    }

    #[test]
    fn refuses_bad_qualifiers() {
        for bad in ["", "invalid!", "a b", "a:b", "../x", &"a".repeat(129)] {
            assert!(Qualifier::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Qualifier::parse(&"a".repeat(128)).is_ok());
        // The recorded test_function_name_and_qualifier_validation's texts.
        let long = Qualifier::parse(&"a".repeat(129)).unwrap_err().message;
        assert!(
            long.ends_with("Member must have length less than or equal to 128"),
            "{long}"
        );
        let bad = Qualifier::parse("invalid!").unwrap_err().message;
        assert!(
            bad.ends_with("pattern: \\$(LATEST(\\.PUBLISHED)?)|[a-zA-Z0-9-_$]+"),
            "{bad}"
        );
        // Allowed by the pattern, a name no alias has.
        assert_eq!(Qualifier::parse("$latest").unwrap(), Qualifier::Alias("$latest".into()));
    }

    #[test]
    fn version_round_trips() {
        for v in [Version::Latest, Version::Published(7)] {
            assert_eq!(Version::parse(&v.to_string()).unwrap(), v);
        }
        assert!(Version::parse("prod").is_err());
    }
}
