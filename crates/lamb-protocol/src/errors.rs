//! The JSON error bodies init and the daemon write themselves, escaped by
//! hand: neither needs a JSON library for these few strings.

/// `{"errorMessage":..,"errorType":..}`, the Runtime API's own errors.
pub fn error_body(message: &str, error_type: &str) -> Vec<u8> {
    format!(
        r#"{{"errorMessage":"{}","errorType":"{}"}}"#,
        escape(message),
        escape(error_type)
    )
    .into_bytes()
}

/// The same shape with the keys in the order Lambda answers callers.
pub fn caller_error(error_type: &str, message: &str) -> Vec<u8> {
    format!(
        r#"{{"errorType":"{}","errorMessage":"{}"}}"#,
        escape(error_type),
        escape(message)
    )
    .into_bytes()
}

/// JSON string escaping, for the few strings init writes itself.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}
