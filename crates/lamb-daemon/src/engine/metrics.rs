//! Counters and histograms of the engine, rendered in Prometheus' text
//! format for `GET /metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the duration histograms, in seconds.
const BUCKETS: [f64; 17] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 900.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, d: Duration) {
        let s = d.as_secs_f64();
        for (i, bound) in BUCKETS.iter().enumerate() {
            if s <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += s;
    }

    fn render(&self, out: &mut String, name: &str, function: &str) {
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{function=\"{function}\",le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{function=\"{function}\",le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{function=\"{function}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{function=\"{function}\"}} {}", self.count);
    }
}

#[derive(Debug, Default, Clone)]
struct FunctionMetrics {
    invocations: u64,
    errors: u64,
    throttles: u64,
    cold_starts: u64,
    /// Cold starts on a pre-initialised sandbox (docs/prewarm.md).
    prewarmed_starts: u64,
    duration: Histogram,
    init_duration: Histogram,
}

/// The gauges, read from the pool when rendering.
#[derive(Debug, Default, Clone, Copy)]
pub struct Gauges {
    pub live: usize,
    pub idle: usize,
    pub frozen: usize,
    pub in_flight: u32,
    pub memory_reserved_mb: u64,
    /// Pre-initialised sandboxes waiting for a function.
    pub prewarmed: usize,
    /// Provisioned concurrency sandboxes initialised, idle or busy.
    pub provisioned: usize,
}

/// Name, help and how to read it, for rendering.
type Counter = (&'static str, &'static str, fn(&FunctionMetrics) -> u64);
type HistogramOf = (&'static str, &'static str, fn(&FunctionMetrics) -> &Histogram);

#[derive(Debug, Default)]
pub struct Metrics {
    functions: Mutex<BTreeMap<String, FunctionMetrics>>,
}

impl Metrics {
    fn with(&self, function: &str, f: impl FnOnce(&mut FunctionMetrics)) {
        let mut map = self.functions.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(function) {
            Some(m) => f(m),
            None => f(map.entry(function.to_owned()).or_default()),
        }
    }

    /// One finished invocation.
    pub fn invocation(&self, function: &str, duration: Duration, error: bool) {
        self.with(function, |m| {
            m.invocations += 1;
            m.errors += u64::from(error);
            m.duration.observe(duration);
        });
    }

    pub fn throttle(&self, function: &str) {
        self.with(function, |m| m.throttles += 1);
    }

    pub fn cold_start(&self, function: &str, init: Duration) {
        self.with(function, |m| {
            m.cold_starts += 1;
            m.init_duration.observe(init);
        });
    }

    /// A cold start took a pre-initialised sandbox.
    pub fn prewarmed_start(&self, function: &str) {
        self.with(function, |m| m.prewarmed_starts += 1);
    }

    pub fn render(&self, g: Gauges) -> String {
        let map = self.functions.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = String::with_capacity(4096);
        let counters: [Counter; 5] = [
            ("lamb_invocations_total", "Invocations that ran", |m| m.invocations),
            ("lamb_errors_total", "Invocations that ended in a function error", |m| {
                m.errors
            }),
            ("lamb_throttles_total", "Invocations refused with 429", |m| m.throttles),
            ("lamb_cold_starts_total", "Invocations that created a sandbox", |m| {
                m.cold_starts
            }),
            (
                "lamb_prewarmed_starts_total",
                "Cold starts on a pre-initialised sandbox",
                |m| m.prewarmed_starts,
            ),
        ];
        for (name, help, get) in counters {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} counter");
            for (f, m) in &map {
                let _ = writeln!(out, "{name}{{function=\"{}\"}} {}", label(f), get(m));
            }
        }
        let histograms: [HistogramOf; 2] = [
            ("lamb_invocation_duration_seconds", "Invocation durations", |m| {
                &m.duration
            }),
            ("lamb_init_duration_seconds", "Init durations of cold starts", |m| {
                &m.init_duration
            }),
        ];
        for (name, help, get) in histograms {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} histogram");
            for (f, m) in &map {
                get(m).render(&mut out, name, &label(f));
            }
        }
        let gauges = [
            ("lamb_sandboxes_live", "Sandboxes alive, busy or idle", g.live as u64),
            ("lamb_sandboxes_idle", "Idle sandboxes in the warm pool", g.idle as u64),
            (
                "lamb_sandboxes_frozen",
                "Idle sandboxes frozen by the cgroup freezer",
                g.frozen as u64,
            ),
            (
                "lamb_invocations_in_flight",
                "Invocations running now",
                u64::from(g.in_flight),
            ),
            (
                "lamb_memory_reserved_bytes",
                "Memory given to live sandboxes",
                g.memory_reserved_mb * 1024 * 1024,
            ),
            (
                "lamb_sandboxes_prewarmed",
                "Pre-initialised sandboxes waiting for a function (counted idle too)",
                g.prewarmed as u64,
            ),
            (
                "lamb_sandboxes_provisioned",
                "Provisioned concurrency sandboxes initialised, idle or busy",
                g.provisioned as u64,
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}.\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

fn label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.invocation("f", Duration::from_millis(3), false);
        m.invocation("f", Duration::from_millis(3), true);
        m.cold_start("f", Duration::from_millis(20));
        m.throttle("g");
        m.prewarmed_start("f");
        let text = m.render(Gauges {
            live: 2,
            idle: 1,
            frozen: 1,
            prewarmed: 1,
            provisioned: 3,
            ..Gauges::default()
        });
        assert!(text.contains("lamb_invocations_total{function=\"f\"} 2"));
        assert!(text.contains("lamb_errors_total{function=\"f\"} 1"));
        assert!(text.contains("lamb_throttles_total{function=\"g\"} 1"));
        assert!(text.contains("lamb_invocation_duration_seconds_bucket{function=\"f\",le=\"0.005\"} 2"));
        assert!(text.contains("lamb_invocation_duration_seconds_bucket{function=\"f\",le=\"0.0025\"} 0"));
        assert!(text.contains("lamb_init_duration_seconds_count{function=\"f\"} 1"));
        assert!(text.contains("lamb_sandboxes_frozen 1"));
        assert!(text.contains("lamb_prewarmed_starts_total{function=\"f\"} 1"));
        assert!(text.contains("lamb_sandboxes_prewarmed 1"));
        assert!(text.contains("lamb_sandboxes_provisioned 3"));
    }
}
