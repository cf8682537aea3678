//! Fatmen: version resolution, reading, deleting, redeploying and reprovisioning, logs, public
//! endpoints, and the routes PUB resolves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use racetrack_auth::permission;
use racetrack_db::models::{Deployment, Fatman, PublicEndpointRequest};
use racetrack_db::repo::{deployments, fatmen as repo};
use racetrack_db::Connection as _;
use racetrack_db::DbConnection;
use racetrack_infra::{InfraError, InfrastructureTarget};
use racetrack_model::version::{resolve_version, VersionQuery};
use racetrack_model::{AuditLogEventType, AuthScope, DeploymentStatus, FatmanStatus, Manifest};
use tokio::sync::mpsc;

use super::deployments::resolve_target;
use super::permissions::{require_resource, require_scope, require_service};
use super::{audit, blocking, AppError, Caller};
use crate::deploy::{self, DeployInput, Mode};
use crate::events;
use crate::state::AppState;

fn not_found(name: &str, version: &str) -> AppError {
    AppError::NotFound(format!(
        "Fatman with name {name} and version {version} was not found"
    ))
}

/// The fatman a version query (`latest`, `1.x`, exact) means.
pub fn resolve(conn: &mut DbConnection, name: &str, version: &str) -> Result<Fatman, AppError> {
    let query = VersionQuery::parse(version);
    if let VersionQuery::Exact(exact) = &query {
        return exact_fatman(conn, name, exact);
    }
    let versions = repo::versions_of(conn, name)?;
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let resolved = resolve_version(&query, name, &refs)?;
    exact_fatman(conn, name, resolved)
}

