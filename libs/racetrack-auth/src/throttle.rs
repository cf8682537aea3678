//! Attempt limiting (login): at most `max_attempts` failures per key within a sliding window.

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

    /// `Err(retry_after)` when `key` has used up its failures in the window.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    pub fn record_failure(&self, key: &str) {
        self.record_at(key, Instant::now())
    }

    /// A success clears the key's failures.
    pub fn reset(&self, key: &str) {
        if let Ok(mut map) = self.attempts.lock() {
            map.remove(key);
        }
    }

    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let Ok(mut map) = self.attempts.lock() else {
            return Ok(());
        };
        let Some(times) = map.get_mut(key) else {
            return Ok(());
        };
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
        if times.is_empty() {
            map.remove(key);
        }
        Ok(())
    }

    fn record_at(&self, key: &str, now: Instant) {
        let Ok(mut map) = self.attempts.lock() else {
            return;
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
        times.push_back(now);
        while times.len() > self.max_attempts {
            times.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_window_passes() {
        let t = Throttle::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            assert!(t.check_at("u", start).is_ok());
            t.record_at("u", start);
        }
        let retry = t
            .check_at("u", start + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!(retry, Duration::from_secs(50));
        assert!(t.check_at("other", start).is_ok(), "keys are independent");
        assert!(t.check_at("u", start + Duration::from_secs(61)).is_ok());
    }

    #[test]
    fn success_resets() {
        let t = Throttle::new(1, Duration::from_secs(60));
        t.record_failure("u");
        assert!(t.check("u").is_err());
        t.reset("u");
        assert!(t.check("u").is_ok());
    }
}
