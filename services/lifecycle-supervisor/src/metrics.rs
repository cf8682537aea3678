//! The supervisor's own Prometheus metrics (beside the HTTP ones of `racetrack_telemetry`).

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use racetrack_telemetry::Metrics;

pub struct SupervisorMetrics {
    /// 1 while this replica leads.
    pub leader: IntGauge,
    pub leadership_changes: IntCounterVec,
    pub sync_runs: IntCounterVec,
    pub sync_duration: Histogram,
    pub last_sync: IntGauge,
    pub fatmen: IntGaugeVec,
    pub status_changes: IntCounterVec,
    pub orphans_found: IntCounter,
    pub orphans_removed: IntCounter,
    pub orphans_pending: IntGauge,
    pub orphan_removal_failures: IntCounter,
    pub reconcile_attempts: IntCounter,
    pub reconcile_failures: IntCounter,
    pub infra_events: IntCounterVec,
    pub event_stream_connects: IntCounter,
    pub crash_loops: IntCounter,
}

#[allow(
    clippy::expect_used,
    reason = "static metric definitions on a fresh registry: a failure is a programming error every test run catches"
)]
fn register<T: prometheus::core::Collector + Clone + 'static>(metrics: &Metrics, c: T) -> T {
    metrics
        .registry()
        .register(Box::new(c.clone()))
        .expect("supervisor metric names are unique");
    c
}

impl SupervisorMetrics {
    #[allow(
        clippy::expect_used,
        reason = "static metric definitions on a fresh registry: a failure is a programming error every test run catches"
    )]
    pub fn new(metrics: &Metrics) -> SupervisorMetrics {
        let opts = Opts::new;
        SupervisorMetrics {
            leader: register(
                metrics,
                IntGauge::with_opts(opts(
                    "supervisor_leader",
                    "1 while this replica holds the leadership and acts",
                ))
                .expect("valid"),
            ),
            leadership_changes: register(
                metrics,
                IntCounterVec::new(
                    opts(
                        "supervisor_leadership_changes_total",
                        "Times this replica became (acquired) or stopped being (lost) the leader",
                    ),
                    &["change"],
                )
                .expect("valid"),
            ),
            sync_runs: register(
                metrics,
                IntCounterVec::new(
                    opts(
                        "supervisor_sync_runs_total",
                        "Registry/infrastructure syncs by result (ok, failed)",
                    ),
                    &["result"],
                )
                .expect("valid"),
            ),
            sync_duration: register(
                metrics,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "supervisor_sync_duration_seconds",
                        "Duration of one full sync (listing, health checks, writes)",
                    )
                    .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]),
                )
                .expect("valid"),
            ),
            last_sync: register(
                metrics,
                IntGauge::with_opts(opts(
                    "supervisor_last_sync_timestamp_seconds",
                    "Unix time the last successful sync ended",
                ))
                .expect("valid"),
            ),
            fatmen: register(
                metrics,
                IntGaugeVec::new(
                    opts(
                        "supervisor_fatmen",
                        "Registered fatmen by status after the last sync",
                    ),
                    &["status"],
                )
                .expect("valid"),
            ),
            status_changes: register(
                metrics,
                IntCounterVec::new(
                    opts(
                        "supervisor_status_changes_total",
                        "Fatman status changes written, by new status",
                    ),
                    &["status"],
                )
                .expect("valid"),
            ),
            orphans_found: register(
                metrics,
                IntCounter::with_opts(opts(
                    "supervisor_orphans_found_total",
                    "Fatmen found in the infrastructure without a registry entry",
                ))
                .expect("valid"),
            ),
            orphans_removed: register(
                metrics,
                IntCounter::with_opts(opts(
                    "supervisor_orphans_removed_total",
                    "Orphan containers removed after the grace period",
                ))
                .expect("valid"),
            ),
            orphans_pending: register(
                metrics,
                IntGauge::with_opts(opts(
                    "supervisor_orphans_pending",
                    "Orphans present in the infrastructure (waiting, or due but kept by dry-run)",
                ))
                .expect("valid"),
            ),
            orphan_removal_failures: register(
                metrics,
                IntCounter::with_opts(opts(
                    "supervisor_orphan_removal_failures_total",
                    "Orphan removals the infrastructure refused",
                ))
                .expect("valid"),
            ),
            reconcile_attempts: register(
                metrics,
                IntCounter::with_opts(opts(
                    "supervisor_reconcile_attempts_total",
                    "Lost fatmen the supervisor asked Lifecycle to re-provision",
                ))
                .expect("valid"),
            ),
            reconcile_failures: register(
                metrics,
                IntCounter::with_opts(opts(
                    "supervisor_reconcile_failures_total",
                    "Re-provisioning attempts that failed",
                ))
                .expect("valid"),
            ),
            infra_events: register(
                metrics,
                IntCounterVec::new(
                    opts(
                        "supervisor_infra_events_total",
                        "Infrastructure events about fatman containers, by kind",
                    ),
                    &["kind"],
                )
                .expect("valid"),
            ),
            event_stream_connects: register(
                metrics,
                IntCounter::with_opts(opts(
                    "supervisor_event_stream_connects_total",
                    "Times an infrastructure event stream was opened",
                ))
                .expect("valid"),
            ),
            crash_loops: register(
                metrics,
                IntCounter::with_opts(opts(
                    "supervisor_crash_loops_total",
                    "Fatmen left in error by the crash-loop rule",
                ))
                .expect("valid"),
            ),
        }
    }
}
