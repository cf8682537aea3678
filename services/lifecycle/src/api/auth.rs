//! Permission checks for PUB, grants, tokens, auth subjects and permission records, over REST.

use actix_web::{web, HttpResponse, ResponseError};
use racetrack_db::models::{AuthSubject, SubjectOwner};
use racetrack_model::{AuthScope, AuthSubjectType};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::dto::unix_time;
use super::{null, with_caller, AuthToken, State};
use crate::app::permissions::{self as app, NewPermission as Grant, PermissionEntry};
use crate::app::{escs, AppError};
use crate::error::ApiError;

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

/// `/auth/allowed/*` keep the original's contract exactly: 202 with an empty body, or 401 with
/// `{"error": ...}` and no `type` (PUB of the original relies on it); the denial's details only
/// with AUTH_DEBUG.
fn allowed_response(result: Result<(), AppError>, auth_debug: bool) -> HttpResponse {
    match result {
        Ok(()) => HttpResponse::Accepted().finish(),
        Err(AppError::Unauthenticated(denial) | AppError::Forbidden(denial)) => {
            HttpResponse::Unauthorized()
                .json(json!({ "error": format!("Unauthorized: {}", denial.shown(auth_debug)) }))
        }
        Err(other) => ApiError::from(other).error_response(),
    }
}

async fn allowed_fatman(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String, String)>,
) -> HttpResponse {
    let (name, version, scope) = path.into_inner();
    let debug = state.config.auth_debug;
    let result = crate::app::blocking(&state.clone().into_inner(), move |conn, state| {
        app::check_allowed(
            conn,
            &state.signer,
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
    let endpoint = racetrack_auth::permission::normalize_endpoint(&endpoint);
    let debug = state.config.auth_debug;
    let result = crate::app::blocking(&state.clone().into_inner(), move |conn, state| {
        app::check_allowed(
            conn,
            &state.signer,
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

async fn allow_esc(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (esc_id, family, scope) = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        app::allow_esc(conn, state, caller, &esc_id, &family, &scope)
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
        app::allow_family(conn, state, caller, &source, &target, &scope)
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
        escs::token(conn, state, caller, &esc_id)
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
    let subject_type = match path.into_inner().parse::<AuthSubjectType>() {
        Ok(t) if t != AuthSubjectType::Internal => t,
        _ => return Err(ApiError(AppError::NotFound("no such endpoint".into()))),
    };
    with_caller(state, token, move |conn, state, caller| {
        app::regenerate_all(conn, state, caller, subject_type)
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

fn permission_dto(entry: PermissionEntry) -> PermissionDto {
    let view = entry.view;
    let (fatman_name, fatman_version) = view
        .fatman
        .map_or((None, None), |(n, v)| (Some(n), Some(v)));
    PermissionDto {
        id: view.id,
        auth_subject_id: view.auth_subject_id,
        subject: entry.subject,
        scope: view.scope,
        fatman_family: view.family_name,
        fatman_name,
        fatman_version,
        endpoint: view.endpoint,
    }
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
        app::list_permissions(conn, caller, subject_id.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(permission_dto).collect::<Vec<_>>()))
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
    let grant = Grant {
        auth_subject_id: body.auth_subject_id,
        scope: body.scope,
        fatman_family: body.fatman_family,
        fatman_name: body.fatman_name,
        fatman_version: body.fatman_version,
        endpoint: body.endpoint,
    };
    let entry = with_caller(state, token, move |conn, state, caller| {
        app::create_permission(conn, state, caller, &grant)
    })
    .await?;
    Ok(HttpResponse::Ok().json(permission_dto(entry)))
}

async fn delete_permission(
    state: State,
    token: AuthToken,
    path: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        app::delete_permission(conn, state, caller, id)
    })
    .await?;
    Ok(null())
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
        app::list_subjects(conn, caller)
    })
    .await?;
    Ok(HttpResponse::Ok().json(
        list.iter()
            .map(|(s, o)| subject_dto(s, o))
            .collect::<Vec<_>>(),
    ))
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
        app::list_tokens(conn, caller, &id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(
        list.iter()
            .map(|t| TokenDto::new(t, None))
            .collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct NewToken {
    #[serde(default)]
    label: String,
    /// Unix seconds.
    expiry_time: Option<i64>,
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
    let (row, token) = with_caller(state, token, move |conn, state, caller| {
        app::add_token(conn, state, caller, &id, &body.label, body.expiry_time)
    })
    .await?;
    Ok(HttpResponse::Ok().json(TokenDto::new(&row, Some(token))))
}

async fn regenerate_subject(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let token = with_caller(state, token, move |conn, state, caller| {
        app::regenerate_subject(conn, state, caller, &id)
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
    let (subject, owner) = with_caller(state, token, move |conn, state, caller| {
        app::set_access(conn, state, caller, &id, body.active, body.expiry_time)
    })
    .await?;
    Ok(HttpResponse::Ok().json(subject_dto(&subject, &owner)))
}

async fn revoke_token(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        app::revoke_token(conn, state, caller, &id)
    })
    .await?;
    Ok(null())
}
