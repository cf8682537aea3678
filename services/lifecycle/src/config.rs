//! Lifecycle configuration: environment variables with documented defaults (docs/architecture.md,
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
/// | `IMAGE_BUILDER_TOKEN` | — | internal token sent to the image-builder (its `IMAGE_BUILDER_TOKEN`); builds fail without it |
/// | `INFRASTRUCTURE_TARGETS` | `docker` | the targets fatmen may be deployed to, comma-separated: `docker`, `kubernetes` |
/// | `INFRASTRUCTURE_TARGET` | the first of `INFRASTRUCTURE_TARGETS` | target of manifests that name none; one of the enabled (`none`: no default, such manifests need the only enabled target) |
/// | `FATMAN_K8S_NAMESPACE`, `K8S_*`, ... | see docs/architecture.md | the Kubernetes target's settings (`KubernetesTargetConfig::from_env`), read whether or not it is enabled |
/// | `INTERNAL_PUB_URL` | `http://host.docker.internal:7105/pub` | PUB as fatmen reach it (`PUB_URL` in fatmen) |
/// | `DOCKER_NETWORK` | `racetrack` | user-defined network of fatman containers |
/// | `DOCKER_PULL` | `true` | pull fatman images from the registry before running them |
/// | `MAX_DEPLOY_BODY_BYTES` | `134217728` | deploy payloads (base64 build context) above this get 413 |
/// | `FATMAN_READY_TIMEOUT` | `60` | seconds a new fatman has to answer `/ready` |
/// | `REQUEST_TRACING_HEADER` | `X-Request-Tracing-Id` | tracing header name given to fatmen |
/// | `GRPC_ADDR` | `0.0.0.0:7112` | internal gRPC API for PUB (fatman routes, call decisions) |
/// | `TLS_CERT_FILE`, `TLS_KEY_FILE` | — | PEM certificate chain and key: serve the REST API over HTTPS |
/// | `SHUTDOWN_TIMEOUT` | `30` | seconds a shutdown (SIGTERM, Ctrl-C) waits for REST requests in flight before cutting them |
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
    pub image_builder_token: Option<String>,
    /// Enabled infrastructure targets, in the configured order, without repeats.
    pub infrastructure_targets: Vec<TargetKind>,
    /// Default target's name (one of `infrastructure_targets`), `None` for no default.
    pub infrastructure_target: Option<String>,
    /// The Kubernetes target's settings (used when it is enabled).
    pub kubernetes: racetrack_infra::KubernetesTargetConfig,
    pub internal_pub_url: String,
    pub docker_network: String,
    pub docker_pull: bool,
    pub max_deploy_body_bytes: usize,
    pub fatman_ready_timeout_secs: u64,
    pub request_tracing_header: String,
    pub grpc_addr: SocketAddr,
    pub redis_url: Option<String>,
    pub tls: Option<(PathBuf, PathBuf)>,
    pub shutdown_timeout: std::time::Duration,
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
            .field("infrastructure_targets", &self.infrastructure_targets)
            .field("infrastructure_target", &self.infrastructure_target)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field(
                "redis",
                &self.redis_url.as_deref().map(racetrack_events::redact),
            )
            .finish_non_exhaustive()
    }
}

pub use racetrack_config::ConfigError;

/// An infrastructure target Lifecycle can deploy to (docs/architecture.md, "Infrastructure
/// targets"); its name is what the registry stores per fatman and manifests ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TargetKind {
    Docker,
    Kubernetes,
}

impl TargetKind {
    pub const ALL: [TargetKind; 2] = [TargetKind::Docker, TargetKind::Kubernetes];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Docker => "docker",
            TargetKind::Kubernetes => "kubernetes",
        }
    }

    pub fn parse(name: &str) -> Option<TargetKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `INFRASTRUCTURE_TARGETS`: known names, comma-separated, at least one; repeats dropped.
fn parse_targets(text: &str) -> Result<Vec<TargetKind>, ConfigError> {
    let mut kinds = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let kind = TargetKind::parse(name).ok_or_else(|| {
            ConfigError::new(
                "INFRASTRUCTURE_TARGETS",
                format!(
                    "unknown infrastructure target {name:?}; known: {}",
                    TargetKind::ALL.map(TargetKind::as_str).join(", ")
                ),
            )
        })?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(ConfigError::new(
            "INFRASTRUCTURE_TARGETS",
            "must name at least one target (docker, kubernetes)",
        ));
    }
    Ok(kinds)
}

