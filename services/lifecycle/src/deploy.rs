//! Deploying fatmen: the steps behind a deployment (build through the image-builder's gRPC API,
//! provisioning on an infrastructure target, recording the result), started by the operations
//! in `crate::app::deployments` and `crate::app::fatmen`. Phases are stored on the deployment so
//! clients can poll them. No HTTP here: it runs on tokio with `Arc<AppState>`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use racetrack_db::repo::deployments;
use racetrack_db::DbConnection;
use racetrack_infra::{FatmanSpec, InfraStatus, InfrastructureTarget};
use racetrack_model::{DeploymentStatus, Manifest};
use racetrack_proto::image_builder::build_event::Event;
use racetrack_proto::image_builder::image_builder_client::ImageBuilderClient;
use racetrack_proto::image_builder::{BuildRequest, GitCredentials as ProtoGitCredentials};
use serde::Deserialize;

use crate::app::deployments::{
    check_may_deploy, family_for_deploy, record_deployed, resolve_target, Deployed,
};
use crate::app::{blocking, AppError, Caller};
use crate::state::AppState;

/// Environment variables by name.
type EnvVars = BTreeMap<String, String>;

#[derive(Debug, Clone, Default, Deserialize)]
pub struct GitCredentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct SecretVars {
    #[serde(default)]
    pub build_env: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub runtime_env: Option<BTreeMap<String, String>>,
}

/// What a deployment works from (already validated).
#[derive(Clone)]
pub struct DeployInput {
    pub manifest: Manifest,
    pub manifest_yaml: String,
    pub git_credentials: Option<GitCredentials>,
    pub secrets: SecretVars,
    /// gzipped tar of the fatman's directory (`--build-context local`).
    pub build_context: Option<Vec<u8>>,
    pub force: bool,
    /// Reprovisioning runs this image instead of building one.
    pub prebuilt_image: Option<String>,
}

impl DeployInput {
    /// What a redeploy, reprovision or move of a registered fatman works from: its stored
    /// manifest, no credentials or build context, forced; the secret runtime env is read back
    /// from the target when the deployment runs ([`saved_secrets`]).
    pub fn stored(
        manifest_yaml: String,
        manifest: Manifest,
        prebuilt_image: Option<String>,
    ) -> Self {
        DeployInput {
            manifest,
            manifest_yaml,
            git_credentials: None,
            secrets: SecretVars::default(),
            build_context: None,
            force: true,
            prebuilt_image,
        }
    }
}

impl std::fmt::Debug for DeployInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Credentials and secret values stay out of every log line.
        f.debug_struct("DeployInput")
            .field("fatman", &self.manifest.name)
            .field("version", &self.manifest.version)
            .field("force", &self.force)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `POST /deploy`: build and provision a new (or forced) version.
    Deploy,
    /// `POST /build`: build only.
    BuildOnly,
    /// `POST /fatman/../redeploy`: rebuild an existing fatman and provision it again.
    Redeploy,
    /// `POST /fatman/../reprovision`: run the fatman's existing image again.
    Reprovision,
    /// `POST /fatman/../move`: run the fatman's existing image on another target, then remove it
    /// from the former one (see [`run_move`]).
    Move,
}

/// Runs `f` with a pooled connection on the blocking pool.
async fn db<T, F>(state: &Arc<AppState>, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, AppError> + Send + 'static,
{
    blocking(state, move |conn, _| f(conn)).await
}

pub fn image_tag_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H%M%S").to_string()
}

/// A failed step: its message ends up in the deployment's `error`.
pub struct Failed(pub String);

impl From<AppError> for Failed {
    fn from(e: AppError) -> Self {
        Failed(match e {
            AppError::Internal(details) => details,
            other => other.to_string(),
        })
    }
}

async fn set_phase(state: &Arc<AppState>, id: &str, phase: &str) {
    let (id, phase) = (id.to_string(), phase.to_string());
    tracing::info!(deployment = %id, phase = %phase, "deployment phase");
    let _ = db(state, move |conn| {
        if let Some(mut d) = deployments::find(conn, &id)? {
            d.phase = Some(phase);
            d.update_time = racetrack_db::now();
            deployments::save(conn, &d)?;
        }
        Ok(())
    })
    .await;
}

