//! Counters served at `/metrics` in the Prometheus text format: requests by status, bytes
//! served, and the pull-through cache's hits, misses and upstream bytes, which the cache
//! reports through [`Metrics`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The registry's counters; cheap to clone (shared inside).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    requests_by_status: Mutex<BTreeMap<u16, u64>>,
    bytes_served: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    upstream_bytes: AtomicU64,
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts a request answered with `status`.
    pub fn record_request(&self, status: u16) {
        *self
            .inner
            .requests_by_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(status)
            .or_default() += 1;
    }

    /// Adds body bytes sent to clients.
    pub fn add_bytes_served(&self, bytes: u64) {
        self.inner.bytes_served.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts a manifest or blob the pull-through cache served from storage.
    pub fn record_cache_hit(&self) {
        self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a manifest or blob the pull-through cache had to fetch from an upstream.
    pub fn record_cache_miss(&self) {
        self.inner.cache_misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds bytes fetched from upstream registries.
    pub fn add_upstream_bytes(&self, bytes: u64) {
        self.inner
            .upstream_bytes
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// Requests answered with `status` so far.
    pub fn requests(&self, status: u16) -> u64 {
        self.inner
            .requests_by_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&status)
            .copied()
            .unwrap_or(0)
    }

    /// Body bytes sent to clients so far.
    pub fn bytes_served(&self) -> u64 {
        self.inner.bytes_served.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        text.push_str(
            "# HELP sealer_registry_http_requests_total HTTP requests answered, by status code.\n\
             # TYPE sealer_registry_http_requests_total counter\n",
        );
        for (status, count) in self
            .inner
            .requests_by_status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                text,
                "sealer_registry_http_requests_total{{code=\"{status}\"}} {count}"
            );
        }
        for (name, help, value) in [
            (
                "sealer_registry_served_bytes_total",
                "Body bytes sent to clients.",
                &self.inner.bytes_served,
            ),
            (
                "sealer_registry_cache_hits_total",
                "Manifests and blobs the pull-through cache served from storage.",
                &self.inner.cache_hits,
            ),
            (
                "sealer_registry_cache_misses_total",
                "Manifests and blobs the pull-through cache fetched from an upstream.",
                &self.inner.cache_misses,
            ),
            (
                "sealer_registry_upstream_bytes_total",
                "Bytes fetched from upstream registries.",
                &self.inner.upstream_bytes,
            ),
        ] {
            let _ = writeln!(
                text,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter() {
        let metrics = Metrics::new();
        metrics.record_request(200);
        metrics.record_request(200);
        metrics.record_request(404);
        metrics.add_bytes_served(10);
        metrics.record_cache_hit();
        metrics.record_cache_miss();
        metrics.record_cache_miss();
        metrics.add_upstream_bytes(7);
        let text = metrics.clone().render();
        for line in [
            "sealer_registry_http_requests_total{code=\"200\"} 2",
            "sealer_registry_http_requests_total{code=\"404\"} 1",
            "sealer_registry_served_bytes_total 10",
            "sealer_registry_cache_hits_total 1",
            "sealer_registry_cache_misses_total 2",
            "sealer_registry_upstream_bytes_total 7",
            "# TYPE sealer_registry_cache_misses_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert_eq!(metrics.requests(200), 2);
        assert_eq!(metrics.bytes_served(), 10);
    }
}
