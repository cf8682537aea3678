use std::sync::Arc;
use std::time::Duration;

use racetrack_auth::throttle::Throttle;
use racetrack_auth::TokenSigner;
use racetrack_db::Database;
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
}

impl AppState {
    pub fn new(config: Config, db: Database, auth_key: &str, metrics: Arc<Metrics>) -> AppState {
        let db_connected = prometheus::IntGauge::new(
            "lifecycle_database_connected",
            "1 when Lifecycle can query its database",
        )
        .expect("static metric definition is valid");
        let _ = metrics.registry().register(Box::new(db_connected.clone()));
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
        }
    }
}
