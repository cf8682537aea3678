//! The build algorithm: fetch the source, resolve the job type, make sure its base image exists,
//! render the fatman Dockerfile, build the entrypoint image with the layer cache, push it.
//!
//! Phases, in order (each also logged as `=== phase ===`):
//! `waiting for a build slot` (only when all slots are busy), `fetching the source code`,
//! `building base image` (only when the job type's base image is missing or outdated),
//! `building image`, `pushing image` (only with `PUSH_IMAGES`).
//!
//! A failure ends the build with `{success: false, error: "<phase>: <reason>"}`; the log keeps
//! everything up to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use racetrack_model::{manifest_to_json, resource_name, Manifest};
use racetrack_proto::image_builder::{BuildRequest, BuildResult};
use regex::Regex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::builds::{BuildLog, BuildRecord};
use crate::config::Config;
use crate::context::ExtraFile;
use crate::docker::{BuildSpec, DockerEngine};
use crate::extract::{extract_build_context, ExtractLimits};
use crate::git::{self, GitSource};
use crate::jobtype::{JobType, JobTypeCatalog};
use crate::metrics::{BuilderMetrics, GaugeGuard};
use crate::naming::image_name;
use crate::template;

pub const PHASE_WAITING: &str = "waiting for a build slot";
pub const PHASE_FETCHING: &str = "fetching the source code";
pub const PHASE_BASE: &str = "building base image";
pub const PHASE_BUILDING: &str = "building image";
pub const PHASE_PUSHING: &str = "pushing image";
/// Failures found before any phase (bad manifest, unknown job type, bad build env).
pub const PHASE_CHECKING: &str = "checking the request";

/// Name of the CA bundle in every build context (empty file when `EXTRA_CA_CERTS` is unset).
pub const EXTRA_CA_CERTS_FILE: &str = ".racetrack-extra-ca-certs.crt";
/// The Dockerfile built, in the workspace: the rendered template or a copy of the user's
/// Dockerfile, with the image labels appended.
pub const RENDERED_DOCKERFILE: &str = ".fatman.Dockerfile";
/// The job type's base Dockerfile with labels appended, added to the base build's context.
pub const BASE_DOCKERFILE: &str = ".racetrack-base.Dockerfile";
/// Build args every build gets (user build env may not use these names).
pub const RESERVED_BUILD_ARGS: &[&str] = &["PYTHON_BASE_IMAGE", "BASE_IMAGE", "EXTRA_CA_CERTS"];

const DOCKER_WAIT: Duration = Duration::from_secs(30);

/// Why a build failed: the phase it was in and a reason (already redacted when shown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub phase: &'static str,
    pub reason: String,
}

impl Failure {
    fn new(phase: &'static str, reason: impl Into<String>) -> Failure {
        Failure {
            phase,
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.phase, self.reason)
    }
}

/// Runs builds; shared by every request.
pub struct Builder {
    pub config: Arc<Config>,
    pub docker: Arc<DockerEngine>,
    pub metrics: Arc<BuilderMetrics>,
    slots: Arc<Semaphore>,
    base_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the tests: it cannot fail later"
)]
fn env_name_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").expect("valid regex"))
}

#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the tests: it cannot fail later"
)]
fn package_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9.+:=~_-]*$").expect("valid regex"))
}

/// `build_env` with `secret_build_env` on top (secrets win), names checked.
pub fn merge_build_env(
    manifest: &Manifest,
    secret: &HashMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let mut env: BTreeMap<String, String> = manifest.build_env.clone().unwrap_or_default();
    for (k, v) in secret {
        env.insert(k.clone(), v.clone());
    }
    for key in env.keys() {
        if !env_name_re().is_match(key) {
            return Err(format!(
                "build env variable name `{key}` is invalid (letters, digits and '_', not starting with a digit)"
            ));
        }
        if RESERVED_BUILD_ARGS.contains(&key.as_str()) {
            return Err(format!(
                "build env variable `{key}` is reserved by the image builder"
            ));
        }
    }
    Ok(env)
}

/// Escapes a value for a double-quoted Dockerfile string (`\\`, `"` and `$`).
fn dockerfile_quote(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "\\$")
}

/// Variables whose values reach the build as build args instead of being written into the
/// Dockerfile: secrets (so Docker never prints their values) and values with line breaks or
/// control characters (which a Dockerfile line can't hold).
pub fn build_arg_keys(
    env: &BTreeMap<String, String>,
    secret_keys: &BTreeSet<String>,
) -> Vec<String> {
    env.iter()
        .filter(|(k, v)| secret_keys.contains(*k) || v.chars().any(char::is_control))
        .map(|(k, _)| k.clone())
        .collect()
}

