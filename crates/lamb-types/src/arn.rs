//! ARNs: building them from an [`ArnContext`] and parsing the function and
//! layer references that requests carry (spec 3.3).

use crate::error::LambdaError;
use crate::qualifier::{Qualifier, Version};
use crate::validate::{is_name_char, validate_function_name, validate_layer_name};

/// The partition, region and account every ARN lamb makes is built in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnContext {
    pub partition: String,
    pub region: String,
    pub account: String,
}

impl Default for ArnContext {
    fn default() -> Self {
        Self::new("aws", "us-east-1", "000000000000")
    }
}

impl ArnContext {
    pub fn new(partition: &str, region: &str, account: &str) -> Self {
        Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
        }
    }

    fn prefix(&self) -> String {
        format!("arn:{}:lambda:{}:{}", self.partition, self.region, self.account)
    }

    /// `arn:aws:lambda:<region>:<account>:function:<name>`
    pub fn function_arn(&self, name: &str) -> String {
        format!("{}:function:{name}", self.prefix())
    }

    /// The function ARN with `:<qualifier>` appended (also for `$LATEST`).
    pub fn qualified_function_arn(&self, name: &str, qualifier: &Qualifier) -> String {
        format!("{}:{qualifier}", self.function_arn(name))
    }

    /// `FunctionArn` of a configuration: unqualified for `$LATEST`, as Lambda
    /// shows it, and qualified with the number for a published version.
    pub fn version_arn(&self, name: &str, version: Version) -> String {
        match version {
            Version::Latest => self.function_arn(name),
            Version::Published(n) => format!("{}:{n}", self.function_arn(name)),
        }
    }

    /// `arn:aws:lambda:<region>:<account>:layer:<name>`
    pub fn layer_arn(&self, name: &str) -> String {
        format!("{}:layer:{name}", self.prefix())
    }

    /// `arn:aws:lambda:<region>:<account>:layer:<name>:<version>`
    pub fn layer_version_arn(&self, name: &str, version: u64) -> String {
        format!("{}:{version}", self.layer_arn(name))
    }
}

/// A function named in a request: a plain name, a partial ARN or a full ARN,
/// each optionally followed by `:<qualifier>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<Qualifier>,
    /// The region a full ARN names, if the name is one.
    pub region: Option<String>,
    /// The account a full or partial ARN names, if the name is one.
    pub account: Option<String>,
}

/// Longest `FunctionName` on the Get/Invoke/Delete paths.
pub const MAX_NAMESPACED_FUNCTION_NAME_LEN: usize = 256;
/// Longest `FunctionName` on the Create/Update paths.
pub const MAX_FUNCTION_NAME_ARG_LEN: usize = 140;

impl FunctionRef {
    /// Parses a `FunctionName` as the Get, Invoke and Delete paths take it.
    /// The region and account of an ARN are kept for [`Self::ensure_local`].
    pub fn parse(input: &str) -> Result<Self, LambdaError> {
        Self::parse_as(input, NAMESPACED_PATTERN)
    }

    /// [`Self::parse`], a bad name answered with the model's `pattern`.
    fn parse_as(input: &str, pattern: &str) -> Result<Self, LambdaError> {
        let bad_function_name = |input: &str| bad_function_name(input, pattern);
        if input.len() > MAX_NAMESPACED_FUNCTION_NAME_LEN {
            return Err(bad_function_name(input));
        }
        let parts: Vec<&str> = input.split(':').collect();
        let dots = pattern == NAMESPACED_PATTERN;
        let m = match_name(&parts, Stage::Arn, dots, NameParts::default()).ok_or_else(|| bad_function_name(input))?;
        let qualifier = m.qualifier.map(Qualifier::parse).transpose()?;
        Ok(Self {
            name: m.name.to_owned(),
            qualifier,
            region: m.region.map(str::to_owned),
            account: m.account.map(str::to_owned),
        })
    }

