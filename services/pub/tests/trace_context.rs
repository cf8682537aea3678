//! W3C trace context through PUB (docs/architecture.md, "Tracing"): spans exported to an
//! in-test OTLP receiver, `traceparent` as the fatman and Lifecycle receive it.
//!
//! A test binary of its own: it installs the process-wide subscriber with OTLP export, which
//! no other test may have installed first.

mod common;

use common::*;
use racetrack_telemetry::testing::OtlpReceiver;
use racetrack_telemetry::{TelemetryConfig, TelemetryGuard, TraceHeaders};
use std::sync::OnceLock;

const CLIENT_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN: &str = "b7ad6b7169203331";

/// The receiver and the subscriber exporting to it, once for the whole binary.
fn telemetry() -> &'static (OtlpReceiver, TelemetryGuard) {
    static TELEMETRY: OnceLock<(OtlpReceiver, TelemetryGuard)> = OnceLock::new();
    TELEMETRY.get_or_init(|| {
        let receiver = OtlpReceiver::start();
        let guard = racetrack_telemetry::init_with(TelemetryConfig {
            otlp_endpoint: Some(receiver.endpoint()),
            ..TelemetryConfig::new("pub")
        })
        .expect("telemetry");
        assert!(guard.installed() && guard.otlp_enabled());
        (receiver, guard)
    })
}

/// What the echo fatman received as `traceparent` / `tracestate` for a call with `headers`.
async fn forwarded(h: &Harness, headers: &[(&str, &str)]) -> (Option<String>, Option<String>) {
    let mut req = h
        .client
        .get(format!("{}/fatman/echo/latest/api/v1/perform", h.pub_url))
        .header("X-Racetrack-Auth", "good");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let echo: serde_json::Value = resp.json().await.unwrap();
    let get = |name: &str| echo["headers"][name].as_str().map(str::to_string);
    (get("traceparent"), get("tracestate"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fatman_and_lifecycle_see_pubs_span_as_their_parent() {
    let (receiver, guard) = telemetry();
    let h = harness(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())]).await;

    let client_parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let (parent, state) = forwarded(
        &h,
        &[
            ("traceparent", client_parent.as_str()),
            ("tracestate", "client=1"),
        ],
    )
    .await;
    let parent = TraceHeaders::parse(&parent.expect("the fatman got a traceparent"), None)
        .expect("a valid traceparent");
    assert_eq!(
        parent.trace_id(),
        CLIENT_TRACE,
        "the client's trace goes on"
    );
    assert_ne!(parent.parent_id(), CLIENT_SPAN, "PUB's span is in between");
    assert_eq!(state.as_deref(), Some("client=1"));

    // PUB's call span: in the client's trace, child of the client's span, parent of the fatman.
    let proxy = receiver
        .wait_for(guard, |s| s.span_id == parent.parent_id())
        .await;
    assert_eq!(proxy.name, "proxy");
    assert_eq!(proxy.service, "pub");
    assert_eq!(proxy.trace_id, CLIENT_TRACE);
    assert_eq!(proxy.parent_span_id, CLIENT_SPAN);

    // Lifecycle was asked inside the same span.
    let asked = h.lifecycle.resolve_traceparents.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    let asked = TraceHeaders::parse(&asked[0], None).expect("ResolveFatman carried a traceparent");
    assert_eq!(asked.trace_id(), CLIENT_TRACE);
    assert_eq!(asked.parent_id(), proxy.span_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_traceparent_is_replaced_and_starts_no_trace() {
    let (receiver, guard) = telemetry();
    let h = harness(&[("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint())]).await;

    let (parent, state) = forwarded(
        &h,
        &[
            ("traceparent", "00-not-a-trace-01"),
            ("tracestate", "forged=1"),
        ],
    )
    .await;
    let parent = TraceHeaders::parse(&parent.expect("PUB's own traceparent"), None).unwrap();
    assert_eq!(state, None, "no state without a valid parent");
    let proxy = receiver
        .wait_for(guard, |s| s.span_id == parent.parent_id())
        .await;
    assert_eq!(proxy.name, "proxy");
    assert_eq!(proxy.trace_id, parent.trace_id());
    assert_eq!(
        proxy.parent_span_id, "",
        "a root span: the garbage was no parent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_call_spans_pub_passes_on_only_a_valid_context() {
    // Installed for the binary, but this PUB records no call spans (no OTLP in its config).
    telemetry();
    let h = harness(&[]).await;

    let client_parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let (parent, state) = forwarded(
        &h,
        &[
            ("TraceParent", client_parent.as_str()),
            ("tracestate", "client=1"),
        ],
    )
    .await;
    assert_eq!(parent.as_deref(), Some(client_parent.as_str()));
    assert_eq!(state.as_deref(), Some("client=1"));

    let upper = client_parent.to_uppercase();
    let (parent, state) = forwarded(
        &h,
        &[("traceparent", upper.as_str()), ("tracestate", "client=1")],
    )
    .await;
    assert_eq!(parent, None, "an invalid traceparent is dropped");
    assert_eq!(state, None);

    let (parent, state) = forwarded(
        &h,
        &[
            ("traceparent", client_parent.as_str()),
            ("traceparent", client_parent.as_str()),
        ],
    )
    .await;
    assert_eq!((parent, state), (None, None), "two parents: neither");
}