/// The `env_lines` / `env_vars` block of templates: one `ENV` instruction setting every plain
/// build env variable, preceded by an `ARG` per value given as a build arg (line breaks or control
/// characters, see [`build_arg_keys`]):
///
/// ```text
/// ARG MULTI
/// ENV GREETING="hello \"world\"" \
///     MULTI="${MULTI}"
/// ```
/// Secret variables are left out: an `ENV` (or an `ARG` used by a `RUN` step) of the image's own
/// stage stores the value in the image config or history, readable by whoever pulls it. They get
/// [`secret_args_block`] instead. Nothing for an empty env.
pub fn env_vars_block(env: &BTreeMap<String, String>, secret_keys: &BTreeSet<String>) -> String {
    let plain: BTreeMap<String, String> = env
        .iter()
        .filter(|(k, _)| !secret_keys.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if plain.is_empty() {
        return String::new();
    }
    let args = build_arg_keys(&plain, secret_keys);
    let mut out = String::new();
    for key in &args {
        out.push_str(&format!("ARG {key}\n"));
    }
    let pairs: Vec<String> = plain
        .iter()
        .map(|(k, v)| {
            if args.contains(k) {
                format!("{k}=\"${{{k}}}\"")
            } else {
                format!("{k}=\"{}\"", dockerfile_quote(v))
            }
        })
        .collect();
    out.push_str(&format!("ENV {}\n", pairs.join(" \\\n    ")));
    out
}

/// The `secret_args` block of templates: `ARG NAME` per secret build env variable, whose values
/// come as build args. A template puts it only into a build stage that the final image does not
/// descend from (the stage installing packages; the final stage copies their files), so the
/// values stay out of the image's layers, config and history. Nothing without secrets.
pub fn secret_args_block(secret_keys: &BTreeSet<String>) -> String {
    secret_keys.iter().map(|k| format!("ARG {k}\n")).collect()
}

/// `dockerfile` with one `LABEL` instruction appended (applies to the last stage).
pub fn with_labels(dockerfile: &str, labels: &[(&str, String)]) -> String {
    let mut out = dockerfile.to_string();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                dockerfile_quote(&v.replace(['\n', '\r'], " "))
            )
        })
        .collect();
    out.push_str(&format!("LABEL {}\n", pairs.join(" ")));
    out
}

/// Variables available to job-type templates (see the crate README).
pub struct TemplateInput<'a> {
    pub manifest: &'a Manifest,
    pub base_image: &'a str,
    pub env: &'a BTreeMap<String, String>,
    pub secret_keys: &'a BTreeSet<String>,
    pub git_version: &'a str,
    pub racetrack_version: &'a str,
    pub job_type: &'a JobType,
    pub extra_ca_certs: bool,
}

pub fn template_vars(input: &TemplateInput<'_>) -> Result<BTreeMap<String, Value>, String> {
    let m = input.manifest;
    let deps = m.system_dependencies.clone().unwrap_or_default();
    for dep in &deps {
        if !package_re().is_match(dep) {
            return Err(format!(
                "system dependency `{dep}` is not a valid package name"
            ));
        }
    }
    let python = m.python.clone().unwrap_or_default();
    let serde_json::Value::Object(vars) = json!({
        "manifest": manifest_to_json(m),
        "name": m.name,
        "version": m.version,
        "fatman_name": m.name,
        "fatman_version": m.version,
        "lang": m.lang,
        "base_image": input.base_image,
        "env_vars": env_vars_block(input.env, input.secret_keys),
        "env_lines": env_vars_block(input.env, input.secret_keys),
        "secret_args": secret_args_block(input.secret_keys),
        "env_var_names": input.env.keys().collect::<Vec<_>>(),
        "resource_name": resource_name(&m.name, &m.version),
        "git_version": input.git_version,
        "deployed_by_racetrack_version": input.racetrack_version,
        "job_type": input.job_type.name,
        "job_type_version": input.job_type.version,
        "system_dependencies": deps.join(" "),
        "requirements_path": python.requirements_path.unwrap_or_default(),
        "entrypoint_path": python.entrypoint_path,
        "entrypoint_class": python.entrypoint_class,
        "dockerfile_path": m.docker.as_ref().and_then(|d| d.dockerfile_path.clone()).unwrap_or_default(),
        "gomod": m.golang.as_ref().map(|g| g.gomod.clone()).unwrap_or_else(|| "go.mod".into()),
        "wrapper_properties": m.wrapper_properties.clone().unwrap_or_default(),
        "extra_ca_certs": if input.extra_ca_certs { EXTRA_CA_CERTS_FILE } else { "" },
    }) else {
        return Err("template variables must form a JSON object".into());
    };
    Ok(vars.into_iter().collect())
}

/// Variables whose values are blocks of lines.
pub fn multiline_vars() -> BTreeSet<&'static str> {
    BTreeSet::from(["env_vars", "env_lines", "secret_args"])
}

