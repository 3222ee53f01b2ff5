//! Go's wording of how a process ended (`exit status 1`, `signal: killed`),
//! which Lambda's error messages quote: init words its runtime's end, the
//! sandbox library a sandbox's.

/// `exit status <code>`.
pub fn exited(code: i32) -> String {
    format!("exit status {code}")
}

/// `signal: <name>`, with Go's names for the common signals.
pub fn signaled(signal: i32) -> String {
    format!("signal: {}", signal_name(signal))
}

/// Linux's numbers, written here so this crate needs no libc.
fn signal_name(signal: i32) -> String {
    match signal {
        9 => "killed".into(),
        15 => "terminated".into(),
        11 => "segmentation fault".into(),
        6 => "aborted".into(),
        7 => "bus error".into(),
        4 => "illegal instruction".into(),
        8 => "floating point exception".into(),
        2 => "interrupt".into(),
        1 => "hangup".into(),
        13 => "broken pipe".into(),
        other => format!("signal {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_as_go_does() {
        assert_eq!(exited(1), "exit status 1");
        assert_eq!(signaled(9), "signal: killed");
        assert_eq!(signaled(11), "signal: segmentation fault");
        assert_eq!(signaled(10), "signal: signal 10");
    }
}
