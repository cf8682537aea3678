//! Known attacks on PUB, each performed through its real surface (raw sockets, Redis events) as an
//! attacker would: request smuggling, probe paths that lead elsewhere, a revocation racing a
//! cache miss, and one client address starving the others. Each test fails without its fix.
//! The wider differential search over framing lives in `smuggling.rs`.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use racetrack_proto::lifecycle::call_decision::Outcome;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// One request as a fatman's HTTP server (hyper: the reference parser) read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    caller: Option<String>,
    header_names: Vec<String>,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// A fatman that records every request it parses and answers with the request's own path.
async fn spawn_recording_fatman() -> (SocketAddr, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let log: Log = Arc::default();
    let seen = log.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let method = req.method().to_string();
                        let path = req.uri().path().to_string();
                        let caller = req
                            .headers()
                            .get("x-racetrack-caller")
                            .map(|v| v.to_str().unwrap_or("?").to_string());
                        let header_names = req.headers().keys().map(|k| k.to_string()).collect();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        seen.lock().unwrap().push(Seen {
                            method,
                            path: path.clone(),
                            caller,
                            header_names,
                            body: body.to_vec(),
                        });
                        let answer = serde_json::json!({ "path": path }).to_string();
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer)))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (addr, log)
}

/// PUB in front of the recording fatman `rec` (and the common fakes).
async fn harness_with_recorder(extra: &[(&str, &str)]) -> (Harness, Log) {
    let h = harness(extra).await;
    let (addr, log) = spawn_recording_fatman().await;
    h.lifecycle
        .routes
        .lock()
        .unwrap()
        .insert("rec".into(), route("rec", addr.to_string(), &[]));
    (h, log)
}

/// Everything PUB sends on a connection until it closes or is quiet for `quiet`.
async fn read_all(s: &mut TcpStream, quiet: Duration) -> String {
    let mut all = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(Ok(n)) = tokio::time::timeout(quiet, s.read(&mut chunk)).await {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&all).to_string()
}

/// Item 1 of the security issue, as reproduced: the framing header named in `Connection` used to
/// be dropped while PUB still framed the body by it, so the fatman read the body as a second,
/// unchecked request (a forged identity calling a guarded endpoint), and its answer waited on a
/// pooled connection for the next caller.
#[tokio::test]
async fn a_framing_header_named_in_connection_smuggles_nothing() {
    let (h, log) = harness_with_recorder(&[]).await;
    let inner = "POST /pub/fatman/rec/latest/api/v1/perform HTTP/1.1\r\nHost: x\r\n\
                 X-Racetrack-Caller: admin\r\nContent-Length: 2\r\n\r\n{}";
    for listed in [
        "Content-Length",
        "content-length, keep-alive",
        "Host, Content-Length",
    ] {
        log.lock().unwrap().clear();
        let outer = format!(
            "GET /pub/fatman/rec/latest/live HTTP/1.1\r\nHost: x\r\nConnection: {listed}\r\n\
             Content-Length: {}\r\n\r\n{inner}",
            inner.len()
        );
        let mut s = h.send(outer.as_bytes()).await;
        let answer = read_all(&mut s, Duration::from_millis(500)).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{listed}: {answer}");
        // A victim on its own connection gets its own answer, not a queued one.
        let (status, body) = h.get("/fatman/rec/latest/victim", Some("good")).await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(body["path"], "/pub/fatman/rec/latest/victim", "{listed}");
        let seen = log.lock().unwrap().clone();
        let paths: Vec<_> = seen
            .iter()
            .map(|s| (s.method.as_str(), s.path.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("GET", "/pub/fatman/rec/latest/live"),
                ("GET", "/pub/fatman/rec/latest/victim")
            ],
            "{listed}: the fatman read a request PUB never checked"
        );
        assert_eq!(
            seen[0].body,
            inner.as_bytes(),
            "{listed}: the body arrived whole"
        );
    }
}

