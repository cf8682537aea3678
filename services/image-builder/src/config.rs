//! The image builder's configuration: environment variables with documented defaults.
//!
//! | env var | default | meaning |
//! | --- | --- | --- |
//! | `GRPC_ADDR` | `127.0.0.1:7101` | gRPC listen address (`ImageBuilder` service) |
//! | `IMAGE_BUILDER_TOKEN` | — (required by the binary) | internal token every gRPC call must carry in `x-racetrack-auth` (at least 16 characters); the Lifecycle sends it |
//! | `HTTP_ADDR` | `127.0.0.1:7111` | HTTP listen address: `/health`, `/live`, `/ready`, `/metrics` |
//! | `DOCKER_REGISTRY` | `127.0.0.1:5000` | registry host of every image name; empty = no registry prefix |
//! | `DOCKER_REGISTRY_NAMESPACE` | `racetrack` | path prefix after the registry |
//! | `BUILD_LOGS_DIR` | `/var/log/racetrack/image-builder/build-logs` | `{deployment_id}.log` per build |
//! | `WORKSPACES_DIR` | `{system temp}/racetrack-image-builder/workspaces` | one folder per running build |
//! | `JOB_TYPES_DIR` | `job-types` (relative to the working directory) | job type folders with `job-type.yaml` |
//! | `PYTHON_BASE_IMAGE` | unset | build arg `PYTHON_BASE_IMAGE` of every docker build |
//! | `BASE_IMAGE` | unset | build arg `BASE_IMAGE` of every docker build |
//! | `MAX_CONCURRENT_BUILDS` | `2` | builds running at once; others wait for a slot |
//! | `MAX_BUILD_CONTEXT_BYTES` | `256Mi` | largest uploaded (compressed) build context |
//! | `MAX_BUILD_CONTEXT_UNPACKED_BYTES` | 4 × `MAX_BUILD_CONTEXT_BYTES` | largest unpacked build context |
//! | `EXTRA_CA_CERTS` | unset | PEM bundle copied into every build context (`.racetrack-extra-ca-certs.crt`) |
//! | `ALLOW_FILE_GIT_REMOTES` | `false` | allow `file://` and plain-path git remotes (tests) |
//! | `PUSH_IMAGES` | `true` | push built images to the registry |
//! | `BUILD_TIMEOUT_SECS` | `3600` | a build still running after this fails |
//! | `BUILD_NETWORK_MODE` | `racetrack-build` | network of `RUN` steps (as `docker build --network`): a user-defined bridge network, created when missing (see `docker::ensure_build_network`); `host` (insecure: steps reach every loopback service) and `default` are Docker's own; empty = Docker's default |
//! | `FINISHED_BUILDS_KEPT` | `200` | finished builds remembered for `GetBuild`/`StreamBuildLogs` |
//! | `FINISHED_BUILD_TTL_SECS` | `86400` | how long a finished build is remembered at most |
//! | `DOCKER_TAG` | `latest` | Racetrack version passed to templates (`deployed_by_racetrack_version`) |
//! | `GIT_VERSION` | `unknown` | this service's own git version, shown by `/health` |
//!
//! Sizes accept plain bytes or a binary suffix (`Ki`, `Mi`, `Gi`, optionally followed by `B`).
//! Booleans accept `true/false`, `1/0`, `yes/no`, `on/off`, `t/f`, `y/n` (any case). Empty values
//! count as unset.
//! The Docker engine is found the usual way (`DOCKER_HOST`, default the local socket).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything the service reads from its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub grpc_addr: SocketAddr,
    /// `IMAGE_BUILDER_TOKEN`; `None` refuses every gRPC call (the binary refuses to start).
    pub auth_token: Option<Secret>,
    pub http_addr: SocketAddr,
    pub docker_registry: String,
    pub docker_registry_namespace: String,
    pub build_logs_dir: PathBuf,
    pub workspaces_dir: PathBuf,
    pub job_types_dir: PathBuf,
    pub python_base_image: Option<String>,
    pub base_image: Option<String>,
    pub max_concurrent_builds: usize,
    pub max_build_context_bytes: u64,
    pub max_build_context_unpacked_bytes: u64,
    pub extra_ca_certs: Option<PathBuf>,
    pub allow_file_git_remotes: bool,
    pub push_images: bool,
    pub build_timeout: Duration,
    pub build_network_mode: Option<String>,
    pub finished_builds_kept: usize,
    pub finished_build_ttl: Duration,
    pub racetrack_version: String,
    pub git_version: String,
}

