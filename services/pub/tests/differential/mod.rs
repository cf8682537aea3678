//! The differential harness against request smuggling (docs/security-testing.md): raw client
//! bytes go through a real PUB to a recording fatman, and what each side saw is compared with
//! independent readings of the same bytes.
//!
//! Per input: the attacker's bytes are sent on one connection (then its write side is closed)
//! and everything PUB answers is read; then a victim sends one ordinary authorised call on
//! another connection. The recording fatman is hyper's HTTP/1 server (keep-alive, so PUB pools
//! its connections); it also keeps every byte PUB sent it, per connection. Properties:
//!
//! - (a) every request that reached the fatman was authorised by PUB: a `/live`, `/ready` or
//!   `/health` probe, or carrying exactly one `x-racetrack-caller` that Lifecycle named and that
//!   may call that endpoint, for every reading of the path (`lenient_segments`);
//! - (b) the attacker's forwarded requests are, in order, a subsequence of the requests an
//!   independent server reads from the attacker's bytes (hyper's server over an in-memory pipe,
//!   or a strict RFC 9112 reader), with the same method, path, query and body;
//! - (c) each client gets exactly the fatman's answers to its own forwarded requests, in order:
//!   the attacker's match what the fatman answered during its turn, the victim gets its one;
//! - (d) PUB frames what it forwards unambiguously: one `Host`, one `Content-Length` of plain
//!   digits or exactly `transfer-encoding: chunked` with a well-formed body, no framing header
//!   named in `Connection` or in a trailer, CRLF line ends; and the fatman's parser and a strict
//!   reader split each upstream connection into the same requests.

pub mod parsers;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use self::parsers::{decode_chunked, lenient_segments, Chunked, PROBES};
use crate::common::{harness, route, Harness};

/// Replaced by the attacker's marker before an input is sent.
pub const MARK: &str = "{MARK}";
/// The callers the fake Lifecycle names (tests/common): `good`, `other`, `limited` tokens.
pub const CALLERS: [&str; 3] = ["consumer-s-good", "consumer-s-other", "consumer-limited"];
/// The one endpoint the `limited` caller may call.
const LIMITED_ENDPOINT: &str = "/api/v1/perform";
/// How long a client waits for PUB to finish answering; PUB's own deadlines in the harness are
/// one second, so only a hang reaches this.
const CLIENT_DEADLINE: Duration = Duration::from_secs(5);
/// Lets bytes PUB wrote reach the recorder before the next phase starts.
const SETTLE: Duration = Duration::from_millis(10);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One HTTP request as some reader understood it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub method: Vec<u8>,
    pub target: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Parsed {
    fn from_hyper(parts: &http::request::Parts, body: Vec<u8>) -> Parsed {
        let target = parts.uri.path_and_query().map_or_else(
            || parts.uri.path().to_string(),
            |pq| pq.as_str().to_string(),
        );
        Parsed {
            method: parts.method.as_str().as_bytes().to_vec(),
            target: target.into_bytes(),
            headers: parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
            body,
        }
    }

    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    /// What identifies a request across readers: method, the path as a lenient server reads it
    /// (`/fatman/...` is PUB's alias of `/pub/fatman/...`), query and body.
    fn key(&self) -> Key {
        let (path, query) = split_target(&self.target);
        let mut segments = lenient_segments(path);
        if segments.first().is_some_and(|s| s == b"fatman") {
            segments.insert(0, b"pub".to_vec());
        }
        Key {
            method: self.method.clone(),
            segments,
            query: query.to_vec(),
            body: self.body.clone(),
        }
    }

    fn show(&self) -> String {
        format!(
            "{} {} (body {:?})",
            String::from_utf8_lossy(&self.method),
            String::from_utf8_lossy(&self.target),
            String::from_utf8_lossy(&self.body)
        )
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Key {
    method: Vec<u8>,
    segments: Vec<Vec<u8>>,
    query: Vec<u8>,
    body: Vec<u8>,
}

/// Path and query of a target, absolute-form reduced to its path and any fragment cut (as PUB
/// and hyper do).
fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let mut t = target;
    for scheme in [&b"http://"[..], b"https://"] {
        if t.len() >= scheme.len() && t[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &t[scheme.len()..];
            t = rest
                .iter()
                .position(|b| *b == b'/')
                .map_or(&b"/"[..], |i| &rest[i..]);
        }
    }
    if let Some(i) = t.iter().position(|b| *b == b'#') {
        t = &t[..i];
    }
    match t.iter().position(|b| *b == b'?') {
        Some(i) => (&t[..i], &t[i + 1..]),
        None => (t, b""),
    }
}

// ---------------------------------------------------------------------------------------------
// A strict reader of request streams (RFC 9112), used on both sides of PUB.

/// One request a strict reader took off a byte stream, with what is wrong with its framing
/// (problems a proxy must never forward, though the reader could still delimit the request).
#[derive(Debug)]
pub struct Msg {
    pub start: usize,
    pub req: Parsed,
    pub problems: Vec<String>,
}

/// Why a strict reader stopped before the end of a stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// The stream ended inside a request.
    Unfinished,
    /// Bytes that are not a request, or a request whose end cannot be known unambiguously.
    Refused(String),
}

fn is_framing_name(name: &[u8]) -> bool {
    [&b"content-length"[..], b"transfer-encoding", b"host"]
        .iter()
        .any(|f| name.eq_ignore_ascii_case(f))
}

/// A header name as CGI and WSGI servers key it: `_` and `-` are the same to them.
fn dashed(name: &[u8]) -> Vec<u8> {
    name.iter()
        .map(|b| if *b == b'_' { b'-' } else { *b })
        .collect()
}

