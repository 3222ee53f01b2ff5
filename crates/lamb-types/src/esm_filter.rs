//! Lambda's event filtering (`FilterCriteria`): the pattern language of
//! event source mappings, compiled once when a mapping is written and then
//! matched against every record.
//!
//! A pattern is a JSON object whose keys name fields of the record; a leaf is
//! an array of matchers, any of which may match (an array field of the record
//! matches when any of its elements does). Matchers: a literal string, number,
//! boolean or `null`; `{"prefix": s}`, `{"suffix": s}`,
//! `{"equals-ignore-case": s}`, `{"wildcard": s}`; `{"anything-but": v}` with a
//! value, a list of values or a `prefix`/`suffix`/`equals-ignore-case`
//! object; `{"numeric": [op, n (, op, n)]}`; `{"exists": bool}`. Objects nest,
//! and `"$or": [pattern, ...]` matches when any alternative does. A mapping's
//! filters are alternatives too: a record passes when one of them matches.

use crate::error::LambdaError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Lambda allows five filters per mapping unless a quota was raised.
pub const MAX_FILTERS: usize = 5;
/// Characters of one pattern.
pub const MAX_PATTERN_LEN: usize = 4096;

/// `FilterCriteria` as the API carries it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FilterCriteria {
    #[serde(default)]
    pub filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Filter {
    pub pattern: String,
}

impl FilterCriteria {
    /// Compiles every filter: a clear error names the first bad one.
    pub fn compile(&self) -> Result<Filters, LambdaError> {
        if self.filters.len() > MAX_FILTERS {
            return Err(LambdaError::invalid_parameter(format!(
                "FilterCriteria holds {} filters; at most {MAX_FILTERS} are allowed",
                self.filters.len()
            )));
        }
        let patterns = self
            .filters
            .iter()
            .map(|f| Pattern::parse(&f.pattern))
            .collect::<Result<_, _>>()?;
        Ok(Filters(patterns))
    }
}

/// A mapping's compiled filters; none means every record passes.
#[derive(Debug, Clone, Default)]
pub struct Filters(Vec<Pattern>);

impl Filters {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, record: &Value) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| p.matches(record))
    }
}

/// One compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern(Object);

#[derive(Debug, Clone)]
struct Object {
    fields: Vec<(String, Node)>,
    /// Each `$or`: one of its alternatives must match.
    ors: Vec<Vec<Object>>,
}

#[derive(Debug, Clone)]
enum Node {
    Object(Object),
    Leaf(Vec<Matcher>),
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact(Value),
    Prefix(String),
    Suffix(String),
    EqualsIgnoreCase(String),
    Wildcard(String),
    AnythingBut(Vec<Value>),
    AnythingButPrefix(String),
    AnythingButSuffix(String),
    AnythingButIgnoreCase(Vec<String>),
    Numeric(Vec<(Cmp, f64)>),
    Exists(bool),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

fn bad(pattern: &str, why: &str) -> LambdaError {
    LambdaError::invalid_parameter(format!("Invalid filter pattern definition: {why} (in {pattern})"))
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Self, LambdaError> {
        if text.len() > MAX_PATTERN_LEN {
            return Err(bad("the pattern", &format!("longer than {MAX_PATTERN_LEN} characters")));
        }
        let v: Value = serde_json::from_str(text).map_err(|e| bad(text, &format!("not JSON: {e}")))?;
        let Value::Object(o) = v else {
            return Err(bad(text, "a pattern is a JSON object"));
        };
        object(&o).map(Pattern).map_err(|why| bad(text, &why))
    }

    pub fn matches(&self, record: &Value) -> bool {
        match_object(&self.0, Some(record))
    }
}

fn object(o: &Map<String, Value>) -> Result<Object, String> {
    if o.is_empty() {
        return Err("an empty object matches nothing".into());
    }
    let mut out = Object {
        fields: Vec::new(),
        ors: Vec::new(),
    };
    for (k, v) in o {
        if k == "$or" {
            let alts = v
                .as_array()
                .filter(|a| a.len() >= 2)
                .ok_or("$or takes an array of at least two patterns")?;
            let alts = alts
                .iter()
                .map(|a| {
                    a.as_object()
                        .ok_or("each $or alternative is an object".to_owned())
                        .and_then(object)
                })
                .collect::<Result<_, _>>()?;
            out.ors.push(alts);
            continue;
        }
        let node = match v {
            Value::Object(inner) => Node::Object(object(inner)?),
            Value::Array(ms) if !ms.is_empty() => Node::Leaf(ms.iter().map(matcher).collect::<Result<_, _>>()?),
            _ => return Err(format!("the value of {k:?} must be an object or a non-empty array")),
        };
        out.fields.push((k.clone(), node));
    }
    Ok(out)
}

fn one_string(v: &Value, what: &str) -> Result<String, String> {
    v.as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what} takes a string"))
}

