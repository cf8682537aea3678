//! Global subscriber installation: log filter, text/JSON output, OTLP export.

use std::io::IsTerminal;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::error::TelemetryError;

/// Env var with the `EnvFilter` directives (`info` when unset or empty).
pub const ENV_LOG_FILTER: &str = "RUST_LOG";
/// Env var selecting the log format: `text` (default) or `json`.
pub const ENV_LOG_FORMAT: &str = "LOG_FORMAT";
/// Env var with the OTLP gRPC collector endpoint; OTLP export is off when unset or empty.
pub const ENV_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// Filter used when `RUST_LOG` is unset.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// Targets whose spans are never exported over OTLP: the exporter's own
/// transport stack would otherwise trace its own exports (a feedback loop).
const EXPORTER_INTERNAL_TARGETS: [&str; 7] = [
    "opentelemetry",
    "tonic",
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tokio",
];

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human readable, one line per event with the span context as prefix.
    #[default]
    Text,
    /// One JSON object per line: event fields flattened at the top level,
    /// the current span's fields under `span`.
    Json,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err(TelemetryError::InvalidLogFormat(s.to_owned())),
        }
    }
}

/// Everything [`init_with`] needs; [`TelemetryConfig::from_env`] reads it
/// from the environment the way [`init`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelemetryConfig {
    /// OpenTelemetry `service.name` resource attribute.
    pub service_name: &'static str,
    /// `EnvFilter` directives, e.g. `info,racetrack_db=debug`.
    pub log_filter: String,
    /// Output format of log lines (always written to stdout).
    pub log_format: LogFormat,
    /// OTLP gRPC endpoint (e.g. `http://otel-collector:4317`); `None` disables export.
    pub otlp_endpoint: Option<String>,
}

impl TelemetryConfig {
    /// Defaults: filter `info`, text format, no OTLP export.
    pub fn new(service_name: &'static str) -> Self {
        TelemetryConfig {
            service_name,
            log_filter: DEFAULT_LOG_FILTER.to_owned(),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
        }
    }

    /// Reads `RUST_LOG`, `LOG_FORMAT` and `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn from_env(service_name: &'static str) -> Result<Self, TelemetryError> {
        Self::from_lookup(service_name, |key| std::env::var(key).ok())
    }

    /// Like [`TelemetryConfig::from_env`] with a custom variable lookup.
    pub fn from_lookup(
        service_name: &'static str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, TelemetryError> {
        let non_empty = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let log_format = match non_empty(ENV_LOG_FORMAT) {
            Some(v) => v.parse()?,
            None => LogFormat::Text,
        };
        Ok(TelemetryConfig {
            service_name,
            log_filter: non_empty(ENV_LOG_FILTER).unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned()),
            log_format,
            otlp_endpoint: non_empty(ENV_OTLP_ENDPOINT).map(|v| v.trim().to_owned()),
        })
    }
}

/// Keeps OTLP export alive; dropping it flushes pending spans and shuts the
/// tracer provider down (waiting at most ~5 s). Hold it for the whole life of
/// `main`. A no-op when OTLP is disabled or telemetry was already installed.
#[must_use = "dropping the guard shuts down span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    runtime: Option<tokio::runtime::Runtime>,
    installed: bool,
}

impl TelemetryGuard {
    fn noop() -> Self {
        TelemetryGuard {
            provider: None,
            runtime: None,
            installed: false,
        }
    }

    /// Whether this call installed the global subscriber (`false` for the
    /// guard returned by a repeated call).
    pub fn installed(&self) -> bool {
        self.installed
    }

    /// Whether spans are exported over OTLP through this guard.
    pub fn otlp_enabled(&self) -> bool {
        self.provider.is_some()
    }

    /// Exports the spans ended so far now instead of at the next batch interval, blocking until
    /// the collector answered (tests check exported spans with it; call it from a
    /// multi-threaded runtime). A no-op without OTLP.
    pub fn force_flush(&self) {
        if let Some(provider) = &self.provider {
            if let Err(err) = provider.force_flush() {
                eprintln!("racetrack-telemetry: OTLP flush: {err}");
            }
        }
    }
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("installed", &self.installed)
            .field("otlp_enabled", &self.otlp_enabled())
            .finish()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Flushes the batch processor; its export runs on `runtime`, so
            // this also works from inside the application's (possibly
            // single-threaded) runtime.
            if let Err(err) = provider.shutdown() {
                eprintln!("racetrack-telemetry: OTLP tracer shutdown: {err}");
            }
        }
        if let Some(runtime) = self.runtime.take() {
            // Safe to call from async context, unlike dropping the runtime.
            runtime.shutdown_background();
        }
    }
}

