//! The portfolio, graph and administration pages through HTTP, against a fake Lifecycle gRPC
//! server (the real one is tested in its own crate): what the browser sees, what reaches
//! Lifecycle, and that forms check CSRF and staff rights.

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use chrono::{Duration, Utc};
use racetrack_model::{AuthScope, FatmanStatus};
use racetrack_proto::dashboard::dashboard_server::{Dashboard, DashboardServer};
use racetrack_proto::dashboard::*;
use regex::Regex;
use tonic::{Request, Response, Status};

type Rpc<T> = Result<Response<T>, Status>;

#[derive(Default)]
struct Seen {
    tokens: Vec<String>,
    manifests: Vec<UpdateManifestRequest>,
    grants: Vec<GrantPermissionRequest>,
    user_updates: Vec<UserUpdate>,
    escs: Vec<String>,
}

#[derive(Clone, Default)]
struct Fake {
    seen: Arc<Mutex<Seen>>,
}

const VALID_YAML: &str = "name: adder\nlang: python3\nowner_email: a@example.com\n";
const VALIDATOR_MESSAGE: &str = "manifest is invalid: field 'lang' is required";

impl Fake {
    /// The caller's token, as every RPC but Register/Login needs it.
    fn token<T>(&self, r: &Request<T>) -> Result<String, Status> {
        let token = r
            .metadata()
            .get("x-racetrack-auth")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| Status::unauthenticated("no token"))?;
        if let Ok(mut seen) = self.seen.lock() {
            seen.tokens.push(token.clone());
        }
        Ok(token)
    }

    fn record(&self, f: impl FnOnce(&mut Seen)) {
        if let Ok(mut seen) = self.seen.lock() {
            f(&mut seen);
        }
    }
}

fn ts(days_ago: i64) -> String {
    (Utc::now() - Duration::days(days_ago)).to_rfc3339()
}

fn fatman(name: &str, version: &str, status: FatmanStatus, last_call: Option<i64>) -> Fatman {
    Fatman {
        id: format!("{name}-{version}"),
        name: name.into(),
        version: version.into(),
        status: status.as_str().into(),
        create_time: ts(20),
        update_time: ts(10),
        last_call_time: last_call.map(ts).unwrap_or_default(),
        deployed_by: "alice@example.com".into(),
        job_type: "python3:2.4.0".into(),
        infrastructure_target: "docker".into(),
        manifest_yaml: VALID_YAML.into(),
        ..Fatman::default()
    }
}

fn fatmen() -> Vec<Fatman> {
    vec![
        fatman("adder", "1.0.0", FatmanStatus::Running, Some(0)),
        fatman("adder", "0.9.0", FatmanStatus::Lost, Some(0)),
        fatman("ghost", "0.0.1", FatmanStatus::Orphaned, Some(0)),
        fatman("billing", "2.0.0", FatmanStatus::Running, None),
        fatman("calc", "3.0.0", FatmanStatus::Error, Some(0)),
    ]
}

fn no<T>() -> Rpc<T> {
    Err(Status::unimplemented("not in this fake"))
}

