//! CORS of a function URL, from its `Cors` configuration: preflight
//! requests are answered here without invoking, and answers to allowed
//! origins get the `Access-Control-*` headers.

use lamb_types::Cors;

fn origin_allowed(cors: &Cors, origin: &str) -> bool {
    cors.allow_origins
        .iter()
        .flatten()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
}

fn allow_origin(cors: &Cors, origin: &str) -> String {
    let wildcard = cors.allow_origins.iter().flatten().any(|o| o == "*");
    // A credentialed request may not be answered with `*`.
    if wildcard && cors.allow_credentials != Some(true) {
        "*".to_owned()
    } else {
        origin.to_owned()
    }
}

/// The answer to a preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`): its headers; an origin that is not
/// allowed gets none, so the browser refuses.
pub fn preflight(cors: &Cors, origin: &str) -> Vec<(String, String)> {
    if !origin_allowed(cors, origin) {
        return Vec::new();
    }
    let mut h = vec![("access-control-allow-origin".to_owned(), allow_origin(cors, origin))];
    let list = |v: &Option<Vec<String>>| v.as_ref().filter(|l| !l.is_empty()).map(|l| l.join(","));
    if let Some(m) = list(&cors.allow_methods) {
        h.push(("access-control-allow-methods".into(), m.to_ascii_uppercase()));
    }
    if let Some(a) = list(&cors.allow_headers) {
        h.push(("access-control-allow-headers".into(), a));
    }
    if let Some(e) = list(&cors.expose_headers) {
        h.push(("access-control-expose-headers".into(), e));
    }
    if let Some(age) = cors.max_age {
        h.push(("access-control-max-age".into(), age.to_string()));
    }
    if cors.allow_credentials == Some(true) {
        h.push(("access-control-allow-credentials".into(), "true".into()));
    }
    h
}

/// Headers added to an ordinary answer to a request with `Origin`.
pub fn simple(cors: &Cors, origin: &str) -> Vec<(String, String)> {
    if !origin_allowed(cors, origin) {
        return Vec::new();
    }
    let mut h = vec![("access-control-allow-origin".to_owned(), allow_origin(cors, origin))];
    if let Some(e) = cors.expose_headers.as_ref().filter(|l| !l.is_empty()) {
        h.push(("access-control-expose-headers".into(), e.join(",")));
    }
    if cors.allow_credentials == Some(true) {
        h.push(("access-control-allow-credentials".into(), "true".into()));
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preflight_from_config() {
        let cors = Cors {
            allow_origins: Some(vec!["https://a.example".into()]),
            allow_methods: Some(vec!["get".into(), "POST".into()]),
            allow_headers: Some(vec!["x-custom".into()]),
            max_age: Some(300),
            allow_credentials: Some(true),
            ..Cors::default()
        };
        let h = preflight(&cors, "https://a.example");
        assert!(h.contains(&("access-control-allow-origin".into(), "https://a.example".into())));
        assert!(h.contains(&("access-control-allow-methods".into(), "GET,POST".into())));
        assert!(h.contains(&("access-control-max-age".into(), "300".into())));
        assert!(preflight(&cors, "https://evil.example").is_empty());
        let any = Cors {
            allow_origins: Some(vec!["*".into()]),
            ..Cors::default()
        };
        assert_eq!(simple(&any, "https://x")[0].1, "*");
    }
}
