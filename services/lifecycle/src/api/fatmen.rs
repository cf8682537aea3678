use racetrack_db::Connection as _;
use racetrack_model::{AuditLogEventType, AuthScope, DeploymentStatus, FatmanStatus};
use std::collections::{BTreeMap, BTreeSet};

use actix_web::{web, HttpResponse};
use racetrack_auth::permission;
use racetrack_db::models::Fatman;
use racetrack_db::repo::{auth as auth_repo, deployments, escs, fatmen};
use racetrack_db::DbConnection;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{null, with_caller, State};
use crate::caller::{require_resource, require_scope, to_permission, AuthToken, Caller};
use crate::deploy::{DeployInput, Mode};
use crate::error::ApiError;
use crate::registry::{resolve_fatman, try_resolve_fatman};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/fatman", web::get().to(list_fatmen))
        .route("/fatman_family", web::get().to(list_families))
        .route("/fatman_graph", web::get().to(graph))
        .route("/fatman/{name}/{version}", web::get().to(get_fatman))
        .route("/fatman/{name}/{version}", web::delete().to(delete_fatman))
        .route("/fatman/{name}/{version}/move", web::post().to(move_fatman))
        .route(
            "/fatman/{name}/{version}/redeploy",
            web::post().to(redeploy),
        )
        .route(
            "/fatman/{name}/{version}/reprovision",
            web::post().to(reprovision),
        )
        .route("/fatman/{name}/{version}/logs", web::get().to(runtime_logs))
        .route(
            "/fatman/{name}/{version}/build-logs",
            web::get().to(build_logs),
        )
        .route(
            "/fatman/{name}/{version}/public-endpoints",
            web::get().to(public_endpoints),
        )
        .route(
            "/fatman/{name}/{version}/public-endpoints",
            web::put().to(approve_public_endpoint),
        )
        .route(
            "/fatman/{name}/{version}/public-endpoint-requests",
            web::get().to(public_endpoint_requests),
        );
}