/// The configured build args a kind of build gets: those listed, or all when there is no list.
fn filter_args(
    all: &BTreeMap<String, String>,
    allowed: Option<&Vec<String>>,
) -> BTreeMap<String, String> {
    match allowed {
        None => all.clone(),
        Some(names) => all
            .iter()
            .filter(|(k, _)| names.iter().any(|n| n == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

/// A relative path inside `root` that exists as a file (symlinks resolved, must stay inside).
fn file_inside(root: &Path, rel: &str) -> Result<String, String> {
    let p = Path::new(rel.trim());
    if rel.trim().is_empty() || p.is_absolute() {
        return Err(format!("`{rel}` must be a relative path"));
    }
    let root = std::fs::canonicalize(root).map_err(|e| e.to_string())?;
    let full =
        std::fs::canonicalize(root.join(p)).map_err(|_| format!("`{rel}` does not exist"))?;
    if !full.starts_with(&root) {
        return Err(format!("`{rel}` leads outside of the build context"));
    }
    if !full.is_file() {
        return Err(format!("`{rel}` is not a file"));
    }
    Ok(p.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => s.to_str().map(str::to_string),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/"))
}

/// Hash of everything that goes into a base image: the job type folder, build args, CA bundle.
fn base_digest(dir: &Path, args: &BTreeMap<String, String>, ca: &[u8]) -> std::io::Result<String> {
    let mut hasher = Sha256::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() || ft.is_symlink() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        hasher.update(rel.to_string_lossy().as_bytes());
        hasher.update([0]);
        match std::fs::symlink_metadata(&f)? {
            m if m.file_type().is_symlink() => {
                hasher.update(std::fs::read_link(&f)?.to_string_lossy().as_bytes())
            }
            _ => hasher.update(std::fs::read(&f)?),
        }
        hasher.update([0]);
    }
    for (k, v) in args {
        hasher.update(format!("{k}={v}\0").as_bytes());
    }
    hasher.update(ca);
    let digest = hasher.finalize();
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Where the source ended up.
struct Fetched {
    workspace: PathBuf,
    git_version: String,
}

impl Builder {
    pub fn new(
        config: Arc<Config>,
        docker: Arc<DockerEngine>,
        metrics: Arc<BuilderMetrics>,
    ) -> Builder {
        Builder {
            slots: Arc::new(Semaphore::new(config.max_concurrent_builds)),
            config,
            docker,
            metrics,
            base_locks: Mutex::new(HashMap::new()),
        }
    }

    pub fn job_types(&self) -> JobTypeCatalog {
        JobTypeCatalog::load(&self.config.job_types_dir)
    }

    fn workspace_root(&self, deployment_id: &str) -> PathBuf {
        self.config.workspaces_dir.join(deployment_id)
    }

    /// Runs one build to its end and records the result. Never panics: a panic inside is
    /// turned into a failed result.
    /// `parent`: the caller's trace context (the deploy span), parent of the `build` span.
    pub async fn run(
        self: Arc<Self>,
        mut request: BuildRequest,
        record: Arc<BuildRecord>,
        parent: racetrack_telemetry::TraceContext,
    ) {
        // The upload may be large: moved along, never copied.
        let context = std::mem::take(&mut request.build_context);
        let log = BuildLog::open(Arc::clone(&record), &self.config.build_logs_dir);
        // Secrets are known to the redactor before anything is logged.
        for value in request.secret_build_env.values() {
            log.add_secret(value);
        }
        if let Some(c) = &request.git_credentials {
            log.add_secret(&c.password);
        }
        let id = request.deployment_id.clone();
        let span = tracing::info_span!(
            "build",
            deployment_id = %id,
            fatman_name = tracing::field::Empty,
            fatman_version = tracing::field::Empty
        );
        racetrack_telemetry::set_parent(&span, parent);
        let started = Instant::now();
        let this = Arc::clone(&self);
        let task_log = log.clone();
        let outcome = tokio::spawn(
            async move { this.run_inner(&request, context, &task_log).await }
                .instrument(span.clone()),
        )
        .await;
        let result = match outcome {
            Ok(Ok(images)) => {
                log.line(&format!(
                    "build finished in {:.1} s: {}",
                    started.elapsed().as_secs_f64(),
                    images.join(", ")
                ));
                BuildResult {
                    success: true,
                    image_names: images,
                    error: String::new(),
                }
            }
            Ok(Err(failure)) => {
                let error = log.redact(&failure.to_string());
                log.line(&format!(
                    "build failed after {:.1} s: {error}",
                    started.elapsed().as_secs_f64()
                ));
                BuildResult {
                    success: false,
                    image_names: Vec::new(),
                    error,
                }
            }
            Err(join_error) => {
                let phase = record.status().phase;
                let error = format!(
                    "{}: internal error in the image builder ({})",
                    if phase.is_empty() {
                        PHASE_CHECKING
                    } else {
                        phase.as_str()
                    },
                    if join_error.is_panic() {
                        "panic"
                    } else {
                        "cancelled"
                    }
                );
                log.line(&error);
                BuildResult {
                    success: false,
                    image_names: Vec::new(),
                    error,
                }
            }
        };
        let _enter = span.enter();
        if result.success {
            tracing::info!(
                elapsed_s = started.elapsed().as_secs_f64(),
                "build succeeded"
            );
        } else {
            self.metrics.images_building_errors.inc();
            tracing::warn!(error = %result.error, "build failed");
        }
        drop(_enter);
        self.clean_workspace(&id).await;
        record.finish(result);
    }

    async fn clean_workspace(&self, deployment_id: &str) {
        let dir = self.workspace_root(deployment_id);
        let _ = tokio::task::spawn_blocking(move || {
            if dir.exists() {
                if let Err(e) = std::fs::remove_dir_all(&dir) {
                    tracing::warn!(error = %e, dir = %dir.display(), "can't remove a build workspace");
                }
            }
        })
        .await;
    }

    async fn run_inner(
        &self,
        request: &BuildRequest,
        context: Vec<u8>,
        log: &BuildLog,
    ) -> Result<Vec<String>, Failure> {
        // Typed and validated by Lifecycle: converted, never parsed (docs/architecture.md, "The
        // manifest's path"). A message no `Manifest` could have produced fails the check.
        let manifest = request
            .manifest
            .clone()
            .ok_or(racetrack_proto::manifest::ManifestMessageError::Missing(
                "manifest",
            ))
            .and_then(Manifest::try_from)
            .map_err(|e| Failure::new(PHASE_CHECKING, format!("invalid manifest: {e}")))?;
        let span = tracing::Span::current();
        span.record("fatman_name", manifest.name.as_str());
        span.record("fatman_version", manifest.version.as_str());
        let labels = [manifest.name.as_str(), manifest.version.as_str()];
        self.metrics.requests.with_label_values(&labels).inc();
        let started = Instant::now();
        log.line(&format!(
            "building fatman {} v{} (deployment {}, lang {})",
            manifest.name, manifest.version, request.deployment_id, manifest.lang
        ));

        let result = self.build_manifest(request, context, &manifest, log).await;

        self.metrics.done_requests.with_label_values(&labels).inc();
        self.metrics
            .duration(&manifest.name, &manifest.version)
            .inc_by(started.elapsed().as_secs_f64());
        result
    }

    async fn build_manifest(
        &self,
        request: &BuildRequest,
        context: Vec<u8>,
        manifest: &Manifest,
        log: &BuildLog,
    ) -> Result<Vec<String>, Failure> {
        // Cheap checks first, before waiting for a slot.
        if manifest.image_type != "docker" {
            return Err(Failure::new(
                PHASE_CHECKING,
                format!(
                    "not supported image_type `{}` (only `docker` is)",
                    manifest.image_type
                ),
            ));
        }
        let catalog = self.job_types();
        let job_type = catalog
            .resolve(&manifest.lang)
            .map_err(|e| Failure::new(PHASE_CHECKING, e))?
            .clone();
        let env = merge_build_env(manifest, &request.secret_build_env)
            .map_err(|e| Failure::new(PHASE_CHECKING, e))?;
        let entry_image = image_name(
            &self.config.docker_registry,
            &self.config.docker_registry_namespace,
            "fatman-entrypoint",
            &manifest.name,
            &request.tag,
        )
        .map_err(|e| Failure::new(PHASE_CHECKING, e))?;
        log.line(&format!("job type: {}", job_type.key()));

        let _permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                log.phase(PHASE_WAITING);
                let _waiting = GaugeGuard::new(&self.metrics.waiting_building_tasks);
                Arc::clone(&self.slots).acquire_owned().await.map_err(|_| {
                    Failure::new(PHASE_WAITING, "the image builder is shutting down")
                })?
            }
        };
        let _active = GaugeGuard::new(&self.metrics.active_building_tasks);

        let timeout = self.config.build_timeout;
        match tokio::time::timeout(
            timeout,
            self.build_in_slot(
                request,
                context,
                manifest,
                &job_type,
                &env,
                &entry_image,
                log,
            ),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => {
                let phase = log.record().status().phase;
                let phase = [PHASE_FETCHING, PHASE_BASE, PHASE_BUILDING, PHASE_PUSHING]
                    .into_iter()
                    .find(|p| *p == phase)
                    .unwrap_or(PHASE_BUILDING);
                Err(Failure::new(
                    phase,
                    format!("the build did not finish within {} s", timeout.as_secs()),
                ))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn build_in_slot(
        &self,
        request: &BuildRequest,
        context: Vec<u8>,
        manifest: &Manifest,
        job_type: &JobType,
        env: &BTreeMap<String, String>,
        entry_image: &str,
        log: &BuildLog,
    ) -> Result<Vec<String>, Failure> {
        log.phase(PHASE_FETCHING);
        let fetched = self
            .fetch(request, context, manifest, log)
            .await
            .map_err(|e| Failure::new(PHASE_FETCHING, log.redact(&e)))?;
        log.line(&format!(
            "source fetched, git version {}",
            fetched.git_version
        ));

        self.docker
            .wait_ready(DOCKER_WAIT)
            .await
            .map_err(|e| Failure::new(PHASE_BUILDING, e))?;
        if let Some(network) = self
            .config
            .build_network_mode
            .as_deref()
            .filter(|m| !crate::docker::is_builtin_network_mode(m))
        {
            self.docker
                .ensure_build_network(network)
                .await
                .map_err(|e| Failure::new(PHASE_BUILDING, e))?;
        }
        let ca = self
            .read_extra_ca_certs()
            .await
            .map_err(|e| Failure::new(PHASE_BUILDING, e))?;
        let system_args = self.system_build_args(ca.is_some());
        let extra_files = vec![ExtraFile {
            name: EXTRA_CA_CERTS_FILE.to_string(),
            data: ca.clone().unwrap_or_default(),
        }];

        let base_image = match job_type.base_build() {
            Some((base_context, base_dockerfile)) => {
                let name = image_name(
                    &self.config.docker_registry,
                    &self.config.docker_registry_namespace,
                    "fatman-base",
                    &job_type.name,
                    &job_type.version,
                )
                .map_err(|e| Failure::new(PHASE_BASE, e))?;
                let args = filter_args(&system_args, job_type.base_build_args.as_ref());
                self.ensure_base_image(
                    job_type,
                    base_context,
                    &base_dockerfile,
                    &name,
                    &args,
                    &extra_files,
                    log,
                )
                .await?;
                name
            }
            None => String::new(),
        };
        log.phase(PHASE_BUILDING);

        // Nothing here may name the version: then a new version with unchanged code is all
        // layer cache. The version reaches the fatman at run time (FATMAN_VERSION, labels).
        let labels = [
            ("racetrack-component", "fatman".to_string()),
            ("racetrack.fatman.name", manifest.name.clone()),
            ("racetrack.job-type", job_type.key()),
            ("racetrack.git-version", fetched.git_version.clone()),
        ];
        let secret_keys: BTreeSet<String> = request.secret_build_env.keys().cloned().collect();
        let (dockerfile_text, arg_keys) = match job_type.template_path() {
            Some(template_path) => {
                let source = tokio::fs::read_to_string(&template_path)
                    .await
                    .map_err(|e| {
                        Failure::new(
                            PHASE_BUILDING,
                            format!("job type {} template: {e}", job_type.key()),
                        )
                    })?;
                let vars = template_vars(&TemplateInput {
                    manifest,
                    base_image: &base_image,
                    env,
                    secret_keys: &secret_keys,
                    git_version: &fetched.git_version,
                    racetrack_version: &self.config.racetrack_version,
                    job_type,
                    extra_ca_certs: ca.is_some(),
                })
                .map_err(|e| Failure::new(PHASE_BUILDING, e))?;
                let rendered =
                    template::render(&source, &vars, &multiline_vars()).map_err(|e| {
                        Failure::new(
                            PHASE_BUILDING,
                            format!("job type {} template: {e}", job_type.key()),
                        )
                    })?;
                log.line(&format!(
                    "rendered {RENDERED_DOCKERFILE} from the {} template",
                    job_type.key()
                ));
                // Only the variables passed as build args (secrets) need values from outside.
                (rendered, build_arg_keys(env, &secret_keys))
            }
            None => {
                let rel = manifest
                    .docker
                    .as_ref()
                    .and_then(|d| d.dockerfile_path.clone())
                    .filter(|p| !p.trim().is_empty())
                    .ok_or_else(|| {
                        Failure::new(
                            PHASE_BUILDING,
                            format!(
                                "the job type {} builds your own Dockerfile: set docker.dockerfile_path in the manifest",
                                job_type.key()
                            ),
                        )
                    })?;
                let rel = file_inside(&fetched.workspace, &rel).map_err(|e| {
                    Failure::new(PHASE_BUILDING, format!("docker.dockerfile_path: {e}"))
                })?;
                let text = tokio::fs::read_to_string(fetched.workspace.join(&rel))
                    .await
                    .map_err(|e| {
                        Failure::new(PHASE_BUILDING, format!("docker.dockerfile_path: {e}"))
                    })?;
                // The user's Dockerfile may declare any build env variable as an ARG.
                (text, env.keys().cloned().collect())
            }
        };
        // The image's labels, as one LABEL step (given through the API each would be a step).
        let dockerfile_text = with_labels(&dockerfile_text, &labels);
        let path = fetched.workspace.join(RENDERED_DOCKERFILE);
        // Never write through a link the user may have put there.
        let _ = tokio::fs::remove_file(&path).await;
        tokio::fs::write(&path, dockerfile_text)
            .await
            .map_err(|e| {
                Failure::new(
                    PHASE_BUILDING,
                    format!("writing {RENDERED_DOCKERFILE}: {e}"),
                )
            })?;
        hide_dockerfile_from_copy(&fetched.workspace)
            .await
            .map_err(|e| Failure::new(PHASE_BUILDING, format!("writing .dockerignore: {e}")))?;

        let allowed = if job_type.template.is_some() {
            job_type.template_build_args.as_ref()
        } else {
            job_type.user_build_args.as_ref()
        };
        let mut build_args = filter_args(&system_args, allowed);
        for key in arg_keys {
            if let Some(value) = env.get(&key) {
                build_args.insert(key, value.clone());
            }
        }
        let spec = BuildSpec {
            context_dir: fetched.workspace.clone(),
            dockerfile: RENDERED_DOCKERFILE.to_string(),
            image: entry_image.to_string(),
            build_args: build_args.into_iter().collect(),
            labels: HashMap::new(),
            always_include: vec![
                RENDERED_DOCKERFILE.to_string(),
                crate::context::DOCKERIGNORE.to_string(),
            ],
            extra_files,
            network_mode: self.config.build_network_mode.clone(),
        };
        log.line(&format!("building image {entry_image}"));
        let on_line = |line: &str| log.line(line);
        self.docker
            .build(&spec, &on_line)
            .await
            .map_err(|e| Failure::new(PHASE_BUILDING, log.redact(&e)))?;
        self.refuse_images_holding_secrets(entry_image, &request.secret_build_env)
            .await?;
        self.metrics.images_built.inc();

        if self.config.push_images {
            log.phase(PHASE_PUSHING);
            let started = Instant::now();
            self.docker
                .push(entry_image, &on_line)
                .await
                .map_err(|e| Failure::new(PHASE_PUSHING, log.redact(&e)))?;
            let labels = [manifest.name.as_str(), manifest.version.as_str()];
            self.metrics.images_pushed.with_label_values(&labels).inc();
            self.metrics
                .images_pushed_duration
                .with_label_values(&labels)
                .inc_by(started.elapsed().as_secs_f64());
        }
        Ok(vec![entry_image.to_string()])
    }

    /// A secret build value in the built image's config or history (an `ENV`, or a `RUN` step
    /// of the final stage using it as a build arg) would reach everyone who can pull the image:
    /// the build fails and the image is removed before anything is pushed. Values shorter than
    /// 4 characters are not looked for (they would match by chance).
    async fn refuse_images_holding_secrets(
        &self,
        image: &str,
        secrets: &HashMap<String, String>,
    ) -> Result<(), Failure> {
        let checked: Vec<(&String, &str)> = secrets
            .iter()
            .filter(|(_, v)| v.chars().count() >= 4)
            .map(|(k, v)| (k, v.as_str()))
            .collect();
        if checked.is_empty() {
            return Ok(());
        }
        let needles: Vec<&str> = checked.iter().map(|(_, v)| *v).collect();
        let found = self
            .docker
            .find_in_image_metadata(image, &needles)
            .await
            .map_err(|e| Failure::new(PHASE_BUILDING, e))?;
        if found.is_empty() {
            return Ok(());
        }
        let mut names: Vec<String> = found
            .iter()
            .map(|(i, place)| format!("{} ({place})", checked[*i].0))
            .collect();
        names.sort();
        names.dedup();
        if let Err(e) = self.docker.remove_image(image).await {
            tracing::warn!(error = %e, "can't remove an image holding a secret");
        }
        Err(Failure::new(
            PHASE_BUILDING,
            format!(
                "secret build env {} would be stored in the image, readable by whoever can pull it; \
                 use secret values only in a build stage the final image copies files from \
                 (see job-types/README.md). The image was removed",
                names.join(", ")
            ),
        ))
    }

    fn system_build_args(&self, has_ca: bool) -> BTreeMap<String, String> {
        let mut args = BTreeMap::new();
        if let Some(v) = &self.config.python_base_image {
            args.insert("PYTHON_BASE_IMAGE".to_string(), v.clone());
        }
        if let Some(v) = &self.config.base_image {
            args.insert("BASE_IMAGE".to_string(), v.clone());
        }
        if has_ca {
            args.insert(
                "EXTRA_CA_CERTS".to_string(),
                EXTRA_CA_CERTS_FILE.to_string(),
            );
        }
        args
    }

    async fn read_extra_ca_certs(&self) -> Result<Option<Vec<u8>>, String> {
        match &self.config.extra_ca_certs {
            None => Ok(None),
            Some(path) => tokio::fs::read(path)
                .await
                .map(Some)
                .map_err(|e| format!("reading EXTRA_CA_CERTS {}: {e}", path.display())),
        }
    }

    async fn fetch(
        &self,
        request: &BuildRequest,
        context: Vec<u8>,
        manifest: &Manifest,
        log: &BuildLog,
    ) -> Result<Fetched, String> {
        let repo_dir = self.workspace_root(&request.deployment_id);
        let dir = repo_dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            std::fs::create_dir_all(dir.parent().unwrap_or(&dir))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("preparing the workspace {}: {e}", repo_dir.display()))?;

        if !context.is_empty() {
            log.line(&format!(
                "extracting the uploaded build context ({} bytes)",
                context.len()
            ));
            let limits = ExtractLimits::new(
                self.config.max_build_context_bytes,
                self.config.max_build_context_unpacked_bytes,
            );
            let data = context;
            let dir = repo_dir.clone();
            let stats = tokio::task::spawn_blocking(move || {
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                extract_build_context(&data, &dir, &limits).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())??;
            log.line(&format!(
                "extracted {} files, {} bytes",
                stats.files, stats.bytes
            ));
            return Ok(Fetched {
                workspace: repo_dir,
                git_version: "tar".into(),
            });
        }

        let source = GitSource {
            remote: manifest.git.remote.clone(),
            branch: manifest.git.branch.clone(),
            directory: manifest.git.directory.clone(),
            credentials: request
                .git_credentials
                .as_ref()
                .map(|c| (c.username.clone(), c.password.clone())),
        };
        let workspace =
            git::clone(&source, &repo_dir, self.config.allow_file_git_remotes, log).await?;
        let git_version = git::describe(&workspace).await;
        Ok(Fetched {
            workspace,
            git_version,
        })
    }

    fn base_lock(&self, image: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.base_locks.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(locks.entry(image.to_string()).or_default())
    }

    /// Builds the job type's base image unless an identical one (same digest label) exists.
    #[allow(clippy::too_many_arguments)]
    async fn ensure_base_image(
        &self,
        job_type: &JobType,
        context_dir: PathBuf,
        base_dockerfile: &str,
        image: &str,
        system_args: &BTreeMap<String, String>,
        extra_files: &[ExtraFile],
        log: &BuildLog,
    ) -> Result<(), Failure> {
        let lock = self.base_lock(image);
        let _guard = lock.lock().await;
        let dir = job_type.dir.clone();
        let args = system_args.clone();
        let ca = extra_files
            .first()
            .map(|f| f.data.clone())
            .unwrap_or_default();
        let digest = tokio::task::spawn_blocking(move || base_digest(&dir, &args, &ca))
            .await
            .map_err(|e| Failure::new(PHASE_BASE, e.to_string()))?
            .map_err(|e| {
                Failure::new(
                    PHASE_BASE,
                    format!("reading job type {}: {e}", job_type.key()),
                )
            })?;
        const DIGEST_LABEL: &str = "racetrack.job-type-digest";
        let existing = self
            .docker
            .image_labels(image)
            .await
            .map_err(|e| Failure::new(PHASE_BASE, e))?;
        if existing
            .as_ref()
            .and_then(|l| l.get(DIGEST_LABEL))
            .is_some_and(|d| *d == digest)
        {
            log.line(&format!("base image {image} is up to date"));
            return Ok(());
        }
        log.phase(PHASE_BASE);
        log.line(&format!(
            "building base image {image} from job type {}",
            job_type.key()
        ));
        let text = tokio::fs::read_to_string(context_dir.join(base_dockerfile))
            .await
            .map_err(|e| {
                Failure::new(
                    PHASE_BASE,
                    format!("job type {} base Dockerfile: {e}", job_type.key()),
                )
            })?;
        let text = with_labels(
            &text,
            &[
                ("racetrack-component", "fatman".to_string()),
                ("racetrack.job-type", job_type.key()),
                (DIGEST_LABEL, digest),
            ],
        );
        let mut files = extra_files.to_vec();
        files.push(ExtraFile {
            name: BASE_DOCKERFILE.to_string(),
            data: text.into_bytes(),
        });
        let spec = BuildSpec {
            context_dir,
            dockerfile: BASE_DOCKERFILE.to_string(),
            image: image.to_string(),
            build_args: system_args.clone().into_iter().collect(),
            labels: HashMap::new(),
            always_include: Vec::new(),
            extra_files: files,
            network_mode: self.config.build_network_mode.clone(),
        };
        let on_line = |line: &str| log.line(line);
        self.docker
            .build(&spec, &on_line)
            .await
            .map_err(|e| Failure::new(PHASE_BASE, log.redact(&e)))?;
        if self.config.push_images {
            self.docker.push(image, &on_line).await.map_err(|e| {
                Failure::new(PHASE_BASE, format!("pushing {image}: {}", log.redact(&e)))
            })?;
        }
        Ok(())
    }
}

/// The rendered Dockerfile differs between versions of a fatman (it names the version), so a
/// `COPY . ...` that included it would miss Docker's layer cache on every deploy. Docker removes
/// the Dockerfile and `.dockerignore` from the build context after reading them when
/// `.dockerignore` lists them, so list them (after the user's own rules).
async fn hide_dockerfile_from_copy(workspace: &std::path::Path) -> std::io::Result<()> {
    let path = workspace.join(crate::context::DOCKERIGNORE);
    let existing = match tokio::fs::symlink_metadata(&path).await {
        Ok(meta) if meta.is_file() => tokio::fs::read_to_string(&path).await.unwrap_or_default(),
        Ok(_) => {
            // A link or folder named .dockerignore: replace it rather than follow it.
            let _ = tokio::fs::remove_file(&path).await;
            let _ = tokio::fs::remove_dir_all(&path).await;
            String::new()
        }
        Err(_) => String::new(),
    };
    let text = format!(
        "{existing}\n{RENDERED_DOCKERFILE}\n{}\n",
        crate::context::DOCKERIGNORE
    );
    tokio::fs::write(&path, text).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use racetrack_model::manifest::GitManifest;

    fn manifest() -> Manifest {
        let mut m = Manifest::new(
            "adder",
            "sample@example.com",
            GitManifest::new("https://github.com/x/y"),
        );
        m.version = "1.2.3".into();
        m.lang = "python3:latest".into();
        m.build_env = Some(BTreeMap::from([
            ("A".into(), "1".into()),
            ("B".into(), "plain".into()),
        ]));
        m.system_dependencies = Some(vec!["curl".into(), "libpq-dev".into()]);
        m.python = Some(racetrack_model::manifest::PythonManifest {
            requirements_path: Some("requirements.txt".into()),
            entrypoint_path: "adder.py".into(),
            entrypoint_class: "Adder".into(),
        });
        m
    }

    fn job_type() -> JobType {
        let mut jt = JobType::new("python3", "1.0.0", PathBuf::from("/jt"));
        jt.base_dockerfile = Some("base.Dockerfile".into());
        jt.template = Some("fatman.Dockerfile".into());
        jt
    }

    #[test]
    fn secret_env_wins_and_names_are_checked() {
        let m = manifest();
        let env = merge_build_env(&m, &HashMap::from([("B".into(), "secret".into())])).unwrap();
        assert_eq!(env.get("B").unwrap(), "secret");
        assert_eq!(env.get("A").unwrap(), "1");
        assert!(merge_build_env(&m, &HashMap::from([("1X".into(), "v".into())])).is_err());
        assert!(merge_build_env(&m, &HashMap::from([("A B".into(), "v".into())])).is_err());
        assert!(
            merge_build_env(&m, &HashMap::from([("BASE_IMAGE".into(), "v".into())]))
                .unwrap_err()
                .contains("reserved")
        );
    }

    #[test]
    fn renders_a_python_like_template_without_secret_values() {
        let m = manifest();
        let env = merge_build_env(&m, &HashMap::from([("TOKEN".into(), "s3cr3t".into())])).unwrap();
        let secret_keys = BTreeSet::from(["TOKEN".to_string()]);
        let jt = job_type();
        let vars = template_vars(&TemplateInput {
            manifest: &m,
            base_image: "127.0.0.1:5000/racetrack/fatman-base/python3:1.0.0",
            env: &env,
            secret_keys: &secret_keys,
            git_version: "abc123",
            racetrack_version: "0.1.0",
            job_type: &jt,
            extra_ca_certs: true,
        })
        .unwrap();
        let src = "FROM {{ base_image }}\n{{ env_vars }}\
{% if system_dependencies %}\nRUN apt-get install -y {{ system_dependencies }}\n{% endif %}\n\
{% if extra_ca_certs %}\nCOPY {{ extra_ca_certs }} /usr/local/share/ca-certificates/extra.crt\n{% endif %}\n\
COPY {{ requirements_path }} /src/req.txt\n\
ENV FATMAN_NAME=\"{{ manifest.name }}\" FATMAN_VERSION=\"{{ version }}\" GIT_VERSION=\"{{ git_version }}\" \
DEPLOYED_BY_RACETRACK_VERSION=\"{{ deployed_by_racetrack_version }}\" JOB_TYPE_VERSION=\"{{ job_type_version }}\"\n\
LABEL resource={{ resource_name }}\n\
CMD [\"run\", \"{{ entrypoint_path }}\", \"{{ entrypoint_class }}\"]\n";
        let out = template::render(src, &vars, &multiline_vars()).unwrap();
        assert_eq!(
            out,
            "FROM 127.0.0.1:5000/racetrack/fatman-base/python3:1.0.0\n\
ENV A=\"1\" \\\n    B=\"plain\"\n\
RUN apt-get install -y curl libpq-dev\n\
COPY .racetrack-extra-ca-certs.crt /usr/local/share/ca-certificates/extra.crt\n\
COPY requirements.txt /src/req.txt\n\
ENV FATMAN_NAME=\"adder\" FATMAN_VERSION=\"1.2.3\" GIT_VERSION=\"abc123\" DEPLOYED_BY_RACETRACK_VERSION=\"0.1.0\" JOB_TYPE_VERSION=\"1.0.0\"\n\
LABEL resource=fatman-adder-v-1-2-3\n\
CMD [\"run\", \"adder.py\", \"Adder\"]\n"
        );
        assert!(!out.contains("s3cr3t"));
    }

    #[test]
    fn env_block_quotes_plain_values_and_passes_secrets_as_args() {
        let env = BTreeMap::from([
            ("PLAIN".to_string(), "a \"b\" $c \\d".to_string()),
            ("MULTI".to_string(), "line1\nline2".to_string()),
            ("SECRET".to_string(), "x".to_string()),
        ]);
        let secrets = BTreeSet::from(["SECRET".to_string()]);
        assert_eq!(build_arg_keys(&env, &secrets), vec!["MULTI", "SECRET"]);
        assert_eq!(
            env_vars_block(&env, &secrets),
            "ARG MULTI\nENV MULTI=\"${MULTI}\" \\\n    PLAIN=\"a \\\"b\\\" \\$c \\\\d\"\n"
        );
        assert_eq!(secret_args_block(&secrets), "ARG SECRET\n");
        // Only secrets: no ENV at all.
        let only_secret = BTreeMap::from([("SECRET".to_string(), "x".to_string())]);
        assert_eq!(env_vars_block(&only_secret, &secrets), "");
        assert_eq!(env_vars_block(&BTreeMap::new(), &secrets), "");
    }

    #[test]
    fn labels_are_one_instruction() {
        assert_eq!(
            with_labels("FROM x", &[("a", "1".into()), ("b.c", "q\"$".into())]),
            "FROM x\nLABEL a=\"1\" b.c=\"q\\\"\\$\"\n"
        );
    }

    #[test]
    fn bad_system_dependencies_are_refused() {
        let mut m = manifest();
        m.system_dependencies = Some(vec!["curl; rm -rf /".into()]);
        let jt = job_type();
        let env = BTreeMap::new();
        let err = template_vars(&TemplateInput {
            manifest: &m,
            base_image: "",
            env: &env,
            secret_keys: &BTreeSet::new(),
            git_version: "",
            racetrack_version: "",
            job_type: &jt,
            extra_ca_certs: false,
        })
        .unwrap_err();
        assert!(err.contains("not a valid package name"));
    }

    #[test]
    fn dockerfile_must_be_inside_the_context() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir_all(ws.join("docker")).unwrap();
        std::fs::write(ws.join("docker/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(tmp.path().join("outside"), "FROM scratch\n").unwrap();
        std::os::unix::fs::symlink("../outside", ws.join("link")).unwrap();
        assert_eq!(
            file_inside(&ws, "./docker/Dockerfile").unwrap(),
            "docker/Dockerfile"
        );
        assert!(file_inside(&ws, "link").unwrap_err().contains("outside"));
        assert!(file_inside(&ws, "/etc/passwd").is_err());
        assert!(file_inside(&ws, "missing")
            .unwrap_err()
            .contains("does not exist"));
        assert!(file_inside(&ws, "docker")
            .unwrap_err()
            .contains("not a file"));
    }

    #[test]
    fn base_digest_changes_with_content_and_args() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("base.Dockerfile"), "FROM a\n").unwrap();
        let args = BTreeMap::from([("BASE_IMAGE".to_string(), "x".to_string())]);
        let d1 = base_digest(tmp.path(), &args, b"").unwrap();
        assert_eq!(d1, base_digest(tmp.path(), &args, b"").unwrap());
        assert_ne!(d1, base_digest(tmp.path(), &BTreeMap::new(), b"").unwrap());
        assert_ne!(d1, base_digest(tmp.path(), &args, b"PEM").unwrap());
        std::fs::write(tmp.path().join("base.Dockerfile"), "FROM b\n").unwrap();
        assert_ne!(d1, base_digest(tmp.path(), &args, b"").unwrap());
    }
}
