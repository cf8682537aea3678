//! PUB configuration: environment variables with documented defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// | env var | default | meaning |
/// |---|---|---|
/// | `PUB_ADDR` | `0.0.0.0:7105` | listen address (`PUB_PORT` alone sets the port) |
/// | `WORKERS` | CPU count | proxy worker threads, each a single-threaded runtime; connections are dealt to them in turn |
/// | `LIFECYCLE_GRPC_URL` | `http://127.0.0.1:7112` | Lifecycle's internal gRPC API |
/// | `LIFECYCLE_AUTH_TOKEN` | — | PUB's internal token (`lifecycle generate-auth pub`); required when `AUTH_REQUIRED` |
/// | `LIFECYCLE_TIMEOUT` | `5` | seconds to wait for a Lifecycle answer (then 503) |
/// | `AUTH_REQUIRED` | `true` | check callers' tokens; `false` forwards every call (development only) |
/// | `AUTH_DEBUG` | `false` | detailed reasons in 401/403 bodies |
/// | `AUTH_CACHE_TTL` | `10` | seconds a route or decision is reused without asking Lifecycle; bounds staleness when Redis is unavailable |
/// | `AUTH_CACHE_CAPACITY` | `100000` | decisions kept at most (routes: a tenth) |
/// | `REDIS_URL` | — | invalidation events from Lifecycle (`redis://host:6379`); unset = TTL only |
/// | `UPSTREAM_CONNECT_TIMEOUT` | `5` | seconds to connect to a fatman (then 502) |
/// | `UPSTREAM_TIMEOUT` | `300` | seconds until a fatman's response headers (then 504); keep below your clients' timeout |
/// | `HEADER_READ_TIMEOUT` | `10` | seconds a client has to send its request headers (slow clients are cut) |
/// | `MAX_HEADER_BYTES` | `65536` | request head size limit (431 above) |
/// | `MAX_CONNECTIONS` | `10000` | concurrent client connections; more wait for a free slot |
/// | `MAX_CONNECTIONS_PER_ADDRESS` | `1000` | concurrent connections from one client address; more are closed at once, so one address cannot take every slot (behind a load balancer all clients share its address: raise it, or `0` for no per-address share) |
/// | `CLIENT_TIMEOUT` | `30` | seconds a client may take to send the next part of a request body, or to take the next part of a response |
/// | `KEEP_ALIVE_TIMEOUT` | `20` | seconds an idle kept-alive connection waits for its next request |
/// | `SHUTDOWN_TIMEOUT` | `30` | seconds a shutdown (SIGTERM, Ctrl-C) waits for the calls in flight before cutting them |
/// | `FORWARD_TO_PROTOCOL` | `http` | scheme used to reach fatmen: only `http`, accepted as the original's setting |
/// | `REQUEST_TRACING_HEADER` | `X-Request-Tracing-Id` | request id header, read and set |
/// | `TLS_CERT_FILE`, `TLS_KEY_FILE` | — | PEM certificate chain and key: serve HTTPS instead of HTTP |
/// | `GIT_VERSION` | `dev` | reported by `/health` |
/// | `OTEL_EXPORTER_OTLP_ENDPOINT` | — | when set, every call gets a `proxy` span (exported over OTLP); otherwise only with `RUST_LOG` at debug, and warnings carry the call's request id and fatman |
#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub workers: usize,
    pub lifecycle_grpc_url: String,
    pub lifecycle_auth_token: Option<String>,
    pub lifecycle_timeout: Duration,
    pub auth_required: bool,
    pub auth_debug: bool,
    pub cache_ttl: Duration,
    pub cache_capacity: usize,
    pub redis_url: Option<String>,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// `None`: no per-address share.
    pub max_connections_per_address: Option<usize>,
    pub client_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub request_tracing_header: String,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub git_version: String,
    /// OTLP export is configured: record a span per call.
    pub otlp_export: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The internal token and a Redis password stay out of logs.
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("workers", &self.workers)
            .field("lifecycle_grpc_url", &self.lifecycle_grpc_url)
            .field("auth_required", &self.auth_required)
            .field("cache_ttl", &self.cache_ttl)
            .field(
                "redis",
                &self.redis_url.as_deref().map(racetrack_events::redact),
            )
            .field("upstream_timeout", &self.upstream_timeout)
            .field("max_connections", &self.max_connections)
            .field(
                "max_connections_per_address",
                &self.max_connections_per_address,
            )
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

pub use racetrack_config::ConfigError;

