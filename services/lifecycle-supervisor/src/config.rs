//! Supervisor configuration: environment variables with documented defaults (docs/architecture.md,
//! "Configuration conventions" and "The supervisor").

use std::net::SocketAddr;
use std::time::Duration;

/// | env var | default | meaning |
/// |---|---|---|
/// | `HTTP_ADDR` | `0.0.0.0:7106` | `/live`, `/ready`, `/health`, `/metrics` |
/// | `LIFECYCLE_GRPC_URL` | `http://127.0.0.1:7112` | Lifecycle's internal gRPC API (`Supervision`): lease, fatmen, observations, re-provisioning |
/// | `LIFECYCLE_AUTH_TOKEN` | — (required) | the supervisor's internal token (`lifecycle generate-auth lifecycle-supervisor`: scopes `supervise_fatmen` and `reprovision_fatman` only) |
/// | `LIFECYCLE_TIMEOUT_SECS` | `10` | longest wait for Lifecycle's answer (re-provisioning: `RECONCILE_TIMEOUT_SECS`) |
/// | `INFRASTRUCTURE_TARGET` | `docker` | targets to watch (comma-separated: `docker`, `kubernetes`; `none` = no target) |
/// | `DOCKER_NETWORK` | `racetrack` | network of fatman containers (as Lifecycle's) |
/// | `DOCKER_NETWORK_ONLY` | `false` | watch only containers on `DOCKER_NETWORK` (several installations on one engine) |
/// | `SYNC_INTERVAL_SECS` | `60` | registry ↔ infrastructure sync and health checks |
/// | `RECONCILE_INTERVAL_SECS` | `600` | re-provisioning of lost fatmen |
/// | `ORPHAN_GRACE_SECS` | `600` | an orphan's container is removed this long after it was registered (`0`: at once) |
/// | `ORPHAN_DRY_RUN` | `false` | report orphans due for removal instead of removing them |
/// | `LEASE_SECS` | `15` | leadership lease granted by Lifecycle (renewal every third of it; a replica acts for two thirds of it after a renewal) |
/// | `LEASE_RETRY_SECS` | `5` | how often a replica that does not lead tries to |
/// | `CHECK_CONCURRENCY` | `32` | fatmen health-checked at once |
/// | `DEPLOYMENT_STALE_SECS` | `3600` | an in-progress deployment older than this no longer shields its fatman |
/// | `RECONCILE_TIMEOUT_SECS` | `300` | longest wait for one re-provisioning |
/// | `WATCH_EVENTS` | `true` | follow the targets' event streams while leading and react at once (see README, "Event-driven healing") |
/// | `HEAL_CONCURRENCY` | `4` | fatmen checked or re-provisioned at once in reaction to events |
/// | `HEAL_BACKOFF_SECS` | `2` | wait before a fatman's second restart within the crash-loop window; doubles for each further one |
/// | `HEAL_BACKOFF_MAX_SECS` | `60` | cap of that wait |
/// | `CRASH_LOOP_RESTARTS` | `5` | restarts within `CRASH_LOOP_WINDOW_SECS` after which a fatman that fails again is left in `error` |
/// | `CRASH_LOOP_WINDOW_SECS` | `600` | the crash-loop window |
/// | `REDIS_URL` | — | publish fatman status changes for PUB's cache (`racetrack:invalidate`) |
/// | `GIT_VERSION` | `dev` | reported by `/health` |
///
/// With `kubernetes` among the targets, the Kubernetes target's variables are read too
/// ([`racetrack_infra::KUBERNETES_ENV_VARS`]: `FATMAN_K8S_NAMESPACE` above all, which must be
/// Lifecycle's), the same way Lifecycle reads them (docs/architecture.md, "The Kubernetes
/// target"); the cluster is found through `KUBECONFIG` or the pod's service account.
///
/// Durations accept fractions (`0.5`); each must be positive.
#[derive(Clone)]
pub struct Config {
    pub http_addr: SocketAddr,
    pub lifecycle_grpc_url: String,
    pub lifecycle_auth_token: Option<String>,
    pub lifecycle_timeout: Duration,
    pub infrastructure_targets: Vec<String>,
    /// The Kubernetes target's settings, when `kubernetes` is watched.
    pub kubernetes: Option<KubernetesTargetConfig>,
    pub docker_network: String,
    pub docker_network_only: bool,
    pub sync_interval: Duration,
    pub reconcile_interval: Duration,
    pub orphan_grace: Duration,
    pub orphan_dry_run: bool,
    pub lease: Duration,
    pub lease_retry: Duration,
    pub check_concurrency: usize,
    pub deployment_stale: Duration,
    pub reconcile_timeout: Duration,
    pub watch_events: bool,
    pub heal_concurrency: usize,
    pub heal: crate::heal::HealPolicy,
    pub redis_url: Option<String>,
    pub git_version: String,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets (the token, a password in REDIS_URL) are left out.
        f.debug_struct("Config")
            .field("http_addr", &self.http_addr)
            .field("lifecycle_grpc_url", &self.lifecycle_grpc_url)
            .field("infrastructure_targets", &self.infrastructure_targets)
            .field(
                "kubernetes_namespace",
                &self.kubernetes.as_ref().map(|k| k.namespace.as_str()),
            )
            .field("sync_interval", &self.sync_interval)
            .field("reconcile_interval", &self.reconcile_interval)
            .field("orphan_grace", &self.orphan_grace)
            .field("orphan_dry_run", &self.orphan_dry_run)
            .field("lease", &self.lease)
            .field("lease_retry", &self.lease_retry)
            .field("watch_events", &self.watch_events)
            .field("heal_concurrency", &self.heal_concurrency)
            .field("heal", &self.heal)
            .finish_non_exhaustive()
    }
}

