//! An HTTP request to a function URL as Lambda's payload format 2.0 event
//! (spec 3.10).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use time::macros::format_description;
use time::OffsetDateTime;

/// The caller of an `AWS_IAM` URL, as SigV4 identified it.
#[derive(Debug, Clone)]
pub struct IamCaller {
    pub access_key: String,
    pub account: String,
}

/// One request as the URL listener received it.
#[derive(Debug, Clone)]
pub struct UrlRequest<'a> {
    pub method: &'a str,
    /// The path after the URL id (for the path form), as it arrived.
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// Header names in any case; repeated names repeated.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    pub source_ip: String,
    pub protocol: &'a str,
}

/// Where and when the request arrived.
#[derive(Debug, Clone)]
pub struct UrlContext<'a> {
    pub account: &'a str,
    pub url_id: &'a str,
    pub domain_name: &'a str,
    pub request_id: &'a str,
    pub now: OffsetDateTime,
    pub caller: Option<IamCaller>,
}

/// Content types whose body is handed over as text; every other body,
/// and a text one that is not UTF-8, is base64 (`isBase64Encoded`).
pub fn is_text_content_type(content_type: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    ct.starts_with("text/")
        || ct.ends_with("+json")
        || ct.ends_with("+xml")
        || matches!(
            ct.as_str(),
            "application/json" | "application/xml" | "application/javascript" | "application/graphql"
        )
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

pub fn build(req: &UrlRequest<'_>, ctx: &UrlContext<'_>) -> Value {
    // Lower-case names, repeats comma-joined, cookies moved out.
    let mut headers = Map::new();
    let mut cookies: Vec<Value> = Vec::new();
    for (k, v) in req.headers {
        let k = k.to_ascii_lowercase();
        if k == "cookie" {
            cookies.extend(
                v.split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(|c| Value::String(c.to_owned())),
            );
            continue;
        }
        match headers.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(v);
            }
            _ => {
                headers.insert(k, Value::String(v.clone()));
            }
        }
    }
    let mut query = Map::new();
    for pair in req.raw_query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        match query.get_mut(&k) {
            Some(Value::String(prev)) => {
                prev.push(',');
                prev.push_str(&v);
            }
            _ => {
                query.insert(k, Value::String(v));
            }
        }
    }
    let header = |name: &str| headers.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
    let user_agent = header("user-agent");
    let content_type = header("content-type");
    let text = is_text_content_type(&content_type) && std::str::from_utf8(req.body).is_ok();
    let fmt = format_description!("[day]/[month repr:short]/[year]:[hour]:[minute]:[second] +0000");
    let mut http = json!({
        "method": req.method,
        "path": req.raw_path,
        "protocol": req.protocol,
        "sourceIp": req.source_ip,
        "userAgent": user_agent,
    });
    if user_agent.is_empty() {
        http["userAgent"] = Value::Null;
    }
    let mut request_context = json!({
        "accountId": "anonymous",
        "apiId": ctx.url_id,
        "domainName": ctx.domain_name,
        "domainPrefix": ctx.url_id,
        "http": http,
        "requestId": ctx.request_id,
        "routeKey": "$default",
        "stage": "$default",
        "time": ctx.now.format(&fmt).unwrap_or_default(),
        "timeEpoch": (ctx.now.unix_timestamp_nanos() / 1_000_000) as i64,
    });
    if let Some(c) = &ctx.caller {
        request_context["accountId"] = json!(ctx.account);
        request_context["authorizer"] = json!({"iam": {
            "accessKey": c.access_key,
            "accountId": c.account,
            "callerId": c.access_key,
            "cognitoIdentity": null,
            "principalOrgId": null,
            "userArn": format!("arn:aws:iam::{}:root", c.account),
            "userId": c.account,
        }});
    }
    let mut event = json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": req.raw_path,
        "rawQueryString": req.raw_query,
        "headers": headers,
        "requestContext": request_context,
        "isBase64Encoded": !text && !req.body.is_empty(),
    });
    if !cookies.is_empty() {
        event["cookies"] = Value::Array(cookies);
    }
    if !query.is_empty() {
        event["queryStringParameters"] = Value::Object(query);
    }
    if !req.body.is_empty() {
        event["body"] = if text {
            Value::String(String::from_utf8_lossy(req.body).into_owned())
        } else {
            Value::String(STANDARD.encode(req.body))
        };
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> UrlContext<'static> {
        UrlContext {
            account: "000000000000",
            url_id: "abc",
            domain_name: "abc.lambda-url.localhost",
            request_id: "rid",
            now: OffsetDateTime::from_unix_timestamp(1_583_348_638).unwrap(),
            caller: None,
        }
    }

    #[test]
    fn payload_v2_shape() {
        let headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("X-Multi".to_owned(), "a".to_owned()),
            ("x-multi".to_owned(), "b".to_owned()),
            ("Cookie".to_owned(), "c1=v1; c2=v2".to_owned()),
            ("User-Agent".to_owned(), "agent".to_owned()),
        ];
        let req = UrlRequest {
            method: "POST",
            raw_path: "/my/path",
            raw_query: "a=1&a=2&b=x%20y",
            headers: &headers,
            body: b"{\"k\":1}",
            source_ip: "127.0.0.1".into(),
            protocol: "HTTP/1.1",
        };
        let e = build(&req, &ctx());
        assert_eq!(e["version"], "2.0");
        assert_eq!(e["headers"]["x-multi"], "a,b");
        assert!(e["headers"].get("cookie").is_none());
        assert_eq!(e["cookies"], json!(["c1=v1", "c2=v2"]));
        assert_eq!(e["queryStringParameters"], json!({"a": "1,2", "b": "x y"}));
        assert_eq!(e["body"], "{\"k\":1}");
        assert_eq!(e["isBase64Encoded"], false);
        assert_eq!(e["requestContext"]["time"], "04/Mar/2020:19:03:58 +0000");
        assert_eq!(e["requestContext"]["http"]["userAgent"], "agent");
        assert!(e["requestContext"].get("authorizer").is_none());
        assert!(e.get("pathParameters").is_none());
    }

    #[test]
    fn binary_bodies_are_base64() {
        let headers = vec![("content-type".to_owned(), "application/octet-stream".to_owned())];
        let req = UrlRequest {
            method: "PUT",
            raw_path: "/",
            raw_query: "",
            headers: &headers,
            body: &[0, 255, 1],
            source_ip: "127.0.0.1".into(),
            protocol: "HTTP/1.1",
        };
        let e = build(&req, &ctx());
        assert_eq!(e["isBase64Encoded"], true);
        assert_eq!(e["body"], "AP8B");
        assert!(e.get("queryStringParameters").is_none());
    }
}
