//! A stand-in for Lifecycle's `Dashboard` gRPC service, on a real port, for the pages' tests:
//! fatmen in memory, canned logs and audit events, and the token every call came with.

use std::sync::{Arc, Mutex};

use racetrack_proto::dashboard as pb;
use racetrack_proto::dashboard::dashboard_server::{Dashboard, DashboardServer};
use tonic::{Request, Response, Status};

/// The token the fake accepts; anything else is UNAUTHENTICATED.
pub const TOKEN: &str = "tok-alice";

#[derive(Default)]
pub struct Shared {
    pub fatmen: Mutex<Vec<pb::Fatman>>,
    /// `name/version` of every delete, redeploy and reprovision received.
    pub actions: Mutex<Vec<String>>,
    /// Every audit query received.
    pub audit_queries: Mutex<Vec<pb::AuditQuery>>,
}

pub struct Fake {
    pub shared: Arc<Shared>,
}

fn check<T>(request: &Request<T>) -> Result<(), Status> {
    match request.metadata().get("x-racetrack-auth") {
        Some(v) if v.to_str().ok() == Some(TOKEN) => Ok(()),
        _ => Err(Status::unauthenticated("invalid token")),
    }
}

pub fn fatman(name: &str, version: &str, status: &str) -> pb::Fatman {
    pb::Fatman {
        id: format!("{name}-{version}"),
        name: name.into(),
        version: version.into(),
        status: status.into(),
        update_time: "2026-12-01T10:00:00Z".into(),
        create_time: "2026-11-01T10:00:00Z".into(),
        deployed_by: "alice@example.com".into(),
        owner_email: "owner@example.com".into(),
        manifest_yaml: format!("name: {name}\nowner_email: owner@example.com\n"),
        ..Default::default()
    }
}

fn deployment(id: &str, status: &str, r: &pb::FatmanRef) -> pb::Deployment {
    pb::Deployment {
        id: id.into(),
        status: status.into(),
        phase: "building image".into(),
        fatman_name: r.name.clone(),
        fatman_version: r.version.clone(),
        ..Default::default()
    }
}

type LogStream = tokio_stream::Iter<std::vec::IntoIter<Result<pb::LogChunk, Status>>>;

/// The trait's methods the pages use, and every other one answering UNIMPLEMENTED.
macro_rules! fake_impl {
    (
        { $($used:tt)* }
        $($name:ident($req:ident) -> $resp:ident;)*
    ) => {
        #[tonic::async_trait]
        impl Dashboard for Fake {
            $($used)*
            $(
                async fn $name(&self, _: Request<pb::$req>) -> Result<Response<pb::$resp>, Status> {
                    Err(Status::unimplemented(stringify!($name)))
                }
            )*
        }
    };
}

