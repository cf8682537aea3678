//! Attempt limiting (login): at most `max_attempts` unsuccessful attempts per key within a sliding
//! window.
//!
//! An attempt is counted when it starts ([`Throttle::acquire`]), under the same lock that checks the
//! limit: concurrent attempts cannot all pass the check before any of them is counted (a password
//! check takes long enough for dozens to start). A success gives its slot back ([`Throttle::release`])
//! or clears the key ([`Throttle::reset`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    max_attempts: usize,
    window: Duration,
    attempts: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Throttle {
    pub fn new(max_attempts: usize, window: Duration) -> Throttle {
        Throttle {
            max_attempts: max_attempts.max(1),
            window,
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key`, or `Err(retry_after)` when the key has used up its attempts in
    /// the window (nothing is counted then). The slot stays used unless the attempt succeeds.
    pub fn acquire(&self, key: &str) -> Result<(), Duration> {
        self.acquire_at(key, Instant::now())
    }

    /// Gives back the slot of one successful attempt (keys that stay limited after a success, such
    /// as a client address).
    pub fn release(&self, key: &str) {
        if let Ok(mut map) = self.attempts.lock() {
            if let Some(times) = map.get_mut(key) {
                times.pop_back();
                if times.is_empty() {
                    map.remove(key);
                }
            }
        }
    }

    /// A success clears the key's failures.
    pub fn reset(&self, key: &str) {
        if let Ok(mut map) = self.attempts.lock() {
            map.remove(key);
        }
    }

    fn acquire_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.attempts.lock() else {
            // A poisoned lock means a panic while counting: refuse rather than stop limiting.
            return Err(self.window);
        };
        // Bound memory under a flood of distinct keys: forget keys whose attempts all expired.
        if map.len() > 100_000 {
            map.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < self.window)
            });
        }
        let times = map.entry(key.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            times.pop_front();
        }
        if times.len() >= self.max_attempts {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(self.window.saturating_sub(now.duration_since(oldest)));
        }
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_attempts_until_window_passes() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.acquire_at("u", start).is_ok());
        }
        let retry = t
            .acquire_at("u", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(retry, Duration::from_secs(50));
        assert!(t.acquire_at("other", start).is_ok(), "keys are independent");
        assert!(t.acquire_at("u", start + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn success_resets_or_releases() {
        let t = Throttle::new(1, Duration::from_secs(60));
        t.acquire("u").unwrap();
        assert!(t.acquire("u").is_err());
        t.reset("u");
        t.acquire("u").unwrap();
        t.release("u");
        assert!(t.acquire("u").is_ok(), "a released slot is free again");
    }

    #[test]
    fn concurrent_attempts_never_exceed_the_limit() {
        let t = std::sync::Arc::new(Throttle::new(5, Duration::from_secs(60)));
        let admitted: usize = (0..50)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || usize::from(t.acquire("u").is_ok()))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum();
        assert_eq!(admitted, 5);
    }
}
