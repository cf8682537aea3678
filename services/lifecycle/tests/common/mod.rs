//! Test harness: a real Lifecycle server on a free port, on a fresh SQLite file or a fresh
//! Postgres database, driven through HTTP.
#![allow(dead_code)]

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::Connection;
use lifecycle::config::Config;
use lifecycle::state::AppState;
use racetrack_db::models::Fatman;
use racetrack_db::repo::{fatmen, users};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

pub const ADMIN_PASSWORD: &str = "Adm1n-Correct-Horse";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    /// The internal gRPC API (PUB's), `http://127.0.0.1:PORT`.
    pub grpc_url: String,
    pub state: std::sync::Arc<AppState>,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub auth_key: String,
    _dir: tempfile::TempDir,
    pg_cleanup: Option<(String, String)>,
}

/// Postgres for tests: `TEST_POSTGRES_URL`, by default the role our scripts create.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://racetrack:racetrack@127.0.0.1:5432/postgres".into())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A fresh database on the test Postgres; `None` (skip, with the reason printed) when Postgres is
/// missing outside CI. Under CI a missing Postgres fails the test.
fn fresh_postgres_database() -> Option<(String, String)> {
    let admin_url = postgres_admin_url();
    let mut conn = match diesel::PgConnection::establish(&admin_url) {
        Ok(c) => c,
        Err(e) => {
            if in_ci() {
                panic!("Postgres is required under CI but unreachable at {admin_url}: {e}");
            }
            eprintln!("SKIPPED: Postgres unreachable ({e}); run scripts/test-services.sh");
            return None;
        }
    };
    let name = format!("rt_test_{}", uuid::Uuid::new_v4().simple());
    conn.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    let base = admin_url
        .rsplit_once('/')
        .map(|(b, _)| b)
        .unwrap_or(&admin_url);
    Some((format!("{base}/{name}"), name))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((_, name)) = &self.pg_cleanup {
            if let Ok(mut conn) = diesel::PgConnection::establish(&postgres_admin_url()) {
                let _ = conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, extra_env: &[(&str, &str)]) -> Option<TestApp> {
        Self::spawn_with_targets(backend, extra_env, Vec::new()).await
    }

    /// Like [`TestApp::spawn_with`], with extra infrastructure targets by name (fakes).
    pub async fn spawn_with_targets(
        backend: Backend,
        extra_env: &[(&str, &str)],
        targets: Vec<(
            String,
            std::sync::Arc<dyn racetrack_infra::InfrastructureTarget>,
        )>,
    ) -> Option<TestApp> {
        let _ = racetrack_telemetry::init("lifecycle-test");
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg_cleanup) = match backend {
            Backend::Sqlite => (
                format!("sqlite://{}", dir.path().join("racetrack.db").display()),
                None,
            ),
            Backend::Postgres => {
                let (url, name) = fresh_postgres_database()?;
                (url.clone(), Some((url, name)))
            }
        };
        let auth_key = format!("test-key-{}", uuid::Uuid::new_v4());
        let mut env: Vec<(String, String)> = vec![
            ("HTTP_ADDR".into(), "127.0.0.1:0".into()),
            ("GRPC_ADDR".into(), "127.0.0.1:0".into()),
            ("HTTP_WORKERS".into(), "1".into()),
            ("DATABASE_URL".into(), database_url),
            ("DATABASE_MAX_CONNECTIONS".into(), "4".into()),
            ("AUTH_KEY".into(), auth_key.clone()),
            ("ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
            // Builds started by tests must never reach an image-builder running on this host.
            ("IMAGE_BUILDER_URL".into(), "http://127.0.0.1:9".into()),
        ];
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let config =
            // The last value wins, so a test's `extra_env` overrides the defaults above.
            Config::from_lookup(|k| env.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
                .expect("test config");
        let mut state = tokio::task::spawn_blocking(move || lifecycle::prepare(config))
            .await
            .unwrap()
            .expect("lifecycle prepares");
        if !targets.is_empty() {
            let shared = std::sync::Arc::get_mut(&mut state).expect("state not shared yet");
            shared.targets.extend(targets);
        }
        let running = lifecycle::start(state).expect("lifecycle starts");
        let base = format!("http://{}", running.addr);
        let grpc_url = format!("http://{}", running.grpc_addr);
        tokio::spawn(running.server);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut app = TestApp {
            base,
            grpc_url,
            state: running.state,
            client,
            admin_token: String::new(),
            auth_key,
            _dir: dir,
            pg_cleanup,
        };
        app.admin_token = app.login("admin", ADMIN_PASSWORD).await;
        Some(app)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; returns the status and the JSON body (`Null` when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.header("X-Racetrack-Auth", t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        self.call(Method::DELETE, path, token, None).await
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/users/login",
                None,
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login of {username}: {body}");
        body["token"].as_str().expect("token").to_string()
    }

    /// Registers a user through the API, activates it as admin when `active`, returns its token.
    pub async fn user(&self, username: &str, active: bool) -> String {
        let password = "Secret-Passw0rd-42";
        let (status, body) = self
            .post(
                "/api/v1/users/register",
                None,
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        if active {
            let (status, body) = self
                .call(
                    Method::PATCH,
                    &format!("/api/v1/users/{username}"),
                    Some(&self.admin_token),
                    Some(json!({"is_active": true})),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            self.login(username, password).await
        } else {
            let (status, body) = self
                .get(
                    &format!("/api/v1/users/{username}/profile"),
                    Some(&self.admin_token),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body["token"].as_str().unwrap().to_string()
        }
    }

    pub async fn esc(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .post(
                "/api/v1/escs",
                Some(&self.admin_token),
                json!({"name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .get(
                &format!("/api/v1/auth/token/esc/{id}"),
                Some(&self.admin_token),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (id, body["token"].as_str().unwrap().to_string())
    }

    /// Registers a fatman directly in the database (deploying arrives with the deploy pipeline),
    /// as a deployment would: family + family token, and the deployer's fatman-level permissions.
    /// Returns the family's token.
    pub async fn seed_fatman(
        &self,
        name: &str,
        version: &str,
        deployed_by: Option<&str>,
    ) -> String {
        let state = self.state.clone();
        let (name, version, deployed_by) = (
            name.to_string(),
            version.to_string(),
            deployed_by.map(String::from),
        );
        tokio::task::spawn_blocking(move || {
            seed_fatman_blocking(&state, &name, &version, deployed_by.as_deref())
        })
        .await
        .unwrap()
    }

    /// A stored internal token for `service`, issued as `lifecycle generate-auth` does.
    pub async fn service_token(&self, service: racetrack_model::InternalService) -> String {
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = state.db.get().unwrap();
            lifecycle::app::subjects::issue_service_token(&mut conn, &state.signer, service)
                .unwrap()
                .1
        })
        .await
        .unwrap()
    }

    /// What `generate-auth` used to print: an internal token signed with `AUTH_KEY` and
    /// `full_access`, with no stored row. Lifecycle must refuse it.
    pub fn forged_internal_token(&self, service: &str) -> String {
        use racetrack_auth::token::{Claims, ScopesClaim};
        racetrack_auth::TokenSigner::new(&self.auth_key)
            .sign(&Claims {
                seed: uuid::Uuid::new_v4().to_string(),
                subject: service.to_string(),
                subject_type: "internal".to_string(),
                scopes: ScopesClaim::List(vec!["full_access".to_string()]),
            })
            .unwrap()
    }

    /// A finished deploy of `name` `version` on the docker target (60 s ago), then a finished
    /// build-only run of it (1 s ago): their image names `(deployed, built)`, unique per call
    /// and never pushed (so provisioning either fails naming it).
    pub fn seed_deployed_then_built(&self, name: &str, version: &str) -> (String, String) {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let deployed = format!("127.0.0.1:5000/racetrack-lc-tests/{name}:deployed-{run}");
        let built = format!("127.0.0.1:5000/racetrack-lc-tests/{name}:build-only-{run}");
        let mut conn = self.db();
        let now = racetrack_db::now();
        for (image, target, age) in [(&deployed, Some("docker"), 60), (&built, None, 1)] {
            let at = now - chrono::Duration::seconds(age);
            racetrack_db::repo::deployments::insert(
                &mut conn,
                &racetrack_db::models::Deployment {
                    id: racetrack_db::new_id(),
                    status: racetrack_model::DeploymentStatus::Done,
                    create_time: at,
                    update_time: at,
                    manifest: String::new(),
                    fatman_name: name.into(),
                    fatman_version: version.into(),
                    error: None,
                    deployed_by: Some("admin".into()),
                    build_logs: None,
                    phase: None,
                    image_name: Some(image.clone()),
                    infrastructure_target: target.map(String::from),
                },
            )
            .unwrap();
        }
        (deployed, built)
    }

    pub fn db(&self) -> racetrack_db::PooledConnection {
        self.state.db.get().unwrap()
    }
}

fn seed_fatman_blocking(
    state: &AppState,
    name: &str,
    version: &str,
    deployed_by: Option<&str>,
) -> String {
    use racetrack_db::models::{NewAuthPermission, SubjectOwner};
    use racetrack_db::repo::auth::{self as auth_repo, SubjectKey};
    let mut conn = state.db.get().unwrap();
    let (family, _) = fatmen::get_or_create_family(&mut conn, name).unwrap();
    let subject =
        lifecycle::app::subjects::ensure_family_subject(&mut conn, &state.signer, &family).unwrap();
    let now = racetrack_db::now();
    let manifest = format!(
        "name: {name}\nowner_email: owner@example.com\nversion: {version}\nlang: python3:latest\ngit:\n  remote: https://example.com/repo.git\n"
    );
    let row = Fatman {
        id: racetrack_db::new_id(),
        family_id: family.id.clone(),
        name: name.into(),
        version: version.into(),
        status: racetrack_model::FatmanStatus::Running,
        create_time: now,
        update_time: now,
        manifest: Some(manifest),
        internal_name: Some(racetrack_model::names::resource_name(name, version)),
        error: None,
        image_tag: Some("2026-01-01T000000".into()),
        deployed_by: deployed_by.map(String::from),
        last_call_time: None,
        infrastructure_target: None,
    };
    fatmen::insert(&mut conn, &row).unwrap();
    // As a deployment stores it: the normalised manifest next to the YAML.
    let parsed = racetrack_model::parse_manifest_yaml(row.manifest.as_deref().unwrap()).unwrap();
    let normalised = lifecycle::app::fatmen::normalised_manifest(&parsed);
    fatmen::set_manifest_json(&mut conn, &row.id, Some(&normalised)).unwrap();
    if let Some(username) = deployed_by {
        let user = users::find_by_username(&mut conn, username)
            .unwrap()
            .unwrap();
        let (user_subject, _) =
            auth_repo::get_or_create_subject(&mut conn, SubjectKey::User(user.id)).unwrap();
        for scope in racetrack_auth::permission::DEPLOYER_SCOPES {
            auth_repo::grant(
                &mut conn,
                &NewAuthPermission {
                    auth_subject_id: &user_subject.id,
                    scope: *scope,
                    fatman_family_id: None,
                    fatman_id: Some(&row.id),
                    endpoint: None,
                },
            )
            .unwrap();
        }
    }
    let owner = SubjectOwner::Family { name: name.into() };
    lifecycle::app::subjects::current_token(&mut conn, &state.signer, &subject, &owner).unwrap()
}

/// Runs the test body against SQLite and against Postgres.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:expr) => {
        $crate::both_backends!($name, env = &[], $body);
    };
    ($name:ident, env = $env:expr, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(app) = TestApp::spawn_with(Backend::Sqlite, $env).await {
                    ($body)(app).await;
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = TestApp::spawn_with(Backend::Postgres, $env).await {
                    ($body)(app).await;
                }
            }
        }
    };
}
