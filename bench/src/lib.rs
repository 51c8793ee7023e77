//! Shared pieces of the benchmark drivers: timing with repetitions, and report lines.
//!
//! Machines here are noisy, so a driver never reports an absolute time alone: each scenario is
//! measured against a baseline run in the same process, and the ratio is what counts.

use std::path::PathBuf;
use std::process::{Command, Stdio};
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

/// Runs a command to completion; returns its wall time and peak RSS (KiB), panicking on failure.
pub fn measure(command: &mut Command) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    loop {
        if let Some(hwm) = std::fs::read_to_string(&status_path).ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        }) {
            peak = peak.max(hwm);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (start.elapsed(), peak)
}

/// A binary built next to this one (`sealer-build`), with the same profile.
pub fn sibling_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: build it with the same profile first (cargo build --release -p cli)",
        path.display()
    );
    path
}