/// Every variable [`Config::from_lookup`] reads: the Kubernetes manifests (`kustomize/`) are
/// checked against it (integration-tests/tests/kustomize.rs), and a unit test checks it against
/// `from_lookup`. Lifecycle's own, then the Kubernetes target's.
/// Logging and tracing (`RUST_LOG`, `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) are read by
/// `racetrack-telemetry`.
pub const ENV_VARS: &[&str] = &ALL_ENV_VARS;

const ALL_ENV_VARS: [&str; OWN_ENV_VARS.len() + racetrack_infra::KUBERNETES_ENV_VARS.len()] =
    racetrack_config::concat_vars(OWN_ENV_VARS, racetrack_infra::KUBERNETES_ENV_VARS);

const OWN_ENV_VARS: &[&str] = &[
    "HTTP_ADDR",
    "HTTP_WORKERS",
    "DATABASE_URL",
    "DATABASE_MAX_CONNECTIONS",
    "AUTH_KEY",
    "AUTH_DEBUG",
    "AUTH_REQUIRED",
    "EXTERNAL_PUB_URL",
    "CLUSTER_FQDN",
    "RACETRACK_SUBDOMAIN",
    "GIT_VERSION",
    "DOCKER_TAG",
    "MAX_BODY_BYTES",
    "LOGIN_MAX_FAILURES_PER_USER",
    "LOGIN_MAX_FAILURES_PER_ADDRESS",
    "ADMIN_PASSWORD",
    "AUTO_ACTIVATE_USERS",
    "IMAGE_BUILDER_URL",
    "IMAGE_BUILDER_TOKEN",
    "INFRASTRUCTURE_TARGETS",
    "INFRASTRUCTURE_TARGET",
    "INTERNAL_PUB_URL",
    "DOCKER_NETWORK",
    "DOCKER_PULL",
    "MAX_DEPLOY_BODY_BYTES",
    "FATMAN_READY_TIMEOUT",
    "REQUEST_TRACING_HEADER",
    "GRPC_ADDR",
    "REDIS_URL",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "SHUTDOWN_TIMEOUT",
];

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // Set values are taken as given (a key or password may hold surrounding whitespace).
        let env = racetrack_config::Env::untrimmed(get);
        let external_pub_url = match env.string("CLUSTER_FQDN") {
            Some(fqdn) => format!(
                "https://{}.{fqdn}/pub",
                env.string_or("RACETRACK_SUBDOMAIN", "racetrack")
            ),
            None => env.string_or("EXTERNAL_PUB_URL", "http://localhost:7105/pub"),
        };
        let infrastructure_targets = parse_targets(
            &env.string("INFRASTRUCTURE_TARGETS")
                .unwrap_or_else(|| TargetKind::Docker.as_str().to_string()),
        )?;
        let infrastructure_target = match env.string("INFRASTRUCTURE_TARGET").as_deref() {
            Some("none") => None,
            Some(name) => {
                let enabled = TargetKind::parse(name.trim())
                    .filter(|k| infrastructure_targets.contains(k))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "INFRASTRUCTURE_TARGET",
                            format!(
                                "{name:?} is not one of the enabled targets (INFRASTRUCTURE_TARGETS): {}",
                                infrastructure_targets
                                    .iter()
                                    .map(|k| k.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        )
                    })?;
                Some(enabled.as_str().to_string())
            }
            None => infrastructure_targets
                .first()
                .map(|k| k.as_str().to_string()),
        };
        let kubernetes = racetrack_infra::KubernetesTargetConfig::from_env(&env)?;
        Ok(Config {
            http_addr: env.addr("HTTP_ADDR", "0.0.0.0:7102")?,
            http_workers: env.number("HTTP_WORKERS", 2)?,
            database_url: env.string_or("DATABASE_URL", "sqlite://racetrack.db"),
            database_max_connections: env.number("DATABASE_MAX_CONNECTIONS", 10)?,
            auth_key: env.string("AUTH_KEY"),
            auth_debug: env.flag("AUTH_DEBUG", false)?,
            auth_required: env.flag("AUTH_REQUIRED", true)?,
            external_pub_url: external_pub_url.trim_end_matches('/').to_string(),
            git_version: env.string_or("GIT_VERSION", "dev"),
            docker_tag: env.string_or("DOCKER_TAG", ""),
            max_body_bytes: env.number("MAX_BODY_BYTES", 1024 * 1024)?,
            login_max_failures_per_user: env.number("LOGIN_MAX_FAILURES_PER_USER", 5)?,
            login_max_failures_per_address: env.number("LOGIN_MAX_FAILURES_PER_ADDRESS", 20)?,
            admin_password: env.string("ADMIN_PASSWORD"),
            auto_activate_users: env.flag("AUTO_ACTIVATE_USERS", false)?,
            image_builder_url: env.string_or("IMAGE_BUILDER_URL", "http://127.0.0.1:7101"),
            image_builder_token: env
                .string("IMAGE_BUILDER_TOKEN")
                .map(|t| t.trim().to_string()),
            infrastructure_targets,
            infrastructure_target,
            kubernetes,
            internal_pub_url: env
                .string_or("INTERNAL_PUB_URL", "http://host.docker.internal:7105/pub")
                .trim_end_matches('/')
                .to_string(),
            docker_network: env.string_or("DOCKER_NETWORK", "racetrack"),
            docker_pull: env.flag("DOCKER_PULL", true)?,
            max_deploy_body_bytes: env.number("MAX_DEPLOY_BODY_BYTES", 128 * 1024 * 1024)?,
            fatman_ready_timeout_secs: env.number("FATMAN_READY_TIMEOUT", 60)?,
            request_tracing_header: env.string_or("REQUEST_TRACING_HEADER", "X-Request-Tracing-Id"),
            grpc_addr: env.addr("GRPC_ADDR", "0.0.0.0:7112")?,
            redis_url: env.string("REDIS_URL"),
            tls: env
                .pair("TLS_CERT_FILE", "TLS_KEY_FILE")?
                .map(|(c, k)| (PathBuf::from(c), PathBuf::from(k))),
            shutdown_timeout: env.secs("SHUTDOWN_TIMEOUT", std::time::Duration::from_secs(30))?,
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

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(racetrack_config::lookup_in(vars))
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

    #[test]
    fn infrastructure_targets() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.infrastructure_targets, vec![TargetKind::Docker]);
        assert_eq!(c.infrastructure_target.as_deref(), Some("docker"));
        let c = cfg(&[("INFRASTRUCTURE_TARGETS", "kubernetes, docker,kubernetes")]).unwrap();
        assert_eq!(
            c.infrastructure_targets,
            vec![TargetKind::Kubernetes, TargetKind::Docker]
        );
        assert_eq!(c.infrastructure_target.as_deref(), Some("kubernetes"));
        let c = cfg(&[
            ("INFRASTRUCTURE_TARGETS", "docker,kubernetes"),
            ("INFRASTRUCTURE_TARGET", "kubernetes"),
            ("FATMAN_K8S_NAMESPACE", "fatmen"),
        ])
        .unwrap();
        assert_eq!(c.infrastructure_target.as_deref(), Some("kubernetes"));
        assert_eq!(c.kubernetes.namespace, "fatmen");
        let c = cfg(&[("INFRASTRUCTURE_TARGET", "none")]).unwrap();
        assert_eq!(c.infrastructure_target, None);
        for (vars, var) in [
            (
                &[("INFRASTRUCTURE_TARGETS", "docker,nomad")][..],
                "INFRASTRUCTURE_TARGETS",
            ),
            (
                &[("INFRASTRUCTURE_TARGETS", " , ")][..],
                "INFRASTRUCTURE_TARGETS",
            ),
            (
                &[("INFRASTRUCTURE_TARGET", "kubernetes")][..],
                "INFRASTRUCTURE_TARGET",
            ),
            (
                &[("FATMAN_K8S_NAMESPACE", "Not_A_Label")][..],
                "FATMAN_K8S_NAMESPACE",
            ),
        ] {
            let err = cfg(vars).unwrap_err();
            assert_eq!(err.var, var, "{vars:?}: {err}");
        }
    }

    #[test]
    fn kubernetes_variables_are_listed() {
        for var in racetrack_infra::KUBERNETES_ENV_VARS {
            assert!(ENV_VARS.contains(var), "{var} missing from ENV_VARS");
        }
    }

    #[test]
    fn env_vars_lists_exactly_what_from_lookup_reads() {
        let read = racetrack_config::variables_read(&[], ENV_VARS, |get| {
            let _ = Config::from_lookup(get);
        });
        racetrack_config::check_env_vars(ENV_VARS, &read).unwrap();
    }
}
