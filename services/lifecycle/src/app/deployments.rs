//! Deployments: starting them (`deploy`, `build`), reading them, the image-builder's phase
//! updates, and the authorization a deploy needs. The steps themselves run in `crate::deploy`.

use std::sync::Arc;

use racetrack_auth::permission::{DEPLOYER_SCOPES, FAMILY_CREATOR_SCOPES};
use racetrack_auth::TokenSigner;
use racetrack_db::models::{Deployment, Fatman, NewAuthPermission, SubjectOwner};
use racetrack_db::repo::{auth as auth_repo, deployments, fatmen};
use racetrack_db::{Connection as _, DbConnection};
use racetrack_infra::InfrastructureTarget;
use racetrack_model::{AuditLogEventType, AuthScope, DeploymentStatus, FatmanStatus, Manifest};

use super::permissions::{require_authn, require_resource, require_scope};
use super::{audit, blocking, subjects, AppError, Caller, Denial};
use crate::deploy::{self, DeployInput, Mode};
use crate::state::AppState;

/// The infrastructure target a manifest asks for, or the configured default; a name that is not
/// enabled is a 400 naming the enabled ones (before anything is built).
pub fn resolve_target(
    state: &AppState,
    manifest: &Manifest,
) -> Result<Arc<dyn InfrastructureTarget>, AppError> {
    let wanted = manifest
        .infrastructure_target
        .clone()
        .or_else(|| state.config.infrastructure_target.clone());
    match wanted {
        Some(name) => target_named(state, &name),
        None => {
            let mut targets = state.targets.values();
            match (targets.next(), targets.next()) {
                (Some(only), None) => Ok(only.clone()),
                (None, _) => Err(AppError::BadRequest(format!(
                    "no infrastructure target is available{}",
                    unavailable_note(state)
                ))),
                (Some(_), Some(_)) => Err(AppError::BadRequest(format!(
                    "Multiple infrastructure targets available: {}. Please pick one.",
                    enabled_names(state)
                ))),
            }
        }
    }
}

/// The enabled target of that name: 400 when it is not enabled, 503 when it is but could not be
/// set up at start (with the reason).
pub fn target_named(
    state: &AppState,
    name: &str,
) -> Result<Arc<dyn InfrastructureTarget>, AppError> {
    if let Some(target) = state.targets.get(name) {
        return Ok(target.clone());
    }
    if let Some(reason) = state.unavailable_targets.get(name) {
        return Err(AppError::Unavailable(format!(
            "infrastructure target {name} is unavailable: {reason}"
        )));
    }
    Err(AppError::BadRequest(format!(
        "infrastructure target {name} is not enabled; enabled targets: {}",
        enabled_names(state)
    )))
}

