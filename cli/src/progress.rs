//! Transfer progress for people: a bar per blob (bytes, rate, ETA) on a terminal, one plain
//! line per finished blob otherwise, nothing with `--quiet`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

use image::Digest;
use image::progress::{BlobOutcome, NoProgress, Progress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Picks the reporter for this terminal and these flags.
pub fn reporter(quiet: bool) -> Arc<dyn Progress> {
    if quiet {
        Arc::new(NoProgress)
    } else if std::io::stderr().is_terminal() {
        Arc::new(Bars::new())
    } else {
        Arc::new(Lines)
    }
}

fn short(digest: &Digest) -> &str {
    &digest.hex()[..12]
}

/// Human-readable byte counts.
pub fn human_bytes(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

/// Plain lines, for logs and CI.
struct Lines;

impl Progress for Lines {
    fn blob_started(&self, _: &Digest, _: u64, _: u64) {}
    fn blob_advanced(&self, _: &Digest, _: u64) {}
    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome) {
        let what = match outcome {
            BlobOutcome::Downloaded => "downloaded",
            BlobOutcome::Uploaded => "uploaded",
            BlobOutcome::Mounted => "mounted from another repository",
            BlobOutcome::Skipped => "already there",
            BlobOutcome::Written => "layer written",
        };
        eprintln!("{}: {what}", short(digest));
    }
    fn message(&self, text: &str) {
        eprintln!("{text}");
    }
}

/// One bar per blob.
struct Bars {
    multi: MultiProgress,
    active: Mutex<HashMap<Digest, ProgressBar>>,
    style: ProgressStyle,
}

impl Bars {
    fn new() -> Self {
        let style = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            active: Mutex::new(HashMap::new()),
            style,
        }
    }

    fn with_bar(&self, digest: &Digest, f: impl FnOnce(&ProgressBar)) {
        let bars = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bar) = bars.get(digest) {
            f(bar);
        }
    }
}

impl Progress for Bars {
    fn blob_started(&self, digest: &Digest, size: u64, done: u64) {
        let mut bars = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let bar = bars.entry(digest.clone()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::new(size));
            bar.set_style(self.style.clone());
            bar.set_prefix(short(digest).to_owned());
            bar
        });
        bar.set_length(size);
        bar.set_position(done);
    }

    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        self.with_bar(digest, |bar| bar.inc(bytes));
    }

    fn blob_finished(&self, digest: &Digest, outcome: BlobOutcome) {
        let message = match outcome {
            BlobOutcome::Downloaded => "downloaded",
            BlobOutcome::Uploaded => "pushed",
            BlobOutcome::Mounted => "mounted",
            BlobOutcome::Skipped => "already exists",
            BlobOutcome::Written => "layer written",
        };
        let mut bars = self
            .active
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(bar) = bars.remove(digest) {
            bar.finish_and_clear();
        }
        let _ = self.multi.println(format!("{}: {message}", short(digest)));
    }

    fn message(&self, text: &str) {
        let _ = self.multi.println(text);
    }
}
