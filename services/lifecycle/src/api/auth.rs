//! Permission checks for PUB, grants, tokens, auth subjects and permission records.

use std::str::FromStr;

use actix_web::{web, HttpResponse, ResponseError};
use chrono::{DateTime, NaiveDateTime};
use racetrack_auth::permission;
use racetrack_db::models::{AuthSubject, NewAuthPermission, PermissionView, SubjectOwner};
use racetrack_db::repo::auth as repo;
use racetrack_db::repo::fatmen;
use racetrack_db::DbConnection;
use racetrack_model::AuthScope;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{null, with_caller, with_db, State};
use crate::caller::{require_scope, AuthToken};
use crate::calls::check_allowed;
use crate::error::ApiError;
use crate::registry::unix_time;
use crate::{events, subjects};

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/auth/allowed/fatman/{name}/{version}/scope/{scope}",
        web::get().to(allowed_fatman),
    )
    .route(
        "/auth/allowed/fatman_endpoint/{name}/{version}/scope/{scope}/endpoint/{endpoint:.*}",
        web::get().to(allowed_endpoint),
    )
    .route(
        "/auth/allow/esc/{esc_id}/fatman/{family}/scope/{scope}",
        web::post().to(allow_esc),
    )
    .route(
        "/auth/allow/fatman_family/{source}/fatman/{target}/scope/{scope}",
        web::post().to(allow_family),
    )
    .route("/auth/token/esc/{esc_id}", web::get().to(esc_token))
    .route(
        "/auth/token/{subject_type}/regenerate",
        web::post().to(regenerate_all),
    )
    .route("/auth/permissions", web::get().to(list_permissions))
    .route("/auth/permissions", web::post().to(create_permission))
    .route(
        "/auth/permissions/{id}",
        web::delete().to(delete_permission),
    )
    .route("/auth/subjects", web::get().to(list_subjects))
    .route("/auth/subjects/{id}/tokens", web::get().to(list_tokens))
    .route("/auth/subjects/{id}/tokens", web::post().to(add_token))
    .route(
        "/auth/subjects/{id}/regenerate",
        web::post().to(regenerate_subject),
    )
    .route("/auth/subjects/{id}/access", web::put().to(set_access))
    .route("/auth/tokens/{id}", web::delete().to(revoke_token));
}

fn parse_scope(scope: &str) -> Result<AuthScope, ApiError> {
    AuthScope::from_str(scope).map_err(|e| ApiError::validation("scope", e.to_string()))
}

/// `/auth/allowed/*` keep the original's contract exactly: 202 with an empty body, or 401 with
/// `{"error": ...}` and no `type` (PUB of the original relies on it).
fn allowed_response(result: Result<(), ApiError>, auth_debug: bool) -> HttpResponse {
    match result {
        Ok(()) => HttpResponse::Accepted().finish(),
        Err(ApiError::Unauthenticated(msg) | ApiError::Forbidden(msg)) => {
            let msg = if auth_debug {
                msg
            } else {
                msg.split(": ").next().unwrap_or_default().to_string()
            };
            HttpResponse::Unauthorized().json(json!({ "error": format!("Unauthorized: {msg}") }))
        }
        Err(other) => other.error_response(),
    }
}

async fn allowed_fatman(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (name, version, scope) = path.into_inner();
    let debug = state.config.auth_debug;
    let result = with_db(state, move |conn, state| {
        check_allowed(
            conn,
            state,
            token.0.as_deref(),
            &name,
            &version,
            &scope,
            None,
        )
        .map(drop)
    })
    .await;
    allowed_response(result, debug)
}

async fn allowed_endpoint(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String, String, String)>,
) -> HttpResponse {
    let (name, version, scope, endpoint) = path.into_inner();
    let endpoint = permission::normalize_endpoint(&endpoint);
    let debug = state.config.auth_debug;
    let result = with_db(state, move |conn, state| {
        check_allowed(
            conn,
            state,
            token.0.as_deref(),
            &name,
            &version,
            &scope,
            Some(&endpoint),
        )
        .map(drop)
    })
    .await;
    allowed_response(result, debug)
}

