//! Leadership among supervisor replicas: one acts, the others wait and keep serving probes.
//!
//! The lock itself (Postgres advisory lock or SQLite lease row) is `racetrack_db::lease`. This
//! module keeps asking for it: the leader renews every third of the lease, a follower retries every
//! `LEASE_RETRY_SECS`. A leader acts only while its last successful renewal is younger than two
//! thirds of the lease, so a replica cut off from the database stops acting before another can
//! take over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use racetrack_db::lease::LeaderLock;

use crate::Supervisor;

/// The lock's name: one leader per database.
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

/// Keeps trying to lead (or to stay leader) until `stop` is set; releases the lock at the end.
pub async fn run(sup: Arc<Supervisor>, lock: LeaderLock, stop: Arc<AtomicBool>) {
    let lock = Arc::new(Mutex::new(lock));
    tracing::info!(
        holder = %sup.leadership.holder(),
        mechanism = %lock.lock().map(|l| l.mechanism()).unwrap_or("?"),
        "competing for the supervisor leadership"
    );
    let mut was_leader = false;
    let mut last_error: Option<String> = None;
    while !stop.load(Ordering::SeqCst) {
        let attempt = {
            let lock = lock.clone();
            tokio::task::spawn_blocking(move || match lock.lock() {
                Ok(mut l) => l.try_acquire().map_err(|e| e.to_string()),
                Err(_) => Err("leadership lock poisoned".to_string()),
            })
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
        };
        let leader = match attempt {
            Ok(leader) => {
                last_error = None;
                leader
            }
            Err(e) => {
                if last_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(error = %e, "cannot reach the database for the leadership; not acting");
                }
                last_error = Some(e);
                false
            }
        };
        // Valid for two thirds of the lease from now (after the database answered): an SQLite
        // lease expires a full lease after the renewal started, so this replica stops acting
        // before another one can take over, whatever happens to its renewals.
        sup.leadership.set(leader, sup.config.lease * 2 / 3);
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
    let _ = tokio::task::spawn_blocking(move || {
        if let Ok(mut l) = lock.lock() {
            l.release();
        }
    })
    .await;
    if was_leader {
        tracing::info!("released the supervisor leadership");
    }
}
