//! Infrastructure targets: where fatmen run.
//!
//! A target turns a [`FatmanSpec`] (image, runtime env, limits) into a running fatman that serves
//! HTTP on its port 7000, and answers what runs right now ([`InfrastructureTarget::list`]), so the
//! Lifecycle can reconcile its registry with reality, and reports what happens to fatmen as it
//! happens ([`InfrastructureTarget::events`]: typed [`InfraEvent`]s, no engine types), so the
//! supervisor can react at once, and follows their logs ([`InfrastructureTarget::follow_logs`]).
//! Targets: `DockerTarget` (one container per fatman version on the local Docker engine) and,
//! with the `kubernetes` feature, `KubernetesTarget` (a Deployment, Service and Secret per fatman
//! version in one namespace).
//!
//! Health checks against the runtime contract (`/live`, `/ready`) live in [`health`]; the env vars
//! the platform injects into every fatman (and users may not set) in [`reserved_env_conflicts`].
//!
//! Secrets: no value of [`FatmanSpec::env`] or [`FatmanSpec::secret_env`] is ever logged or put
//! into an error or a `Debug` output by this crate (`Debug` of a spec shows variable names only).
//! Keep the `bollard` log target at `info` or quieter: at `debug` the Docker client library itself
//! logs every request body, which includes the container's env.

mod docker;
mod env;
mod events;
pub mod follow;
pub mod health;
#[cfg(feature = "kubernetes")]
mod kubernetes;
/// Test helpers (real test containers); only with the `testing` feature, for test builds.
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

pub use events::{InfraEvent, InfraEventKind, InfraEventStream};
pub use follow::LogStream;

pub use docker::{
    DockerTarget, DockerTargetConfig, BRIDGE_ICC_OPTION, DEFAULT_DOCKER_HOST, DEFAULT_START_GRACE,
};
pub use env::{
    check_reserved_env, reserved_env_conflicts, ENV_AUTH_TOKEN, ENV_FATMAN_DEPLOYMENT_TIMESTAMP,
    ENV_FATMAN_NAME, ENV_FATMAN_USER_MODULE_HOSTNAME, ENV_OPENTELEMETRY_ENDPOINT, ENV_PUB_URL,
    ENV_REQUEST_TRACING_HEADER, RESERVED_ENV_VARS,
};
pub use health::FatmanHealth;
#[cfg(feature = "kubernetes")]
pub use kubernetes::{
    object_name, KubernetesTarget, KubernetesTargetConfig, ResourceDefaults,
    ANNOTATION_DEPLOYMENT_DATE, ANNOTATION_FATMAN_NAME, ANNOTATION_FATMAN_VERSION,
    K8S_LABEL_FATMAN, K8S_LABEL_FATMAN_NAME, K8S_LABEL_FATMAN_VERSION, K8S_LABEL_MANAGED_BY,
    K8S_LABEL_NAME, K8S_LABEL_RESOURCE, KUBERNETES_ENV_VARS, NETWORK_POLICY_NAME,
};

/// Label every container this crate creates carries (`"true"`); `list` selects on it.
pub const LABEL_MANAGED: &str = "racetrack.managed";
/// Label with the fatman's name.
pub const LABEL_FATMAN_NAME: &str = "racetrack.fatman.name";
/// Label with the fatman's version.
pub const LABEL_FATMAN_VERSION: &str = "racetrack.fatman.version";
/// Label with the fatman's family (its name).
pub const LABEL_FATMAN_FAMILY: &str = "racetrack.fatman.family";
/// Label with [`FatmanSpec::deployment_timestamp`] (unix seconds, decimal).
pub const LABEL_DEPLOYMENT_TIMESTAMP: &str = "racetrack.deployment-timestamp";
/// Label (Docker) naming the container's secret env variables, comma-separated, so a redeploy or
/// a move can read their values back; names only, never values.
pub const LABEL_SECRET_ENV_NAMES: &str = "racetrack.secret-env-names";

/// The port every fatman serves on inside its container (runtime contract).
pub const FATMAN_PORT: u16 = 7000;

