//! A function's answer to a URL request as the HTTP response (spec 3.10).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why an answer could not become a response (Lambda answers 502).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad function response: {0}")]
pub struct BadResponse(pub String);

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A JSON object with `statusCode` is structured; any other JSON is the body
/// of a 200 `application/json` answer, as it is.
pub fn interpret(payload: &[u8]) -> Result<HttpAnswer, BadResponse> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| BadResponse(format!("function response is not JSON: {e}")))?;
    let Some(obj) = value.as_object().filter(|o| o.contains_key("statusCode")) else {
        return Ok(HttpAnswer {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: payload.to_vec(),
        });
    };
    let status = obj["statusCode"]
        .as_u64()
        .or_else(|| obj["statusCode"].as_str().and_then(|s| s.parse().ok()))
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| BadResponse(format!("statusCode {} is not an HTTP status", obj["statusCode"])))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(h) = obj.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            headers.push((k.to_ascii_lowercase(), as_text(v)));
        }
    }
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    if let Some(cookies) = obj.get("cookies").and_then(Value::as_array) {
        for c in cookies {
            headers.push(("set-cookie".into(), as_text(c)));
        }
    }
    let body = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(b) => as_text(b).into_bytes(),
    };
    let body = if obj.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        STANDARD
            .decode(&body)
            .map_err(|e| BadResponse(format!("body is not base64: {e}")))?
    } else {
        body
    };
    Ok(HttpAnswer {
        status: status as u16,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_json_is_the_body() {
        for payload in [&b"\"hi\""[..], b"[1,2]", b"{\"a\":1}", b"42"] {
            let a = interpret(payload).unwrap();
            assert_eq!(a.status, 200);
            assert_eq!(a.body, payload);
        }
        assert!(interpret(b"not json").is_err());
    }

    #[test]
    fn structured_answer() {
        let a = interpret(
            br#"{"statusCode":201,"headers":{"X-A":"b","Content-Type":"text/plain"},"cookies":["a=1","b=2; Max-Age=1"],"body":"made"}"#,
        )
        .unwrap();
        assert_eq!(a.status, 201);
        assert_eq!(a.body, b"made");
        assert!(a.headers.contains(&("x-a".into(), "b".into())));
        assert!(a.headers.contains(&("content-type".into(), "text/plain".into())));
        assert_eq!(a.headers.iter().filter(|(k, _)| k == "set-cookie").count(), 2);
        let bin = interpret(br#"{"statusCode":200,"body":"AP8B","isBase64Encoded":true}"#).unwrap();
        assert_eq!(bin.body, [0, 255, 1]);
        assert!(interpret(br#"{"statusCode":"x"}"#).is_err());
    }
}
