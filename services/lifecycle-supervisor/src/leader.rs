//! Leadership among supervisor replicas: one acts, the others wait and keep serving probes.
//!
//! Lifecycle grants the lease (a row with holder and expiry in its database; `AcquireLease` of
//! the `Supervision` API). This module keeps asking for it: the leader renews every third of the
//! lease, a follower retries every `LEASE_RETRY_SECS`. A leader acts only for two thirds of the
//! lease counted from when it *sent* its last successful renewal, so a replica cut off from
//! Lifecycle stops acting before the lease expires and another replica can take over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Supervisor;

/// The lease's name: one leader per Lifecycle (per registry database).
pub const LEASE_NAME: &str = "lifecycle-supervisor";

/// This replica's view of its leadership.
#[derive(Debug)]
pub struct Leadership {
    holder: String,
    leader: AtomicBool,
    valid_until: Mutex<Option<Instant>>,
}

impl Leadership {
    pub fn new(holder: String) -> Leadership {
        Leadership {
            holder,
            leader: AtomicBool::new(false),
            valid_until: Mutex::new(None),
        }
    }

    /// `host:pid:random`: who holds the lease, in logs and `/health`.
    pub fn new_holder_id() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("{host}:{}:{}", std::process::id(), &random[..8])
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether this replica may act right now.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
            && self
                .valid_until
                .lock()
                .map(|v| v.is_some_and(|until| Instant::now() < until))
                .unwrap_or(false)
    }

    /// Records the outcome of a lease attempt (the leadership loop; tests).
    pub fn set(&self, leader: bool, valid_for: Duration) {
        if let Ok(mut v) = self.valid_until.lock() {
            *v = leader.then(|| Instant::now() + valid_for);
        }
        self.leader.store(leader, Ordering::SeqCst);
    }
}

/// Keeps trying to lead (or to stay leader) until `stop` is set; releases the lease at the end.
pub async fn run(sup: Arc<Supervisor>, stop: Arc<AtomicBool>) {
    tracing::info!(
        holder = %sup.leadership.holder(),
        lifecycle = %sup.config.lifecycle_grpc_url,
        "competing for the supervisor leadership (lease granted by Lifecycle)"
    );
    let mut was_leader = false;
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        let sent = Instant::now();
        let leader = match sup.lifecycle.acquire_lease(sup.config.lease).await {
            Ok(leader) => {
                last_error = None;
                sup.lifecycle_ok.store(true, Ordering::SeqCst);
                leader
            }
            Err(e) => {
                let e = e.to_string();
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "cannot get the leadership lease from Lifecycle; not acting");
                }
                sup.lifecycle_ok.store(false, Ordering::SeqCst);
                last_error = Some(e);
                false
            }
        };
        // Two thirds of the lease from when the request was sent: Lifecycle's lease runs a full
        // lease from when it answered, so this replica stops acting before another one can take
        // over, whatever happens to its renewals.
        let valid_for = (sup.config.lease * 2 / 3).saturating_sub(sent.elapsed());
        sup.leadership
            .set(leader && !valid_for.is_zero(), valid_for);
        sup.metrics.leader.set(leader as i64);
        if leader != was_leader {
            if leader {
                tracing::info!(holder = %sup.leadership.holder(), "became the leader: this supervisor acts now");
                sup.metrics
                    .leadership_changes
                    .with_label_values(&["acquired"])
                    .inc();
                sup.wake.notify_waiters();
            } else {
                tracing::warn!(holder = %sup.leadership.holder(), "lost the leadership: this supervisor stops acting");
                sup.metrics
                    .leadership_changes
                    .with_label_values(&["lost"])
                    .inc();
            }
            was_leader = leader;
        }
        let pause = if leader {
            sup.config.lease_renewal()
        } else {
            sup.config.lease_retry
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = sup.stopping.notified() => {}
        }
    }
    sup.leadership.set(false, Duration::ZERO);
    sup.metrics.leader.set(0);
    if was_leader {
        match sup.lifecycle.release_lease().await {
            Ok(_) => tracing::info!("released the supervisor leadership"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the leadership lease; it expires on its own")
            }
        }
    }
}