/// Installs the global tracing subscriber for `service_name` from the
/// environment (see the crate docs for the variables).
///
/// The subscriber is process-wide and set once: a test binary gets the one subscriber its first
/// `init*` call installs (other tests' `init_for_tests` included), so a test that checks
/// exported spans installs OTLP first thing and lives in a test binary of its own
/// (`crate::testing`, feature `testing`).
///
/// Safe to call more than once: only the first successful call installs
/// anything; later calls return `Ok` with a no-op guard
/// ([`TelemetryGuard::installed`] is `false`). The same happens when some
/// other global subscriber was installed first.
///
/// Needs no async runtime. With OTLP enabled the gRPC exporter runs on a
/// small private Tokio runtime owned by the guard, so `init` may be called
/// inside or outside `#[actix_web::main]` / `#[tokio::main]`.
pub fn init(service_name: &'static str) -> Result<TelemetryGuard, TelemetryError> {
    init_with(TelemetryConfig::from_env(service_name)?)
}

/// [`init`] with an explicit configuration instead of the environment.
pub fn init_with(config: TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    install(config, Output::Stdout)
}

/// For tests: installs a text subscriber writing through libtest's capture
/// (`RUST_LOG` or `info`, never OTLP). Any number of calls, never panics;
/// a no-op when a subscriber is already installed.
#[cfg(feature = "testing")]
pub fn init_for_tests() {
    let filter = std::env::var(ENV_LOG_FILTER)
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
    let config = TelemetryConfig {
        log_filter: filter,
        ..TelemetryConfig::new("test")
    };
    // The only error left (exporter) cannot happen without OTLP.
    let _ = install(config, Output::TestWriter);
}

#[derive(Clone, Copy)]
enum Output {
    Stdout,
    #[cfg(feature = "testing")]
    TestWriter,
}

/// Directives appended to every filter unless the operator names these targets: at debug level
/// the Docker client logs request bodies, which carry fatmen's (secret) env values.
const SECRET_SAFE_DIRECTIVES: &[(&str, &str)] = &[("bollard", "bollard=info")];

fn with_secret_safe_directives(filter: &str) -> String {
    let mut out = filter.to_string();
    for (target, directive) in SECRET_SAFE_DIRECTIVES {
        if !filter.contains(target) {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(directive);
        }
    }
    out
}

fn install(config: TelemetryConfig, output: Output) -> Result<TelemetryGuard, TelemetryError> {
    let directives = with_secret_safe_directives(&config.log_filter);
    let filter =
        EnvFilter::try_new(&directives).map_err(|source| TelemetryError::InvalidFilter {
            filter: config.log_filter.clone(),
            source,
        })?;

    if INSTALLED.swap(true, Ordering::SeqCst) {
        return Ok(TelemetryGuard::noop());
    }

    let otlp = match &config.otlp_endpoint {
        Some(endpoint) => match build_otlp(config.service_name, endpoint) {
            Ok(parts) => Some(parts),
            Err(err) => {
                INSTALLED.store(false, Ordering::SeqCst);
                return Err(err);
            }
        },
        None => None,
    };
    let (tracer, provider, runtime) = match otlp {
        Some((tracer, provider, runtime)) => (Some(tracer), Some(provider), Some(runtime)),
        None => (None, None, None),
    };

    let fmt = match output {
        Output::Stdout => fmt_layer(
            config.log_format,
            std::io::stdout,
            std::io::stdout().is_terminal(),
        ),
        #[cfg(feature = "testing")]
        Output::TestWriter => fmt_layer(
            config.log_format,
            tracing_subscriber::fmt::TestWriter::new(),
            false,
        ),
    };
    let otel = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(filter_fn(|meta| !is_exporter_internal(meta.target())))
    });

    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok();

    let mut guard = TelemetryGuard {
        provider,
        runtime,
        installed,
    };
    if !installed {
        // Someone else owns the global subscriber: stay out of the way.
        drop(std::mem::replace(&mut guard, TelemetryGuard::noop()));
        return Ok(guard);
    }
    if let Some(provider) = &guard.provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    tracing::debug!(
        service = config.service_name,
        format = ?config.log_format,
        otlp = guard.otlp_enabled(),
        "telemetry initialised"
    );
    Ok(guard)
}

fn build_otlp(
    service_name: &'static str,
    endpoint: &str,
) -> Result<(SdkTracer, SdkTracerProvider, tokio::runtime::Runtime), TelemetryError> {
    // tonic's channel needs a Tokio reactor for its connection task. A
    // private runtime makes init independent of the caller's runtime and
    // lets the guard flush even while a current-thread runtime (actix) is
    // blocked in `Drop`.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-exporter")
        .enable_all()
        .build()
        .map_err(TelemetryError::ExporterRuntime)?;
    let exporter = {
        let _ctx = runtime.enter();
        opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(TelemetryError::Otlp)?
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(service_name).build())
        .build();
    let tracer = provider.tracer(service_name);
    Ok((tracer, provider, runtime))
}

