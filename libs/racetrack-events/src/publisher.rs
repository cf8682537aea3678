//! Fire-and-forget publishing from any thread (Lifecycle publishes from its blocking DB closures).
//!
//! Events go into a bounded queue drained by one background thread that owns a small Tokio
//! runtime and the `redis` crate's reconnecting [`ConnectionManager`]: callers never wait on
//! Redis, whichever runtime (or none) they run on.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::{redact, Event, EventError, RedisAddr, CHANNEL};

/// Events waiting for Redis beyond this are dropped (and logged): the cache TTL still bounds
/// staleness, and a stalled Redis must not grow Lifecycle's memory.
const QUEUE: usize = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes [`Event`]s on [`CHANNEL`] from a background thread. Cloning is cheap.
#[derive(Clone)]
pub struct Publisher {
    tx: Option<mpsc::Sender<Event>>,
}

impl Publisher {
    /// A publisher that drops everything (no Redis configured).
    pub fn disabled() -> Publisher {
        Publisher { tx: None }
    }

    /// `None` → [`Publisher::disabled`]. The connection is made lazily and re-made after errors.
    pub fn new(redis_url: Option<&str>) -> Result<Publisher, EventError> {
        let Some(url) = redis_url else {
            return Ok(Publisher::disabled());
        };
        let client = client(&RedisAddr::parse(url)?)?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let shown = redact(url);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("redis-publisher".into())
            .spawn(move || runtime.block_on(run(client, shown, rx)))?;
        Ok(Publisher { tx: Some(tx) })
    }

    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    pub fn publish(&self, event: Event) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(e)) => {
                tracing::warn!(event = ?e, "redis publish queue full; event dropped (cache TTL applies)")
            }
            Err(TrySendError::Closed(_)) => {
                tracing::warn!("redis publisher thread is gone; event dropped")
            }
        }
    }
}

/// Connects once and sends `PING`: a startup or readiness check of a `REDIS_URL` (credentials,
/// TLS) with the same client the publisher uses.
pub async fn ping(redis_url: &str) -> Result<(), EventError> {
    let client = client(&RedisAddr::parse(redis_url)?)?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(IO_TIMEOUT))
        .set_response_timeout(Some(IO_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    Ok(())
}

pub(crate) fn client(addr: &RedisAddr) -> Result<redis::Client, EventError> {
    if addr.tls {
        crate::subscriber::install_ring_provider();
    }
    Ok(redis::Client::open(addr.connection_info().clone())?)
}

async fn run(client: redis::Client, shown: String, mut rx: mpsc::Receiver<Event>) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(IO_TIMEOUT))
        .set_response_timeout(Some(IO_TIMEOUT))
        // Reconnects are retried per command; a Redis that stays down costs each queued event
        // at most a few seconds, after which it is dropped and logged.
        .set_number_of_retries(1)
        .set_max_delay(IO_TIMEOUT);
    let manager = match ConnectionManager::new_lazy_with_config(client, config) {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(redis = %shown, error = %e, "redis publisher cannot start; events will be dropped");
            // Keep draining so publishers never see a closed queue and warn on every event.
            while rx.recv().await.is_some() {}
            return;
        }
    };
    while let Some(event) = rx.recv().await {
        let payload = event.encode();
        // One retry covers a Redis restart between events: the manager reconnects after the
        // first failure.
        for attempt in 0..2 {
            let mut conn = manager.clone();
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(&payload)
                .query_async(&mut conn)
                .await;
            match sent {
                Ok(receivers) => {
                    tracing::debug!(?event, receivers, "published invalidation");
                    break;
                }
                Err(e) if attempt == 1 => {
                    tracing::warn!(redis = %shown, error = %e, "redis publish failed; event dropped (cache TTL applies)");
                }
                Err(_) => {}
            }
        }
    }
}
