//! Reading deployments and the image-builder's phase updates. Creating deployments comes with the
//! deploy pipeline.

use actix_web::{web, HttpResponse};
use racetrack_db::repo::deployments;
use serde::Deserialize;

use super::{null, with_caller, State};
use crate::caller::{require_authn, AuthToken};
use crate::error::ApiError;
use crate::registry::DeploymentDto;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/deploy/{id}", web::get().to(get_deployment))
        .route("/deploy/{id}/phase", web::put().to(set_phase));
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("deployment with ID {id} was not found"))
}

async fn get_deployment(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let dto = with_caller(state, token, move |conn, state, caller| {
        require_authn(caller)?;
        let d = deployments::find(conn, &id)?.ok_or_else(|| not_found(&id))?;
        DeploymentDto::new(conn, &d, &state.config.external_pub_url)
    })
    .await?;
    Ok(HttpResponse::Ok().json(dto))
}

#[derive(Deserialize)]
struct PhasePayload {
    phase: String,
}

async fn set_phase(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
    body: web::Json<PhasePayload>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let phase = body.into_inner().phase;
    with_caller(state, token, move |conn, _, caller| {
        require_authn(caller)?;
        let mut d = deployments::find(conn, &id)?.ok_or_else(|| not_found(&id))?;
        d.phase = Some(phase);
        d.update_time = racetrack_db::now();
        deployments::save(conn, &d)?;
        Ok(())
    })
    .await?;
    Ok(null())
}
