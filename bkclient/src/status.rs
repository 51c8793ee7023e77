//! The Status stream folded into a model, and BuildKit's plain progress format.
//!
//! Plain lines follow BuildKit v0.8's `progressui` printer: a block per vertex headed
//! `#N name` (vertexes numbered by first appearance), progress lines `#N id 1.20MB / 4.50MB
//! 0.3s done`, log lines `#N 0.123 text`, and an end line `#N CACHED`, `#N DONE 1.2s`,
//! `#N ERROR: msg` or `#N CANCELED`. When output moves to another vertex while one is still
//! running, the running one gets `#N ...`; blocks are separated by an empty line.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;

use bollard_buildkit_proto::google::protobuf::Timestamp;
use bollard_buildkit_proto::moby::buildkit::v1::{StatusResponse, Vertex, VertexLog, VertexStatus};

/// Log lines kept per vertex for error reports.
const LOG_TAIL: usize = 30;
/// A progress line is printed again only after this share of the total…
const MIN_PROGRESS_DELTA: f64 = 0.05;
/// …or after this many nanoseconds.
const MIN_TIME_DELTA_NANOS: i128 = 5_000_000_000;
/// How BuildKit reports a vertex stopped by cancellation.
const CANCELED_SUFFIX: &str = "context canceled";

/// How many vertexes a build had and how they ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepCounts {
    /// Every vertex seen.
    pub total: usize,
    /// Completed vertexes that came from the cache.
    pub cached: usize,
    /// Completed vertexes (cached ones included).
    pub completed: usize,
}

/// Folds StatusResponses: vertexes by digest, statuses, last 30 log lines per vertex.
#[derive(Debug, Default)]
pub struct StatusModel {
    vertexes: HashMap<String, VertexState>,
    /// Digests by first appearance; `#N` is the position + 1.
    order: Vec<String>,
    /// The vertex whose block is open.
    current: Option<String>,
    printed_any: bool,
}

#[derive(Debug, Default)]
struct VertexState {
    index: usize,
    name: String,
    cached: bool,
    started: Option<i128>,
    completed: Option<i128>,
    error: String,
    /// The `(completed, cached, error)` whose end line was printed.
    printed_end: Option<(i128, bool, String)>,
    /// Per status id: `(current, timestamp, completed)` when last printed.
    printed_statuses: HashMap<String, (i64, i128, bool)>,
    log_tail: VecDeque<String>,
    /// A log line without its newline yet: its `#N t ` prefix and the text so far.
    partial: Option<(String, Vec<u8>)>,
}

impl VertexState {
    fn end_line(&self) -> String {
        let index = self.index;
        if !self.error.is_empty() {
            if self.error.ends_with(CANCELED_SUFFIX) {
                format!("#{index} CANCELED")
            } else {
                format!("#{index} ERROR: {}", self.error)
            }
        } else if self.cached {
            format!("#{index} CACHED")
        } else {
            match (self.started, self.completed) {
                (Some(started), Some(completed)) => {
                    format!("#{index} DONE {:.1}s", seconds(completed - started))
                }
                _ => format!("#{index} DONE"),
            }
        }
    }

    fn keep_log_line(&mut self, text: &[u8]) {
        if self.log_tail.len() == LOG_TAIL {
            self.log_tail.pop_front();
        }
        self.log_tail
            .push_back(String::from_utf8_lossy(text).into_owned());
    }

    /// Ends a pending partial log line, printing what it has.
    fn flush_partial(&mut self, out: &mut Vec<String>) {
        if let Some((prefix, text)) = self.partial.take() {
            out.push(format!("{prefix}{}", String::from_utf8_lossy(&text)));
            self.keep_log_line(&text);
        }
    }
}

impl StatusModel {
    /// An empty model.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds one StatusResponse in and returns the plain-progress lines it adds (empty strings
    /// separate vertex blocks).
    pub fn apply(&mut self, response: &StatusResponse) -> Vec<String> {
        let mut out = Vec::new();
        for vertex in &response.vertexes {
            self.apply_vertex(vertex, &mut out);
        }
        for status in &response.statuses {
            self.apply_status(status, &mut out);
        }
        for log in &response.logs {
            self.apply_log(log, &mut out);
        }
        out
    }

