//! The `Dashboard` gRPC service (`proto/dashboard.proto`): everything a person does in the
//! dashboard, as a thin adapter over [`crate::app`]. Every call but Register and Login carries the
//! signed-in user's own token in `x-racetrack-auth` and is authorized by the same operation the
//! REST API runs for that action; errors go through [`crate::grpc::status_of`]
//! (docs/architecture.md, "Dashboard's gRPC API").

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, SecondsFormat};
use futures_util::{Stream, StreamExt};
use racetrack_db::models::{
    AuditLogEvent, AuthSubject, AuthToken, Deployment, Esc, Fatman, PublicEndpointRequest,
    SubjectOwner, User,
};
use racetrack_db::DbConnection;
use racetrack_model::AuthSubjectType;
use racetrack_proto::dashboard as pb;
use racetrack_proto::dashboard::dashboard_server::{Dashboard, DashboardServer};
use tonic::{Request, Response, Status};

use crate::app::accounts::{self, UserUpdate};
use crate::app::permissions::{self, NewPermission, PermissionEntry};
use crate::app::{self, audit, deployments, escs, families, fatmen, subjects, AppError, Caller};
use crate::deploy::Mode;
use crate::grpc::{status_of, AUTH_METADATA};
use crate::state::AppState;

/// Runtime log lines when the request asks for none (as REST's default).
const DEFAULT_LOG_TAIL: usize = 20;
/// A followed log ends after this long even while the client stays.
const MAX_FOLLOW: Duration = Duration::from_secs(3600);

pub struct DashboardApi {
    state: Arc<AppState>,
}

impl DashboardApi {
    pub fn new(state: Arc<AppState>) -> DashboardServer<DashboardApi> {
        DashboardServer::new(DashboardApi { state })
    }

    /// Authenticates the request's user token, then runs `f` as that caller on the blocking pool.
    async fn as_user<T, R, F>(&self, req: &Request<R>, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &AppState, &Caller) -> Result<T, AppError> + Send + 'static,
    {
        app::as_caller(&self.state, user_token(req), f)
            .await
            .map_err(status_of)
    }

    /// The request's caller, for operations that also await infrastructure.
    async fn caller<R>(&self, req: &Request<R>) -> Result<Caller, Status> {
        self.as_user(req, |_, _, caller| Ok(caller.clone())).await
    }

    /// Runs `f` without authentication (Register, Login).
    async fn anonymous<T, F>(&self, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection, &AppState) -> Result<T, AppError> + Send + 'static,
    {
        app::blocking(&self.state, f).await.map_err(status_of)
    }
}

/// The user's token from the metadata; a missing one is refused by authentication.
fn user_token<T>(req: &Request<T>) -> Option<String> {
    req.metadata()
        .get(AUTH_METADATA)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
}

