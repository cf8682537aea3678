//! When to restart a fatman that died or vanished, decided without I/O (README, "Event-driven
//! healing").
//!
//! - The first restart within the crash-loop window happens at once; each further one waits
//!   `backoff * 2^(k-1)` after the previous restart (k = restarts in the window), at most
//!   `backoff_max`.
//! - A fatman restarted `max_restarts` times within `window` that fails again is left in `error`
//!   with the reason (it is *held*), not restarted again; it is released when it is next seen
//!   running (someone deployed it), and only then.
//!
//! The history lives in the leader's memory: a new leader starts with none (at worst it allows
//! `max_restarts` more restarts per fatman).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The settings of the rule (`HEAL_BACKOFF_SECS`, `HEAL_BACKOFF_MAX_SECS`,
/// `CRASH_LOOP_RESTARTS`, `CRASH_LOOP_WINDOW_SECS`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealPolicy {
    pub backoff: Duration,
    pub backoff_max: Duration,
    pub max_restarts: usize,
    pub window: Duration,
}

/// What to do about a fatman that died or vanished.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Restart it after this wait (zero: now).
    RestartAfter(Duration),
    /// Leave it in `error` with this reason. `newly`: it was held just now (write and log it).
    Hold { reason: String, newly: bool },
}

impl HealPolicy {
    /// The wait before the next restart, given the earlier restarts still in the window (oldest
    /// first), or `None` when the crash-loop limit is reached.
    pub fn next_restart(&self, recent: &[Instant], now: Instant) -> Option<Duration> {
        let Some(last) = recent.last() else {
            return Some(Duration::ZERO);
        };
        if recent.len() >= self.max_restarts {
            return None;
        }
        let doublings = u32::try_from(recent.len() - 1).unwrap_or(u32::MAX).min(30);
        let wait = self
            .backoff
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max);
        Some((*last + wait).saturating_duration_since(now))
    }

    pub fn crash_loop_reason(&self, restarts: usize, last_error: Option<&str>) -> String {
        let mut reason = format!(
            "crash loop: restarted {restarts} times within {}s and failed again; left in error until it is deployed again",
            self.window.as_secs()
        );
        if let Some(last) = last_error.filter(|e| !e.is_empty()) {
            reason.push_str(" (last error: ");
            reason.push_str(last);
            reason.push(')');
        }
        reason
    }
}

type Key = (String, String);

#[derive(Default)]
struct Entry {
    restarts: VecDeque<Instant>,
    held: Option<String>,
}

/// Restart history per fatman (`name`, `version`), shared by the tasks reacting to events.
pub struct Healer {
    policy: HealPolicy,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Healer {
    pub fn new(policy: HealPolicy) -> Healer {
        Healer {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<Key, Entry>) -> T) -> T {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut entries)
    }