    /// Parses a `FunctionName` with the request's `Qualifier` member, as
    /// Get, Invoke and Delete take them: every constraint either breaks is
    /// answered together, as AWS does (the recorded
    /// test_function_name_and_qualifier_validation), before a qualifier the
    /// name carries is compared with the member's.
    pub fn parse_qualified(input: &str, query: Option<&str>) -> Result<(Self, Qualifier), LambdaError> {
        let fref = Self::parse(input);
        let member = query.filter(|q| !q.is_empty()).map(Qualifier::parse).transpose();
        match (fref, member) {
            (Ok(fref), Ok(_)) => {
                let q = fref.merge_qualifier(query)?;
                Ok((fref, q))
            }
            (fref, member) => {
                crate::validate::together([member.err(), fref.err()].into_iter().flatten().collect())?;
                unreachable!("together answers Err for one error or more")
            }
        }
    }

    /// Refuses a function of another region or account, as Lambda does
    /// (test_get_function_wrong_region and test_function_arns of the
    /// recorded answers): another region's is not found, another
    /// account's is denied. A name without them is local.
    pub fn ensure_local(&self, ctx: &ArnContext) -> Result<(), LambdaError> {
        if let Some(region) = self.region.as_deref().filter(|r| *r != ctx.region) {
            return Err(LambdaError::not_found(format!(
                "Functions from '{region}' are not reachable in this region ('{}')",
                ctx.region
            )));
        }
        if let Some(account) = self.account.as_deref().filter(|a| *a != ctx.account) {
            return Err(LambdaError::access_denied(format!(
                "Functions of account '{account}' are not reachable from account '{}'",
                ctx.account
            )));
        }
        Ok(())
    }

    /// Parses a `FunctionName` of CreateFunction and the Update paths: at most
    /// 140 characters and no qualifier.
    pub fn parse_unqualified(input: &str) -> Result<String, LambdaError> {
        if input.len() > MAX_FUNCTION_NAME_ARG_LEN {
            return Err(LambdaError::validation(format!(
                "1 validation error detected: Value '{input}' at 'functionName' failed to satisfy \
                 constraint: Member must have length less than or equal to {MAX_FUNCTION_NAME_ARG_LEN}"
            )));
        }
        let r = Self::parse_as(input, FUNCTION_NAME_PATTERN)?;
        if r.qualifier.is_some() {
            return Err(bad_function_name(input, FUNCTION_NAME_PATTERN));
        }
        validate_function_name(&r.name)?;
        Ok(r.name)
    }

    /// The qualifier from the name, else the one from `?Qualifier=`; both
    /// given and different is an error, as in Lambda.
    pub fn merge_qualifier(&self, query: Option<&str>) -> Result<Qualifier, LambdaError> {
        let from_query = match query {
            None | Some("") => None,
            Some(q) => Some(Qualifier::parse(q)?),
        };
        match (&self.qualifier, from_query) {
            (Some(a), Some(b)) if *a != b => Err(LambdaError::invalid_parameter(
                "The derived qualifier from the function name does not match the specified qualifier.",
            )),
            (Some(a), _) => Ok(a.clone()),
            (None, Some(b)) => Ok(b),
            (None, None) => Ok(Qualifier::latest()),
        }
    }
}

/// What the model's `FunctionName` pattern matched.
#[derive(Debug, Clone, Copy, Default)]
struct NameParts<'a> {
    region: Option<&'a str>,
    account: Option<&'a str>,
    name: &'a str,
    qualifier: Option<&'a str>,
}

/// The optional prefixes of the pattern, in order:
/// `(arn:(aws[a-zA-Z-]*)?:lambda:)?(<region>:)?(\d{12}:)?(function:)?`.
#[derive(Debug, Clone, Copy)]
enum Stage {
    Arn,
    Region,
    Account,
    Function,
    Name,
}

