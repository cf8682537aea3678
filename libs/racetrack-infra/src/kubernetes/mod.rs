//! The `kubernetes` target (docs/architecture.md, "Infrastructure targets"): per fatman version
//! a Deployment, a ClusterIP Service and a Secret (the secret runtime env, referenced from the
//! pod), all named by [`object_name`] and applied with server-side apply (field manager
//! `racetrack`, forced), so deploying the same spec again changes nothing. One NetworkPolicy per
//! namespace lets only PUB's pods reach fatman pods.
//!
//! Health: the Deployment carries the runtime contract's probes (`/live`, `/ready`), so a pod's
//! Ready condition is the verdict; [`InfrastructureTarget::wait_until_ready`] watches it (the
//! NetworkPolicy keeps Lifecycle itself from calling fatmen) and fails at once on
//! CrashLoopBackOff, image pull failures or an unschedulable pod.
//!
//! Events ([`InfrastructureTarget::events`]): watches of the fatman Deployments and pods, see
//! `watch.rs`.
//!
//! Secrets: values of `secret_env` only ever go into the Secret's data; errors are redacted.

mod config;
mod objects;
mod status;
mod watch;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{AsyncBufReadExt, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, ListParams, LogParams, Patch, PatchParams};
use kube::Client;
use serde_json::Value;
use tokio::sync::OnceCell;

pub use config::KUBERNETES_ENV_VARS;
pub use objects::{
    object_name, ANNOTATION_DEPLOYMENT_DATE, ANNOTATION_FATMAN_NAME, ANNOTATION_FATMAN_VERSION,
    K8S_LABEL_FATMAN, K8S_LABEL_FATMAN_NAME, K8S_LABEL_FATMAN_VERSION, K8S_LABEL_MANAGED_BY,
    K8S_LABEL_NAME, K8S_LABEL_RESOURCE, NETWORK_POLICY_NAME,
};

use crate::follow::LogStream;
use crate::{
    redact, DeployedFatman, FatmanSpec, InfraError, InfraStatus, InfrastructureTarget,
    LABEL_DEPLOYMENT_TIMESTAMP, LABEL_FATMAN_FAMILY, LABEL_FATMAN_NAME, LABEL_FATMAN_VERSION,
    LABEL_MANAGED,
};

/// Log lines quoted when a fatman fails to start.
const ERROR_LOG_LINES: usize = 20;
/// Most replicas a fatman may ask for (the manifest's own bound).
const MAX_REPLICAS: u32 = 15;

/// Requests, limits and caps applied when the manifest leaves them out.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceDefaults {
    pub memory_min_bytes: u64,
    pub memory_max_bytes: u64,
    /// Cores.
    pub cpu_min: f64,
    /// Cores.
    pub cpu_max: f64,
    /// A memory limit above this is refused.
    pub memory_max_limit_bytes: u64,
    /// A CPU limit above this (cores) is refused; `None` = no cap.
    pub cpu_max_limit: Option<f64>,
}