fake_impl! {
    {
        type FollowRuntimeLogsStream = LogStream;

        async fn list_fatmen(&self, r: Request<pb::Empty>) -> Result<Response<pb::FatmanList>, Status> {
            check(&r)?;
            let fatmen = self.shared.fatmen.lock().unwrap().clone();
            Ok(Response::new(pb::FatmanList { fatmen }))
        }

        async fn delete_fatman(&self, r: Request<pb::FatmanRef>) -> Result<Response<pb::Empty>, Status> {
            check(&r)?;
            let r = r.into_inner();
            self.shared.actions.lock().unwrap().push(format!("delete {}/{}", r.name, r.version));
            let mut list = self.shared.fatmen.lock().unwrap();
            let before = list.len();
            list.retain(|f| !(f.name == r.name && f.version == r.version));
            if list.len() == before {
                return Err(Status::not_found(format!("fatman {} {} not found", r.name, r.version)));
            }
            Ok(Response::new(pb::Empty {}))
        }

        async fn redeploy_fatman(&self, r: Request<pb::FatmanRef>) -> Result<Response<pb::Deployment>, Status> {
            check(&r)?;
            let r = r.into_inner();
            self.shared.actions.lock().unwrap().push(format!("redeploy {}/{}", r.name, r.version));
            Ok(Response::new(deployment("dep-1", "in_progress", &r)))
        }

        async fn reprovision_fatman(&self, r: Request<pb::FatmanRef>) -> Result<Response<pb::Deployment>, Status> {
            check(&r)?;
            let r = r.into_inner();
            self.shared.actions.lock().unwrap().push(format!("reprovision {}/{}", r.name, r.version));
            Ok(Response::new(deployment("dep-2", "in_progress", &r)))
        }

        async fn get_deployment(&self, r: Request<pb::DeploymentRef>) -> Result<Response<pb::Deployment>, Status> {
            check(&r)?;
            let id = r.into_inner().id;
            if id != "dep-1" {
                return Err(Status::not_found("no such deployment"));
            }
            let target = pb::FatmanRef { name: "adder".into(), version: "1.0.0".into() };
            Ok(Response::new(deployment(&id, "done", &target)))
        }

        async fn runtime_logs(&self, r: Request<pb::LogsRequest>) -> Result<Response<pb::Logs>, Status> {
            check(&r)?;
            let r = r.into_inner();
            Ok(Response::new(pb::Logs {
                logs: format!("\x1b[32mINFO\x1b[0m runtime of {} {} tail={}\n", r.name, r.version, r.tail),
            }))
        }

        async fn build_logs(&self, r: Request<pb::LogsRequest>) -> Result<Response<pb::Logs>, Status> {
            check(&r)?;
            let r = r.into_inner();
            Ok(Response::new(pb::Logs {
                logs: format!("\x1b[1;34mStep 1/2\x1b[0m build of {} tail={}\n", r.name, r.tail),
            }))
        }

        async fn follow_runtime_logs(&self, r: Request<pb::LogsRequest>) -> Result<Response<LogStream>, Status> {
            check(&r)?;
            let r = r.into_inner();
            let mut items = vec![
                Ok(pb::LogChunk { lines: format!("\x1b[31mfirst\x1b[0m tail={}\n", r.tail) }),
                Ok(pb::LogChunk { lines: "second\nthird\n".into() }),
            ];
            if r.name == "broken" {
                items.push(Err(Status::not_found("the fatman's container is gone")));
            }
            Ok(Response::new(tokio_stream::iter(items)))
        }

        async fn list_audit_events(&self, r: Request<pb::AuditQuery>) -> Result<Response<pb::AuditPage>, Status> {
            check(&r)?;
            let q = r.into_inner();
            self.shared.audit_queries.lock().unwrap().push(q.clone());
            let event = |kind: &str| pb::AuditEvent {
                id: kind.into(),
                timestamp: "2026-12-01T10:00:00Z".into(),
                event_type: kind.into(),
                username_executor: "bob@example.com".into(),
                username_subject: "alice@example.com".into(),
                fatman_name: "adder".into(),
                fatman_version: "1.0.0".into(),
                properties: "{}".into(),
            };
            Ok(Response::new(pb::AuditPage {
                events: vec![event("fatman_redeployed"), event("fatman_from_the_future")],
                page: q.page.max(1),
                page_size: 50,
                total: 120,
            }))
        }
    }
    register(Credentials) -> UserInfo;
    login(LoginRequest) -> LoginReply;
    who_am_i(Empty) -> UserInfo;
    change_password(ChangePasswordRequest) -> Empty;
    list_own_tokens(Empty) -> TokenList;
    add_own_token(Empty) -> NewToken;
    revoke_own_token(TokenRef) -> Empty;
    regenerate_own_token(Empty) -> NewToken;
    get_fatman(FatmanRef) -> Fatman;
    get_graph(Empty) -> Graph;
    list_users(Empty) -> UserList;
    update_user(UserUpdate) -> UserInfo;
    set_user_password(SetUserPasswordRequest) -> Empty;
    update_manifest(UpdateManifestRequest) -> Fatman;
    list_deployments(DeploymentQuery) -> DeploymentList;
    list_escs(Empty) -> EscList;
    create_esc(CreateEscRequest) -> EscWithToken;
    reset_esc_token(EscRef) -> EscWithToken;
    delete_esc(EscRef) -> Empty;
    list_permissions(Empty) -> PermissionList;
    list_subjects(Empty) -> SubjectList;
    grant_permission(GrantPermissionRequest) -> Permission;
    revoke_permission(PermissionRef) -> Empty;
    list_public_endpoint_requests(Empty) -> PublicEndpointRequestList;
    set_public_endpoint_request(SetPublicEndpointRequestRequest) -> PublicEndpointRequest;
}

/// Serves the fake on a free port of 127.0.0.1; answers its URL and its state.
pub async fn start(fatmen: Vec<pb::Fatman>) -> (String, Arc<Shared>) {
    let shared = Arc::new(Shared {
        fatmen: Mutex::new(fatmen),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = DashboardServer::new(Fake {
        shared: shared.clone(),
    });
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (format!("http://{addr}"), shared)
}