pub fn split_requests(raw: &[u8]) -> (Vec<Msg>, Option<Stop>) {
    let mut msgs = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Request::new(&mut slots);
        let len = match parsed.parse(&raw[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return (msgs, Some(Stop::Unfinished)),
            Err(e) => {
                return (
                    msgs,
                    Some(Stop::Refused(format!("a head that does not parse ({e})"))),
                )
            }
        };
        let head = &raw[at..at + len];
        let mut problems = Vec::new();
        if head
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
        {
            problems.push("a bare LF in the head".to_string());
        }
        let headers: Vec<(Vec<u8>, Vec<u8>)> = parsed
            .headers
            .iter()
            .map(|h| (h.name.as_bytes().to_vec(), h.value.to_vec()))
            .collect();
        let minor = parsed.version.unwrap_or(1);
        let req = Parsed {
            method: parsed.method.unwrap_or_default().as_bytes().to_vec(),
            target: parsed.path.unwrap_or_default().as_bytes().to_vec(),
            headers,
            body: Vec::new(),
        };
        let te = req.values("transfer-encoding");
        let cl = req.values("content-length");
        let hosts = req.values("host").len();
        if hosts != 1 {
            problems.push(format!("{hosts} Host headers"));
        }
        for v in req.values("connection") {
            for t in v.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if is_framing_name(t) {
                    problems.push(format!("Connection names {:?}", String::from_utf8_lossy(t)));
                }
            }
        }
        let refuse = |msgs, why: String| (msgs, Some(Stop::Refused(why)));
        let body_start = at + len;
        let (body, end) = if !te.is_empty() {
            if !cl.is_empty() {
                return refuse(msgs, "Transfer-Encoding and Content-Length".into());
            }
            if te.len() != 1 || !te[0].trim_ascii().eq_ignore_ascii_case(b"chunked") {
                return refuse(msgs, format!("Transfer-Encoding {:?}", show_values(&te)));
            }
            if minor == 0 {
                return refuse(msgs, "Transfer-Encoding in HTTP/1.0".into());
            }
            match decode_chunked(&raw[body_start..]) {
                Chunked::Done {
                    end,
                    data,
                    trailers,
                } => {
                    for t in trailers {
                        let name = t.split(|b| *b == b':').next().unwrap_or_default();
                        if is_framing_name(name.trim_ascii()) {
                            problems.push(format!("trailer {:?}", String::from_utf8_lossy(&t)));
                        }
                    }
                    (data, body_start + end)
                }
                Chunked::Partial => return (msgs, Some(Stop::Unfinished)),
                Chunked::Malformed(why) => {
                    return refuse(msgs, format!("a malformed chunked body ({why})"))
                }
            }
        } else if !cl.is_empty() {
            // Several equal values may stand for one (RFC 9110 §8.6); a proxy still sends one.
            let values: Vec<Option<usize>> = cl
                .iter()
                .flat_map(|v| v.split(|b| *b == b','))
                .map(|v| {
                    std::str::from_utf8(v.trim_ascii())
                        .ok()
                        .filter(|v| {
                            !v.is_empty() && v.len() <= 18 && v.bytes().all(|b| b.is_ascii_digit())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                })
                .collect();
            let n = values[0].filter(|n| values.iter().all(|v| *v == Some(*n)));
            let Some(n) = n else {
                return refuse(msgs, format!("Content-Length {:?}", show_values(&cl)));
            };
            if values.len() > 1 {
                problems.push(format!("Content-Length {:?}", show_values(&cl)));
            }
            if raw.len() - body_start < n {
                return (msgs, Some(Stop::Unfinished));
            }
            (raw[body_start..body_start + n].to_vec(), body_start + n)
        } else {
            (Vec::new(), body_start)
        };
        msgs.push(Msg {
            start: at,
            req: Parsed { body, ..req },
            problems,
        });
        at = end;
    }
    (msgs, None)
}

fn show_values(values: &[&[u8]]) -> Vec<String> {
    values
        .iter()
        .map(|v| String::from_utf8_lossy(v).to_string())
        .collect()
}

/// What hyper's HTTP/1 server reads from `input` (sent whole, then the write side closed).
pub async fn hyper_reference(input: &[u8]) -> Vec<Parsed> {
    let (client, server) = tokio::io::duplex(1 << 16);
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    let svc = service_fn(move |req: Request<Incoming>| {
        let sink = sink.clone();
        async move {
            let (parts, body) = req.into_parts();
            if let Ok(body) = body.collect().await {
                lock(&sink).push(Parsed::from_hyper(&parts, body.to_bytes().to_vec()));
            }
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
        }
    });
    let serving = tokio::spawn(
        hyper::server::conn::http1::Builder::new()
            .half_close(true)
            .serve_connection(TokioIo::new(server), svc),
    );
    let (mut rd, mut wr) = tokio::io::split(client);
    let input = input.to_vec();
    let writing = tokio::spawn(async move {
        let _ = wr.write_all(&input).await;
        let _ = wr.shutdown().await;
    });
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), rd.read_to_end(&mut out)).await;
    writing.abort();
    serving.abort();
    let got = lock(&got).clone();
    got
}

// ---------------------------------------------------------------------------------------------
// The recording fatman.

/// The bytes PUB sent on one upstream connection, and when each read of them happened.
#[derive(Debug, Default, Clone)]
pub struct ConnLog {
    pub raw: Vec<u8>,
    /// (offset in `raw` where a read's bytes start, the tick of that read)
    pub reads: Vec<(usize, u64)>,
}

impl ConnLog {
    fn tick_at(&self, offset: usize) -> u64 {
        self.reads
            .iter()
            .rev()
            .find(|(o, _)| *o <= offset)
            .map_or(0, |(_, t)| *t)
    }
}

/// A request the fatman's parser delivered, with the number its answer carries.
#[derive(Debug, Clone)]
pub struct Served {
    pub seq: u64,
    pub conn: u64,
    pub tick: u64,
    pub req: Parsed,
}

#[derive(Default)]
struct Log {
    conns: BTreeMap<u64, ConnLog>,
    served: Vec<Served>,
    tasks: Vec<tokio::task::AbortHandle>,
}

/// A fatman on hyper's HTTP/1 server that answers every request with `x-seq` (a number unique
/// to that answer) and `x-mark` (the request's own `x-mark`), and records everything.
pub struct Recorder {
    pub addr: SocketAddr,
    /// Orders reads and answers across connections; a phase boundary takes one too.
    tick: AtomicU64,
    seq: AtomicU64,
    next_conn: AtomicU64,
    log: Mutex<Log>,
}