pub use racetrack_config::ConfigError;
use racetrack_infra::{KubernetesTargetConfig, KUBERNETES_ENV_VARS};

/// Every variable [`Config::from_lookup`] reads: the Kubernetes manifests (`kustomize/`) are
/// checked against it (integration-tests/tests/kustomize.rs), and a unit test checks it against
/// `from_lookup`. The supervisor's own, then the Kubernetes target's.
/// Logging and tracing (`RUST_LOG`, `LOG_FORMAT`, `OTEL_EXPORTER_OTLP_ENDPOINT`) are read by
/// `racetrack-telemetry`.
pub const ENV_VARS: &[&str] = &ALL_ENV_VARS;

const ALL_ENV_VARS: [&str; OWN_ENV_VARS.len() + KUBERNETES_ENV_VARS.len()] =
    racetrack_config::concat_vars(OWN_ENV_VARS, KUBERNETES_ENV_VARS);

const OWN_ENV_VARS: &[&str] = &[
    "HTTP_ADDR",
    "LIFECYCLE_GRPC_URL",
    "LIFECYCLE_AUTH_TOKEN",
    "LIFECYCLE_TIMEOUT_SECS",
    "INFRASTRUCTURE_TARGET",
    "DOCKER_NETWORK",
    "DOCKER_NETWORK_ONLY",
    "SYNC_INTERVAL_SECS",
    "RECONCILE_INTERVAL_SECS",
    "ORPHAN_GRACE_SECS",
    "ORPHAN_DRY_RUN",
    "LEASE_SECS",
    "LEASE_RETRY_SECS",
    "CHECK_CONCURRENCY",
    "DEPLOYMENT_STALE_SECS",
    "RECONCILE_TIMEOUT_SECS",
    "WATCH_EVENTS",
    "HEAL_CONCURRENCY",
    "HEAL_BACKOFF_SECS",
    "HEAL_BACKOFF_MAX_SECS",
    "CRASH_LOOP_RESTARTS",
    "CRASH_LOOP_WINDOW_SECS",
    "REDIS_URL",
    "GIT_VERSION",
];

