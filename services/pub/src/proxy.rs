//! One call through PUB: route → permission → forward, streaming both bodies.

use std::borrow::Cow;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use http::StatusCode;
use racetrack_proto::lifecycle::call_decision::Outcome;
use racetrack_telemetry::TraceHeaders;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::Instrument;

use crate::access::{Access, Decision, Route};
use crate::admission::Admission;
use crate::config::Config;
use crate::error::{FatmanContext, OwnedContext, ProxyError};
use crate::lock;
use crate::metrics::PubMetrics;
use crate::path::{self, FatmanCall};
use crate::tally::{Tallies, Tally};
use crate::upstream::{Upstream, Upstreams};
use crate::wire::{self, CopyError, Framing, Head, Known};

/// Caller token headers in the order PUB reads them (each also as a cookie of the same name).
const TOKEN_HEADERS: [(Known, &str); 4] = [
    (Known::RacetrackAuth, "x-racetrack-auth"),
    (Known::EscAuth, "x-racetrack-esc-auth"),
    (Known::FatmanAuth, "x-racetrack-fatman-auth"),
    (Known::UserAuth, "x-racetrack-user-auth"),
];

/// Identity headers PUB sets from the verified token; whatever a client sends is dropped.
const CALLER_HEADER: &str = "x-racetrack-caller";
const CALLER_TYPE_HEADER: &str = "x-racetrack-caller-type";

/// A response head from a fatman larger than this is refused as broken (502).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// What every worker shares: configuration, PUB's memory of routes and decisions, metrics.
pub struct Core {
    pub config: Config,
    pub access: Access,
    pub metrics: Arc<PubMetrics>,
    /// `REQUEST_TRACING_HEADER`, lower-cased.
    tracing_header: String,
    pub redis_connected: AtomicBool,
    /// `true` once PUB is shutting down.
    stop: tokio::sync::watch::Sender<bool>,
    /// The workers' counts of per-call metrics, folded in when metrics are read.
    tallies: Tallies,
    /// A span per call costs about as much as the rest of PUB's work on it: only when it is
    /// exported or debug logging would show it.
    call_spans: bool,
}

impl Core {
    /// The metrics in Prometheus' text format, with every worker's counts folded in.
    pub fn render_metrics(&self) -> String {
        self.tallies.fold(&self.metrics);
        self.metrics.registry.render()
    }

    /// Needs a Tokio runtime: the Lifecycle channel's background task starts on it.
    pub fn new(config: Config, metrics: Arc<PubMetrics>) -> anyhow::Result<Core> {
        let tracing_header = http::HeaderName::try_from(config.request_tracing_header.as_str())
            .map_err(|_| anyhow::anyhow!("REQUEST_TRACING_HEADER is not a valid header name"))?
            .as_str()
            .to_string();
        Ok(Core {
            access: Access::new(&config, metrics.clone())?,
            metrics,
            tracing_header,
            call_spans: config.otlp_export || tracing::enabled!(tracing::Level::DEBUG),
            config,
            redis_connected: AtomicBool::new(false),
            stop: tokio::sync::watch::Sender::new(false),
            tallies: Tallies::default(),
        })
    }

    /// Begins the shutdown: no new connection is accepted, no new request read.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Resolves once the shutdown has begun.
    pub async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopping| *stopping).await;
    }
}

/// One worker's proxy: the shared core plus its own upstream connections, so a worker's
/// connections are driven by the thread that uses them.
pub struct Pub {
    core: Arc<Core>,
    upstreams: Upstreams,
    tally: Arc<Mutex<Tally>>,
    /// Per worker: a counter shared by all workers would bounce between cores on every call.
    request_ids: RequestIds,
}

impl std::ops::Deref for Pub {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// A client connection: its stream, the bytes read but not yet used, and who it is.
pub struct Conn<I> {
    pub io: I,
    pub buf: BytesMut,
    pub peer: Peer,
    /// The last call let through on this connection.
    pub admission: Option<Admission>,
    /// The current request is HTTP/1.0: keeping its connection must be said.
    pub http10: bool,
}

/// What becomes of a client connection after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    KeepAlive,
    Close,
}

/// One request as PUB sees it before deciding anything.
struct Call<'a> {
    head: &'a Head,
    framing: Framing,
    query: Option<&'a str>,
    request_id: &'a str,
    /// Whether the client connection can serve another request after an answer that leaves the
    /// request body unread: only when there is no body.
    reusable: bool,
}

impl Pub {
    /// Must be created on the runtime that will serve its connections.
    pub fn new(core: Arc<Core>) -> Pub {
        let upstreams = Upstreams::new(core.config.upstream_connect_timeout);
        let tally = core.tallies.register();
        Pub {
            core,
            upstreams,
            tally,
            request_ids: RequestIds::new(),
        }
    }