#[tonic::async_trait]
impl Dashboard for Fake {
    async fn register(&self, _: Request<Credentials>) -> Rpc<UserInfo> {
        no()
    }
    async fn login(&self, r: Request<LoginRequest>) -> Rpc<LoginReply> {
        let r = r.into_inner();
        let is_staff = r.username.starts_with("admin");
        Ok(Response::new(LoginReply {
            user: Some(UserInfo {
                username: r.username.clone(),
                is_active: true,
                is_staff,
                ..UserInfo::default()
            }),
            token: format!("tok-{}", r.username),
        }))
    }
    async fn who_am_i(&self, _: Request<Empty>) -> Rpc<UserInfo> {
        no()
    }
    async fn change_password(&self, _: Request<ChangePasswordRequest>) -> Rpc<Empty> {
        no()
    }
    async fn list_own_tokens(&self, _: Request<Empty>) -> Rpc<TokenList> {
        no()
    }
    async fn add_own_token(&self, _: Request<Empty>) -> Rpc<NewToken> {
        no()
    }
    async fn revoke_own_token(&self, _: Request<TokenRef>) -> Rpc<Empty> {
        no()
    }
    async fn regenerate_own_token(&self, _: Request<Empty>) -> Rpc<NewToken> {
        no()
    }
    async fn list_fatmen(&self, r: Request<Empty>) -> Rpc<FatmanList> {
        self.token(&r)?;
        Ok(Response::new(FatmanList { fatmen: fatmen() }))
    }
    async fn get_fatman(&self, r: Request<FatmanRef>) -> Rpc<Fatman> {
        self.token(&r)?;
        let r = r.into_inner();
        fatmen()
            .into_iter()
            .find(|f| f.name == r.name && f.version == r.version)
            .map(Response::new)
            .ok_or_else(|| Status::not_found("no such fatman"))
    }
    async fn delete_fatman(&self, _: Request<FatmanRef>) -> Rpc<Empty> {
        no()
    }
    async fn redeploy_fatman(&self, _: Request<FatmanRef>) -> Rpc<Deployment> {
        no()
    }
    async fn reprovision_fatman(&self, r: Request<FatmanRef>) -> Rpc<Deployment> {
        self.token(&r)?;
        Ok(Response::new(Deployment {
            id: "dep-7".into(),
            ..Deployment::default()
        }))
    }
    async fn runtime_logs(&self, _: Request<LogsRequest>) -> Rpc<Logs> {
        no()
    }
    async fn build_logs(&self, _: Request<LogsRequest>) -> Rpc<Logs> {
        no()
    }
    type FollowRuntimeLogsStream = tokio_stream::Empty<Result<LogChunk, Status>>;
    async fn follow_runtime_logs(
        &self,
        _: Request<LogsRequest>,
    ) -> Rpc<Self::FollowRuntimeLogsStream> {
        no()
    }
    async fn get_deployment(&self, _: Request<DeploymentRef>) -> Rpc<Deployment> {
        no()
    }
    async fn list_audit_events(&self, _: Request<AuditQuery>) -> Rpc<AuditPage> {
        no()
    }
    async fn get_graph(&self, r: Request<Empty>) -> Rpc<Graph> {
        self.token(&r)?;
        let node = |id: &str, kind: &str, label: &str| GraphNode {
            id: id.into(),
            kind: kind.into(),
            label: label.into(),
            details: [("owner".to_string(), "alice@example.com".to_string())].into(),
        };
        let edge = |from: &str, to: &str, kind: &str| GraphEdge {
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
        };
        Ok(Response::new(Graph {
            nodes: vec![
                node("esc:e1", "esc", "billing-esc"),
                node("family:adder", "family", "adder"),
                node("fatman:adder@1.0.0", "fatman", "adder 1.0.0"),
                node("user:alice", "user", "alice"),
            ],
            edges: vec![
                edge("esc:e1", "family:adder", "calls"),
                edge("family:adder", "fatman:adder@1.0.0", "version"),
                edge("user:alice", "fatman:adder@1.0.0", "owns"),
            ],
        }))
    }
    async fn list_users(&self, r: Request<Empty>) -> Rpc<UserList> {
        self.token(&r)?;
        Ok(Response::new(UserList {
            users: vec![
                UserInfo {
                    username: "admin@example.com".into(),
                    is_active: true,
                    is_staff: true,
                    is_superuser: true,
                    ..UserInfo::default()
                },
                UserInfo {
                    username: "new@example.com".into(),
                    ..UserInfo::default()
                },
            ],
        }))
    }
    async fn update_user(&self, r: Request<UserUpdate>) -> Rpc<UserInfo> {
        self.token(&r)?;
        let u = r.into_inner();
        self.record(|s| s.user_updates.push(u.clone()));
        Ok(Response::new(UserInfo {
            username: u.username,
            ..UserInfo::default()
        }))
    }
    async fn set_user_password(&self, _: Request<SetUserPasswordRequest>) -> Rpc<Empty> {
        no()
    }
    async fn update_manifest(&self, r: Request<UpdateManifestRequest>) -> Rpc<Fatman> {
        self.token(&r)?;
        let r = r.into_inner();
        if !r.manifest_yaml.contains("lang:") {
            return Err(Status::invalid_argument(VALIDATOR_MESSAGE));
        }
        self.record(|s| s.manifests.push(r.clone()));
        let mut f = fatman(&r.name, &r.version, FatmanStatus::Running, None);
        f.manifest_yaml = r.manifest_yaml;
        Ok(Response::new(f))
    }
    async fn list_deployments(&self, r: Request<DeploymentQuery>) -> Rpc<DeploymentList> {
        self.token(&r)?;
        Ok(Response::new(DeploymentList {
            deployments: vec![Deployment {
                id: "dep-1".into(),
                fatman_name: "adder".into(),
                fatman_version: "1.0.0".into(),
                phase: "building image".into(),
                error: "pip failed".into(),
                ..Deployment::default()
            }],
        }))
    }
    async fn list_escs(&self, r: Request<Empty>) -> Rpc<EscList> {
        self.token(&r)?;
        Ok(Response::new(EscList {
            escs: vec![Esc {
                id: "e1".into(),
                name: "billing-esc".into(),
            }],
        }))
    }
    async fn create_esc(&self, r: Request<CreateEscRequest>) -> Rpc<EscWithToken> {
        self.token(&r)?;
        let name = r.into_inner().name;
        if name == "taken" {
            return Err(Status::already_exists("an ESC named taken exists"));
        }
        self.record(|s| s.escs.push(name.clone()));
        Ok(Response::new(EscWithToken {
            esc: Some(Esc {
                id: "e2".into(),
                name,
            }),
            token: "esc-secret-token-2".into(),
        }))
    }
    async fn reset_esc_token(&self, _: Request<EscRef>) -> Rpc<EscWithToken> {
        no()
    }
    async fn delete_esc(&self, _: Request<EscRef>) -> Rpc<Empty> {
        no()
    }
    async fn list_permissions(&self, r: Request<Empty>) -> Rpc<PermissionList> {
        self.token(&r)?;
        Ok(Response::new(PermissionList {
            permissions: vec![Permission {
                id: "p1".into(),
                subject: "user alice@example.com".into(),
                scope: AuthScope::CallFatman.as_str().into(),
                ..Permission::default()
            }],
        }))
    }
    async fn list_subjects(&self, r: Request<Empty>) -> Rpc<SubjectList> {
        self.token(&r)?;
        Ok(Response::new(SubjectList {
            subjects: vec![
                Subject {
                    id: "s-user".into(),
                    kind: "user".into(),
                    name: "alice@example.com".into(),
                    active: true,
                },
                Subject {
                    id: "s-esc".into(),
                    kind: "esc".into(),
                    name: "billing-esc".into(),
                    active: true,
                },
            ],
        }))
    }
    async fn grant_permission(&self, r: Request<GrantPermissionRequest>) -> Rpc<Permission> {
        self.token(&r)?;
        let g = r.into_inner();
        if g.fatman_family == "nope" {
            return Err(Status::not_found("no fatman family nope"));
        }
        self.record(|s| s.grants.push(g.clone()));
        Ok(Response::new(Permission {
            id: "p2".into(),
            subject: "esc billing-esc".into(),
            scope: g.scope,
            ..Permission::default()
        }))
    }
    async fn revoke_permission(&self, _: Request<PermissionRef>) -> Rpc<Empty> {
        no()
    }
    async fn list_public_endpoint_requests(
        &self,
        _: Request<Empty>,
    ) -> Rpc<PublicEndpointRequestList> {
        no()
    }
    async fn set_public_endpoint_request(
        &self,
        _: Request<SetPublicEndpointRequestRequest>,
    ) -> Rpc<PublicEndpointRequest> {
        no()
    }
}