/// Like [`resolve`] but a missing fatman resolves to `None` (permission checks then use version
/// ""), while an unparsable stored version is still an error.
pub fn try_resolve(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
) -> Result<Option<Fatman>, AppError> {
    match resolve(conn, name, version) {
        Ok(f) => Ok(Some(f)),
        Err(AppError::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

fn exact_fatman(conn: &mut DbConnection, name: &str, version: &str) -> Result<Fatman, AppError> {
    repo::find(conn, name, version)?.ok_or_else(|| not_found(name, version))
}

/// Exact lookup (delete, redeploy, move do not resolve aliases), no authorization: callers
/// check it first.
pub fn exact(conn: &mut DbConnection, name: &str, version: &str) -> Result<Fatman, AppError> {
    exact_fatman(conn, name, version)
}

/// Exact lookup after checking `scope` on that exact version ("" when absent, so a missing
/// fatman is a 403 for callers without a broader permission, as the original).
fn authorized_exact(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: AuthScope,
    name: &str,
    version: &str,
) -> Result<Fatman, AppError> {
    let existing = repo::find(conn, name, version)?;
    require_resource(
        caller,
        scope,
        name,
        existing.as_ref().map_or("", |f| f.version.as_str()),
    )?;
    existing.ok_or_else(|| not_found(name, version))
}

/// Resolves the version alias, then checks `scope` on the resolved fatman.
fn authorized(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: AuthScope,
    name: &str,
    version: &str,
) -> Result<Fatman, AppError> {
    let found = try_resolve(conn, name, version)?;
    let resolved = found.as_ref().map(|f| f.version.as_str()).unwrap_or("");
    require_resource(caller, scope, name, resolved)?;
    match found {
        Some(f) => Ok(f),
        None => resolve(conn, name, version),
    }
}

/// The normalised manifest stored for `manifest` (JSON with every key present), next to the
/// user's YAML (docs/architecture.md, "The manifest's path").
pub fn normalised_manifest(manifest: &Manifest) -> String {
    racetrack_model::manifest_to_json(manifest).to_string()
}

/// The stored normalised manifests of `list`, by fatman id, read in one query; a fatman without
/// one (or with one that no longer parses) is left out.
pub fn manifests_of(
    conn: &mut DbConnection,
    list: &[Fatman],
) -> Result<HashMap<String, serde_json::Value>, AppError> {
    let ids: Vec<&str> = list.iter().map(|f| f.id.as_str()).collect();
    Ok(repo::manifest_jsons(conn, &ids)?
        .into_iter()
        .filter_map(|(id, json)| Some((id, serde_json::from_str(&json).ok()?)))
        .collect())
}

/// A fatman with its stored normalised manifest (`None`: not stored, or no longer parses).
pub type WithManifest = (Fatman, Option<serde_json::Value>);

/// One fatman with its stored normalised manifest.
pub fn with_manifest(conn: &mut DbConnection, fatman: Fatman) -> Result<WithManifest, AppError> {
    let mut manifests = manifests_of(conn, std::slice::from_ref(&fatman))?;
    let manifest = manifests.remove(&fatman.id);
    Ok((fatman, manifest))
}

/// Fills in the normalised manifest of fatmen deployed before it was stored (migration 0005),
/// once at startup: from then on no request parses YAML. A stored YAML that no longer parses is
/// left without one (the API shows its manifest as `null`, as before). Returns how many were
/// filled in.
pub fn backfill_manifest_json(conn: &mut DbConnection) -> Result<usize, AppError> {
    let mut filled = 0;
    for (id, yaml) in repo::missing_manifest_json(conn)? {
        match racetrack_model::parse_manifest_yaml(&yaml) {
            Ok(m) => {
                repo::set_manifest_json(conn, &id, Some(&normalised_manifest(&m)))?;
                filled += 1;
            }
            Err(e) => tracing::warn!(fatman_id = %id, error = %e, "stored manifest does not parse"),
        }
    }
    Ok(filled)
}

/// Fatmen the caller may see with `scope`, in the original's order.
pub fn visible(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: AuthScope,
) -> Result<Vec<Fatman>, AppError> {
    let all = repo::list(conn)?;
    let Caller::Subject { permissions, .. } = caller else {
        return Ok(all);
    };
    let keys: Vec<(&str, &str)> = all
        .iter()
        .map(|f| (f.name.as_str(), f.version.as_str()))
        .collect();
    let picked = permission::permitted_fatmen(permissions, scope, &keys);
    Ok(picked.into_iter().map(|i| all[i].clone()).collect())
}

/// The fatmen the caller may read, with their normalised manifests by fatman id.
pub fn list(
    conn: &mut DbConnection,
    caller: &Caller,
) -> Result<(Vec<Fatman>, HashMap<String, serde_json::Value>), AppError> {
    require_scope(caller, AuthScope::ReadFatman)?;
    let list = visible(conn, caller, AuthScope::ReadFatman)?;
    let manifests = manifests_of(conn, &list)?;
    Ok((list, manifests))
}

/// The fatman a version query means, with its normalised manifest.
pub fn get(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
) -> Result<WithManifest, AppError> {
    let fatman = authorized(conn, caller, AuthScope::ReadFatman, name, version)?;
    with_manifest(conn, fatman)
}

/// Removes the fatman from its infrastructure, then moves its row to the trash (audited).
pub async fn delete(
    state: &Arc<AppState>,
    caller: &Caller,
    name: &str,
    version: &str,
) -> Result<(), AppError> {
    let (c, n, v) = (caller.clone(), name.to_string(), version.to_string());
    let fatman = blocking(state, move |conn, _| {
        authorized_exact(conn, &c, AuthScope::DeleteFatman, &n, &v)
    })
    .await?;
    // Gone from the infrastructure first: a registry entry must not vanish while its container runs.
    if fatman.status != FatmanStatus::Lost {
        // An enabled target that could not be set up may still run the fatman: refused (503)
        // rather than leaving it running unregistered. A target no longer enabled is skipped.
        if let Some((name, reason)) = fatman
            .infrastructure_target
            .as_deref()
            .and_then(|t| state.unavailable_targets.get(t).map(|r| (t, r)))
        {
            return Err(AppError::Unavailable(format!(
                "infrastructure target {name} is unavailable, so the fatman cannot be removed from it: {reason}"
            )));
        }
        if let Some(target) = fatman
            .infrastructure_target
            .as_deref()
            .and_then(|t| state.targets.get(t))
        {
            target
                .delete(&fatman.name, &fatman.version)
                .await
                .map_err(|e| {
                    AppError::Unavailable(format!(
                        "infrastructure target {} could not delete the fatman: {e}",
                        target.name()
                    ))
                })?;
        }
    }
    let executor = caller.username().to_string();
    blocking(state, move |conn, state| {
        conn.transaction(|conn| {
            audit::record(
                conn,
                AuditLogEventType::FatmanDeleted,
                &executor,
                fatman.deployed_by.as_deref(),
                &fatman,
            )?;
            repo::move_to_trash(conn, &fatman)?;
            Ok::<_, AppError>(())
        })?;
        events::fatman_changed(state, &fatman.name);
        tracing::info!(fatman = %fatman.name, version = %fatman.version, by = %executor, "fatman deleted");
        Ok(())
    })
    .await
}

/// Records a redeploy (rebuild + provision) or reprovision (provision the last image) of an
/// existing fatman, after the caller's checks: the deployment record and what it will run.
async fn record_rerun(
    state: &Arc<AppState>,
    caller: &Caller,
    name: &str,
    version: &str,
    mode: Mode,
) -> Result<(Deployment, DeployInput), AppError> {
    let (c, name, version) = (caller.clone(), name.to_string(), version.to_string());
    blocking(state, move |conn, state| {
        let fatman = match mode {
            // The supervisor's token may re-provision and nothing else.
            Mode::Reprovision => {
                match authorized_exact(conn, &c, AuthScope::ReprovisionFatman, &name, &version) {
                    Err(AppError::Forbidden(_)) => {
                        authorized_exact(conn, &c, AuthScope::DeployFatman, &name, &version)?
                    }
                    other => other?,
                }
            }
            _ => authorized_exact(conn, &c, AuthScope::DeployFatman, &name, &version)?,
        };
        let yaml = fatman
            .manifest
            .clone()
            .ok_or_else(|| AppError::BadRequest("fatman has no manifest to deploy from".into()))?;
        let mut manifest = racetrack_model::parse_manifest_yaml(&yaml)
            .map_err(|e| AppError::BadRequest(format!("stored manifest is invalid: {e}")))?;
        // Where the fatman runs now (a move may have taken it off the manifest's target).
        if fatman.infrastructure_target.is_some() {
            manifest.infrastructure_target = fatman.infrastructure_target.clone();
        }
        let prebuilt_image = match mode {
            Mode::Reprovision => Some(
                deployments::latest_provisioned_image(conn, &name, &version)?.ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "fatman {name} {version} has no built image to reprovision"
                    ))
                })?,
            ),
            _ => None,
        };
        let target = resolve_target(state, &manifest)?;
        // The secret runtime env comes from the target when the deployment runs (deploy::saved_secrets).
        let input = DeployInput::stored(yaml, manifest, prebuilt_image);
        let record = super::deployments::new_record(&c, &input, Some(target.name()));
        deployments::insert(conn, &record)?;
        Ok((record, input))
    })
    .await
}

