//! `GET /metrics` in the Prometheus text format: requests by route and status, the
//! latency of assessments as a histogram, refusals, and the queue.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the latency histogram's buckets, seconds.
const BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];

/// The counters.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<Histogram>,
    refusals: AtomicU64,
    busy: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Metrics {
    /// Counts one answered request.
    pub fn request(&self, route: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((route.to_string(), status)).or_default() += 1;
    }

    /// Records how long an assessment request took (seconds).
    pub fn latency(&self, seconds: f64) {
        let mut h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    /// Counts a refused film.
    pub fn refusal(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request turned away because the queue was full.
    pub fn busy(&self) {
        self.busy.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text, with the queue's state at this moment.
    pub fn render(&self, waiting: usize, running: usize, capacity: usize) -> String {
        let mut s = String::new();
        s.push_str("# HELP boneage_requests_total HTTP requests answered, by route and status.\n");
        s.push_str("# TYPE boneage_requests_total counter\n");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                s,
                "boneage_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let h = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        s.push_str("# HELP boneage_assessment_seconds Time from arrival to answer of assessment requests.\n");
        s.push_str("# TYPE boneage_assessment_seconds histogram\n");
        for (b, n) in BUCKETS.iter().zip(h.counts) {
            let _ = writeln!(s, "boneage_assessment_seconds_bucket{{le=\"{b}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "boneage_assessment_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(s, "boneage_assessment_seconds_sum {}", h.sum);
        let _ = writeln!(s, "boneage_assessment_seconds_count {}", h.count);
        let gauge = |s: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        gauge(
            &mut s,
            "boneage_refusals_total",
            "Films refused by the front end (no bone age given).",
            "counter",
            self.refusals.load(Ordering::Relaxed),
        );
        gauge(
            &mut s,
            "boneage_busy_total",
            "Requests answered 503 because the queue was full.",
            "counter",
            self.busy.load(Ordering::Relaxed),
        );
        gauge(
            &mut s,
            "boneage_queue_depth",
            "Assessment requests admitted and waiting for a worker.",
            "gauge",
            waiting as u64,
        );
        gauge(
            &mut s,
            "boneage_running",
            "Assessments being computed.",
            "gauge",
            running as u64,
        );
        gauge(
            &mut s,
            "boneage_queue_capacity",
            "Assessment requests admitted at most at once (workers + queue).",
            "gauge",
            capacity as u64,
        );
        s
    }
}