/// The enabled targets' names (`docker, kubernetes`), `none` when there are none.
fn enabled_names(state: &AppState) -> String {
    let mut names: Vec<&str> = state
        .targets
        .keys()
        .chain(state.unavailable_targets.keys())
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn unavailable_note(state: &AppState) -> String {
    state
        .unavailable_targets
        .iter()
        .map(|(name, reason)| format!("; {name} is unavailable: {reason}"))
        .collect()
}

/// What a manifest must pass beyond its schema to be deployed (also when an admin edits a stored
/// one): a name and version that can become resource names, and a supported image type.
pub fn check_manifest(manifest: &Manifest) -> Result<(), AppError> {
    racetrack_model::names::validate_fatman_identity(&manifest.name, &manifest.version)
        .map_err(|e| AppError::validation("manifest.name", e.to_string()))?;
    if manifest.image_type != "docker" {
        return Err(AppError::validation(
            "manifest.image_type",
            "only docker is supported",
        ));
    }
    Ok(())
}

/// Deploy authorization (the family exists → deploy_fatman on it, else deploy_new_family); also
/// what `build` requires, since a build claims the version for a while. Returns the existing
/// fatman of that version, if any.
pub fn check_deploy_permission(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
) -> Result<Option<Fatman>, AppError> {
    let existing = fatmen::find(conn, name, version)?;
    if fatmen::find_family(conn, name)?.is_some() {
        let resolved = existing.as_ref().map_or("", |f| f.version.as_str());
        match caller {
            // The original checks "no subject" here, which no permission matches.
            Caller::Internal { .. } => {
                return Err(AppError::Forbidden(Denial::with_detail(
                    "no permission to do this operation",
                    format!("internal tokens cannot deploy fatman {name}"),
                )))
            }
            _ => require_resource(caller, AuthScope::DeployFatman, name, resolved)?,
        }
    } else {
        match caller {
            Caller::Internal { .. } => {
                return Err(AppError::Forbidden(Denial::new(format!(
                    "permission scope \"{}\" is required to do this operation",
                    AuthScope::DeployNewFamily
                ))))
            }
            _ => require_scope(caller, AuthScope::DeployNewFamily)?,
        }
    }
    Ok(existing)
}

/// Deploy authorization and overwrite protection, checked again when the deployment runs.
pub fn check_may_deploy(
    conn: &mut DbConnection,
    caller: &Caller,
    name: &str,
    version: &str,
    force: bool,
) -> Result<(), AppError> {
    let existing = check_deploy_permission(conn, caller, name, version)?;
    if !force {
        if existing.is_some() {
            return Err(AppError::AlreadyExists(format!(
                "fatman {name} v{version} is already deployed. Try deploying next version or use --force flag"
            )));
        }
        if fatmen::is_trashed(conn, name, version)? {
            return Err(AppError::AlreadyExists(format!(
                "Fatman {name} v{version} has already been deployed and deleted. Can't claim it again to prevent accidental/hostile reusing."
            )));
        }
    }
    Ok(())
}

/// A deployment record in progress, before the background work starts. `target` is `None` only for
/// build-only records: reprovisioning picks images only from records with a target (see
/// `deployments::latest_provisioned_image`).
pub fn new_record(caller: &Caller, input: &DeployInput, target: Option<&str>) -> Deployment {
    let now = racetrack_db::now();
    Deployment {
        id: racetrack_db::new_id(),
        status: DeploymentStatus::InProgress,
        create_time: now,
        update_time: now,
        manifest: input.manifest_yaml.clone(),
        fatman_name: input.manifest.name.clone(),
        fatman_version: input.manifest.version.clone(),
        error: None,
        deployed_by: Some(caller.username().to_string()),
        build_logs: None,
        phase: None,
        image_name: None,
        infrastructure_target: target.map(String::from),
    }
}

/// Deployments left `in_progress` by a previous process cannot finish: their work died with it.
pub fn fail_interrupted(conn: &mut DbConnection) -> Result<usize, AppError> {
    let stale = deployments::list_in_progress(conn)?;
    for mut d in stale.iter().cloned() {
        d.status = DeploymentStatus::Failed;
        d.error = Some("halted due to server restart".into());
        d.update_time = racetrack_db::now();
        deployments::save(conn, &d)?;
    }
    Ok(stale.len())
}

/// The original's concurrency guard: a deployment of the version updated within the last minute
/// is still running, so another one is refused (409).
pub fn refuse_ongoing(conn: &mut DbConnection, name: &str, version: &str) -> Result<(), AppError> {
    let since = racetrack_db::now() - chrono::Duration::seconds(60);
    match deployments::ongoing(conn, name, version, since)? {
        Some(ongoing) => Err(AppError::AlreadyExists(format!(
            "There's already ongoing deployment of fatman {name} {version}, recently updated at {}",
            ongoing.update_time
        ))),
        None => Ok(()),
    }
}

/// Records a deployment (`Mode::Deploy`) or a build (`Mode::BuildOnly`) of a validated input and
/// starts it in the background; returns its id at once.
pub async fn start(
    state: &Arc<AppState>,
    caller: &Caller,
    input: DeployInput,
    mode: Mode,
) -> Result<String, AppError> {
    let c = caller.clone();
    let (deployment_id, input) = blocking(state, move |conn, state| {
        let target = if mode == Mode::BuildOnly {
            // A build claims the version (a concurrent deploy of it is refused) and leaves an
            // image: the same permission as deploying it, checked before anything is recorded.
            check_deploy_permission(conn, &c, &input.manifest.name, &input.manifest.version)?;
            None
        } else {
            require_authn(&c)?;
            Some(resolve_target(state, &input.manifest)?.name().to_string())
        };
        refuse_ongoing(conn, &input.manifest.name, &input.manifest.version)?;
        let record = new_record(&c, &input, target.as_deref());
        deployments::insert(conn, &record)?;
        state.requested_deployments.inc();
        Ok((record.id, input))
    })
    .await?;
    tracing::info!(deployment = %deployment_id, fatman = %input.manifest.name, version = %input.manifest.version, by = %caller.username(), "deployment requested");
    tokio::spawn(deploy::run(
        state.clone(),
        deployment_id.clone(),
        caller.clone(),
        input,
        mode,
    ));
    Ok(deployment_id)
}

/// Before a fatman starts: its family (created by this deploy when new, and then the deploying
/// subject's to deploy again, since new users have no global `deploy_fatman`) and the family's
/// token, which the fatman gets as `AUTH_TOKEN`.
pub fn family_for_deploy(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    caller: &Caller,
    name: &str,
) -> Result<String, AppError> {
    let (family, created) = fatmen::get_or_create_family(conn, name)?;
    if let (true, Caller::Subject { subject_id, .. }) = (created, caller) {
        for scope in FAMILY_CREATOR_SCOPES {
            auth_repo::grant(
                conn,
                &NewAuthPermission {
                    auth_subject_id: subject_id,
                    scope: *scope,
                    fatman_family_id: Some(&family.id),
                    fatman_id: None,
                    endpoint: None,
                },
            )?;
        }
    }
    let subject = subjects::ensure_family_subject(conn, signer, &family)?;
    let owner = SubjectOwner::Family {
        name: family.name.clone(),
    };
    subjects::current_token(conn, signer, &subject, &owner)
}

/// A fatman version that runs and answers its probes, as the infrastructure deployed it.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub manifest: Manifest,
    pub manifest_yaml: String,
    pub image_tag: String,
    pub internal_name: String,
    /// The infrastructure target's name.
    pub target: String,
}