/// Redeploy (rebuild + provision) or reprovision (provision the last image) an existing fatman,
/// synchronously as the original: `Ok` when the fatman runs again, else the reason it does not.
pub async fn rerun(
    state: &Arc<AppState>,
    caller: &Caller,
    name: &str,
    version: &str,
    mode: Mode,
) -> Result<(), AppError> {
    let (record, input) = record_rerun(state, caller, name, version, mode).await?;
    let deployment_id = record.id;
    deploy::run(
        state.clone(),
        deployment_id.clone(),
        caller.clone(),
        input,
        mode,
    )
    .await;
    let outcome = blocking(state, move |conn, _| {
        Ok(deployments::find(conn, &deployment_id)?)
    })
    .await?;
    match outcome {
        Some(d) if d.status == DeploymentStatus::Done => Ok(()),
        Some(d) => Err(AppError::DeploymentFailed(
            d.error.unwrap_or_else(|| "deployment failed".into()),
        )),
        None => Err(AppError::internal("deployment record vanished")),
    }
}

/// Like [`rerun`], but answers the deployment record at once and runs it in the background
/// (the dashboard polls the deployment for its phase and outcome).
pub async fn start_rerun(
    state: &Arc<AppState>,
    caller: &Caller,
    name: &str,
    version: &str,
    mode: Mode,
) -> Result<Deployment, AppError> {
    let (record, input) = record_rerun(state, caller, name, version, mode).await?;
    tracing::info!(deployment = %record.id, fatman = %name, version = %version, ?mode, by = %caller.username(), "redeployment requested");
    tokio::spawn(deploy::run(
        state.clone(),
        record.id.clone(),
        caller.clone(),
        input,
        mode,
    ));
    Ok(record)
}

