//! W3C trace context (`traceparent` / `tracestate`) across service boundaries: one place that
//! reads a caller's context off HTTP headers or gRPC metadata and writes ours onto outgoing
//! calls, so a call's spans in PUB, Lifecycle, the image-builder and a fatman form one trace
//! (docs/architecture.md, "Tracing").
//!
//! Everything here goes through `TraceContextPropagator` and the `tracing-opentelemetry` layer
//! installed by [`crate::init`]. Without that layer (no `OTEL_EXPORTER_OTLP_ENDPOINT`, or
//! `init_for_tests`) spans carry no OpenTelemetry context: the `inject*` functions then
//! write nothing and setting a parent is a no-op, so callers need no "is tracing on" checks.
//!
//! Wiring, one line each:
//! * gRPC client: `Client::with_interceptor(channel, racetrack_telemetry::PropagateTrace)`, or
//!   [`inject_grpc`] on a `tonic::Request` (when the client already has an interceptor);
//! * gRPC server: `Server::builder().trace_fn(racetrack_telemetry::grpc_server_span)` (a
//!   `grpc_request` span per call, child of the caller's span), or [`set_parent_from_grpc`] on a
//!   span of one's own that must be the caller's direct child;
//! * HTTP server (actix): [`crate::RequestTelemetry`] does it; other servers use [`extract`];
//! * HTTP client: [`TraceHeaders::of_span`] gives the two header values to write.

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header (and gRPC metadata key) with the caller's trace id, span id and flags.
pub const TRACEPARENT: &str = "traceparent";
/// Header (and gRPC metadata key) with vendor-specific trace state.
pub const TRACESTATE: &str = "tracestate";

/// Longest `traceparent` / `tracestate` value taken from a caller: the W3C format of version 00
/// is 55 characters and a `tracestate` of the 32 members it allows fits in 512 in practice.
/// Anything longer is dropped rather than parsed.
const MAX_TRACE_HEADER_LEN: usize = 512;

/// Reads a caller's context: the remote parent in `traceparent` (and its `tracestate`), looked up
/// with `get` (a header map, gRPC metadata...). An absent, malformed or oversized `traceparent`
/// gives an empty context (no parent).
pub fn extract<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Context {
    // The marker ties the values' lifetime to the extractor's, as `Extractor::get` needs.
    struct Lookup<'a, F>(F, std::marker::PhantomData<&'a str>);
    impl<'a, F: Fn(&str) -> Option<&'a str>> Extractor for Lookup<'a, F> {
        fn get(&self, key: &str) -> Option<&str> {
            (self.0)(key).filter(|v| v.len() <= MAX_TRACE_HEADER_LEN)
        }
        fn keys(&self) -> Vec<&str> {
            vec![TRACEPARENT, TRACESTATE]
        }
    }
    TraceContextPropagator::new().extract(&Lookup(get, std::marker::PhantomData))
}

/// Whether `cx` holds a remote parent worth adopting.
pub fn has_remote_parent(cx: &Context) -> bool {
    cx.span().span_context().is_valid()
}

/// Makes the caller's span (in `cx`, from [`extract`]) the parent of `span`. Call it right
/// after creating `span`, before it is entered or instrumented: OpenTelemetry fixes a span's
/// parent when the span starts. A context without a valid parent leaves `span` as it is.
pub fn set_parent(span: &tracing::Span, cx: Context) {
    if !has_remote_parent(&cx) {
        return;
    }
    // Fails only without the OpenTelemetry layer (nothing to link), or on a misuse (span
    // already started) that tests catch: not worth failing a request for.
    if let Err(error) = span.set_parent(cx) {
        tracing::debug!(%error, "trace parent not set");
    }
}

/// A trace context as it travels: the two W3C header values, normalised (lower-case hex,
/// version 00, no `tracestate` when empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    /// `00-{trace id}-{parent span id}-{flags}`.
    pub traceparent: String,
    /// Vendor state, passed along as received (after validation).
    pub tracestate: Option<String>,
}

impl TraceHeaders {
    /// The context `span` hands on to the calls it makes: its own trace id and span id. `None`
    /// when the span has no OpenTelemetry context (no layer, or a disabled span).
    pub fn of_span(span: &tracing::Span) -> Option<TraceHeaders> {
        if span.is_disabled() {
            return None;
        }
        Self::of_context(&span.context())
    }

    /// [`TraceHeaders::of_span`] of the current span.
    pub fn current() -> Option<TraceHeaders> {
        Self::of_span(&tracing::Span::current())
    }

    /// The span in `cx` as header values; `None` without a valid span.
    pub fn of_context(cx: &Context) -> Option<TraceHeaders> {
        #[derive(Default)]
        struct Collect(Option<String>, Option<String>);
        impl Injector for Collect {
            fn set(&mut self, key: &str, value: String) {
                match key {
                    TRACEPARENT => self.0 = Some(value),
                    TRACESTATE if !value.is_empty() => self.1 = Some(value),
                    _ => {}
                }
            }
        }
        let mut out = Collect::default();
        TraceContextPropagator::new().inject_context(cx, &mut out);
        Some(TraceHeaders {
            traceparent: out.0?,
            tracestate: out.1,
        })
    }

