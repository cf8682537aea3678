//! The `docker` target: one container per fatman version on a Docker engine (docs/architecture.md,
//! "Infrastructure targets").
//!
//! - The container is named by the fatman's resource name (`fatman-<name>-v-<version>`) and
//!   labelled `racetrack.managed=true`, `racetrack.fatman.{name,version,family}`,
//!   `racetrack.deployment-timestamp` (plus the spec's own labels). [`list`] finds fatmen by that
//!   label alone, so it also reports containers no registry knows (orphans); containers without
//!   it are never touched.
//! - It joins a user-defined bridge network (created when missing) that drops traffic between
//!   its containers (`com.docker.network.bridge.enable_icc=false`): no fatman reaches another
//!   directly, only through PUB on the host (`host.docker.internal`), which checks the caller.
//!   A network of that name without the option is recreated when empty, else refused (see
//!   `ensure_network`). Port 7000 is published on `publish_host` (loopback by default, so only
//!   this host's PUB and Lifecycle reach it) at a port Docker picks; `internal_name` is that
//!   `host:port`, read back from the engine.
//! - Deploying replaces any container of the same name (no rolling update, as in the original).
//! - Restart policy is `no`: a fatman that crashes stays exited, with its exit code and logs, so
//!   the Lifecycle can report "crashed at start: <last log lines>" and the supervisor sees the
//!   failure instead of a container silently restart-looping (`unless-stopped` would hide it and
//!   race every inspection). Reconciliation, not Docker, brings lost fatmen back.
//! - After starting, `deploy` watches the container for a short grace period (2 s by default) and
//!   reports `Exited` with the exit code and last log lines when it dies in that time.
//! - One container whatever `replicas` says (a warning is logged when it is not 1).
//! - Secrets: Docker has no secret store for plain containers, so `secret_env` is set as container
//!   env like `env` (visible to whoever can `docker inspect`). Their values are never logged, and
//!   are redacted from errors and log excerpts returned by `deploy`. The label
//!   [`LABEL_SECRET_ENV_NAMES`] lists their names, so `saved_secret_env` reads them back from a
//!   container that still exists (a redeploy, a move); a container that is gone takes them along.
//!
//! [`list`]: crate::InfrastructureTarget::list

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerState, ContainerStateStatusEnum, ContainerSummary,
    ContainerSummaryStateEnum, EventMessage, EventMessageTypeEnum, HostConfig,
    NetworkCreateRequest, PortBinding, PortSummaryTypeEnum, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, EventsOptionsBuilder,
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::{Mutex, OnceCell};

use crate::follow::{LineBuffer, LogStream};
use crate::{
    health, redact, DeployedFatman, FatmanSpec, InfraError, InfraEvent, InfraEventKind,
    InfraEventStream, InfraStatus, InfrastructureTarget, LABEL_DEPLOYMENT_TIMESTAMP,
    LABEL_FATMAN_FAMILY, LABEL_FATMAN_NAME, LABEL_FATMAN_VERSION, LABEL_MANAGED,
    LABEL_SECRET_ENV_NAMES,
};

/// How long `deploy` watches a started container for an early crash.
pub const DEFAULT_START_GRACE: Duration = Duration::from_secs(2);
/// Log lines quoted in the `error` of a fatman that is not running (as the original monitor).
const ERROR_LOG_LINES: usize = 20;
const STATE_POLL: Duration = Duration::from_millis(250);

/// Starts tried while duplicate networks of one name exist (see `DockerTarget::start`).
const AMBIGUOUS_NETWORK_RETRIES: usize = 5;
/// Serialises network creation within the process (concurrent creates would make duplicates).
static NETWORK_LOCK: Mutex<()> = Mutex::const_new(());

/// Bridge driver option that, set to `false`, drops traffic between containers of the network
/// (Docker's iptables rules); traffic to the host (PUB, published ports) is unaffected.
pub const BRIDGE_ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";

/// What [`DockerTarget::ensure_network`] found.
enum Isolation {
    Isolated,
    OpenAndEmpty,
    /// Names of the attached containers.
    OpenInUse(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DockerTargetConfig {
    /// User-defined bridge network the fatmen join (created when missing).
    pub network: String,
    /// Host address the fatman's port is published on; `internal_name` uses it (`127.0.0.1` when
    /// it is an unspecified address such as `0.0.0.0`).
    pub publish_host: String,
    /// The port the fatman serves on inside its container.
    pub container_port: u16,
    /// Pull the image before running it (true in real use; tests run local images).
    pub pull: bool,
    /// `--add-host` entries, e.g. `host.docker.internal:host-gateway` so fatmen reach PUB on the
    /// host.
    pub extra_hosts: Vec<String>,
    /// `list` reports only managed containers attached to `network` (others belong to another
    /// installation sharing the engine, e.g. parallel test platforms). Off by default: every
    /// `racetrack.managed` container is listed.
    pub list_network_only: bool,
}

impl Default for DockerTargetConfig {
    fn default() -> Self {
        DockerTargetConfig {
            network: "racetrack".into(),
            publish_host: "127.0.0.1".into(),
            container_port: crate::FATMAN_PORT,
            pull: true,
            extra_hosts: vec!["host.docker.internal:host-gateway".into()],
            list_network_only: false,
        }
    }
}

/// Runs fatmen as containers on one Docker engine. Cheap to share (`Arc`) between tasks. The
/// engine is contacted (and its API version negotiated) on first use, so a target can be set up
/// while the engine is down; operations then fail with [`InfraError::Unavailable`].
pub struct DockerTarget {
    host: String,
    client: OnceCell<Docker>,
    config: DockerTargetConfig,
    start_grace: Duration,
}

impl std::fmt::Debug for DockerTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerTarget")
            .field("host", &self.host)
            .field("config", &self.config)
            .field("start_grace", &self.start_grace)
            .finish_non_exhaustive()
    }
}