/// Everything a target needs to run one fatman version.
#[derive(Clone, PartialEq)]
pub struct FatmanSpec {
    pub name: String,
    pub version: String,
    /// Image reference to run (pulled from the registry first when the target is configured to
    /// pull, else it must exist locally).
    pub image: String,
    /// Complete runtime env; the caller includes the reserved vars (`PUB_URL`, `AUTH_TOKEN`, ...).
    pub env: BTreeMap<String, String>,
    /// Secret runtime env: set in the container like `env`, never logged. A name may not be in
    /// both maps.
    pub secret_env: BTreeMap<String, String>,
    /// Wanted replicas. The Docker target always runs exactly one container (warns when >1).
    pub replicas: u32,
    /// Memory limit (Docker: `--memory`).
    pub memory_max_bytes: Option<u64>,
    /// CPU limit in cores (Docker: `--cpus`, i.e. nano-CPUs).
    pub cpu_max: Option<f64>,
    /// Memory request (Kubernetes only; the target's default when `None`).
    pub memory_min_bytes: Option<u64>,
    /// CPU request in cores (Kubernetes only; the target's default when `None`).
    pub cpu_min: Option<f64>,
    /// Extra labels; the target's own `racetrack.*` labels win on a clash.
    pub labels: BTreeMap<String, String>,
    /// Unix seconds of this deployment (also injected as `FATMAN_DEPLOYMENT_TIMESTAMP` by the
    /// caller); stored in the `racetrack.deployment-timestamp` label.
    pub deployment_timestamp: i64,
}

impl Default for FatmanSpec {
    fn default() -> Self {
        FatmanSpec {
            name: String::new(),
            version: String::new(),
            image: String::new(),
            env: BTreeMap::new(),
            secret_env: BTreeMap::new(),
            replicas: 1,
            memory_max_bytes: None,
            cpu_max: None,
            memory_min_bytes: None,
            cpu_min: None,
            labels: BTreeMap::new(),
            deployment_timestamp: 0,
        }
    }
}

impl FatmanSpec {
    /// `fatman-<name>-v-<version with . → ->`: the container's name.
    pub fn resource_name(&self) -> String {
        racetrack_model::names::resource_name(&self.name, &self.version)
    }
}

/// Shows env names, never values.
impl fmt::Debug for FatmanSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FatmanSpec")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("image", &self.image)
            .field("env", &NamesOnly(&self.env))
            .field("secret_env", &NamesOnly(&self.secret_env))
            .field("replicas", &self.replicas)
            .field("memory_max_bytes", &self.memory_max_bytes)
            .field("cpu_max", &self.cpu_max)
            .field("memory_min_bytes", &self.memory_min_bytes)
            .field("cpu_min", &self.cpu_min)
            .field("labels", &self.labels)
            .field("deployment_timestamp", &self.deployment_timestamp)
            .finish()
    }
}

struct NamesOnly<'a>(&'a BTreeMap<String, String>);

impl fmt::Debug for NamesOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// What the infrastructure says about a fatman's container (not a health verdict: a `Running`
/// container may still fail `/live`; see [`health`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InfraStatus {
    /// The container runs and its port is published.
    Running,
    /// Created or restarting: not running yet.
    Starting,
    /// Present but unusable (dead, paused, being removed, start failed, no published port).
    Error,
    /// The container's process ended (crashed, or stopped); `error` has the exit code and the
    /// last log lines.
    Exited,
}

impl InfraStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            InfraStatus::Running => "running",
            InfraStatus::Starting => "starting",
            InfraStatus::Error => "error",
            InfraStatus::Exited => "exited",
        }
    }
}

impl fmt::Display for InfraStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fatman version as found on (or just put on) the infrastructure.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeployedFatman {
    pub name: String,
    pub version: String,
    pub resource_name: String,
    /// `host:port` where the Lifecycle and PUB on this host reach the fatman, e.g.
    /// `127.0.0.1:49153`. Empty when nothing is published (the container is not running).
    pub internal_name: String,
    pub status: InfraStatus,
    /// Why the status is not `Running` (exit code, last log lines, ...); secrets are redacted
    /// where the target knows them (at deploy).
    pub error: Option<String>,
    /// Unix seconds when the container was created.
    pub create_time: i64,
    /// The image reference the container runs.
    pub image: Option<String>,
    /// All labels of the container, the `racetrack.*` ones included.
    pub labels: BTreeMap<String, String>,
}

