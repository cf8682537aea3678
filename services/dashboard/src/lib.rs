//! Racetrack dashboard and admin panel: server-rendered pages (maud) over Lifecycle's gRPC API,
//! called with the signed-in user's own token (docs/architecture.md, "The dashboard").
//!
//! Layers: `config` → `server` (wiring) → `pages/*` (HTTP adapters) over `lifecycle` (the one
//! client module) and `portfolio` (the portfolio's rules, free of HTTP).

pub mod assets;
pub mod config;
pub mod error;
pub mod layout;
pub mod lifecycle;
pub mod live;
pub mod pages;
pub mod portfolio;
pub mod security;
pub mod session;
pub mod time;

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::config::{CookieContentSecurity, PersistentSession};
use actix_session::storage::CookieSessionStore;
use actix_session::SessionMiddleware;
use actix_web::cookie::{time as cookie_time, Key, SameSite};
use actix_web::dev::Server;
use actix_web::{web, App, HttpResponse, HttpServer};
use racetrack_telemetry::{metrics_handler, Metrics, RequestTelemetry};

use crate::config::Config;
use crate::layout::Ui;
use crate::lifecycle::Lifecycle;
use crate::live::Live;

/// Everything a request handler may use.
pub struct AppState {
    pub config: Config,
    pub lifecycle: Lifecycle,
    pub ui: Ui,
    pub live: Live,
}

pub type State = web::Data<AppState>;

impl AppState {
    pub fn new(config: Config) -> Result<AppState, String> {
        let lifecycle = Lifecycle::new(&config.lifecycle_grpc_url, config.lifecycle_timeout)?;
        let live = Live::start(config.redis_url.as_deref())?;
        let ui = Ui {
            site_name: config.site_name.clone(),
            git_version: config.git_version.clone(),
            external_pub_url: config.external_pub_url.clone(),
        };
        Ok(AppState {
            config,
            lifecycle,
            ui,
            live,
        })
    }
}

/// The HTTP server on an already bound listener (must run inside a Tokio runtime).
pub fn server(config: Config, listener: TcpListener) -> Result<Server, String> {
    let key = Key::derive_from(&config.secret_key);
    let ttl = i64::try_from(config.session_ttl.as_secs()).unwrap_or(i64::MAX);
    let secure = config.cookie_secure;
    let state = web::Data::new(AppState::new(config)?);
    let metrics = Arc::new(Metrics::new("dashboard"));
    let server = HttpServer::new(move || {
        let sessions = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_name(session::SESSION_COOKIE.into())
            .cookie_http_only(true)
            .cookie_secure(secure)
            .cookie_same_site(SameSite::Lax)
            .cookie_content_security(CookieContentSecurity::Private)
            .session_lifecycle(
                PersistentSession::default().session_ttl(cookie_time::Duration::seconds(ttl)),
            )
            .build();
        App::new()
            .wrap(security::headers())
            .wrap(sessions)
            .wrap(RequestTelemetry::new(metrics.clone()))
            .app_data(state.clone())
            .app_data(web::Data::from(metrics.clone()))
            .app_data(web::FormConfig::default().limit(1 << 20))
            .route("/", web::get().to(to_dashboard))
            .route("/live", web::get().to(live))
            .route("/ready", web::get().to(ready))
            .route("/metrics", web::get().to(metrics_handler))
            .service(
                web::scope("/dashboard")
                    .route("/live", web::get().to(live))
                    .route("/ready", web::get().to(ready))
                    .configure(assets::routes)
                    .configure(pages::routes),
            )
    })
    .listen(listener)
    .map_err(|e| format!("can't serve: {e}"))?
    .run();
    Ok(server)
}

async fn to_dashboard() -> HttpResponse {
    HttpResponse::Found()
        .insert_header(("Location", "/dashboard/"))
        .finish()
}

async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "live": true }))
}

async fn ready() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "ready": true }))
}
