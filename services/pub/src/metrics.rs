//! PUB's Prometheus metrics (names follow the original PUB where it had one).

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts,
};
use racetrack_telemetry::Metrics;

pub struct PubMetrics {
    pub registry: Metrics,
    pub proxy_requests: IntCounterVec,
    pub response_codes: IntCounterVec,
    pub call_time: HistogramVec,
    pub proxy_errors: IntCounterVec,
    pub request_errors: IntCounterVec,
    pub auth_successful: IntCounter,
    pub auth_failed: IntCounter,
    pub cache_hits: IntCounterVec,
    pub cache_misses: IntCounterVec,
    pub lifecycle_calls: IntCounterVec,
    pub lifecycle_call_time: Histogram,
    pub health_requests: IntCounter,
    pub invalidations: IntCounterVec,
    pub stale_answers: IntCounter,
    pub connections_refused: IntCounterVec,
}

impl PubMetrics {
    #[allow(
        clippy::expect_used,
        reason = "static metric definitions on a fresh registry: a failure is a programming error every test run catches"
    )]
    pub fn new() -> PubMetrics {
        let registry = Metrics::new("pub");
        let r = registry.registry().clone();
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("static metric definition is valid");
            r.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .expect("static metric definition is valid");
            r.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        // 1 ms × 2^k, 21 buckets: up to ~17 min, as the original's histogram.
        let buckets = exponential_buckets(0.001, 2.0, 21).expect("valid buckets");
        let call_time = HistogramVec::new(
            HistogramOpts::new(
                "pub_fatman_call_response_time_histogram",
                "Seconds until a fatman's response headers",
            )
            .buckets(buckets.clone()),
            &["fatman_name", "fatman_version"],
        )
        .expect("static metric definition is valid");
        r.register(Box::new(call_time.clone()))
            .expect("unique metric");
        let lifecycle_call_time = Histogram::with_opts(
            HistogramOpts::new("pub_lifecycle_call_time", "Seconds per Lifecycle gRPC call")
                .buckets(exponential_buckets(0.0005, 2.0, 14).expect("valid buckets")),
        )
        .expect("static metric definition is valid");
        r.register(Box::new(lifecycle_call_time.clone()))
            .expect("unique metric");
        PubMetrics {
            proxy_requests: counter_vec(
                "pub_fatman_proxy_requests",
                "Calls proxied to fatmen",
                &["fatman_name", "fatman_version"],
            ),
            response_codes: counter_vec(
                "pub_fatman_proxy_response_codes",
                "Fatman responses by status code",
                &["fatman_name", "fatman_version", "status_code"],
            ),
            call_time,
            proxy_errors: counter_vec(
                "pub_fatman_proxy_errors",
                "Calls that failed reaching the fatman, by hop (connect, timeout, response)",
                &["hop"],
            ),
            request_errors: counter_vec(
                "pub_fatman_proxy_request_errors",
                "Calls refused before proxying, by status code",
                &["status_code"],
            ),
            auth_successful: counter("pub_auth_successful", "Calls allowed"),
            auth_failed: counter("pub_auth_failed", "Calls refused for auth"),
            cache_hits: counter_vec("pub_auth_cache_hits", "Cache hits", &["cache"]),
            cache_misses: counter_vec("pub_auth_cache_misses", "Cache misses", &["cache"]),
            lifecycle_calls: counter_vec(
                "pub_lifecycle_calls",
                "Lifecycle gRPC calls by method and result",
                &["method", "result"],
            ),
            lifecycle_call_time,
            health_requests: counter("pub_health_requests", "GET /health calls"),
            invalidations: counter_vec(
                "pub_cache_invalidations",
                "Invalidation notifications received, by kind",
                &["kind"],
            ),
            stale_answers: counter(
                "pub_cache_stale_answers",
                "Lifecycle answers not cached because an invalidation came while they were asked",
            ),
            connections_refused: counter_vec(
                "pub_connections_refused",
                "Connections closed at once, by reason (per_address: over MAX_CONNECTIONS_PER_ADDRESS)",
                &["reason"],
            ),
            registry,
        }
    }
}

impl Default for PubMetrics {
    fn default() -> Self {
        Self::new()
    }
}