fn grant(
    conn: &mut DbConnection,
    subject_id: &str,
    scope: AuthScope,
    family_id: Option<&str>,
    fatman_id: Option<&str>,
    endpoint: Option<&str>,
) -> Result<i64, ApiError> {
    let (id, created) = repo::grant(
        conn,
        &NewAuthPermission {
            auth_subject_id: subject_id,
            scope,
            fatman_family_id: family_id,
            fatman_id,
            endpoint,
        },
    )?;
    if created {
        tracing::info!(
            permission = id,
            subject = subject_id,
            %scope,
            "permission granted"
        );
    }
    Ok(id)
}

fn family_or_404(
    conn: &mut DbConnection,
    name: &str,
) -> Result<racetrack_db::models::Family, ApiError> {
    fatmen::find_family(conn, name)?
        .ok_or_else(|| ApiError::NotFound(format!("fatman family {name} was not found")))
}

async fn allow_esc(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (esc_id, family_name, scope) = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let scope = parse_scope(&scope)?;
        let esc = super::escs::find(conn, &esc_id)?;
        let family = family_or_404(conn, &family_name)?;
        let subject = subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
        grant(conn, &subject.id, scope, Some(&family.id), None, None)?;
        events::subject_changed(state, &subject.id);
        Ok(())
    })
    .await?;
    Ok(null())
}

async fn allow_family(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (source, target, scope) = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let scope = parse_scope(&scope)?;
        let source = family_or_404(conn, &source)?;
        let target = family_or_404(conn, &target)?;
        let subject = subjects::ensure_family_subject(conn, &state.signer, &source)?;
        grant(conn, &subject.id, scope, Some(&target.id), None, None)?;
        events::subject_changed(state, &subject.id);
        Ok(())
    })
    .await?;
    Ok(null())
}

async fn esc_token(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let esc_id = path.into_inner();
    let token = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let esc = super::escs::find(conn, &esc_id)?;
        let subject = subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
        let owner = SubjectOwner::Esc {
            id: esc.id.clone(),
            name: esc.name.clone(),
        };
        subjects::current_token(conn, &state.signer, &subject, &owner)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "token": token })))
}

/// Re-signs every token of one subject type (after an `AUTH_KEY` change).
async fn regenerate_all(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Internal tokens are rolled with `lifecycle generate-auth`, not here.
    let subject_type = match path
        .into_inner()
        .parse::<racetrack_model::AuthSubjectType>()
    {
        Ok(t) if t != racetrack_model::AuthSubjectType::Internal => t,
        _ => return Err(ApiError::NotFound("no such endpoint".into())),
    };
    with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let list = repo::subjects_of_type(conn, subject_type)?;
        for subject in &list {
            let owner = repo::owner_of(conn, subject)?;
            subjects::regenerate(conn, &state.signer, subject, &owner)?;
        }
        events::everything_changed(state);
        tracing::info!(subject_type = %subject_type, count = list.len(), by = %caller.username(), "tokens regenerated");
        Ok(())
    })
    .await?;
    Ok(null())
}

#[derive(Serialize)]
struct PermissionDto {
    id: i64,
    auth_subject_id: String,
    subject: String,
    scope: AuthScope,
    fatman_family: Option<String>,
    fatman_name: Option<String>,
    fatman_version: Option<String>,
    endpoint: Option<String>,
}

fn permission_dto(
    conn: &mut DbConnection,
    view: PermissionView,
) -> Result<PermissionDto, ApiError> {
    let subject = match repo::find_subject(conn, &view.auth_subject_id)? {
        Some(s) => repo::owner_of(conn, &s)?.display(&s.id),
        None => view.auth_subject_id.clone(),
    };
    let (fatman_name, fatman_version) = view
        .fatman
        .map_or((None, None), |(n, v)| (Some(n), Some(v)));
    Ok(PermissionDto {
        id: view.id,
        auth_subject_id: view.auth_subject_id,
        subject,
        scope: view.scope,
        fatman_family: view.family_name,
        fatman_name,
        fatman_version,
        endpoint: view.endpoint,
    })
}