/// A fake Lifecycle and a dashboard talking to it.
async fn start() -> (String, Arc<Mutex<Seen>>) {
    let fake = Fake::default();
    let seen = fake.seen.clone();
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc_addr = grpc.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(DashboardServer::new(fake))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc)),
    );
    let grpc_url = format!("http://{grpc_addr}");
    let config = dashboard::config::Config::from_lookup(|k| match k {
        "SECRET_KEY" => Some("0123456789abcdef0123456789abcdef-test".into()),
        "LIFECYCLE_GRPC_URL" => Some(grpc_url.clone()),
        _ => None,
    })
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = dashboard::server(config, listener).unwrap();
    tokio::spawn(server);
    (format!("http://{addr}"), seen)
}

/// A browser: keeps cookies, follows no redirects.
struct Browser {
    base: String,
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

struct Page {
    status: u16,
    location: String,
    body: String,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            base: base.to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn finish(&mut self, resp: reqwest::Response) -> Page {
        for c in resp.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap_or_default();
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || c.contains("Max-Age=0") {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
        }
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.text().await.unwrap_or_default();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    /// The CSRF token a page carries (form field or meta tag).
    fn csrf(body: &str) -> String {
        let re = Regex::new(r#"(?:name="csrf_token" value|name="csrf-token" content)="([^"]+)""#)
            .unwrap();
        re.captures(body)
            .map(|c| c[1].to_string())
            .unwrap_or_default()
    }

    async fn sign_in(base: &str, username: &str) -> (Browser, String) {
        let mut b = Browser::new(base);
        let form = b.get("/dashboard/accounts/login").await;
        let csrf = Browser::csrf(&form.body);
        let done = b
            .post(
                "/dashboard/accounts/login",
                &[
                    ("username", username),
                    ("password", "pw"),
                    ("csrf_token", &csrf),
                    ("next", "/dashboard/"),
                ],
            )
            .await;
        assert_eq!(done.status, 303, "{}", done.body);
        let page = b.get("/dashboard/portfolio").await;
        let csrf = Browser::csrf(&page.body);
        assert!(!csrf.is_empty());
        (b, csrf)
    }
}

fn count(body: &str, needle: &str) -> usize {
    body.matches(needle).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portfolio_filters_sorts_and_reports_bad_filters() {
    let (base, seen) = start().await;
    let (mut b, _) = Browser::sign_in(&base, "bob@example.com").await;

    let all = b.get("/dashboard/portfolio").await;
    assert_eq!(all.status, 200);
    assert_eq!(count(&all.body, r#"class="portfolio-row""#), 5);
    assert!(all
        .body
        .contains(r#"<strong id="portfolio-count">5</strong>"#));
    // best candidates first: orphaned (100), lost (50 + 1 newer version), error (20)
    let order: Vec<String> = Regex::new(r#"data-name="([^"]+)" data-version="([^"]+)""#)
        .unwrap()
        .captures_iter(&all.body)
        .map(|c| format!("{}@{}", &c[1], &c[2]))
        .collect();
    assert_eq!(
        order,
        [
            "ghost@0.0.1",
            "adder@0.9.0",
            "calc@3.0.0",
            "billing@2.0.0",
            "adder@1.0.0"
        ]
    );
    assert!(all
        .body
        .contains(r#"data-action-url="/dashboard/api/delete-fatman/ghost/0.0.1""#));
    assert!(seen
        .lock()
        .unwrap()
        .tokens
        .iter()
        .all(|t| t == "tok-bob@example.com"));

    let lost = b
        .get("/dashboard/portfolio?f2=lost%20%7C%7C%20orphaned&f0=&sort=0")
        .await;
    assert!(lost
        .body
        .contains(r#"<strong id="portfolio-count">2</strong>"#));
    let first = lost.body.find(r#"data-name="adder""#).unwrap();
    let second = lost.body.find(r#"data-name="ghost""#).unwrap();
    assert!(first < second, "sorted by name ascending");
    assert!(
        lost.body.contains(r#"value="lost || orphaned""#),
        "the filter box keeps it"
    );

    let paged = b.get("/dashboard/portfolio?f8=%3E%3D1&page_size=10").await;
    assert!(paged
        .body
        .contains(r#"<strong id="portfolio-count">4</strong>"#));

    let bad = b.get("/dashboard/portfolio?f2=rgx:(&f0=adder").await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains(r#"class="alert error""#), "{}", bad.body);
    assert!(bad
        .body
        .contains("Filter of column &quot;Status&quot;: invalid regular expression"));
    assert!(bad
        .body
        .contains(r#"<strong id="portfolio-count">2</strong>"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_page_has_data_and_the_accessible_twin() {
    let (base, _) = start().await;
    let (mut b, _) = Browser::sign_in(&base, "bob@example.com").await;
    let page = b.get("/dashboard/graph").await;
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains(r#"<script type="application/json" id="graph-data">"#));
    assert_eq!(count(&page.body, "<li data-node-id="), 4);
    assert!(page.body.contains(
        "<pre id=\"graph-visible\">esc:e1\nfamily:adder\nfatman:adder@1.0.0\nuser:alice</pre>"
    ));
    assert!(page
        .body
        .contains(r#""family:adder":["esc:e1","fatman:adder@1.0.0"]"#));
    assert!(page.body.contains("/dashboard/static/graph.js"));
    let js = b.get("/dashboard/static/graph.js").await;
    assert!(js.body.contains("graph-visible"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn administration_is_for_staff_only() {
    let (base, _) = start().await;
    let (mut b, csrf) = Browser::sign_in(&base, "bob@example.com").await;
    for path in [
        "/dashboard/administration",
        "/dashboard/administration/users",
        "/dashboard/administration/escs",
        "/dashboard/administration/fatmen/adder/1.0.0/manifest",
    ] {
        assert_eq!(b.get(path).await.status, 403, "{path}");
    }
    let post = b
        .post(
            "/dashboard/administration/escs",
            &[("name", "x"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(post.status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_editor_shows_the_validator_and_keeps_the_yaml() {
    let (base, seen) = start().await;
    let (mut b, csrf) = Browser::sign_in(&base, "admin@example.com").await;
    let index = b.get("/dashboard/administration").await;
    assert_eq!(index.status, 200);
    assert!(index
        .body
        .contains(r#"href="/dashboard/administration/fatmen/adder/1.0.0/manifest""#));
    let url = "/dashboard/administration/fatmen/adder/1.0.0/manifest";
    let form = b.get(url).await;
    assert!(form
        .body
        .contains(r#"<textarea id="manifest-yaml" name="manifest_yaml""#));
    assert!(form.body.contains("owner_email: a@example.com"));
    assert!(!form.body.contains(r#"class="redeploy""#));

    let typed = "name: adder\nowner_email: <b>@example.com\n";
    let bad = b
        .post(url, &[("manifest_yaml", typed), ("csrf_token", &csrf)])
        .await;
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains(r#"class="alert error""#));
    assert!(bad.body.contains(VALIDATOR_MESSAGE), "{}", bad.body);
    assert!(
        bad.body.contains("owner_email: &lt;b&gt;@example.com"),
        "typed YAML kept"
    );
    assert!(seen.lock().unwrap().manifests.is_empty());

    let no_csrf = b.post(url, &[("manifest_yaml", VALID_YAML)]).await;
    assert_eq!(no_csrf.status, 403);

    let good = b
        .post(url, &[("manifest_yaml", VALID_YAML), ("csrf_token", &csrf)])
        .await;
    assert_eq!(good.status, 200);
    assert!(good.body.contains(r#"class="alert success""#));
    assert!(good
        .body
        .contains(r#"data-action-url="/dashboard/api/redeploy-fatman/adder/1.0.0""#));
    assert!(good.body.contains(r#"class="redeploy""#));
    let saved = seen.lock().unwrap().manifests.clone();
    assert_eq!(saved.len(), 1);
    assert_eq!(saved[0].manifest_yaml, VALID_YAML);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escs_users_permissions_and_lost_fatmen() {
    let (base, seen) = start().await;
    let (mut b, csrf) = Browser::sign_in(&base, "admin@example.com").await;

    // ESCs: a new token shown once; a refused name stays in the box.
    let list = b.get("/dashboard/administration/escs").await;
    assert!(list.body.contains(r#"<tr class="esc" data-esc-id="e1">"#));
    let created = b
        .post(
            "/dashboard/administration/escs",
            &[("name", "payments"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(created.status, 200);
    assert!(created
        .body
        .contains(r#"<code id="new-esc-token">esc-secret-token-2</code>"#));
    let again = b.get("/dashboard/administration/escs").await;
    assert!(!again.body.contains("esc-secret-token-2"), "shown once");
    let taken = b
        .post(
            "/dashboard/administration/escs",
            &[("name", "taken"), ("csrf_token", &csrf)],
        )
        .await;
    assert!(taken.body.contains("an ESC named taken exists"));
    assert!(taken.body.contains(r#"name="name" value="taken""#));
    assert_eq!(seen.lock().unwrap().escs, ["payments"]);

    // Users: activating goes to Lifecycle and comes back with a flash.
    let users = b.get("/dashboard/administration/users").await;
    assert!(users
        .body
        .contains(r#"<tr class="user" data-username="new@example.com">"#));
    assert_eq!(count(&users.body, r#"class="activate""#), 1);
    let done = b
        .post(
            "/dashboard/administration/users/update",
            &[
                ("username", "new@example.com"),
                ("is_active", "true"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location, "/dashboard/administration/users");
    let after = b.get("/dashboard/administration/users").await;
    assert!(after.body.contains("User new@example.com: activated"));
    assert_eq!(seen.lock().unwrap().user_updates[0].is_active, Some(true));

    // Permissions: subjects and scopes offered; a refusal keeps the typed fields.
    let perms = b.get("/dashboard/administration/permissions").await;
    assert!(perms
        .body
        .contains(r#"<option value="s-esc">esc: billing-esc</option>"#));
    assert_eq!(count(&perms.body, r#"<tr class="permission""#), 1);
    let call = AuthScope::CallFatman.as_str();
    let refused = b
        .post(
            "/dashboard/administration/permissions",
            &[
                ("auth_subject_id", "s-esc"),
                ("scope", call),
                ("fatman_family", "nope"),
                ("endpoint", "/api/v1/perform"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("no fatman family nope"));
    assert!(refused
        .body
        .contains(r#"<option value="s-esc" selected>esc: billing-esc</option>"#));
    assert!(refused
        .body
        .contains(r#"name="endpoint" value="/api/v1/perform""#));
    let granted = b
        .post(
            "/dashboard/administration/permissions",
            &[
                ("auth_subject_id", "s-esc"),
                ("scope", call),
                ("fatman_family", "adder"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(granted.status, 303);
    let grants = seen.lock().unwrap().grants.clone();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].scope, call);
    assert_eq!(grants[0].fatman_family, "adder");

    // Deployments link to build logs; lost and orphaned fatmen only.
    let deployments = b.get("/dashboard/administration/deployments").await;
    assert!(deployments
        .body
        .contains(r#"href="/dashboard/fatman/build-logs/adder/1.0.0""#));
    let lost = b.get("/dashboard/administration/lost").await;
    assert_eq!(count(&lost.body, r#"<tr class="lost-fatman""#), 2);
    let again = b
        .post(
            "/dashboard/administration/lost/adder/0.9.0/reprovision",
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(again.status, 303);
    let lost = b.get("/dashboard/administration/lost").await;
    assert!(lost.body.contains("deployment dep-7"));
}
