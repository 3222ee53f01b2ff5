//! A function's answer to a URL request as the HTTP response (spec 3.10).
//!
//! The answer is the function's, so nothing in it may decide how the
//! connection is framed: the status must be a final one (200-599) and the
//! hop-by-hop and framing headers are dropped, as Lambda does, so that the
//! body's length is always the one hyper writes. Otherwise a function
//! answering `Content-Length: 2` with a longer body would write the next
//! response on a kept-alive connection.

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

/// Headers about the connection or the message's framing, never the
/// function's to set (RFC 9110 7.6.1 and 6.4, Lambda's list for its web
/// endpoints); the server writes its own `content-length`.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Drops [`HOP_BY_HOP`] and the headers a `Connection` header names.
fn end_to_end(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    let named: Vec<String> = headers
        .iter()
        .filter(|(k, _)| k == "connection")
        .flat_map(|(_, v)| v.split(',').map(|n| n.trim().to_ascii_lowercase()))
        .collect();
    headers
        .into_iter()
        .filter(|(k, _)| !HOP_BY_HOP.contains(&k.as_str()) && !named.contains(k))
        .collect()
}

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
        // 1xx are interim answers hyper cannot send as the response.
        .filter(|s| (200..=599).contains(s))
        .ok_or_else(|| BadResponse(format!("statusCode {} is not a final HTTP status", obj["statusCode"])))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(h) = obj.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            headers.push((k.to_ascii_lowercase(), as_text(v)));
        }
    }
    let mut headers = end_to_end(headers);
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

/// The `Content-Type` of a streamed response that begins with an HTTP
/// prelude: JSON (`statusCode`, `headers`, `cookies`), then
/// [`PRELUDE_END`], then the body.
pub const HTTP_INTEGRATION: &str = "application/vnd.awslambda.http-integration-response";
/// What ends the prelude: 8 NUL bytes (JSON has none).
pub const PRELUDE_END: [u8; 8] = [0; 8];
/// The longest prelude lamb waits for.
pub const MAX_PRELUDE: usize = 64 * 1024;

/// A streamed response's head from its prelude: the status, headers and
/// cookies, as a structured answer without a body gives them.
pub fn prelude(json: &[u8]) -> Result<HttpAnswer, BadResponse> {
    let value: Value =
        serde_json::from_slice(json).map_err(|e| BadResponse(format!("response prelude is not JSON: {e}")))?;
    let mut obj = value
        .as_object()
        .cloned()
        .ok_or_else(|| BadResponse("response prelude is not a JSON object".into()))?;
    obj.remove("body");
    obj.remove("isBase64Encoded");
    obj.entry("statusCode").or_insert(Value::from(200));
    interpret(Value::Object(obj).to_string().as_bytes())
}

/// Where the prelude ends in what came so far: (its JSON's length, the
/// body's start).
pub fn prelude_split(bytes: &[u8]) -> Option<(usize, usize)> {
    let at = bytes.windows(PRELUDE_END.len()).position(|w| w == PRELUDE_END)?;
    Some((at, at + PRELUDE_END.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prelude_gives_the_streamed_head() {
        let mut stream = br#"{"statusCode":201,"headers":{"X-A":"b","Content-Length":"9"},"cookies":["c=1"]}"#.to_vec();
        stream.extend_from_slice(&PRELUDE_END);
        stream.extend_from_slice(b"body");
        let (json, body) = prelude_split(&stream).unwrap();
        assert_eq!(&stream[body..], b"body");
        let head = prelude(&stream[..json]).unwrap();
        assert_eq!(head.status, 201);
        assert!(head.headers.contains(&("x-a".into(), "b".into())));
        assert!(head.headers.contains(&("set-cookie".into(), "c=1".into())));
        assert!(!head.headers.iter().any(|(k, _)| k == "content-length"));
        assert_eq!(prelude(b"{}").unwrap().status, 200);
        assert!(prelude(b"[1]").is_err() && prelude(br#"{"statusCode":100}"#).is_err());
        assert_eq!(prelude_split(b"{}\0\0\0\0\0\0\0"), None);
    }

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

    #[test]
    fn interim_and_invalid_statuses_are_refused() {
        for status in ["100", "101", "103", "199", "99", "600", "-1", "\"abc\""] {
            let payload = format!(r#"{{"statusCode":{status},"body":"x"}}"#);
            assert!(interpret(payload.as_bytes()).is_err(), "{status}");
        }
        assert_eq!(interpret(br#"{"statusCode":200}"#).unwrap().status, 200);
        assert_eq!(interpret(br#"{"statusCode":"599"}"#).unwrap().status, 599);
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_dropped() {
        let a = interpret(
            br#"{"statusCode":200,"headers":{"Content-Length":"2","Transfer-Encoding":"chunked",
            "Connection":"keep-alive, X-Named","X-Named":"gone","Keep-Alive":"timeout=99","Upgrade":"h2c",
            "TE":"trailers","Trailer":"x-t","Proxy-Connection":"keep-alive","Proxy-Authenticate":"Basic",
            "Proxy-Authorization":"Basic eA==","X-Kept":"yes"},"body":"longer than two"}"#,
        )
        .unwrap();
        let names: Vec<&str> = a.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["x-kept", "content-type"]);
        assert_eq!(a.body, b"longer than two");
    }
}
