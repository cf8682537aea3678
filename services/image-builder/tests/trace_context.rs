//! W3C trace context from Lifecycle to the builder (docs/architecture.md, "Tracing"): the
//! `build` span is a child of the span that called `Build`, seen at an in-test OTLP receiver.
//! Needs no Docker: the builds fail their first check (an unknown job type).
//!
//! A test binary of its own: it installs the process-wide subscriber with OTLP export.

mod common;

use common::*;
use racetrack_telemetry::testing::OtlpReceiver;
use racetrack_telemetry::{TelemetryConfig, TraceHeaders};
use tracing::Instrument;

const MANIFEST: &str =
    "name: traced\nversion: 1.0.0\nowner_email: a@b.cd\nlang: no-such-job-type:1.0.0\ngit:\n  remote: https://h/r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_build_span_is_a_child_of_the_callers_span() {
    let receiver = OtlpReceiver::start();
    let guard = racetrack_telemetry::init_with(TelemetryConfig {
        otlp_endpoint: Some(receiver.endpoint()),
        ..TelemetryConfig::new("image-builder")
    })
    .expect("telemetry");
    assert!(guard.installed() && guard.otlp_enabled());
    let server = Server::start(&unique("ibtrace"), &[]).await;
    let mut client = server.client().await;

    // Lifecycle's side: the call made inside its deploy span, with the helper it uses.
    let deploy = tracing::info_span!("deploy", deployment = "traced-1");
    let outcome = async {
        let mut call = tonic::Request::new(request("traced-1", MANIFEST, Vec::new(), "t1"));
        racetrack_telemetry::inject_grpc(&mut call);
        assert!(call.metadata().get("traceparent").is_some());
        let stream = client
            .build(call)
            .await
            .expect("Build accepted")
            .into_inner();
        collect(stream).await
    }
    .instrument(deploy.clone())
    .await;
    assert!(!outcome.result().success, "{outcome:?}");
    let caller = TraceHeaders::of_span(&deploy).expect("the deploy span has a context");

    let build_span = receiver
        .wait_for(&guard, |s| {
            s.name == "build" && s.trace_id == caller.trace_id()
        })
        .await;
    assert_eq!(
        build_span.parent_span_id,
        caller.parent_id(),
        "{build_span:?}"
    );
    assert_eq!(build_span.service, "image-builder");

    // Without a traceparent the build starts its own trace.
    let outcome = build(
        &mut client,
        request("untraced-1", MANIFEST, Vec::new(), "t1"),
    )
    .await;
    assert!(!outcome.result().success);
    let lone = receiver
        .wait_for(&guard, |s| {
            s.name == "build" && s.trace_id != caller.trace_id() && s.span_id != build_span.span_id
        })
        .await;
    assert_eq!(lone.parent_span_id, "", "{lone:?}");
}