    /// Validates a caller's values and writes them again in normal form: what an intermediary
    /// that records no span of its own forwards. `None` when `traceparent` is invalid (then
    /// `tracestate` is dropped too, as the W3C specification requires).
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Option<TraceHeaders> {
        let cx = extract(|key| match key {
            TRACEPARENT => Some(traceparent),
            TRACESTATE => tracestate,
            _ => None,
        });
        Self::of_context(&cx)
    }

    /// The trace id (32 lower-case hex digits).
    pub fn trace_id(&self) -> &str {
        self.traceparent.get(3..35).unwrap_or_default()
    }

    /// The parent span id (16 lower-case hex digits): the span that made the call.
    pub fn parent_id(&self) -> &str {
        self.traceparent.get(36..52).unwrap_or_default()
    }
}

/// Writes the current span's context into a gRPC request's metadata, for a client that cannot
/// use [`PropagateTrace`] as its interceptor. Call it where the span making the call is current.
pub fn inject_grpc<T>(request: &mut tonic::Request<T>) {
    inject_metadata(request.metadata_mut(), &tracing::Span::current());
}

/// Writes `span`'s context into gRPC metadata (replacing any there).
pub fn inject_metadata(metadata: &mut tonic::metadata::MetadataMap, span: &tracing::Span) {
    let Some(headers) = TraceHeaders::of_span(span) else {
        return;
    };
    // Both values are printable ASCII by construction.
    if let Ok(v) = headers.traceparent.parse() {
        metadata.insert(TRACEPARENT, v);
    }
    metadata.remove(TRACESTATE);
    if let Some(Ok(v)) = headers.tracestate.map(|s| s.parse()) {
        metadata.insert(TRACESTATE, v);
    }
}

/// The caller's context from a gRPC request's metadata.
pub fn extract_grpc<T>(request: &tonic::Request<T>) -> Context {
    let metadata = request.metadata();
    extract(|key| metadata.get(key).and_then(|v| v.to_str().ok()))
}

/// Server side: makes the gRPC caller's span the parent of `span` (see [`set_parent`] for when
/// to call it).
pub fn set_parent_from_grpc<T>(span: &tracing::Span, request: &tonic::Request<T>) {
    set_parent(span, extract_grpc(request));
}

/// A tonic client interceptor adding the current span's `traceparent` to every call:
/// `FooClient::with_interceptor(channel, PropagateTrace)`. The interceptor runs while the call's
/// future is polled, i.e. inside the span that awaits the call.
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagateTrace;

impl tonic::service::Interceptor for PropagateTrace {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        inject_grpc(&mut request);
        Ok(request)
    }
}

/// For `tonic::transport::Server::builder().trace_fn(grpc_server_span)`: a `grpc_request` span
/// around every call, named after the method and parented by the caller's span. Handler spans
/// (e.g. `#[tracing::instrument]` on a method) become its children.
pub fn grpc_server_span(request: &tonic::codegen::http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    let span = tracing::info_span!(
        "grpc_request",
        rpc.method = %path,
        otel.name = %path.trim_start_matches('/'),
        otel.kind = "server",
    );
    let headers = request.headers();
    set_parent(
        &span,
        extract(|key| headers.get(key).and_then(|v| v.to_str().ok())),
    );
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn valid_headers_are_kept_in_normal_form() {
        let h = TraceHeaders::parse(PARENT, Some("vendor=abc,other=1")).unwrap();
        assert_eq!(h.traceparent, PARENT);
        assert_eq!(h.tracestate.as_deref(), Some("vendor=abc,other=1"));
        assert_eq!(h.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(h.parent_id(), "00f067aa0ba902b7");

        // A later version's extra fields are dropped; the flags keep only "sampled".
        let h = TraceHeaders::parse(
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-extra",
            None,
        )
        .unwrap();
        assert_eq!(h.traceparent, PARENT);
        assert_eq!(h.tracestate, None);
    }

    #[test]
    fn invalid_headers_are_dropped_with_their_state() {
        for bad in [
            "",
            "garbage",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\nx: y",
        ] {
            assert_eq!(
                TraceHeaders::parse(bad, Some("vendor=abc")),
                None,
                "{bad:?}"
            );
        }
        let long = format!("{PARENT}{}", "-".repeat(MAX_TRACE_HEADER_LEN));
        assert_eq!(TraceHeaders::parse(&long, None), None);
        // An invalid state alone is dropped, the parent kept.
        let h = TraceHeaders::parse(PARENT, Some("not a state\u{7}")).unwrap();
        assert_eq!(h.tracestate, None);
    }

    #[test]
    fn grpc_metadata_round_trip() {
        let mut request = tonic::Request::new(());
        request
            .metadata_mut()
            .insert(TRACEPARENT, PARENT.parse().unwrap());
        let cx = extract_grpc(&request);
        assert!(has_remote_parent(&cx));
        assert_eq!(TraceHeaders::of_context(&cx).unwrap().traceparent, PARENT);

        let empty = extract_grpc(&tonic::Request::new(()));
        assert!(!has_remote_parent(&empty));
        assert_eq!(TraceHeaders::of_context(&empty), None);
    }

    #[test]
    fn without_the_opentelemetry_layer_nothing_is_injected() {
        // No subscriber in this test: spans are disabled and carry no context.
        let span = tracing::info_span!("call");
        assert_eq!(TraceHeaders::of_span(&span), None);
        let mut request = tonic::Request::new(());
        let _enter = span.enter();
        inject_grpc(&mut request);
        assert!(request.metadata().get(TRACEPARENT).is_none());
    }
}
