//! Everything a client can send that lamb does not implement: operations of
//! Lambda's model answer a 501 that names them, other paths a 400 that says
//! no operation matches. Never a bare 404.

use crate::error::ApiError;
use axum::http::{Method, Uri};

/// `(method, path pattern, operation)`; `*` matches one segment, a final
/// `**` any rest.
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("POST", "/2014-11-13/functions/*/invoke-async", "InvokeAsync"),
    ("POST", "/2014-11-13/functions/*/invoke-async/", "InvokeAsync"),
    (
        "PUT",
        "/2019-09-25/functions/*/event-invoke-config",
        "PutFunctionEventInvokeConfig",
    ),
    (
        "POST",
        "/2019-09-25/functions/*/event-invoke-config",
        "UpdateFunctionEventInvokeConfig",
    ),
    (
        "GET",
        "/2019-09-25/functions/*/event-invoke-config",
        "GetFunctionEventInvokeConfig",
    ),
    (
        "DELETE",
        "/2019-09-25/functions/*/event-invoke-config",
        "DeleteFunctionEventInvokeConfig",
    ),
    (
        "GET",
        "/2019-09-25/functions/*/event-invoke-config/list",
        "ListFunctionEventInvokeConfigs",
    ),
    ("POST", "/2015-03-31/event-source-mappings", "CreateEventSourceMapping"),
    ("POST", "/2015-03-31/event-source-mappings/", "CreateEventSourceMapping"),
    ("GET", "/2015-03-31/event-source-mappings", "ListEventSourceMappings"),
    ("GET", "/2015-03-31/event-source-mappings/", "ListEventSourceMappings"),
    ("GET", "/2015-03-31/event-source-mappings/*", "GetEventSourceMapping"),
    ("PUT", "/2015-03-31/event-source-mappings/*", "UpdateEventSourceMapping"),
    (
        "DELETE",
        "/2015-03-31/event-source-mappings/*",
        "DeleteEventSourceMapping",
    ),
    ("POST", "/2021-10-31/functions/*/url", "CreateFunctionUrlConfig"),
    ("GET", "/2021-10-31/functions/*/url", "GetFunctionUrlConfig"),
    ("PUT", "/2021-10-31/functions/*/url", "UpdateFunctionUrlConfig"),
    ("DELETE", "/2021-10-31/functions/*/url", "DeleteFunctionUrlConfig"),
    ("GET", "/2021-10-31/functions/*/urls", "ListFunctionUrlConfigs"),
    (
        "PUT",
        "/2025-03-31/functions/*/function-scaling-config",
        "PutFunctionScalingConfig",
    ),
    (
        "GET",
        "/2025-03-31/functions/*/function-scaling-config",
        "GetFunctionScalingConfig",
    ),
];

fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some("**"), _) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

/// The operation of Lambda's model that `method` and `path` name, if any.
pub fn operation_for(method: &str, path: &str) -> Option<&'static str> {
    OPERATIONS
        .iter()
        .find(|(m, pat, _)| *m == method && matches(pat, path))
        .map(|(_, _, op)| *op)
}

pub async fn fallback(method: Method, uri: Uri) -> ApiError {
    let path = uri.path();
    match operation_for(method.as_str(), path) {
        Some(op) => ApiError::unsupported(op, method.as_str(), path),
        None => ApiError::unknown_operation(method.as_str(), path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_model_operations() {
        assert_eq!(
            operation_for("POST", "/2015-03-31/event-source-mappings/"),
            Some("CreateEventSourceMapping")
        );
        assert_eq!(
            operation_for("PUT", "/2025-03-31/functions/f/function-scaling-config"),
            Some("PutFunctionScalingConfig")
        );
        assert_eq!(
            operation_for("GET", "/2021-10-31/functions/f/url"),
            Some("GetFunctionUrlConfig")
        );
        assert_eq!(operation_for("GET", "/nothing"), None);
        assert_eq!(operation_for("GET", "/2021-10-31/functions//url"), None);
    }
}