/// A recorder snapshot: what PUB sent per connection, and what the fatman answered.
pub struct Recorded {
    pub conns: BTreeMap<u64, ConnLog>,
    pub served: Vec<Served>,
}

impl Recorder {
    pub async fn spawn() -> Arc<Recorder> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rec = Arc::new(Recorder {
            addr: listener.local_addr().unwrap(),
            tick: AtomicU64::new(1),
            seq: AtomicU64::new(1),
            next_conn: AtomicU64::new(0),
            log: Mutex::default(),
        });
        let r = rec.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let conn = r.next_conn.fetch_add(1, Ordering::SeqCst);
                lock(&r.log).conns.insert(conn, ConnLog::default());
                let tap = Tap {
                    io: stream,
                    conn,
                    rec: r.clone(),
                };
                let rec = r.clone();
                let svc = service_fn(move |req| rec.clone().serve(conn, req));
                let task = tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tap), svc)
                        .await;
                });
                lock(&r.log).tasks.push(task.abort_handle());
            }
        });
        rec
    }

    fn next_tick(&self) -> u64 {
        self.tick.fetch_add(1, Ordering::SeqCst)
    }

    fn logged(&self, conn: u64, bytes: &[u8]) {
        let tick = self.next_tick();
        if let Some(c) = lock(&self.log).conns.get_mut(&conn) {
            c.reads.push((c.raw.len(), tick));
            c.raw.extend_from_slice(bytes);
        }
    }

    async fn serve(
        self: Arc<Self>,
        conn: u64,
        req: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let (parts, body) = req.into_parts();
        let Ok(body) = body.collect().await else {
            let mut resp = Response::new(Full::new(Bytes::from_static(b"broken body")));
            *resp.status_mut() = hyper::StatusCode::BAD_REQUEST;
            return Ok(resp);
        };
        let req = Parsed::from_hyper(&parts, body.to_bytes().to_vec());
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        let tick = self.next_tick();
        {
            let mut log = lock(&self.log);
            if log.conns.contains_key(&conn) {
                log.served.push(Served {
                    seq,
                    conn,
                    tick,
                    req,
                });
            }
        }
        let mut resp = Response::new(Full::new(Bytes::from(format!("seq {seq}"))));
        resp.headers_mut().insert("x-seq", seq.into());
        if let Some(mark) = parts.headers.get("x-mark") {
            resp.headers_mut().insert("x-mark", mark.clone());
        }
        Ok(resp)
    }

    /// Closes every connection PUB has to the recorder and forgets what was recorded, so an
    /// input starts from an empty pool; returns what was recorded.
    pub fn reset(&self) -> Recorded {
        let mut log = lock(&self.log);
        for t in log.tasks.drain(..) {
            t.abort();
        }
        Recorded {
            conns: std::mem::take(&mut log.conns),
            served: std::mem::take(&mut log.served),
        }
    }

    fn snapshot(&self) -> Recorded {
        let log = lock(&self.log);
        Recorded {
            conns: log.conns.clone(),
            served: log.served.clone(),
        }
    }
}

/// The recorder's end of a connection: every byte read is logged before hyper sees it.
struct Tap {
    io: TcpStream,
    conn: u64,
    rec: Arc<Recorder>,
}

impl AsyncRead for Tap {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.rec.logged(this.conn, &buf.filled()[before..]);
        }
        r
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// The client side.

/// One response a client got from PUB.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The fatman's answer number, when this is a fatman's answer.
    fn seq(&self) -> Option<u64> {
        self.header("x-seq").and_then(|v| v.parse().ok())
    }

    fn show(&self) -> String {
        match self.seq() {
            Some(s) => format!(
                "{} from the fatman (seq {s}, mark {})",
                self.status,
                self.header("x-mark").unwrap_or("-")
            ),
            None => format!(
                "{} from PUB {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            ),
        }
    }
}

/// Splits what a client read into responses (interim 1xx dropped); `Err` names bytes that are
/// not a whole response.
pub fn split_responses(raw: &[u8]) -> (Vec<Resp>, Option<String>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let mut slots = [httparse::EMPTY_HEADER; 128];
        let mut parsed = httparse::Response::new(&mut slots);
        let len = match parsed.parse(&raw[at..]) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => {
                return (out, Some("an unfinished response head".into()))
            }
            Err(e) => return (out, Some(format!("bytes that are not a response ({e})"))),
        };
        let status = parsed.code.unwrap_or(0);
        let headers: Vec<(String, String)> = parsed
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).to_string(),
                )
            })
            .collect();
        at += len;
        if (100..200).contains(&status) {
            continue;
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.trim().to_string())
        };
        let body = if status == 204 || status == 304 {
            Vec::new()
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            match decode_chunked(&raw[at..]) {
                Chunked::Done { end, data, .. } => {
                    at += end;
                    data
                }
                other => return (out, Some(format!("a chunked response body: {other:?}"))),
            }
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if raw.len() - at < n {
                return (out, Some("an unfinished response body".into()));
            }
            at += n;
            raw[at - n..at].to_vec()
        } else {
            let rest = raw[at..].to_vec();
            at = raw.len();
            rest
        };
        out.push(Resp {
            status,
            headers,
            body,
        });
    }
    (out, None)
}

/// Sends `input` on a new connection, closes the write side and reads until PUB closes.
async fn exchange(addr: SocketAddr, input: &[u8]) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let (mut rd, mut wr) = s.split();
    let writing = async {
        let _ = wr.write_all(input).await;
        let _ = wr.shutdown().await;
    };
    let mut out = Vec::new();
    let reading = async {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    let (_, closed) = tokio::join!(writing, tokio::time::timeout(CLIENT_DEADLINE, reading));
    (out, closed.is_ok())
}

// ---------------------------------------------------------------------------------------------
// The property check.

/// PUB in front of the recorder (as the `echo` fatman, with no public endpoints) and the fake
/// Lifecycle of tests/common.
pub struct Differential {
    pub h: Harness,
    pub rec: Arc<Recorder>,
    inputs: u64,
}

