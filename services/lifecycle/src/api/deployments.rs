//! Deployments: starting them (`/deploy`, `/build`), reading them, the image-builder's phase
//! updates.

use actix_web::{web, HttpResponse};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;

use super::dto::DeploymentDto;
use super::{null, with_caller, AuthToken, State};
use crate::app::deployments;
use crate::app::AppError;
use crate::deploy::{DeployInput, GitCredentials, Mode, SecretVars};
use crate::error::ApiError;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/deploy").route(web::post().to(start_deploy)))
        .service(web::resource("/build").route(web::post().to(start_build)))
        .route("/deploy/{id}", web::get().to(get_deployment))
        .route("/deploy/{id}/phase", web::put().to(set_phase));
}

/// The original client's deploy payload.
#[derive(Deserialize)]
pub struct DeployPayload {
    pub manifest: serde_json::Value,
    #[serde(default)]
    pub git_credentials: Option<GitCredentials>,
    #[serde(default)]
    pub secret_vars: Option<SecretVars>,
    /// base64 of a gzipped tar of the fatman's directory.
    #[serde(default)]
    pub build_context: Option<String>,
    #[serde(default)]
    pub force: Option<bool>,
}

/// Checks everything that can be checked before answering, so a bad request never becomes a
/// deployment.
pub fn validate_payload(
    payload: DeployPayload,
    max_context_bytes: usize,
) -> Result<DeployInput, ApiError> {
    let manifest = racetrack_model::parse_manifest_json(&payload.manifest).map_err(|e| {
        ApiError::validation(
            format!("manifest.{}", e.path)
                .trim_end_matches('.')
                .to_string(),
            e.reason,
        )
    })?;
    deployments::check_manifest(&manifest)?;
    let build_context = match payload.build_context.filter(|c| !c.is_empty()) {
        None => None,
        Some(encoded) => {
            if encoded.len() / 4 * 3 > max_context_bytes {
                return Err(ApiError(AppError::PayloadTooLarge(format!(
                    "build context is larger than {max_context_bytes} bytes"
                ))));
            }
            Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| {
                        ApiError::validation("build_context", format!("not valid base64: {e}"))
                    })?,
            )
        }
    };
    let manifest_yaml = racetrack_model::manifest_to_yaml(&manifest);
    Ok(DeployInput {
        manifest,
        manifest_yaml,
        git_credentials: payload.git_credentials,
        secrets: payload.secret_vars.unwrap_or_default(),
        build_context,
        force: payload.force.unwrap_or(false),
        prebuilt_image: None,
    })
}

/// The whole body, refused with a JSON 413 as soon as it grows past `max` (deploy payloads carry
/// build contexts far above actix's default body limit).
async fn read_limited(mut payload: web::Payload, max: usize) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError(AppError::BadRequest(format!(
                "cannot read the request body: {e}"
            )))
        })?;
        if body.len() + chunk.len() > max {
            return Err(ApiError(AppError::PayloadTooLarge(format!(
                "request body is larger than {max} bytes"
            ))));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

async fn start(
    state: State,
    token: AuthToken,
    payload: web::Payload,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(payload, state.config.max_deploy_body_bytes).await?;
    let payload: DeployPayload = serde_json::from_slice(&body).map_err(|e| {
        if e.is_data() {
            ApiError::validation("body", e.to_string())
        } else {
            ApiError(AppError::BadRequest(format!("malformed JSON body: {e}")))
        }
    })?;
    let max = state.config.max_deploy_body_bytes;
    let input = validate_payload(payload, max)?;
    let caller = super::caller(&state, token).await?;
    let deployment_id =
        deployments::start(&state.clone().into_inner(), &caller, input, mode).await?;
    Ok(HttpResponse::Ok().json(json!({ "id": deployment_id })))
}

async fn start_deploy(
    state: State,
    token: AuthToken,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    start(state, token, payload, Mode::Deploy).await
}

async fn start_build(
    state: State,
    token: AuthToken,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    start(state, token, payload, Mode::BuildOnly).await
}

async fn get_deployment(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let pub_url = state.config.external_pub_url.clone();
    let (deployment, fatman) = with_caller(state, token, move |conn, _, caller| {
        deployments::get(conn, caller, &id)
    })
    .await?;
    let fatman = fatman.as_ref().map(|(f, manifest)| (f, manifest.clone()));
    Ok(HttpResponse::Ok().json(DeploymentDto::new(&deployment, fatman, &pub_url)))
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
        deployments::set_phase(conn, caller, &id, phase)
    })
    .await?;
    Ok(null())
}
