//! Fatmen and families over REST.

use actix_web::{web, HttpResponse};
use racetrack_db::models::{Fatman, PublicEndpointRequest};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::dto::{FatmanDetailsDto, FatmanDto};
use super::{caller, null, with_caller, AuthToken, State};
use crate::app::{families, fatmen};
use crate::deploy::Mode;
use crate::error::ApiError;

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

async fn list_fatmen(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let pub_url = state.config.external_pub_url.clone();
    let (list, mut manifests) =
        with_caller(state, token, |conn, _, caller| fatmen::list(conn, caller)).await?;
    Ok(HttpResponse::Ok().json(
        list.iter()
            .map(|f| FatmanDto::new(f, manifests.remove(&f.id), &pub_url))
            .collect::<Vec<_>>(),
    ))
}

#[derive(Serialize)]
struct FamilyDto {
    name: String,
    id: String,
}

async fn list_families(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, _, caller| families::list(conn, caller)).await?;
    Ok(HttpResponse::Ok().json(
        list.into_iter()
            .map(|f| FamilyDto {
                name: f.name,
                id: f.id,
            })
            .collect::<Vec<_>>(),
    ))
}

async fn graph(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let pub_url = state.config.external_pub_url.clone();
    let graph = with_caller(state, token, |conn, _, caller| {
        families::graph(conn, caller)
    })
    .await?;
    let mut nodes = Vec::new();
    for esc in &graph.escs {
        nodes.push(json!({
            "id": format!("esc-{}", esc.id), "type": "esc", "title": esc.name,
            "subtitle": format!("ESC:\n{}", esc.id),
        }));
    }
    for (name, members) in &graph.families {
        let lines: String = members
            .iter()
            .map(|f| {
                format!(
                    "\n- {name} v{} - {pub_url}/fatman/{name}/{}",
                    f.version, f.version
                )
            })
            .collect();
        nodes.push(json!({
            "id": format!("fatman-family-{name}"), "type": "fatman-family", "title": name,
            "subtitle": format!("Fatman Family: {name}\nFatmen:{lines}"),
        }));
    }
    let mut edges = Vec::new();
    for (from, to) in &graph.family_calls {
        edges.push(json!({"from_id": format!("fatman-family-{from}"), "to_id": format!("fatman-family-{to}")}));
    }
    for (esc, to) in &graph.esc_calls {
        edges
            .push(json!({"from_id": format!("esc-{esc}"), "to_id": format!("fatman-family-{to}")}));
    }
    Ok(HttpResponse::Ok().json(json!({"nodes": nodes, "edges": edges})))
}

async fn get_fatman(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let (f, manifest) = with_caller(state, token, move |conn, _, caller| {
        fatmen::get(conn, caller, &name, &version)
    })
    .await?;
    Ok(HttpResponse::Ok().json(FatmanDetailsDto::new(&f, manifest)))
}

async fn delete_fatman(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let caller = caller(&state, token).await?;
    fatmen::delete(&state.into_inner(), &caller, &name, &version).await?;
    Ok(null())
}

async fn rerun(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let caller = caller(&state, token).await?;
    fatmen::rerun(&state.into_inner(), &caller, &name, &version, mode).await?;
    Ok(null())
}

async fn redeploy(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    rerun(state, token, path, Mode::Redeploy).await
}

async fn reprovision(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    rerun(state, token, path, Mode::Reprovision).await
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
    let caller = caller(&state, token).await?;
    let logs = fatmen::runtime_logs(
        &state.into_inner(),
        &caller,
        &name,
        &version,
        query.tail as usize,
    )
    .await?;
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
    let caller = caller(&state, token).await?;
    let report = fatmen::move_to(&state.into_inner(), &caller, &name, &version, &target).await?;
    // The body stays the original's `null`; what the caller should know rides in `Warning`
    // headers (RFC 9111 code 199, "miscellaneous warning").
    let mut response = HttpResponse::Ok();
    for warning in &report.warnings {
        response.append_header((
            actix_web::http::header::WARNING,
            format!("199 lifecycle {:?}", warning),
        ));
    }
    Ok(response.json(serde_json::Value::Null))
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
        fatmen::build_logs(conn, caller, &name, &version, tail)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "logs": logs })))
}

fn endpoint_request_dto(fatman: &Fatman, e: &PublicEndpointRequest) -> serde_json::Value {
    json!({"fatman_name": fatman.name, "fatman_version": fatman.version, "endpoint": e.endpoint, "active": e.active})
}

async fn public_endpoints(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let (fatman, list) = with_caller(state, token, move |conn, _, caller| {
        fatmen::public_endpoints(conn, caller, &name, &version)
    })
    .await?;
    Ok(HttpResponse::Ok().json(
        list.iter()
            .map(|e| endpoint_request_dto(&fatman, e))
            .collect::<Vec<_>>(),
    ))
}

/// Every public endpoint the manifest asked for, approved or not (admin panel's list).
async fn public_endpoint_requests(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let (fatman, list) = with_caller(state, token, move |conn, _, caller| {
        fatmen::public_endpoint_requests(conn, caller, &name, &version)
    })
    .await?;
    Ok(HttpResponse::Ok().json(
        list.iter()
            .map(|e| endpoint_request_dto(&fatman, e))
            .collect::<Vec<_>>(),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointApproval {
    endpoint: String,
    active: bool,
}

/// An admin approves (or withdraws) a public endpoint the manifest requested.
async fn approve_public_endpoint(
    state: State,
    token: AuthToken,
    path: web::Path<(String, String)>,
    body: web::Json<EndpointApproval>,
) -> Result<HttpResponse, ApiError> {
    let (name, version) = path.into_inner();
    let body = body.into_inner();
    let (fatman, request) = with_caller(state, token, move |conn, state, caller| {
        fatmen::approve_public_endpoint(
            conn,
            state,
            caller,
            &name,
            &version,
            &body.endpoint,
            body.active,
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(endpoint_request_dto(&fatman, &request)))
}