/// Fatmen the caller may see with `scope`, in the original's order.
fn visible_fatmen(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: AuthScope,
) -> Result<Vec<Fatman>, ApiError> {
    let all = fatmen::list(conn)?;
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

async fn list_fatmen(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, state, caller| {
        require_scope(caller, AuthScope::ReadFatman)?;
        let visible = visible_fatmen(conn, caller, AuthScope::ReadFatman)?;
        crate::registry::fatman_dtos(conn, &visible, &state.config.external_pub_url)
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Serialize)]
struct FamilyDto {
    name: String,
    id: String,
}

async fn list_families(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, _, caller| {
        require_scope(caller, AuthScope::ReadFatman)?;
        let families = fatmen::list_families(conn)?;
        let allowed: BTreeSet<String> = match caller {
            Caller::Internal { .. } => families.iter().map(|f| f.name.clone()).collect(),
            Caller::Subject { permissions, .. } => {
                let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
                permission::permitted_families(permissions, AuthScope::ReadFatman, &names)
                    .into_iter()
                    .collect()
            }
        };
        Ok(families
            .into_iter()
            .filter(|f| allowed.contains(&f.name))
            .map(|f| FamilyDto {
                name: f.name,
                id: f.id,
            })
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn graph(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let body = with_caller(state, token, |conn, state, caller| {
        require_scope(caller, AuthScope::ReadFatman)?;
        let visible = visible_fatmen(conn, caller, AuthScope::ReadFatman)?;
        let mut families: BTreeMap<String, Vec<&Fatman>> = BTreeMap::new();
        for f in &visible {
            families.entry(f.name.clone()).or_default().push(f);
        }
        let mut nodes = Vec::new();
        let mut edges = Vec::new();
        let pub_url = &state.config.external_pub_url;
        let escs_list = escs::list(conn)?;
        for esc in &escs_list {
            nodes.push(json!({
                "id": format!("esc-{}", esc.id), "type": "esc", "title": esc.name,
                "subtitle": format!("ESC:\n{}", esc.id),
            }));
        }
        for (name, members) in &families {
            let lines: String = members
                .iter()
                .map(|f| format!("\n- {name} v{} - {pub_url}/fatman/{name}/{}", f.version, f.version))
                .collect();
            nodes.push(json!({
                "id": format!("fatman-family-{name}"), "type": "fatman-family", "title": name,
                "subtitle": format!("Fatman Family: {name}\nFatmen:{lines}"),
            }));
        }
        let callable = |perms: &[permission::Permission]| -> Vec<&String> {
            families
                .iter()
                .filter(|(name, members)| {
                    members
                        .iter()
                        .any(|f| permission::has_resource(perms, AuthScope::CallFatman, name, &f.version))
                })
                .map(|(name, _)| name)
                .collect()
        };
        for name in families.keys() {
            let Some(family) = fatmen::find_family(conn, name)? else { continue };
            let Some(subject) = auth_repo::find_subject_by(conn, auth_repo::SubjectKey::Family(&family.id))? else {
                continue;
            };
            let perms: Vec<_> = auth_repo::permissions_of_subject(conn, &subject.id)?
                .into_iter()
                .map(to_permission)
                .collect();
            for target in callable(&perms) {
                edges.push(json!({"from_id": format!("fatman-family-{name}"), "to_id": format!("fatman-family-{target}")}));
            }
        }
        for esc in &escs_list {
            let Some(subject) = auth_repo::find_subject_by(conn, auth_repo::SubjectKey::Esc(&esc.id))? else {
                continue;
            };
            let perms: Vec<_> = auth_repo::permissions_of_subject(conn, &subject.id)?
                .into_iter()
                .map(to_permission)
                .collect();
            for target in callable(&perms) {
                edges.push(json!({"from_id": format!("esc-{}", esc.id), "to_id": format!("fatman-family-{target}")}));
            }
        }
        Ok(json!({"nodes": nodes, "edges": edges}))
    })
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Exact lookup (no alias), after checking `scope` on that exact version ("" when absent, so a
/// missing fatman is a 403 for callers without a broader permission, as the original).
fn authorized_exact_fatman(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: AuthScope,
    name: &str,
    version: &str,
) -> Result<Fatman, ApiError> {
    let existing = fatmen::find(conn, name, version)?;
    require_resource(
        caller,
        scope,
        name,
        existing.as_ref().map_or("", |f| f.version.as_str()),
    )?;
    existing.ok_or_else(|| {
        ApiError::NotFound(format!(
            "Fatman with name {name} and version {version} was not found"
        ))
    })
}

/// Resolves the version alias, then checks `scope` on the resolved fatman.
fn authorized_fatman(
    conn: &mut DbConnection,
    caller: &Caller,
    scope: AuthScope,
    name: &str,
    version: &str,
) -> Result<Fatman, ApiError> {
    let found = try_resolve_fatman(conn, name, version)?;
    let resolved = found.as_ref().map(|f| f.version.as_str()).unwrap_or("");
    require_resource(caller, scope, name, resolved)?;
    match found {
        Some(f) => Ok(f),
        None => resolve_fatman(conn, name, version),
    }
}

async fn get_fatman(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let dto = with_caller(state, token, move |conn, _, caller| {
        let f = authorized_fatman(conn, caller, AuthScope::ReadFatman, &name, &version)?;
        crate::registry::fatman_details(conn, &f)
    })
    .await?;
    Ok(HttpResponse::Ok().json(dto))
}

async fn delete_fatman(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let (fatman, caller) = with_caller(state.clone(), token, move |conn, _, caller| {
        let fatman =
            authorized_exact_fatman(conn, caller, AuthScope::DeleteFatman, &name, &version)?;
        Ok((fatman, caller.clone()))
    })
    .await?;
    // Gone from the infrastructure first: a registry entry must not vanish while its container runs.
    if fatman.status != FatmanStatus::Lost {
        if let Some(target) = fatman
            .infrastructure_target
            .as_deref()
            .and_then(|t| state.targets.get(t))
        {
            target
                .delete(&fatman.name, &fatman.version)
                .await
                .map_err(|e| {
                    ApiError::Unavailable(format!(
                        "infrastructure target {} could not delete the fatman: {e}",
                        target.name()
                    ))
                })?;
        }
    }
    let executor = caller.username().to_string();
    let events_state = state.clone();
    crate::deploy::db(&state, move |conn| {
        conn.transaction(|conn| {
            crate::registry::record_event(
                conn,
                AuditLogEventType::FatmanDeleted,
                &executor,
                fatman.deployed_by.as_deref(),
                &fatman,
            )?;
            fatmen::move_to_trash(conn, &fatman)?;
            Ok::<_, ApiError>(())
        })?;
        crate::events::fatman_changed(&events_state, &fatman.name);
        tracing::info!(fatman = %fatman.name, version = %fatman.version, by = %executor, "fatman deleted");
        Ok(())
    })
    .await?;
    Ok(null())
}

/// Redeploy (rebuild + provision) or reprovision (provision the last image) an existing fatman,
/// synchronously as the original: the answer comes when the fatman runs again, or with the reason
/// it does not.
async fn rerun(
    state: State,
    token: AuthToken,
    name: String,
    version: String,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let run_state = state.clone();
    let (deployment_id, caller, input) =
        with_caller(state.clone(), token, move |conn, state, caller| {
            let fatman = match mode {
                // The supervisor's token may re-provision and nothing else.
                Mode::Reprovision => {
                    match authorized_exact_fatman(
                        conn,
                        caller,
                        AuthScope::ReprovisionFatman,
                        &name,
                        &version,
                    ) {
                        Err(ApiError::Forbidden(_)) => authorized_exact_fatman(
                            conn,
                            caller,
                            AuthScope::DeployFatman,
                            &name,
                            &version,
                        )?,
                        other => other?,
                    }
                }
                _ => {
                    authorized_exact_fatman(conn, caller, AuthScope::DeployFatman, &name, &version)?
                }
            };
            let yaml = fatman.manifest.clone().ok_or_else(|| {
                ApiError::BadRequest("fatman has no manifest to deploy from".into())
            })?;
            let mut manifest = racetrack_model::parse_manifest_yaml(&yaml)
                .map_err(|e| ApiError::BadRequest(format!("stored manifest is invalid: {e}")))?;
            if manifest.infrastructure_target.is_none() {
                manifest.infrastructure_target = fatman.infrastructure_target.clone();
            }
            let prebuilt_image = match mode {
                Mode::Reprovision => Some(
                    deployments::latest_provisioned_image(conn, &name, &version)?.ok_or_else(
                        || {
                            ApiError::BadRequest(format!(
                                "fatman {name} {version} has no built image to reprovision"
                            ))
                        },
                    )?,
                ),
                _ => None,
            };
            let target = crate::deploy::resolve_target(state, &manifest)?;
            let input = DeployInput {
                manifest_yaml: yaml,
                manifest,
                git_credentials: None,
                // Docker keeps no secrets: secret env is not available again (as the original's docker target).
                secrets: Default::default(),
                build_context: None,
                force: true,
                prebuilt_image,
            };
            let record = crate::deploy::new_deployment(caller, &input, Some(target.name()));
            deployments::insert(conn, &record)?;
            Ok((record.id, caller.clone(), input))
        })
        .await?;
    crate::deploy::run(run_state, deployment_id.clone(), caller, input, mode).await;
    let outcome = crate::deploy::db(&state, move |conn| {
        Ok(deployments::find(conn, &deployment_id)?)
    })
    .await?;
    match outcome {
        Some(d) if d.status == DeploymentStatus::Done => Ok(null()),
        Some(d) => Err(ApiError::DeploymentFailed(
            d.error.unwrap_or_else(|| "deployment failed".into()),
        )),
        None => Err(ApiError::internal("deployment record vanished")),
    }
}

async fn redeploy(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    rerun(state, token, name, version, Mode::Redeploy).await
}

async fn reprovision(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    rerun(state, token, name, version, Mode::Reprovision).await
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default = "default_tail")]
    tail: u32,
}

fn default_tail() -> u32 {
    20
}

async fn runtime_logs(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
    query: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let fatman = with_caller(state.clone(), token, move |conn, _, caller| {
        authorized_fatman(conn, caller, AuthScope::ReadFatman, &name, &version)
    })
    .await?;
    let target = fatman
        .infrastructure_target
        .as_deref()
        .and_then(|t| state.targets.get(t))
        .ok_or_else(|| {
            ApiError::BadRequest("the fatman's infrastructure target is not available".into())
        })?;
    let logs = target
        .logs(&fatman.name, &fatman.version, query.tail as usize)
        .await
        .map_err(|e| {
            ApiError::Unavailable(format!("reading logs from {} failed: {e}", target.name()))
        })?;
    Ok(HttpResponse::Ok().json(json!({ "logs": logs })))
}

#[derive(Deserialize)]
struct MovePayload {
    infrastructure_target: String,
}

async fn move_fatman(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
    body: web::Json<MovePayload>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let target = body.into_inner().infrastructure_target;
    with_caller(state, token, move |conn, _, caller| {
        let fatman =
            authorized_exact_fatman(conn, caller, AuthScope::DeployFatman, &name, &version)?;
        if target.trim().is_empty() {
            return Err(ApiError::validation(
                "body.infrastructure_target",
                "must not be empty",
            ));
        }
        if fatman.infrastructure_target.as_deref() == Some(target.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "fatman is already on infrastructure target {target}"
            )));
        }
        if fatman.manifest.is_none() || fatman.image_tag.is_none() {
            return Err(ApiError::BadRequest(
                "fatman has no manifest or image to move".into(),
            ));
        }
        Err(ApiError::BadRequest(format!(
            "infrastructure target {target} is not available; available targets: []"
        )))
    })
    .await?;
    Ok(null())
}

#[derive(Deserialize)]
struct TailQuery {
    #[serde(default)]
    tail: u32,
}

async fn build_logs(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
    query: web::Query<TailQuery>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let tail = query.tail as usize;
    let logs = with_caller(state, token, move |conn, _, caller| {
        let found = try_resolve_fatman(conn, &name, &version)?;
        let resolved = found
            .as_ref()
            .map_or(version.clone(), |f| f.version.clone());
        require_resource(
            caller,
            AuthScope::ReadFatman,
            &name,
            found.as_ref().map_or("", |f| f.version.as_str()),
        )?;
        let deployment =
            deployments::latest_for_fatman(conn, &name, &resolved)?.ok_or_else(|| {
                ApiError::NotFound(format!(
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
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "logs": logs })))
}

async fn public_endpoints(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let list = with_caller(state, token, move |conn, _, caller| {
        let fatman = authorized_fatman(conn, caller, AuthScope::ReadFatman, &name, &version)?;
        Ok(fatmen::active_public_endpoints(conn, &fatman.id)?
            .iter()
            .map(|e| endpoint_request_dto(&fatman, e))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

fn endpoint_request_dto(
    fatman: &Fatman,
    e: &racetrack_db::models::PublicEndpointRequest,
) -> serde_json::Value {
    json!({"fatman_name": fatman.name, "fatman_version": fatman.version, "endpoint": e.endpoint, "active": e.active})
}

/// Every public endpoint the manifest asked for, approved or not (admin panel's list).
async fn public_endpoint_requests(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let list = with_caller(state, token, move |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let fatman = crate::registry::exact_fatman(conn, &name, &version)?;
        Ok(fatmen::public_endpoint_requests_of(conn, &fatman.id)?
            .iter()
            .map(|e| endpoint_request_dto(&fatman, e))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointApproval {
    endpoint: String,
    active: bool,
}

/// An admin approves (or withdraws) a public endpoint the manifest requested; PUB replicas hear
/// of it at once.
async fn approve_public_endpoint(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
    body: web::Json<EndpointApproval>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let body = body.into_inner();
    let dto = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let fatman = crate::registry::exact_fatman(conn, &name, &version)?;
        let wanted = permission::normalize_endpoint(&body.endpoint);
        let mut request = fatmen::public_endpoint_requests_of(conn, &fatman.id)?
            .into_iter()
            .find(|e| permission::normalize_endpoint(&e.endpoint) == wanted)
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "fatman {name} {version} did not request public endpoint {wanted}"
                ))
            })?;
        fatmen::set_public_endpoint_active(conn, &request.id, body.active)?;
        request.active = body.active;
        crate::events::fatman_changed(state, &fatman.name);
        tracing::info!(fatman = %fatman.name, version = %fatman.version, endpoint = %wanted, active = body.active, by = %caller.username(), "public endpoint changed");
        Ok(endpoint_request_dto(&fatman, &request))
    })
    .await?;
    Ok(HttpResponse::Ok().json(dto))
}
