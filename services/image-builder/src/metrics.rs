//! Image-builder metrics (names as in the original service, including its `images_buidling_errors`
//! spelling, so existing dashboards keep working), registered on the service's registry.

use prometheus::{Counter, CounterVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

pub struct BuilderMetrics {
    pub images_built: IntCounter,
    pub images_building_errors: IntCounter,
    pub requests: IntCounterVec,
    pub done_requests: IntCounterVec,
    pub request_duration_seconds: CounterVec,
    pub images_pushed: IntCounterVec,
    pub images_pushed_duration: CounterVec,
    pub active_building_tasks: IntGauge,
    pub waiting_building_tasks: IntGauge,
}

const LABELS: &[&str] = &["fatman_name", "fatman_version"];

impl BuilderMetrics {
    pub fn register(registry: &Registry) -> Result<BuilderMetrics, prometheus::Error> {
        let m = BuilderMetrics {
            images_built: IntCounter::new("images_built", "Number of images built successfully")?,
            images_building_errors: IntCounter::new(
                "images_buidling_errors",
                "Number of failed image builds",
            )?,
            requests: IntCounterVec::new(
                Opts::new(
                    "image_building_requests",
                    "Number of build requests received",
                ),
                LABELS,
            )?,
            done_requests: IntCounterVec::new(
                Opts::new(
                    "image_building_done_requests",
                    "Number of build requests finished",
                ),
                LABELS,
            )?,
            request_duration_seconds: CounterVec::new(
                Opts::new(
                    "image_building_request_duration_seconds",
                    "Total time spent on build requests, in seconds",
                ),
                LABELS,
            )?,
            images_pushed: IntCounterVec::new(
                Opts::new("images_pushed", "Number of images pushed to the registry"),
                LABELS,
            )?,
            images_pushed_duration: CounterVec::new(
                Opts::new(
                    "images_pushed_duration",
                    "Total time spent pushing images, in seconds",
                ),
                LABELS,
            )?,
            active_building_tasks: IntGauge::new(
                "active_building_tasks",
                "Builds running right now",
            )?,
            waiting_building_tasks: IntGauge::new(
                "waiting_building_tasks",
                "Builds waiting for a build slot",
            )?,
        };
        registry.register(Box::new(m.images_built.clone()))?;
        registry.register(Box::new(m.images_building_errors.clone()))?;
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.done_requests.clone()))?;
        registry.register(Box::new(m.request_duration_seconds.clone()))?;
        registry.register(Box::new(m.images_pushed.clone()))?;
        registry.register(Box::new(m.images_pushed_duration.clone()))?;
        registry.register(Box::new(m.active_building_tasks.clone()))?;
        registry.register(Box::new(m.waiting_building_tasks.clone()))?;
        Ok(m)
    }

    /// A set registered on a throwaway registry (tests, embedding).
    #[allow(
        clippy::expect_used,
        reason = "static metric definitions on a fresh registry: a failure is a programming error every test run catches"
    )]
    pub fn unregistered() -> BuilderMetrics {
        BuilderMetrics::register(&Registry::new()).expect("fresh registry")
    }

    pub fn duration(&self, name: &str, version: &str) -> Counter {
        self.request_duration_seconds
            .with_label_values(&[name, version])
    }
}

/// Increments a gauge for as long as it lives.
pub struct GaugeGuard(IntGauge);

impl GaugeGuard {
    pub fn new(gauge: &IntGauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