/// Records a running fatman in one transaction: its row (`running`, with the normalised
/// manifest), the deployer's fatman-level
/// permissions (a deploy, reprovision or move by a subject), its public endpoint requests and the
/// audit event (`fatman_redeployed` naming the previous deployer, none for a move, else
/// `fatman_deployed`).
pub fn record_deployed(
    conn: &mut DbConnection,
    caller: &Caller,
    deployed: &Deployed,
    mode: Mode,
) -> Result<(), AppError> {
    let manifest = &deployed.manifest;
    conn.transaction(|conn| {
        let now = racetrack_db::now();
        let (family, _) = fatmen::get_or_create_family(conn, &manifest.name)?;
        let previous = fatmen::find(conn, &manifest.name, &manifest.version)?;
        let row = Fatman {
            id: previous
                .as_ref()
                .map_or_else(racetrack_db::new_id, |p| p.id.clone()),
            family_id: family.id.clone(),
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            status: FatmanStatus::Running,
            create_time: previous.as_ref().map_or(now, |p| p.create_time),
            update_time: now,
            manifest: Some(deployed.manifest_yaml.clone()),
            internal_name: Some(deployed.internal_name.clone()),
            error: None,
            image_tag: Some(deployed.image_tag.clone()),
            deployed_by: Some(caller.username().to_string()),
            last_call_time: previous.as_ref().and_then(|p| p.last_call_time),
            infrastructure_target: Some(deployed.target.clone()),
        };
        if previous.is_some() {
            fatmen::update(conn, &row)?;
        } else {
            fatmen::insert(conn, &row)?;
        }
        // What the code reads, next to the YAML kept for editing (docs/architecture.md,
        // "The manifest's path").
        fatmen::set_manifest_json(
            conn,
            &row.id,
            Some(&super::fatmen::normalised_manifest(manifest)),
        )?;
        if matches!(mode, Mode::Deploy | Mode::Reprovision | Mode::Move) {
            if let Caller::Subject { subject_id, .. } = caller {
                for scope in DEPLOYER_SCOPES {
                    auth_repo::grant(
                        conn,
                        &NewAuthPermission {
                            auth_subject_id: subject_id,
                            scope: *scope,
                            fatman_family_id: None,
                            fatman_id: Some(&row.id),
                            endpoint: None,
                        },
                    )?;
                }
            }
        }
        for endpoint in manifest.public_endpoints.iter().flatten() {
            fatmen::request_public_endpoint(conn, &row.id, endpoint)?;
        }
        let (event_type, subject) = match (&mode, &previous) {
            // A move writes its own event once the former copy is gone (`fatmen::move_to`).
            (Mode::Move, _) => return Ok(()),
            (Mode::Redeploy, Some(p)) => {
                (AuditLogEventType::FatmanRedeployed, p.deployed_by.clone())
            }
            _ => (AuditLogEventType::FatmanDeployed, None),
        };
        audit::record(
            conn,
            event_type,
            caller.username(),
            subject.as_deref(),
            &row,
        )?;
        Ok(())
    })
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!("deployment with ID {id} was not found"))
}