/// Matches the `:`-separated parts of a `FunctionName` as the model's
/// pattern does, a regex's way: each optional prefix taken where it fits,
/// given up where the rest then fails, and the name with an optional
/// qualifier last (`[a-zA-Z0-9-_]+` with `.` where `dots`, then
/// `:($LATEST(.PUBLISHED)?|[a-zA-Z0-9-_]+)`). So
/// `arn:aws:lambda:<region>:<account>:function` names a function called
/// `function`, as on AWS.
fn match_name<'a>(parts: &[&'a str], stage: Stage, dots: bool, found: NameParts<'a>) -> Option<NameParts<'a>> {
    let first = parts.first().copied().unwrap_or_default();
    let (taken, next, with) = match stage {
        Stage::Arn => {
            let ok = parts.len() > 3 && first == "arn" && is_partition(parts[1]) && parts[2] == "lambda";
            (ok.then_some(3), Stage::Region, found)
        }
        Stage::Region => (
            is_region(first).then_some(1),
            Stage::Account,
            NameParts {
                region: Some(first),
                ..found
            },
        ),
        Stage::Account => (
            is_account(first).then_some(1),
            Stage::Function,
            NameParts {
                account: Some(first),
                ..found
            },
        ),
        Stage::Function => ((first == "function").then_some(1), Stage::Name, found),
        Stage::Name => return name_and_qualifier(parts, dots, found),
    };
    taken
        .filter(|n| parts.len() > *n)
        .and_then(|n| match_name(&parts[n..], next, dots, with))
        .or_else(|| match_name(parts, next, dots, found))
}

/// The pattern's tail: `<name>(:<qualifier>)?`.
fn name_and_qualifier<'a>(parts: &[&'a str], dots: bool, found: NameParts<'a>) -> Option<NameParts<'a>> {
    let name_ok = |s: &str| !s.is_empty() && s.chars().all(|c| is_name_char(c) || (dots && c == '.'));
    let qualifier_ok = |s: &str| {
        s == "$LATEST" || (dots && s == "$LATEST.PUBLISHED") || (!s.is_empty() && s.chars().all(is_name_char))
    };
    match parts {
        [name] if name_ok(name) => Some(NameParts { name, ..found }),
        [name, q] if name_ok(name) && qualifier_ok(q) => Some(NameParts {
            name,
            qualifier: Some(q),
            ..found
        }),
        _ => None,
    }
}

/// `(aws[a-zA-Z-]*)?`
fn is_partition(s: &str) -> bool {
    s.is_empty() || (s.starts_with("aws") && s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-'))
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}`, the model's
/// region (so `invalid-region` is refused, as on AWS).
fn is_region(s: &str) -> bool {
    let lower = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_lowercase());
    let plain = |s: &str| {
        let tokens: Vec<&str> = s.split('-').collect();
        let (area, rest) = match tokens[..] {
            [area, kind, place, n] if kind == "gov" || (kind.starts_with("iso") && kind.len() <= 4 && lower(kind)) => {
                (area, [place, n])
            }
            [area, place, n] => (area, [place, n]),
            _ => return false,
        };
        area.len() == 2
            && lower(area)
            && lower(rest[0])
            && rest[1].len() == 1
            && rest[1].bytes().all(|b| b.is_ascii_digit())
    };
    plain(s) || s.strip_prefix("eusc-").is_some_and(plain)
}

/// The `FunctionName` pattern the model gives CreateFunction and the
/// operations on an unqualified function.
const FUNCTION_NAME_PATTERN: &str =
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?\
     (\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?";

/// The one it gives Get, Invoke and Delete (the recorded
/// test_function_name_and_qualifier_validation and test_invalid_invoke).
const NAMESPACED_PATTERN: &str =
    "(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:)?\
     (\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?";

fn bad_function_name(input: &str, pattern: &str) -> LambdaError {
    LambdaError::validation(format!(
        "1 validation error detected: Value '{input}' at 'functionName' failed to satisfy \
         constraint: Member must satisfy regular expression pattern: {pattern}"
    ))
}

/// A layer version ARN, `arn:<partition>:lambda:<region>:<account>:layer:<name>:<n>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayerVersionArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
    pub version: u64,
}

/// The model's pattern of a layer version ARN, as AWS quotes it.
pub const LAYER_VERSION_ARN_PATTERN: &str =
    "(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:\
     [a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)";

/// Longest layer (version) ARN Lambda takes.
pub const MAX_LAYER_ARN_LEN: usize = 140;

impl LayerVersionArn {
    pub fn parse(input: &str) -> Result<Self, LambdaError> {
        Self::parse_at(input, "layers")
    }

