//! Dashboard configuration: environment variables with documented defaults.

use std::net::SocketAddr;
use std::time::Duration;

pub use racetrack_config::ConfigError;

/// | env var | default | meaning |
/// |---|---|---|
/// | `DASHBOARD_ADDR` | `0.0.0.0:7103` | listen address (`DASHBOARD_PORT` alone sets the port) |
/// | `LIFECYCLE_GRPC_URL` | `http://127.0.0.1:7112` | Lifecycle's gRPC API; every call carries the signed-in user's own token |
/// | `LIFECYCLE_TIMEOUT` | `10` | seconds to wait for Lifecycle (then the page shows an error) |
/// | `SECRET_KEY` | — (required) | at least 32 bytes; encrypts and signs the session cookie. Every replica needs the same value |
/// | `SESSION_TTL` | `43200` | seconds a sign-in lasts (12 h) |
/// | `COOKIE_SECURE` | `false` | mark cookies `Secure` (set it when the dashboard is served over HTTPS, directly or behind a proxy) |
/// | `AUTH_COOKIE_DOMAIN` | — | domain of the `X-Racetrack-Auth` cookie (so PUB on a sibling host gets it); unset = host-only |
/// | `EXTERNAL_PUB_URL` | `http://127.0.0.1:7105/pub` | PUB as the browser reaches it: links to fatmen and their docs |
/// | `REDIS_URL` | — | change events from Lifecycle: statuses change on screen at once, across replicas; unset = refresh every `LIVE_REFRESH` |
/// | `LIVE_REFRESH` | `5` | seconds between status refreshes of an open fatmen page without Redis (and as a safety net with it) |
/// | `SITE_NAME` | — | shown in the title; `test`, `preprod`, `prod` colour the navbar |
/// | `GIT_VERSION` | `dev` | shown in the footer |
#[derive(Clone)]
pub struct Config {
    pub addr: SocketAddr,
    pub lifecycle_grpc_url: String,
    pub lifecycle_timeout: Duration,
    pub secret_key: Vec<u8>,
    pub session_ttl: Duration,
    pub cookie_secure: bool,
    pub auth_cookie_domain: Option<String>,
    pub external_pub_url: String,
    pub redis_url: Option<String>,
    pub live_refresh: Duration,
    pub site_name: String,
    pub git_version: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SECRET_KEY and a Redis password stay out of logs.
        f.debug_struct("Config")
            .field("addr", &self.addr)
            .field("lifecycle_grpc_url", &self.lifecycle_grpc_url)
            .field("lifecycle_timeout", &self.lifecycle_timeout)
            .field("secret_key", &racetrack_config::redact::MASK)
            .field("session_ttl", &self.session_ttl)
            .field("cookie_secure", &self.cookie_secure)
            .field("auth_cookie_domain", &self.auth_cookie_domain)
            .field("external_pub_url", &self.external_pub_url)
            .field(
                "redis",
                &self.redis_url.as_deref().map(racetrack_config::redact::url),
            )
            .field("live_refresh", &self.live_refresh)
            .field("site_name", &self.site_name)
            .finish_non_exhaustive()
    }
}

/// Shortest accepted `SECRET_KEY`: the session key is derived from it.
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// Every variable [`Config::from_lookup`] reads: the Kubernetes manifests (`kustomize/`) are
/// checked against it (integration-tests/tests/kustomize.rs), and a unit test checks it against
/// `from_lookup`.
/// Logging and tracing (`RUST_LOG`, `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) are read by
/// `racetrack-telemetry`.
pub const ENV_VARS: &[&str] = &[
    "DASHBOARD_ADDR",
    "DASHBOARD_PORT",
    "LIFECYCLE_GRPC_URL",
    "LIFECYCLE_TIMEOUT",
    "SECRET_KEY",
    "SESSION_TTL",
    "COOKIE_SECURE",
    "AUTH_COOKIE_DOMAIN",
    "EXTERNAL_PUB_URL",
    "REDIS_URL",
    "LIVE_REFRESH",
    "SITE_NAME",
    "GIT_VERSION",
];

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = racetrack_config::Env::new(get);
        let default_addr = match env.string("DASHBOARD_PORT") {
            Some(port) => format!("0.0.0.0:{port}"),
            None => "0.0.0.0:7103".into(),
        };
        let secret_key = env.string("SECRET_KEY").ok_or_else(|| {
            ConfigError::new(
                "SECRET_KEY",
                "must be set (at least 32 random bytes, the same on every replica)",
            )
        })?;
        if secret_key.len() < MIN_SECRET_KEY_BYTES {
            return Err(ConfigError::new(
                "SECRET_KEY",
                format!("must be at least {MIN_SECRET_KEY_BYTES} bytes long"),
            ));
        }
        let secs = |k: &str, default: u64| env.positive(k, default).map(Duration::from_secs);
        Ok(Config {
            addr: env.addr("DASHBOARD_ADDR", &default_addr)?,
            lifecycle_grpc_url: env.string_or("LIFECYCLE_GRPC_URL", "http://127.0.0.1:7112"),
            lifecycle_timeout: secs("LIFECYCLE_TIMEOUT", 10)?,
            secret_key: secret_key.into_bytes(),
            session_ttl: secs("SESSION_TTL", 12 * 3600)?,
            cookie_secure: env.flag("COOKIE_SECURE", false)?,
            auth_cookie_domain: env.string("AUTH_COOKIE_DOMAIN"),
            external_pub_url: env
                .string_or("EXTERNAL_PUB_URL", "http://127.0.0.1:7105/pub")
                .trim_end_matches('/')
                .to_string(),
            redis_url: env.string("REDIS_URL"),
            live_refresh: secs("LIVE_REFRESH", 5)?,
            site_name: env.string_or("SITE_NAME", ""),
            git_version: env.string_or("GIT_VERSION", "dev"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(racetrack_config::lookup_in(pairs))
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults() {
        let c = config(&[("SECRET_KEY", KEY)]).unwrap();
        assert_eq!(c.addr.port(), 7103);
        assert_eq!(c.lifecycle_grpc_url, "http://127.0.0.1:7112");
        assert_eq!(c.session_ttl, Duration::from_secs(43200));
        assert!(!c.cookie_secure);
    }

    #[test]
    fn secret_key_is_required_and_long_enough() {
        let err = config(&[]).unwrap_err().to_string();
        assert!(err.contains("SECRET_KEY"), "{err}");
        let err = config(&[("SECRET_KEY", "short")]).unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
    }

    #[test]
    fn debug_hides_the_secret() {
        let c = config(&[("SECRET_KEY", KEY), ("REDIS_URL", "redis://u:pw@h:6379")]).unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains(KEY) && !shown.contains("pw@"), "{shown}");
    }

    #[test]
    fn env_vars_lists_exactly_what_from_lookup_reads() {
        let read = racetrack_config::variables_read(&[("SECRET_KEY", KEY)], ENV_VARS, |get| {
            let _ = Config::from_lookup(get);
        });
        racetrack_config::check_env_vars(ENV_VARS, &read).unwrap();
    }
}
