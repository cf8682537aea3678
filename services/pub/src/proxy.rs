//! One call through PUB: route → permission → forward, streaming both bodies.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use racetrack_proto::lifecycle::call_decision::Outcome;
use serde_json::json;
use tracing::Instrument;

use crate::access::{Access, Decision, Route};
use crate::config::Config;
use crate::error::{json_response, FatmanContext, ProxyError};
use crate::metrics::PubMetrics;
use crate::path::{self, FatmanCall};

pub type Body = Either<Incoming, Full<Bytes>>;

/// Caller token headers in the order PUB reads them (each also as a cookie of the same name).
pub const TOKEN_HEADERS: [&str; 4] = [
    "x-racetrack-auth",
    "x-racetrack-esc-auth",
    "x-racetrack-fatman-auth",
    "x-racetrack-user-auth",
];

/// Identity headers PUB sets from the verified token; whatever a client sends is dropped.
const CALLER_HEADER: &str = "x-racetrack-caller";
const CALLER_TYPE_HEADER: &str = "x-racetrack-caller-type";

const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "upgrade",
];

/// What every worker shares: configuration, PUB's memory of routes and decisions, metrics.
pub struct Core {
    pub config: Config,
    pub access: Access,
    pub metrics: Arc<PubMetrics>,
    tracing_header: HeaderName,
    pub redis_connected: AtomicBool,
    request_ids: RequestIds,
}

impl Core {
    /// Needs a Tokio runtime: the Lifecycle channel's background task starts on it.
    pub fn new(config: Config, metrics: Arc<PubMetrics>) -> anyhow::Result<Core> {
        let tracing_header = HeaderName::try_from(config.request_tracing_header.as_str())
            .map_err(|_| anyhow::anyhow!("REQUEST_TRACING_HEADER is not a valid header name"))?;
        Ok(Core {
            access: Access::new(&config, metrics.clone())?,
            metrics,
            tracing_header,
            config,
            redis_connected: AtomicBool::new(false),
            request_ids: RequestIds::new(),
        })
    }
}

/// One worker's proxy: the shared core plus its own upstream connection pool, so a worker's
/// connections are driven by the thread that uses them.
pub struct Pub {
    core: Arc<Core>,
    client: Client<HttpConnector, Incoming>,
}