#[derive(Deserialize)]
struct PermissionQuery {
    auth_subject_id: Option<String>,
}

async fn list_permissions(
    state: State,
    token: AuthToken,
    query: web::Query<PermissionQuery>,
) -> Result<HttpResponse, ApiError> {
    let subject_id = query.into_inner().auth_subject_id;
    let list = with_caller(state, token, move |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let views = match subject_id {
            Some(id) => repo::permissions_of_subject(conn, &id)?,
            None => repo::list_permissions(conn)?,
        };
        views
            .into_iter()
            .map(|v| permission_dto(conn, v))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPermission {
    auth_subject_id: String,
    scope: String,
    fatman_family: Option<String>,
    fatman_name: Option<String>,
    fatman_version: Option<String>,
    endpoint: Option<String>,
}

async fn create_permission(
    state: State,
    token: AuthToken,
    body: web::Json<NewPermission>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let dto = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let scope = parse_scope(&body.scope)?;
        let subject = find_subject(conn, &body.auth_subject_id)?;
        let family = match &body.fatman_family {
            Some(name) => Some(family_or_404(conn, name)?),
            None => None,
        };
        let fatman = match (&body.fatman_name, &body.fatman_version) {
            (Some(n), Some(v)) => Some(crate::registry::exact_fatman(conn, n, v)?),
            (None, None) => None,
            _ => {
                return Err(ApiError::validation(
                    "body.fatman_version",
                    "fatman_name and fatman_version go together",
                ))
            }
        };
        let endpoint = body.endpoint.as_deref().map(permission::normalize_endpoint);
        let id = grant(
            conn,
            &subject.id,
            scope,
            family.as_ref().map(|f| f.id.as_str()),
            fatman.as_ref().map(|f| f.id.as_str()),
            endpoint.as_deref(),
        )?;
        events::subject_changed(state, &subject.id);
        tracing::info!(permission = id, by = %caller.username(), "permission created");
        let view = repo::find_permission(conn, id)?
            .ok_or_else(|| ApiError::internal("permission vanished"))?;
        permission_dto(conn, view)
    })
    .await?;
    Ok(HttpResponse::Ok().json(dto))
}

async fn delete_permission(
    state: State,
    token: AuthToken,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let view = repo::find_permission(conn, id)?
            .ok_or_else(|| ApiError::NotFound(format!("permission {id} was not found")))?;
        if !repo::revoke_permission(conn, id)? {
            return Err(ApiError::NotFound(format!("permission {id} was not found")));
        }
        events::subject_changed(state, &view.auth_subject_id);
        tracing::info!(permission = id, by = %caller.username(), "permission revoked");
        Ok(())
    })
    .await?;
    Ok(null())
}

fn find_subject(conn: &mut DbConnection, id: &str) -> Result<AuthSubject, ApiError> {
    repo::find_subject(conn, id)?
        .ok_or_else(|| ApiError::NotFound(format!("auth subject {id} was not found")))
}

#[derive(Serialize)]
struct SubjectDto {
    id: String,
    subject_type: Option<racetrack_model::AuthSubjectType>,
    name: Option<String>,
    display: String,
    active: bool,
    expiry_time: Option<i64>,
}

fn subject_dto(subject: &AuthSubject, owner: &SubjectOwner) -> SubjectDto {
    SubjectDto {
        id: subject.id.clone(),
        subject_type: owner.subject_type(),
        name: owner.token_subject().map(String::from),
        display: owner.display(&subject.id),
        active: subject.active,
        expiry_time: subject.expiry_time.map(unix_time),
    }
}