/// The engine address used when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

impl DockerTarget {
    /// The local engine: `DOCKER_HOST` (`unix://...` or `tcp://...`) when set, else
    /// [`DEFAULT_DOCKER_HOST`]. Fails only on a malformed address ([`InfraError::Invalid`]).
    pub fn connect(config: DockerTargetConfig) -> Result<DockerTarget, InfraError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_string());
        Self::connect_with_host(&host, config)
    }

    /// A given engine address: `unix:///path.sock`, `tcp://host:port` or `http://host:port`.
    pub fn connect_with_host(
        host: &str,
        config: DockerTargetConfig,
    ) -> Result<DockerTarget, InfraError> {
        if !["unix://", "tcp://", "http://"]
            .iter()
            .any(|scheme| host.starts_with(scheme))
        {
            return Err(InfraError::Invalid(format!(
                "unsupported Docker engine address {host:?} (use unix://, tcp:// or http://)"
            )));
        }
        if config.network.trim().is_empty() {
            return Err(InfraError::Invalid("docker network name is empty".into()));
        }
        Ok(DockerTarget {
            host: host.to_string(),
            client: OnceCell::new(),
            config,
            start_grace: DEFAULT_START_GRACE,
        })
    }

    /// How long `deploy` watches a fresh container for an early crash (default 2 s; zero turns
    /// the watch off).
    pub fn with_start_grace(mut self, grace: Duration) -> Self {
        self.start_grace = grace;
        self
    }

    pub fn config(&self) -> &DockerTargetConfig {
        &self.config
    }

    /// Checks that the engine answers.
    pub async fn ping(&self) -> Result<(), InfraError> {
        let docker = self.client().await?;
        docker
            .ping()
            .await
            .map(|_| ())
            .map_err(|e| docker_error("pinging the Docker engine", e))
    }

    async fn client(&self) -> Result<&Docker, InfraError> {
        self.client
            .get_or_try_init(|| async {
                let context = format!("connecting to the Docker engine at {}", self.host);
                Docker::connect_with_host(&self.host)
                    .map_err(|e| docker_error(&context, e))?
                    .negotiate_version()
                    .await
                    .map_err(|e| docker_error(&context, e))
            })
            .await
    }

    /// The network's id, creating the network when missing. Returns the id rather than the name
    /// so that duplicate networks of one name (which old engines allow) cannot make the
    /// container's network ambiguous.
    ///
    /// The network is a bridge without inter-container traffic ([`BRIDGE_ICC_OPTION`] off), so
    /// a fatman (or anything else on the network) cannot call another fatman around PUB. A network
    /// of that name made without the option is recreated when nothing is attached to it, and
    /// refused otherwise: trusting it would silently reopen the way around PUB.
    async fn ensure_network(&self, docker: &Docker) -> Result<String, InfraError> {
        let name = &self.config.network;
        let _guard = NETWORK_LOCK.lock().await;
        if let Some(id) = self.find_network(docker).await?.into_iter().next() {
            match self.check_isolated(docker, &id).await? {
                Isolation::Isolated => return Ok(id),
                Isolation::OpenAndEmpty => {
                    tracing::warn!(
                        network = %name,
                        "docker network allows traffic between containers; recreating it without"
                    );
                    docker
                        .remove_network(&id)
                        .await
                        .map_err(|e| docker_error(&format!("removing network {name}"), e))?;
                }
                Isolation::OpenInUse(containers) => {
                    return Err(InfraError::Invalid(format!(
                        "docker network {name} lets its containers reach each other (it was created \
                         without {BRIDGE_ICC_OPTION}=false), so fatmen could be called around PUB; \
                         containers still attached: {}. Remove them and the network \
                         (docker network rm {name}), then deploy again: the network is recreated \
                         isolated",
                        containers.join(", ")
                    )));
                }
            }
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("bridge".into()),
            labels: Some(HashMap::from([(LABEL_MANAGED.into(), "true".into())])),
            options: Some(HashMap::from([(
                BRIDGE_ICC_OPTION.to_string(),
                "false".to_string(),
            )])),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => tracing::info!(network = %name, "created docker network"),
            Err(BollardError::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => return Err(docker_error(&format!("creating network {name}"), e)),
        }
        // Another process may have created one too; keep the oldest, drop the rest.
        let ids = self.find_network(docker).await?;
        for extra in ids.iter().skip(1) {
            if let Err(e) = docker.remove_network(extra).await {
                tracing::warn!(network = %name, id = %extra, error = %e, "could not remove duplicate network");
            }
        }
        let id = ids.into_iter().next().ok_or_else(|| {
            InfraError::Docker(format!(
                "network {name} vanished right after it was created"
            ))
        })?;
        // The oldest may be one another process made without the option.
        match self.check_isolated(docker, &id).await? {
            Isolation::Isolated => Ok(id),
            _ => Err(InfraError::Invalid(format!(
                "docker network {name} lets its containers reach each other; remove it \
                 (docker network rm {name}) and deploy again"
            ))),
        }
    }

    /// Whether the network disables traffic between its containers, and who is attached.
    async fn check_isolated(&self, docker: &Docker, id: &str) -> Result<Isolation, InfraError> {
        let name = &self.config.network;
        let inspect = docker
            .inspect_network(id, None)
            .await
            .map_err(|e| docker_error(&format!("inspecting network {name}"), e))?;
        let isolated = inspect.driver.as_deref() == Some("bridge")
            && inspect
                .options
                .as_ref()
                .and_then(|o| o.get(BRIDGE_ICC_OPTION))
                .is_some_and(|v| v.eq_ignore_ascii_case("false"));
        if isolated {
            return Ok(Isolation::Isolated);
        }
        let mut attached: Vec<String> = inspect
            .containers
            .unwrap_or_default()
            .into_iter()
            .map(|(id, c)| c.name.unwrap_or(id))
            .collect();
        attached.sort();
        Ok(if attached.is_empty() {
            Isolation::OpenAndEmpty
        } else {
            Isolation::OpenInUse(attached)
        })
    }

    /// Ids of the networks named exactly like the configured one, oldest first.
    async fn find_network(&self, docker: &Docker) -> Result<Vec<String>, InfraError> {
        let name = &self.config.network;
        let filters = HashMap::from([("name", vec![name.as_str()])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let mut networks: Vec<_> = docker
            .list_networks(Some(options))
            .await
            .map_err(|e| docker_error("listing networks", e))?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name.as_str()))
            .collect();
        networks.sort_by(|a, b| a.created.cmp(&b.created).then(a.id.cmp(&b.id)));
        Ok(networks.into_iter().filter_map(|n| n.id).collect())
    }

    async fn pull(&self, docker: &Docker, image: &str) -> Result<(), InfraError> {
        let builder = CreateImageOptionsBuilder::default().from_image(image);
        let builder = if has_tag_or_digest(image) {
            builder
        } else {
            builder.tag("latest")
        };
        let mut progress = docker.create_image(Some(builder.build()), None, None);
        while let Some(step) = progress.next().await {
            match step {
                Ok(info) => {
                    if let Some(message) = info.error_detail.and_then(|d| d.message) {
                        return Err(InfraError::Docker(format!(
                            "pulling image {image}: {message}"
                        )));
                    }
                }
                Err(e) => return Err(docker_error(&format!("pulling image {image}"), e)),
            }
        }
        Ok(())
    }

    async fn remove(&self, docker: &Docker, resource: &str) -> Result<(), InfraError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match docker.remove_container(resource, Some(options)).await {
            Ok(()) => {
                tracing::info!(container = %resource, "removed container");
                Ok(())
            }
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(docker_error(&format!("removing container {resource}"), e)),
        }
    }

    /// Watches a started container until it stops running or the grace period ends.
    async fn watch_start(&self, docker: &Docker, resource: &str) -> Result<(), InfraError> {
        let deadline = Instant::now() + self.start_grace;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(remaining.min(STATE_POLL)).await;
            match docker.inspect_container(resource, None).await {
                Ok(inspect) if is_running(inspect.state.as_ref()) => {}
                Ok(_) => return Ok(()),
                Err(BollardError::DockerResponseServerError {
                    status_code: 404, ..
                }) => return Ok(()),
                Err(e) => return Err(docker_error(&format!("inspecting container {resource}"), e)),
            }
        }
    }

    /// The one managed container named `resource`, as `list` shows it.
    async fn find(
        &self,
        docker: &Docker,
        resource: &str,
    ) -> Result<Option<DeployedFatman>, InfraError> {
        let summaries = list_managed(docker, Some(resource), None).await?;
        for summary in summaries {
            if container_name(&summary).as_deref() == Some(resource) {
                return self.describe(docker, summary).await;
            }
        }
        Ok(None)
    }

    /// Maps a container to a fatman; `None` when it lacks the name/version labels.
    async fn describe(
        &self,
        docker: &Docker,
        summary: ContainerSummary,
    ) -> Result<Option<DeployedFatman>, InfraError> {
        let labels: BTreeMap<String, String> = summary
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let (Some(name), Some(version)) = (
            labels.get(LABEL_FATMAN_NAME).cloned(),
            labels.get(LABEL_FATMAN_VERSION).cloned(),
        ) else {
            tracing::warn!(
                container = ?summary.names,
                "racetrack-managed container lacks fatman name/version labels; skipped"
            );
            return Ok(None);
        };
        let resource_name = container_name(&summary)
            .unwrap_or_else(|| racetrack_model::names::resource_name(&name, &version));
        let internal_name = self.published_address(&summary).unwrap_or_default();
        let (status, error) = match summary.state {
            Some(ContainerSummaryStateEnum::RUNNING) if !internal_name.is_empty() => {
                (InfraStatus::Running, None)
            }
            _ => self.explain(docker, &resource_name).await?,
        };
        Ok(Some(DeployedFatman {
            name,
            version,
            resource_name,
            internal_name,
            status,
            error,
            create_time: summary.created.unwrap_or(0),
            image: summary.image.clone(),
            labels,
        }))
    }

    /// Status and reason of a container that is not simply running and published.
    async fn explain(
        &self,
        docker: &Docker,
        resource: &str,
    ) -> Result<(InfraStatus, Option<String>), InfraError> {
        let inspect = match docker.inspect_container(resource, None).await {
            Ok(inspect) => inspect,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                return Ok((
                    InfraStatus::Error,
                    Some("container disappeared while being inspected".into()),
                ))
            }
            Err(e) => return Err(docker_error(&format!("inspecting container {resource}"), e)),
        };
        let state = inspect.state.unwrap_or_default();
        let (status, reason) = classify(&state, self.config.container_port);
        let Some(reason) = reason else {
            return Ok((status, None));
        };
        if status != InfraStatus::Exited {
            return Ok((status, Some(reason)));
        }
        let logs = match self.read_logs(docker, resource, ERROR_LOG_LINES).await {
            Ok(logs) => logs,
            Err(e) => format!("(logs unavailable: {e})"),
        };
        Ok((status, Some(with_log_excerpt(&reason, &logs))))
    }

    fn published_address(&self, summary: &ContainerSummary) -> Option<String> {
        let ports = summary.ports.as_ref()?;
        let mut candidates: Vec<_> = ports
            .iter()
            .filter(|p| {
                p.private_port == self.config.container_port
                    && matches!(p.typ, Some(PortSummaryTypeEnum::TCP) | None)
            })
            .filter_map(|p| Some((p.ip.clone().unwrap_or_default(), p.public_port?)))
            .collect();
        // Prefer IPv4 entries (Docker lists 0.0.0.0 and :: for one binding).
        candidates.sort_by_key(|(ip, _)| ip.contains(':'));
        let (ip, port) = candidates.into_iter().next()?;
        let host = match ip.as_str() {
            "" | "0.0.0.0" | "::" => {
                let configured = self.config.publish_host.as_str();
                match configured {
                    "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
                    other => other.to_string(),
                }
            }
            other => other.to_string(),
        };
        Some(if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        })
    }

    async fn read_logs(
        &self,
        docker: &Docker,
        resource: &str,
        tail: usize,
    ) -> Result<String, InfraError> {
        let tail = if tail == 0 {
            "all".to_string()
        } else {
            tail.to_string()
        };
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&tail)
            .build();
        let mut stream = docker.logs(resource, Some(options));
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(output) => out.extend_from_slice(output.as_ref()),
                Err(e) => return Err(docker_error(&format!("reading logs of {resource}"), e)),
            }
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Starts the container. The engine attaches it by network *name*, so while another process
    /// is between creating a duplicate network and removing it (see [`Self::ensure_network`])
    /// the start fails as ambiguous; it is tried again once the duplicates are gone.
    async fn start(&self, docker: &Docker, resource: &str) -> Result<(), InfraError> {
        let mut attempt = 0;
        loop {
            match docker.start_container(resource, None).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let e = docker_error(&format!("starting container {resource}"), e);
                    attempt += 1;
                    if attempt >= AMBIGUOUS_NETWORK_RETRIES || !e.message().contains("is ambiguous")
                    {
                        return Err(e);
                    }
                    tracing::warn!(fatman = %resource, error = %e, "network name ambiguous; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    self.ensure_network(docker).await?;
                }
            }
        }
    }

    fn create_body(
        &self,
        spec: &FatmanSpec,
        resource: &str,
        network_id: &str,
    ) -> ContainerCreateBody {
        let mut labels: HashMap<String, String> = spec
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.extend([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_FATMAN_NAME.to_string(), spec.name.clone()),
            (LABEL_FATMAN_VERSION.to_string(), spec.version.clone()),
            (LABEL_FATMAN_FAMILY.to_string(), spec.name.clone()),
            (
                LABEL_DEPLOYMENT_TIMESTAMP.to_string(),
                spec.deployment_timestamp.to_string(),
            ),
            (
                LABEL_SECRET_ENV_NAMES.to_string(),
                spec.secret_env
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]);
        let env: Vec<String> = spec
            .env
            .iter()
            .chain(spec.secret_env.iter())
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let port_key = format!("{}/tcp", self.config.container_port);
        let host_config = HostConfig {
            port_bindings: Some(HashMap::from([(
                port_key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some(self.config.publish_host.clone()),
                    // Empty: Docker picks a free host port.
                    host_port: Some(String::new()),
                }]),
            )])),
            network_mode: Some(network_id.to_string()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            memory: spec.memory_max_bytes.map(|m| m as i64),
            nano_cpus: spec.cpu_max.map(|c| (c * 1e9).round() as i64),
            extra_hosts: (!self.config.extra_hosts.is_empty())
                .then(|| self.config.extra_hosts.clone()),
            ..Default::default()
        };
        ContainerCreateBody {
            image: Some(spec.image.clone()),
            hostname: Some(resource.to_string()),
            env: Some(env),
            labels: Some(labels),
            exposed_ports: Some(vec![port_key]),
            host_config: Some(host_config),
            ..Default::default()
        }
    }
}

