//! Change events that make cached authorization decisions stale, carried over Redis pub/sub.
//!
//! Lifecycle (and the supervisor) publish an [`Event`] whenever a token, permission or fatman
//! changes; every PUB replica subscribes and drops the affected cache entries. Redis is optional:
//! without it nothing is published and PUB's cache TTL bounds how stale a decision can be.
//!
//! The wire protocol is the `redis` crate's: a reconnecting connection manager publishes, a
//! dedicated pub/sub connection listens. URLs are `redis://[user[:password]@]host[:port][/db]`
//! or `rediss://…` for TLS (rustls with the ring provider, system trust roots).

mod publisher;
mod subscriber;

pub use publisher::{ping, Publisher};
pub use subscriber::{subscribe, Notification};

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
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
    #[allow(
        clippy::expect_used,
        reason = "a derived Serialize of strings and enums into JSON cannot fail"
    )]
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("events always serialize")
    }

    pub fn decode(payload: &[u8]) -> Result<Event, EventError> {
        serde_json::from_slice(payload).map_err(|e| EventError::Decode(e.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("invalid REDIS_URL {0:?}: expected redis[s]://[user[:password]@]host[:port][/db]")]
    Url(String),
    #[error("redis connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("redis TLS failed: {0}")]
    Tls(String),
    #[error("redis protocol error: {0}")]
    Protocol(String),
    #[error("redis error: {0}")]
    Redis(String),
    #[error("undecodable event: {0}")]
    Decode(String),
}

impl From<redis::RedisError> for EventError {
    fn from(e: redis::RedisError) -> EventError {
        // The crate's messages never carry the URL (and so no password).
        EventError::Redis(e.to_string())
    }
}

/// Where Redis is, parsed from a `redis://` or `rediss://` URL by the `redis` crate (so user and
/// password are percent-decoded the way the crate sends them).
#[derive(Clone)]
pub struct RedisAddr {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: i64,
    /// `rediss://`: TLS, the server's certificate checked against the system's trust roots.
    pub tls: bool,
    info: ConnectionInfo,
}

impl std::fmt::Debug for RedisAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAddr")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisAddr {
    pub fn parse(url: &str) -> Result<RedisAddr, EventError> {
        let bad = || EventError::Url(redact(url));
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(bad());
        }
        let info = url.into_connection_info().map_err(|_| bad())?;
        let (host, port, tls) = match info.addr() {
            ConnectionAddr::Tcp(host, port) => (host.clone(), *port, false),
            // `#insecure` (no certificate check) is refused: the crate is built without it.
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: false,
                ..
            } => (host.clone(), *port, true),
            _ => return Err(bad()),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let redis = info.redis_settings();
        Ok(RedisAddr {
            host,
            port,
            username: redis.username().map(String::from),
            password: redis.password().map(String::from),
            db: redis.db(),
            tls,
            info,
        })
    }

    pub fn socket(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    pub(crate) fn connection_info(&self) -> &ConnectionInfo {
        &self.info
    }
}

/// A Redis URL fit for logs: user and password replaced.
pub use racetrack_config::redact::url as redact;

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
            (a.host.as_str(), a.port, a.db, a.tls),
            ("127.0.0.1", 6380, 2, false)
        );
        let b = RedisAddr::parse("redis://:s3cret@redis").unwrap();
        assert_eq!((b.port, b.password.as_deref()), (6379, Some("s3cret")));
        assert_eq!(b.username, None);
        let c = RedisAddr::parse("redis://pub%2Dreader:p%40ss@redis:6390/1").unwrap();
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref(), c.db),
            (Some("pub-reader"), Some("p@ss"), 1)
        );
        let d = RedisAddr::parse("rediss://u:pw@redis.internal").unwrap();
        assert_eq!(
            (d.host.as_str(), d.port, d.tls),
            ("redis.internal", 6379, true)
        );
        assert!(!format!("{d:?}").contains("pw"), "{d:?}");
        assert!(RedisAddr::parse("http://x").is_err());
        assert!(RedisAddr::parse("redis+unix:///tmp/redis.sock").is_err());
        assert!(RedisAddr::parse("rediss://h/#insecure").is_err());
        let err = RedisAddr::parse("redis://:s3cret@h:notaport")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
        assert_eq!(
            redact("rediss://user:s3cret@h:6380/0"),
            "rediss://***@h:6380/0"
        );
    }
}