/// Which turn a forwarded request or an answer belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Turn {
    Attacker,
    Victim,
}

impl Differential {
    pub async fn start() -> Differential {
        let h = harness(&[]).await;
        let rec = Recorder::spawn().await;
        lock(&h.lifecycle.routes).insert("echo".into(), route("echo", rec.addr.to_string(), &[]));
        Differential { h, rec, inputs: 0 }
    }

    /// Runs one input (with [`MARK`] placeholders) through PUB and checks every property;
    /// `Err` is a report of the input, what each side saw and what broke.
    pub async fn check(&mut self, template: &[u8]) -> Result<(), String> {
        self.inputs += 1;
        // As long as the placeholder, so the corpus's lengths hold with the mark in place.
        let attacker_mark = format!("a{:05}", self.inputs % 100_000);
        let victim_mark = format!("v{:05}", self.inputs % 100_000);
        debug_assert_eq!(attacker_mark.len(), MARK.len());
        let input = replace(template, MARK.as_bytes(), attacker_mark.as_bytes());
        self.rec.reset();
        // PUB notices the closed pooled connections before the next call takes one.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (attacker_out, attacker_closed) = exchange(self.h.pub_addr, &input).await;
        tokio::time::sleep(SETTLE).await;
        let boundary = self.rec.next_tick();
        let victim_req = format!(
            "GET /pub/fatman/echo/latest/api/v1/perform HTTP/1.1\r\nHost: pub.test\r\nX-Racetrack-Auth: good\r\nx-mark: {victim_mark}\r\n\r\n"
        );
        let (victim_out, _) = exchange(self.h.pub_addr, victim_req.as_bytes()).await;
        tokio::time::sleep(SETTLE).await;
        let recorded = self.rec.snapshot();
        let by_hyper = hyper_reference(&input).await;
        let (strict, _) = split_requests(&input);
        let strict: Vec<Parsed> = strict.into_iter().map(|m| m.req).collect();
        let (victim_ref, _) = split_requests(victim_req.as_bytes());

        let mut broken = Vec::new();
        let turn = |tick: u64| {
            if tick < boundary {
                Turn::Attacker
            } else {
                Turn::Victim
            }
        };
        // What reached the fatman, in the order it arrived, read strictly per connection.
        let mut forwarded: Vec<(u64, u64, Msg)> = Vec::new();
        for (id, c) in &recorded.conns {
            let (msgs, stop) = split_requests(&c.raw);
            let served: Vec<&Served> = recorded.served.iter().filter(|s| s.conn == *id).collect();
            if let Some(Stop::Refused(why)) = &stop {
                broken.push(format!(
                    "(d) upstream connection {id}: after {} request(s) PUB sent {why}: {:?}",
                    msgs.len(),
                    excerpt(&c.raw[msgs.last().map_or(0, |m| m.start)..])
                ));
            }
            for (i, s) in served.iter().enumerate() {
                match msgs.get(i) {
                    Some(m) if m.req.key() == s.req.key() => {}
                    other => broken.push(format!(
                        "(d) upstream connection {id}: the fatman read request {i} as {}, a strict reader as {}",
                        s.req.show(),
                        other.map_or("nothing".into(), |m| m.req.show())
                    )),
                }
            }
            for m in msgs {
                forwarded.push((c.tick_at(m.start), *id, m));
            }
        }
        forwarded.sort_by_key(|(tick, _, _)| *tick);
        for (tick, conn, m) in &forwarded {
            for p in &m.problems {
                broken.push(format!(
                    "(d) {:?} turn, upstream connection {conn}: {} forwarded with {p}",
                    turn(*tick),
                    m.req.show()
                ));
            }
            if let Err(why) = authorised(&m.req) {
                broken.push(format!(
                    "(a) {:?} turn: {} reached the fatman: {why}",
                    turn(*tick),
                    m.req.show()
                ));
            }
        }
        let attacker_fwd: Vec<&Parsed> = forwarded
            .iter()
            .filter(|(t, _, _)| turn(*t) == Turn::Attacker)
            .map(|(_, _, m)| &m.req)
            .collect();
        let victim_fwd: Vec<&Parsed> = forwarded
            .iter()
            .filter(|(t, _, _)| turn(*t) == Turn::Victim)
            .map(|(_, _, m)| &m.req)
            .collect();
        if !is_subsequence(&attacker_fwd, &by_hyper) && !is_subsequence(&attacker_fwd, &strict) {
            broken.push(format!(
                "(b) the attacker's forwarded requests are not, in order, requests of its input:\n      forwarded: {:?}\n      hyper reads: {:?}\n      a strict reader reads: {:?}",
                attacker_fwd.iter().map(|r| r.show()).collect::<Vec<_>>(),
                by_hyper.iter().map(Parsed::show).collect::<Vec<_>>(),
                strict.iter().map(Parsed::show).collect::<Vec<_>>(),
            ));
        }
        let victim_expected: Vec<&Parsed> = victim_ref.iter().map(|m| &m.req).collect();
        if victim_fwd.len() != 1 || victim_fwd[0].key() != victim_expected[0].key() {
            broken.push(format!(
                "(b) during the victim's turn the fatman got {:?}, not just the victim's request",
                victim_fwd.iter().map(|r| r.show()).collect::<Vec<_>>()
            ));
        }

        let (attacker_resps, attacker_garbage) = split_responses(&attacker_out);
        let (victim_resps, victim_garbage) = split_responses(&victim_out);
        for (who, garbage) in [("attacker", attacker_garbage), ("victim", victim_garbage)] {
            if let Some(g) = garbage {
                broken.push(format!("(c) the {who} got {g}"));
            }
        }
        if !attacker_closed {
            broken.push("PUB kept the attacker's connection open after its input ended".into());
        }
        let served_in = |t: Turn| -> Vec<u64> {
            let mut s: Vec<u64> = recorded
                .served
                .iter()
                .filter(|s| turn(s.tick) == t)
                .map(|s| s.seq)
                .collect();
            s.sort_unstable();
            s
        };
        let attacker_seqs: Vec<u64> = attacker_resps.iter().filter_map(Resp::seq).collect();
        if attacker_seqs != served_in(Turn::Attacker) {
            broken.push(format!(
                "(c) the attacker got the fatman's answers {attacker_seqs:?}; during its turn the fatman answered {:?}",
                served_in(Turn::Attacker)
            ));
        }
        let victim_ok = victim_resps.len() == 1
            && victim_resps[0].status == 200
            && victim_resps[0].header("x-mark") == Some(victim_mark.as_str())
            && victim_resps[0].seq().map(|s| vec![s]) == Some(served_in(Turn::Victim));
        if !victim_ok {
            broken.push(format!(
                "(c) the victim (mark {victim_mark}) got {:?}; during its turn the fatman answered {:?}",
                victim_resps.iter().map(Resp::show).collect::<Vec<_>>(),
                served_in(Turn::Victim)
            ));
        }
        let verbose = std::env::var_os("SMUGGLING_VERBOSE").is_some();
        if broken.is_empty() && !verbose {
            return Ok(());
        }
        let mut report = format!(
            "input (attacker mark {attacker_mark}): {:?}\n  broken:\n",
            excerpt(&input)
        );
        for b in &broken {
            report.push_str(&format!("  - {b}\n"));
        }
        report.push_str(&format!(
            "  the attacker got: {:?}\n  the fatman received: {:?}\n",
            attacker_resps.iter().map(Resp::show).collect::<Vec<_>>(),
            forwarded
                .iter()
                .map(|(t, c, m)| format!("{:?} conn {c}: {}", turn(*t), m.req.show()))
                .collect::<Vec<_>>()
        ));
        for (id, c) in &recorded.conns {
            report.push_str(&format!(
                "  upstream connection {id} carried: {:?}\n",
                excerpt(&c.raw)
            ));
        }
        if broken.is_empty() {
            println!("{report}");
            return Ok(());
        }
        Err(report)
    }
}

