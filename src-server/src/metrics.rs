//! The server's Prometheus metrics, kept per server instance (no global recorder), so that several
//! servers in one process (tests, the app) keep separate counts.
//!
//! Handles are registered once and updated with atomics on the hot path; `/metrics` renders them.

use metrics::{Counter, Gauge, Histogram, Key, Label, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

/// Why a client frame was refused, as the `reason` label of `lectern_rejected_frames_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not JSON, or a frame before `hello`.
    Protocol,
    /// JSON with a bad type or field.
    BadRequest,
    /// A student sent a teacher command.
    Forbidden,
    /// Over the frame rate.
    RateLimited,
    /// A binary frame.
    Binary,
    /// Over the frame size limit.
    TooBig,
    /// Bad code, key or token.
    Auth,
}

impl Rejected {
    const ALL: [Rejected; 7] = [
        Rejected::Protocol,
        Rejected::BadRequest,
        Rejected::Forbidden,
        Rejected::RateLimited,
        Rejected::Binary,
        Rejected::TooBig,
        Rejected::Auth,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejected::Protocol => "protocol",
            Rejected::BadRequest => "bad_request",
            Rejected::Forbidden => "forbidden",
            Rejected::RateLimited => "rate_limited",
            Rejected::Binary => "binary",
            Rejected::TooBig => "too_big",
            Rejected::Auth => "auth",
        }
    }
}

/// Every metric the server exports.
#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
    /// Open WebSocket connections of students.
    pub students: Gauge,
    /// Open WebSocket connections of teachers.
    pub teachers: Gauge,
    /// Open second paths of students (PROTOCOL-ADDITIONS N).
    pub second_paths: Gauge,
    /// Accepted patches.
    pub patches: Counter,
    /// Patch frames written to sockets.
    pub deliveries: Counter,
    /// From a patch's acceptance to its write on each socket, in seconds.
    pub fanout_seconds: Histogram,
    /// Queues replaced by a snapshot.
    pub conflations: Counter,
    /// Snapshots sent (resync answers and conflations).
    pub syncs: Counter,
    /// Of those, the partial ones: only the pages whose marks the client lacked (PROTOCOL-ADDITIONS O).
    pub partial_syncs: Counter,
    /// Tail probes sent (a tiny frame after a change nothing followed; docs/WIFI.md).
    pub tail_probes: Counter,
    /// On a relay: entries about its students that could not be written while Redis was away (it
    /// says whom it has again once Redis is back).
    pub relay_lost: Counter,
    /// On a relay: entries in a room's stream the teacher's server did not sign (someone else can
    /// write into Redis), dropped.
    pub relay_forged: Counter,
    rejected: [Counter; 7],
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

const BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

impl Metrics {
    /// Registers every metric with a fresh recorder.
    pub fn new() -> Metrics {
        let recorder: PrometheusRecorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let meta = Metadata::new(module_path!(), metrics::Level::INFO, None);
        let counter = |name: &'static str, labels: Vec<Label>| {
            recorder.register_counter(&Key::from_parts(name, labels), &meta)
        };
        let gauge = |name: &'static str, labels: Vec<Label>| {
            recorder.register_gauge(&Key::from_parts(name, labels), &meta)
        };
        let describe = |name: &'static str, help: &'static str| {
            recorder.describe_counter(name.into(), None, help.into());
        };
        describe("lectern_connections", "Open WebSocket connections by role.");
        describe("lectern_patches_total", "Patches accepted from teachers.");
        describe("lectern_deliveries_total", "Patch frames written to participants' sockets.");
        describe("lectern_fanout_seconds", "Time from a patch's acceptance to its write on a socket.");
        describe("lectern_conflations_total", "Send queues that were full and replaced by one snapshot.");
        describe("lectern_syncs_total", "Snapshots sent to clients.");
        describe("lectern_tail_probes_total", "Tail probes sent after a change nothing followed.");
        describe("lectern_relay_lost_entries_total", "Relay: entries lost while Redis was away.");
        describe(
            "lectern_relay_forged_entries_total",
            "Relay: entries in Redis its teacher did not sign, dropped.",
        );
        describe("lectern_rejected_frames_total", "Client frames refused, by reason.");
        let rejected = Rejected::ALL
            .map(|r| counter("lectern_rejected_frames_total", vec![Label::new("reason", r.label())]));
        Metrics {
            handle: recorder.handle(),
            students: gauge("lectern_connections", vec![Label::new("role", "student")]),
            teachers: gauge("lectern_connections", vec![Label::new("role", "teacher")]),
            second_paths: gauge("lectern_connections", vec![Label::new("role", "second_path")]),
            patches: counter("lectern_patches_total", vec![]),
            deliveries: counter("lectern_deliveries_total", vec![]),
            fanout_seconds: recorder
                .register_histogram(&Key::from_parts("lectern_fanout_seconds", Vec::<Label>::new()), &meta),
            conflations: counter("lectern_conflations_total", vec![]),
            syncs: counter("lectern_syncs_total", vec![]),
            partial_syncs: counter("lectern_partial_syncs_total", vec![]),
            tail_probes: counter("lectern_tail_probes_total", vec![]),
            relay_lost: counter("lectern_relay_lost_entries_total", vec![]),
            relay_forged: counter("lectern_relay_forged_entries_total", vec![]),
            rejected,
        }
    }

    /// Counts a refused frame.
    pub fn reject(&self, why: Rejected) {
        if let Some(c) = Rejected::ALL.iter().position(|r| *r == why).and_then(|i| self.rejected.get(i)) {
            c.increment(1);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded histogram samples into buckets; call every few seconds so memory stays bounded.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}