pub const DEFAULT_GRPC_ADDR: &str = "127.0.0.1:7101";
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:7111";
/// Default `BUILD_NETWORK_MODE`: a bridge network of its own (not the host's).
pub const DEFAULT_BUILD_NETWORK: &str = "racetrack-build";
pub const DEFAULT_DOCKER_REGISTRY: &str = "127.0.0.1:5000";
pub const DEFAULT_DOCKER_REGISTRY_NAMESPACE: &str = "racetrack";
pub const DEFAULT_BUILD_LOGS_DIR: &str = "/var/log/racetrack/image-builder/build-logs";
pub const DEFAULT_JOB_TYPES_DIR: &str = "job-types";
pub const DEFAULT_MAX_CONCURRENT_BUILDS: usize = 2;
pub const DEFAULT_MAX_BUILD_CONTEXT_BYTES: u64 = 256 * 1024 * 1024;
pub const DEFAULT_BUILD_TIMEOUT_SECS: u64 = 3600;
pub const DEFAULT_FINISHED_BUILDS_KEPT: usize = 200;
pub const DEFAULT_FINISHED_BUILD_TTL_SECS: u64 = 24 * 3600;

pub use racetrack_config::{parse_bool, parse_size, ConfigError};

/// A configured secret: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Default `WORKSPACES_DIR`: a folder under the system temp dir.
pub fn default_workspaces_dir() -> PathBuf {
    std::env::temp_dir()
        .join("racetrack-image-builder")
        .join("workspaces")
}