/// A fatman's runtime log, for a caller allowed to read the fatman: where it is read from.
pub struct RuntimeLog {
    target: Arc<dyn InfrastructureTarget>,
    name: String,
    version: String,
}

/// The runtime log of the fatman a version query means (`read_fatman`).
pub async fn runtime_log(
    state: &Arc<AppState>,
    caller: &Caller,
    name: &str,
    version: &str,
) -> Result<RuntimeLog, AppError> {
    let (c, n, v) = (caller.clone(), name.to_string(), version.to_string());
    let fatman = blocking(state, move |conn, _| {
        authorized(conn, &c, AuthScope::ReadFatman, &n, &v)
    })
    .await?;
    let target = match fatman.infrastructure_target.as_deref() {
        Some(name) => super::deployments::target_named(state, name)?,
        None => {
            return Err(AppError::BadRequest(
                "the fatman has no infrastructure target to read logs from".into(),
            ))
        }
    };
    Ok(RuntimeLog {
        target,
        name: fatman.name,
        version: fatman.version,
    })
}

impl RuntimeLog {
    fn read_error(&self, e: InfraError) -> AppError {
        AppError::Unavailable(format!(
            "reading logs from {} failed: {e}",
            self.target.name()
        ))
    }

    /// The last `tail` lines the fatman's containers logged.
    pub async fn tail(&self, tail: usize) -> Result<String, AppError> {
        self.target
            .logs(&self.name, &self.version, tail)
            .await
            .map_err(|e| self.read_error(e))
    }

    /// Sends the last `tail` lines, then new lines as the fatman logs them, into `lines`; stops
    /// when the receiver is gone (the client went away), the fatman's container is gone, reading
    /// fails (the error is sent) or `limit` has passed.
    pub async fn follow(
        self,
        tail: usize,
        lines: mpsc::Sender<Result<String, AppError>>,
        limit: Duration,
    ) {
        let deadline = tokio::time::Instant::now() + limit;
        let mut stream = match self
            .target
            .follow_logs(&self.name, &self.version, tail)
            .await
        {
            Ok(stream) => stream,
            Err(e) => {
                let _ = lines.send(Err(self.read_error(e))).await;
                return;
            }
        };
        loop {
            tokio::select! {
                _ = lines.closed() => break,
                _ = tokio::time::sleep_until(deadline) => {
                    tracing::info!(fatman = %self.name, version = %self.version, "log follower reached its time limit");
                    break;
                }
                item = stream.next() => match item {
                    Some(Ok(chunk)) => {
                        // A client that stops reading holds the follower no longer than the limit.
                        match tokio::time::timeout_at(deadline, lines.send(Ok(chunk))).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) | Err(_) => break,
                        }
                    }
                    Some(Err(e)) => {
                        let _ = lines.send(Err(self.read_error(e))).await;
                        break;
                    }
                    None => break,
                },
            }
        }
    }
}