impl Default for ResourceDefaults {
    fn default() -> Self {
        ResourceDefaults {
            memory_min_bytes: 256 << 20,
            memory_max_bytes: 1 << 30,
            cpu_min: 0.01,
            cpu_max: 1.0,
            memory_max_limit_bytes: 8 << 30,
            cpu_max_limit: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KubernetesTargetConfig {
    /// Namespace of the fatmen's objects.
    pub namespace: String,
    /// Labels of PUB's pods: the only pods the NetworkPolicy lets reach fatmen.
    pub pub_selector: BTreeMap<String, String>,
    /// PUB's namespace when it is not `namespace`.
    pub pub_namespace: Option<String>,
    /// The port fatmen serve on.
    pub container_port: u16,
    /// `imagePullPolicy` of fatman containers.
    pub image_pull_policy: String,
    /// Secret with the registry credentials (`imagePullSecrets`), if any.
    pub image_pull_secret: Option<String>,
    pub resources: ResourceDefaults,
    /// How often `wait_until_ready` looks at the pods.
    pub poll_interval: Duration,
}

impl Default for KubernetesTargetConfig {
    fn default() -> Self {
        KubernetesTargetConfig {
            namespace: "racetrack".into(),
            pub_selector: BTreeMap::from([(K8S_LABEL_NAME.to_string(), "pub".to_string())]),
            pub_namespace: None,
            container_port: crate::FATMAN_PORT,
            image_pull_policy: "Always".into(),
            image_pull_secret: None,
            resources: ResourceDefaults::default(),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Runs fatmen in one Kubernetes namespace. Cheap to share (`Arc`).
pub struct KubernetesTarget {
    client: Client,
    config: KubernetesTargetConfig,
    network_policy: OnceCell<()>,
}

impl std::fmt::Debug for KubernetesTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesTarget")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What an API call was doing, for error messages: `verb` and `resource` as RBAC names them.
#[derive(Clone, Copy)]
struct Op<'a> {
    verb: &'a str,
    resource: &'a str,
    name: &'a str,
}

impl KubernetesTarget {
    /// The cluster from the environment (`kube::Config::infer`: `KUBECONFIG`/`~/.kube/config`,
    /// else the in-cluster service account).
    pub async fn connect(config: KubernetesTargetConfig) -> Result<KubernetesTarget, InfraError> {
        let kube_config = kube::Config::infer().await.map_err(|e| {
            InfraError::KubernetesUnavailable(format!(
                "no Kubernetes configuration found (kubeconfig or in-cluster): {e}"
            ))
        })?;
        Self::with_kube_config(kube_config, config)
    }

    /// A given client configuration (tests point it at a fake API server).
    pub fn with_kube_config(
        kube_config: kube::Config,
        config: KubernetesTargetConfig,
    ) -> Result<KubernetesTarget, InfraError> {
        let client = Client::try_from(kube_config).map_err(|e| {
            InfraError::KubernetesUnavailable(format!("building the Kubernetes client: {e}"))
        })?;
        Self::with_client(client, config)
    }

    pub fn with_client(
        client: Client,
        config: KubernetesTargetConfig,
    ) -> Result<KubernetesTarget, InfraError> {
        if config.namespace.trim().is_empty() {
            return Err(InfraError::Invalid("kubernetes namespace is empty".into()));
        }
        if config.pub_selector.is_empty() {
            return Err(InfraError::Invalid(
                "the PUB pod selector is empty: the NetworkPolicy would let every pod in".into(),
            ));
        }
        Ok(KubernetesTarget {
            client,
            config,
            network_policy: OnceCell::new(),
        })
    }

    pub fn config(&self) -> &KubernetesTargetConfig {
        &self.config
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.config.namespace)
    }

    fn error(&self, op: Op<'_>, e: kube::Error) -> InfraError {
        map_error(&self.config.namespace, op, e)
    }

    async fn apply<K>(&self, resource: &str, name: &str, object: &Value) -> Result<K, InfraError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        let params = PatchParams::apply(objects::MANAGER).force();
        self.api::<K>()
            .patch(name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| {
                self.error(
                    Op {
                        // An apply is a patch, authorized as create when the object is new.
                        verb: "create/patch",
                        resource,
                        name,
                    },
                    e,
                )
            })
    }

    /// Applies the namespace's NetworkPolicy once per target (re-applying is harmless, but one
    /// request per deploy is not needed).
    async fn ensure_network_policy(&self) -> Result<(), InfraError> {
        self.network_policy
            .get_or_try_init(|| async {
                let policy = objects::network_policy(&self.config);
                self.apply::<NetworkPolicy>("networkpolicies", NETWORK_POLICY_NAME, &policy)
                    .await?;
                tracing::info!(namespace = %self.config.namespace, "applied fatman NetworkPolicy");
                Ok(())
            })
            .await
            .map(|_| ())
    }

    async fn read_deployment(&self, object: &str) -> Result<Option<Deployment>, InfraError> {
        self.api::<Deployment>().get_opt(object).await.map_err(|e| {
            self.error(
                Op {
                    verb: "get",
                    resource: "deployments",
                    name: object,
                },
                e,
            )
        })
    }

    /// Pods of the fatman version (or of all fatmen with `None`), without terminating ones.
    async fn pods(&self, object: Option<&str>) -> Result<Vec<Pod>, InfraError> {
        let selector = match object {
            Some(o) => format!("{K8S_LABEL_FATMAN}={o}"),
            None => format!("{K8S_LABEL_RESOURCE}=fatman"),
        };
        let list = self
            .api::<Pod>()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                self.error(
                    Op {
                        verb: "list",
                        resource: "pods",
                        name: "",
                    },
                    e,
                )
            })?;
        let mut pods: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        // Newest first.
        pods.sort_by(|a, b| {
            b.metadata
                .creation_timestamp
                .cmp(&a.metadata.creation_timestamp)
                .then(a.metadata.name.cmp(&b.metadata.name))
        });
        Ok(pods)
    }

    fn describe(&self, deployment: &Deployment, pods: &[Pod]) -> Option<DeployedFatman> {
        let meta = &deployment.metadata;
        let object = meta.name.clone()?;
        let annotations = meta.annotations.clone().unwrap_or_default();
        let labels = meta.labels.clone().unwrap_or_default();
        let pick = |annotation: &str, label: &str| {
            annotations
                .get(annotation)
                .or_else(|| labels.get(label))
                .cloned()
        };
        let (Some(name), Some(version)) = (
            pick(ANNOTATION_FATMAN_NAME, K8S_LABEL_FATMAN_NAME),
            pick(ANNOTATION_FATMAN_VERSION, K8S_LABEL_FATMAN_VERSION),
        ) else {
            tracing::warn!(deployment = %object, "racetrack Deployment lacks fatman name/version; skipped");
            return None;
        };
        let (status, error) = status::classify(deployment, pods);
        let mut all_labels = labels.clone();
        all_labels.extend([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_FATMAN_NAME.to_string(), name.clone()),
            (LABEL_FATMAN_VERSION.to_string(), version.clone()),
            (LABEL_FATMAN_FAMILY.to_string(), name.clone()),
        ]);
        if let Some(ts) = annotations.get(ANNOTATION_DEPLOYMENT_DATE) {
            all_labels.insert(LABEL_DEPLOYMENT_TIMESTAMP.to_string(), ts.clone());
        }
        let image = deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        Some(DeployedFatman {
            name,
            version,
            internal_name: format!(
                "{object}.{}.svc:{}",
                self.config.namespace, self.config.container_port
            ),
            resource_name: object,
            status,
            error,
            create_time: meta
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(0),
            image,
            labels: all_labels,
        })
    }