impl std::ops::Deref for Pub {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Pub {
    /// Must be created on the runtime that will serve its connections.
    pub fn new(core: Arc<Core>) -> Pub {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(core.config.upstream_connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(std::time::Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .build(connector);
        Pub { core, client }
    }

    /// Entry point for every request; never fails (errors become JSON responses).
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>, peer: &Peer) -> Response<Body> {
        let request_id = req
            .headers()
            .get(&self.tracing_header)
            .and_then(|v| v.to_str().ok())
            .filter(|v| racetrack_telemetry::is_valid_request_id(v))
            .map(String::from)
            .unwrap_or_else(|| self.request_ids.next());
        let mut resp = match path::route(req.uri().path()) {
            Ok(path::Route::Live) => own(json!({"live": true})),
            Ok(path::Route::Ready) => own(json!({"ready": true})),
            Ok(path::Route::Health) => {
                self.metrics.health_requests.inc();
                own(json!({
                    "service": "pub",
                    "version": self.config.git_version,
                    "status": "pass",
                    "auth_required": self.config.auth_required,
                    "redis_connected": self.redis_connected.load(Ordering::Relaxed),
                }))
            }
            Ok(path::Route::Metrics) => {
                let mut r = Response::new(Either::Right(Full::new(Bytes::from(
                    self.metrics.registry.render(),
                ))));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            }
            Ok(path::Route::Fatman(call)) => {
                let span = tracing::info_span!("proxy", request_id = %request_id, fatman = %call.name, version = %call.version);
                self.clone()
                    .proxy(req, call, &request_id, peer)
                    .instrument(span)
                    .await
            }
            Err(path::PathError::NotFound) => self.refuse(
                ProxyError::NotFound("no such route".into()),
                &request_id,
                &FatmanContext::default(),
            ),
            Err(e) => self.refuse(
                ProxyError::BadRequest(e.to_string()),
                &request_id,
                &FatmanContext::default(),
            ),
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert(self.tracing_header.clone(), v);
        }
        resp
    }

    fn refuse(&self, err: ProxyError, request_id: &str, ctx: &FatmanContext<'_>) -> Response<Body> {
        let code = err.status();
        if matches!(err.hop(), "fatman") {
            self.metrics
                .proxy_errors
                .with_label_values(&[err_kind(&err)])
                .inc();
            tracing::warn!(error = %err, "fatman call failed");
        } else {
            self.metrics
                .request_errors
                .with_label_values(&[code.as_str()])
                .inc();
            if code.is_server_error() {
                tracing::warn!(error = %err, "call refused");
            } else {
                tracing::debug!(error = %err, status = code.as_u16(), "call refused");
            }
        }
        err.response(request_id, ctx).map(Either::Right)
    }

    async fn proxy(
        self: Arc<Self>,
        req: Request<Incoming>,
        call: FatmanCall,
        request_id: &str,
        peer: &Peer,
    ) -> Response<Body> {
        if req.method() != Method::GET && req.method() != Method::POST {
            return self.refuse(
                ProxyError::MethodNotAllowed,
                request_id,
                &FatmanContext::default(),
            );
        }
        let route = match self.access.route(&call.name, &call.version).await {
            Ok(r) => r,
            Err(e) => {
                let ctx = FatmanContext {
                    name: Some(&call.name),
                    version: Some(&call.version),
                    status: None,
                };
                return self.refuse(e.into(), request_id, &ctx);
            }
        };
        let ctx = FatmanContext {
            name: Some(&route.name),
            version: Some(&route.version),
            status: Some(&route.status),
        };
        route.metrics.requests.inc();
        let caller = match self.authorize(&req, &call, &route).await {
            Ok(c) => c,
            Err(e) => return self.refuse(e, request_id, &ctx),
        };
        if route.internal_name.is_empty() {
            let err = ProxyError::FatmanUnavailable(format!(
                "fatman {} {} has no running instance (status {})",
                route.name, route.version, route.status
            ));
            return self.refuse(err, request_id, &ctx);
        }
        match self
            .forward(req, &call, &route, caller.as_deref(), request_id, peer)
            .await
        {
            Ok(resp) => {
                if resp.status() == StatusCode::OK {
                    route.metrics.ok_responses.inc();
                } else {
                    self.metrics
                        .response_codes
                        .with_label_values(&[&route.name, &route.version, resp.status().as_str()])
                        .inc();
                }
                resp.map(Either::Left)
            }
            Err(e) => self.refuse(e, request_id, &ctx),
        }
    }

    /// `None`: allowed without a caller (public endpoint, probe, auth off).
    async fn authorize(
        &self,
        req: &Request<Incoming>,
        call: &FatmanCall,
        route: &Route,
    ) -> Result<Option<Arc<Decision>>, ProxyError> {
        if !self.config.auth_required
            || call.is_health_probe()
            || call.is_public(&route.public_endpoints)
        {
            return Ok(None);
        }
        let Some(token) = caller_token(req.headers()) else {
            self.metrics.auth_failed.inc();
            return Err(ProxyError::Unauthenticated(if self.config.auth_debug {
                "not logged in: empty header value of X-Racetrack-Auth".into()
            } else {
                "authentication failed".into()
            }));
        };
        let decision = self.access.decide(&token, route, call.endpoint()).await?;
        match decision.outcome {
            Outcome::Allowed => {
                self.metrics.auth_successful.inc();
                Ok(Some(decision))
            }
            Outcome::Forbidden => {
                self.metrics.auth_failed.inc();
                Err(ProxyError::Forbidden(format!(
                    "Unauthorized: {}",
                    decision.reason
                )))
            }
            _ => {
                self.metrics.auth_failed.inc();
                Err(ProxyError::Unauthenticated(format!(
                    "Unauthenticated: {}",
                    decision.reason
                )))
            }
        }
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        call: &FatmanCall,
        route: &Route,
        caller: Option<&Decision>,
        request_id: &str,
        peer: &Peer,
    ) -> Result<Response<Incoming>, ProxyError> {
        let upgrade = is_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let query = req
            .uri()
            .query()
            .map(|q| format!("?{q}"))
            .unwrap_or_default();
        let uri: Uri = format!(
            "{}://{}{}{}",
            self.config.forward_to_protocol,
            route.internal_name,
            call.forward_path(),
            query
        )
        .parse()
        .map_err(|e| ProxyError::Connect(format!("invalid fatman address: {e}")))?;
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        prepare_request_headers(req.headers_mut(), upgrade, caller, peer);
        if let Ok(v) = HeaderValue::from_str(request_id) {
            req.headers_mut().insert(self.tracing_header.clone(), v);
        }
        let start = Instant::now();
        let result =
            tokio::time::timeout(self.config.upstream_timeout, self.client.request(req)).await;
        route
            .metrics
            .call_time
            .observe(start.elapsed().as_secs_f64());
        let mut resp = match result {
            Err(_) => return Err(ProxyError::Timeout(self.config.upstream_timeout.as_secs())),
            Ok(Err(e)) if e.is_connect() => return Err(ProxyError::Connect(error_chain(&e))),
            Ok(Err(e)) => return Err(ProxyError::Upstream(error_chain(&e))),
            Ok(Ok(r)) => r,
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_upgrade) = client_upgrade {
                let upstream_upgrade = hyper::upgrade::on(&mut resp);
                tokio::spawn(
                    async move {
                        match tokio::try_join!(client_upgrade, upstream_upgrade) {
                            Ok((client, upstream)) => {
                                let mut client = TokioIo::new(client);
                                let mut upstream = TokioIo::new(upstream);
                                let _ =
                                    tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                            }
                            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
                        }
                    }
                    .in_current_span(),
                );
            }
        } else {
            strip_hop_by_hop(resp.headers_mut());
        }
        relativize_location(resp.headers_mut());
        Ok(resp)
    }
}

/// The client end of a connection, with its address already rendered for `X-Forwarded-For`.
pub struct Peer {
    pub addr: SocketAddr,
    ip_header: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            ip_header: HeaderValue::from_str(&addr.ip().to_string())
                .expect("an IP address is a valid header value"),
        }
    }
}

