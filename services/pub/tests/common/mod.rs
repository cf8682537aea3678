//! What PUB's service tests share: a fake Lifecycle (the real gRPC contract, scripted answers),
//! fake fatmen (well-behaved, slow, broken) and a PUB started on a free port in front of them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use racetrack_proto::lifecycle::call_decision::Outcome;
use racetrack_proto::lifecycle::lifecycle_server::{Lifecycle, LifecycleServer};
use racetrack_proto::lifecycle::{
    AuthorizeCallRequest, CallDecision, FatmanRoute, ResolveFatmanRequest,
};
use racetrack_pub::config::Config;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::Status;

pub const PUB_TOKEN: &str = "internal-pub-token";

#[derive(Default)]
pub struct FakeLifecycle {
    pub routes: Mutex<HashMap<String, FatmanRoute>>,
    /// token → (outcome, subject id)
    pub tokens: Mutex<HashMap<String, (Outcome, String)>>,
    pub resolves: AtomicUsize,
    pub authorizes: AtomicUsize,
    pub down: AtomicBool,
    /// When set, `AuthorizeCall` decides at once but answers only after taking a permit: an
    /// answer still in flight while the test changes things.
    pub authorize_gate: Mutex<Option<Arc<tokio::sync::Semaphore>>>,
    /// The `traceparent` metadata of every `ResolveFatman` call ("" when absent).
    pub resolve_traceparents: Mutex<Vec<String>>,
}

pub struct FakeService(pub Arc<FakeLifecycle>);

#[tonic::async_trait]
impl Lifecycle for FakeService {
    async fn resolve_fatman(
        &self,
        req: tonic::Request<ResolveFatmanRequest>,
    ) -> Result<tonic::Response<FatmanRoute>, Status> {
        assert_eq!(req.metadata().get("x-racetrack-auth").unwrap(), PUB_TOKEN);
        self.0.resolves.fetch_add(1, Ordering::SeqCst);
        let traceparent = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        self.0
            .resolve_traceparents
            .lock()
            .unwrap()
            .push(traceparent);
        if self.0.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("down"));
        }
        let r = req.into_inner();
        self.0
            .routes
            .lock()
            .unwrap()
            .get(&r.name)
            .cloned()
            .map(tonic::Response::new)
            .ok_or_else(|| Status::not_found("no such fatman"))
    }

    async fn authorize_call(
        &self,
        req: tonic::Request<AuthorizeCallRequest>,
    ) -> Result<tonic::Response<CallDecision>, Status> {
        self.0.authorizes.fetch_add(1, Ordering::SeqCst);
        if self.0.down.load(Ordering::SeqCst) {
            return Err(Status::unavailable("down"));
        }
        let r = req.into_inner();
        let (outcome, subject_id) = self
            .0
            .tokens
            .lock()
            .unwrap()
            .get(&r.token)
            .cloned()
            .unwrap_or((Outcome::Unauthenticated, String::new()));
        // Endpoint-restricted permission: the "limited" subject may only call /api/v1/perform.
        let outcome = if subject_id == "limited" && r.endpoint != "/api/v1/perform" {
            Outcome::Forbidden
        } else {
            outcome
        };
        let gate = self.0.authorize_gate.lock().unwrap().clone();
        if let Some(gate) = gate {
            gate.acquire().await.unwrap().forget();
        }
        Ok(tonic::Response::new(CallDecision {
            outcome: outcome.into(),
            reason: format!("decided for {}", r.endpoint),
            subject_type: "esc".into(),
            subject_name: format!("consumer-{subject_id}"),
            subject_id,
        }))
    }
}

pub async fn spawn_lifecycle(fake: Arc<FakeLifecycle>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(LifecycleServer::new(FakeService(fake)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    addr
}

/// A fatman that echoes what reached it, streams on `/stream` and echoes bytes after an upgrade.
pub async fn spawn_echo_fatman() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(|mut req: Request<hyper::body::Incoming>| async move {
                    let path = req.uri().path().to_string();
                    if path.ends_with("/stream") {
                        let (tx, rx) =
                            tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(4);
                        tokio::spawn(async move {
                            let _ = tx
                                .send(Ok(Frame::data(Bytes::from("data: first\n\n"))))
                                .await;
                            tokio::time::sleep(Duration::from_millis(1500)).await;
                            let _ = tx
                                .send(Ok(Frame::data(Bytes::from("data: second\n\n"))))
                                .await;
                        });
                        let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
                        let resp = Response::builder()
                            .header("content-type", "text/event-stream")
                            .body(http_body_util::Either::Left(body))
                            .unwrap();
                        return Ok::<_, Infallible>(resp);
                    }
                    if req.headers().contains_key("upgrade") {
                        let on = hyper::upgrade::on(&mut req);
                        tokio::spawn(async move {
                            let mut io = TokioIo::new(on.await.unwrap());
                            let mut buf = [0u8; 64];
                            let n = io.read(&mut buf).await.unwrap();
                            io.write_all(&buf[..n]).await.unwrap();
                        });
                        let resp = Response::builder()
                            .status(101)
                            .header("connection", "upgrade")
                            .header("upgrade", "echo")
                            .body(http_body_util::Either::Right(Full::new(Bytes::new())))
                            .unwrap();
                        return Ok(resp);
                    }
                    let headers: serde_json::Map<String, Value> = req
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.to_string(), Value::from(v.to_str().unwrap_or(""))))
                        .collect();
                    let body = req.into_body().collect().await.unwrap().to_bytes();
                    let echo = serde_json::json!({"path": path, "headers": headers, "body": String::from_utf8_lossy(&body)});
                    Ok(Response::builder()
                        .header("content-type", "application/json")
                        .header("location", "http://127.0.0.1:1/pub/fatman/echo/1/moved")
                        .body(http_body_util::Either::Right(Full::new(Bytes::from(
                            echo.to_string(),
                        ))))
                        .unwrap())
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// A "fatman" that reads the request and answers with `reply` bytes (then closes), or never.
pub async fn spawn_raw_fatman(reply: Option<&'static [u8]>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                match reply {
                    Some(r) => {
                        let _ = stream.write_all(r).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(30)).await,
                }
            });
        }
    });
    addr
}