    /// Answers one request; never fails (errors become JSON responses).
    pub async fn handle<I>(&self, conn: &mut Conn<I>, head: Head) -> Next
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let request_id: Cow<'_, str> = match head
            .get(&self.tracing_header)
            .and_then(|v| std::str::from_utf8(v).ok())
            .filter(|v| racetrack_telemetry::is_valid_request_id(v))
        {
            Some(id) => Cow::Borrowed(id),
            None => Cow::Owned(self.request_ids.next()),
        };
        conn.http10 = head.minor_version == 0;
        let framing = match wire::request_framing(&head) {
            Ok(f) => f,
            Err(e) => {
                let err = ProxyError::BadRequest(e.to_string());
                return self
                    .refuse(conn, err, &request_id, &FatmanContext::default(), false)
                    .await;
            }
        };
        let Some((raw_path, query)) = split_target(head.target()) else {
            let err = ProxyError::BadRequest("invalid request target".into());
            return self
                .refuse(conn, err, &request_id, &FatmanContext::default(), false)
                .await;
        };
        let call = Call {
            head: &head,
            framing,
            query,
            request_id: &request_id,
            reusable: framing == Framing::Empty && head.keep_alive(),
        };
        match path::route(raw_path) {
            Ok(path::Route::Live) => self.own(conn, &call, json!({"live": true})).await,
            Ok(path::Route::Ready) => self.own(conn, &call, json!({"ready": true})).await,
            Ok(path::Route::Health) => {
                self.metrics.health_requests.inc();
                let health = json!({
                    "service": "pub",
                    "version": self.config.git_version,
                    "status": "pass",
                    "auth_required": self.config.auth_required,
                    "redis_connected": self.redis_connected.load(Ordering::Relaxed),
                });
                self.own(conn, &call, health).await
            }
            Ok(path::Route::Metrics) => {
                let text = self.render_metrics();
                let reply = Reply {
                    status: StatusCode::OK,
                    content_type: "text/plain; version=0.0.4",
                    body: text.as_bytes(),
                    allow: false,
                };
                self.reply(conn, reply, call.request_id, call.reusable)
                    .await
            }
            Ok(path::Route::Fatman(fatman)) if self.call_spans => {
                let span = tracing::info_span!("proxy", request_id = %request_id, fatman = %fatman.name, version = %fatman.version);
                // The caller's span, when it sent a valid `traceparent`, is this call's parent.
                if let Some((parent, state)) = incoming_trace(&head) {
                    let cx = racetrack_telemetry::extract(|key| match key {
                        racetrack_telemetry::TRACEPARENT => Some(parent),
                        racetrack_telemetry::TRACESTATE => state.as_deref(),
                        _ => None,
                    });
                    racetrack_telemetry::set_parent(&span, cx);
                }
                self.proxy(conn, &call, &fatman).instrument(span).await
            }
            Ok(path::Route::Fatman(fatman)) => self.proxy(conn, &call, &fatman).await,
            Err(e) => {
                let err = match e {
                    path::PathError::NotFound => ProxyError::NotFound("no such route".into()),
                    e => ProxyError::BadRequest(e.to_string()),
                };
                let ctx = FatmanContext::default();
                self.refuse(conn, err, &request_id, &ctx, call.reusable)
                    .await
            }
        }
    }

    async fn own<I>(&self, conn: &mut Conn<I>, call: &Call<'_>, body: serde_json::Value) -> Next
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let body = body.to_string();
        let reply = Reply {
            status: StatusCode::OK,
            content_type: "application/json",
            body: body.as_bytes(),
            allow: false,
        };
        self.reply(conn, reply, call.request_id, call.reusable)
            .await
    }

    /// Writes a whole response PUB makes itself.
    async fn reply<I>(&self, conn: &mut Conn<I>, r: Reply<'_>, request_id: &str, keep: bool) -> Next
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let mut out = Vec::with_capacity(192 + r.body.len());
        let _ = write!(
            out,
            "HTTP/1.1 {} {}\r\ncontent-type: {}\r\ncontent-length: {}\r\n",
            r.status.as_str(),
            r.status.canonical_reason().unwrap_or(""),
            r.content_type,
            r.body.len()
        );
        wire::put_header(
            &mut out,
            self.tracing_header.as_bytes(),
            request_id.as_bytes(),
        );
        if r.allow {
            out.extend_from_slice(b"allow: GET, POST\r\n");
        }
        out.extend_from_slice(connection_line(keep, conn.http10));
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(r.body);
        match wire::send_within(&mut conn.io, &out, Some(self.config.client_timeout)).await {
            Ok(()) if keep => Next::KeepAlive,
            _ => Next::Close,
        }
    }

    async fn refuse<I>(
        &self,
        conn: &mut Conn<I>,
        err: ProxyError,
        request_id: &str,
        ctx: &FatmanContext<'_>,
        keep: bool,
    ) -> Next
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let code = err.status();
        if matches!(err.hop(), "fatman") {
            self.metrics
                .proxy_errors
                .with_label_values(&[err_kind(&err)])
                .inc();
            tracing::warn!(error = %err, request_id, fatman = ctx.name, version = ctx.version, "fatman call failed");
        } else {
            self.metrics
                .request_errors
                .with_label_values(&[code.as_str()])
                .inc();
            if code.is_server_error() {
                tracing::warn!(error = %err, request_id, fatman = ctx.name, version = ctx.version, "call refused");
            } else {
                tracing::debug!(error = %err, status = code.as_u16(), "call refused");
            }
        }
        let body = err.body(request_id, ctx);
        let reply = Reply {
            status: code,
            content_type: "application/json",
            body: body.as_bytes(),
            allow: matches!(err, ProxyError::MethodNotAllowed),
        };
        self.reply(conn, reply, request_id, keep).await
    }

    async fn proxy<I>(&self, conn: &mut Conn<I>, call: &Call<'_>, fatman: &FatmanCall) -> Next
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let method = call.head.method();
        if method != b"GET" && method != b"POST" {
            let ctx = FatmanContext::default();
            return self
                .refuse(
                    conn,
                    ProxyError::MethodNotAllowed,
                    call.request_id,
                    &ctx,
                    call.reusable,
                )
                .await;
        }
        let token = caller_token(call.head);
        let generation = self.access.generation();
        // Taken out while the call runs (and put back after): no reference counting per call.
        let admission = match conn
            .admission
            .take()
            .filter(|a| a.covers(fatman, token.as_deref(), generation))
        {
            Some(a) => {
                let mut tally = lock(&self.tally);
                tally.requested(&a.route);
                if a.decision.is_some() {
                    tally.authorized();
                }
                a
            }
            None => match self.admit(fatman, token.as_deref(), generation).await {
                Ok(a) => a,
                Err((err, ctx)) => {
                    let ctx = ctx.borrowed();
                    return self
                        .refuse(conn, err, call.request_id, &ctx, call.reusable)
                        .await;
                }
            },
        };
        let route = &admission.route;
        let next = match self
            .forward(conn, call, fatman, route, admission.decision.as_deref())
            .await
        {
            Ok(next) => next,
            // Nothing has been sent to the client yet: the refusal explains; the request body
            // may be partly read, so the connection ends with it.
            Err(e) => {
                let ctx = FatmanContext {
                    name: Some(&route.name),
                    version: Some(&route.version),
                    status: Some(&route.status),
                };
                self.refuse(conn, e, call.request_id, &ctx, false).await
            }
        };
        conn.admission = Some(admission);
        next
    }

    /// Decides a call the connection has not had admitted: the route and the caller's
    /// permission from the shared caches or Lifecycle.
    async fn admit(
        &self,
        fatman: &FatmanCall,
        token: Option<&str>,
        generation: u64,
    ) -> Result<Admission, (ProxyError, OwnedContext)> {
        let route = match self.access.route(&fatman.name, &fatman.version).await {
            Ok(r) => r,
            Err(e) => {
                let ctx = OwnedContext {
                    name: fatman.name.clone(),
                    version: fatman.version.clone(),
                    status: None,
                };
                return Err((e.into(), ctx));
            }
        };
        let ctx = || OwnedContext {
            name: route.name.clone(),
            version: route.version.clone(),
            status: Some(route.status.clone()),
        };
        lock(&self.tally).requested(&route);
        let decision = match self.authorize(token, fatman, &route).await {
            Ok(d) => d,
            Err(e) => return Err((e, ctx())),
        };
        if route.internal_name.is_empty() {
            let err = ProxyError::FatmanUnavailable(format!(
                "fatman {} {} has no running instance (status {})",
                route.name, route.version, route.status
            ));
            return Err((err, ctx()));
        }
        let fetched = match &decision {
            Some(d) => d.fetched.min(route.fetched),
            None => route.fetched,
        };
        Ok(Admission::new(
            fatman,
            token,
            route.clone(),
            decision,
            generation,
            self.access.expiry(fetched),
        ))
    }

    /// `None`: allowed without a caller (public endpoint, probe, auth off).
    async fn authorize(
        &self,
        token: Option<&str>,
        call: &FatmanCall,
        route: &Route,
    ) -> Result<Option<Arc<Decision>>, ProxyError> {
        if !self.config.auth_required
            || call.is_health_probe()
            || call.is_public(&route.public_endpoints)
        {
            return Ok(None);
        }
        let Some(token) = token else {
            self.metrics.auth_failed.inc();
            return Err(ProxyError::Unauthenticated(if self.config.auth_debug {
                "not logged in: empty header value of X-Racetrack-Auth".into()
            } else {
                "authentication failed".into()
            }));
        };
        let decision = self.access.decide(token, route, call.endpoint()).await?;
        match decision.outcome {
            Outcome::Allowed => {
                lock(&self.tally).authorized();
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

    /// The trace context the fatman gets (docs/architecture.md, "Tracing"): the call's span when
    /// PUB records one, else the caller's context checked and written anew; never the client's
    /// bytes as sent, and nothing when they are not a valid `traceparent`.
    fn trace_headers(&self, head: &Head) -> Option<TraceHeaders> {
        if self.call_spans {
            if let Some(own) = TraceHeaders::current() {
                return Some(own);
            }
        }
        let (parent, state) = incoming_trace(head)?;
        TraceHeaders::parse(parent, state.as_deref())
    }

    /// Sends the call to the fatman and its response back. `Err` only while nothing has been
    /// sent to the client; after that a failure can only end the connection.
    async fn forward<I>(
        &self,
        conn: &mut Conn<I>,
        call: &Call<'_>,
        fatman: &FatmanCall,
        route: &Arc<Route>,
        caller: Option<&Decision>,
    ) -> Result<Next, ProxyError>
    where
        I: AsyncRead + AsyncWrite + Unpin,
    {
        let head = call.head;
        let upgrade = head.is_upgrade();
        let expect_continue = head.has_token(Known::Expect, "100-continue");
        let trace = self.trace_headers(head);
        let mut out = upstream_request_head(&RequestParts {
            head,
            trace: trace.as_ref(),
            framing: call.framing,
            fatman,
            query: call.query,
            caller,
            peer: &conn.peer,
            request_id: call.request_id,
            tracing_header: &self.tracing_header,
            fatman_address: &route.internal_name,
            upgrade,
        });
        let addr = route.internal_name.as_str();
        let timeout = self.config.upstream_timeout;
        let start = Instant::now();
        // A body already read whole goes out with the head, and the call can be sent again on
        // a new connection if a parked one turns out dead. A longer body is streamed.
        let whole_body = match call.framing {
            Framing::Empty => Some(0),
            Framing::Length(n) if !expect_continue && n <= conn.buf.len() as u64 => {
                Some(n as usize)
            }
            _ => None,
        };
        let (mut up, resp) = match whole_body {
            Some(n) => {
                out.extend_from_slice(&conn.buf[..n]);
                let mut tries = 0;
                loop {
                    tries += 1;
                    let mut up = if tries > 2 {
                        self.upstreams.connect(addr).await
                    } else {
                        self.upstreams.get(addr).await
                    }
                    .map_err(|e| ProxyError::Connect(e.to_string()))?;
                    let exchange = async {
                        wire::send(&mut up.stream, &out).await?;
                        response_head(&mut up).await
                    };
                    match tokio::time::timeout(timeout, exchange).await {
                        Err(_) => return Err(ProxyError::Timeout(timeout.as_secs())),
                        Ok(Ok(resp)) => {
                            conn.buf.advance(n);
                            break (up, resp);
                        }
                        Ok(Err(e)) if up.reused && e.nothing_received => continue,
                        Ok(Err(e)) => return Err(ProxyError::Upstream(e.message)),
                    }
                }
            }
            None => {
                let mut up = self
                    .upstreams
                    .get(addr)
                    .await
                    .map_err(|e| ProxyError::Connect(e.to_string()))?;
                if expect_continue {
                    // Permission is settled: now the client may send the body.
                    let sent = wire::send(&mut conn.io, b"HTTP/1.1 100 Continue\r\n\r\n").await;
                    if sent.is_err() {
                        return Ok(Next::Close);
                    }
                }
                let body = wire::Body {
                    framing: call.framing,
                    rechunk: true,
                    read_timeout: Some(self.config.client_timeout),
                    write_timeout: Some(timeout),
                };
                match wire::forward(body, out, &mut conn.io, &mut conn.buf, &mut up.stream).await {
                    Ok(()) => {}
                    Err(CopyError::Read(_) | CopyError::Truncated) => return Ok(Next::Close),
                    Err(CopyError::Malformed(e)) => {
                        return Err(ProxyError::BadRequest(e.to_string()))
                    }
                    Err(CopyError::Write(e)) => {
                        return Err(ProxyError::Upstream(format!("sending the request: {e}")))
                    }
                }
                match tokio::time::timeout(timeout, response_head(&mut up)).await {
                    Err(_) => return Err(ProxyError::Timeout(timeout.as_secs())),
                    Ok(Err(e)) => return Err(ProxyError::Upstream(e.message)),
                    Ok(Ok(resp)) => (up, resp),
                }
            }
        };
        let seconds = start.elapsed().as_secs_f64();
        lock(&self.tally).answered(route, seconds, resp.status == 200);
        let framing =
            wire::response_framing(&resp).map_err(|e| ProxyError::Upstream(e.to_string()))?;
        if resp.status == 101 && !upgrade {
            return Err(ProxyError::Upstream(
                "the fatman switched protocols unasked".into(),
            ));
        }
        if resp.status != 200 {
            self.metrics
                .response_codes
                .with_label_values(&[&route.name, &route.version, &resp.status.to_string()])
                .inc();
        }
        let switching = resp.status == 101;
        let keep_client = !switching && head.keep_alive() && framing != Framing::UntilClose;
        let connection = connection_line(keep_client, conn.http10);
        let out = client_response_head(&resp, call.request_id, &self.tracing_header, connection);
        if switching {
            return Ok(tunnel(conn, up, out).await);
        }
        let body = wire::Body {
            framing,
            rechunk: false,
            // Streams (server-sent events) may be quiet for long: the fatman's pace is its own.
            read_timeout: None,
            write_timeout: Some(self.config.client_timeout),
        };
        match wire::forward(body, out, &mut up.stream, &mut up.buf, &mut conn.io).await {
            Ok(()) => {
                if resp.keep_alive() && framing != Framing::UntilClose && up.buf.is_empty() {
                    self.upstreams.put(addr, up);
                }
                Ok(if keep_client {
                    Next::KeepAlive
                } else {
                    Next::Close
                })
            }
            Err(e) => {
                if !matches!(e, CopyError::Write(_)) {
                    self.metrics
                        .proxy_errors
                        .with_label_values(&["response"])
                        .inc();
                    tracing::warn!(error = %e, request_id = call.request_id, fatman = %route.name, version = %route.version, "the fatman's response broke off");
                }
                Ok(Next::Close)
            }
        }
    }
}

/// After `101 Switching Protocols` the two connections are joined until either side closes.
async fn tunnel<I>(conn: &mut Conn<I>, mut up: Upstream, mut head: Vec<u8>) -> Next
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    head.extend_from_slice(&up.buf);
    up.buf.clear();
    let joined = async {
        wire::send(&mut conn.io, &head).await?;
        if !conn.buf.is_empty() {
            wire::send(&mut up.stream, &conn.buf).await?;
            conn.buf.clear();
        }
        tokio::io::copy_bidirectional(&mut conn.io, &mut up.stream).await
    };
    if let Err(e) = joined.await {
        tracing::debug!(error = %e, "upgraded connection ended");
    }
    Next::Close
}

/// A fatman's response head could not be had.
#[derive(Debug)]
struct HeadError {
    message: String,
    /// The connection gave nothing back: a parked connection the fatman had closed.
    nothing_received: bool,
}

impl From<std::io::Error> for HeadError {
    fn from(e: std::io::Error) -> Self {
        HeadError {
            message: e.to_string(),
            nothing_received: true,
        }
    }
}

/// Reads the fatman's final response head (interim `1xx` other than `101` are passed over).
async fn response_head(up: &mut Upstream) -> Result<Head, HeadError> {
    let mut received = false;
    loop {
        if !up.buf.is_empty() {
            received = true;
            match wire::parse_response(&mut up.buf) {
                Ok(Some(h)) if (100..200).contains(&h.status) && h.status != 101 => continue,
                Ok(Some(h)) => return Ok(h),
                Ok(None) if up.buf.len() > MAX_RESPONSE_HEAD => {
                    return Err(HeadError {
                        message: "response head too large".into(),
                        nothing_received: false,
                    })
                }
                Ok(None) => {}
                Err(e) => {
                    return Err(HeadError {
                        message: e.to_string(),
                        nothing_received: false,
                    })
                }
            }
        }
        match wire::read_more(&mut up.stream, &mut up.buf).await {
            Ok(0) => {
                return Err(HeadError {
                    message: "the fatman closed the connection without a response".into(),
                    nothing_received: !received,
                })
            }
            Ok(_) => {}
            Err(e) => {
                return Err(HeadError {
                    message: e.to_string(),
                    nothing_received: !received,
                })
            }
        }
    }
}

struct Reply<'a> {
    status: StatusCode,
    content_type: &'static str,
    body: &'a [u8],
    /// `Allow: GET, POST` (with 405).
    allow: bool,
}

