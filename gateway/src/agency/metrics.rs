//! Prometheus counters and histograms for the agency path: requests by
//! outcome and the reason the agency was told, decision and upstream
//! latency. Plain atomics; the
//! text format is written by hand (it is small and stable).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use policy::Decision;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS_SECS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];
/// Most distinct reason labels kept (codes are a closed set; this bounds
/// what a bug could add).
const REASONS_MAX: usize = 128;

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_SECS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS_SECS) {
            if secs <= le {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(u64::try_from(d.as_micros()).unwrap_or(u64::MAX), Relaxed);
    }

    fn write(&self, out: &mut String, name: &str) {
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (b, le) in self.buckets.iter().zip(BUCKETS_SECS) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", b.load(Relaxed));
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

#[derive(Default)]
pub struct Metrics {
    /// (outcome, reason) -> count; outcome is allow, deny or refused.
    requests: Mutex<BTreeMap<(String, String), u64>>,
    released: AtomicU64,
    released_nothing: AtomicU64,
    pub decision_seconds: Histogram,
    pub upstream_seconds: Histogram,
}

impl Metrics {
    fn count(&self, outcome: &str, reason: &str) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let key = (outcome.to_string(), reason.to_string());
        if m.len() < REASONS_MAX || m.contains_key(&key) {
            *m.entry(key).or_insert(0) += 1;
        }
    }

    pub fn refused(&self, reason: &str) {
        self.count("refused", reason);
    }

    /// Counts what the agency was told, never the internal reasons: those
    /// tell an enrolled person without a consent (`no-consent`, `revoked`)
    /// from an id nobody holds (`unknown-participant`), which is exactly
    /// what the agency's view hides.
    pub fn decided(&self, d: &Decision, took: Duration) {
        self.decision_seconds.observe(took);
        let outcome = if d.is_allow() { "allow" } else { "deny" };
        let reasons = d.agency_reasons();
        if reasons.is_empty() {
            self.count(outcome, "");
        }
        for r in reasons {
            self.count(outcome, r.code());
        }
    }

    pub fn upstream(&self, took: Duration) {
        self.upstream_seconds.observe(took);
    }

    pub fn released(&self, anything: bool) {
        if anything {
            self.released.fetch_add(1, Relaxed);
        } else {
            self.released_nothing.fetch_add(1, Relaxed);
        }
    }

    /// The agency path's part of `/metrics`.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# TYPE consentry_requests_total counter");
        for ((outcome, reason), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "consentry_requests_total{{outcome=\"{outcome}\",reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(out, "# TYPE consentry_releases_total counter");
        let _ = writeln!(
            out,
            "consentry_releases_total{{released=\"true\"}} {}",
            self.released.load(Relaxed)
        );
        let _ = writeln!(
            out,
            "consentry_releases_total{{released=\"false\"}} {}",
            self.released_nothing.load(Relaxed)
        );
        self.decision_seconds
            .write(out, "consentry_decision_seconds");
        self.upstream_seconds
            .write(out, "consentry_upstream_seconds");
    }
}