    /// [`Self::parse`] of the member `field`: a function's `layers` (the
    /// model's short pattern) or GetLayerVersionByArn's `arn` (its own,
    /// as the recorded test_layer_exceptions quotes it).
    pub fn parse_at(input: &str, field: &str) -> Result<Self, LambdaError> {
        let pattern = if field == "arn" {
            LAYER_VERSION_ARN_PATTERN
        } else {
            "arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+"
        };
        let bad = || {
            LambdaError::validation(format!(
                "1 validation error detected: Value '{input}' at '{field}' failed to satisfy \
                 constraint: Member must satisfy regular expression pattern: {pattern}"
            ))
        };
        let parts: Vec<&str> = input.split(':').collect();
        let [arn, partition, lambda, region, account, layer, name, version] = parts[..] else {
            return Err(bad());
        };
        let ok = input.len() <= MAX_LAYER_ARN_LEN
            && arn == "arn"
            && is_arn_word(partition)
            && lambda == "lambda"
            && is_arn_word(region)
            && is_account(account)
            && layer == "layer"
            && !name.is_empty()
            && name.chars().all(is_name_char)
            && !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(bad());
        }
        Ok(Self {
            partition: partition.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            name: name.to_owned(),
            version: version.parse().map_err(|_| bad())?,
        })
    }

    /// Whether this ARN names a layer of this box's account and region.
    pub fn is_local(&self, ctx: &ArnContext) -> bool {
        self.partition == ctx.partition && self.region == ctx.region && self.account == ctx.account
    }
}

impl std::fmt::Display for LayerVersionArn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "arn:{}:lambda:{}:{}:layer:{}:{}",
            self.partition, self.region, self.account, self.name, self.version
        )
    }
}