impl DeployedFatman {
    /// The `racetrack.deployment-timestamp` label, when present and numeric.
    pub fn deployment_timestamp(&self) -> Option<i64> {
        self.labels
            .get(LABEL_DEPLOYMENT_TIMESTAMP)
            .and_then(|v| v.parse().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfraError {
    /// The engine refused or failed an operation.
    #[error("Docker engine error: {0}")]
    Docker(String),
    /// No such container (or image, or network).
    #[error("{0}")]
    NotFound(String),
    /// The engine cannot be reached at all.
    #[error("Docker engine unreachable: {0}")]
    Unavailable(String),
    /// Waiting for the engine or for a fatman took too long.
    #[error("{0}")]
    Timeout(String),
    /// The request itself is wrong (bad name, conflicting env, bad limits).
    #[error("{0}")]
    Invalid(String),
    /// The fatman itself failed: crashed, or answered its health endpoints badly.
    #[error("{0}")]
    Unhealthy(String),
    /// The Kubernetes API refused or failed an operation (other than the cases below).
    #[error("Kubernetes API error: {0}")]
    Kubernetes(String),
    /// The Kubernetes API cannot be reached at all.
    #[error("Kubernetes API unreachable: {0}")]
    KubernetesUnavailable(String),
    /// The infrastructure denied the operation (Kubernetes RBAC, 401/403).
    #[error("{0}")]
    Forbidden(String),
    /// The object changed concurrently or is held by another field manager (HTTP 409).
    #[error("{0}")]
    Conflict(String),
}

impl InfraError {
    /// The message without the variant's prefix.
    pub fn message(&self) -> &str {
        match self {
            InfraError::Docker(m)
            | InfraError::NotFound(m)
            | InfraError::Unavailable(m)
            | InfraError::Timeout(m)
            | InfraError::Invalid(m)
            | InfraError::Unhealthy(m)
            | InfraError::Kubernetes(m)
            | InfraError::KubernetesUnavailable(m)
            | InfraError::Forbidden(m)
            | InfraError::Conflict(m) => m,
        }
    }

    /// The same kind of error with its message rewritten (e.g. redacted).
    pub(crate) fn map_message(self, f: impl FnOnce(&str) -> String) -> InfraError {
        match self {
            InfraError::Docker(m) => InfraError::Docker(f(&m)),
            InfraError::NotFound(m) => InfraError::NotFound(f(&m)),
            InfraError::Unavailable(m) => InfraError::Unavailable(f(&m)),
            InfraError::Timeout(m) => InfraError::Timeout(f(&m)),
            InfraError::Invalid(m) => InfraError::Invalid(f(&m)),
            InfraError::Unhealthy(m) => InfraError::Unhealthy(f(&m)),
            InfraError::Kubernetes(m) => InfraError::Kubernetes(f(&m)),
            InfraError::KubernetesUnavailable(m) => InfraError::KubernetesUnavailable(f(&m)),
            InfraError::Forbidden(m) => InfraError::Forbidden(f(&m)),
            InfraError::Conflict(m) => InfraError::Conflict(f(&m)),
        }
    }
}

/// A place fatmen run (docs/architecture.md, "Infrastructure targets"). Implementations are
/// shared between tasks (`Send + Sync`).
#[async_trait::async_trait]
pub trait InfrastructureTarget: Send + Sync {
    /// The target's name as stored with each fatman (`"docker"`).
    fn name(&self) -> &str;

    /// Runs `spec`, replacing whatever runs under the same name and version. Returns once the
    /// fatman was started (and, for Docker, watched for a short grace period): `Ok` with a status
    /// other than `Running` means it is there but crashed or failed to start, and `error` says
    /// why; `Err` means nothing usable was created.
    async fn deploy(&self, spec: &FatmanSpec) -> Result<DeployedFatman, InfraError>;

    /// Removes the fatman version; a missing one is `Ok`.
    async fn delete(&self, name: &str, version: &str) -> Result<(), InfraError>;

    async fn exists(&self, name: &str, version: &str) -> Result<bool, InfraError>;

    /// Every fatman this platform put on the infrastructure (by label), including ones no
    /// registry knows of (orphans), in any state.
    async fn list(&self) -> Result<Vec<DeployedFatman>, InfraError>;

    /// The last `tail` lines of the fatman's stdout and stderr (`0` = all).
    async fn logs(&self, name: &str, version: &str, tail: usize) -> Result<String, InfraError>;

    /// The last `tail` lines (`0` = all), then every new line as the fatman writes it, until the
    /// fatman's container goes away (the stream ends) or the caller drops the stream. A missing
    /// fatman is [`InfraError::NotFound`]. The default reads [`logs`](Self::logs) every second
    /// ([`follow::poll_logs`]); targets that can stream override it.
    async fn follow_logs(
        &self,
        name: &str,
        version: &str,
        tail: usize,
    ) -> Result<LogStream<'_>, InfraError> {
        Ok(follow::poll_logs(
            self,
            name.to_string(),
            version.to_string(),
            tail,
            follow::POLL_INTERVAL,
        ))
    }

    /// One fatman version as [`list`](Self::list) would show it; `None` when absent.
    async fn get(&self, name: &str, version: &str) -> Result<Option<DeployedFatman>, InfraError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .find(|f| f.name == name && f.version == version))
    }