async fn save_logs(state: &Arc<AppState>, id: &str, logs: &str) {
    let (id, logs) = (id.to_string(), logs.to_string());
    let _ = db(state, move |conn| {
        if let Some(mut d) = deployments::find(conn, &id)? {
            d.build_logs = Some(logs);
            d.update_time = racetrack_db::now();
            deployments::save(conn, &d)?;
        }
        Ok(())
    })
    .await;
}

/// Runs a deployment to its end and records the outcome; never panics, never leaves it
/// `in_progress`.
#[tracing::instrument(name = "deploy", skip_all, fields(deployment = %deployment_id, fatman = %input.manifest.name, version = %input.manifest.version))]
pub async fn run(
    state: Arc<AppState>,
    deployment_id: String,
    caller: Caller,
    input: DeployInput,
    mode: Mode,
) {
    let outcome = run_steps(&state, &deployment_id, &caller, &input, mode).await;
    record_outcome(&state, &deployment_id, outcome).await;
}

/// Stores how a deployment ended: `done` (with the image it ran) or `failed` with the reason.
async fn record_outcome(
    state: &Arc<AppState>,
    deployment_id: &str,
    outcome: Result<Option<String>, Failed>,
) {
    let id = deployment_id.to_string();
    let result = db(state, move |conn| {
        let Some(mut d) = deployments::find(conn, &id)? else {
            return Ok(None);
        };
        d.update_time = racetrack_db::now();
        match outcome {
            Ok(image_name) => {
                d.status = DeploymentStatus::Done;
                d.error = None;
                d.phase = None;
                d.image_name = image_name.or(d.image_name);
            }
            Err(Failed(error)) => {
                d.status = DeploymentStatus::Failed;
                d.error = Some(error);
            }
        }
        deployments::save(conn, &d)?;
        Ok(Some(d.status))
    })
    .await;
    match result {
        Ok(Some(status)) => tracing::info!(%status, "deployment finished"),
        Ok(None) => tracing::info!(status = "gone", "deployment finished"),
        Err(e) => tracing::error!(error = %e, "could not record the deployment's outcome"),
    }
}

async fn run_steps(
    state: &Arc<AppState>,
    id: &str,
    caller: &Caller,
    input: &DeployInput,
    mode: Mode,
) -> Result<Option<String>, Failed> {
    let name = input.manifest.name.clone();
    let version = input.manifest.version.clone();
    if mode == Mode::Deploy {
        let (caller, n, v, force) = (caller.clone(), name.clone(), version.clone(), input.force);
        db(state, move |conn| {
            check_may_deploy(conn, &caller, &n, &v, force)
        })
        .await?;
    }
    // Resolved before building: a deploy to a missing target fails before a long build.
    let target = match mode {
        Mode::BuildOnly => None,
        _ => Some(resolve_target(state, &input.manifest)?),
    };
    // A redeploy or reprovision runs with the secret runtime env the target kept (read before a
    // long build, so a target that cannot give it fails first).
    let restored;
    let secrets = match (&target, mode) {
        (Some(target), Mode::Redeploy | Mode::Reprovision)
            if input.secrets.runtime_env.is_none() =>
        {
            restored = SecretVars {
                build_env: input.secrets.build_env.clone(),
                runtime_env: saved_secrets(target.as_ref(), &name, &version).await?,
            };
            &restored
        }
        _ => &input.secrets,
    };

    let (image, tag) = match &input.prebuilt_image {
        Some(image) => (
            image.clone(),
            image.rsplit(':').next().unwrap_or_default().to_string(),
        ),
        None => {
            set_phase(state, id, "building image").await;
            let tag = image_tag_now();
            (build_image(state, id, input, &tag).await?, tag)
        }
    };
    let Some(target) = target else {
        return Ok(Some(image));
    };
    provision(
        state,
        id,
        caller,
        &input.manifest,
        &input.manifest_yaml,
        secrets,
        &image,
        &tag,
        target.as_ref(),
        mode,
    )
    .await?;
    Ok(Some(image))
}