/// Property (a) for one request that reached the fatman.
fn authorised(req: &Parsed) -> Result<(), String> {
    let callers = req.values("x-racetrack-caller");
    let types = req.values("x-racetrack-caller-type");
    if callers.len() > 1 {
        return Err(format!("{} x-racetrack-caller headers", callers.len()));
    }
    if let Some(c) = callers.first() {
        if !CALLERS.iter().any(|k| k.as_bytes() == *c) {
            return Err(format!(
                "with x-racetrack-caller {:?}, which Lifecycle never named",
                String::from_utf8_lossy(c)
            ));
        }
    }
    // CGI and WSGI servers (the python3 job type's WSGI bridge too) key headers with `-` as
    // `_`, so `X_Racetrack_Caller` reads as `X-Racetrack-Caller` there. (Framing is safe from
    // this: they take the length from their own parse.)
    for (name, value) in &req.headers {
        let dashed = dashed(name);
        if dashed != *name
            && [&b"x-racetrack-caller"[..], b"x-racetrack-caller-type"]
                .iter()
                .any(|n| dashed.eq_ignore_ascii_case(n))
        {
            return Err(format!(
                "with {:?}: {:?}, an identity header to CGI servers",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(value)
            ));
        }
    }
    if types.len() != callers.len() || types.iter().any(|t| *t != b"esc") {
        return Err(format!(
            "with x-racetrack-caller-type {:?}",
            show_values(&types)
        ));
    }
    let (path, _) = split_target(&req.target);
    let segments = lenient_segments(path);
    if segments.len() < 4 || segments[..3] != [&b"pub"[..], b"fatman", b"echo"] {
        return Err("outside the fatman's path".into());
    }
    let endpoint: String = segments[4..]
        .iter()
        .map(|s| format!("/{}", String::from_utf8_lossy(s)))
        .collect();
    if PROBES.contains(&endpoint.as_str()) {
        return Ok(());
    }
    match callers.first() {
        None => Err(format!(
            "without a verified caller, though a lenient server serves it as {endpoint:?}"
        )),
        Some(c) if *c == b"consumer-limited" && endpoint != LIMITED_ENDPOINT => Err(format!(
            "as the limited caller, though a lenient server serves it as {endpoint:?}"
        )),
        Some(_) => Ok(()),
    }
}

fn is_subsequence(part: &[&Parsed], whole: &[Parsed]) -> bool {
    let mut rest = whole.iter();
    part.iter()
        .all(|p| rest.by_ref().any(|w| w.key() == p.key()))
}