    /// What happens to this platform's fatmen from now on (a container died, was stopped or
    /// removed, came up), as it happens. The stream ends or yields an error when the feed breaks
    /// in a way that may have lost events; the caller reconnects, and must then assume it missed
    /// some. (A target that can resume its feed without loss, as Kubernetes' watches from a
    /// resourceVersion, does so inside the stream.) Targets without such a feed keep the
    /// default: a stream that never yields (callers rely on their periodic listing alone).
    async fn events(&self) -> Result<InfraEventStream, InfraError> {
        Ok(Box::pin(futures_util::stream::pending()))
    }

    /// Whether `Running` in this target's listing already means the fatman passes the runtime
    /// contract's health checks, so callers judge health from the status instead of calling
    /// `/live` and `/ready` themselves. Kubernetes: a pod is Ready only while its readiness probe
    /// (`/ready`) passes and is restarted when its liveness probe (`/live`) fails, and the
    /// NetworkPolicy lets nothing but PUB reach fatman pods anyway.
    fn judges_health(&self) -> bool {
        false
    }

    /// Whether the infrastructure restarts a crashed fatman by itself (Kubernetes: the kubelet
    /// restarts its container, the Deployment replaces its pods), so only a fatman that vanished
    /// needs re-provisioning; a crashing one is reported, not restarted again.
    fn restarts_crashed(&self) -> bool {
        false
    }

    /// The secret runtime env the infrastructure keeps for a fatman version (Kubernetes: its
    /// Secret; Docker: the running container's env), so a redeploy, reprovision or move can run
    /// it again with the same secrets; `None` when nothing is kept (the default).
    async fn saved_secret_env(
        &self,
        _name: &str,
        _version: &str,
    ) -> Result<Option<BTreeMap<String, String>>, InfraError> {
        Ok(None)
    }

    /// Waits until the deployed fatman answers `/live` and `/ready` with 200 (see
    /// [`health::wait_until_ready`]). Targets that can see the fatman's process override this to
    /// fail as soon as it dies instead of waiting out `timeout`.
    async fn wait_until_ready(
        &self,
        fatman: &DeployedFatman,
        timeout: Duration,
    ) -> Result<(), InfraError> {
        health::wait_until_ready(&fatman.internal_name, timeout).await
    }
}

/// `text` with every secret value masked (racetrack_config::redact: the one redaction rule).
pub(crate) fn redact<'a>(text: &str, secrets: impl IntoIterator<Item = &'a String>) -> String {
    let mut redactor = racetrack_config::redact::Redactor::new();
    for secret in secrets {
        redactor.add(secret);
    }
    redactor.redact(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_spec_shows_env_names_only() {
        let spec = FatmanSpec {
            name: "adder".into(),
            version: "1.0.0".into(),
            env: BTreeMap::from([("PLAIN".to_string(), "plain-value-123".to_string())]),
            secret_env: BTreeMap::from([("TOKEN".to_string(), "s3cret-value-456".to_string())]),
            ..Default::default()
        };
        let debug = format!("{spec:?}");
        assert!(
            debug.contains("PLAIN") && debug.contains("TOKEN"),
            "{debug}"
        );
        assert!(!debug.contains("plain-value-123"), "{debug}");
        assert!(!debug.contains("s3cret-value-456"), "{debug}");
        assert_eq!(spec.resource_name(), "fatman-adder-v-1-0-0");
    }

    #[test]
    fn status_strings() {
        assert_eq!(InfraStatus::Running.as_str(), "running");
        assert_eq!(InfraStatus::Exited.to_string(), "exited");
        assert_eq!(
            serde_json::to_string(&InfraStatus::Starting).unwrap(),
            "\"starting\""
        );
    }

    #[test]
    fn redact_masks_whole_secrets_longest_first() {
        let secrets = ["topsecret".to_string(), "top".to_string(), "ab".to_string()];
        assert_eq!(
            redact("ab topsecret top x", secrets.iter()),
            format!("ab {MASK} {MASK} x", MASK = racetrack_config::redact::MASK)
        );
    }

    #[test]
    fn error_display_keeps_message() {
        let e = InfraError::Unavailable("no socket".into());
        assert_eq!(e.to_string(), "Docker engine unreachable: no socket");
        assert_eq!(e.message(), "no socket");
    }
}