impl Config {
    /// What serving needs beyond valid values: without `LIFECYCLE_AUTH_TOKEN` the supervisor
    /// could do nothing (checked at start and by `check-config`).
    pub fn check_required(&self) -> Result<(), String> {
        match self.lifecycle_auth_token {
            Some(_) => Ok(()),
            None => Err("LIFECYCLE_AUTH_TOKEN is not set: create one with `lifecycle generate-auth lifecycle-supervisor`".into()),
        }
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = racetrack_config::Env::new(get);
        let secs = |k: &str, default: u64| env.secs(k, Duration::from_secs(default));
        let lifecycle_grpc_url = env
            .string_or("LIFECYCLE_GRPC_URL", "http://127.0.0.1:7112")
            .trim_end_matches('/')
            .to_string();
        // Plain HTTP/2 to Lifecycle's internal gRPC listener (as PUB's); no TLS client is linked
        // in, so https:// is refused here rather than failing every call.
        let authority = lifecycle_grpc_url.strip_prefix("http://").unwrap_or("");
        if authority.is_empty() || authority.contains('/') {
            return Err(ConfigError::new(
                "LIFECYCLE_GRPC_URL",
                format!("must be Lifecycle's internal http://host:port gRPC address, got {lifecycle_grpc_url:?}"),
            ));
        }
        let infrastructure_targets = match env.string("INFRASTRUCTURE_TARGET").as_deref() {
            None => vec!["docker".to_string()],
            Some("none") => vec![],
            Some(list) => {
                let names: Vec<String> = list
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for name in &names {
                    if name != "docker" && name != "kubernetes" {
                        return Err(ConfigError::new(
                            "INFRASTRUCTURE_TARGET",
                            format!(
                                "{name:?} is not supported (available: docker, kubernetes, none)"
                            ),
                        ));
                    }
                }
                names
            }
        };
        let kubernetes = if infrastructure_targets.iter().any(|t| t == "kubernetes") {
            Some(KubernetesTargetConfig::from_env(&env)?)
        } else {
            None
        };
        let lease = secs("LEASE_SECS", 15)?;
        let lease_retry = secs("LEASE_RETRY_SECS", 5)?;
        Ok(Config {
            http_addr: env.addr("HTTP_ADDR", "0.0.0.0:7106")?,
            lifecycle_grpc_url,
            lifecycle_auth_token: env.string("LIFECYCLE_AUTH_TOKEN"),
            lifecycle_timeout: secs("LIFECYCLE_TIMEOUT_SECS", 10)?,
            infrastructure_targets,
            kubernetes,
            docker_network: env.string_or("DOCKER_NETWORK", "racetrack"),
            docker_network_only: env.flag("DOCKER_NETWORK_ONLY", false)?,
            sync_interval: secs("SYNC_INTERVAL_SECS", 60)?,
            reconcile_interval: secs("RECONCILE_INTERVAL_SECS", 600)?,
            orphan_grace: match env.string("ORPHAN_GRACE_SECS").as_deref() {
                // Zero is allowed here: remove orphans at the first sync that sees them.
                Some("0") => Duration::ZERO,
                _ => secs("ORPHAN_GRACE_SECS", 600)?,
            },
            orphan_dry_run: env.flag("ORPHAN_DRY_RUN", false)?,
            lease,
            lease_retry,
            check_concurrency: env.positive("CHECK_CONCURRENCY", 32usize)?.min(1024),
            deployment_stale: secs("DEPLOYMENT_STALE_SECS", 3600)?,
            reconcile_timeout: secs("RECONCILE_TIMEOUT_SECS", 300)?,
            watch_events: env.flag("WATCH_EVENTS", true)?,
            heal_concurrency: env.positive("HEAL_CONCURRENCY", 4usize)?.min(256),
            heal: crate::heal::HealPolicy {
                backoff: secs("HEAL_BACKOFF_SECS", 2)?,
                backoff_max: secs("HEAL_BACKOFF_MAX_SECS", 60)?,
                max_restarts: env.positive("CRASH_LOOP_RESTARTS", 5usize)?,
                window: secs("CRASH_LOOP_WINDOW_SECS", 600)?,
            },
            redis_url: env.string("REDIS_URL"),
            git_version: env.string_or("GIT_VERSION", "dev"),
        })
    }