pub struct Harness {
    pub pub_url: String,
    pub pub_addr: SocketAddr,
    pub lifecycle: Arc<FakeLifecycle>,
    pub client: reqwest::Client,
    pub server: racetrack_pub::Server,
}

pub fn route(name: &str, internal_name: String, public: &[&str]) -> FatmanRoute {
    FatmanRoute {
        id: format!("id-{name}"),
        name: name.into(),
        version: "1.0.0".into(),
        status: "running".into(),
        internal_name,
        public_endpoints: public.iter().map(|s| s.to_string()).collect(),
    }
}

pub async fn harness(extra: &[(&str, &str)]) -> Harness {
    let lifecycle = Arc::new(FakeLifecycle::default());
    let lc_addr = spawn_lifecycle(lifecycle.clone()).await;
    let echo = spawn_echo_fatman().await;
    let garbage = spawn_raw_fatman(Some(b"this is not http\r\n\r\n")).await;
    let half = spawn_raw_fatman(Some(
        b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten..",
    ))
    .await;
    let silent = spawn_raw_fatman(None).await;
    // Closes every connection after one response, as a fatman whose keep-alive ran out.
    let oneshot = spawn_raw_fatman(Some(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")).await;
    let refused = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    {
        let mut routes = lifecycle.routes.lock().unwrap();
        routes.insert(
            "echo".into(),
            route("echo", echo.to_string(), &["/api/v1/public"]),
        );
        routes.insert("garbage".into(), route("garbage", garbage.to_string(), &[]));
        routes.insert("half".into(), route("half", half.to_string(), &[]));
        routes.insert("silent".into(), route("silent", silent.to_string(), &[]));
        routes.insert("oneshot".into(), route("oneshot", oneshot.to_string(), &[]));
        routes.insert("refused".into(), route("refused", refused.to_string(), &[]));
        let mut lost = route("lost", String::new(), &[]);
        lost.status = "lost".into();
        routes.insert("lost".into(), lost);
        let mut tokens = lifecycle.tokens.lock().unwrap();
        tokens.insert("good".into(), (Outcome::Allowed, "s-good".into()));
        tokens.insert("other".into(), (Outcome::Allowed, "s-other".into()));
        tokens.insert("nope".into(), (Outcome::Forbidden, "s-nope".into()));
        tokens.insert("limited".into(), (Outcome::Allowed, "limited".into()));
    }
    let mut vars: HashMap<String, String> = [
        ("PUB_ADDR", "127.0.0.1:0".to_string()),
        ("WORKERS", "1".to_string()),
        ("LIFECYCLE_GRPC_URL", format!("http://{lc_addr}")),
        ("LIFECYCLE_AUTH_TOKEN", PUB_TOKEN.to_string()),
        ("UPSTREAM_TIMEOUT", "1".to_string()),
        ("HEADER_READ_TIMEOUT", "1".to_string()),
        ("LIFECYCLE_TIMEOUT", "2".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_lookup(|k| vars.get(k).cloned()).unwrap();
    // The binary's own wiring (control thread, one worker).
    let server = racetrack_pub::spawn(config).unwrap();
    Harness {
        pub_url: format!("http://{}/pub", server.addr),
        pub_addr: server.addr,
        lifecycle,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        server,
    }
}

impl Harness {
    /// Like [`Harness::raw`], but a closed or silent connection gives "".
    pub async fn raw_or_empty(&self, request: &str) -> String {
        let mut s = TcpStream::connect(self.pub_addr).await.unwrap();
        let _ = s.write_all(request.as_bytes()).await;
        let mut buf = vec![0u8; 8192];
        match tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await {
            Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).to_string(),
            _ => String::new(),
        }
    }

    /// A new connection to PUB with `request` already sent on it.
    pub async fn send(&self, request: &[u8]) -> TcpStream {
        let mut s = TcpStream::connect(self.pub_addr).await.unwrap();
        s.write_all(request).await.unwrap();
        s
    }

    /// Sends bytes as they are; returns what came back before PUB closed or went quiet.
    pub async fn raw(&self, request: &str) -> String {
        let mut s = self.send(request.as_bytes()).await;
        let mut buf = vec![0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    }

    /// PUB's `/metrics` text.
    pub async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.pub_url);
        let resp = self.client.get(url).send().await.unwrap();
        resp.text().await.unwrap()
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = self.client.get(format!("{}{}", self.pub_url, path));
        if let Some(t) = token {
            req = req.header("X-Racetrack-Auth", t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

pub fn uuid_like() -> String {
    format!("{}-{:?}", std::process::id(), std::time::SystemTime::now())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Reads one response (head and a Content-Length body) off a raw connection.
pub async fn read_response(s: &mut TcpStream) -> (String, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut chunk))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed after {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .map_or(0, |v| v.parse().unwrap());
            if body.len() >= len {
                return (head.to_string(), body[..len].to_string());
            }
        }
    }
}
