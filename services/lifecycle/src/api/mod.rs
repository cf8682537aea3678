//! HTTP surface: a thin adapter over the operations in `crate::app` (request parsing, DTOs,
//! statuses). Every route answers both at `/api/v1/...` and `/lifecycle/api/v1/...`.

mod audit;
mod auth;
mod deployments;
pub mod dto;
mod escs;
mod fatmen;
mod health;
mod users;

use std::future::{ready, Ready};
use std::sync::Arc;

use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use racetrack_db::DbConnection;

use crate::app::{self, AppError, Caller};
use crate::error::ApiError;
use crate::state::AppState;

/// Header names in the order Lifecycle reads them (the last three are legacy fallbacks).
pub const AUTH_HEADERS: [&str; 4] = [
    "X-Racetrack-Auth",
    "X-Racetrack-User-Auth",
    "X-Racetrack-Fatman-Auth",
    "X-Racetrack-Esc-Auth",
];

/// The raw token of a request, if any (first non-empty auth header).
#[derive(Clone)]
pub struct AuthToken(pub Option<String>);

impl FromRequest for AuthToken {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = AUTH_HEADERS.iter().find_map(|name| {
            req.headers()
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        });
        ready(Ok(AuthToken(token)))
    }
}

pub type State = web::Data<AppState>;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/lifecycle").configure(routes))
        .configure(routes);
}

fn routes(cfg: &mut web::ServiceConfig) {
    health::routes(cfg);
    cfg.service(
        web::scope("/api/v1")
            .configure(fatmen::routes)
            .configure(deployments::routes)
            .configure(auth::routes)
            .configure(users::routes)
            .configure(escs::routes)
            .configure(audit::routes)
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError(AppError::NotFound("no such endpoint".into())))
}

fn shared(state: &State) -> Arc<AppState> {
    state.clone().into_inner()
}

/// Authenticates the request's token, then runs the operation `f` as that caller on a pooled
/// connection off the async workers.
pub async fn with_caller<T, F>(state: State, token: AuthToken, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &AppState, &Caller) -> Result<T, AppError> + Send + 'static,
{
    Ok(app::as_caller(&shared(&state), token.0, f).await?)
}

/// Runs `f` on a pooled connection without authentication (public endpoints).
pub async fn with_db<T, F>(state: State, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &AppState) -> Result<T, AppError> + Send + 'static,
{
    Ok(app::blocking(&shared(&state), f).await?)
}

/// The request's caller, for operations that also await infrastructure.
pub async fn caller(state: &State, token: AuthToken) -> Result<Caller, ApiError> {
    Ok(app::as_caller(&shared(state), token.0, |_, _, caller| Ok(caller.clone())).await?)
}

/// The original answers `null` with 200 where an endpoint returns nothing.
pub fn null() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::Value::Null)
}
