//! Resource-based policies: the requests of AddPermission and
//! AddLayerVersionPermission, the IAM statements Lambda turns them into, the
//! policy document GetPolicy answers, and the one question lamb asks a
//! policy: does it let anyone invoke the function through its URL?

use crate::error::LambdaError;
use crate::validate::constraint;
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// The model's `StatementId` pattern (`([a-zA-Z0-9-_]+)`, 1–100).
fn validate_statement_id(sid: &str) -> Result<(), LambdaError> {
    if sid.is_empty() || sid.len() > 100 {
        return Err(constraint("statementId", sid, "have length between 1 and 100"));
    }
    if !sid.chars().all(crate::validate::is_name_char) {
        return Err(constraint(
            "statementId",
            sid,
            "satisfy regular expression pattern: ([a-zA-Z0-9-_]+)",
        ));
    }
    Ok(())
}

/// The model's `Action` pattern: `lambda:*`, `lambda:<Name>` or `*`.
fn validate_action(action: &str) -> Result<(), LambdaError> {
    let ok = action == "*"
        || action
            .strip_prefix("lambda:")
            .is_some_and(|a| a == "*" || (!a.is_empty() && a.chars().all(|c| c.is_ascii_alphabetic())));
    if !ok {
        return Err(constraint(
            "action",
            action,
            "satisfy regular expression pattern: (lambda:[*]|lambda:[a-zA-Z]+|[*])",
        ));
    }
    Ok(())
}

/// The model's `Principal` pattern: no whitespace, non-empty.
fn validate_principal(principal: &str) -> Result<(), LambdaError> {
    if principal.is_empty() || principal.len() > 2048 || principal.chars().any(char::is_whitespace) {
        return Err(constraint(
            "principal",
            principal,
            "satisfy regular expression pattern: [^\\s]+",
        ));
    }
    Ok(())
}

/// An account principal as IAM writes it in a statement.
fn principal_value(principal: &str) -> Value {
    if principal == "*" {
        json!("*")
    } else if principal.len() == 12 && principal.bytes().all(|b| b.is_ascii_digit()) {
        json!({ "AWS": format!("arn:aws:iam::{principal}:root") })
    } else if principal.starts_with("arn:") {
        json!({ "AWS": principal })
    } else {
        json!({ "Service": principal })
    }
}

/// AddPermission's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddPermissionRequest {
    #[serde(default)]
    pub statement_id: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub principal: String,
    pub source_arn: Option<String>,
    pub source_account: Option<String>,
    pub event_source_token: Option<String>,
    #[serde(rename = "PrincipalOrgID")]
    pub principal_org_id: Option<String>,
    pub function_url_auth_type: Option<String>,
    pub invoked_via_function_url: Option<bool>,
    pub revision_id: Option<String>,
    /// Accepted (boto3 puts it in the query; the CLI never in the body).
    pub qualifier: Option<String>,
}

impl AddPermissionRequest {
    pub fn validate(&self) -> Result<(), LambdaError> {
        validate_statement_id(&self.statement_id)?;
        validate_action(&self.action)?;
        validate_principal(&self.principal)?;
        if let Some(t) = &self.function_url_auth_type {
            if t != "NONE" && t != "AWS_IAM" {
                return Err(constraint(
                    "functionUrlAuthType",
                    t,
                    "satisfy enum value set: [NONE, AWS_IAM]",
                ));
            }
        }
        if let Some(a) = &self.source_account {
            if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(constraint(
                    "sourceAccount",
                    a,
                    "satisfy regular expression pattern: \\d{12}",
                ));
            }
        }
        Ok(())
    }

    /// The statement Lambda adds for this request to the policy of
    /// `resource` (the function's ARN, qualified when the policy is).
    pub fn statement(&self, resource: &str) -> Value {
        let mut cond: Map<String, Value> = Map::new();
        let mut add = |op: &str, key: &str, value: Value| {
            let entry = cond.entry(op.to_owned()).or_insert_with(|| json!({}));
            entry[key] = value;
        };
        if let Some(a) = &self.source_account {
            add("StringEquals", "AWS:SourceAccount", json!(a));
        }
        if let Some(t) = &self.event_source_token {
            add("StringEquals", "lambda:EventSourceToken", json!(t));
        }
        if let Some(o) = &self.principal_org_id {
            add("StringEquals", "aws:PrincipalOrgID", json!(o));
        }
        if let Some(t) = &self.function_url_auth_type {
            add("StringEquals", "lambda:FunctionUrlAuthType", json!(t));
        }
        if self.invoked_via_function_url == Some(true) {
            add("Bool", "lambda:InvokedViaFunctionUrl", json!("true"));
        }
        if let Some(a) = &self.source_arn {
            add("ArnLike", "AWS:SourceArn", json!(a));
        }
        let mut s = json!({
            "Sid": self.statement_id,
            "Effect": "Allow",
            "Principal": principal_value(&self.principal),
            "Action": self.action,
            "Resource": resource,
        });
        if !cond.is_empty() {
            s["Condition"] = Value::Object(cond);
        }
        s
    }
}