fn is_exporter_internal(target: &str) -> bool {
    EXPORTER_INTERNAL_TARGETS.iter().any(|prefix| {
        target
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::") || rest.starts_with('_'))
    })
}

/// The log-line layer for `format`, writing to `writer`.
pub(crate) fn fmt_layer<S, W>(
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync + 'static>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_target(true)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(writer)
            .boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Buffer {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    fn capture(format: LogFormat, emit: impl FnOnce()) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::new("debug"))
            .with(fmt_layer(format, move || writer.clone(), false));
        tracing::subscriber::with_default(subscriber, emit);
        buffer.text()
    }

    fn emit_request_like() {
        let span = tracing::info_span!(
            "http_request",
            route = "/x/{id}",
            request_id = "r-1",
            status = Empty
        );
        let _e = span.enter();
        span.record("status", 201);
        tracing::info!(answer = 42, "request completed");
    }

    use tracing::field::Empty;

    #[test]
    fn json_lines_flatten_event_and_include_current_span() {
        let out = capture(LogFormat::Json, emit_request_like);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "{out}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request completed");
        assert_eq!(v["answer"], 42);
        assert_eq!(v["span"]["name"], "http_request");
        assert_eq!(v["span"]["route"], "/x/{id}");
        assert_eq!(v["span"]["request_id"], "r-1");
        assert_eq!(v["span"]["status"], 201);
    }

    #[test]
    fn text_lines_are_human_readable() {
        let out = capture(LogFormat::Text, emit_request_like);
        assert!(out.contains("INFO"), "{out}");
        assert!(
            out.contains("http_request{route=\"/x/{id}\" request_id=\"r-1\" status=201}"),
            "{out}"
        );
        assert!(out.contains("request completed answer=42"), "{out}");
        assert!(!out.contains('\u{1b}'), "no ANSI escapes: {out:?}");
    }

    #[test]
    fn config_from_lookup() {
        let env = |pairs: &[(&str, &str)]| {
            let map: HashMap<String, String> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            move |k: &str| map.get(k).cloned()
        };

        let c = TelemetryConfig::from_lookup("svc", env(&[])).unwrap();
        assert_eq!(c, TelemetryConfig::new("svc"));
        assert_eq!(c.log_filter, "info");

        let c = TelemetryConfig::from_lookup(
            "svc",
            env(&[
                ("RUST_LOG", "warn,racetrack=debug"),
                ("LOG_FORMAT", "JSON"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", " http://collector:4317 "),
            ]),
        )
        .unwrap();
        assert_eq!(c.log_filter, "warn,racetrack=debug");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.otlp_endpoint.as_deref(), Some("http://collector:4317"));

        let c = TelemetryConfig::from_lookup(
            "svc",
            env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", ""), ("RUST_LOG", " ")]),
        )
        .unwrap();
        assert_eq!(c.otlp_endpoint, None);
        assert_eq!(c.log_filter, "info");

        let err = TelemetryConfig::from_lookup("svc", env(&[("LOG_FORMAT", "xml")])).unwrap_err();
        assert!(matches!(err, TelemetryError::InvalidLogFormat(ref f) if f == "xml"));
    }

    #[test]
    fn invalid_filter_is_rejected_before_installing() {
        let config = TelemetryConfig {
            log_filter: "info,[[[".to_owned(),
            ..TelemetryConfig::new("svc")
        };
        let err = init_with(config).unwrap_err();
        assert!(matches!(err, TelemetryError::InvalidFilter { .. }), "{err}");
        assert!(!INSTALLED.load(Ordering::SeqCst));
    }

    #[test]
    fn exporter_internal_targets() {
        assert!(is_exporter_internal("h2::proto"));
        assert!(is_exporter_internal("opentelemetry_sdk"));
        assert!(is_exporter_internal("tonic"));
        assert!(is_exporter_internal("hyper_util::client"));
        assert!(!is_exporter_internal("racetrack_lifecycle"));
        assert!(!is_exporter_internal("h2o"));
        assert!(!is_exporter_internal("towering"));
    }
}

#[cfg(test)]
mod secret_safe_tests {
    use super::with_secret_safe_directives;

    #[test]
    fn debug_logging_keeps_the_docker_client_at_info() {
        assert_eq!(with_secret_safe_directives("debug"), "debug,bollard=info");
        assert_eq!(with_secret_safe_directives(""), "bollard=info");
        assert_eq!(
            with_secret_safe_directives("bollard=trace"),
            "bollard=trace"
        );
    }
}