pub fn replace(input: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i..].starts_with(from) {
            out.extend_from_slice(to);
            i += from.len();
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

fn excerpt(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(1500)];
    let mut s = shown.escape_ascii().to_string();
    if shown.len() < bytes.len() {
        s.push_str(&format!("... ({} bytes)", bytes.len()));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The corpus: the known smuggling families, each as one client connection's bytes.

const P: &str = "/pub/fatman/echo/latest";

/// A request with `Host` and the attacker's mark, `extra` header lines, then `body` as is.
fn req(method: &str, target: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: pub.test\r\nx-mark: {MARK}\r\n");
    for h in extra {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn with_len(method: &str, target: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let cl = format!("Content-Length: {}", body.len());
    let mut headers = extra.to_vec();
    headers.push(&cl);
    req(method, target, &headers, body)
}

fn chunked(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n0\r\n\r\n");
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The request an attacker hides: PUB would want a token, and it claims an identity.
fn smuggled() -> Vec<u8> {
    with_len(
        "POST",
        &format!("{P}/api/v1/perform"),
        &["X-Racetrack-Caller: admin", "X-Racetrack-Caller-Type: esc"],
        b"{}",
    )
}

/// The request of the reproduced attack (issue 10, item 1): a probe that needs no token, whose
/// body PUB frames by the `Content-Length` it then drops, because `Connection` names it.
pub fn connection_content_length_attack() -> Vec<u8> {
    let inner = smuggled();
    with_len(
        "GET",
        &format!("{P}/live"),
        &["Connection: Content-Length"],
        &inner,
    )
}

pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let inner = smuggled();
    let perform = format!("{P}/api/v1/perform");
    let live = format!("{P}/live");
    let good = "X-Racetrack-Auth: good";
    let get_good = req("GET", &perform, &[good], b"");
    let inner_chunk = chunked(&inner);
    let mut c: Vec<(&'static str, Vec<u8>)> = vec![
        (
            "connection_content_length",
            connection_content_length_attack(),
        ),
        (
            "connection_content_length_keepalive_case",
            with_len(
                "GET",
                &live,
                &["connection: keep-alive, CONTENT-LENGTH"],
                &inner,
            ),
        ),
        (
            "connection_close_content_length",
            with_len(
                "POST",
                &live,
                &["Connection: close, Content-Length"],
                &inner,
            ),
        ),
        (
            "connection_transfer_encoding",
            req(
                "POST",
                &live,
                &[
                    "Connection: Transfer-Encoding",
                    "Transfer-Encoding: chunked",
                ],
                &inner_chunk,
            ),
        ),
        (
            "connection_host",
            cat(&[&req("GET", &live, &["Connection: Host"], b""), &get_good]),
        ),
        (
            "connection_token_header",
            req(
                "GET",
                &perform,
                &["Connection: X-Racetrack-Auth", good],
                b"",
            ),
        ),
        (
            "cl_te",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["Content-Length: 6", "Transfer-Encoding: chunked"],
                    b"0\r\n\r\n",
                ),
                &inner,
            ]),
        ),
        (
            "te_cl",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: chunked", "Content-Length: 4"],
                &inner_chunk,
            ),
        ),
        (
            "te_twice",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_then_empty",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: chunked", "Transfer-Encoding:"],
                &inner_chunk,
            ),
        ),
        (
            "te_empty_then_chunked",
            req(
                "POST",
                &live,
                &["Transfer-Encoding:", "Transfer-Encoding: chunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_empty_with_cl",
            with_len("POST", &live, &["Transfer-Encoding:"], &inner),
        ),
        (
            "te_xchunked",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: xchunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_space_chunked",
            req(
                "POST",
                &live,
                &["Transfer-Encoding:  chunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_chunked_identity",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: chunked, identity"],
                &inner_chunk,
            ),
        ),
        (
            "te_identity_chunked",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: identity, chunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_gzip_chunked",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: gzip, chunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_list_comma",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: chunked,"],
                &inner_chunk,
            ),
        ),
        (
            "te_chunked_then_identity_header",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: chunked", "Transfer-Encoding: identity"],
                &inner_chunk,
            ),
        ),
        (
            "te_upper_case",
            req("POST", &live, &["TRANSFER-ENCODING: CHUNKED"], &inner_chunk),
        ),
        (
            "te_tab_before_colon",
            req(
                "POST",
                &live,
                &["Transfer-Encoding\t: chunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_space_before_colon",
            req(
                "POST",
                &live,
                &["Transfer-Encoding : chunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_vertical_tab",
            req(
                "POST",
                &live,
                &["Transfer-Encoding: \x0bchunked"],
                &inner_chunk,
            ),
        ),
        (
            "te_underscore",
            req("POST", &live, &["Transfer_Encoding: chunked"], &inner_chunk),
        ),
        (
            "cl_underscore",
            req(
                "POST",
                &live,
                &[&format!("Content_Length: {}", inner.len())],
                &inner,
            ),
        ),
        (
            "te_http10",
            cat(&[
                b"POST ",
                live.as_bytes(),
                b" HTTP/1.0\r\nHost: pub.test\r\nTransfer-Encoding: chunked\r\n\r\n",
                &inner_chunk,
            ]),
        ),
        (
            "cl_two_values",
            req(
                "POST",
                &live,
                &[
                    "Content-Length: 0",
                    &format!("Content-Length: {}", inner.len()),
                ],
                &inner,
            ),
        ),
        (
            "cl_same_twice",
            req(
                "POST",
                &perform,
                &[good, "Content-Length: 2", "Content-Length: 2"],
                b"{}",
            ),
        ),
        (
            "cl_list",
            req("POST", &perform, &[good, "Content-Length: 2, 2"], b"{}"),
        ),
        (
            "cl_plus",
            req("POST", &live, &["Content-Length: +5"], b"hello"),
        ),
        (
            "cl_leading_space",
            req("POST", &perform, &[good, "Content-Length:  2"], b"{}"),
        ),
        (
            "cl_hex",
            req("POST", &live, &["Content-Length: 0x5"], b"hello"),
        ),
        (
            "cl_negative",
            req("POST", &live, &["Content-Length: -1"], b"hello"),
        ),
        (
            "cl_huge",
            req(
                "POST",
                &live,
                &["Content-Length: 99999999999999999999"],
                b"hello",
            ),
        ),
        (
            "cl_empty",
            cat(&[&req("POST", &live, &["Content-Length:"], b""), &inner]),
        ),
        (
            "bare_lf_head",
            cat(&[
                b"GET ",
                perform.as_bytes(),
                b" HTTP/1.1\nHost: pub.test\nX-Racetrack-Auth: good\nx-mark: {MARK}\n\n",
            ]),
        ),
        (
            "bare_lf_mixed_with_cl",
            cat(&[
                b"POST ",
                live.as_bytes(),
                b" HTTP/1.1\r\nHost: pub.test\nContent-Length: 5\r\nx-mark: {MARK}\r\n\r\nhello",
            ]),
        ),
        (
            "bare_cr_in_head",
            cat(&[
                b"GET ",
                live.as_bytes(),
                b" HTTP/1.1\r\nHost: pub.test\rTransfer-Encoding: chunked\r\n\r\n",
                &inner_chunk,
            ]),
        ),
        (
            "obs_fold_te",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["X-Folded: a", " Transfer-Encoding: chunked"],
                    b"",
                ),
                &inner_chunk,
            ]),
        ),
        (
            "obs_fold_cl",
            with_len("POST", &live, &["Transfer-Encoding:", "\tchunked"], &inner),
        ),
        (
            "absolute_form",
            req("GET", &format!("http://evil{perform}"), &[good], b""),
        ),
        (
            "absolute_form_probe_dotdot",
            req(
                "GET",
                &format!("http://evil{P}/live/../api/v1/perform"),
                &[],
                b"",
            ),
        ),
        (
            "absolute_form_other_host_header",
            req(
                "GET",
                &format!("https://evil:8443{live}"),
                &["Host: other"],
                b"",
            ),
        ),
        (
            "expect_continue_with_body",
            with_len("POST", &perform, &[good, "Expect: 100-continue"], b"{}"),
        ),
        (
            "expect_continue_without_body",
            req(
                "POST",
                &perform,
                &[good, "Expect: 100-continue", "Content-Length: 2"],
                b"",
            ),
        ),
        (
            "expect_continue_unauthorised_body_is_a_request",
            with_len("POST", &perform, &["Expect: 100-continue"], &inner),
        ),
        (
            "expect_continue_probe_body_is_a_request",
            with_len("POST", &live, &["Expect: 100-continue"], &inner),
        ),
        (
            "pipelined_mixed",
            cat(&[
                &get_good,
                &req("GET", &perform, &[], b""),
                &req("GET", &live, &[], b""),
                &req("GET", &perform, &["X-Racetrack-Auth: nope"], b""),
                &with_len("POST", &perform, &["X-Racetrack-Auth: limited"], b"{}"),
                &req(
                    "GET",
                    &format!("{P}/api/v1/other"),
                    &["X-Racetrack-Auth: limited"],
                    b"",
                ),
                &with_len("POST", &perform, &[good], b"{\"a\": 1}"),
                &get_good,
            ]),
        ),
        (
            "pipelined_refusal_with_body",
            cat(&[&with_len("POST", &perform, &[], &inner), &get_good]),
        ),
        (
            "pipelined_forbidden_with_body",
            cat(&[
                &with_len(
                    "POST",
                    &format!("{P}/api/v1/other"),
                    &["X-Racetrack-Auth: limited"],
                    &inner,
                ),
                &get_good,
            ]),
        ),
        (
            "pipelined_http10_keepalive",
            cat(&[
                b"GET ",
                live.as_bytes(),
                b" HTTP/1.0\r\nConnection: keep-alive\r\nx-mark: {MARK}\r\n\r\n",
                &get_good,
            ]),
        ),
        ("pipelined_twenty", get_good.repeat(20)),
        (
            "chunk_extensions",
            req(
                "POST",
                &perform,
                &[good, "Transfer-Encoding: chunked"],
                b"2;name=value;q=\"a;b\"\r\n{}\r\n0;last\r\n\r\n",
            ),
        ),
        (
            "chunk_extension_bare_lf",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["Transfer-Encoding: chunked"],
                    b"2;x\n{}\r\n0\r\n\r\n",
                ),
                &inner,
            ]),
        ),
        (
            "chunk_size_leading_zeros",
            req(
                "POST",
                &perform,
                &[good, "Transfer-Encoding: chunked"],
                b"0002\r\n{}\r\n000\r\n\r\n",
            ),
        ),
        (
            "chunk_size_0x",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["Transfer-Encoding: chunked"],
                    b"0x2\r\n{}\r\n0\r\n\r\n",
                ),
                &inner,
            ]),
        ),
        (
            "chunk_size_overflow",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["Transfer-Encoding: chunked"],
                    b"10000000000000002\r\n{}\r\n0\r\n\r\n",
                ),
                &inner,
            ]),
        ),
        (
            "chunk_lf_only",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["Transfer-Encoding: chunked"],
                    b"2\n{}\n0\n\n",
                ),
                &inner,
            ]),
        ),
        (
            "chunk_short_data",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["Transfer-Encoding: chunked"],
                    b"5\r\n{}\r\n0\r\n\r\n",
                ),
                &inner,
            ]),
        ),
        (
            "trailer_content_length",
            cat(&[
                &req(
                    "POST",
                    &live,
                    &["Transfer-Encoding: chunked"],
                    format!("0\r\nContent-Length: {}\r\n\r\n", inner.len()).as_bytes(),
                ),
                &inner,
            ]),
        ),
        (
            "trailer_transfer_encoding",
            req(
                "POST",
                &perform,
                &[good, "Transfer-Encoding: chunked"],
                b"2\r\n{}\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n",
            ),
        ),
        (
            "probe_dotdot_semicolon",
            req("GET", &format!("{P}/live/..;/api/v1/perform"), &[], b""),
        ),
        (
            "probe_dotdot_backslash",
            req("GET", &format!("{P}/live/..\\api/v1/perform"), &[], b""),
        ),
        (
            "probe_encoded_dotdot",
            req("GET", &format!("{P}/live/%2e%2e/api/v1/perform"), &[], b""),
        ),
        (
            "probe_encoded_backslash",
            req("GET", &format!("{P}/live/..%5capi/v1/perform"), &[], b""),
        ),
        (
            "probe_subpath",
            req("GET", &format!("{P}/live/api/v1/perform"), &[], b""),
        ),
        (
            "probe_semicolon_param",
            req("GET", &format!("{P}/live;x=1"), &[], b""),
        ),
        (
            "probe_trailing_slash",
            req("GET", &format!("{P}/ready/"), &[], b""),
        ),
        (
            "limited_dotdot_semicolon",
            req(
                "GET",
                &format!("{P}/api/v1/perform/..;/other"),
                &["X-Racetrack-Auth: limited"],
                b"",
            ),
        ),
        (
            "limited_semicolon_suffix",
            req(
                "GET",
                &format!("{P}/api/v1/other;/perform"),
                &["X-Racetrack-Auth: limited"],
                b"",
            ),
        ),
        (
            "forged_caller_with_token",
            req(
                "GET",
                &perform,
                &[
                    good,
                    "X-Racetrack-Caller: admin",
                    "x-racetrack-caller-type: user",
                ],
                b"",
            ),
        ),
        (
            "forged_caller_underscore_on_probe",
            req("GET", &live, &["X_Racetrack_Caller: admin"], b""),
        ),
        (
            "forged_caller_underscore_with_token",
            req("GET", &perform, &[good, "X_Racetrack_Caller: admin"], b""),
        ),
        (
            "forged_caller_on_probe",
            req("GET", &live, &["X-Racetrack-Caller: admin"], b""),
        ),
        (
            "host_twice",
            cat(&[&req("GET", &live, &["Host: other"], b""), &get_good]),
        ),
        (
            "host_missing",
            cat(&[
                b"GET ",
                perform.as_bytes(),
                b" HTTP/1.1\r\nX-Racetrack-Auth: good\r\nx-mark: {MARK}\r\n\r\n",
            ]),
        ),
        (
            "content_length_odd_case",
            req("POST", &perform, &[good, "cOnTeNt-LeNgTh: 2"], b"{}"),
        ),
        (
            "get_with_body",
            with_len("GET", &perform, &[good], b"{\"x\": 1}"),
        ),
        (
            "nul_in_header_value",
            cat(&[&req("GET", &live, &["X-A: a\0b"], b""), &get_good]),
        ),
        (
            "request_line_double_space",
            cat(&[
                b"GET  ",
                live.as_bytes(),
                b" HTTP/1.1\r\nHost: pub.test\r\n\r\n",
                &get_good,
            ]),
        ),
        ("lower_case_method", with_len("post", &live, &[], &inner)),
        (
            "upgrade_probe",
            with_len(
                "GET",
                &live,
                &["Connection: Upgrade", "Upgrade: websocket"],
                &inner,
            ),
        ),
        ("leading_empty_lines", cat(&[b"\r\n\r\n", &get_good])),
        (
            "no_prefix_route",
            req("GET", "/fatman/echo/latest/api/v1/perform", &[good], b""),
        ),
        (
            "unfinished_body",
            req("POST", &perform, &[good, "Content-Length: 10"], b"{}"),
        ),
        (
            "unfinished_head",
            b"GET /pub/fatman/echo/latest/live HTTP/1.1\r\nHost: pub.t".to_vec(),
        ),
    ];
    // Every family once more behind an ordinary authorised call on the same connection, so
    // each also runs on a connection PUB has admitted and pooled for.
    let behind: Vec<(&'static str, Vec<u8>)> = c
        .iter()
        .filter(|(n, _)| {
            n.starts_with("connection_") || n.starts_with("te_") || n.starts_with("cl_")
        })
        .map(|(n, v)| (*n, cat(&[&get_good, v])))
        .collect();
    let mut named: Vec<(String, Vec<u8>)> = c.drain(..).map(|(n, v)| (n.to_string(), v)).collect();
    named.extend(
        behind
            .into_iter()
            .map(|(n, v)| (format!("{n}_after_a_call"), v)),
    );
    named
}