/// AddLayerVersionPermission's body.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddLayerVersionPermissionRequest {
    #[serde(default)]
    pub statement_id: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub principal: String,
    pub organization_id: Option<String>,
}

impl AddLayerVersionPermissionRequest {
    pub fn validate(&self) -> Result<(), LambdaError> {
        validate_statement_id(&self.statement_id)?;
        if self.action != "lambda:GetLayerVersion" {
            return Err(constraint(
                "action",
                &self.action,
                "satisfy regular expression pattern: lambda:GetLayerVersion",
            ));
        }
        let p = &self.principal;
        let account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
        let root = p
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.strip_suffix(":root"))
            .is_some_and(account);
        if !(p == "*" || account(p) || root) {
            return Err(constraint(
                "principal",
                p,
                "satisfy regular expression pattern: \\d{12}|\\*|arn:(aws[a-zA-Z-]*):iam::\\d{12}:root",
            ));
        }
        Ok(())
    }

    /// The statement for the layer version `resource`.
    pub fn statement(&self, resource: &str) -> Value {
        let mut s = json!({
            "Sid": self.statement_id,
            "Effect": "Allow",
            "Principal": principal_value(&self.principal),
            "Action": self.action,
            "Resource": resource,
        });
        if let Some(o) = &self.organization_id {
            s["Condition"] = json!({ "StringEquals": { "aws:PrincipalOrgID": o } });
        }
        s
    }
}

/// A policy document: `{"Version":"2012-10-17","Id":"default","Statement":[...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub statements: Vec<Value>,
}

impl Policy {
    /// Parses a stored document; one lamb wrote, so anything else is empty.
    pub fn parse(doc: &str) -> Policy {
        let statements = serde_json::from_str::<Value>(doc)
            .ok()
            .and_then(|v| v.get("Statement").and_then(Value::as_array).cloned())
            .unwrap_or_default();
        Policy { statements }
    }

    pub fn to_document(&self) -> String {
        json!({ "Version": "2012-10-17", "Id": "default", "Statement": self.statements }).to_string()
    }

    fn position(&self, sid: &str) -> Option<usize> {
        self.statements
            .iter()
            .position(|s| s.get("Sid").and_then(Value::as_str) == Some(sid))
    }

    /// Adds a statement; a `Sid` already there is Lambda's conflict.
    pub fn add(&mut self, statement: Value) -> Result<(), LambdaError> {
        let sid = statement.get("Sid").and_then(Value::as_str).unwrap_or_default();
        if self.position(sid).is_some() {
            return Err(LambdaError::conflict(format!(
                "The statement id ({sid}) provided already exists. Please provide a new statement id, \
                 or remove the existing statement."
            )));
        }
        self.statements.push(statement);
        Ok(())
    }

    /// Removes the statement `sid`, as RemovePermission.
    pub fn remove(&mut self, sid: &str) -> Result<(), LambdaError> {
        let i = self
            .position(sid)
            .ok_or_else(|| LambdaError::not_found(format!("Statement {sid} is not found in resource policy.")))?;
        self.statements.remove(i);
        Ok(())
    }

    /// Whether an anonymous caller may invoke the function through an
    /// `AuthType NONE` URL. Since October 2025 AWS requires, for new URLs,
    /// both `lambda:InvokeFunctionUrl` and `lambda:InvokeFunction` granted
    /// to `*`; a statement counts when its conditions hold for such a call
    /// (no source, account or organisation conditions; a URL auth type
    /// condition naming `NONE`; `lambda:InvokedViaFunctionUrl` true).
    pub fn grants_public_url_access(&self) -> bool {
        let grants = |action: &str| self.statements.iter().any(|s| public_allow(s, action));
        grants("lambda:InvokeFunctionUrl") && grants("lambda:InvokeFunction")
    }
}

