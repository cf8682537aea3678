//! Lifecycle configuration: environment variables with documented defaults (architecture.md,
//! "Configuration conventions").

use std::net::SocketAddr;
use std::path::PathBuf;

/// | env var | default | meaning |
/// |---|---|---|
/// | `HTTP_ADDR` | `0.0.0.0:7102` | REST API listen address |
/// | `HTTP_WORKERS` | `2` | actix worker threads |
/// | `DATABASE_URL` | `sqlite://racetrack.db` | `postgres://…` or `sqlite://PATH` |
/// | `DATABASE_MAX_CONNECTIONS` | `10` | pool size |
/// | `AUTH_KEY` | — | HS256 secret; required with Postgres; with SQLite generated once into `<db>.auth_key` |
/// | `AUTH_DEBUG` | `false` | details in `/auth/allowed/*` denials |
/// | `AUTH_REQUIRED` | `true` | reported to clients by `/info` and `/health` |
/// | `EXTERNAL_PUB_URL` | `http://localhost:7105/pub` | base of `pub_url`; `CLUSTER_FQDN` (+`RACETRACK_SUBDOMAIN`) override it |
/// | `GIT_VERSION`, `DOCKER_TAG` | `dev`, `` | reported by `/health` and `/info` |
/// | `MAX_BODY_BYTES` | `1048576` | larger JSON bodies get 413 |
/// | `LOGIN_MAX_FAILURES_PER_USER` | `5` | failed logins per user per minute |
/// | `LOGIN_MAX_FAILURES_PER_ADDRESS` | `20` | failed logins per client address per minute |
/// | `ADMIN_PASSWORD` | — | password of the `admin` created on an empty database (random and printed once with SQLite; no admin is created with Postgres without it) |
/// | `AUTO_ACTIVATE_USERS` | `false` | self-registered users are active at once (single-user setups) |
/// | `IMAGE_BUILDER_URL` | `http://127.0.0.1:7101` | image-builder's gRPC endpoint |
/// | `INFRASTRUCTURE_TARGET` | `docker` | default target (`none`: no target, deploys fail clearly) |
/// | `INTERNAL_PUB_URL` | `http://host.docker.internal:7105/pub` | PUB as fatmen reach it (`PUB_URL` in fatmen) |
/// | `DOCKER_NETWORK` | `racetrack` | user-defined network of fatman containers |
/// | `DOCKER_PULL` | `true` | pull fatman images from the registry before running them |
/// | `MAX_DEPLOY_BODY_BYTES` | `134217728` | deploy payloads (base64 build context) above this get 413 |
/// | `FATMAN_READY_TIMEOUT` | `60` | seconds a new fatman has to answer `/ready` |
/// | `REQUEST_TRACING_HEADER` | `X-Request-Tracing-Id` | tracing header name given to fatmen |
/// | `GRPC_ADDR` | `0.0.0.0:7112` | internal gRPC API for PUB (fatman routes, call decisions) |
/// | `TLS_CERT_FILE`, `TLS_KEY_FILE` | — | PEM certificate chain and key: serve the REST API over HTTPS |
/// | `REDIS_URL` | — | `redis://[:password@]host[:port][/db]`: where token, permission and fatman changes are published for PUB replicas; unset = not published (PUB's cache TTL bounds staleness) |
#[derive(Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub http_workers: usize,
    pub database_url: String,
    pub database_max_connections: u32,
    pub auth_key: Option<String>,
    pub auth_debug: bool,
    pub auth_required: bool,
    pub external_pub_url: String,
    pub git_version: String,
    pub docker_tag: String,
    pub max_body_bytes: usize,
    pub login_max_failures_per_user: usize,
    pub login_max_failures_per_address: usize,
    pub admin_password: Option<String>,
    pub auto_activate_users: bool,
    pub image_builder_url: String,
    pub infrastructure_target: Option<String>,
    pub internal_pub_url: String,
    pub docker_network: String,
    pub docker_pull: bool,
    pub max_deploy_body_bytes: usize,
    pub fatman_ready_timeout_secs: u64,
    pub request_tracing_header: String,
    pub grpc_addr: SocketAddr,
    pub redis_url: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets (AUTH_KEY, admin password, a password inside DATABASE_URL) are left out.
        f.debug_struct("Config")
            .field("http_addr", &self.http_addr)
            .field("http_workers", &self.http_workers)
            .field(
                "database",
                &self.database_url.split("://").next().unwrap_or(""),
            )
            .field("auth_required", &self.auth_required)
            .field("external_pub_url", &self.external_pub_url)
            .field("grpc_addr", &self.grpc_addr)
            .field(
                "redis",
                &self.redis_url.as_deref().map(racetrack_events::redact),
            )
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |k: &str| get(k).filter(|v| !v.is_empty());
        let parse_bool = |k: &str, default: bool| -> Result<bool, ConfigError> {
            match get(k) {
                None => Ok(default),
                Some(v) => match v.to_ascii_lowercase().as_str() {
                    "1" | "true" | "t" | "yes" | "y" => Ok(true),
                    "0" | "false" | "f" | "no" | "n" => Ok(false),
                    _ => Err(ConfigError(format!("{k} must be true or false, got {v:?}"))),
                },
            }
        };
        fn parse_num<T: std::str::FromStr>(
            k: &str,
            v: Option<String>,
            default: T,
        ) -> Result<T, ConfigError> {
            match v {
                None => Ok(default),
                Some(v) => v
                    .parse()
                    .map_err(|_| ConfigError(format!("{k} must be a number, got {v:?}"))),
            }
        }
        let http_addr = get("HTTP_ADDR").unwrap_or_else(|| "0.0.0.0:7102".into());
        let grpc_addr = get("GRPC_ADDR").unwrap_or_else(|| "0.0.0.0:7112".into());
        let external_pub_url = match get("CLUSTER_FQDN") {
            Some(fqdn) => format!(
                "https://{}.{fqdn}/pub",
                get("RACETRACK_SUBDOMAIN").unwrap_or_else(|| "racetrack".into())
            ),
            None => get("EXTERNAL_PUB_URL").unwrap_or_else(|| "http://localhost:7105/pub".into()),
        };
        Ok(Config {
            http_addr: http_addr.parse().map_err(|_| {
                ConfigError(format!("HTTP_ADDR must be host:port, got {http_addr:?}"))
            })?,
            http_workers: parse_num("HTTP_WORKERS", get("HTTP_WORKERS"), 2)?,
            database_url: get("DATABASE_URL").unwrap_or_else(|| "sqlite://racetrack.db".into()),
            database_max_connections: parse_num(
                "DATABASE_MAX_CONNECTIONS",
                get("DATABASE_MAX_CONNECTIONS"),
                10,
            )?,
            auth_key: get("AUTH_KEY"),
            auth_debug: parse_bool("AUTH_DEBUG", false)?,
            auth_required: parse_bool("AUTH_REQUIRED", true)?,
            external_pub_url: external_pub_url.trim_end_matches('/').to_string(),
            git_version: get("GIT_VERSION").unwrap_or_else(|| "dev".into()),
            docker_tag: get("DOCKER_TAG").unwrap_or_default(),
            max_body_bytes: parse_num("MAX_BODY_BYTES", get("MAX_BODY_BYTES"), 1024 * 1024)?,
            login_max_failures_per_user: parse_num(
                "LOGIN_MAX_FAILURES_PER_USER",
                get("LOGIN_MAX_FAILURES_PER_USER"),
                5,
            )?,
            login_max_failures_per_address: parse_num(
                "LOGIN_MAX_FAILURES_PER_ADDRESS",
                get("LOGIN_MAX_FAILURES_PER_ADDRESS"),
                20,
            )?,
            admin_password: get("ADMIN_PASSWORD"),
            auto_activate_users: parse_bool("AUTO_ACTIVATE_USERS", false)?,
            image_builder_url: get("IMAGE_BUILDER_URL")
                .unwrap_or_else(|| "http://127.0.0.1:7101".into()),
            infrastructure_target: match get("INFRASTRUCTURE_TARGET").as_deref() {
                Some("none") => None,
                Some(other) => Some(other.to_string()),
                None => Some("docker".into()),
            },
            internal_pub_url: get("INTERNAL_PUB_URL")
                .unwrap_or_else(|| "http://host.docker.internal:7105/pub".into())
                .trim_end_matches('/')
                .to_string(),
            docker_network: get("DOCKER_NETWORK").unwrap_or_else(|| "racetrack".into()),
            docker_pull: parse_bool("DOCKER_PULL", true)?,
            max_deploy_body_bytes: parse_num(
                "MAX_DEPLOY_BODY_BYTES",
                get("MAX_DEPLOY_BODY_BYTES"),
                128 * 1024 * 1024,
            )?,
            fatman_ready_timeout_secs: parse_num(
                "FATMAN_READY_TIMEOUT",
                get("FATMAN_READY_TIMEOUT"),
                60,
            )?,
            request_tracing_header: get("REQUEST_TRACING_HEADER")
                .unwrap_or_else(|| "X-Request-Tracing-Id".into()),
            grpc_addr: grpc_addr.parse().map_err(|_| {
                ConfigError(format!("GRPC_ADDR must be host:port, got {grpc_addr:?}"))
            })?,
            redis_url: get("REDIS_URL"),
            tls: match (get("TLS_CERT_FILE"), get("TLS_KEY_FILE")) {
                (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
                (None, None) => None,
                _ => {
                    return Err(ConfigError(
                        "TLS_CERT_FILE and TLS_KEY_FILE go together".into(),
                    ))
                }
            },
        })
    }

    /// Where the embedded default keeps its generated `AUTH_KEY`: beside the SQLite file.
    pub fn sqlite_key_file(&self) -> Option<PathBuf> {
        let path = self
            .database_url
            .strip_prefix("sqlite://")
            .or_else(|| self.database_url.strip_prefix("sqlite:"))?;
        Some(PathBuf::from(format!("{path}.auth_key")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.http_addr.port(), 7102);
        assert_eq!(c.database_url, "sqlite://racetrack.db");
        assert_eq!(
            c.sqlite_key_file().unwrap(),
            PathBuf::from("racetrack.db.auth_key")
        );
        assert_eq!(c.external_pub_url, "http://localhost:7105/pub");
        assert!(c.auth_required);
    }

    #[test]
    fn cluster_fqdn_sets_pub_url() {
        let c = cfg(&[
            ("CLUSTER_FQDN", "example.com"),
            ("RACETRACK_SUBDOMAIN", "rt"),
        ])
        .unwrap();
        assert_eq!(c.external_pub_url, "https://rt.example.com/pub");
    }

    #[test]
    fn bad_values_are_reported_without_secrets() {
        assert!(cfg(&[("HTTP_ADDR", "nope")]).is_err());
        assert!(cfg(&[("AUTH_DEBUG", "maybe")]).is_err());
        let c = cfg(&[
            ("AUTH_KEY", "s3cret"),
            ("DATABASE_URL", "postgres://u:pw@h/db"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("pw@"),
            "{shown}"
        );
    }
}
