use std::sync::Arc;
use std::time::Duration;

use racetrack_auth::throttle::Throttle;
use racetrack_auth::TokenSigner;
use racetrack_db::Database;
use racetrack_infra::InfrastructureTarget;
use racetrack_telemetry::Metrics;

use crate::config::Config;

/// Everything handlers share; built once at start.
pub struct AppState {
    pub config: Config,
    pub db: Database,
    pub signer: TokenSigner,
    pub login_user_throttle: Throttle,
    pub login_address_throttle: Throttle,
    pub metrics: Arc<Metrics>,
    pub db_connected: prometheus::IntGauge,
    /// Infrastructure targets by name.
    pub targets: std::collections::BTreeMap<String, Arc<dyn InfrastructureTarget>>,
    /// Enabled targets that could not be set up at start, by name, with the reason: deploys to
    /// them fail saying so.
    pub unavailable_targets: std::collections::BTreeMap<String, String>,
    pub requested_deployments: prometheus::IntCounter,
    pub deployed_fatmen: prometheus::IntCounter,
    /// Tells PUB replicas which cached decisions a change made stale.
    pub events: racetrack_events::Publisher,
}

impl AppState {
    #[allow(
        clippy::expect_used,
        reason = "static metric definitions on a fresh registry: a failure is a programming error every test run catches"
    )]
    pub fn new(config: Config, db: Database, auth_key: &str, metrics: Arc<Metrics>) -> AppState {
        let db_connected = prometheus::IntGauge::new(
            "lifecycle_database_connected",
            "1 when Lifecycle can query its database",
        )
        .expect("static metric definition is valid");
        let _ = metrics.registry().register(Box::new(db_connected.clone()));
        let counter = |name: &str, help: &str| {
            let c =
                prometheus::IntCounter::new(name, help).expect("static metric definition is valid");
            let _ = metrics.registry().register(Box::new(c.clone()));
            c
        };
        let requested_deployments = counter(
            "requested_fatman_deployments_total",
            "Deployments requested",
        );
        let deployed_fatmen = counter("deployed_fatman_total", "Fatmen deployed successfully");
        AppState {
            login_user_throttle: Throttle::new(
                config.login_max_failures_per_user,
                Duration::from_secs(60),
            ),
            login_address_throttle: Throttle::new(
                config.login_max_failures_per_address,
                Duration::from_secs(60),
            ),
            signer: TokenSigner::new(auth_key),
            config,
            db,
            metrics,
            db_connected,
            targets: Default::default(),
            unavailable_targets: Default::default(),
            requested_deployments,
            deployed_fatmen,
            events: racetrack_events::Publisher::disabled(),
        }
    }
}