/// The last `tail` lines the fatman's containers logged.
pub async fn runtime_logs(
    state: &Arc<AppState>,
    caller: &Caller,
    name: &str,
    version: &str,
    tail: usize,
) -> Result<String, AppError> {
    runtime_log(state, caller, name, version)
        .await?
        .tail(tail)
        .await
}

/// An admin replaces the fatman's stored manifest: the YAML must pass the checks a deploy's
/// manifest passes and name this very fatman; then it is stored as written, with its normalised
/// form (docs/architecture.md, "The manifest's path"), and audited. Nothing is stored otherwise.
/// The running fatman is not touched: a redeploy starts from the new manifest.
pub fn update_manifest(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
    yaml: &str,
) -> Result<WithManifest, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let mut fatman = exact(conn, name, version)?;
    let manifest = racetrack_model::parse_manifest_yaml(yaml).map_err(|e| {
        AppError::validation(
            format!("manifest.{}", e.path)
                .trim_end_matches('.')
                .to_string(),
            e.reason,
        )
    })?;
    super::deployments::check_manifest(&manifest)?;
    if manifest.name != fatman.name || manifest.version != fatman.version {
        return Err(AppError::validation(
            "manifest.name",
            format!(
                "the manifest is for fatman {} {}, not {} {}",
                manifest.name, manifest.version, fatman.name, fatman.version
            ),
        ));
    }
    fatman.manifest = Some(yaml.to_string());
    fatman.update_time = racetrack_db::now();
    conn.transaction(|conn| {
        repo::update(conn, &fatman)?;
        repo::set_manifest_json(conn, &fatman.id, Some(&normalised_manifest(&manifest)))?;
        audit::record(
            conn,
            AuditLogEventType::FatmanManifestUpdated,
            caller.username(),
            fatman.deployed_by.as_deref(),
            &fatman,
        )?;
        Ok::<_, AppError>(())
    })?;
    tracing::info!(fatman = %fatman.name, version = %fatman.version, by = %caller.username(), "manifest updated");
    with_manifest(conn, fatman)
}

/// What a move reports besides success: things the caller should know (e.g. the former target
/// kept no secrets to carry over).
#[derive(Debug, Clone, Default)]
pub struct MoveReport {
    pub warnings: Vec<String>,
}

