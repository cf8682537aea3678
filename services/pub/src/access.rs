//! Who may call what, asked of Lifecycle (gRPC) and remembered: routes per (fatman, version
//! query), decisions per (token, fatman version, endpoint). Stale entries are dropped on
//! Lifecycle's invalidation events and expire after the TTL regardless.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use racetrack_events::{Event, Notification};
use racetrack_proto::lifecycle::call_decision::Outcome;
use racetrack_proto::lifecycle::lifecycle_client::LifecycleClient;
use racetrack_proto::lifecycle::{AuthorizeCallRequest, ResolveFatmanRequest};
use sha2::{Digest, Sha256};
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::cache::TtlCache;
use crate::config::Config;
use crate::metrics::PubMetrics;

/// Metadata key of PUB's internal token on Lifecycle's gRPC API.
const AUTH_METADATA: &str = "x-racetrack-auth";

/// Where a fatman version runs.
#[derive(Debug)]
pub struct Route {
    pub id: u64,
    pub name: String,
    pub version: String,
    pub status: String,
    pub internal_name: String,
    pub public_endpoints: Vec<String>,
    /// This fatman version's metric series, looked up once per route instead of per call.
    pub metrics: RouteMetrics,
    /// When Lifecycle was asked: the cached entry expires a TTL after.
    pub fetched: Instant,
}

#[cfg(test)]
impl Route {
    /// A running `adder 1.0.0` at a dead address, for unit tests.
    pub(crate) fn for_tests(metrics: &PubMetrics, id: u64) -> Route {
        Route {
            id,
            name: "adder".into(),
            version: "1.0.0".into(),
            status: "running".into(),
            internal_name: "127.0.0.1:1".into(),
            public_endpoints: Vec::new(),
            metrics: RouteMetrics::new(metrics, "adder", "1.0.0"),
            fetched: Instant::now(),
        }
    }
}

#[derive(Debug)]
pub struct RouteMetrics {
    pub requests: prometheus::IntCounter,
    pub call_time: prometheus::Histogram,
    pub ok_responses: prometheus::IntCounter,
}

impl RouteMetrics {
    pub(crate) fn new(m: &PubMetrics, name: &str, version: &str) -> RouteMetrics {
        RouteMetrics {
            requests: m.proxy_requests.with_label_values(&[name, version]),
            call_time: m.call_time.with_label_values(&[name, version]),
            ok_responses: m.response_codes.with_label_values(&[name, version, "200"]),
        }
    }
}

/// Lifecycle's answer about one caller token.
#[derive(Debug)]
pub struct Decision {
    /// The fatman decided about (for invalidation).
    pub fatman: String,
    pub outcome: Outcome,
    pub reason: String,
    pub subject_type: String,
    pub subject_name: String,
    pub subject_id: String,
    /// When Lifecycle was asked: the cached entry expires a TTL after.
    pub fetched: Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("{0}")]
    NotFound(String),
    #[error("lifecycle is unavailable: {0}")]
    Lifecycle(String),
}

/// Cache keys are bytes built in a per-thread buffer, so a hit allocates nothing:
/// routes: `name NUL version`; decisions: SHA-256 of the token (raw tokens are not kept beyond
/// a request), the route's id, the endpoint.
type Key = Vec<u8>;

thread_local! {
    static KEY: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_key<T>(parts: &[&[u8]], f: impl FnOnce(&[u8]) -> T) -> T {
    KEY.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        for p in parts {
            buf.extend_from_slice(p);
        }
        f(&buf)
    })
}

/// Identifies one fetched route: decisions made for it die with it (a re-fetched route gets a
/// new id), and ids are never reused, unlike addresses.
static ROUTE_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

pub struct Access {
    client: LifecycleClient<Channel>,
    token: Option<MetadataValue<tonic::metadata::Ascii>>,
    timeout: Duration,
    /// `None` remembers "no such fatman" too, so a flood of bad names does not reach Lifecycle.
    routes: TtlCache<Key, Option<Arc<Route>>>,
    decisions: TtlCache<Key, Arc<Decision>>,
    metrics: Arc<PubMetrics>,
    /// Hit/miss series resolved once: they are counted on every call.
    route_hits: prometheus::IntCounter,
    route_misses: prometheus::IntCounter,
    decision_hits: prometheus::IntCounter,
    decision_misses: prometheus::IntCounter,
    /// Bumped by every invalidation: what a connection remembers from an older generation
    /// is not used.
    generation: AtomicU64,
    ttl: Duration,
}