/// Request ids without a syscall per request: a random per-process prefix and a counter.
struct RequestIds {
    prefix: String,
    counter: std::sync::atomic::AtomicU64,
}

impl RequestIds {
    fn new() -> RequestIds {
        RequestIds {
            prefix: uuid::Uuid::new_v4().simple().to_string()[..12].to_string(),
            counter: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }
}

fn own(body: serde_json::Value) -> Response<Body> {
    json_response(StatusCode::OK, &body).map(Either::Right)
}

fn err_kind(e: &ProxyError) -> &'static str {
    match e {
        ProxyError::Connect(_) => "connect",
        ProxyError::Timeout(_) => "timeout",
        ProxyError::FatmanUnavailable(_) => "unavailable",
        _ => "response",
    }
}

/// The innermost causes too: "client error (Connect)" alone explains nothing.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// First non-empty token among the headers, then cookies of the same names (URL-unescaped).
pub fn caller_token(headers: &HeaderMap) -> Option<String> {
    for name in TOKEN_HEADERS {
        if let Some(v) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return Some(v.to_string());
        }
    }
    for name in TOKEN_HEADERS {
        for cookie in headers.get_all(header::COOKIE) {
            let Ok(cookie) = cookie.to_str() else {
                continue;
            };
            for pair in cookie.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    if k.eq_ignore_ascii_case(name) && !v.is_empty() {
                        return Some(url_unescape(v));
                    }
                }
            }
        }
    }
    None
}

/// Cookie values are URL-escaped by browsers; a value that does not decode is taken as sent.
fn url_unescape(v: &str) -> String {
    match path::percent_decode(v) {
        Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| v.to_string()),
        Err(_) => v.to_string(),
    }
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| {
                v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
            })
}

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// Names the `Connection` header lists are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<HeaderName> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::try_from(t.trim()).ok())
        .collect()
}

/// Removes hop-by-hop headers and whatever else `also` marks, deciding in one pass over the
/// headers that are there (most calls carry a handful) instead of one lookup per candidate.
fn strip(headers: &mut HeaderMap, also: impl Fn(&str) -> bool) {
    let mut doomed: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n.as_str()) || also(n.as_str()))
        .cloned()
        .collect();
    if doomed.is_empty() {
        return;
    }
    if doomed.contains(&header::CONNECTION) {
        doomed.extend(connection_listed(headers));
    }
    for name in doomed {
        headers.remove(name);
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    strip(headers, |_| false);
}

