//! Change events that make cached authorization decisions stale, carried over Redis pub/sub.
//!
//! Lifecycle (and the supervisor) publish an [`Event`] whenever a token, permission or fatman
//! changes; every PUB replica subscribes and drops the affected cache entries. Redis is optional:
//! without it nothing is published and PUB's cache TTL bounds how stale a decision can be.
//!
//! The Redis side speaks just enough RESP2 for `PUBLISH`, `SUBSCRIBE` and `PING`, in the spirit of
//! mini-redis: two commands do not justify a full client and its dependency tree.

mod publisher;
mod resp;
mod subscriber;

pub use publisher::Publisher;
pub use subscriber::{subscribe, Notification};

use serde::{Deserialize, Serialize};

/// The pub/sub channel every replica listens on.
pub const CHANNEL: &str = "racetrack:invalidate";

/// What changed. Deliberately coarse: invalidation must be cheap and never miss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// An auth subject's tokens, permissions or access changed (`subject_id` is the
    /// `registry_authsubject` row id Lifecycle reports with each decision).
    Subject { subject_id: String },
    /// A fatman (any version) was deployed, deleted, re-provisioned, changed status or its public
    /// endpoints changed: routes and decisions for it are stale.
    Fatman { name: String },
    /// Anything may have changed (e.g. all tokens of a kind regenerated).
    All,
}

impl Event {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }

    pub fn decode(payload: &[u8]) -> Result<Event, EventError> {
        serde_json::from_slice(payload).map_err(|e| EventError::Decode(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("invalid REDIS_URL {0:?}: expected redis://[:password@]host[:port][/db]")]
    Url(String),
    #[error("redis connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis protocol error: {0}")]
    Protocol(String),
    #[error("redis answered with an error: {0}")]
    Redis(String),
    #[error("undecodable event: {0}")]
    Decode(String),
}

/// Where Redis is, parsed from a `redis://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAddr {
    pub host: String,
    pub port: u16,
    pub password: Option<String>,
    pub db: Option<u32>,
}

impl RedisAddr {
    pub fn parse(url: &str) -> Result<RedisAddr, EventError> {
        let bad = || EventError::Url(redact(url));
        let rest = url.strip_prefix("redis://").ok_or_else(bad)?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, None),
            Some((h, d)) => (h, Some(d.parse().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
            None => (hostport, 6379),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let password = auth
            .map(|a| a.split_once(':').map_or(a, |(_, p)| p))
            .filter(|p| !p.is_empty())
            .map(String::from);
        Ok(RedisAddr {
            host: host.to_string(),
            port,
            password,
            db,
        })
    }

    pub fn socket(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// A Redis URL fit for logs: the password replaced.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_as_tagged_json() {
        let e = Event::Subject {
            subject_id: "abc".into(),
        };
        assert_eq!(e.encode(), r#"{"kind":"subject","subject_id":"abc"}"#);
        assert_eq!(Event::decode(e.encode().as_bytes()).unwrap(), e);
        assert_eq!(Event::decode(br#"{"kind":"all"}"#).unwrap(), Event::All);
        assert!(Event::decode(b"garbage").is_err());
    }

    #[test]
    fn redis_urls() {
        let a = RedisAddr::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!(
            (a.host.as_str(), a.port, a.db),
            ("127.0.0.1", 6380, Some(2))
        );
        let b = RedisAddr::parse("redis://:s3cret@redis").unwrap();
        assert_eq!((b.port, b.password.as_deref()), (6379, Some("s3cret")));
        assert!(RedisAddr::parse("http://x").is_err());
        let err = RedisAddr::parse("redis://:s3cret@h:notaport")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