/// Every variable [`Config::from_lookup`] reads: the Kubernetes manifests (`kustomize/`) are
/// checked against it (integration-tests/tests/kustomize.rs), and a unit test checks it against
/// `from_lookup`.
/// Logging and tracing (`RUST_LOG`, `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) are read by
/// `racetrack-telemetry`.
pub const ENV_VARS: &[&str] = &[
    "PUB_ADDR",
    "PUB_PORT",
    "WORKERS",
    "LIFECYCLE_GRPC_URL",
    "LIFECYCLE_AUTH_TOKEN",
    "LIFECYCLE_TIMEOUT",
    "AUTH_REQUIRED",
    "AUTH_DEBUG",
    "AUTH_CACHE_TTL",
    "AUTH_CACHE_CAPACITY",
    "REDIS_URL",
    "UPSTREAM_CONNECT_TIMEOUT",
    "UPSTREAM_TIMEOUT",
    "HEADER_READ_TIMEOUT",
    "MAX_HEADER_BYTES",
    "MAX_CONNECTIONS",
    "MAX_CONNECTIONS_PER_ADDRESS",
    "CLIENT_TIMEOUT",
    "KEEP_ALIVE_TIMEOUT",
    "SHUTDOWN_TIMEOUT",
    "FORWARD_TO_PROTOCOL",
    "REQUEST_TRACING_HEADER",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "GIT_VERSION",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = racetrack_config::Env::new(get);
        // Whole seconds, at least one.
        let secs = |k: &str, default: u64| env.positive(k, default).map(Duration::from_secs);
        let default_addr = match env.string("PUB_PORT") {
            Some(port) => format!("0.0.0.0:{port}"),
            None => "0.0.0.0:7105".into(),
        };
        let auth_required = env.flag("AUTH_REQUIRED", true)?;
        let lifecycle_auth_token = env.string("LIFECYCLE_AUTH_TOKEN");
        if auth_required && lifecycle_auth_token.is_none() {
            return Err(ConfigError::new(
                "LIFECYCLE_AUTH_TOKEN",
                "must be set when AUTH_REQUIRED is true (create one with `lifecycle generate-auth pub`)",
            ));
        }
        let tls = env
            .pair("TLS_CERT_FILE", "TLS_KEY_FILE")?
            .map(|(c, k)| (PathBuf::from(c), PathBuf::from(k)));
        let forward_to_protocol = env.string_or("FORWARD_TO_PROTOCOL", "http");
        if forward_to_protocol != "http" {
            return Err(ConfigError::new(
                "FORWARD_TO_PROTOCOL",
                format!("must be http (the only one supported), got {forward_to_protocol:?}"),
            ));
        }
        Ok(Config {
            addr: env.addr("PUB_ADDR", &default_addr)?,
            workers: env
                .number(
                    "WORKERS",
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                )?
                .max(1),
            lifecycle_grpc_url: env.string_or("LIFECYCLE_GRPC_URL", "http://127.0.0.1:7112"),
            lifecycle_auth_token,
            lifecycle_timeout: secs("LIFECYCLE_TIMEOUT", 5)?,
            auth_required,
            auth_debug: env.flag("AUTH_DEBUG", false)?,
            cache_ttl: secs("AUTH_CACHE_TTL", 10)?,
            cache_capacity: env.number("AUTH_CACHE_CAPACITY", 100_000usize)?.max(16),
            redis_url: env.string("REDIS_URL"),
            upstream_connect_timeout: secs("UPSTREAM_CONNECT_TIMEOUT", 5)?,
            upstream_timeout: secs("UPSTREAM_TIMEOUT", 300)?,
            header_read_timeout: secs("HEADER_READ_TIMEOUT", 10)?,
            max_header_bytes: env.number("MAX_HEADER_BYTES", 64 * 1024usize)?.max(8192),
            max_connections: env.number("MAX_CONNECTIONS", 10_000usize)?.max(1),
            max_connections_per_address: Some(
                env.number("MAX_CONNECTIONS_PER_ADDRESS", 1000usize)?,
            )
            .filter(|n| *n > 0),
            client_timeout: secs("CLIENT_TIMEOUT", 30)?,
            keep_alive_timeout: secs("KEEP_ALIVE_TIMEOUT", 20)?,
            shutdown_timeout: secs("SHUTDOWN_TIMEOUT", 30)?,
            request_tracing_header: env.string_or("REQUEST_TRACING_HEADER", "X-Request-Tracing-Id"),
            tls,
            git_version: env.string_or("GIT_VERSION", "dev"),
            otlp_export: env.string("OTEL_EXPORTER_OTLP_ENDPOINT").is_some(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(racetrack_config::lookup_in(vars))
    }

    #[test]
    fn defaults_need_a_token_when_auth_is_required() {
        let err = cfg(&[]).unwrap_err().to_string();
        assert!(err.contains("LIFECYCLE_AUTH_TOKEN"), "{err}");
        let c = cfg(&[("LIFECYCLE_AUTH_TOKEN", "t")]).unwrap();
        assert_eq!(c.addr.port(), 7105);
        assert!(c.auth_required);
        assert_eq!(c.cache_ttl, Duration::from_secs(10));
        let open = cfg(&[("AUTH_REQUIRED", "false"), ("PUB_PORT", "7205")]).unwrap();
        assert_eq!(open.addr.port(), 7205);
    }

    #[test]
    fn bad_values_are_named_and_secrets_hidden() {
        assert!(cfg(&[("AUTH_REQUIRED", "false"), ("AUTH_CACHE_TTL", "0")]).is_err());
        assert!(cfg(&[("AUTH_REQUIRED", "false"), ("PUB_ADDR", "x")]).is_err());
        assert!(cfg(&[("AUTH_REQUIRED", "false"), ("TLS_CERT_FILE", "c")]).is_err());
        let c = cfg(&[
            ("LIFECYCLE_AUTH_TOKEN", "sekrit-token"),
            ("REDIS_URL", "redis://:pw123@r:6379"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("sekrit") && !shown.contains("pw123"),
            "{shown}"
        );
    }

    #[test]
    fn env_vars_lists_exactly_what_from_lookup_reads() {
        let read =
            racetrack_config::variables_read(&[("LIFECYCLE_AUTH_TOKEN", "t")], ENV_VARS, |get| {
                let _ = Config::from_lookup(get);
            });
        racetrack_config::check_env_vars(ENV_VARS, &read).unwrap();
    }
}