/// A deployment and, once done, the fatman it deployed (with its normalised manifest).
pub fn get(
    conn: &mut DbConnection,
    caller: &Caller,
    id: &str,
) -> Result<(Deployment, Option<super::fatmen::WithManifest>), AppError> {
    require_authn(caller)?;
    let d = deployments::find(conn, id)?.ok_or_else(|| not_found(id))?;
    let fatman = match d.status {
        DeploymentStatus::Done => match fatmen::find(conn, &d.fatman_name, &d.fatman_version)? {
            Some(f) => Some(super::fatmen::with_manifest(conn, f)?),
            None => None,
        },
        _ => None,
    };
    Ok((d, fatman))
}

/// How many deployments [`list`] answers when the caller asks for no limit, and at most.
pub const DEFAULT_LIST_LIMIT: u32 = 100;
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Deployments newest first (admins): all, one family's or one version's; at most `limit`
/// (`0`: [`DEFAULT_LIST_LIMIT`]).
pub fn list(
    conn: &mut DbConnection,
    caller: &Caller,
    fatman_name: Option<&str>,
    fatman_version: Option<&str>,
    limit: u32,
) -> Result<Vec<Deployment>, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    if fatman_name.is_none() && fatman_version.is_some() {
        return Err(AppError::validation(
            "fatman_version",
            "a version needs the fatman's name",
        ));
    }
    let limit = match limit {
        0 => DEFAULT_LIST_LIMIT,
        n => n.min(MAX_LIST_LIMIT),
    };
    Ok(deployments::list(
        conn,
        fatman_name,
        fatman_version,
        i64::from(limit),
    )?)
}

/// Progress reported by the builder (image-builder's internal token) or an admin; callers with a
/// mere login (ESCs, fatmen, users) cannot rewrite what a deployment shows.
pub fn set_phase(
    conn: &mut DbConnection,
    caller: &Caller,
    id: &str,
    phase: String,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::WriteDeploymentPhase)?;
    let mut d = deployments::find(conn, id)?.ok_or_else(|| not_found(id))?;
    d.phase = Some(phase);
    d.update_time = racetrack_db::now();
    deployments::save(conn, &d)?;
    Ok(())
}