fn is_arn_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Parses a `LayerName` path member: a plain name or a layer ARN.
pub fn parse_layer_name(input: &str) -> Result<String, LambdaError> {
    let parts: Vec<&str> = input.split(':').collect();
    let name = match parts[..] {
        [name] => name,
        ["arn", partition, "lambda", region, account, "layer", name]
            if is_arn_word(partition) && is_arn_word(region) && is_account(account) =>
        {
            name
        }
        _ => "",
    };
    if input.len() > MAX_LAYER_ARN_LEN {
        return Err(LambdaError::validation(format!(
            "1 validation error detected: Value '{input}' at 'layerName' failed to satisfy \
             constraint: Member must have length less than or equal to {MAX_LAYER_ARN_LEN}"
        )));
    }
    validate_layer_name(name).map_err(|_| {
        LambdaError::validation(format!(
            "1 validation error detected: Value '{input}' at 'layerName' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: \
             (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{{12}}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
        ))
    })?;
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn r(name: &str, q: Option<&str>) -> FunctionRef {
        FunctionRef {
            name: name.into(),
            qualifier: q.map(|q| Qualifier::parse(q).unwrap()),
            region: None,
            account: None,
        }
    }

    fn at(mut r: FunctionRef, region: Option<&str>, account: &str) -> FunctionRef {
        r.region = region.map(Into::into);
        r.account = Some(account.into());
        r
    }

    /// test_lambda_api::TestLambdaFunction::test_get_function_wrong_region and
    /// ::test_function_arns (`function_arn_other_account_exc`).
    #[test]
    fn another_regions_or_accounts_function_is_not_local() {
        let ctx = ArnContext::default();
        let here = FunctionRef::parse("arn:aws:lambda:us-east-1:000000000000:function:f").unwrap();
        assert_eq!(here.ensure_local(&ctx), Ok(()));
        assert_eq!(
            FunctionRef::parse("000000000000:function:f")
                .unwrap()
                .ensure_local(&ctx),
            Ok(())
        );
        let e = FunctionRef::parse("arn:aws:lambda:eu-central-1:000000000000:function:f")
            .unwrap()
            .ensure_local(&ctx)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::ResourceNotFound);
        assert_eq!(
            e.message,
            "Functions from 'eu-central-1' are not reachable in this region ('us-east-1')"
        );
        let e = FunctionRef::parse("123456789012:function:f")
            .unwrap()
            .ensure_local(&ctx)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::AccessDenied);
    }

    #[test]
    fn builds_arns() {
        let ctx = ArnContext::default();
        assert_eq!(
            ctx.function_arn("f"),
            "arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        assert_eq!(
            ctx.version_arn("f", Version::Published(3)),
            "arn:aws:lambda:us-east-1:000000000000:function:f:3"
        );
        assert_eq!(ctx.version_arn("f", Version::Latest), ctx.function_arn("f"));
        assert_eq!(
            ctx.qualified_function_arn("f", &Qualifier::latest()),
            "arn:aws:lambda:us-east-1:000000000000:function:f:$LATEST"
        );
        assert_eq!(
            ctx.layer_version_arn("l", 2),
            "arn:aws:lambda:us-east-1:000000000000:layer:l:2"
        );
    }

    #[test]
    fn parses_every_function_name_form() {
        let cases = [
            ("f", r("f", None)),
            ("f:prod", r("f", Some("prod"))),
            ("f:$LATEST", r("f", Some("$LATEST"))),
            ("123456789012:function:f", at(r("f", None), None, "123456789012")),
            ("123456789012:function:f:7", at(r("f", Some("7")), None, "123456789012")),
            (
                "us-east-1:123456789012:function:f",
                at(r("f", None), Some("us-east-1"), "123456789012"),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f",
                at(r("f", None), Some("us-east-1"), "123456789012"),
            ),
            (
                "arn:aws:lambda:eu-west-1:123456789012:function:f:a",
                at(r("f", Some("a")), Some("eu-west-1"), "123456789012"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(FunctionRef::parse(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn refuses_malformed_function_names() {
        let bad = [
            "",
            "a b",
            "f:",
            "f:a:b",
            "arn:aws:lambda:us-east-1:12:function:f",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "12345678901:function:f",
            "arn:aws:lambda:invalid-region:123456789012:function:f",
            "arn:aws:lambda::123456789012:function:f",
            "arn:aws:lambda:us-east-1::function:f",
            "arn:aws:lambda:us-east-1:123456789012:function:f:1:2",
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATES",
            "function:f:$LATEST:extra",
            "invalid-account:function:f",
            "*",
        ];
        for input in bad {
            assert!(FunctionRef::parse(input).is_err(), "{input:?} accepted");
        }
    }

    /// test_lambda_api::TestLambdaFunction::test_function_name_and_qualifier_validation
    /// [function_name_too_long-get_function] and test_function_arns
    /// (`long_function_name_exc`): a name over 64 characters names no
    /// function on the Get paths, and CreateFunction refuses it with Lambda's
    /// own `InvalidParameterValueException`.
    #[test]
    fn a_long_name_is_missing_on_get_and_refused_on_create() {
        let long = "f".repeat(65);
        assert_eq!(FunctionRef::parse(&long).unwrap().name, long);
        let e = FunctionRef::parse_unqualified(&long).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
        assert!(
            e.message.ends_with("Member must have length less than or equal to 64"),
            "{e}"
        );
        // The Get paths' pattern allows dots: a name no function has.
        assert_eq!(FunctionRef::parse("a.b").unwrap().name, "a.b");
        assert_eq!(
            FunctionRef::parse_unqualified("a.b").unwrap_err().kind,
            ErrorKind::Validation
        );
    }

    /// The recorded test_function_name_and_qualifier_validation: the
    /// pattern read as a regex reads it, prefixes optional.
    #[test]
    fn reads_the_pattern_as_a_regex_does() {
        let f = FunctionRef::parse("arn:aws:lambda:us-east-1:123456789012:function").unwrap();
        assert_eq!((f.name.as_str(), f.region.as_deref()), ("function", Some("us-east-1")));
        assert_eq!(FunctionRef::parse("function:f").unwrap(), r("f", None));
        let gov = FunctionRef::parse("arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:f").unwrap();
        assert_eq!(gov.region.as_deref(), Some("us-gov-west-1"));
        assert!(FunctionRef::parse("eusc-de-east-1:123456789012:function:f").is_ok());
    }

    /// test_function_name_and_qualifier_validation
    /// [full_arn_and_qualifier_too_long_and_invalid_region-get_function]:
    /// both members' errors in one answer.
    #[test]
    fn a_bad_name_and_qualifier_are_answered_together() {
        let arn = format!(
            "arn:aws:lambda:invalid-region:123456789012:function:f-{}",
            "a".repeat(170)
        );
        let e = FunctionRef::parse_qualified(&arn, Some(&"a".repeat(129))).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Validation);
        assert!(e.message.starts_with("2 validation errors detected: Value 'aaa"), "{e}");
        assert!(e.message.contains("; Value 'arn:aws:lambda:invalid-region:"), "{e}");
        let e = FunctionRef::parse_qualified("f", Some("invalid!")).unwrap_err();
        assert!(e
            .message
            .starts_with("1 validation error detected: Value 'invalid!' at 'qualifier'"));
        let (f, q) = FunctionRef::parse_qualified("f:1", Some("1")).unwrap();
        assert_eq!((f.name.as_str(), q), ("f", Qualifier::parse("1").unwrap()));
        let e = FunctionRef::parse_qualified("f:$LATEST", Some("1")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParameterValue);
    }

    #[test]
    fn unqualified_paths_limit_length_and_qualifier() {
        assert_eq!(FunctionRef::parse_unqualified("f").unwrap(), "f");
        assert!(FunctionRef::parse_unqualified("f:1").is_err());
        let arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{}", "f".repeat(64));
        assert!(arn.len() <= 140);
        assert!(FunctionRef::parse_unqualified(&arn).is_ok());
    }

    #[test]
    fn merges_qualifiers() {
        let f = FunctionRef::parse("f:1").unwrap();
        assert_eq!(f.merge_qualifier(Some("1")).unwrap(), Qualifier::parse("1").unwrap());
        assert!(f.merge_qualifier(Some("2")).is_err());
        let g = FunctionRef::parse("g").unwrap();
        assert_eq!(g.merge_qualifier(None).unwrap(), Qualifier::latest());
        assert_eq!(g.merge_qualifier(Some("a")).unwrap(), Qualifier::Alias("a".into()));
    }

    #[test]
    fn layer_version_arns() {
        let a = LayerVersionArn::parse("arn:aws:lambda:us-east-1:000000000000:layer:my-layer:3").unwrap();
        assert_eq!(a.name, "my-layer");
        assert_eq!(a.version, 3);
        assert!(a.is_local(&ArnContext::default()));
        assert_eq!(a.to_string(), "arn:aws:lambda:us-east-1:000000000000:layer:my-layer:3");
        for bad in [
            "arn:aws:lambda:us-east-1:000000000000:layer:my-layer",
            "arn:aws:lambda:us-east-1:000000000000:layer:my layer:1",
            "arn:aws:lambda:us-east-1:00000000000:layer:l:1",
            "arn:aws:lambda:us-east-1:000000000000:function:l:1",
            "arn:aws:lambda:us-east-1:000000000000:layer:l:x",
        ] {
            assert!(LayerVersionArn::parse(bad).is_err(), "{bad}");
        }
        // 140 characters accepted, 141 refused.
        let head = "arn:aws:lambda:us-east-1:000000000000:layer:";
        let edge = format!("{head}{}:1", "n".repeat(140 - head.len() - 2));
        assert_eq!(edge.len(), 140);
        assert!(LayerVersionArn::parse(&edge).is_ok());
        let over = format!("{head}{}:1", "n".repeat(141 - head.len() - 2));
        assert!(LayerVersionArn::parse(&over).is_err());
    }

    #[test]
    fn layer_names() {
        assert_eq!(parse_layer_name("l").unwrap(), "l");
        assert_eq!(
            parse_layer_name("arn:aws:lambda:us-east-1:000000000000:layer:l").unwrap(),
            "l"
        );
        assert!(parse_layer_name("arn:aws:lambda:us-east-1:000000000000:layer:l:1").is_err());
        assert!(parse_layer_name("a.b").is_err());
    }
}