/// Moves a fatman version to another infrastructure target (docs/architecture.md, "Moving a
/// fatman"): its last provisioned image runs there with the secret runtime env the former target
/// kept, is recorded there once ready (PUB is told), and is then removed from the former target.
/// A failure before the record leaves it running where it was. Audited as `fatman_moved`.
pub async fn move_to(
    state: &Arc<AppState>,
    caller: &Caller,
    name: &str,
    version: &str,
    target: &str,
) -> Result<MoveReport, AppError> {
    let (c, n, v, t) = (
        caller.clone(),
        name.to_string(),
        version.to_string(),
        target.to_string(),
    );
    let prepared = blocking(state, move |conn, state| {
        let fatman = authorized_exact(conn, &c, AuthScope::DeployFatman, &n, &v)?;
        if t.trim().is_empty() {
            return Err(AppError::validation(
                "body.infrastructure_target",
                "must not be empty",
            ));
        }
        let from_name = fatman
            .infrastructure_target
            .clone()
            .or_else(|| state.config.infrastructure_target.clone())
            .ok_or_else(|| {
                AppError::BadRequest("the fatman has no infrastructure target to move from".into())
            })?;
        if from_name == t {
            return Err(AppError::BadRequest(format!(
                "fatman is already on infrastructure target {t}"
            )));
        }
        let (Some(yaml), Some(_)) = (fatman.manifest.clone(), fatman.image_tag.as_ref()) else {
            return Err(AppError::BadRequest(
                "fatman has no manifest or image to move".into(),
            ));
        };
        let to = super::deployments::target_named(state, &t)?;
        let from = super::deployments::target_named(state, &from_name).map_err(|e| {
            AppError::Unavailable(format!(
                "the fatman cannot be taken off its infrastructure target {from_name}: {e}"
            ))
        })?;
        let manifest = racetrack_model::parse_manifest_yaml(&yaml)
            .map_err(|e| AppError::BadRequest(format!("stored manifest is invalid: {e}")))?;
        let image = deployments::latest_provisioned_image(conn, &n, &v)?.ok_or_else(|| {
            AppError::BadRequest(format!("fatman {n} {v} has no provisioned image to move"))
        })?;
        super::deployments::refuse_ongoing(conn, &n, &v)?;
        let input = DeployInput::stored(yaml, manifest, Some(image.clone()));
        let record = super::deployments::new_record(&c, &input, Some(to.name()));
        deployments::insert(conn, &record)?;
        Ok((fatman, record.id, input, image, from, to))
    })
    .await?;
    let (fatman, deployment_id, input, image, from, to) = prepared;
    let (from_name, to_name) = (from.name().to_string(), to.name().to_string());
    tracing::info!(deployment = %deployment_id, fatman = %name, %version, from = %from_name, to = %to_name, by = %caller.username(), "move requested");
    let moved = deploy::run_move(
        state,
        &deployment_id,
        caller,
        &input.manifest,
        &input.manifest_yaml,
        &image,
        from.as_ref(),
        to.as_ref(),
    )
    .await
    .map_err(|deploy::Failed(reason)| {
        AppError::DeploymentFailed(format!(
            "moving fatman {name} {version} from {from_name} to {to_name} failed; it keeps running on {from_name}: {reason}"
        ))
    })?;

    let mut report = MoveReport::default();
    let secrets = match moved.secrets_carried {
        Some(count) => serde_json::json!(count),
        None => {
            report.warnings.push(format!(
                "infrastructure target {from_name} kept no secrets for this fatman: it runs on {to_name} without its secret runtime env (deploy it again with its secrets if it needs them)"
            ));
            serde_json::Value::Null
        }
    };
    let properties = serde_json::json!({
        "from": from_name,
        "to": to_name,
        "secret_runtime_env_carried": secrets,
        "removed_from_former": moved.former_left.is_none(),
    });
    let (executor, owner) = (caller.username().to_string(), fatman.deployed_by.clone());
    let (n, v) = (name.to_string(), version.to_string());
    blocking(state, move |conn, _| {
        let row = exact(conn, &n, &v)?;
        audit::record_with(
            conn,
            AuditLogEventType::FatmanMoved,
            &executor,
            owner.as_deref(),
            &row,
            Some(properties),
        )
    })
    .await?;
    events::fatman_changed(state, name);
    tracing::info!(fatman = %name, %version, from = %from_name, to = %to_name, by = %caller.username(), "fatman moved");
    if let Some(reason) = moved.former_left {
        return Err(AppError::DeploymentFailed(format!(
            "fatman {name} {version} now runs on {to_name}, but removing it from {from_name} failed, so it still runs there too; remove it there by hand: {reason}"
        )));
    }
    Ok(report)
}

/// The build log of the fatman version's latest deployment (its last `tail` lines when > 0).
pub fn build_logs(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
    tail: usize,
) -> Result<String, AppError> {
    let found = try_resolve(conn, name, version)?;
    let resolved = found
        .as_ref()
        .map_or(version.to_string(), |f| f.version.clone());
    require_resource(
        caller,
        AuthScope::ReadFatman,
        name,
        found.as_ref().map_or("", |f| f.version.as_str()),
    )?;
    let deployment = deployments::latest_for_fatman(conn, name, &resolved)?.ok_or_else(|| {
        AppError::NotFound(format!(
            "deployment of fatman {name} {resolved} was not found"
        ))
    })?;
    let logs = deployment.build_logs.unwrap_or_default();
    Ok(if tail > 0 {
        let lines: Vec<&str> = logs.lines().collect();
        lines[lines.len().saturating_sub(tail)..].join("\n")
    } else {
        logs
    })
}