/// The client end of a connection, with its address already rendered for `X-Forwarded-For`.
pub struct Peer {
    pub addr: SocketAddr,
    ip: String,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Peer {
        Peer {
            addr,
            ip: addr.ip().to_string(),
        }
    }
}

/// Request ids without a syscall per request: a random prefix per worker and a counter.
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

fn err_kind(e: &ProxyError) -> &'static str {
    match e {
        ProxyError::Connect(_) => "connect",
        ProxyError::Timeout(_) => "timeout",
        ProxyError::FatmanUnavailable(_) => "unavailable",
        _ => "response",
    }
}

/// The path and query of a request target; absolute-form targets are reduced to their path.
fn split_target(target: &[u8]) -> Option<(&str, Option<&str>)> {
    let t = std::str::from_utf8(target).ok()?;
    let t = match t
        .strip_prefix("http://")
        .or_else(|| t.strip_prefix("https://"))
    {
        Some(rest) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => t,
    };
    if !t.starts_with('/') {
        return None;
    }
    Some(match t.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (t, None),
    })
}

/// First non-empty token among the headers, then cookies of the same names (URL-unescaped).
pub fn caller_token(head: &Head) -> Option<Cow<'_, str>> {
    for (known, _) in TOKEN_HEADERS {
        if let Some(v) = head
            .known(known)
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            return Some(Cow::Borrowed(v));
        }
    }
    for (_, name) in TOKEN_HEADERS {
        for cookie in head.all_known(Known::Cookie) {
            let Ok(cookie) = std::str::from_utf8(cookie) else {
                continue;
            };
            for pair in cookie.split(';') {
                if let Some((k, v)) = pair.trim().split_once('=') {
                    if k.eq_ignore_ascii_case(name) && !v.is_empty() {
                        return Some(Cow::Owned(url_unescape(v)));
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

fn listed(names: &[&[u8]], name: &[u8]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// A request's `traceparent` and its `tracestate` (several joined as one list, as the W3C
/// specification allows); `None` without exactly one `traceparent` (two cannot both be true).
fn incoming_trace(head: &Head) -> Option<(&str, Option<Cow<'_, str>>)> {
    let mut parents = head.all_known(Known::TraceParent);
    let parent = std::str::from_utf8(parents.next()?).ok()?;
    if parents.next().is_some() {
        return None;
    }
    let mut states = head
        .all_known(Known::TraceState)
        .filter_map(|v| std::str::from_utf8(v).ok());
    let state = match (states.next(), states.next()) {
        (None, _) => None,
        (Some(one), None) => Some(Cow::Borrowed(one)),
        (Some(first), Some(second)) => {
            let mut all = format!("{first},{second}");
            for more in states {
                all.push(',');
                all.push_str(more);
            }
            Some(Cow::Owned(all))
        }
    };
    Some((parent, state))
}

struct RequestParts<'a> {
    head: &'a Head,
    /// What the fatman gets as `traceparent` / `tracestate` (the client's are dropped).
    trace: Option<&'a TraceHeaders>,
    framing: Framing,
    fatman: &'a FatmanCall,
    query: Option<&'a str>,
    caller: Option<&'a Decision>,
    peer: &'a Peer,
    request_id: &'a str,
    tracing_header: &'a str,
    fatman_address: &'a str,
    upgrade: bool,
}

/// The head PUB sends to the fatman: the checked path, the client's headers minus hop-by-hop
/// ones, any identity it claims and its trace context, plus the verified identity, forwarding
/// and trace context headers. The caller's token passes on as in the original (fatmen may rely
/// on it). The message's framing (`Content-Length` or `Transfer-Encoding`, `Host`,
/// `Connection`) is written by PUB from its own reading of the request, never copied, and no
/// `Connection` list can remove it: the fatman cannot read the body's end anywhere but where PUB
/// did (request smuggling).
fn upstream_request_head(p: &RequestParts<'_>) -> Vec<u8> {
    let head = p.head;
    let mut out = Vec::with_capacity(head.size() + 256);
    out.extend_from_slice(head.method());
    out.push(b' ');
    p.fatman.push_forward_path(&mut out);
    if let Some(q) = p.query {
        out.push(b'?');
        out.extend_from_slice(q.as_bytes());
    }
    // An HTTP/1.0 client cannot read a chunked response; asked in 1.0, the fatman will not send
    // one (as nginx's default upstream version).
    out.extend_from_slice(if head.minor_version == 0 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    let listed_names = head.connection_listed();
    let mut forwarded_for: Vec<&[u8]> = Vec::new();
    let mut host = None;
    for h in head.fields() {
        let dropped = match h.known {
            Known::XForwardedFor => {
                forwarded_for.push(h.value);
                true
            }
            Known::Host => {
                host = Some(h.value);
                false
            }
            Known::Caller
            | Known::CallerType
            | Known::TraceParent
            | Known::TraceState
            | Known::Expect
            | Known::XForwardedHost
            | Known::ContentLength
            | Known::TransferEncoding => true,
            k if k.is_hop_by_hop() => true,
            // Names with `_` are dropped, as nginx does by default: CGI and WSGI servers (the
            // python3 job type's too) read `X_Racetrack_Caller` as `X-Racetrack-Caller`.
            Known::Other => {
                h.name.eq_ignore_ascii_case(p.tracing_header.as_bytes())
                    || h.name.contains(&b'_')
                    || listed(&listed_names, h.name)
            }
            _ => listed(&listed_names, h.name),
        };
        if !dropped {
            wire::put_line(&mut out, h.line);
        }
    }
    match p.framing {
        Framing::Length(n) => {
            let _ = write!(out, "content-length: {n}\r\n");
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
        // A POST says it has no body, for servers that want a length on every POST.
        Framing::Empty if head.method() == b"POST" => {
            out.extend_from_slice(b"content-length: 0\r\n")
        }
        Framing::Empty | Framing::UntilClose => {}
    }
    if p.upgrade {
        out.extend_from_slice(b"connection: upgrade\r\n");
        if let Some(v) = head.known(Known::Upgrade) {
            wire::put_header(&mut out, b"upgrade", v);
        }
    }
    if let Some(d) = p.caller {
        for (name, value) in [
            (CALLER_HEADER, &d.subject_name),
            (CALLER_TYPE_HEADER, &d.subject_type),
        ] {
            if wire::valid_value(value.as_bytes()) {
                wire::put_header(&mut out, name.as_bytes(), value.as_bytes());
            }
        }
    }
    match host {
        Some(h) => wire::put_header(&mut out, b"x-forwarded-host", h),
        None => wire::put_header(&mut out, b"host", p.fatman_address.as_bytes()),
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for prev in forwarded_for {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    out.extend_from_slice(p.peer.ip.as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(trace) = p.trace {
        wire::put_header(&mut out, b"traceparent", trace.traceparent.as_bytes());
        if let Some(state) = &trace.tracestate {
            if wire::valid_value(state.as_bytes()) {
                wire::put_header(&mut out, b"tracestate", state.as_bytes());
            }
        }
    }
    wire::put_header(
        &mut out,
        p.tracing_header.as_bytes(),
        p.request_id.as_bytes(),
    );
    out.extend_from_slice(b"\r\n");
    out
}

/// The head PUB sends back to the client: the fatman's status and headers minus hop-by-hop ones
/// (kept on `101`, they are the switch), redirects made relative, the request id.
fn client_response_head(
    resp: &Head,
    request_id: &str,
    tracing_header: &str,
    connection: &[u8],
) -> Vec<u8> {
    let switching = resp.status == 101;
    let mut out = Vec::with_capacity(resp.size() + 128);
    out.extend_from_slice(b"HTTP/1.1 ");
    // httparse guarantees three digits.
    out.extend_from_slice(&[
        b'0' + (resp.status / 100) as u8,
        b'0' + (resp.status / 10 % 10) as u8,
        b'0' + (resp.status % 10) as u8,
        b' ',
    ]);
    out.extend_from_slice(resp.reason());
    out.extend_from_slice(b"\r\n");
    let listed_names = if switching {
        Vec::new()
    } else {
        resp.connection_listed()
    };
    for h in resp.fields() {
        // The framing headers stay whatever `Connection` lists: PUB forwards the body as they
        // frame it, and the client must read it the same way.
        let framing = matches!(h.known, Known::ContentLength | Known::TransferEncoding);
        let dropped = (!switching && h.known.is_hop_by_hop())
            || (h.known == Known::Other && h.name.eq_ignore_ascii_case(tracing_header.as_bytes()))
            || (!framing && listed(&listed_names, h.name));
        if dropped {
            continue;
        }
        if h.known == Known::Location {
            wire::put_header(&mut out, h.name, relative_location(h.value));
        } else {
            wire::put_line(&mut out, h.line);
        }
    }
    wire::put_header(&mut out, tracing_header.as_bytes(), request_id.as_bytes());
    if !switching {
        out.extend_from_slice(connection);
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The `Connection` line a response needs: `close` when PUB will close, `keep-alive` for an
/// HTTP/1.0 client it keeps (1.0 means close unless said), nothing otherwise.
fn connection_line(keep: bool, http10: bool) -> &'static [u8] {
    match (keep, http10) {
        (false, _) => b"connection: close\r\n",
        (true, true) => b"connection: keep-alive\r\n",
        (true, false) => b"",
    }
}

/// Absolute redirects to the fatman's internal address would leak it and break: keep the path.
fn relative_location(loc: &[u8]) -> &[u8] {
    let rest = loc
        .strip_prefix(b"http://")
        .or_else(|| loc.strip_prefix(b"https://"));
    match rest {
        Some(rest) => match rest.iter().position(|b| *b == b'/') {
            Some(i) => &rest[i..],
            None => b"/",
        },
        None => loc,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        let mut buf = BytesMut::from(raw.as_bytes());
        wire::parse_request(&mut buf).unwrap().unwrap()
    }

    #[test]
    fn token_from_headers_then_cookies() {
        let h = head("GET / HTTP/1.1\r\nCookie: a=1; X-Racetrack-Auth=abc%2Ed\r\n\r\n");
        assert_eq!(caller_token(&h).as_deref(), Some("abc.d"));
        let h = head("GET / HTTP/1.1\r\nCookie: a=1; X-Racetrack-Auth=abc%2Ed\r\nX-Racetrack-Esc-Auth: esc\r\n\r\n");
        assert_eq!(caller_token(&h).as_deref(), Some("esc"));
        let h =
            head("GET / HTTP/1.1\r\nX-Racetrack-Esc-Auth: esc\r\nX-Racetrack-Auth:  main \r\n\r\n");
        assert_eq!(caller_token(&h).as_deref(), Some("main"));
        assert_eq!(caller_token(&head("GET / HTTP/1.1\r\n\r\n")), None);
    }

    #[test]
    fn forwarded_heads_keep_the_token_and_replace_identity() {
        let h = head(concat!(
            "POST /pub/fatman/echo/latest/x?q=1 HTTP/1.1\r\n",
            "X-Racetrack-Auth: secret\r\n",
            "X-Racetrack-Caller: forged-admin\r\n",
            "Cookie: X-Racetrack-Auth=secret; theme=dark\r\n",
            "Connection: keep-alive, x-drop\r\n",
            "X-Drop: 1\r\n",
            "Host: pub.example\r\n",
            "X-Forwarded-For: 1.2.3.4\r\n",
            "X-Request-Tracing-Id: forged\r\n",
            "Expect: 100-continue\r\n",
            "Traceparent: 00-11111111111111111111111111111111-2222222222222222-01\r\n",
            "tracestate: forged=1\r\n",
            "Content-Length: 2\r\n",
            "\r\n"
        ));
        let d = Decision {
            fatman: "echo".into(),
            outcome: Outcome::Allowed,
            reason: String::new(),
            subject_type: "esc".into(),
            subject_name: "consumer".into(),
            subject_id: "s1".into(),
            fetched: std::time::Instant::now(),
        };
        let fatman = FatmanCall {
            name: "echo".into(),
            version: "latest".into(),
            rest: "/x".into(),
        };
        let peer = Peer::new("10.0.0.7:5555".parse().unwrap());
        let trace = TraceHeaders {
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            tracestate: Some("pub=1".into()),
        };
        let out = upstream_request_head(&RequestParts {
            head: &h,
            trace: Some(&trace),
            framing: Framing::Length(2),
            fatman: &fatman,
            query: Some("q=1"),
            caller: Some(&d),
            peer: &peer,
            request_id: "rid-1",
            tracing_header: "x-request-tracing-id",
            fatman_address: "10.1.1.1:7000",
            upgrade: false,
        });
        let mut buf = BytesMut::from(&out[..]);
        let fwd = wire::parse_request(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        assert_eq!(fwd.target(), b"/pub/fatman/echo/latest/x?q=1");
        let get = |n: &str| fwd.get(n).map(|v| String::from_utf8_lossy(v).to_string());
        assert_eq!(get("x-racetrack-auth").as_deref(), Some("secret"));
        assert_eq!(get("x-racetrack-caller").as_deref(), Some("consumer"));
        assert_eq!(get("x-racetrack-caller-type").as_deref(), Some("esc"));
        assert_eq!(
            get("cookie").as_deref(),
            Some("X-Racetrack-Auth=secret; theme=dark")
        );
        assert_eq!(get("x-drop"), None);
        assert_eq!(get("connection"), None);
        assert_eq!(get("expect"), None);
        assert_eq!(get("content-length").as_deref(), Some("2"));
        assert_eq!(get("host").as_deref(), Some("pub.example"));
        assert_eq!(get("x-forwarded-host").as_deref(), Some("pub.example"));
        assert_eq!(get("x-forwarded-for").as_deref(), Some("1.2.3.4, 10.0.0.7"));
        assert_eq!(get("x-request-tracing-id").as_deref(), Some("rid-1"));
        assert_eq!(fwd.get_all("x-racetrack-caller").count(), 1);
        assert_eq!(
            get("traceparent").as_deref(),
            Some(trace.traceparent.as_str())
        );
        assert_eq!(fwd.get_all("traceparent").count(), 1);
        assert_eq!(get("tracestate").as_deref(), Some("pub=1"));
        assert_eq!(fwd.get_all("tracestate").count(), 1);
    }

    #[test]
    fn incoming_trace_context_needs_exactly_one_parent() {
        let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let h = head(&format!(
            "GET / HTTP/1.1\r\ntraceparent: {parent}\r\ntracestate: a=1\r\nTraceState: b=2\r\n\r\n"
        ));
        let (p, s) = incoming_trace(&h).unwrap();
        assert_eq!(p, parent);
        assert_eq!(s.as_deref(), Some("a=1,b=2"));
        let h = head(&format!(
            "GET / HTTP/1.1\r\ntraceparent: {parent}\r\ntraceparent: {parent}\r\n\r\n"
        ));
        assert!(incoming_trace(&h).is_none());
        assert!(incoming_trace(&head("GET / HTTP/1.1\r\ntracestate: a=1\r\n\r\n")).is_none());
    }

    #[test]
    fn response_heads_lose_hop_by_hop_headers_and_absolute_redirects() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:7000/pub/fatman/a/1/x?y=1\r\nConnection: keep-alive, x-hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        );
        let resp = wire::parse_response(&mut buf).unwrap().unwrap();
        let out = client_response_head(
            &resp,
            "rid",
            "x-request-tracing-id",
            connection_line(false, false),
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 302 Found\r\nLocation: /pub/fatman/a/1/x?y=1\r\nTransfer-Encoding: chunked\r\nx-request-tracing-id: rid\r\nconnection: close\r\n\r\n"
        );
        assert_eq!(relative_location(b"https://host"), b"/");
        assert_eq!(relative_location(b"/already"), b"/already");
    }

    #[test]
    fn targets_split_into_path_and_query() {
        assert_eq!(split_target(b"/a/b?c=1"), Some(("/a/b", Some("c=1"))));
        assert_eq!(split_target(b"http://host/a"), Some(("/a", None)));
        assert_eq!(split_target(b"*"), None);
    }
}