fn matcher(v: &Value) -> Result<Matcher, String> {
    let o = match v {
        Value::Object(o) => o,
        Value::Array(_) => return Err("a matcher cannot be an array".into()),
        scalar => return Ok(Matcher::Exact(scalar.clone())),
    };
    let mut it = o.iter();
    let (Some((k, v)), None) = (it.next(), it.next()) else {
        return Err("a matcher object has exactly one key".into());
    };
    Ok(match k.as_str() {
        "prefix" => match v {
            Value::Object(_) => return Err("prefix takes a string".into()),
            _ => Matcher::Prefix(one_string(v, "prefix")?),
        },
        "suffix" => Matcher::Suffix(one_string(v, "suffix")?),
        "equals-ignore-case" => Matcher::EqualsIgnoreCase(one_string(v, "equals-ignore-case")?.to_lowercase()),
        "wildcard" => Matcher::Wildcard(one_string(v, "wildcard")?),
        "exists" => Matcher::Exists(v.as_bool().ok_or("exists takes true or false")?),
        "numeric" => Matcher::Numeric(numeric(v)?),
        "anything-but" => anything_but(v)?,
        other => return Err(format!("unknown matcher {other:?}")),
    })
}

fn anything_but(v: &Value) -> Result<Matcher, String> {
    let scalar = |x: &Value| matches!(x, Value::String(_) | Value::Number(_));
    Ok(match v {
        Value::Array(xs) if !xs.is_empty() && xs.iter().all(scalar) => Matcher::AnythingBut(xs.clone()),
        x if scalar(x) => Matcher::AnythingBut(vec![x.clone()]),
        Value::Object(o) if o.len() == 1 => {
            let (k, inner) = o.iter().next().expect("one key");
            match k.as_str() {
                "prefix" => Matcher::AnythingButPrefix(one_string(inner, "anything-but prefix")?),
                "suffix" => Matcher::AnythingButSuffix(one_string(inner, "anything-but suffix")?),
                "equals-ignore-case" => {
                    let list = match inner {
                        Value::Array(xs) if !xs.is_empty() => xs.clone(),
                        x => vec![x.clone()],
                    };
                    let list = list
                        .iter()
                        .map(|x| one_string(x, "anything-but equals-ignore-case").map(|s| s.to_lowercase()))
                        .collect::<Result<_, _>>()?;
                    Matcher::AnythingButIgnoreCase(list)
                }
                other => return Err(format!("anything-but does not take {other:?}")),
            }
        }
        _ => return Err("anything-but takes a string, a number, a list of them, or a prefix/suffix object".into()),
    })
}

fn numeric(v: &Value) -> Result<Vec<(Cmp, f64)>, String> {
    let xs = v.as_array().ok_or("numeric takes an array")?;
    if xs.is_empty() || xs.len() % 2 != 0 || xs.len() > 4 {
        return Err("numeric takes one or two [operator, number] pairs".into());
    }
    let mut out = Vec::new();
    for pair in xs.chunks(2) {
        let op = match pair[0].as_str() {
            Some("=") => Cmp::Eq,
            Some("<") => Cmp::Lt,
            Some("<=") => Cmp::Le,
            Some(">") => Cmp::Gt,
            Some(">=") => Cmp::Ge,
            _ => return Err(format!("numeric operator {} is not one of = < <= > >=", pair[0])),
        };
        let n = pair[1].as_f64().ok_or("numeric compares with numbers")?;
        out.push((op, n));
    }
    if out.len() == 2 && (matches!(out[0].0, Cmp::Eq) || matches!(out[1].0, Cmp::Eq)) {
        return Err("numeric = stands alone".into());
    }
    Ok(out)
}