/// Several, empty or decorated `Transfer-Encoding` headers are read differently by different
/// servers (TE.TE): refused before anything reaches a fatman.
#[tokio::test]
async fn ambiguous_transfer_encodings_are_refused_before_the_fatman() {
    let (h, log) = harness_with_recorder(&[]).await;
    let smuggled = "GET /pub/fatman/rec/latest/secret HTTP/1.1\r\nHost: x\r\n\r\n";
    for te in [
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: \r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n",
        "Transfer-Encoding: identity, chunked\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
        "Transfer-Encoding:\r\n",
    ] {
        let raw = format!(
            "POST /pub/fatman/rec/latest/api HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n{te}\r\n\
             0\r\n\r\n{smuggled}"
        );
        let mut s = h.send(raw.as_bytes()).await;
        let answer = read_all(&mut s, Duration::from_millis(500)).await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{te:?}: {answer}");
        assert_eq!(answer.matches("HTTP/1.1").count(), 1, "{te:?}: {answer}");
    }
    assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
}

/// A chunked body reaches the fatman in plain chunks PUB wrote itself: extensions and trailers
/// (where parsers disagree) are not passed on, and the body is the same.
#[tokio::test]
async fn chunked_bodies_are_forwarded_in_plain_chunks() {
    let (h, log) = harness_with_recorder(&[]).await;
    let raw = "POST /pub/fatman/rec/latest/api HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\
               Transfer-Encoding: chunked\r\n\r\n\
               3;name=\"a;b\"\r\nabc\r\n002\r\nde\r\n0\r\nContent-Length: 99\r\n\r\n\
               GET /pub/fatman/rec/latest/after HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\r\n";
    let mut s = h.send(raw.as_bytes()).await;
    let answer = read_all(&mut s, Duration::from_millis(500)).await;
    assert_eq!(answer.matches("HTTP/1.1 200").count(), 2, "{answer}");
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].body, b"abcde");
    assert_eq!(seen[1].path, "/pub/fatman/rec/latest/after");
}

