//! What a build reports while it runs, so the CLI can draw steps and transfer bars on a
//! terminal and print plain lines elsewhere.

use std::sync::Arc;

use image::progress::Progress;

/// One step of the build, as shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepInfo {
    /// The platform being built, when there are several (`linux/arm64`), else empty.
    pub platform: String,
    /// 1-based step number.
    pub number: usize,
    /// Number of steps.
    pub total: usize,
    /// What the step does (`COPY charts/ charts/`, `cache 12 images`).
    pub text: String,
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    /// Its layer came from the build cache.
    Cached,
    /// It ran and wrote a layer of this many bytes.
    Built {
        /// Size of the layer blob.
        layer_size: u64,
    },
    /// It ran and changed nothing that needs a layer.
    Empty,
}

/// Receives build events. Implementations must be cheap.
pub trait BuildProgress: Send + Sync {
    /// A step starts.
    fn step_started(&self, step: &StepInfo);
    /// A step ended.
    fn step_finished(&self, step: &StepInfo, outcome: StepOutcome);
    /// A line of a RUN command's output.
    fn output(&self, line: &str);
    /// A line of information.
    fn message(&self, text: &str);
    /// Where blob transfers report.
    fn transfers(&self) -> Arc<dyn Progress>;
}
