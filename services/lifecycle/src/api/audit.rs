use actix_web::{web, HttpResponse};
use racetrack_db::models::AuditLogEvent;
use serde::Serialize;

use super::dto::unix_time;
use super::{with_caller, AuthToken, State};
use crate::app::audit::{self, Query};
use crate::error::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit/user_events", web::get().to(user_events))
        .route(
            "/audit/user_events/fatman/{name}",
            web::get().to(user_family_events),
        )
        .route(
            "/audit/user_events/fatman/{name}/{version}",
            web::get().to(user_fatman_events),
        )
        .route("/audit/events", web::get().to(events))
        .route("/audit/events/fatman/{name}", web::get().to(family_events))
        .route(
            "/audit/events/fatman/{name}/{version}",
            web::get().to(fatman_events),
        );
}

#[derive(Serialize)]
struct AuditLogEventDto {
    id: String,
    version: i32,
    timestamp: i64,
    event_type: racetrack_model::AuditLogEventType,
    properties: Option<serde_json::Value>,
    username_executor: Option<String>,
    username_subject: Option<String>,
    fatman_name: Option<String>,
    fatman_version: Option<String>,
    /// The original's human-readable sentence (what the dashboard shows).
    description: Option<String>,
}

impl From<AuditLogEvent> for AuditLogEventDto {
    fn from(e: AuditLogEvent) -> Self {
        let description = Some(e.event_type.describe(
            e.fatman_name.as_deref().unwrap_or(""),
            e.fatman_version.as_deref().unwrap_or(""),
            e.username_executor.as_deref(),
            e.username_subject.as_deref(),
        ));
        AuditLogEventDto {
            id: e.id,
            version: e.version,
            timestamp: unix_time(e.timestamp),
            event_type: e.event_type,
            properties: e.properties.and_then(|p| serde_json::from_str(&p).ok()),
            username_executor: e.username_executor,
            username_subject: e.username_subject,
            fatman_name: e.fatman_name,
            fatman_version: e.fatman_version,
            description,
        }
    }
}

async fn query(
    state: State,
    token: AuthToken,
    user_only: bool,
    name: Option<String>,
    version: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let query = Query {
        mine: user_only,
        fatman_name: name,
        fatman_version: version,
    };
    let list = with_caller(state, token, move |conn, _, caller| {
        audit::events(conn, caller, &query)
    })
    .await?
    .into_iter()
    .map(AuditLogEventDto::from)
    .collect::<Vec<_>>();
    Ok(HttpResponse::Ok().json(list))
}

async fn user_events(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    query(state, token, true, None, None).await
}

async fn user_family_events(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    query(state, token, true, Some(path.into_inner()), None).await
}

async fn user_fatman_events(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    query(state, token, true, Some(name), Some(version)).await
}

async fn events(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    query(state, token, false, None, None).await
}

async fn family_events(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    query(state, token, false, Some(path.into_inner()), None).await
}

async fn fatman_events(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    query(state, token, false, Some(name), Some(version)).await
}