fn match_object(p: &Object, v: Option<&Value>) -> bool {
    // An array of objects matches when one element does.
    if let Some(Value::Array(xs)) = v {
        return xs.iter().any(|x| match_object(p, Some(x)));
    }
    let o = v.and_then(Value::as_object);
    let field = |k: &str| o.and_then(|o| o.get(k));
    p.fields.iter().all(|(k, node)| match node {
        Node::Object(inner) => match_object(inner, field(k)),
        Node::Leaf(ms) => match_leaf(ms, field(k)),
    }) && p.ors.iter().all(|alts| alts.iter().any(|a| match_object(a, v)))
}

fn match_leaf(ms: &[Matcher], v: Option<&Value>) -> bool {
    ms.iter().any(|m| match (m, v) {
        (Matcher::Exists(want), v) => *want == v.is_some_and(|v| !matches!(v, Value::Array(a) if a.is_empty())),
        (_, None) => false,
        (m, Some(Value::Array(xs))) => xs.iter().any(|x| match_scalar(m, x)),
        (m, Some(x)) => match_scalar(m, x),
    })
}

fn num_eq(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => x == y,
        _ => a == b,
    }
}

fn match_scalar(m: &Matcher, v: &Value) -> bool {
    let s = v.as_str();
    match m {
        Matcher::Exact(want) => num_eq(want, v),
        Matcher::Prefix(p) => s.is_some_and(|s| s.starts_with(p.as_str())),
        Matcher::Suffix(p) => s.is_some_and(|s| s.ends_with(p.as_str())),
        Matcher::EqualsIgnoreCase(p) => s.is_some_and(|s| s.to_lowercase() == *p),
        Matcher::Wildcard(p) => s.is_some_and(|s| wildcard(p.as_bytes(), s.as_bytes())),
        Matcher::AnythingBut(xs) => (v.is_string() || v.is_number()) && !xs.iter().any(|x| num_eq(x, v)),
        Matcher::AnythingButPrefix(p) => s.is_some_and(|s| !s.starts_with(p.as_str())),
        Matcher::AnythingButSuffix(p) => s.is_some_and(|s| !s.ends_with(p.as_str())),
        Matcher::AnythingButIgnoreCase(xs) => s.is_some_and(|s| !xs.contains(&s.to_lowercase())),
        Matcher::Numeric(cmps) => v.as_f64().filter(|_| v.is_number()).is_some_and(|n| {
            cmps.iter().all(|(op, k)| match op {
                Cmp::Eq => n == *k,
                Cmp::Lt => n < *k,
                Cmp::Le => n <= *k,
                Cmp::Gt => n > *k,
                Cmp::Ge => n >= *k,
            })
        }),
        Matcher::Exists(_) => unreachable!("exists is matched on the field"),
    }
}

/// `*` matches any run of bytes.
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| wildcard(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && wildcard(rest, &s[1..]),
    }
}