fn public_allow(s: &Value, action: &str) -> bool {
    let allow = s.get("Effect").and_then(Value::as_str) == Some("Allow");
    let principal = match s.get("Principal") {
        Some(Value::String(p)) => p == "*",
        Some(Value::Object(m)) => m.get("AWS").and_then(Value::as_str) == Some("*"),
        _ => false,
    };
    let actions: Vec<&str> = match s.get("Action") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let acts = actions.iter().any(|a| *a == action || *a == "lambda:*" || *a == "*");
    allow && principal && acts && conditions_hold_for_public_url(s.get("Condition"))
}

fn conditions_hold_for_public_url(cond: Option<&Value>) -> bool {
    let Some(Value::Object(ops)) = cond else {
        return cond.is_none();
    };
    ops.iter().all(|(op, keys)| {
        let Value::Object(keys) = keys else { return false };
        keys.iter().all(|(k, v)| match (op.as_str(), k.as_str()) {
            ("StringEquals", "lambda:FunctionUrlAuthType") => v == "NONE",
            ("Bool", "lambda:InvokedViaFunctionUrl") => v == "true" || v == &json!(true),
            _ => false,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(sid: &str, action: &str, principal: &str) -> AddPermissionRequest {
        AddPermissionRequest {
            statement_id: sid.into(),
            action: action.into(),
            principal: principal.into(),
            ..Default::default()
        }
    }

    #[test]
    fn statements_have_iams_shape() {
        let mut r = req("s3", "lambda:InvokeFunction", "s3.amazonaws.com");
        r.source_arn = Some("arn:aws:s3:::b".into());
        r.source_account = Some("123456789012".into());
        let s = r.statement("arn:aws:lambda:us-east-1:1:function:f");
        assert_eq!(s["Principal"], json!({"Service": "s3.amazonaws.com"}));
        assert_eq!(s["Condition"]["ArnLike"]["AWS:SourceArn"], "arn:aws:s3:::b");
        assert_eq!(s["Condition"]["StringEquals"]["AWS:SourceAccount"], "123456789012");
        let acct = req("a", "lambda:InvokeFunction", "123456789012").statement("r");
        assert_eq!(acct["Principal"], json!({"AWS": "arn:aws:iam::123456789012:root"}));
        assert!(acct.get("Condition").is_none());
    }

    #[test]
    fn constraints_are_validation_errors() {
        let e = req("example.com", "lambda:InvokeFunction", "*").validate().unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'example.com' at 'statementId' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: ([a-zA-Z0-9-_]+)"
        );
        assert!(req("a", "s3:GetObject", "*").validate().is_err());
        assert!(req("a", "lambda:*", "a b").validate().is_err());
        assert!(req("a", "lambda:InvokeFunctionUrl", "*").validate().is_ok());
    }

    #[test]
    fn duplicate_and_missing_sids() {
        let mut p = Policy::parse("");
        p.add(req("a", "*", "*").statement("r")).unwrap();
        let e = p.add(req("a", "*", "*").statement("r")).unwrap_err();
        assert_eq!(e.kind, crate::ErrorKind::ResourceConflict);
        assert_eq!(Policy::parse(&p.to_document()), p);
        assert_eq!(p.remove("b").unwrap_err().kind, crate::ErrorKind::ResourceNotFound);
        p.remove("a").unwrap();
        assert!(p.statements.is_empty());
    }

    #[test]
    fn public_url_access_needs_both_actions_for_anyone() {
        let mut url = req("url", "lambda:InvokeFunctionUrl", "*");
        url.function_url_auth_type = Some("NONE".into());
        let mut inv = req("inv", "lambda:InvokeFunction", "*");
        inv.invoked_via_function_url = Some(true);
        let mut p = Policy::parse("");
        p.add(url.statement("r")).unwrap();
        assert!(!p.grants_public_url_access(), "InvokeFunctionUrl alone");
        p.add(inv.statement("r")).unwrap();
        assert!(p.grants_public_url_access());

        // An account's grant, or one with a source condition, is not public.
        let mut q = Policy::parse("");
        q.add(req("u", "lambda:InvokeFunctionUrl", "123456789012").statement("r"))
            .unwrap();
        let mut src = req("i", "lambda:InvokeFunction", "*");
        src.source_arn = Some("arn:aws:s3:::b".into());
        q.add(src.statement("r")).unwrap();
        assert!(!q.grants_public_url_access());
        // An AWS_IAM-only grant does not open a NONE URL.
        let mut iam = req("u", "lambda:InvokeFunctionUrl", "*");
        iam.function_url_auth_type = Some("AWS_IAM".into());
        let mut r = Policy::parse("");
        r.add(iam.statement("r")).unwrap();
        r.add(req("i", "lambda:InvokeFunction", "*").statement("r")).unwrap();
        assert!(!r.grants_public_url_access());
    }
}