#[async_trait::async_trait]
impl InfrastructureTarget for DockerTarget {
    fn name(&self) -> &str {
        "docker"
    }

    async fn deploy(&self, spec: &FatmanSpec) -> Result<DeployedFatman, InfraError> {
        let resource = racetrack_model::names::validate_fatman_identity(&spec.name, &spec.version)
            .map_err(|e| InfraError::Invalid(e.to_string()))?;
        validate_spec(spec)?;
        if spec.replicas != 1 {
            tracing::warn!(
                fatman = %resource,
                replicas = spec.replicas,
                "the docker target runs exactly one container per fatman version"
            );
        }
        // Everything that may echo a value: container errors (all env), log excerpts (secrets).
        let all_values: Vec<&String> = spec.env.values().chain(spec.secret_env.values()).collect();
        let secret_values: Vec<&String> = spec
            .secret_env
            .values()
            .chain(spec.env.get(crate::ENV_AUTH_TOKEN))
            .collect();
        let scrub = |e: InfraError| scrub_error(e, &all_values);

        let docker = self.client().await?;
        let network_id = self.ensure_network(docker).await?;
        if self.config.pull {
            self.pull(docker, &spec.image).await?;
        }
        self.remove(docker, &resource).await?;
        let options = CreateContainerOptionsBuilder::default()
            .name(&resource)
            .build();
        docker
            .create_container(
                Some(options),
                self.create_body(spec, &resource, &network_id),
            )
            .await
            .map_err(|e| scrub(docker_error(&format!("creating container {resource}"), e)))?;
        tracing::info!(
            fatman = %resource,
            image = %spec.image,
            env = ?spec.env.keys().collect::<Vec<_>>(),
            secret_env = ?spec.secret_env.keys().collect::<Vec<_>>(),
            "created container"
        );

        if let Err(e) = self.start(docker, &resource).await {
            let e = scrub(e);
            if matches!(e, InfraError::Unavailable(_) | InfraError::Timeout(_)) {
                return Err(e);
            }
            // The engine refused to start it (bad entrypoint, port clash, ...): the container
            // stays, in state "created" with the reason, and is reported as Error below.
            tracing::warn!(fatman = %resource, error = %e, "container failed to start");
        } else {
            self.watch_start(docker, &resource).await?;
        }

        let mut fatman = self.find(docker, &resource).await?.ok_or_else(|| {
            InfraError::Docker(format!(
                "container {resource} vanished right after it was started"
            ))
        })?;
        fatman.error = fatman
            .error
            .map(|error| redact(&error, secret_values.iter().copied()));
        tracing::info!(
            fatman = %resource,
            status = %fatman.status,
            internal_name = %fatman.internal_name,
            "deployed fatman"
        );
        Ok(fatman)
    }