    async fn find(&self, object: &str) -> Result<Option<DeployedFatman>, InfraError> {
        let Some(deployment) = self.read_deployment(object).await? else {
            return Ok(None);
        };
        let pods = self.pods(Some(object)).await?;
        Ok(self.describe(&deployment, &pods))
    }

    async fn delete_object<K>(&self, resource: &str, object: &str) -> Result<(), InfraError>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        <K as kube::Resource>::DynamicType: Default,
    {
        match self
            .api::<K>()
            .delete(object, &DeleteParams::background())
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(self.error(
                Op {
                    verb: "delete",
                    resource,
                    name: object,
                },
                e,
            )),
        }
    }

    /// The logs of the fatman's container in each of `pods` (oldest pod first), at most `tail`
    /// lines in all (`0` = all). A container that has not started yet has no log.
    async fn read_logs(
        &self,
        object: &str,
        pods: &[Pod],
        tail: usize,
        previous: bool,
    ) -> Result<String, InfraError> {
        let mut out = String::new();
        for pod in pods.iter().rev() {
            let Some(pod_name) = pod.metadata.name.as_deref() else {
                continue;
            };
            let params = LogParams {
                container: Some(object.to_string()),
                tail_lines: (tail > 0).then_some(tail as i64),
                previous,
                ..Default::default()
            };
            match self.api::<Pod>().logs(pod_name, &params).await {
                Ok(text) => {
                    out.push_str(&text);
                    if !text.is_empty() && !text.ends_with('\n') {
                        out.push('\n');
                    }
                }
                // 400: the container is waiting to start (or has no previous instance).
                Err(kube::Error::Api(s)) if s.code == 400 => {}
                Err(e) => {
                    return Err(self.error(
                        Op {
                            verb: "get",
                            resource: "pods/log",
                            name: pod_name,
                        },
                        e,
                    ))
                }
            }
        }
        if tail == 0 {
            return Ok(out);
        }
        let lines: Vec<&str> = out.lines().collect();
        let start = lines.len().saturating_sub(tail);
        Ok(lines[start..].iter().map(|l| format!("{l}\n")).collect())
    }
}

