//! HTTP surface. Every route answers both at `/api/v1/...` and `/lifecycle/api/v1/...`.

mod audit;
mod auth;
mod deployments;
mod escs;
mod fatmen;
mod health;
mod users;

use actix_web::{web, HttpResponse};
use racetrack_db::DbConnection;

use crate::caller::{self, AuthToken, Caller};
use crate::error::ApiError;
use crate::state::AppState;

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
    Err(ApiError::NotFound("no such endpoint".into()))
}

/// Runs `f` on a pooled connection off the async workers, after authenticating the caller.
pub async fn with_caller<T, F>(state: State, token: AuthToken, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &AppState, &Caller) -> Result<T, ApiError> + Send + 'static,
{
    web::block(move || {
        let mut conn = state.db.get()?;
        let caller = caller::authenticate(&mut conn, &state, token.0.as_deref())?;
        f(&mut conn, &state, &caller)
    })
    .await?
}

/// Runs `f` on a pooled connection without authentication (public endpoints).
pub async fn with_db<T, F>(state: State, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection, &AppState) -> Result<T, ApiError> + Send + 'static,
{
    web::block(move || {
        let mut conn = state.db.get()?;
        f(&mut conn, &state)
    })
    .await?
}

/// The original answers `null` with 200 where an endpoint returns nothing.
pub fn null() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::Value::Null)
}