impl Access {
    pub fn new(config: &Config, metrics: Arc<PubMetrics>) -> anyhow::Result<Access> {
        let channel = Endpoint::from_shared(config.lifecycle_grpc_url.clone())?
            .connect_timeout(config.lifecycle_timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let token = match &config.lifecycle_auth_token {
            Some(t) => Some(t.parse().map_err(|_| {
                anyhow::anyhow!("LIFECYCLE_AUTH_TOKEN is not a valid header value")
            })?),
            None => None,
        };
        Ok(Access {
            client: LifecycleClient::new(channel),
            token,
            timeout: config.lifecycle_timeout,
            routes: TtlCache::new((config.cache_capacity / 10).max(16), config.cache_ttl),
            decisions: TtlCache::new(config.cache_capacity, config.cache_ttl),
            route_hits: metrics.cache_hits.with_label_values(&["route"]),
            route_misses: metrics.cache_misses.with_label_values(&["route"]),
            decision_hits: metrics.cache_hits.with_label_values(&["decision"]),
            decision_misses: metrics.cache_misses.with_label_values(&["decision"]),
            metrics,
            generation: AtomicU64::new(0),
            ttl: config.cache_ttl,
        })
    }

    fn request<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        req.set_timeout(self.timeout);
        if let Some(t) = &self.token {
            req.metadata_mut().insert(AUTH_METADATA, t.clone());
        }
        // Lifecycle's spans for this question join the call's trace.
        racetrack_telemetry::inject_grpc(&mut req);
        req
    }

    async fn timed<T>(
        &self,
        method: &str,
        call: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, tonic::Status> {
        let start = Instant::now();
        let result = match tokio::time::timeout(self.timeout, call).await {
            Ok(r) => r,
            Err(_) => Err(tonic::Status::deadline_exceeded(
                "lifecycle did not answer in time",
            )),
        };
        self.metrics
            .lifecycle_call_time
            .observe(start.elapsed().as_secs_f64());
        let label = match &result {
            Ok(_) => "ok",
            Err(s) if s.code() == tonic::Code::NotFound => "not_found",
            Err(_) => "error",
        };
        self.metrics
            .lifecycle_calls
            .with_label_values(&[method, label])
            .inc();
        result.map(tonic::Response::into_inner)
    }

    /// The fatman a version query means, from the cache or Lifecycle.
    pub async fn route(&self, name: &str, version: &str) -> Result<Arc<Route>, AccessError> {
        let not_found = || AccessError::NotFound(format!("fatman {name} {version} was not found"));
        let parts: [&[u8]; 3] = [name.as_bytes(), b"\0", version.as_bytes()];
        if let Some(hit) = with_key(&parts, |k| self.routes.get(k)) {
            self.route_hits.inc();
            return hit.ok_or_else(not_found);
        }
        self.route_misses.inc();
        let asked_at = self.generation();
        let mut client = self.client.clone();
        let req = self.request(ResolveFatmanRequest {
            name: name.to_string(),
            version: version.to_string(),
        });
        match self
            .timed("ResolveFatman", client.resolve_fatman(req))
            .await
        {
            Ok(r) => {
                let route = Arc::new(Route {
                    id: ROUTE_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                    metrics: RouteMetrics::new(&self.metrics, &r.name, &r.version),
                    name: r.name,
                    version: r.version,
                    status: r.status,
                    internal_name: r.internal_name,
                    public_endpoints: r.public_endpoints,
                    fetched: Instant::now(),
                });
                self.remember(&self.routes, parts.concat(), Some(route.clone()), asked_at);
                Ok(route)
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                self.remember(&self.routes, parts.concat(), None, asked_at);
                Err(not_found())
            }
            Err(s) => Err(lifecycle_error(s)),
        }
    }

    /// May `token` call `endpoint` of `route`?
    pub async fn decide(
        &self,
        token: &str,
        route: &Route,
        endpoint: &str,
    ) -> Result<Arc<Decision>, AccessError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let route_id = route.id.to_le_bytes();
        let parts: [&[u8]; 3] = [&digest, &route_id, endpoint.as_bytes()];
        if let Some(hit) = with_key(&parts, |k| self.decisions.get(k)) {
            self.decision_hits.inc();
            return Ok(hit);
        }
        self.decision_misses.inc();
        let asked_at = self.generation();
        let mut client = self.client.clone();
        let req = self.request(AuthorizeCallRequest {
            token: token.to_string(),
            fatman_name: route.name.clone(),
            fatman_version: route.version.clone(),
            endpoint: endpoint.to_string(),
        });
        let d = self
            .timed("AuthorizeCall", client.authorize_call(req))
            .await
            .map_err(lifecycle_error)?;
        let decision = Arc::new(Decision {
            fatman: route.name.clone(),
            outcome: d.outcome(),
            reason: d.reason,
            subject_type: d.subject_type,
            subject_name: d.subject_name,
            subject_id: d.subject_id,
            fetched: Instant::now(),
        });
        if decision.outcome == Outcome::Unspecified {
            return Err(AccessError::Lifecycle("lifecycle gave no decision".into()));
        }
        self.remember(&self.decisions, parts.concat(), decision.clone(), asked_at);
        Ok(decision)
    }