/// Maps an API error to the crate's error, naming what was being done.
fn map_error(namespace: &str, op: Op<'_>, e: kube::Error) -> InfraError {
    let what = if op.name.is_empty() {
        op.resource.to_string()
    } else {
        format!("{} {}", op.resource, op.name)
    };
    match e {
        kube::Error::Api(s) => {
            let message = s.message.trim();
            match s.code {
                401 => InfraError::Forbidden(format!(
                    "not authenticated to the Kubernetes API (401) while trying to {} {what}: {message}",
                    op.verb
                )),
                403 => InfraError::Forbidden(format!(
                    "RBAC: service account may not {} {} in namespace {namespace}: {message}",
                    op.verb, op.resource
                )),
                404 => InfraError::NotFound(format!(
                    "{what} not found in namespace {namespace} (404): {message}"
                )),
                409 => InfraError::Conflict(format!(
                    "conflict (409) while trying to {} {what} in namespace {namespace}: it was changed concurrently or is owned by another field manager: {message}",
                    op.verb
                )),
                422 => InfraError::Invalid(format!(
                    "Kubernetes rejected {what} as invalid (422): {message}"
                )),
                code => InfraError::Kubernetes(format!(
                    "{} {what} in namespace {namespace}: {code} {}: {message}",
                    op.verb, s.reason
                )),
            }
        }
        kube::Error::HyperError(_) | kube::Error::Service(_) => InfraError::KubernetesUnavailable(
            format!("{} {what} in namespace {namespace}: {e}", op.verb),
        ),
        other => InfraError::Kubernetes(format!(
            "{} {what} in namespace {namespace}: {other}",
            op.verb
        )),
    }
}

/// Name and version as this target accepts them (the same rules as the registry's, without the
/// total length limit: long names are shortened with a hash).
fn checked_object_name(name: &str, version: &str) -> Result<String, InfraError> {
    racetrack_model::names::validate_fatman_name(name)
        .and_then(|()| racetrack_model::names::validate_fatman_version(version))
        .map_err(|e| InfraError::Invalid(e.to_string()))?;
    Ok(object_name(name, version))
}

#[async_trait::async_trait]
impl InfrastructureTarget for KubernetesTarget {
    fn name(&self) -> &str {
        "kubernetes"
    }

    async fn deploy(&self, spec: &FatmanSpec) -> Result<DeployedFatman, InfraError> {
        let object = checked_object_name(&spec.name, &spec.version)?;
        crate::docker::validate_spec(spec)?;
        if !(1..=MAX_REPLICAS).contains(&spec.replicas) {
            return Err(InfraError::Invalid(format!(
                "replicas must be between 1 and {MAX_REPLICAS}, not {}",
                spec.replicas
            )));
        }
        let resources = objects::resources(spec, &self.config)?;
        // Plain env is not secret (and redacting short values like "1" would garble messages).
        let scrub = |e: InfraError| e.map_message(|m| redact(m, spec.secret_env.values()));

        let secret = objects::secret(spec, &object, &self.config.namespace)?;
        let service = objects::service(spec, &object, &self.config);
        let deployment = objects::deployment(spec, &object, resources, &self.config);
        self.ensure_network_policy().await?;
        self.apply::<Secret>("secrets", &object, &secret)
            .await
            .map_err(scrub)?;
        self.apply::<Service>("services", &object, &service)
            .await
            .map_err(scrub)?;
        let applied = self
            .apply::<Deployment>("deployments", &object, &deployment)
            .await
            .map_err(scrub)?;
        tracing::info!(
            fatman = %object,
            namespace = %self.config.namespace,
            image = %spec.image,
            env = ?spec.env.keys().collect::<Vec<_>>(),
            secret_env = ?spec.secret_env.keys().collect::<Vec<_>>(),
            "applied fatman Deployment, Service and Secret"
        );
        let pods = self.pods(Some(&object)).await?;
        self.describe(&applied, &pods).ok_or_else(|| {
            InfraError::Kubernetes(format!(
                "the applied Deployment {object} came back without its annotations"
            ))
        })
    }