/// Every variable [`Config::from_lookup`] reads: the Kubernetes manifests (`kustomize/`) are
/// checked against it (integration-tests/tests/kustomize.rs), and a unit test checks it against
/// `from_lookup`.
/// Logging and tracing (`RUST_LOG`, `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) are read by
/// `racetrack-telemetry`.
pub const ENV_VARS: &[&str] = &[
    "GRPC_ADDR",
    "IMAGE_BUILDER_TOKEN",
    "HTTP_ADDR",
    "DOCKER_REGISTRY",
    "DOCKER_REGISTRY_NAMESPACE",
    "BUILD_LOGS_DIR",
    "WORKSPACES_DIR",
    "JOB_TYPES_DIR",
    "PYTHON_BASE_IMAGE",
    "BASE_IMAGE",
    "MAX_CONCURRENT_BUILDS",
    "MAX_BUILD_CONTEXT_BYTES",
    "MAX_BUILD_CONTEXT_UNPACKED_BYTES",
    "EXTRA_CA_CERTS",
    "ALLOW_FILE_GIT_REMOTES",
    "PUSH_IMAGES",
    "BUILD_TIMEOUT_SECS",
    "BUILD_NETWORK_MODE",
    "FINISHED_BUILDS_KEPT",
    "FINISHED_BUILD_TTL_SECS",
    "DOCKER_TAG",
    "GIT_VERSION",
];

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|key| std::env::var(key).ok())
    }

    /// Reads the configuration through `get` (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        // Set values are taken as given; typed values are trimmed before parsing.
        let env = racetrack_config::Env::untrimmed(&lookup);
        // Whole seconds, at least one.
        let secs = |var: &str, default: u64| env.positive(var, default).map(Duration::from_secs);

        let max_build_context_bytes =
            env.size("MAX_BUILD_CONTEXT_BYTES", DEFAULT_MAX_BUILD_CONTEXT_BYTES)?;
        let max_build_context_unpacked_bytes = env.size(
            "MAX_BUILD_CONTEXT_UNPACKED_BYTES",
            max_build_context_bytes.saturating_mul(4),
        )?;
        let max_concurrent_builds =
            env.positive("MAX_CONCURRENT_BUILDS", DEFAULT_MAX_CONCURRENT_BUILDS)?;
        if max_concurrent_builds > 1024 {
            return Err(ConfigError::new("MAX_CONCURRENT_BUILDS", "at most 1024"));
        }
        let namespace = env
            .string("DOCKER_REGISTRY_NAMESPACE")
            .unwrap_or_else(|| DEFAULT_DOCKER_REGISTRY_NAMESPACE.into())
            .trim()
            .trim_matches('/')
            .to_string();
        if !namespace
            .split('/')
            .all(crate::naming::is_valid_path_component)
        {
            return Err(ConfigError::new(
                "DOCKER_REGISTRY_NAMESPACE",
                format!("`{namespace}` is not a valid image path (lowercase letters, digits, separators)"),
            ));
        }
        // An explicitly empty registry means "no registry prefix"; unset means the default.
        let docker_registry = match lookup("DOCKER_REGISTRY") {
            Some(v) => v.trim().trim_end_matches('/').to_string(),
            None => DEFAULT_DOCKER_REGISTRY.to_string(),
        };

        let auth_token = match env.string("IMAGE_BUILDER_TOKEN") {
            Some(t) if t.trim().len() < crate::auth::MIN_TOKEN_LEN => {
                return Err(ConfigError::new(
                    "IMAGE_BUILDER_TOKEN",
                    format!(
                        "must have at least {} characters",
                        crate::auth::MIN_TOKEN_LEN
                    ),
                ))
            }
            Some(t) => Some(Secret(t.trim().to_string())),
            None => None,
        };

        Ok(Config {
            grpc_addr: env.addr("GRPC_ADDR", DEFAULT_GRPC_ADDR)?,
            auth_token,
            http_addr: env.addr("HTTP_ADDR", DEFAULT_HTTP_ADDR)?,
            docker_registry,
            docker_registry_namespace: namespace,
            build_logs_dir: env
                .string("BUILD_LOGS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_BUILD_LOGS_DIR)),
            workspaces_dir: env
                .string("WORKSPACES_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(default_workspaces_dir),
            job_types_dir: env
                .string("JOB_TYPES_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_JOB_TYPES_DIR)),
            python_base_image: env
                .string("PYTHON_BASE_IMAGE")
                .map(|v| v.trim().to_string()),
            base_image: env.string("BASE_IMAGE").map(|v| v.trim().to_string()),
            max_concurrent_builds,
            max_build_context_bytes,
            max_build_context_unpacked_bytes,
            extra_ca_certs: env.string("EXTRA_CA_CERTS").map(PathBuf::from),
            allow_file_git_remotes: env.flag("ALLOW_FILE_GIT_REMOTES", false)?,
            push_images: env.flag("PUSH_IMAGES", true)?,
            build_timeout: secs("BUILD_TIMEOUT_SECS", DEFAULT_BUILD_TIMEOUT_SECS)?,
            build_network_mode: match lookup("BUILD_NETWORK_MODE") {
                Some(v) if v.trim().is_empty() => None,
                Some(v) => Some(v.trim().to_string()),
                None => Some(DEFAULT_BUILD_NETWORK.to_string()),
            },
            finished_builds_kept: env
                .positive("FINISHED_BUILDS_KEPT", DEFAULT_FINISHED_BUILDS_KEPT)?,
            finished_build_ttl: secs("FINISHED_BUILD_TTL_SECS", DEFAULT_FINISHED_BUILD_TTL_SECS)?,
            racetrack_version: env.string_or("DOCKER_TAG", "latest"),
            git_version: env.string_or("GIT_VERSION", "unknown"),
        })
    }

    /// A configuration with every default, for tests and embedding.
    #[allow(
        clippy::expect_used,
        reason = "the defaults are constants the config tests parse: they cannot fail later"
    )]
    pub fn defaults() -> Config {
        Config::from_lookup(|_| None).expect("defaults are valid")
    }

    /// Checks what can only be checked on the machine (readable CA bundle).
    pub fn check_files(&self) -> Result<(), ConfigError> {
        if let Some(path) = &self.extra_ca_certs {
            let meta = std::fs::metadata(path).map_err(|e| {
                ConfigError::new("EXTRA_CA_CERTS", format!("{}: {e}", path.display()))
            })?;
            if !meta.is_file() {
                return Err(ConfigError::new(
                    "EXTRA_CA_CERTS",
                    format!("{} is not a file", path.display()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(racetrack_config::lookup_in(pairs))
    }

    #[test]
    fn defaults_match_the_documentation() {
        let c = Config::defaults();
        assert_eq!(c.grpc_addr.to_string(), "127.0.0.1:7101");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:7111");
        assert_eq!(c.auth_token, None);
        assert_eq!(c.build_network_mode.as_deref(), Some("racetrack-build"));
        assert_eq!(c.docker_registry, "127.0.0.1:5000");
        assert_eq!(c.docker_registry_namespace, "racetrack");
        assert_eq!(c.build_logs_dir, PathBuf::from(DEFAULT_BUILD_LOGS_DIR));
        assert_eq!(c.job_types_dir, PathBuf::from("job-types"));
        assert_eq!(c.max_concurrent_builds, 2);
        assert_eq!(c.max_build_context_bytes, 256 << 20);
        assert_eq!(c.max_build_context_unpacked_bytes, 1 << 30);
        assert!(!c.allow_file_git_remotes);
        assert!(c.push_images);
        assert!(
            c.python_base_image.is_none() && c.base_image.is_none() && c.extra_ca_certs.is_none()
        );
        assert!(c.workspaces_dir.starts_with(std::env::temp_dir()));
    }

    #[test]
    fn reads_values_and_rejects_bad_ones() {
        let c = with(&[
            ("GRPC_ADDR", "127.0.0.1:9000"),
            ("MAX_BUILD_CONTEXT_BYTES", "1Mi"),
            ("ALLOW_FILE_GIT_REMOTES", "true"),
            ("PUSH_IMAGES", "0"),
            ("PYTHON_BASE_IMAGE", "racetrack/python-base:bookworm"),
            ("DOCKER_REGISTRY_NAMESPACE", "/team/racetrack/"),
        ])
        .unwrap();
        assert_eq!(c.grpc_addr.port(), 9000);
        assert_eq!(c.max_build_context_bytes, 1 << 20);
        assert_eq!(c.max_build_context_unpacked_bytes, 4 << 20);
        assert!(c.allow_file_git_remotes && !c.push_images);
        assert_eq!(
            c.python_base_image.as_deref(),
            Some("racetrack/python-base:bookworm")
        );
        assert_eq!(c.docker_registry_namespace, "team/racetrack");

        assert_eq!(with(&[("GRPC_ADDR", "nope")]).unwrap_err().var, "GRPC_ADDR");
        assert_eq!(
            with(&[("IMAGE_BUILDER_TOKEN", "short")]).unwrap_err().var,
            "IMAGE_BUILDER_TOKEN"
        );
        let c = with(&[("IMAGE_BUILDER_TOKEN", "0123456789abcdef-token")]).unwrap();
        assert_eq!(c.auth_token.as_ref().unwrap().0, "0123456789abcdef-token");
        assert!(!format!("{c:?}").contains("0123456789abcdef-token"));
        assert_eq!(
            with(&[("MAX_CONCURRENT_BUILDS", "0")]).unwrap_err().var,
            "MAX_CONCURRENT_BUILDS"
        );
        assert_eq!(
            with(&[("PUSH_IMAGES", "maybe")]).unwrap_err().var,
            "PUSH_IMAGES"
        );
        assert_eq!(
            with(&[("MAX_BUILD_CONTEXT_BYTES", "lots")])
                .unwrap_err()
                .var,
            "MAX_BUILD_CONTEXT_BYTES"
        );
        assert_eq!(
            with(&[("DOCKER_REGISTRY_NAMESPACE", "Upper")])
                .unwrap_err()
                .var,
            "DOCKER_REGISTRY_NAMESPACE"
        );
    }

    #[test]
    fn env_vars_lists_exactly_what_from_lookup_reads() {
        let read = racetrack_config::variables_read(&[], ENV_VARS, |get| {
            let _ = Config::from_lookup(get);
        });
        racetrack_config::check_env_vars(ENV_VARS, &read).unwrap();
    }
}
