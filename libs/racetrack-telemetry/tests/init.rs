//! `init` from the environment, repeated calls, and real OTLP export with no
//! async runtime around.
//!
//! One test only: the global subscriber can be installed once per process.

mod common;

use std::time::Duration;

use common::{contains, fake_collector, HTTP2_PREFACE};

#[test]
fn init_from_env_is_idempotent_and_exports_spans_over_otlp() {
    let (endpoint, exported) = fake_collector(b"unit_of_work");

    // Edition 2021 and the only test of this binary: no concurrent env access.
    std::env::set_var("RUST_LOG", "info");
    std::env::set_var("LOG_FORMAT", "json");
    std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint);

    // No Tokio runtime around: init must not need one, even with OTLP.
    let guard = racetrack_telemetry::init("telemetry-test").expect("first init");
    assert!(guard.installed());
    assert!(guard.otlp_enabled());

    // Repeated calls are harmless no-ops.
    let again = racetrack_telemetry::init("telemetry-test").expect("second init");
    assert!(!again.installed());
    assert!(!again.otlp_enabled());
    drop(again);
    racetrack_telemetry::init_for_tests();
    // An invalid config is still reported on later calls.
    std::env::set_var("LOG_FORMAT", "yaml");
    assert!(racetrack_telemetry::init("telemetry-test").is_err());

    tracing::info_span!("unit_of_work", answer = 42).in_scope(|| {
        tracing::info!("inside a span");
    });

    // Dropping the guard flushes the batch to the collector.
    drop(guard);
    let sent = exported
        .recv_timeout(Duration::from_secs(15))
        .expect("exporter connected to the collector");
    assert!(
        sent.starts_with(HTTP2_PREFACE),
        "expected an HTTP/2 (gRPC) connection preface, got {sent:?}"
    );
    // The protobuf payload carries the span and the resource's service.name.
    assert!(contains(&sent, b"unit_of_work"), "span not exported");
    assert!(contains(&sent, b"service.name"));
    assert!(contains(&sent, b"telemetry-test"));
}
