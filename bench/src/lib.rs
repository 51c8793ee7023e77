//! Shared pieces of the benchmark drivers: timing with repetitions, and report lines.
//!
//! Machines here are noisy, so a driver never reports an absolute time alone: each scenario is
//! measured against a baseline run in the same process, and the ratio is what counts.

use std::time::{Duration, Instant};

/// Runs `work` `runs` times and returns the fastest run (the least disturbed by noise).
pub fn best_of<T>(runs: usize, mut work: impl FnMut() -> T) -> Duration {
    (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            std::hint::black_box(work());
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Milliseconds with three decimals, for report lines.
pub fn millis(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1000.0)
}

/// `a / b` as a float.
pub fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

/// True when `--quick` was given: smoke mode for CI (small inputs, one run).
pub fn quick_mode() -> bool {
    std::env::args().any(|a| a == "--quick")
}