    /// How often a leader renews its lease: a third of it, so two renewals may fail in a row.
    pub fn lease_renewal(&self) -> Duration {
        self.lease / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(racetrack_config::lookup_in(vars))
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.http_addr.port(), 7106);
        assert_eq!(c.sync_interval, Duration::from_secs(60));
        assert_eq!(c.reconcile_interval, Duration::from_secs(600));
        assert_eq!(c.orphan_grace, Duration::from_secs(600));
        assert!(!c.orphan_dry_run);
        assert_eq!(c.lifecycle_grpc_url, "http://127.0.0.1:7112");
        assert_eq!(c.lifecycle_timeout, Duration::from_secs(10));
        assert_eq!(c.infrastructure_targets, ["docker"]);
        assert_eq!(c.lease_renewal(), Duration::from_secs(5));
        assert!(c.watch_events);
        assert_eq!(c.heal_concurrency, 4);
        assert_eq!(c.heal.backoff, Duration::from_secs(2));
        assert_eq!(c.heal.backoff_max, Duration::from_secs(60));
        assert_eq!(c.heal.max_restarts, 5);
        assert_eq!(c.heal.window, Duration::from_secs(600));
    }

    #[test]
    fn short_intervals_and_zero_grace_for_tests() {
        let c = cfg(&[
            ("SYNC_INTERVAL_SECS", "0.5"),
            ("ORPHAN_GRACE_SECS", "0"),
            ("ORPHAN_DRY_RUN", "yes"),
            ("INFRASTRUCTURE_TARGET", "none"),
        ])
        .unwrap();
        assert_eq!(c.sync_interval, Duration::from_millis(500));
        assert_eq!(c.orphan_grace, Duration::ZERO);
        assert!(c.orphan_dry_run);
        assert!(c.infrastructure_targets.is_empty());
    }

    #[test]
    fn bad_values_are_clear_errors() {
        for (k, v) in [
            ("SYNC_INTERVAL_SECS", "0"),
            ("SYNC_INTERVAL_SECS", "-1"),
            ("RECONCILE_INTERVAL_SECS", "soon"),
            ("ORPHAN_DRY_RUN", "maybe"),
            ("HTTP_ADDR", "nope"),
            ("CHECK_CONCURRENCY", "0"),
            ("LIFECYCLE_GRPC_URL", "ftp://x"),
            ("LIFECYCLE_GRPC_URL", "https://lifecycle:7112"),
            ("LIFECYCLE_GRPC_URL", "http://lifecycle:7112/api"),
            ("LIFECYCLE_TIMEOUT_SECS", "0"),
            ("INFRASTRUCTURE_TARGET", "podman"),
            ("INFRASTRUCTURE_TARGET", "docker,nomad"),
            ("WATCH_EVENTS", "sometimes"),
            ("HEAL_CONCURRENCY", "0"),
            ("HEAL_BACKOFF_SECS", "0"),
            ("CRASH_LOOP_RESTARTS", "0"),
            ("CRASH_LOOP_WINDOW_SECS", "x"),
        ] {
            let err = cfg(&[(k, v)]).unwrap_err().to_string();
            assert!(err.contains(k), "{k}={v}: {err}");
        }
    }

    #[test]
    fn kubernetes_is_a_target_with_its_settings() {
        let c = cfg(&[
            ("INFRASTRUCTURE_TARGET", "kubernetes, docker"),
            ("FATMAN_K8S_NAMESPACE", "racetrack-fatmen"),
        ])
        .unwrap();
        assert_eq!(c.infrastructure_targets, ["kubernetes", "docker"]);
        assert_eq!(
            c.kubernetes.map(|k| k.namespace).as_deref(),
            Some("racetrack-fatmen")
        );
        // Read only when watched; a bad value names its variable.
        assert!(cfg(&[]).unwrap().kubernetes.is_none());
        let err = cfg(&[
            ("INFRASTRUCTURE_TARGET", "kubernetes"),
            ("FATMAN_K8S_NAMESPACE", "Not_A_Label"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "FATMAN_K8S_NAMESPACE", "{err}");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = cfg(&[
            ("LIFECYCLE_AUTH_TOKEN", "tok-123456"),
            ("REDIS_URL", "redis://u:pw@h:6379"),
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("tok-123456") && !shown.contains("pw@"),
            "{shown}"
        );
    }

    #[test]
    fn env_vars_lists_exactly_what_from_lookup_reads() {
        // The Kubernetes target's variables are read when it is watched.
        let base = [("INFRASTRUCTURE_TARGET", "kubernetes")];
        let read = racetrack_config::variables_read(&base, ENV_VARS, |get| {
            let _ = Config::from_lookup(get);
        });
        racetrack_config::check_env_vars(ENV_VARS, &read).unwrap();
    }
}
