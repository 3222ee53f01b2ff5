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

/// An error and its causes, `: `-joined, for a log line or an answer: the
/// errors of this workspace keep their cause out of their own message when
/// it is also their `source`, so that nothing prints it twice.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'a));

impl std::fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(e) = cause {
            write!(f, ": {e}")?;
            cause = e.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("open the store")
        }
    }

    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn a_chain_shows_each_cause_once() {
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(Chain(&e).to_string(), "open the store: disk full");
        assert_eq!(Chain(&e.0).to_string(), "disk full");
    }

    #[test]
    fn bodies_are_escaped_json() {
        assert_eq!(
            String::from_utf8(caller_error("T", "a \"b\"\n")).unwrap(),
            r#"{"errorType":"T","errorMessage":"a \"b\"\n"}"#
        );
    }
}