    async fn delete(&self, name: &str, version: &str) -> Result<(), InfraError> {
        let resource = checked_resource_name(name, version)?;
        let docker = self.client().await?;
        self.remove(docker, &resource).await
    }

    /// The values of the variables [`LABEL_SECRET_ENV_NAMES`] lists, from the container's env;
    /// `None` when there is no container or it predates the label.
    async fn saved_secret_env(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<BTreeMap<String, String>>, InfraError> {
        let resource = checked_resource_name(name, version)?;
        let docker = self.client().await?;
        let inspect = match docker.inspect_container(&resource, None).await {
            Ok(inspect) => inspect,
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(None),
            Err(e) => return Err(docker_error(&format!("inspecting container {resource}"), e)),
        };
        let Some(config) = inspect.config else {
            return Ok(None);
        };
        let Some(names) = config
            .labels
            .as_ref()
            .and_then(|labels| labels.get(LABEL_SECRET_ENV_NAMES))
        else {
            return Ok(None);
        };
        let names: Vec<&str> = names.split(',').filter(|n| !n.is_empty()).collect();
        let saved = config
            .env
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=')?;
                names
                    .contains(&key)
                    .then(|| (key.to_string(), value.to_string()))
            })
            .collect();
        Ok(Some(saved))
    }

    async fn exists(&self, name: &str, version: &str) -> Result<bool, InfraError> {
        let resource = checked_resource_name(name, version)?;
        let docker = self.client().await?;
        match docker.inspect_container(&resource, None).await {
            Ok(_) => Ok(true),
            Err(BollardError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(docker_error(&format!("inspecting container {resource}"), e)),
        }
    }

    async fn list(&self) -> Result<Vec<DeployedFatman>, InfraError> {
        let docker = self.client().await?;
        let network = self
            .config
            .list_network_only
            .then_some(self.config.network.as_str());
        let summaries = list_managed(docker, None, network).await?;
        let mut fatmen = Vec::with_capacity(summaries.len());
        for summary in summaries {
            if let Some(fatman) = self.describe(docker, summary).await? {
                fatmen.push(fatman);
            }
        }
        fatmen.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
        Ok(fatmen)
    }

    async fn logs(&self, name: &str, version: &str, tail: usize) -> Result<String, InfraError> {
        let resource = checked_resource_name(name, version)?;
        let docker = self.client().await?;
        self.read_logs(docker, &resource, tail).await
    }

    /// The engine's own follow (`docker logs --follow`): ends when the container stops or is
    /// removed. Lines split across the engine's frames come out whole.
    async fn follow_logs(
        &self,
        name: &str,
        version: &str,
        tail: usize,
    ) -> Result<LogStream<'_>, InfraError> {
        let resource = checked_resource_name(name, version)?;
        let docker = self.client().await?;
        // A missing container is an error now, not an empty stream.
        docker
            .inspect_container(&resource, None)
            .await
            .map_err(|e| docker_error(&format!("following logs of {resource}"), e))?;
        let tail = if tail == 0 {
            "all".to_string()
        } else {
            tail.to_string()
        };
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .tail(&tail)
            .build();
        let raw = Box::pin(docker.logs(&resource, Some(options)));
        Ok(Box::pin(futures_util::stream::unfold(
            Some((raw, LineBuffer::default(), resource)),
            |state| async move {
                let (mut raw, mut lines, resource) = state?;
                loop {
                    match raw.next().await {
                        Some(Ok(output)) => {
                            if let Some(whole) = lines.push(output.as_ref()) {
                                return Some((Ok(whole), Some((raw, lines, resource))));
                            }
                        }
                        Some(Err(e)) => {
                            let e = docker_error(&format!("following logs of {resource}"), e);
                            return Some((Err(e), None));
                        }
                        None => return lines.finish().map(|rest| (Ok(rest), None)),
                    }
                }
            },
        )))
    }

    /// The engine's container events for containers with the managed label (`die`, `kill`,
    /// `stop`, `oom`, `destroy`), named by their `racetrack.fatman.*` labels. Containers on other
    /// networks are reported too: the consumer re-checks through [`get`](Self::get), which is
    /// what decides.
    async fn events(&self) -> Result<InfraEventStream, InfraError> {
        let docker = self.client().await?.clone();
        let filters = HashMap::from([
            ("type", vec!["container".to_string()]),
            ("label", vec![format!("{LABEL_MANAGED}=true")]),
            (
                "event",
                ["die", "kill", "stop", "oom", "destroy"]
                    .map(String::from)
                    .to_vec(),
            ),
        ]);
        // The request goes out at the stream's first poll; `since` makes the engine replay what
        // happened from this call on, so nothing between here and that poll is missed.
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let since = format!("{}.{:09}", since.as_secs(), since.subsec_nanos());
        let options = EventsOptionsBuilder::default()
            .since(&since)
            .filters(&filters)
            .build();
        let stream = docker.events(Some(options)).filter_map(|item| async move {
            match item {
                Ok(message) => fatman_event(&message).map(Ok),
                Err(e) => Some(Err(docker_error("following the engine's events", e))),
            }
        });
        Ok(Box::pin(stream))
    }

    /// As [`list`](Self::list) shows it: with `list_network_only`, a container on another
    /// network is not this installation's.
    async fn get(&self, name: &str, version: &str) -> Result<Option<DeployedFatman>, InfraError> {
        let resource = checked_resource_name(name, version)?;
        let docker = self.client().await?;
        if self.config.list_network_only {
            let network = Some(self.config.network.as_str());
            for summary in list_managed(docker, Some(&resource), network).await? {
                if container_name(&summary).as_deref() == Some(resource.as_str()) {
                    return self.describe(docker, summary).await;
                }
            }
            return Ok(None);
        }
        self.find(docker, &resource).await
    }

    /// Health polling as [`health::wait_until_ready`], and meanwhile the container's state: when
    /// it stops running this fails at once with [`InfraError::Unhealthy`] quoting the exit code
    /// and the last log lines. Other failures get `\nFatman logs:\n<last 20 lines>` appended.
    async fn wait_until_ready(
        &self,
        fatman: &DeployedFatman,
        timeout: Duration,
    ) -> Result<(), InfraError> {
        let docker = self.client().await?;
        let resource = fatman.resource_name.as_str();
        let watch_exit = async {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match docker.inspect_container(resource, None).await {
                    Ok(inspect) if is_running(inspect.state.as_ref()) => {}
                    Ok(_) => {
                        let (_, reason) = self.explain(docker, resource).await?;
                        return Err(InfraError::Unhealthy(format!(
                            "fatman stopped while starting: {}",
                            reason.unwrap_or_else(|| "container is not running".into())
                        )));
                    }
                    Err(BollardError::DockerResponseServerError {
                        status_code: 404, ..
                    }) => {
                        return Err(InfraError::NotFound(format!(
                            "container {resource} was removed while waiting for it to become ready"
                        )))
                    }
                    // A hiccup of the engine must not fail a healthy fatman: keep polling health.
                    Err(e) => {
                        tracing::debug!(container = %resource, error = %e, "inspect failed while waiting")
                    }
                }
            }
        };
        let result = tokio::select! {
            r = health::wait_until_ready(&fatman.internal_name, timeout) => r,
            r = watch_exit => r,
        };
        match result {
            Ok(()) => Ok(()),
            Err(e @ (InfraError::Unhealthy(_) | InfraError::Timeout(_)))
                if !e.message().starts_with("fatman stopped while starting") =>
            {
                let logs = self
                    .read_logs(docker, resource, ERROR_LOG_LINES)
                    .await
                    .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
                let message = format!("{}\nFatman logs:\n{}", e.message(), logs.trim_end());
                Err(match e {
                    InfraError::Timeout(_) => InfraError::Timeout(message),
                    _ => InfraError::Unhealthy(message),
                })
            }
            Err(e) => Err(e),
        }
    }
}