/// The fatman's approved public endpoints.
pub fn public_endpoints(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
) -> Result<(Fatman, Vec<PublicEndpointRequest>), AppError> {
    let fatman = authorized(conn, caller, AuthScope::ReadFatman, name, version)?;
    let list = repo::active_public_endpoints(conn, &fatman.id)?;
    Ok((fatman, list))
}

/// Every public endpoint the manifest asked for, approved or not (admin panel's list).
pub fn public_endpoint_requests(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
) -> Result<(Fatman, Vec<PublicEndpointRequest>), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let fatman = exact(conn, name, version)?;
    let list = repo::public_endpoint_requests_of(conn, &fatman.id)?;
    Ok((fatman, list))
}

/// Every public endpoint request of every fatman, approved or not, with its fatman (admins).
pub fn all_public_endpoint_requests(
    conn: &mut DbConnection,
    caller: &Caller,
) -> Result<Vec<(Fatman, PublicEndpointRequest)>, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let fatmen: HashMap<String, Fatman> = repo::list(conn)?
        .into_iter()
        .map(|f| (f.id.clone(), f))
        .collect();
    let mut list: Vec<(Fatman, PublicEndpointRequest)> = repo::list_public_endpoint_requests(conn)?
        .into_iter()
        .filter_map(|r| Some((fatmen.get(&r.fatman_id)?.clone(), r)))
        .collect();
    list.sort_by(|(fa, ra), (fb, rb)| {
        (&fa.name, &fa.version, &ra.endpoint).cmp(&(&fb.name, &fb.version, &rb.endpoint))
    });
    Ok(list)
}

/// [`approve_public_endpoint`] for a request named by its id.
pub fn set_public_endpoint_request(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    request_id: &str,
    active: bool,
) -> Result<(Fatman, PublicEndpointRequest), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let not_found = || {
        AppError::NotFound(format!(
            "public endpoint request {request_id} was not found"
        ))
    };
    let request = repo::find_public_endpoint_request(conn, request_id)?.ok_or_else(not_found)?;
    let fatman = repo::find_by_id(conn, &request.fatman_id)?.ok_or_else(not_found)?;
    approve_public_endpoint(
        conn,
        state,
        caller,
        &fatman.name,
        &fatman.version,
        &request.endpoint,
        active,
    )
}

/// An admin approves (or withdraws) a public endpoint the manifest requested; PUB replicas hear
/// of it at once.
pub fn approve_public_endpoint(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    name: &str,
    version: &str,
    endpoint: &str,
    active: bool,
) -> Result<(Fatman, PublicEndpointRequest), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let fatman = exact(conn, name, version)?;
    let wanted = permission::normalize_endpoint(endpoint);
    let mut request = repo::public_endpoint_requests_of(conn, &fatman.id)?
        .into_iter()
        .find(|e| permission::normalize_endpoint(&e.endpoint) == wanted)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "fatman {name} {version} did not request public endpoint {wanted}"
            ))
        })?;
    repo::set_public_endpoint_active(conn, &request.id, active)?;
    request.active = active;
    events::fatman_changed(state, &fatman.name);
    tracing::info!(fatman = %fatman.name, version = %fatman.version, endpoint = %wanted, active, by = %caller.username(), "public endpoint changed");
    Ok((fatman, request))
}

/// Where PUB sends calls to a fatman version: the fatman and its approved public endpoints
/// (normalised). Racetrack's services holding `authorize_calls` only.
pub fn route(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
) -> Result<(Fatman, Vec<String>), AppError> {
    require_service(caller, AuthScope::AuthorizeCalls)?;
    let fatman = resolve(conn, name, version)?;
    let public_endpoints = repo::active_public_endpoints(conn, &fatman.id)?
        .into_iter()
        .map(|e| permission::normalize_endpoint(&e.endpoint))
        .collect();
    Ok((fatman, public_endpoints))
}