fn time(t: NaiveDateTime) -> String {
    t.and_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_time(t: Option<NaiveDateTime>) -> String {
    t.map(time).unwrap_or_default()
}

/// Proto3 strings: empty means absent.
fn given(s: String) -> Option<String> {
    let s = s.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn user_info(u: User) -> pb::UserInfo {
    pb::UserInfo {
        username: u.username,
        email: u.email,
        is_active: u.is_active,
        is_staff: u.is_staff,
        is_superuser: u.is_superuser,
        last_login: opt_time(u.last_login),
        date_joined: time(u.date_joined),
    }
}

fn token_info(t: &AuthToken) -> pb::TokenInfo {
    pb::TokenInfo {
        id: t.id.clone(),
        active: subjects::token_live(t),
        create_time: time(t.create_time),
        expiry_time: opt_time(t.expiry_time),
        last_use_time: opt_time(t.last_use_time),
    }
}

fn new_token((row, token): (AuthToken, String)) -> pb::NewToken {
    pb::NewToken {
        info: Some(token_info(&row)),
        token,
    }
}

/// A manifest value as the dashboard shows a label: strings as they are, others as JSON.
fn label_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `manifest`: the stored normalised manifest (`app::fatmen::with_manifest`).
fn fatman(f: Fatman, manifest: Option<serde_json::Value>) -> pb::Fatman {
    let field = |key: &str| {
        manifest
            .as_ref()
            .and_then(|m| m.get(key))
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let labels = manifest
        .as_ref()
        .and_then(|m| m.get("labels"))
        .and_then(serde_json::Value::as_object)
        .map(|l| l.iter().map(|(k, v)| (k.clone(), label_text(v))).collect())
        .unwrap_or_default();
    pb::Fatman {
        job_type: field("lang"),
        owner_email: field("owner_email"),
        labels,
        id: f.id,
        name: f.name,
        version: f.version,
        status: f.status.to_string(),
        create_time: time(f.create_time),
        update_time: time(f.update_time),
        last_call_time: opt_time(f.last_call_time),
        deployed_by: f.deployed_by.unwrap_or_default(),
        error: f.error.unwrap_or_default(),
        infrastructure_target: f.infrastructure_target.unwrap_or_default(),
        manifest_yaml: f.manifest.unwrap_or_default(),
        image_tag: f.image_tag.unwrap_or_default(),
    }
}

fn deployment(d: Deployment) -> pb::Deployment {
    pb::Deployment {
        id: d.id,
        status: d.status.to_string(),
        phase: d.phase.unwrap_or_default(),
        fatman_name: d.fatman_name,
        fatman_version: d.fatman_version,
        deployed_by: d.deployed_by.unwrap_or_default(),
        error: d.error.unwrap_or_default(),
        create_time: time(d.create_time),
        update_time: time(d.update_time),
        infrastructure_target: d.infrastructure_target.unwrap_or_default(),
        image_name: d.image_name.unwrap_or_default(),
    }
}

fn audit_event(e: AuditLogEvent) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id,
        timestamp: time(e.timestamp),
        event_type: e.event_type.to_string(),
        username_executor: e.username_executor.unwrap_or_default(),
        username_subject: e.username_subject.unwrap_or_default(),
        fatman_name: e.fatman_name.unwrap_or_default(),
        fatman_version: e.fatman_version.unwrap_or_default(),
        properties: e.properties.unwrap_or_default(),
    }
}

fn esc(e: Esc) -> pb::Esc {
    pb::Esc {
        id: e.id,
        name: e.name,
    }
}

fn permission(entry: PermissionEntry) -> pb::Permission {
    let view = entry.view;
    let (fatman_name, fatman_version) = view.fatman.unwrap_or_default();
    pb::Permission {
        id: view.id.to_string(),
        auth_subject_id: view.auth_subject_id,
        subject: entry.subject,
        scope: view.scope.to_string(),
        fatman_family: view.family_name.unwrap_or_default(),
        fatman_name,
        fatman_version,
        endpoint: view.endpoint.unwrap_or_default(),
    }
}

fn subject((s, owner): (AuthSubject, SubjectOwner)) -> pb::Subject {
    let name = match &owner {
        SubjectOwner::Esc { name, .. } => name.clone(),
        other => other.token_subject().unwrap_or_default().to_string(),
    };
    pb::Subject {
        kind: owner
            .subject_type()
            .map(AuthSubjectType::as_str)
            .unwrap_or_default()
            .to_string(),
        id: s.id,
        name,
        active: s.active,
    }
}

fn endpoint_request((f, r): (Fatman, PublicEndpointRequest)) -> pb::PublicEndpointRequest {
    pb::PublicEndpointRequest {
        id: r.id,
        fatman_name: f.name,
        fatman_version: f.version,
        endpoint: r.endpoint,
        active: r.active,
    }
}

fn node(id: String, kind: &str, label: &str, details: &[(&str, String)]) -> pb::GraphNode {
    pb::GraphNode {
        id,
        kind: kind.to_string(),
        label: label.to_string(),
        details: details
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

fn edge(from: String, to: String, kind: &str) -> pb::GraphEdge {
    pb::GraphEdge {
        from,
        to,
        kind: kind.to_string(),
    }
}

/// The graph in the proto's node ids: families have their versions, users own the fatmen they
/// deployed, and users, ESCs and families call families.
fn graph(g: families::Graph) -> pb::Graph {
    let family_id = |name: &str| format!("family:{name}");
    let fatman_id = |name: &str, version: &str| format!("fatman:{name}@{version}");
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let users: BTreeSet<&String> = g
        .owners
        .iter()
        .map(|(user, _, _)| user)
        .chain(g.user_calls.iter().map(|(user, _)| user))
        .collect();
    for user in users {
        nodes.push(node(format!("user:{user}"), "user", user, &[]));
    }
    for e in &g.escs {
        nodes.push(node(
            format!("esc:{}", e.id),
            "esc",
            &e.name,
            &[("id", e.id.clone())],
        ));
    }
    for (name, members) in &g.families {
        let versions: Vec<&str> = members.iter().map(|f| f.version.as_str()).collect();
        nodes.push(node(
            family_id(name),
            "family",
            name,
            &[("versions", versions.join(", "))],
        ));
        for f in members {
            let id = fatman_id(&f.name, &f.version);
            nodes.push(node(
                id.clone(),
                "fatman",
                &format!("{} {}", f.name, f.version),
                &[
                    ("status", f.status.to_string()),
                    ("deployed_by", f.deployed_by.clone().unwrap_or_default()),
                    ("update_time", time(f.update_time)),
                ],
            ));
            edges.push(edge(family_id(name), id, "version"));
        }
    }
    for (user, name, version) in &g.owners {
        edges.push(edge(
            format!("user:{user}"),
            fatman_id(name, version),
            "owns",
        ));
    }
    for (user, to) in &g.user_calls {
        edges.push(edge(format!("user:{user}"), family_id(to), "calls"));
    }
    for (from, to) in &g.family_calls {
        edges.push(edge(family_id(from), family_id(to), "calls"));
    }
    for (esc_id, to) in &g.esc_calls {
        edges.push(edge(format!("esc:{esc_id}"), family_id(to), "calls"));
    }
    pb::Graph { nodes, edges }
}

fn logs_tail(tail: u32, default: usize) -> usize {
    match tail {
        0 => default,
        n => n as usize,
    }
}

type LogChunkStream = Pin<Box<dyn Stream<Item = Result<pb::LogChunk, Status>> + Send>>;

#[tonic::async_trait]
impl Dashboard for DashboardApi {
    #[tracing::instrument(skip_all)]
    async fn register(
        &self,
        req: Request<pb::Credentials>,
    ) -> Result<Response<pb::UserInfo>, Status> {
        let pb::Credentials { username, password } = req.into_inner();
        let user = self
            .anonymous(move |conn, state| accounts::register(conn, state, &username, &password))
            .await?;
        Ok(Response::new(user_info(user)))
    }

    #[tracing::instrument(skip_all)]
    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginReply>, Status> {
        // The browser's address as the dashboard saw it; without one, the dashboard's own, so
        // the throttle still counts.
        let peer = req
            .remote_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default();
        let r = req.into_inner();
        let address = given(r.client_address).unwrap_or(peer);
        let (user, token) = self
            .anonymous(move |conn, state| {
                accounts::login(conn, state, &r.username, &r.password, &address)
            })
            .await?;
        Ok(Response::new(pb::LoginReply {
            user: Some(user_info(user)),
            token,
        }))
    }

    async fn who_am_i(&self, req: Request<pb::Empty>) -> Result<Response<pb::UserInfo>, Status> {
        let user = self
            .as_user(&req, |conn, _, caller| accounts::me(conn, caller))
            .await?;
        Ok(Response::new(user_info(user)))
    }

    #[tracing::instrument(skip_all)]
    async fn change_password(
        &self,
        req: Request<pb::ChangePasswordRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = req.get_ref().clone();
        self.as_user(&req, move |conn, _, caller| {
            accounts::change_own_password(conn, caller, &r.old_password, &r.new_password)
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_own_tokens(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::TokenList>, Status> {
        let list = self
            .as_user(&req, |conn, _, caller| accounts::own_tokens(conn, caller))
            .await?;
        Ok(Response::new(pb::TokenList {
            tokens: list.iter().map(token_info).collect(),
        }))
    }

    async fn add_own_token(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::NewToken>, Status> {
        let issued = self
            .as_user(&req, |conn, state, caller| {
                accounts::add_own_token(conn, state, caller)
            })
            .await?;
        Ok(Response::new(new_token(issued)))
    }

    async fn revoke_own_token(
        &self,
        req: Request<pb::TokenRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        let id = req.get_ref().id.clone();
        self.as_user(&req, move |conn, state, caller| {
            accounts::revoke_own_token(conn, state, caller, &id)
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn regenerate_own_token(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::NewToken>, Status> {
        let issued = self
            .as_user(&req, |conn, state, caller| {
                accounts::regenerate_own_token(conn, state, caller)
            })
            .await?;
        Ok(Response::new(new_token(issued)))
    }

    async fn list_fatmen(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::FatmanList>, Status> {
        let (list, mut manifests) = self
            .as_user(&req, |conn, _, caller| fatmen::list(conn, caller))
            .await?;
        Ok(Response::new(pb::FatmanList {
            fatmen: list
                .into_iter()
                .map(|f| {
                    let manifest = manifests.remove(&f.id);
                    fatman(f, manifest)
                })
                .collect(),
        }))
    }

    async fn get_fatman(
        &self,
        req: Request<pb::FatmanRef>,
    ) -> Result<Response<pb::Fatman>, Status> {
        let pb::FatmanRef { name, version } = req.get_ref().clone();
        let (f, manifest) = self
            .as_user(&req, move |conn, _, caller| {
                fatmen::get(conn, caller, &name, &version)
            })
            .await?;
        Ok(Response::new(fatman(f, manifest)))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn delete_fatman(
        &self,
        req: Request<pb::FatmanRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        fatmen::delete(&self.state, &caller, &r.name, &r.version)
            .await
            .map_err(status_of)?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn redeploy_fatman(
        &self,
        req: Request<pb::FatmanRef>,
    ) -> Result<Response<pb::Deployment>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        let d = fatmen::start_rerun(&self.state, &caller, &r.name, &r.version, Mode::Redeploy)
            .await
            .map_err(status_of)?;
        Ok(Response::new(deployment(d)))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn reprovision_fatman(
        &self,
        req: Request<pb::FatmanRef>,
    ) -> Result<Response<pb::Deployment>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        let d = fatmen::start_rerun(&self.state, &caller, &r.name, &r.version, Mode::Reprovision)
            .await
            .map_err(status_of)?;
        Ok(Response::new(deployment(d)))
    }

    async fn runtime_logs(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<Response<pb::Logs>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        let logs = fatmen::runtime_logs(
            &self.state,
            &caller,
            &r.name,
            &r.version,
            logs_tail(r.tail, DEFAULT_LOG_TAIL),
        )
        .await
        .map_err(status_of)?;
        Ok(Response::new(pb::Logs { logs }))
    }

    async fn build_logs(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<Response<pb::Logs>, Status> {
        let r = req.get_ref().clone();
        let logs = self
            .as_user(&req, move |conn, _, caller| {
                fatmen::build_logs(conn, caller, &r.name, &r.version, r.tail as usize)
            })
            .await?;
        Ok(Response::new(pb::Logs { logs }))
    }

    type FollowRuntimeLogsStream = LogChunkStream;

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn follow_runtime_logs(
        &self,
        req: Request<pb::LogsRequest>,
    ) -> Result<Response<Self::FollowRuntimeLogsStream>, Status> {
        let caller = self.caller(&req).await?;
        let r = req.into_inner();
        let log = fatmen::runtime_log(&self.state, &caller, &r.name, &r.version)
            .await
            .map_err(status_of)?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        // Ends when the client drops the stream (the receiver with it), the log ends, or after
        // MAX_FOLLOW.
        tokio::spawn(log.follow(logs_tail(r.tail, DEFAULT_LOG_TAIL), tx, MAX_FOLLOW));
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
            .map(|item| item.map(|lines| pb::LogChunk { lines }).map_err(status_of));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn get_deployment(
        &self,
        req: Request<pb::DeploymentRef>,
    ) -> Result<Response<pb::Deployment>, Status> {
        let id = req.get_ref().id.clone();
        let (d, _) = self
            .as_user(&req, move |conn, _, caller| {
                deployments::get(conn, caller, &id)
            })
            .await?;
        Ok(Response::new(deployment(d)))
    }

    async fn list_audit_events(
        &self,
        req: Request<pb::AuditQuery>,
    ) -> Result<Response<pb::AuditPage>, Status> {
        let r = req.get_ref().clone();
        let query = audit::Query {
            mine: r.related_to_me,
            fatman_name: given(r.fatman_name),
            fatman_version: given(r.fatman_version),
        };
        let page = self
            .as_user(&req, move |conn, _, caller| {
                audit::events_page(conn, caller, &query, r.page, r.page_size)
            })
            .await?;
        Ok(Response::new(pb::AuditPage {
            events: page.events.into_iter().map(audit_event).collect(),
            page: page.page,
            page_size: page.page_size,
            total: page.total,
        }))
    }

    async fn get_graph(&self, req: Request<pb::Empty>) -> Result<Response<pb::Graph>, Status> {
        let g = self
            .as_user(&req, |conn, _, caller| families::graph(conn, caller))
            .await?;
        Ok(Response::new(graph(g)))
    }

    async fn list_users(&self, req: Request<pb::Empty>) -> Result<Response<pb::UserList>, Status> {
        let list = self
            .as_user(&req, |conn, _, caller| accounts::list(conn, caller))
            .await?;
        Ok(Response::new(pb::UserList {
            users: list.into_iter().map(user_info).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(user = %req.get_ref().username))]
    async fn update_user(
        &self,
        req: Request<pb::UserUpdate>,
    ) -> Result<Response<pb::UserInfo>, Status> {
        let r = req.get_ref().clone();
        let changes = UserUpdate {
            is_active: r.is_active,
            is_staff: r.is_staff,
            is_superuser: r.is_superuser,
            ..Default::default()
        };
        let user = self
            .as_user(&req, move |conn, state, caller| {
                accounts::update(conn, state, caller, &r.username, changes)
            })
            .await?;
        Ok(Response::new(user_info(user)))
    }

    #[tracing::instrument(skip_all, fields(user = %req.get_ref().username))]
    async fn set_user_password(
        &self,
        req: Request<pb::SetUserPasswordRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        let r = req.get_ref().clone();
        self.as_user(&req, move |conn, _, caller| {
            accounts::reset_password(conn, caller, &r.username, &r.password)
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    #[tracing::instrument(skip_all, fields(fatman = %req.get_ref().name, version = %req.get_ref().version))]
    async fn update_manifest(
        &self,
        req: Request<pb::UpdateManifestRequest>,
    ) -> Result<Response<pb::Fatman>, Status> {
        let r = req.get_ref().clone();
        let (f, manifest) = self
            .as_user(&req, move |conn, _, caller| {
                fatmen::update_manifest(conn, caller, &r.name, &r.version, &r.manifest_yaml)
            })
            .await?;
        Ok(Response::new(fatman(f, manifest)))
    }

    async fn list_deployments(
        &self,
        req: Request<pb::DeploymentQuery>,
    ) -> Result<Response<pb::DeploymentList>, Status> {
        let r = req.get_ref().clone();
        let list = self
            .as_user(&req, move |conn, _, caller| {
                let (name, version) = (given(r.fatman_name), given(r.fatman_version));
                deployments::list(conn, caller, name.as_deref(), version.as_deref(), r.limit)
            })
            .await?;
        Ok(Response::new(pb::DeploymentList {
            deployments: list.into_iter().map(deployment).collect(),
        }))
    }

    async fn list_escs(&self, req: Request<pb::Empty>) -> Result<Response<pb::EscList>, Status> {
        let list = self
            .as_user(&req, |conn, _, caller| escs::list(conn, caller))
            .await?;
        Ok(Response::new(pb::EscList {
            escs: list.into_iter().map(esc).collect(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn create_esc(
        &self,
        req: Request<pb::CreateEscRequest>,
    ) -> Result<Response<pb::EscWithToken>, Status> {
        let name = req.get_ref().name.clone();
        let (created, token) = self
            .as_user(&req, move |conn, state, caller| {
                let created = escs::create(conn, state, caller, &name, None)?;
                let token = escs::token(conn, state, caller, &created.id)?;
                Ok((created, token))
            })
            .await?;
        Ok(Response::new(pb::EscWithToken {
            esc: Some(esc(created)),
            token,
        }))
    }

    #[tracing::instrument(skip_all, fields(esc = %req.get_ref().id))]
    async fn reset_esc_token(
        &self,
        req: Request<pb::EscRef>,
    ) -> Result<Response<pb::EscWithToken>, Status> {
        let id = req.get_ref().id.clone();
        let (found, token) = self
            .as_user(&req, move |conn, state, caller| {
                let token = escs::reset_token(conn, state, caller, &id)?;
                Ok((escs::get(conn, caller, &id)?, token))
            })
            .await?;
        Ok(Response::new(pb::EscWithToken {
            esc: Some(esc(found)),
            token,
        }))
    }

    #[tracing::instrument(skip_all, fields(esc = %req.get_ref().id))]
    async fn delete_esc(&self, req: Request<pb::EscRef>) -> Result<Response<pb::Empty>, Status> {
        let id = req.get_ref().id.clone();
        self.as_user(&req, move |conn, state, caller| {
            escs::delete(conn, state, caller, &id)
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_permissions(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::PermissionList>, Status> {
        let list = self
            .as_user(&req, |conn, _, caller| {
                permissions::list_permissions(conn, caller, None)
            })
            .await?;
        Ok(Response::new(pb::PermissionList {
            permissions: list.into_iter().map(permission).collect(),
        }))
    }

    async fn list_subjects(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::SubjectList>, Status> {
        let list = self
            .as_user(&req, |conn, _, caller| {
                permissions::list_subjects(conn, caller)
            })
            .await?;
        Ok(Response::new(pb::SubjectList {
            subjects: list.into_iter().map(subject).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(subject = %req.get_ref().auth_subject_id, scope = %req.get_ref().scope))]
    async fn grant_permission(
        &self,
        req: Request<pb::GrantPermissionRequest>,
    ) -> Result<Response<pb::Permission>, Status> {
        let r = req.get_ref().clone();
        let grant = NewPermission {
            auth_subject_id: r.auth_subject_id,
            scope: r.scope,
            fatman_family: given(r.fatman_family),
            fatman_name: given(r.fatman_name),
            fatman_version: given(r.fatman_version),
            endpoint: given(r.endpoint),
        };
        let entry = self
            .as_user(&req, move |conn, state, caller| {
                permissions::create_permission(conn, state, caller, &grant)
            })
            .await?;
        Ok(Response::new(permission(entry)))
    }

    #[tracing::instrument(skip_all, fields(permission = %req.get_ref().id))]
    async fn revoke_permission(
        &self,
        req: Request<pb::PermissionRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        let raw = req.get_ref().id.clone();
        self.as_user(&req, move |conn, state, caller| {
            let id = raw.trim().parse::<i64>().map_err(|_| {
                AppError::validation("id", format!("{raw:?} is not a permission id"))
            })?;
            permissions::delete_permission(conn, state, caller, id)
        })
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn list_public_endpoint_requests(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::PublicEndpointRequestList>, Status> {
        let list = self
            .as_user(&req, |conn, _, caller| {
                fatmen::all_public_endpoint_requests(conn, caller)
            })
            .await?;
        Ok(Response::new(pb::PublicEndpointRequestList {
            requests: list.into_iter().map(endpoint_request).collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(request = %req.get_ref().id, active = req.get_ref().active))]
    async fn set_public_endpoint_request(
        &self,
        req: Request<pb::SetPublicEndpointRequestRequest>,
    ) -> Result<Response<pb::PublicEndpointRequest>, Status> {
        let r = req.get_ref().clone();
        let changed = self
            .as_user(&req, move |conn, state, caller| {
                fatmen::set_public_endpoint_request(conn, state, caller, &r.id, r.active)
            })
            .await?;
        Ok(Response::new(endpoint_request(changed)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_show_strings_as_they_are() {
        assert_eq!(label_text(&serde_json::json!("team-a")), "team-a");
        assert_eq!(label_text(&serde_json::json!(3)), "3");
    }

    #[test]
    fn empty_strings_are_absent() {
        assert_eq!(given("  ".into()), None);
        assert_eq!(given(" adder ".into()).as_deref(), Some("adder"));
    }

    #[test]
    fn tails_default_when_zero() {
        assert_eq!(logs_tail(0, 20), 20);
        assert_eq!(logs_tail(5, 20), 5);
    }
}