async fn list_subjects(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        Ok(repo::list_subjects(conn)?
            .iter()
            .map(|(s, o)| subject_dto(s, o))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Serialize)]
struct TokenDto {
    id: String,
    label: String,
    create_time: i64,
    expiry_time: Option<i64>,
    last_use_time: Option<i64>,
    /// Present only in the answer that created the token.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl TokenDto {
    fn new(row: &racetrack_db::models::AuthToken, token: Option<String>) -> TokenDto {
        TokenDto {
            id: row.id.clone(),
            label: row.label.clone(),
            create_time: unix_time(row.create_time),
            expiry_time: row.expiry_time.map(unix_time),
            last_use_time: row.last_use_time.map(unix_time),
            token,
        }
    }
}

async fn list_tokens(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let list = with_caller(state, token, move |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let subject = find_subject(conn, &id)?;
        Ok(repo::tokens_of_subject(conn, &subject.id)?
            .iter()
            .map(|t| TokenDto::new(t, None))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    label: String,
    /// Unix seconds.
    expiry_time: Option<i64>,
}

fn from_unix(field: &str, secs: Option<i64>) -> Result<Option<NaiveDateTime>, ApiError> {
    secs.map(|s| {
        DateTime::from_timestamp(s, 0)
            .map(|d| d.naive_utc())
            .ok_or_else(|| ApiError::validation(format!("body.{field}"), "not a valid unix time"))
    })
    .transpose()
}

/// A second live token for the subject, so a consumer can switch before the old one is revoked.
async fn add_token(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
    body: Option<web::Json<NewToken>>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.map(|b| b.into_inner()).unwrap_or_default();
    let dto = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        if body.label.chars().count() > 256 {
            return Err(ApiError::validation("body.label", "at most 256 characters"));
        }
        let expiry = from_unix("expiry_time", body.expiry_time)?;
        let subject = find_subject(conn, &id)?;
        let owner = repo::owner_of(conn, &subject)?;
        let (row, token) = subjects::issue_token(conn, &state.signer, &subject, &owner, &body.label, expiry)?;
        tracing::info!(subject = %subject.id, token_id = %row.id, by = %caller.username(), "token added");
        Ok(TokenDto::new(&row, Some(token)))
    })
    .await?;
    Ok(HttpResponse::Ok().json(dto))
}

async fn regenerate_subject(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let token = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let subject = find_subject(conn, &id)?;
        let owner = repo::owner_of(conn, &subject)?;
        let token = subjects::regenerate(conn, &state.signer, &subject, &owner)?;
        events::subject_changed(state, &subject.id);
        tracing::info!(subject = %subject.id, by = %caller.username(), "subject token regenerated");
        Ok(token)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "token": token })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Access {
    active: bool,
    expiry_time: Option<i64>,
}

async fn set_access(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
    body: web::Json<Access>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let body = body.into_inner();
    let dto = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let expiry = from_unix("expiry_time", body.expiry_time)?;
        let subject = find_subject(conn, &id)?;
        repo::set_subject_access(conn, &subject.id, body.active, expiry)?;
        events::subject_changed(state, &subject.id);
        let subject = find_subject(conn, &id)?;
        let owner = repo::owner_of(conn, &subject)?;
        tracing::info!(subject = %subject.id, active = body.active, by = %caller.username(), "subject access changed");
        Ok(subject_dto(&subject, &owner))
    })
    .await?;
    Ok(HttpResponse::Ok().json(dto))
}

async fn revoke_token(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let row = repo::find_token(conn, &id)?
            .ok_or_else(|| ApiError::NotFound(format!("token {id} was not found")))?;
        if !repo::delete_token(conn, &id)? {
            return Err(ApiError::NotFound(format!("token {id} was not found")));
        }
        events::subject_changed(state, &row.auth_subject_id);
        tracing::info!(token_id = %id, by = %caller.username(), "token revoked");
        Ok(())
    })
    .await?;
    Ok(null())
}
