//! PUB: the authenticating proxy in front of every fatman. Config → wiring (here) → the proxy.

pub mod access;
pub mod cache;
pub mod config;
pub mod error;
pub mod metrics;
pub mod path;
pub mod proxy;
pub mod server;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use racetrack_events::Notification;

use crate::config::Config;
use crate::metrics::PubMetrics;
use crate::proxy::Pub;

/// A bound, serving PUB (on the current Tokio runtime).
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<Pub>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn start(config: Config) -> anyhow::Result<Running> {
    if !config.auth_required {
        tracing::warn!("AUTH_REQUIRED is false: every caller may call every fatman");
    }
    let tls = match &config.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            racetrack_tls::server_config(cert, key, &[b"http/1.1"])?,
        )),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let metrics = Arc::new(PubMetrics::new());
    let app = Arc::new(Pub::new(config, metrics)?);
    if let Some(url) = app.config.redis_url.clone() {
        let mut rx = racetrack_events::subscribe(&url)?;
        let app = app.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                match &n {
                    Notification::Connected => {
                        app.redis_connected.store(true, Ordering::Relaxed);
                        tracing::info!("listening for invalidations on redis");
                    }
                    Notification::Disconnected => {
                        app.redis_connected.store(false, Ordering::Relaxed)
                    }
                    Notification::Event(_) => {}
                }
                app.access.apply(&n);
            }
        });
    } else {
        tracing::warn!(ttl = ?app.config.cache_ttl, "REDIS_URL unset: cached decisions live until their TTL");
    }
    tracing::info!(%addr, config = ?app.config, "pub listening");
    let task = tokio::spawn(server::serve(listener, app.clone(), tls));
    Ok(Running { addr, app, task })
}