async fn build_image(
    state: &Arc<AppState>,
    id: &str,
    input: &DeployInput,
    tag: &str,
) -> Result<String, Failed> {
    let url = state.config.image_builder_url.clone();
    let token = state.config.image_builder_token.as_deref().ok_or_else(|| {
        Failed("IMAGE_BUILDER_TOKEN is not set: the image builder refuses calls without it".into())
    })?;
    let mut client = connect_builder(&url, token).await?;
    let request = BuildRequest {
        deployment_id: id.to_string(),
        // Validated once at the API; sent typed, never as YAML to parse again.
        manifest: Some((&input.manifest).into()),
        build_context: input.build_context.clone().unwrap_or_default(),
        git_credentials: input.git_credentials.as_ref().map(|c| ProtoGitCredentials {
            username: c.username.clone(),
            password: c.password.clone(),
        }),
        secret_build_env: input
            .secrets
            .build_env
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        tag: tag.to_string(),
    };
    // The builder's build span becomes a child of this deploy span (docs/architecture.md,
    // "Tracing").
    let mut request = tonic::Request::new(request);
    racetrack_telemetry::inject_grpc(&mut request);
    let mut stream = client
        .build(request)
        .await
        .map_err(|s| Failed(format!("image-builder refused the build: {}", s.message())))?
        .into_inner();
    let mut logs = String::new();
    let mut last_save = std::time::Instant::now();
    loop {
        let event = match stream.message().await {
            Ok(Some(e)) => e,
            Ok(None) => {
                save_logs(state, id, &logs).await;
                return Err(Failed(
                    "image-builder ended the build without a result".into(),
                ));
            }
            Err(s) => {
                save_logs(state, id, &logs).await;
                return Err(Failed(format!(
                    "lost the image-builder while building: {}",
                    s.message()
                )));
            }
        };
        match event.event {
            Some(Event::Log(line)) => {
                logs.push_str(&line.line);
                logs.push('\n');
                // Saved about once a second so clients can follow a build live.
                if last_save.elapsed() >= Duration::from_secs(1) {
                    save_logs(state, id, &logs).await;
                    last_save = std::time::Instant::now();
                }
            }
            Some(Event::Phase(phase)) => set_phase(state, id, &phase).await,
            Some(Event::Result(result)) => {
                save_logs(state, id, &logs).await;
                if !result.success {
                    return Err(Failed(format!("building image failed: {}", result.error)));
                }
                return result
                    .image_names
                    .into_iter()
                    .next()
                    .ok_or_else(|| Failed("image-builder reported no image".into()));
            }
            None => {}
        }
    }
}

/// Metadata key of the image builder's internal token.
const IMAGE_BUILDER_AUTH_METADATA: &str = "x-racetrack-auth";

/// Adds the image builder's internal token to every call.
#[derive(Clone)]
struct BuilderToken(tonic::metadata::AsciiMetadataValue);

impl tonic::service::Interceptor for BuilderToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request
            .metadata_mut()
            .insert(IMAGE_BUILDER_AUTH_METADATA, self.0.clone());
        Ok(request)
    }
}

type BuilderClient = ImageBuilderClient<
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, BuilderToken>,
>;

