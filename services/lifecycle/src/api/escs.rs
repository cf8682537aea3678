//! External Service Consumers: callers outside Racetrack with their own caller token.

use actix_web::{web, HttpResponse};
use racetrack_db::models::Esc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{null, with_caller, AuthToken, State};
use crate::app::escs;
use crate::error::ApiError;

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

async fn list(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, _, caller| escs::list(conn, caller)).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(EscDto::from).collect::<Vec<_>>()))
}

async fn create(
    state: State,
    token: AuthToken,
    body: web::Json<CreateEsc>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let esc = with_caller(state, token, move |conn, state, caller| {
        escs::create(conn, state, caller, &body.name, body.id)
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
        escs::get(conn, caller, &id)
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
        escs::rename(conn, caller, &id, &name)
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
        escs::delete(conn, state, caller, &id)
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
        escs::reset_token(conn, state, caller, &id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "token": new_token })))
}
