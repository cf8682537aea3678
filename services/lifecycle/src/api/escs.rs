//! External Service Consumers: callers outside Racetrack with their own caller token.

use actix_web::{web, HttpResponse};
use racetrack_db::models::{Esc, SubjectOwner};
use racetrack_db::repo::escs;
use racetrack_db::Connection as _;
use racetrack_model::AuthScope;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{null, with_caller, State};
use crate::caller::{require_scope, AuthToken};
use crate::error::ApiError;
use crate::subjects;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/escs", web::get().to(list))
        .route("/escs", web::post().to(create))
        .route("/escs/{id}", web::get().to(get))
        .route("/escs/{id}", web::put().to(rename))
        .route("/escs/{id}", web::delete().to(delete))
        .route("/escs/{id}/token/reset", web::post().to(reset_token));
}

#[derive(Serialize)]
struct EscDto {
    name: String,
    id: String,
}

impl From<Esc> for EscDto {
    fn from(e: Esc) -> Self {
        EscDto {
            name: e.name,
            id: e.id,
        }
    }
}

#[derive(Deserialize)]
struct CreateEsc {
    name: String,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RenameEsc {
    name: String,
}

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 512 || name.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "body.name",
            "must be 1 to 512 printable characters",
        ));
    }
    Ok(name.to_string())
}

fn validate_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= 36
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "body.id",
            "must be 1 to 36 letters, digits, '-' or '_'",
        ))
    }
}

pub(super) fn find(conn: &mut racetrack_db::DbConnection, id: &str) -> Result<Esc, ApiError> {
    escs::find(conn, id)?
        .ok_or_else(|| ApiError::NotFound(format!("ESC with id {id} was not found")))
}

async fn list(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        Ok(escs::list(conn)?
            .into_iter()
            .map(EscDto::from)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn create(
    state: State,
    token: AuthToken,
    body: web::Json<CreateEsc>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let esc = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let name = validate_name(&body.name)?;
        let id = match body.id {
            Some(id) => {
                validate_id(&id)?;
                id
            }
            None => racetrack_db::new_id(),
        };
        let esc = Esc { id, name };
        conn.transaction(|conn| {
            if escs::find(conn, &esc.id)?.is_some() {
                return Err(ApiError::AlreadyExists("ESC already exists".into()));
            }
            escs::insert(conn, &esc)?;
            subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
            Ok(())
        })?;
        tracing::info!(esc = %esc.id, by = %caller.username(), "ESC created");
        Ok(esc)
    })
    .await?;
    Ok(HttpResponse::Ok().json(EscDto::from(esc)))
}

async fn get(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let esc = with_caller(state, token, move |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        find(conn, &id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(EscDto::from(esc)))
}

async fn rename(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
    body: web::Json<RenameEsc>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let name = body.into_inner().name;
    let esc = with_caller(state, token, move |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let name = validate_name(&name)?;
        find(conn, &id)?;
        escs::rename(conn, &id, &name)?;
        Ok(Esc { id, name })
    })
    .await?;
    Ok(HttpResponse::Ok().json(EscDto::from(esc)))
}

async fn delete(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        find(conn, &id)?;
        // Cascades the ESC's auth subject, tokens and permissions.
        escs::delete(conn, &id)?;
        crate::events::everything_changed(state);
        tracing::info!(esc = %id, by = %caller.username(), "ESC deleted");
        Ok(())
    })
    .await?;
    Ok(null())
}

async fn reset_token(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let new_token = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let esc = find(conn, &id)?;
        let subject = subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
        let owner = SubjectOwner::Esc {
            id: esc.id.clone(),
            name: esc.name.clone(),
        };
        let token = subjects::regenerate(conn, &state.signer, &subject, &owner)?;
        crate::events::subject_changed(state, &subject.id);
        tracing::info!(esc = %esc.id, by = %caller.username(), "ESC token reset");
        Ok(token)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "token": new_token })))
}