async fn connect_builder(url: &str, token: &str) -> Result<BuilderClient, Failed> {
    let token: tonic::metadata::AsciiMetadataValue = token.parse().map_err(|_| {
        Failed("IMAGE_BUILDER_TOKEN has characters gRPC metadata cannot carry".into())
    })?;
    let endpoint = tonic::transport::Endpoint::from_shared(url.to_string())
        .map_err(|e| Failed(format!("IMAGE_BUILDER_URL {url} is invalid: {e}")))?;
    // The builder may be starting at the same time as lifecycle: back off for up to ~30 s.
    let mut delay = Duration::from_millis(200);
    let mut waited = Duration::ZERO;
    loop {
        match endpoint.connect().await {
            Ok(channel) => {
                return Ok(ImageBuilderClient::with_interceptor(
                    channel,
                    BuilderToken(token.clone()),
                )
                .max_decoding_message_size(64 * 1024 * 1024));
            }
            Err(e) if waited >= Duration::from_secs(30) => {
                return Err(Failed(format!(
                    "image-builder at {url} is unreachable: {e}"
                )))
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                waited += delay;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The secret runtime env `target` kept for the fatman version, without the variables the
/// platform sets itself (`AUTH_TOKEN` is issued again by the deploy); `None` when the target keeps
/// none for it.
pub async fn saved_secrets(
    target: &dyn InfrastructureTarget,
    name: &str,
    version: &str,
) -> Result<Option<EnvVars>, Failed> {
    let saved = target.saved_secret_env(name, version).await.map_err(|e| {
        Failed(format!(
            "reading the fatman's secrets from {} failed: {e}",
            target.name()
        ))
    })?;
    Ok(saved.map(|mut env| {
        env.retain(|k, _| !racetrack_infra::RESERVED_ENV_VARS.contains(&k.as_str()));
        env
    }))
}

/// A move's phase while the fatman is taken off its former target (the original's words).
pub const PHASE_DELETING_FORMER: &str = "deleting fatman from a former infrastructure";

/// What a move did besides running the fatman on its new target.
#[derive(Debug, Clone)]
pub struct Moved {
    /// How many secret runtime variables came along; `None` when the former target keeps no
    /// secrets for the fatman, so none could.
    pub secrets_carried: Option<usize>,
    /// Why the fatman could not be removed from its former target, if it could not (it then
    /// keeps running there too).
    pub former_left: Option<String>,
}

/// Moves a fatman version between targets (docs/architecture.md, "Moving a fatman"): provisions
/// `image` on `to` with the secrets `from` kept, waits until it is ready and records it there
/// (PUB is told, so calls go to the new address), then removes it from `from`. Any failure before
/// the record leaves the fatman where it was and removes what was put on `to`. The outcome is
/// stored on deployment `id`.
#[allow(clippy::too_many_arguments)]
pub async fn run_move(
    state: &Arc<AppState>,
    id: &str,
    caller: &Caller,
    manifest: &Manifest,
    manifest_yaml: &str,
    image: &str,
    from: &dyn InfrastructureTarget,
    to: &dyn InfrastructureTarget,
) -> Result<Moved, Failed> {
    let (name, version) = (manifest.name.as_str(), manifest.version.as_str());
    let outcome = async {
        let secrets = saved_secrets(from, name, version).await?;
        let secrets_carried = secrets.as_ref().map(BTreeMap::len);
        if secrets.is_none() {
            tracing::warn!(fatman = %name, %version, from = %from.name(), "the former target kept no secrets for this fatman: it moves without its secret runtime env");
        }
        let tag = image.rsplit(':').next().unwrap_or_default().to_string();
        let provisioned = provision(
            state,
            id,
            caller,
            manifest,
            manifest_yaml,
            &SecretVars {
                build_env: None,
                runtime_env: secrets,
            },
            image,
            &tag,
            to,
            Mode::Move,
        )
        .await;
        if let Err(failed) = provisioned {
            // Whatever was applied on the new target goes (a missing fatman is fine).
            if let Err(e) = to.delete(name, version).await {
                tracing::warn!(fatman = %name, %version, infra_target = %to.name(), error = %e, "could not remove a failed move's remains");
            }
            return Err(failed);
        }
        set_phase(state, id, PHASE_DELETING_FORMER).await;
        let former_left = match from.delete(name, version).await {
            Ok(()) => None,
            Err(e) => {
                tracing::warn!(fatman = %name, %version, infra_target = %from.name(), error = %e, "moved, but the former copy could not be removed");
                Some(e.to_string())
            }
        };
        Ok(Moved {
            secrets_carried,
            former_left,
        })
    }
    .await;
    let record = match &outcome {
        Ok(_) => Ok(Some(image.to_string())),
        Err(Failed(e)) => Err(Failed(e.clone())),
    };
    record_outcome(state, id, record).await;
    outcome
}

/// Runtime env of a fatman: its manifest env and secret env, build-only keys blanked (so build
/// secrets don't reach the running container), and the platform's reserved variables.
/// Returns (plain, secret) variables.
fn runtime_env(
    state: &AppState,
    manifest: &Manifest,
    secrets: &SecretVars,
    family_token: &str,
    deployment_timestamp: i64,
) -> Result<(EnvVars, EnvVars), AppError> {
    let mut env = manifest.runtime_env.clone().unwrap_or_default();
    let secret_env = secrets.runtime_env.clone().unwrap_or_default();
    let build_keys = manifest
        .build_env
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .chain(secrets.build_env.iter().flatten().map(|(k, _)| k));
    for key in build_keys {
        if !env.contains_key(key) && !secret_env.contains_key(key) {
            env.insert(key.clone(), String::new());
        }
    }
    let mut all_user: BTreeMap<String, String> = env.clone();
    all_user.extend(secret_env.keys().map(|k| (k.clone(), String::new())));
    let conflicts = racetrack_infra::reserved_env_conflicts(&all_user);
    if !conflicts.is_empty() {
        return Err(AppError::validation(
            "manifest.runtime_env",
            format!(
                "found illegal runtime env vars, which conflict with reserved names: {conflicts:?}"
            ),
        ));
    }
    env.insert("PUB_URL".into(), state.config.internal_pub_url.clone());
    env.insert("FATMAN_NAME".into(), manifest.name.clone());
    env.insert("FATMAN_VERSION".into(), manifest.version.clone());
    env.insert(
        "FATMAN_DEPLOYMENT_TIMESTAMP".into(),
        deployment_timestamp.to_string(),
    );
    env.insert(
        "REQUEST_TRACING_HEADER".into(),
        state.config.request_tracing_header.clone(),
    );
    let mut secret = secret_env;
    secret.insert("AUTH_TOKEN".into(), family_token.to_string());
    Ok((env, secret))
}

/// Creates the family (and its token) if needed, runs the fatman on the target, waits until it
/// is ready, then records it. A fatman that crashes or never gets ready is removed again and the
/// reason (with its last log lines) becomes the deployment's error; other versions keep running.
#[allow(clippy::too_many_arguments)]
pub async fn provision(
    state: &Arc<AppState>,
    id: &str,
    caller: &Caller,
    manifest: &Manifest,
    manifest_yaml: &str,
    secrets: &SecretVars,
    image: &str,
    tag: &str,
    target: &dyn InfrastructureTarget,
    mode: Mode,
) -> Result<(), Failed> {
    set_phase(state, id, "creating cluster resources").await;
    let name = manifest.name.clone();
    let version = manifest.version.clone();
    let family_token = {
        let (n, c) = (name.clone(), caller.clone());
        blocking(state, move |conn, state| {
            family_for_deploy(conn, &state.signer, &c, &n)
        })
        .await?
    };
    let timestamp = chrono::Utc::now().timestamp();
    let (env, secret_env) = runtime_env(state, manifest, secrets, &family_token, timestamp)?;
    let resources = manifest.resources.as_ref();
    let spec = FatmanSpec {
        name: name.clone(),
        version: version.clone(),
        image: image.to_string(),
        env,
        secret_env,
        replicas: manifest.replicas,
        memory_max_bytes: resources
            .and_then(|r| r.memory_max.as_ref())
            .map(|q| q.value() as u64),
        cpu_max: resources
            .and_then(|r| r.cpu_max.as_ref())
            .map(|q| q.value()),
        memory_min_bytes: resources
            .and_then(|r| r.memory_min.as_ref())
            .map(|q| q.value() as u64),
        cpu_min: resources
            .and_then(|r| r.cpu_min.as_ref())
            .map(|q| q.value()),
        labels: BTreeMap::new(),
        deployment_timestamp: timestamp,
    };
    let deployed = match target.deploy(&spec).await {
        Ok(deployed) => deployed,
        Err(e) => {
            // A refused apply may leave part of a new fatman behind (Kubernetes: its Secret and
            // Service); a registered version is left alone, it may still be serving.
            let (n, v) = (name.clone(), version.clone());
            let registered = blocking(state, move |conn, _| {
                Ok(racetrack_db::repo::fatmen::find(conn, &n, &v)?.is_some())
            })
            .await
            .unwrap_or(true);
            if !registered {
                let _ = target.delete(&name, &version).await;
            }
            return Err(Failed(format!(
                "deploying to {} failed: {e}",
                target.name()
            )));
        }
    };
    if matches!(deployed.status, InfraStatus::Exited | InfraStatus::Error) {
        let reason = deployed.error.clone().unwrap_or_default();
        let _ = target.delete(&name, &version).await;
        return Err(Failed(format!("fatman crashed at start: {reason}")));
    }
    set_phase(state, id, "starting Fatman server").await;
    let timeout = Duration::from_secs(state.config.fatman_ready_timeout_secs);
    // The target also watches the container, so a crash ends the wait at once, with its logs.
    if let Err(e) = target.wait_until_ready(&deployed, timeout).await {
        let _ = target.delete(&name, &version).await;
        return Err(Failed(format!("fatman did not start: {e}")));
    }
    set_phase(state, id, "post-deploy hooks").await;
    let deployed = Deployed {
        manifest: manifest.clone(),
        manifest_yaml: manifest_yaml.to_string(),
        image_tag: tag.to_string(),
        internal_name: deployed.internal_name.clone(),
        target: target.name().to_string(),
    };
    let (c, fatman_name) = (caller.clone(), manifest.name.clone());
    blocking(state, move |conn, _| {
        record_deployed(conn, &c, &deployed, mode)
    })
    .await?;
    crate::events::fatman_changed(state, &fatman_name);
    state.deployed_fatmen.inc();
    Ok(())
}