// ---------------------------------------------------------------------------------------------
// Deterministic mutation of the corpus (the same operators a fuzzer would try first, around
// header boundaries).

/// xorshift64: deterministic, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const LINES: [&str; 12] = [
    "Transfer-Encoding: chunked",
    "Transfer-Encoding: identity",
    "Transfer-Encoding:",
    "Content-Length: 0",
    "Content-Length: 7",
    "Connection: content-length",
    "Connection: transfer-encoding, host",
    "Expect: 100-continue",
    "Host: other",
    "X-Racetrack-Caller: forged",
    "X-Racetrack-Auth: good",
    "Connection: close",
];

const BYTES: [u8; 14] = [
    b'\r', b'\n', b' ', b'\t', b':', b',', b';', b'0', b'a', b'/', b'.', b'\\', 0, 0xff,
];

/// Where each line of `input`'s first head starts.
fn line_starts(input: &[u8]) -> Vec<usize> {
    let end = input
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(input.len());
    let mut starts = vec![0];
    starts.extend((0..end).filter(|i| input[*i] == b'\n').map(|i| i + 1));
    starts
}

pub fn mutate(input: &[u8], rng: &mut Rng, corpus: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..(1 + rng.below(3)) {
        let lines = line_starts(&out);
        let line = lines[rng.below(lines.len())];
        let line_end = out[line..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(out.len(), |p| line + p + 1);
        let at = rng.below(out.len() + 1);
        match rng.below(11) {
            0 => {
                // CRLF → LF somewhere.
                let crlfs: Vec<usize> = (0..out.len().saturating_sub(1))
                    .filter(|i| &out[*i..*i + 2] == b"\r\n")
                    .collect();
                if !crlfs.is_empty() {
                    out.remove(crlfs[rng.below(crlfs.len())]);
                }
            }
            1 if line > 0 => {
                let copy = out[line..line_end].to_vec();
                out.splice(line..line, copy);
            }
            2 if line > 0 => {
                out.drain(line..line_end);
            }
            3 => {
                for b in &mut out[line..line_end] {
                    if rng.below(2) == 0 {
                        b.make_ascii_uppercase();
                    }
                }
            }
            4 => out.insert(at, BYTES[rng.below(BYTES.len())]),
            5 if at < out.len() => {
                out.remove(at);
            }
            6 if at < out.len() => out[at] = rng.next() as u8,
            7 if line > 0 => {
                let l = format!("{}\r\n", LINES[rng.below(LINES.len())]);
                out.splice(line..line, l.into_bytes());
            }
            8 => {
                let other = &corpus[rng.below(corpus.len())].1;
                out.extend_from_slice(other);
            }
            9 => {
                // Nudge a number (a length or a chunk size) by one.
                let digits: Vec<usize> = (0..out.len())
                    .filter(|i| out[*i].is_ascii_digit())
                    .collect();
                if !digits.is_empty() {
                    let i = digits[rng.below(digits.len())];
                    out[i] = if rng.below(2) == 0 {
                        if out[i] == b'9' {
                            b'0'
                        } else {
                            out[i] + 1
                        }
                    } else if out[i] == b'0' {
                        b'9'
                    } else {
                        out[i] - 1
                    };
                }
            }
            _ => {
                // Space or tab around a header's colon.
                if let Some(c) = out[line..line_end].iter().position(|b| *b == b':') {
                    let ws = if rng.below(2) == 0 { b' ' } else { b'\t' };
                    let shift = rng.below(2);
                    out.insert(line + c + shift, ws);
                }
            }
        }
    }
    out
}