/// Item 3: a probe path with something after it is no probe. `..;` and `\` are read as `..` and
/// `/` by some servers, so they are refused rather than forwarded without a token.
#[tokio::test]
async fn probe_paths_open_nothing_beyond_themselves() {
    let (h, log) = harness_with_recorder(&[]).await;
    for path in [
        "/pub/fatman/rec/latest/live/..;/api/v1/perform",
        "/pub/fatman/rec/latest/live/..\\api/v1/perform",
        "/pub/fatman/rec/latest/ready/..%3b/api/v1/perform",
        "/pub/fatman/rec/latest/health\\..\\api",
    ] {
        let answer = h
            .raw(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
            .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
    }
    for path in [
        "/pub/fatman/rec/latest/live/api/v1/perform",
        "/pub/fatman/rec/latest/ready/x",
        "/pub/fatman/rec/latest/live;x",
    ] {
        let answer = h
            .raw(&format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
            .await;
        assert!(answer.starts_with("HTTP/1.1 401"), "{path}: {answer}");
    }
    assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
    // The probes themselves still need no token.
    for probe in ["live", "ready", "health", "live/"] {
        let answer = h
            .raw(&format!(
                "GET /pub/fatman/rec/latest/{probe} HTTP/1.1\r\nHost: x\r\n\r\n"
            ))
            .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{probe}: {answer}");
    }
}

fn redis_url() -> Option<String> {
    let url = std::env::var("TEST_REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into());
    let addr = url.trim_start_matches("redis://").trim_end_matches('/');
    match std::net::TcpStream::connect(addr) {
        Ok(_) => Some(url),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("Redis at {url} is required under CI: {e}")
        }
        Err(e) => {
            eprintln!("skipped: no Redis at {url} ({e})");
            None
        }
    }
}

async fn metric(h: &Harness, line_start: &str) -> f64 {
    h.metrics()
        .await
        .lines()
        .filter(|l| l.starts_with(line_start))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Item 8: Lifecycle allowed a call; the grant was revoked (and the revocation announced) while
/// that answer was on its way. The answer serves the call that asked, but is not cached: the
/// next call asks again and is refused.
#[tokio::test]
async fn an_allow_answered_across_a_revocation_is_not_remembered() {
    let Some(redis) = redis_url() else { return };
    let (h, _log) = harness_with_recorder(&[("REDIS_URL", &redis)]).await;
    let subject = format!("s-race-{}", uuid_like());
    let token = format!("race-{}", uuid_like());
    h.lifecycle
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), (Outcome::Allowed, subject.clone()));
    wait_for("PUB's Redis subscription", async || {
        h.get("/health", None).await.1["redis_connected"] == true
    })
    .await;
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    *h.lifecycle.authorize_gate.lock().unwrap() = Some(gate.clone());
    let asked = h.lifecycle.authorizes.load(Ordering::SeqCst);
    let in_flight = {
        let client = h.client.clone();
        let url = format!("{}/fatman/rec/latest/x", h.pub_url);
        let token = token.clone();
        tokio::spawn(async move {
            let resp = client
                .get(url)
                .header("X-Racetrack-Auth", token)
                .send()
                .await;
            resp.unwrap().status().as_u16()
        })
    };
    wait_for("the call to ask Lifecycle", async || {
        h.lifecycle.authorizes.load(Ordering::SeqCst) > asked
    })
    .await;
    // The revocation: Lifecycle now refuses, and says so on Redis.
    h.lifecycle
        .tokens
        .lock()
        .unwrap()
        .insert(token.clone(), (Outcome::Forbidden, subject.clone()));
    let before = metric(&h, "pub_cache_invalidations{kind=\"subject\"}").await;
    let publisher = racetrack_events::Publisher::new(Some(&redis)).unwrap();
    publisher.publish(racetrack_events::Event::Subject {
        subject_id: subject.clone(),
    });
    wait_for("PUB to apply the invalidation", async || {
        metric(&h, "pub_cache_invalidations{kind=\"subject\"}").await > before
    })
    .await;
    // Now the answer read before the revocation arrives.
    *h.lifecycle.authorize_gate.lock().unwrap() = None;
    gate.add_permits(1);
    assert_eq!(
        in_flight.await.unwrap(),
        200,
        "the call in flight was allowed"
    );
    let (status, _) = h.get("/fatman/rec/latest/x", Some(&token)).await;
    assert_eq!(
        status, 403,
        "the allow from before the revocation was cached"
    );
    assert!(metric(&h, "pub_cache_stale_answers").await >= 1.0);
}

/// A connection from `ip` (a loopback address of our own choosing).
async fn connect_from(ip: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(format!("{ip}:0").parse().unwrap())?;
    socket.connect(to).await
}

/// Item 9: one address holding idle and trickling connections by the thousand takes only its
/// share of PUB's connections; a client elsewhere is served at once.
#[tokio::test]
async fn one_address_cannot_starve_the_others() {
    let (h, _log) = harness_with_recorder(&[
        ("MAX_CONNECTIONS", "1000"),
        ("MAX_CONNECTIONS_PER_ADDRESS", "400"),
        ("HEADER_READ_TIMEOUT", "30"),
        ("CLIENT_TIMEOUT", "30"),
    ])
    .await;
    let mut attackers = Vec::new();
    for i in 0..2000 {
        // A full accept queue leaves a connect hanging: the attacker moves on.
        let connect = connect_from("127.0.0.1", h.pub_addr);
        let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_millis(200), connect).await else {
            continue;
        };
        // Half idle; half trickle a head, or an allowed call's body, a byte at a time.
        if i % 2 == 1 {
            let start: &[u8] = if i % 4 == 1 {
                b"GET /pub/fatman/rec/latest/x HTTP/1.1\r\nHost: x\r\nX-Sl"
            } else {
                b"POST /pub/fatman/rec/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\nContent-Length: 100000\r\n\r\nab"
            };
            let _ = s.write_all(start).await;
        }
        attackers.push(s);
    }
    // Trickle on while the others are served.
    let trickle = tokio::spawn(async move {
        for _ in 0..20 {
            for s in attackers.iter_mut().skip(1).step_by(2) {
                let _ = s.try_write(b"o");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        attackers
    });
    let mut times = Vec::new();
    for round in 0..5 {
        let start = Instant::now();
        let mut s = tokio::time::timeout(
            Duration::from_secs(5),
            connect_from("127.0.0.2", h.pub_addr),
        )
        .await
        .expect("connect")
        .expect("connect");
        s.write_all(
            b"GET /pub/fatman/rec/latest/fair HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\r\n",
        )
        .await
        .unwrap();
        let mut buf = [0u8; 512];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("no answer within 5 s: starved")
            .unwrap();
        let took = start.elapsed();
        let answer = String::from_utf8_lossy(&buf[..n]);
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: {answer}"
        );
        // A hiccup of the shared CI machine may slow one round; starvation slows them all.
        assert!(
            took < Duration::from_secs(1),
            "round {round}: answered after {took:?}"
        );
        times.push(took);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    times.sort();
    assert!(
        times[times.len() / 2] < Duration::from_millis(100),
        "served after {times:?} (median over 100 ms)"
    );
    // The attacker leaves; its share is free again (metrics are read from its address).
    drop(trickle.await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = metric(&h, "pub_connections_refused{reason=\"per_address\"}").await;
    assert!(refused >= 1500.0, "refused {refused}");
}

/// Item 9: a body that stops arriving, and a response nobody reads, are given up after
/// `CLIENT_TIMEOUT`: neither holds PUB's or the fatman's connection for ever.
#[tokio::test]
async fn stalled_bodies_and_unread_responses_are_cut() {
    let (h, log) = harness_with_recorder(&[("CLIENT_TIMEOUT", "1")]).await;
    let mut s = h
        .send(b"POST /pub/fatman/rec/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\nContent-Length: 10\r\n\r\nab")
        .await;
    let start = Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
        .await
        .expect("a stalled body held the connection")
        .ok();
    assert!(start.elapsed() >= Duration::from_millis(900));
    assert!(
        log.lock().unwrap().is_empty(),
        "a partial body was answered"
    );

    // A fatman sending an endless response to a client that never reads it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut up, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = up.read(&mut buf).await;
        let _ = up
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\n")
            .await;
        let chunk = vec![b'x'; 64 * 1024];
        let started = Instant::now();
        while up.write_all(&chunk).await.is_ok() {
            if started.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        let _ = done_tx.send(started.elapsed());
    });
    h.lifecycle
        .routes
        .lock()
        .unwrap()
        .insert("flood".into(), route("flood", addr.to_string(), &[]));
    let _reader_that_never_reads = h
        .send(
            b"GET /pub/fatman/flood/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\r\n",
        )
        .await;
    let held = tokio::time::timeout(Duration::from_secs(15), done_rx)
        .await
        .expect("PUB kept writing to a client that never reads")
        .unwrap();
    assert!(held < Duration::from_secs(10), "{held:?}");
}

/// The identity PUB writes is the verified one, however the client spells its own: other
/// cases, and `_` for `-` (CGI and WSGI servers, the python3 job type's among them, read
/// `X_Racetrack_Caller` as `X-Racetrack-Caller`).
#[tokio::test]
async fn identity_headers_cannot_be_forged_in_any_spelling() {
    let (h, log) = harness_with_recorder(&[]).await;
    let raw = "GET /pub/fatman/rec/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\
               x-RACETRACK-caller: admin\r\nX-Racetrack-Caller-Type: user\r\n\
               X_Racetrack_Caller: admin\r\nx_racetrack_caller_type: user\r\n\
               X_Forwarded_For: 10.9.9.9\r\n\r\n";
    let answer = h.raw(raw).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen[0].caller.as_deref(), Some("consumer-s-good"));
    let aliased: Vec<_> = seen[0]
        .header_names
        .iter()
        .filter(|n| n.contains('_'))
        .collect();
    assert!(aliased.is_empty(), "reached the fatman: {aliased:?}");
}