    async fn delete(&self, name: &str, version: &str) -> Result<(), InfraError> {
        let object = checked_object_name(name, version)?;
        self.delete_object::<Deployment>("deployments", &object)
            .await?;
        self.delete_object::<Service>("services", &object).await?;
        self.delete_object::<Secret>("secrets", &object).await?;
        tracing::info!(fatman = %object, namespace = %self.config.namespace, "deleted fatman objects");
        Ok(())
    }

    async fn exists(&self, name: &str, version: &str) -> Result<bool, InfraError> {
        let object = checked_object_name(name, version)?;
        Ok(self.read_deployment(&object).await?.is_some())
    }

    async fn list(&self) -> Result<Vec<DeployedFatman>, InfraError> {
        let selector = format!(
            "{K8S_LABEL_MANAGED_BY}={},{K8S_LABEL_FATMAN}",
            objects::MANAGER
        );
        let deployments = self
            .api::<Deployment>()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                self.error(
                    Op {
                        verb: "list",
                        resource: "deployments",
                        name: "",
                    },
                    e,
                )
            })?;
        let pods = self.pods(None).await?;
        let mut by_object: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
        for pod in pods {
            let key = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(K8S_LABEL_FATMAN))
                .cloned();
            if let Some(key) = key {
                by_object.entry(key).or_default().push(pod);
            }
        }
        let mut fatmen: Vec<DeployedFatman> = deployments
            .items
            .iter()
            .filter_map(|d| {
                let object = d.metadata.name.as_deref().unwrap_or_default();
                let pods = by_object.get(object).map(Vec::as_slice).unwrap_or(&[]);
                self.describe(d, pods)
            })
            .collect();
        fatmen.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
        Ok(fatmen)
    }

    async fn get(&self, name: &str, version: &str) -> Result<Option<DeployedFatman>, InfraError> {
        let object = checked_object_name(name, version)?;
        self.find(&object).await
    }

    async fn logs(&self, name: &str, version: &str, tail: usize) -> Result<String, InfraError> {
        let object = checked_object_name(name, version)?;
        if self.read_deployment(&object).await?.is_none() {
            return Err(InfraError::NotFound(format!(
                "fatman {name} version {version} is not deployed in namespace {}",
                self.config.namespace
            )));
        }
        let pods = self.pods(Some(&object)).await?;
        self.read_logs(&object, &pods, tail, false).await
    }

    /// The API's log stream (`follow=true`) of the newest pod; ends when that container stops
    /// or the API closes the stream.
    async fn follow_logs(
        &self,
        name: &str,
        version: &str,
        tail: usize,
    ) -> Result<LogStream<'_>, InfraError> {
        let object = checked_object_name(name, version)?;
        let pods = self.pods(Some(&object)).await?;
        let pod = pods
            .iter()
            .find(|p| status::pod_ready(p))
            .or(pods.first())
            .and_then(|p| p.metadata.name.clone())
            .ok_or_else(|| {
                InfraError::NotFound(format!(
                    "fatman {name} version {version} has no pod in namespace {}",
                    self.config.namespace
                ))
            })?;
        let params = LogParams {
            container: Some(object.clone()),
            follow: true,
            tail_lines: (tail > 0).then_some(tail as i64),
            ..Default::default()
        };
        let reader = self
            .api::<Pod>()
            .log_stream(&pod, &params)
            .await
            .map_err(|e| {
                self.error(
                    Op {
                        verb: "get",
                        resource: "pods/log",
                        name: &pod,
                    },
                    e,
                )
            })?;
        let namespace = self.config.namespace.clone();
        let lines = reader.lines().map(move |line| match line {
            Ok(line) => Ok(format!("{line}\n")),
            Err(e) => Err(InfraError::KubernetesUnavailable(format!(
                "following logs of pod {pod} in namespace {namespace}: {e}"
            ))),
        });
        Ok(Box::pin(lines))
    }

    async fn events(&self) -> Result<crate::InfraEventStream, InfraError> {
        self.watch_events().await
    }

    /// A pod is Ready only while its readiness probe (`/ready`) passes: the Deployment carries the
    /// runtime contract's probes.
    fn judges_health(&self) -> bool {
        true
    }

    fn restarts_crashed(&self) -> bool {
        true
    }

    async fn saved_secret_env(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<BTreeMap<String, String>>, InfraError> {
        let object = checked_object_name(name, version)?;
        let secret = self.api::<Secret>().get_opt(&object).await.map_err(|e| {
            self.error(
                Op {
                    verb: "get",
                    resource: "secrets",
                    name: &object,
                },
                e,
            )
        })?;
        let Some(secret) = secret else {
            return Ok(None);
        };
        let mut env = BTreeMap::new();
        for (key, value) in secret.data.unwrap_or_default() {
            let value = String::from_utf8(value.0).map_err(|_| {
                InfraError::Invalid(format!(
                    "secret {object} holds a value for {key} that is not UTF-8"
                ))
            })?;
            env.insert(key, value);
        }
        Ok(Some(env))
    }

    /// Waits until a pod of this deployment (its `racetrack-deployment-date` annotation) is
    /// Ready, i.e. its `/ready` probe passes; fails at once with the reason and the last log
    /// lines when the pods crash-loop, cannot pull the image or cannot be scheduled.
    async fn wait_until_ready(
        &self,
        fatman: &DeployedFatman,
        timeout: Duration,
    ) -> Result<(), InfraError> {
        let object = fatman.resource_name.as_str();
        let expected = fatman.labels.get(LABEL_DEPLOYMENT_TIMESTAMP).cloned();
        let deadline = Instant::now() + timeout;
        let mut last = String::from("no pod yet");
        loop {
            let Some(deployment) = self.read_deployment(object).await? else {
                return Err(InfraError::NotFound(format!(
                    "Deployment {object} was removed while waiting for it to become ready"
                )));
            };
            let pods: Vec<Pod> = self
                .pods(Some(object))
                .await?
                .into_iter()
                .filter(|p| {
                    expected.is_none()
                        || p.metadata
                            .annotations
                            .as_ref()
                            .and_then(|a| a.get(ANNOTATION_DEPLOYMENT_DATE))
                            == expected.as_ref()
                })
                .collect();
            let (status, reason) = status::classify(&deployment, &pods);
            match status {
                InfraStatus::Running => return Ok(()),
                InfraStatus::Starting => {
                    if !pods.is_empty() {
                        last = "pods are starting (not Ready yet)".into();
                    }
                }
                InfraStatus::Error | InfraStatus::Exited => {
                    let reason = reason.unwrap_or_else(|| status.to_string());
                    let previous = status == InfraStatus::Exited;
                    let logs = self
                        .read_logs(object, &pods, ERROR_LOG_LINES, previous)
                        .await
                        .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
                    return Err(InfraError::Unhealthy(format!(
                        "fatman failed to start: {reason}\nFatman logs:\n{}",
                        logs.trim_end()
                    )));
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(InfraError::Timeout(format!(
                    "fatman did not become ready within {}s: {last}",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(remaining.min(self.config.poll_interval)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_names_verb_and_resource() {
        let status = kube::core::Status::failure("deployments.apps is forbidden", "Forbidden")
            .with_code(403)
            .boxed();
        let e = map_error(
            "fatmen",
            Op {
                verb: "patch",
                resource: "deployments",
                name: "x",
            },
            kube::Error::Api(status),
        );
        assert_eq!(
            e.to_string(),
            "RBAC: service account may not patch deployments in namespace fatmen: deployments.apps is forbidden"
        );
    }
}