    /// Caches an answer of Lifecycle's unless an invalidation came while it was being asked: an
    /// allow read just before a revocation must not outlive it by a whole TTL. The answer itself
    /// still serves the call that asked (it was in flight when the change happened).
    fn remember<V: Clone>(&self, cache: &TtlCache<Key, V>, key: Key, value: V, asked_at: u64) {
        if !cache.insert_if(key, value, || self.generation() == asked_at) {
            self.metrics.stale_answers.inc();
            tracing::debug!("an invalidation came while lifecycle was asked: answer not cached");
        }
    }

    /// Drops what an invalidation notification made stale.
    pub fn apply(&self, n: &Notification) {
        // Before the purge: an answer asked for under the old generation is no longer cached
        // (checked under each shard's lock, so none slips in behind the purge).
        self.generation.fetch_add(1, Ordering::AcqRel);
        let kind = match n {
            Notification::Connected => {
                // Events may have been missed while disconnected.
                self.clear();
                "connected"
            }
            Notification::Disconnected => "disconnected",
            Notification::Event(Event::All) => {
                self.clear();
                "all"
            }
            Notification::Event(Event::Subject { subject_id }) => {
                // Decisions with no known subject (bad tokens) may have changed too: they are
                // cheap to ask again.
                self.decisions
                    .retain(|_, d| !d.subject_id.is_empty() && d.subject_id != *subject_id);
                "subject"
            }
            Notification::Event(Event::Fatman { name }) => {
                let prefix = [name.as_bytes(), b"\0"].concat();
                self.routes.retain(|k, _| !k.starts_with(&prefix));
                self.decisions.retain(|_, d| d.fatman != *name);
                "fatman"
            }
        };
        // And after it: a connection that re-read the caches during the purge must not
        // remember what was purged.
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.metrics.invalidations.with_label_values(&[kind]).inc();
        tracing::debug!(kind, "cache invalidation");
    }

    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.routes.clear();
        self.decisions.clear();
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Until when an entry fetched at `fetched` may be used.
    pub fn expiry(&self, fetched: Instant) -> Instant {
        fetched + self.ttl
    }
}

fn lifecycle_error(s: tonic::Status) -> AccessError {
    AccessError::Lifecycle(match s.code() {
        tonic::Code::Unauthenticated | tonic::Code::PermissionDenied => {
            format!("lifecycle refused PUB's internal token: {}", s.message())
        }
        tonic::Code::DeadlineExceeded => "lifecycle did not answer in time".into(),
        tonic::Code::Unavailable => format!("cannot reach lifecycle: {}", s.message()),
        _ => format!("{:?}: {}", s.code(), s.message()),
    })
}
