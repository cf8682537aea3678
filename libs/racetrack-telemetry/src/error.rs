//! Error type of the crate.

/// Why telemetry could not be set up.
///
/// Messages never contain secrets: at most the (non-secret) value of
/// `LOG_FORMAT` / `RUST_LOG` that failed to parse.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `LOG_FORMAT` is neither `text` nor `json`.
    #[error("invalid LOG_FORMAT {0:?}: expected `text` or `json`")]
    InvalidLogFormat(String),

    /// `RUST_LOG` is not a valid `tracing_subscriber::EnvFilter` directive.
    #[error("invalid log filter {filter:?}: {source}")]
    InvalidFilter {
        /// The directive string that failed to parse.
        filter: String,
        /// The parser's complaint.
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },

    /// The private runtime that drives the OTLP gRPC exporter could not start.
    #[error("failed to start the OTLP exporter runtime: {0}")]
    ExporterRuntime(#[source] std::io::Error),

    /// The OTLP span exporter could not be built (e.g. an invalid endpoint URI).
    #[error("failed to build the OTLP span exporter: {0}")]
    Otlp(#[source] opentelemetry_otlp::ExporterBuildError),
}