/// What a filter sees of a record's payload (`body` of SQS, `data` of
/// Kinesis and RabbitMQ): JSON when the payload parses as JSON, else the
/// payload as a plain string, which only string matchers on the field itself
/// can match (a pattern that reaches into it finds no fields).
pub fn payload_view(payload: &[u8]) -> Value {
    serde_json::from_slice(payload).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(payload).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(pattern: &str, record: Value) -> bool {
        Pattern::parse(pattern).unwrap().matches(&record)
    }

    #[test]
    fn exact_values() {
        let r = json!({"body": {"city": "Seattle", "n": 5, "ok": true, "none": null}});
        assert!(m(r#"{"body": {"city": ["Seattle"]}}"#, r.clone()));
        assert!(m(r#"{"body": {"city": ["Boston", "Seattle"]}}"#, r.clone()));
        assert!(!m(r#"{"body": {"city": ["seattle"]}}"#, r.clone()));
        assert!(m(r#"{"body": {"n": [5.0]}}"#, r.clone()));
        assert!(!m(r#"{"body": {"n": ["5"]}}"#, r.clone()));
        assert!(m(r#"{"body": {"ok": [true]}}"#, r.clone()));
        assert!(m(r#"{"body": {"none": [null]}}"#, r.clone()));
        assert!(!m(r#"{"body": {"missing": [null]}}"#, r.clone()));
        // Every field of a pattern must match.
        assert!(!m(r#"{"body": {"city": ["Seattle"], "n": [6]}}"#, r));
    }

    #[test]
    fn arrays_in_records_match_any_element() {
        let r = json!({"tags": ["a", "b"], "items": [{"k": 1}, {"k": 2}]});
        assert!(m(r#"{"tags": ["b"]}"#, r.clone()));
        assert!(!m(r#"{"tags": ["c"]}"#, r.clone()));
        assert!(m(r#"{"items": {"k": [2]}}"#, r.clone()));
        assert!(!m(r#"{"items": {"k": [3]}}"#, r));
    }

    #[test]
    fn prefix_suffix_wildcard_ignore_case() {
        let r = json!({"f": "order-123.png"});
        assert!(m(r#"{"f": [{"prefix": "order-"}]}"#, r.clone()));
        assert!(!m(r#"{"f": [{"prefix": "Order-"}]}"#, r.clone()));
        assert!(m(r#"{"f": [{"suffix": ".png"}]}"#, r.clone()));
        assert!(!m(r#"{"f": [{"suffix": ".jpg"}]}"#, r.clone()));
        assert!(m(r#"{"f": [{"wildcard": "order-*.png"}]}"#, r.clone()));
        assert!(m(r#"{"f": [{"wildcard": "*"}]}"#, r.clone()));
        assert!(!m(r#"{"f": [{"wildcard": "order-*.jpg"}]}"#, r.clone()));
        assert!(m(r#"{"f": [{"equals-ignore-case": "ORDER-123.PNG"}]}"#, r.clone()));
        assert!(!m(r#"{"f": [{"equals-ignore-case": "order"}]}"#, r.clone()));
        // String matchers never match numbers.
        assert!(!m(r#"{"n": [{"prefix": "1"}]}"#, json!({"n": 12})));
    }

    #[test]
    fn anything_but() {
        let r = json!({"s": "red", "n": 3});
        assert!(!m(r#"{"s": [{"anything-but": "red"}]}"#, r.clone()));
        assert!(m(r#"{"s": [{"anything-but": ["blue", "green"]}]}"#, r.clone()));
        assert!(!m(r#"{"n": [{"anything-but": [3]}]}"#, r.clone()));
        assert!(m(r#"{"n": [{"anything-but": [4]}]}"#, r.clone()));
        assert!(!m(r#"{"s": [{"anything-but": {"prefix": "re"}}]}"#, r.clone()));
        assert!(m(r#"{"s": [{"anything-but": {"suffix": "x"}}]}"#, r.clone()));
        assert!(!m(
            r#"{"s": [{"anything-but": {"equals-ignore-case": ["RED"]}}]}"#,
            r.clone()
        ));
        // A missing field is not "anything but".
        assert!(!m(r#"{"t": [{"anything-but": "red"}]}"#, r));
    }

    #[test]
    fn numeric_ranges() {
        let r = json!({"price": 10.5});
        assert!(m(r#"{"price": [{"numeric": [">", 10]}]}"#, r.clone()));
        assert!(m(r#"{"price": [{"numeric": [">=", 10, "<", 11]}]}"#, r.clone()));
        assert!(!m(
            r#"{"price": [{"numeric": [">", 10, "<=", 10.5]}]}"#,
            json!({"price": 11})
        ));
        assert!(m(r#"{"price": [{"numeric": ["=", 10.5]}]}"#, r.clone()));
        assert!(!m(r#"{"price": [{"numeric": ["<", 10]}]}"#, r));
        assert!(!m(r#"{"price": [{"numeric": [">", 1]}]}"#, json!({"price": "5"})));
    }

    #[test]
    fn exists() {
        let r = json!({"a": {"b": 1}, "e": []});
        assert!(m(r#"{"a": {"b": [{"exists": true}]}}"#, r.clone()));
        assert!(!m(r#"{"a": {"c": [{"exists": true}]}}"#, r.clone()));
        assert!(m(r#"{"a": {"c": [{"exists": false}]}}"#, r.clone()));
        assert!(m(r#"{"x": {"y": [{"exists": false}]}}"#, r.clone()));
        assert!(!m(r#"{"a": {"b": [{"exists": false}]}}"#, r.clone()));
        assert!(m(r#"{"e": [{"exists": false}]}"#, r));
    }

    #[test]
    fn or_and_nesting() {
        let p = r#"{"body": {"$or": [{"kind": ["a"]}, {"n": [{"numeric": [">", 100]}]}]}, "attr": ["x"]}"#;
        assert!(m(p, json!({"attr": "x", "body": {"kind": "a"}})));
        assert!(m(p, json!({"attr": "x", "body": {"n": 101}})));
        assert!(!m(p, json!({"attr": "x", "body": {"kind": "b", "n": 1}})));
        assert!(!m(p, json!({"attr": "y", "body": {"kind": "a"}})));
        let deep = r#"{"dynamodb": {"NewImage": {"status": {"S": ["done"]}}}}"#;
        assert!(m(deep, json!({"dynamodb": {"NewImage": {"status": {"S": "done"}}}})));
        assert!(!m(deep, json!({"dynamodb": {"Keys": {}}})));
    }

    #[test]
    fn plain_string_payloads() {
        // A non-JSON body is a string: string matchers on the field match it,
        // a pattern reaching into it does not.
        let r = json!({ "body": payload_view(b"hello world") });
        assert!(m(r#"{"body": [{"prefix": "hello"}]}"#, r.clone()));
        assert!(!m(r#"{"body": {"k": ["hello world"]}}"#, r));
        let j = json!({ "body": payload_view(br#"{"k": "v"}"#) });
        assert!(m(r#"{"body": {"k": ["v"]}}"#, j.clone()));
        // A JSON body is not matched as its text.
        assert!(!m(r#"{"body": [{"prefix": "{"}]}"#, j));
    }

    #[test]
    fn criteria_any_filter_passes() {
        let fc = FilterCriteria {
            filters: vec![
                Filter {
                    pattern: r#"{"a": [1]}"#.into(),
                },
                Filter {
                    pattern: r#"{"b": [2]}"#.into(),
                },
            ],
        };
        let f = fc.compile().unwrap();
        assert!(f.matches(&json!({"a": 1})) && f.matches(&json!({"b": 2})) && !f.matches(&json!({"c": 3})));
        assert!(FilterCriteria::default().compile().unwrap().matches(&json!({})));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for p in [
            "not json",
            "[]",
            "{}",
            r#"{"a": "x"}"#,
            r#"{"a": []}"#,
            r#"{"a": [{"prefix": 1}]}"#,
            r#"{"a": [{"numeric": [">"]}]}"#,
            r#"{"a": [{"numeric": ["~", 1]}]}"#,
            r#"{"a": [{"nope": 1}]}"#,
            r#"{"a": [{"exists": "yes"}]}"#,
            r#"{"a": [{"prefix": "x", "suffix": "y"}]}"#,
            r#"{"$or": [{"a": [1]}]}"#,
            r#"{"a": [{"anything-but": {"wildcard": "x"}}]}"#,
        ] {
            let e = Pattern::parse(p).unwrap_err();
            assert!(e.to_string().contains("Invalid filter pattern definition"), "{p}: {e}");
        }
        let six = FilterCriteria {
            filters: vec![
                Filter {
                    pattern: r#"{"a": [1]}"#.into()
                };
                6
            ],
        };
        assert!(six.compile().is_err());
    }
}
