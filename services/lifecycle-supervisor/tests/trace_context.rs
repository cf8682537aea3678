//! W3C trace context from the supervisor to Lifecycle (docs/architecture.md, "Tracing"): a sync
//! is one trace, and each Supervision call carries its span as Lifecycle's parent. Spans go to
//! an in-test OTLP receiver; the fake Lifecycle records the `traceparent` metadata it receives.
//!
//! A test binary of its own: it installs the process-wide subscriber with OTLP export.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{config, fake_lifecycle};
use lifecycle_supervisor::Supervisor;
use racetrack_infra::{DeployedFatman, FatmanSpec, InfraError, InfrastructureTarget};
use racetrack_telemetry::testing::OtlpReceiver;
use racetrack_telemetry::{TelemetryConfig, TraceHeaders};

/// A target with nothing running.
struct EmptyTarget;

#[async_trait::async_trait]
impl InfrastructureTarget for EmptyTarget {
    fn name(&self) -> &str {
        "docker"
    }
    async fn deploy(&self, _: &FatmanSpec) -> Result<DeployedFatman, InfraError> {
        Err(InfraError::Invalid("not in this test".into()))
    }
    async fn delete(&self, _: &str, _: &str) -> Result<(), InfraError> {
        Ok(())
    }
    async fn exists(&self, _: &str, _: &str) -> Result<bool, InfraError> {
        Ok(false)
    }
    async fn list(&self) -> Result<Vec<DeployedFatman>, InfraError> {
        Ok(vec![])
    }
    async fn logs(&self, _: &str, _: &str, _: usize) -> Result<String, InfraError> {
        Ok(String::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_is_one_trace_and_lifecycle_sees_the_calls_span_as_parent() {
    let receiver = OtlpReceiver::start();
    let guard = racetrack_telemetry::init_with(TelemetryConfig {
        otlp_endpoint: Some(receiver.endpoint()),
        ..TelemetryConfig::new("lifecycle-supervisor")
    })
    .unwrap();
    assert!(guard.installed() && guard.otlp_enabled());

    let fake = fake_lifecycle(|_| {});
    fake.register("traced", "running", "127.0.0.1:1");
    let targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> =
        BTreeMap::from([("docker".to_string(), Arc::new(EmptyTarget) as _)]);
    let sup = Supervisor::new(
        config(&fake, &[]),
        targets,
        racetrack_events::Publisher::disabled(),
    )
    .unwrap();
    sup.leadership.set(true, Duration::from_secs(60));
    sup.sync_once().await.unwrap();

    let received = fake.registry.lock().unwrap().traceparents.clone();
    let parent_of = |method: &str| {
        let (_, tp) = received
            .iter()
            .find(|(m, _)| m == method)
            .unwrap_or_else(|| panic!("no {method} call in {received:?}"));
        let tp = tp
            .as_deref()
            .unwrap_or_else(|| panic!("{method} came without traceparent"));
        TraceHeaders::parse(tp, None).expect("a valid traceparent")
    };
    let list = parent_of("ListFatmen");
    let report = parent_of("ReportObservations");

    let list_span = receiver
        .wait_for(&guard, |s| s.span_id == list.parent_id())
        .await;
    assert_eq!(list_span.name, "supervision.list_fatmen");
    assert_eq!(list_span.service, "lifecycle-supervisor");
    let report_span = receiver
        .wait_for(&guard, |s| s.span_id == report.parent_id())
        .await;
    assert_eq!(report_span.name, "supervision.report");

    // Both calls are children of the same sync span: one trace per sync.
    let sync = receiver
        .wait_for(&guard, |s| s.span_id == list_span.parent_span_id)
        .await;
    assert_eq!(sync.name, "sync");
    assert_eq!(report_span.parent_span_id, sync.span_id);
    for trace in [list.trace_id(), report.trace_id(), &report_span.trace_id] {
        assert_eq!(trace, sync.trace_id);
    }
}