    /// Prints the log lines still waiting for their newline (call when the stream ended).
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for digest in &self.order {
            if let Some(state) = self.vertexes.get_mut(digest) {
                state.flush_partial(&mut out);
            }
        }
        out
    }

    /// The first vertex that failed (cancellations aside): its name, its error and its last
    /// log lines.
    pub fn failed_vertex(&self) -> Option<(String, String, Vec<String>)> {
        self.order
            .iter()
            .filter_map(|digest| self.vertexes.get(digest))
            .find(|state| !state.error.is_empty() && !state.error.ends_with(CANCELED_SUFFIX))
            .map(|state| {
                let mut logs: Vec<String> = state.log_tail.iter().cloned().collect();
                if let Some((_, text)) = &state.partial {
                    logs.push(String::from_utf8_lossy(text).into_owned());
                    if logs.len() > LOG_TAIL {
                        logs.remove(0);
                    }
                }
                (state.name.clone(), state.error.clone(), logs)
            })
    }

    /// How many vertexes there are, how many completed and how many of those were cached.
    pub fn counts(&self) -> StepCounts {
        let mut counts = StepCounts {
            total: self.vertexes.len(),
            ..StepCounts::default()
        };
        for state in self.vertexes.values() {
            if state.completed.is_some() {
                counts.completed += 1;
                if state.cached {
                    counts.cached += 1;
                }
            }
        }
        counts
    }

    /// The vertexes started and not completed, as `(N, name)` in order of appearance.
    pub fn running(&self) -> Vec<(usize, String)> {
        self.order
            .iter()
            .filter_map(|digest| self.vertexes.get(digest))
            .filter(|state| state.started.is_some() && state.completed.is_none())
            .map(|state| (state.index, state.name.clone()))
            .collect()
    }

    fn apply_vertex(&mut self, vertex: &Vertex, out: &mut Vec<String>) {
        if !self.vertexes.contains_key(&vertex.digest) {
            self.order.push(vertex.digest.clone());
            let state = VertexState {
                index: self.order.len(),
                ..VertexState::default()
            };
            self.vertexes.insert(vertex.digest.clone(), state);
        }
        let Some(state) = self.vertexes.get_mut(&vertex.digest) else {
            return;
        };
        // A repeated announcement of a vertex that already started does not reset it.
        if state.started.is_some() && vertex.started.is_none() {
            return;
        }
        let was_started = state.started.is_some();
        state.name.clone_from(&vertex.name);
        state.cached = vertex.cached;
        state.started = vertex.started.as_ref().map(nanos);
        state.completed = vertex.completed.as_ref().map(nanos);
        state.error.clone_from(&vertex.error);
        if let Some(completed) = state.completed {
            let end = (completed, state.cached, state.error.clone());
            if state.printed_end.as_ref() != Some(&end) {
                state.printed_end = Some(end);
                self.switch_to(&vertex.digest, out);
                if let Some(state) = self.vertexes.get_mut(&vertex.digest) {
                    state.flush_partial(out);
                    out.push(state.end_line());
                }
                self.current = None;
            }
        } else if state.started.is_some() && !was_started {
            self.switch_to(&vertex.digest, out);
        }
    }

    fn apply_status(&mut self, status: &VertexStatus, out: &mut Vec<String>) {
        let Some(state) = self.vertexes.get(&status.vertex) else {
            return;
        };
        let Some(started) = status.started.as_ref().map(nanos) else {
            return;
        };
        let timestamp = status.timestamp.as_ref().map_or(started, nanos);
        let completed = status.completed.as_ref().map(nanos);
        if let Some(&(last_current, last_timestamp, last_completed)) =
            state.printed_statuses.get(&status.id)
        {
            if last_completed && completed.is_some() {
                return;
            }
            if completed.is_none() {
                #[allow(clippy::cast_precision_loss)]
                let progress_delta = if status.total > 0 {
                    (status.current - last_current) as f64 / status.total as f64
                } else {
                    0.0
                };
                if progress_delta < MIN_PROGRESS_DELTA
                    && timestamp - last_timestamp < MIN_TIME_DELTA_NANOS
                {
                    return;
                }
            }
        }
        let index = state.index;
        let mut line = format!("#{index} {}", status.id);
        if status.total != 0 {
            let _ = write!(
                line,
                " {} / {}",
                format_bytes(status.current),
                format_bytes(status.total)
            );
        } else if status.current != 0 {
            let _ = write!(line, " {}", format_bytes(status.current));
        }
        let elapsed = seconds(completed.unwrap_or(timestamp) - started);
        if elapsed > 0.01 {
            let _ = write!(line, " {elapsed:.1}s");
        }
        if completed.is_some() {
            line.push_str(" done");
        }
        self.switch_to(&status.vertex, out);
        out.push(line);
        if let Some(state) = self.vertexes.get_mut(&status.vertex) {
            state.printed_statuses.insert(
                status.id.clone(),
                (status.current, timestamp, completed.is_some()),
            );
        }
    }

    fn apply_log(&mut self, log: &VertexLog, out: &mut Vec<String>) {
        if log.msg.is_empty() || !self.vertexes.contains_key(&log.vertex) {
            return;
        }
        let pieces: Vec<&[u8]> = log.msg.split(|byte| *byte == b'\n').collect();
        let has_complete_line = pieces.len() > 1;
        if has_complete_line {
            self.switch_to(&log.vertex, out);
        }
        let Some(state) = self.vertexes.get_mut(&log.vertex) else {
            return;
        };
        let last = pieces.len() - 1;
        for (position, piece) in pieces.into_iter().enumerate() {
            if position == last && piece.is_empty() {
                break;
            }
            let (prefix, mut text) = state.partial.take().unwrap_or_else(|| {
                let offset = match (state.started, log.timestamp.as_ref()) {
                    (Some(started), Some(timestamp)) => {
                        seconds(nanos(timestamp) - started).max(0.0)
                    }
                    _ => 0.0,
                };
                let precision = if offset < 10.0 {
                    3
                } else if offset < 100.0 {
                    2
                } else {
                    1
                };
                (
                    format!("#{} {offset:.precision$} ", state.index),
                    Vec::new(),
                )
            });
            text.extend_from_slice(piece);
            if position == last {
                state.partial = Some((prefix, text));
            } else {
                out.push(format!("{prefix}{}", String::from_utf8_lossy(&text)));
                state.keep_log_line(&text);
            }
        }
    }

    /// Opens `digest`'s block: parks the open one (`#N ...`) and prints `#N name`.
    fn switch_to(&mut self, digest: &str, out: &mut Vec<String>) {
        if self.current.as_deref() == Some(digest) {
            return;
        }
        if let Some(previous) = self.current.take()
            && let Some(state) = self.vertexes.get_mut(&previous)
        {
            state.flush_partial(out);
            if state.completed.is_none() {
                out.push(format!("#{} ...", state.index));
            }
        }
        if self.printed_any {
            out.push(String::new());
        }
        self.printed_any = true;
        if let Some(state) = self.vertexes.get(digest) {
            out.push(format!("#{} {}", state.index, state.name));
        }
        self.current = Some(digest.to_owned());
    }
}