    /// The verdict for a fatman found dead or gone at `now`, `last_error` being why.
    pub fn decide(
        &self,
        name: &str,
        version: &str,
        last_error: Option<&str>,
        now: Instant,
    ) -> Verdict {
        let window = self.policy.window;
        self.with(|entries| {
            let entry = entries
                .entry((name.to_string(), version.to_string()))
                .or_default();
            if let Some(reason) = &entry.held {
                return Verdict::Hold {
                    reason: reason.clone(),
                    newly: false,
                };
            }
            while entry
                .restarts
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > window)
            {
                entry.restarts.pop_front();
            }
            let recent: Vec<Instant> = entry.restarts.iter().copied().collect();
            match self.policy.next_restart(&recent, now) {
                Some(wait) => Verdict::RestartAfter(wait),
                None => {
                    let reason = self.policy.crash_loop_reason(recent.len(), last_error);
                    entry.held = Some(reason.clone());
                    Verdict::Hold {
                        reason,
                        newly: true,
                    }
                }
            }
        })
    }

    /// A restart was started at `now`.
    pub fn record_restart(&self, name: &str, version: &str, now: Instant) {
        self.with(|entries| {
            entries
                .entry((name.to_string(), version.to_string()))
                .or_default()
                .restarts
                .push_back(now);
        });
    }

    /// The fatman was seen running: a held one was deployed again, so its history is dropped.
    /// (A fatman not held keeps its history: running between crashes is what a crash loop does.)
    pub fn seen_running(&self, name: &str, version: &str) {
        self.with(|entries| {
            let key = (name.to_string(), version.to_string());
            if entries.get(&key).is_some_and(|e| e.held.is_some()) {
                entries.remove(&key);
            }
        });
    }

    /// Held fatmen by resource name, with the reason (for the plans of syncs).
    pub fn held(&self) -> HashMap<String, String> {
        self.with(|entries| {
            entries
                .iter()
                .filter_map(|((name, version), e)| {
                    e.held.as_ref().map(|reason| {
                        (
                            racetrack_model::names::resource_name(name, version),
                            reason.clone(),
                        )
                    })
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealPolicy {
        HealPolicy {
            backoff: Duration::from_secs(2),
            backoff_max: Duration::from_secs(10),
            max_restarts: 5,
            window: Duration::from_secs(600),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn first_restart_is_immediate_then_exponential_and_capped() {
        let p = policy();
        let t0 = Instant::now();
        assert_eq!(p.next_restart(&[], t0), Some(Duration::ZERO));
        // One restart at t0: the next waits 2 s after it, 4 s after two, 8, then the 10 s cap.
        assert_eq!(p.next_restart(&[t0], t0), Some(secs(2)));
        assert_eq!(p.next_restart(&[t0], t0 + secs(1)), Some(secs(1)));
        assert_eq!(p.next_restart(&[t0], t0 + secs(5)), Some(Duration::ZERO));
        assert_eq!(p.next_restart(&[t0, t0], t0), Some(secs(4)));
        assert_eq!(p.next_restart(&[t0, t0, t0], t0), Some(secs(8)));
        assert_eq!(p.next_restart(&[t0, t0, t0, t0], t0), Some(secs(10)));
        assert_eq!(p.next_restart(&[t0; 5], t0), None, "limit reached");
        let huge = HealPolicy {
            max_restarts: 100,
            ..p
        };
        assert_eq!(huge.next_restart(&[t0; 90], t0), Some(secs(10)));
    }

    #[test]
    fn a_crash_loop_is_held_with_its_reason_until_seen_running() {
        let h = Healer::new(policy());
        let t0 = Instant::now();
        for i in 0..5 {
            let at = t0 + secs(20 * i);
            assert!(
                matches!(
                    h.decide("a", "1", Some("exit 3"), at),
                    Verdict::RestartAfter(_)
                ),
                "restart {i}"
            );
            h.record_restart("a", "1", at);
            // Running in between crashes does not reset the history.
            h.seen_running("a", "1");
        }
        let verdict = h.decide("a", "1", Some("exited with code 3"), t0 + secs(100));
        let Verdict::Hold { reason, newly } = verdict else {
            panic!("not held: {verdict:?}");
        };
        assert!(newly);
        assert!(
            reason.contains("crash loop: restarted 5 times within 600s"),
            "{reason}"
        );
        assert!(reason.contains("exited with code 3"), "{reason}");
        assert_eq!(
            h.held().get("fatman-a-v-1").map(String::as_str),
            Some(reason.as_str())
        );
        // Still held later, even past the window: not restarted forever.
        assert_eq!(
            h.decide("a", "1", None, t0 + secs(5000)),
            Verdict::Hold {
                reason: reason.clone(),
                newly: false
            }
        );
        // Other fatmen are not affected.
        assert_eq!(
            h.decide("b", "1", None, t0),
            Verdict::RestartAfter(Duration::ZERO)
        );
        // Deployed again: released, history gone.
        h.seen_running("a", "1");
        assert!(h.held().is_empty());
        assert_eq!(
            h.decide("a", "1", None, t0 + secs(5001)),
            Verdict::RestartAfter(Duration::ZERO)
        );
    }

    #[test]
    fn restarts_older_than_the_window_are_forgotten() {
        let h = Healer::new(policy());
        let t0 = Instant::now();
        for i in 0..4 {
            h.record_restart("a", "1", t0 + secs(i));
        }
        // Four recent restarts: the fifth waits the 10 s cap...
        assert_eq!(
            h.decide("a", "1", None, t0 + secs(3)),
            Verdict::RestartAfter(secs(10))
        );
        // ...but long after the window they no longer count.
        assert_eq!(
            h.decide("a", "1", None, t0 + secs(700)),
            Verdict::RestartAfter(Duration::ZERO)
        );
    }
}