fn prepare_request_headers(
    headers: &mut HeaderMap,
    upgrade: bool,
    caller: Option<&Decision>,
    peer: &Peer,
) {
    let upgrade_value = if upgrade {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    };
    // The caller's token passes on as in the original (fatmen may rely on it); identity headers a
    // client sends are never believed: PUB sets them from the verified token.
    strip(headers, |n| n == CALLER_HEADER || n == CALLER_TYPE_HEADER);
    if let Some(v) = upgrade_value {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, v);
    }
    if let Some(d) = caller {
        if let Ok(v) = HeaderValue::from_str(&d.subject_name) {
            headers.insert(CALLER_HEADER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&d.subject_type) {
            headers.insert(CALLER_TYPE_HEADER, v);
        }
    }
    if let Some(host) = headers.get(header::HOST).cloned() {
        headers.insert("x-forwarded-host", host);
    }
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => HeaderValue::from_str(&format!("{prev}, {}", peer.addr.ip())).ok(),
        None => Some(peer.ip_header.clone()),
    };
    if let Some(v) = forwarded_for {
        headers.insert("x-forwarded-for", v);
    }
}

/// Absolute redirects to the fatman's internal address would leak it and break: keep the path.
fn relativize_location(headers: &mut HeaderMap) {
    let Some(loc) = headers.get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if let Some(rest) = loc
        .strip_prefix("http://")
        .or_else(|| loc.strip_prefix("https://"))
    {
        let path = rest.find('/').map_or("/", |i| &rest[i..]).to_string();
        if let Ok(v) = HeaderValue::from_str(&path) {
            headers.insert(header::LOCATION, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_headers_then_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; X-Racetrack-Auth=abc%2Ed"),
        );
        assert_eq!(caller_token(&h).as_deref(), Some("abc.d"));
        h.insert("x-racetrack-esc-auth", HeaderValue::from_static("esc"));
        assert_eq!(caller_token(&h).as_deref(), Some("esc"));
        h.insert("x-racetrack-auth", HeaderValue::from_static(" main "));
        assert_eq!(caller_token(&h).as_deref(), Some("main"));
        assert_eq!(caller_token(&HeaderMap::new()), None);
    }

    #[test]
    fn forwarded_headers_keep_the_token_and_replace_identity() {
        let mut h = HeaderMap::new();
        h.insert("x-racetrack-auth", HeaderValue::from_static("secret"));
        h.insert(
            "x-racetrack-caller",
            HeaderValue::from_static("forged-admin"),
        );
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("X-Racetrack-Auth=secret; theme=dark"),
        );
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-drop"),
        );
        h.insert("x-drop", HeaderValue::from_static("1"));
        h.insert(header::HOST, HeaderValue::from_static("pub.example"));
        let d = Decision {
            fatman: "echo".into(),
            outcome: Outcome::Allowed,
            reason: String::new(),
            subject_type: "esc".into(),
            subject_name: "consumer".into(),
            subject_id: "s1".into(),
        };
        let peer = Peer::new("10.0.0.7:5555".parse().unwrap());
        prepare_request_headers(&mut h, false, Some(&d), &peer);
        assert_eq!(h.get("x-racetrack-auth").unwrap(), "secret");
        assert_eq!(h.get("x-racetrack-caller").unwrap(), "consumer");
        assert_eq!(h.get("x-racetrack-caller-type").unwrap(), "esc");
        assert_eq!(
            h.get(header::COOKIE).unwrap(),
            "X-Racetrack-Auth=secret; theme=dark"
        );
        assert!(h.get("x-drop").is_none() && h.get(header::CONNECTION).is_none());
        assert_eq!(h.get("x-forwarded-host").unwrap(), "pub.example");
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.7");
    }

    #[test]
    fn absolute_locations_become_paths() {
        let mut h = HeaderMap::new();
        h.insert(
            header::LOCATION,
            HeaderValue::from_static("http://127.0.0.1:7000/pub/fatman/a/1/x?y=1"),
        );
        relativize_location(&mut h);
        assert_eq!(h.get(header::LOCATION).unwrap(), "/pub/fatman/a/1/x?y=1");
    }
}