pub(crate) fn validate_spec(spec: &FatmanSpec) -> Result<(), InfraError> {
    if spec.image.trim().is_empty() {
        return Err(InfraError::Invalid("image reference is empty".into()));
    }
    for name in spec.env.keys().chain(spec.secret_env.keys()) {
        if name.is_empty() || name.contains('=') || name.contains('\0') {
            return Err(InfraError::Invalid(format!(
                "invalid env var name {name:?}"
            )));
        }
    }
    let both: Vec<&String> = spec
        .secret_env
        .keys()
        .filter(|k| spec.env.contains_key(*k))
        .collect();
    if !both.is_empty() {
        return Err(InfraError::Invalid(format!(
            "env vars set both as plain and as secret env: {}",
            both.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if let Some(memory) = spec.memory_max_bytes {
        if memory == 0 || memory > i64::MAX as u64 {
            return Err(InfraError::Invalid(format!(
                "memory limit {memory} bytes is out of range"
            )));
        }
    }
    if let Some(cpu) = spec.cpu_max {
        if !(cpu.is_finite() && cpu > 0.0 && cpu * 1e9 < i64::MAX as f64) {
            return Err(InfraError::Invalid(format!(
                "cpu limit {cpu} is out of range"
            )));
        }
    }
    Ok(())
}

/// The resource name, refusing names that could not be one (they would also be unsafe in the
/// engine's URL paths).
fn checked_resource_name(name: &str, version: &str) -> Result<String, InfraError> {
    let resource = racetrack_model::names::resource_name(name, version);
    let valid = !name.is_empty()
        && !version.is_empty()
        && resource
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(resource)
    } else {
        Err(InfraError::Invalid(format!(
            "{name:?} version {version:?} cannot name a fatman container"
        )))
    }
}

fn container_name(summary: &ContainerSummary) -> Option<String> {
    summary
        .names
        .as_ref()?
        .first()
        .map(|n| n.trim_start_matches('/').to_string())
}

fn is_running(state: Option<&ContainerState>) -> bool {
    state.and_then(|s| s.status) == Some(ContainerStateStatusEnum::RUNNING)
}

/// Status of a container from its inspected state, and why it is not `Running` (without logs).
fn classify(state: &ContainerState, container_port: u16) -> (InfraStatus, Option<String>) {
    let engine_error = state.error.as_deref().filter(|e| !e.trim().is_empty());
    match state.status {
        Some(ContainerStateStatusEnum::RUNNING) => (
            InfraStatus::Error,
            Some(format!(
                "container runs but publishes no host port for {container_port}/tcp"
            )),
        ),
        Some(ContainerStateStatusEnum::CREATED) => match engine_error {
            Some(e) => (
                InfraStatus::Error,
                Some(format!("container failed to start: {e}")),
            ),
            None => (InfraStatus::Starting, None),
        },
        Some(ContainerStateStatusEnum::RESTARTING) => (InfraStatus::Starting, None),
        Some(ContainerStateStatusEnum::EXITED) => {
            let mut reason = format!("exited with code {}", state.exit_code.unwrap_or(-1));
            if state.oom_killed == Some(true) {
                reason.push_str(" (killed: out of memory)");
            }
            if let Some(e) = engine_error {
                reason.push_str(&format!(" ({e})"));
            }
            (InfraStatus::Exited, Some(reason))
        }
        Some(ContainerStateStatusEnum::PAUSED) => {
            (InfraStatus::Error, Some("container is paused".into()))
        }
        Some(ContainerStateStatusEnum::DEAD) => (
            InfraStatus::Error,
            Some(match engine_error {
                Some(e) => format!("container is dead: {e}"),
                None => "container is dead".into(),
            }),
        ),
        Some(ContainerStateStatusEnum::REMOVING | ContainerStateStatusEnum::STOPPING) => (
            InfraStatus::Error,
            Some("container is being stopped or removed".into()),
        ),
        Some(ContainerStateStatusEnum::EMPTY) | None => (
            InfraStatus::Error,
            Some("container state is unknown".into()),
        ),
    }
}

fn with_log_excerpt(reason: &str, logs: &str) -> String {
    let logs = logs.trim_end();
    if logs.trim().is_empty() {
        format!("{reason}; no log output")
    } else {
        format!("{reason}; last log lines:\n{logs}")
    }
}

/// `repo[:tag]` or `repo@digest`: does it name a tag or digest? (A `:` before the last `/` is a
/// registry port.)
fn has_tag_or_digest(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    last_segment.contains(':')
}

fn scrub_error(e: InfraError, values: &[&String]) -> InfraError {
    e.map_message(|m| redact(m, values.iter().copied()))
}

/// Maps an engine error, with `context` saying what was being done.
fn docker_error(context: &str, e: BollardError) -> InfraError {
    match e {
        BollardError::DockerResponseServerError {
            status_code: 404,
            message,
        } => InfraError::NotFound(format!("{context}: {message}")),
        BollardError::DockerResponseServerError {
            status_code,
            message,
        } => InfraError::Docker(format!(
            "{context}: engine answered {status_code}: {message}"
        )),
        BollardError::RequestTimeoutError => InfraError::Timeout(format!(
            "{context}: the Docker engine did not answer in time"
        )),
        BollardError::SocketNotFoundError(path) => {
            InfraError::Unavailable(format!("{context}: no Docker socket at {path}"))
        }
        ref other @ (BollardError::HyperLegacyError { .. }
        | BollardError::IOError { .. }
        | BollardError::HttpClientError { .. }
        | BollardError::HyperResponseError { .. }) => {
            InfraError::Unavailable(format!("{context}: {}", error_chain(other)))
        }
        other => InfraError::Docker(format!("{context}: {}", error_chain(&other))),
    }
}

/// An error and its sources, `: `-joined, without repeating a source already quoted.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A container event of a managed fatman in the platform's terms; `None` for other events.
fn fatman_event(message: &EventMessage) -> Option<InfraEvent> {
    if message.typ != Some(EventMessageTypeEnum::CONTAINER) {
        return None;
    }
    let kind = match message.action.as_deref()? {
        "die" => InfraEventKind::Died,
        "kill" => InfraEventKind::Killed,
        "stop" => InfraEventKind::Stopped,
        "oom" => InfraEventKind::OutOfMemory,
        "destroy" => InfraEventKind::Removed,
        _ => return None,
    };
    let attributes = message.actor.as_ref()?.attributes.as_ref()?;
    if attributes.get(LABEL_MANAGED).map(String::as_str) != Some("true") {
        return None;
    }
    Some(InfraEvent {
        name: attributes.get(LABEL_FATMAN_NAME)?.clone(),
        version: attributes.get(LABEL_FATMAN_VERSION)?.clone(),
        kind,
        exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        reason: None,
    })
}

/// Racetrack-managed containers (running or not), optionally only the one named `resource`.
async fn list_managed(
    docker: &Docker,
    resource: Option<&str>,
    network: Option<&str>,
) -> Result<Vec<bollard::models::ContainerSummary>, InfraError> {
    let mut filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
    if let Some(resource) = resource {
        filters.insert("name", vec![format!("^/{resource}$")]);
    }
    if let Some(network) = network {
        filters.insert("network", vec![network.to_string()]);
    }
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .map_err(|e| docker_error("listing containers", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(status: ContainerStateStatusEnum) -> ContainerState {
        ContainerState {
            status: Some(status),
            ..Default::default()
        }
    }

    fn event(action: &str, labels: &[(&str, &str)]) -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some(action.into()),
            actor: Some(bollard::models::EventActor {
                id: Some("abc".into()),
                attributes: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn engine_events_map_to_fatman_events() {
        let fatman = [
            (LABEL_MANAGED, "true"),
            (LABEL_FATMAN_NAME, "adder"),
            (LABEL_FATMAN_VERSION, "1.0.0"),
            ("exitCode", "137"),
        ];
        assert_eq!(
            fatman_event(&event("die", &fatman)),
            Some(InfraEvent {
                name: "adder".into(),
                version: "1.0.0".into(),
                kind: InfraEventKind::Died,
                exit_code: Some(137),
                reason: None,
            })
        );
        let removed = fatman_event(&event("destroy", &fatman[..3])).unwrap();
        assert_eq!(
            (removed.kind, removed.exit_code),
            (InfraEventKind::Removed, None)
        );
        // Not ours, not a fatman, or an action that changes nothing.
        assert_eq!(fatman_event(&event("die", &fatman[1..])), None);
        assert_eq!(fatman_event(&event("die", &fatman[..2])), None);
        assert_eq!(fatman_event(&event("start", &fatman)), None);
        let mut image = event("die", &fatman);
        image.typ = Some(EventMessageTypeEnum::IMAGE);
        assert_eq!(fatman_event(&image), None);
    }

    #[test]
    fn exited_states_name_the_exit_code() {
        let mut s = state(ContainerStateStatusEnum::EXITED);
        s.exit_code = Some(3);
        assert_eq!(
            classify(&s, 7000),
            (InfraStatus::Exited, Some("exited with code 3".into()))
        );
        s.oom_killed = Some(true);
        assert_eq!(
            classify(&s, 7000).1.unwrap(),
            "exited with code 3 (killed: out of memory)"
        );
    }

    #[test]
    fn other_states_map_to_statuses() {
        assert_eq!(
            classify(&state(ContainerStateStatusEnum::CREATED), 7000),
            (InfraStatus::Starting, None)
        );
        let mut failed = state(ContainerStateStatusEnum::CREATED);
        failed.error = Some("exec: \"/nope\": no such file".into());
        assert_eq!(classify(&failed, 7000).0, InfraStatus::Error);
        assert!(classify(&failed, 7000).1.unwrap().contains("/nope"));
        assert_eq!(
            classify(&state(ContainerStateStatusEnum::RESTARTING), 7000).0,
            InfraStatus::Starting
        );
        for s in [
            ContainerStateStatusEnum::PAUSED,
            ContainerStateStatusEnum::DEAD,
            ContainerStateStatusEnum::REMOVING,
            ContainerStateStatusEnum::EMPTY,
        ] {
            assert_eq!(classify(&state(s), 7000).0, InfraStatus::Error, "{s:?}");
        }
        // Running yet unpublished: nobody can reach it.
        let (status, reason) = classify(&state(ContainerStateStatusEnum::RUNNING), 7000);
        assert_eq!(status, InfraStatus::Error);
        assert!(reason.unwrap().contains("7000/tcp"));
    }

    #[test]
    fn log_excerpts() {
        assert_eq!(
            with_log_excerpt("exited with code 3", "boom\n"),
            "exited with code 3; last log lines:\nboom"
        );
        assert_eq!(
            with_log_excerpt("exited with code 0", " \n"),
            "exited with code 0; no log output"
        );
    }

    #[test]
    fn image_references() {
        assert!(!has_tag_or_digest("busybox"));
        assert!(!has_tag_or_digest(
            "registry:5000/racetrack/fatman-entrypoint/adder"
        ));
        assert!(has_tag_or_digest("registry:5000/racetrack/adder:1.0.0-abc"));
        assert!(has_tag_or_digest("adder@sha256:abcd"));
    }

    #[test]
    fn resource_names_are_checked() {
        assert_eq!(
            checked_resource_name("adder", "1.2.3").unwrap(),
            "fatman-adder-v-1-2-3"
        );
        for (name, version) in [("a/b", "1.0.0"), ("adder", "1.0.0?x"), ("", "1"), ("a", "")] {
            assert!(
                matches!(
                    checked_resource_name(name, version),
                    Err(InfraError::Invalid(_))
                ),
                "{name} {version}"
            );
        }
    }

    #[test]
    fn spec_validation_never_quotes_values() {
        let mut spec = FatmanSpec {
            name: "adder".into(),
            version: "1.0.0".into(),
            image: "img".into(),
            ..Default::default()
        };
        spec.env.insert("TOKEN".into(), "plain-secret-1".into());
        spec.secret_env
            .insert("TOKEN".into(), "real-secret-2".into());
        let err = validate_spec(&spec).unwrap_err().to_string();
        assert!(err.contains("TOKEN"), "{err}");
        assert!(!err.contains("secret-"), "{err}");

        spec.secret_env.clear();
        spec.cpu_max = Some(f64::NAN);
        assert!(matches!(validate_spec(&spec), Err(InfraError::Invalid(_))));
        spec.cpu_max = Some(0.5);
        spec.memory_max_bytes = Some(0);
        assert!(matches!(validate_spec(&spec), Err(InfraError::Invalid(_))));
        spec.memory_max_bytes = Some(64 << 20);
        assert!(validate_spec(&spec).is_ok());
    }

    #[test]
    fn engine_errors_are_classified() {
        let not_found = docker_error(
            "inspecting container x",
            BollardError::DockerResponseServerError {
                status_code: 404,
                message: "No such container: x".into(),
            },
        );
        assert_eq!(
            not_found,
            InfraError::NotFound("inspecting container x: No such container: x".into())
        );
        assert!(matches!(
            docker_error("ping", BollardError::SocketNotFoundError("/nope".into())),
            InfraError::Unavailable(_)
        ));
        assert!(matches!(
            docker_error("ping", BollardError::RequestTimeoutError),
            InfraError::Timeout(_)
        ));
    }
}