fn nanos(timestamp: &Timestamp) -> i128 {
    i128::from(timestamp.seconds) * 1_000_000_000 + i128::from(timestamp.nanos)
}

#[allow(clippy::cast_precision_loss)]
fn seconds(nanos: i128) -> f64 {
    nanos as f64 / 1e9
}

/// A byte count as BuildKit prints it: `512B`, `1.23kB`, `4.50MB` (decimal units).
fn format_bytes(bytes: i64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut unit = 0;
    let mut base: i64 = 1;
    while unit + 1 < UNITS.len() && bytes.unsigned_abs() >= base.unsigned_abs() * 1000 {
        base *= 1000;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes}B");
    }
    #[allow(clippy::cast_precision_loss)]
    let value = bytes as f64 / base as f64;
    format!("{value:.2}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    /// Proto timestamps are optional fields, so the helper gives an `Option`.
    #[allow(clippy::unnecessary_wraps)]
    fn at(seconds: i64, millis: i32) -> Option<Timestamp> {
        Some(Timestamp {
            seconds,
            nanos: millis * 1_000_000,
        })
    }

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.to_owned(),
            name: name.to_owned(),
            ..Vertex::default()
        }
    }

    fn log(digest: &str, time: Option<Timestamp>, msg: &str) -> VertexLog {
        VertexLog {
            vertex: digest.to_owned(),
            timestamp: time,
            stream: 1,
            msg: msg.as_bytes().to_vec(),
        }
    }

    fn update(
        vertexes: Vec<Vertex>,
        statuses: Vec<VertexStatus>,
        logs: Vec<VertexLog>,
    ) -> StatusResponse {
        StatusResponse {
            vertexes,
            statuses,
            logs,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn vertexes_print_blocks_in_buildkit_format() {
        let mut model = StatusModel::new();
        let load = vertex("sha256:a", "[internal] load build definition from Kubefile");
        let copy = vertex("sha256:b", "[2/3] COPY etc etc");
        let run = vertex("sha256:c", "[3/3] RUN make");
        // Announced (not started) vertexes are numbered but print nothing.
        assert!(
            model
                .apply(&update(
                    vec![load.clone(), copy.clone(), run.clone()],
                    vec![],
                    vec![]
                ))
                .is_empty()
        );

        let lines = model.apply(&update(
            vec![Vertex {
                started: at(100, 0),
                completed: at(100, 40),
                ..load
            }],
            vec![],
            vec![],
        ));
        assert_eq!(
            lines,
            [
                "#1 [internal] load build definition from Kubefile",
                "#1 DONE 0.0s"
            ]
        );

        let lines = model.apply(&update(
            vec![Vertex {
                started: at(101, 0),
                completed: at(101, 0),
                cached: true,
                ..copy
            }],
            vec![],
            vec![],
        ));
        assert_eq!(lines, ["", "#2 [2/3] COPY etc etc", "#2 CACHED"]);

        let started_run = Vertex {
            started: at(102, 0),
            ..run.clone()
        };
        let lines = model.apply(&update(
            vec![started_run.clone()],
            vec![],
            vec![log("sha256:c", at(102, 123), "hello\nwor")],
        ));
        assert_eq!(lines, ["", "#3 [3/3] RUN make", "#3 0.123 hello"]);
        let lines = model.apply(&update(
            vec![],
            vec![],
            vec![log("sha256:c", at(103, 0), "ld\n")],
        ));
        assert_eq!(lines, ["#3 0.123 world"]);

        let lines = model.apply(&update(
            vec![Vertex {
                completed: at(103, 500),
                error: "process \"/bin/sh -c make\" did not complete successfully: exit code: 2"
                    .to_owned(),
                ..started_run
            }],
            vec![],
            vec![],
        ));
        assert_eq!(
            lines,
            ["#3 ERROR: process \"/bin/sh -c make\" did not complete successfully: exit code: 2"]
        );
        assert_eq!(
            model.counts(),
            StepCounts {
                total: 3,
                cached: 1,
                completed: 3
            }
        );
        let (name, error, logs) = model.failed_vertex().expect("a failed vertex");
        assert_eq!(name, "[3/3] RUN make");
        assert!(error.ends_with("exit code: 2"));
        assert_eq!(logs, ["hello", "world"]);
    }

    #[test]
    fn switching_between_running_vertexes_parks_the_open_one() {
        let mut model = StatusModel::new();
        let first = Vertex {
            started: at(10, 0),
            ..vertex("sha256:1", "one")
        };
        let second = Vertex {
            started: at(10, 0),
            ..vertex("sha256:2", "two")
        };
        let lines = model.apply(&update(
            vec![first.clone(), second.clone()],
            vec![],
            vec![log("sha256:1", at(11, 0), "partial")],
        ));
        assert_eq!(lines, ["#1 one", "#1 ...", "", "#2 two"]);
        assert_eq!(
            model.running(),
            [(1, "one".to_owned()), (2, "two".to_owned())]
        );
        // The partial line is printed when its vertex is left.
        let lines = model.apply(&update(
            vec![],
            vec![],
            vec![log("sha256:2", at(12, 0), "x\n")],
        ));
        assert_eq!(lines, ["#2 2.000 x"]);
        let lines = model.apply(&update(
            vec![],
            vec![],
            vec![log("sha256:1", at(12, 0), " more\n")],
        ));
        assert_eq!(lines, ["#2 ...", "", "#1 one", "#1 1.000 partial more"]);
        // A repeated announcement without a start time changes nothing.
        assert!(
            model
                .apply(&update(vec![vertex("sha256:1", "one")], vec![], vec![]))
                .is_empty()
        );
        let lines = model.apply(&update(
            vec![Vertex {
                completed: at(20, 0),
                error: "context canceled".to_owned(),
                ..first
            }],
            vec![],
            vec![],
        ));
        assert_eq!(lines, ["#1 CANCELED"]);
        assert!(model.failed_vertex().is_none());
        assert!(model.finish().is_empty());
    }

    #[test]
    fn progress_lines_are_throttled_like_buildkit() {
        let mut model = StatusModel::new();
        model.apply(&update(
            vec![Vertex {
                started: at(0, 0),
                ..vertex("sha256:p", "pull")
            }],
            vec![],
            vec![],
        ));
        let status =
            |current: i64, time: Option<Timestamp>, completed: Option<Timestamp>| VertexStatus {
                id: "sha256:layer".to_owned(),
                vertex: "sha256:p".to_owned(),
                current,
                total: 10_000_000,
                timestamp: time,
                started: at(0, 0),
                completed,
                ..VertexStatus::default()
            };
        let lines = model.apply(&update(
            vec![],
            vec![status(100_000, at(0, 500), None)],
            vec![],
        ));
        assert_eq!(lines, ["#1 sha256:layer 100.00kB / 10.00MB 0.5s"]);
        // Less than 5 % and less than 5 s later: not printed.
        assert!(
            model
                .apply(&update(
                    vec![],
                    vec![status(200_000, at(1, 0), None)],
                    vec![]
                ))
                .is_empty()
        );
        let lines = model.apply(&update(
            vec![],
            vec![status(5_000_000, at(2, 0), None)],
            vec![],
        ));
        assert_eq!(lines, ["#1 sha256:layer 5.00MB / 10.00MB 2.0s"]);
        let done = status(10_000_000, at(3, 0), at(3, 0));
        let lines = model.apply(&update(vec![], vec![done.clone()], vec![]));
        assert_eq!(lines, ["#1 sha256:layer 10.00MB / 10.00MB 3.0s done"]);
        assert!(model.apply(&update(vec![], vec![done], vec![])).is_empty());
    }

    #[test]
    fn log_tails_keep_the_last_thirty_lines() {
        let mut model = StatusModel::new();
        let started = Vertex {
            started: at(0, 0),
            ..vertex("sha256:l", "loud")
        };
        model.apply(&update(vec![started.clone()], vec![], vec![]));
        let mut text = String::new();
        for line in 0..40 {
            writeln!(text, "line {line}").unwrap();
        }
        let lines = model.apply(&update(
            vec![],
            vec![],
            vec![log("sha256:l", at(12, 0), &text)],
        ));
        assert_eq!(lines.len(), 40);
        assert_eq!(lines[0], "#1 12.00 line 0");
        model.apply(&update(
            vec![Vertex {
                completed: at(13, 0),
                error: "failed".to_owned(),
                ..started
            }],
            vec![],
            vec![],
        ));
        let (_, _, logs) = model.failed_vertex().expect("failed");
        assert_eq!(logs.len(), 30);
        assert_eq!(logs[0], "line 10");
        assert_eq!(logs[29], "line 39");
    }

    #[test]
    fn bytes_use_decimal_units() {
        assert_eq!(format_bytes(0), "0B");
        assert_eq!(format_bytes(999), "999B");
        assert_eq!(format_bytes(1234), "1.23kB");
        assert_eq!(format_bytes(4_500_000), "4.50MB");
        assert_eq!(format_bytes(3_000_000_000), "3.00GB");
    }
}
