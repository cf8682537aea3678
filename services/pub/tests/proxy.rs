//! PUB end to end over real sockets: a fake Lifecycle (the real gRPC contract, scripted answers)
//! and fake fatmen (well-behaved, slow, broken). Real fatmen behind the real Lifecycle are
//! exercised in integration-tests/tests/pub.rs.

mod common;

use common::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn allowed_calls_reach_the_fatman_with_the_verified_identity() {
    let h = harness(&[]).await;
    let resp = h
        .client
        .post(format!(
            "{}/fatman/echo/latest/api//v1/./perform?x=1",
            h.pub_url
        ))
        .header("X-Racetrack-Auth", "good")
        .header("X-Racetrack-Caller", "forged-admin")
        .header("X-Request-Tracing-Id", "trace-123")
        .body("{\"numbers\": [1, 2]}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-request-tracing-id"], "trace-123");
    assert_eq!(resp.headers()["location"], "/pub/fatman/echo/1/moved");
    let echo: Value = resp.json().await.unwrap();
    assert_eq!(echo["path"], "/pub/fatman/echo/latest/api/v1/perform");
    assert_eq!(echo["body"], "{\"numbers\": [1, 2]}");
    let headers = &echo["headers"];
    assert_eq!(headers["x-racetrack-caller"], "consumer-s-good");
    assert_eq!(headers["x-racetrack-caller-type"], "esc");
    assert_eq!(headers["x-request-tracing-id"], "trace-123");
    assert_eq!(
        headers["x-racetrack-auth"], "good",
        "forwarded as the original does"
    );
    // The same path without the /pub prefix, and the token as a cookie (dashboard sessions).
    let resp = h
        .client
        .get(format!(
            "http://{}/fatman/echo/1.0.0/api/v1/perform",
            h.pub_addr
        ))
        .header("Cookie", "X-Racetrack-Auth=good")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn refusals_have_the_right_status_and_say_which_hop() {
    let h = harness(&[]).await;
    let (s, body) = h.get("/fatman/echo/latest/api/v1/perform", None).await;
    assert_eq!((s, body["hop"].as_str()), (401, Some("auth")), "{body}");
    let (s, _) = h
        .get(
            "/fatman/echo/latest/api/v1/perform",
            Some("garbage.token.x"),
        )
        .await;
    assert_eq!(s, 401);
    let (s, body) = h
        .get("/fatman/echo/latest/api/v1/perform", Some("nope"))
        .await;
    assert_eq!(s, 403, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("decided for /api/v1/perform"),
        "{body}"
    );
    let (s, _) = h
        .get("/fatman/echo/latest/api/v1/perform", Some("limited"))
        .await;
    assert_eq!(s, 200);
    let (s, _) = h
        .get("/fatman/echo/latest/api/v1/other", Some("limited"))
        .await;
    assert_eq!(s, 403);
    // Dot segments cannot turn a permitted endpoint into another one.
    let (s, _) = h
        .get(
            "/fatman/echo/latest/api/v1/perform/../other",
            Some("limited"),
        )
        .await;
    assert_eq!(s, 403);
    let (s, body) = h.get("/fatman/nothing/latest/x", Some("good")).await;
    assert_eq!((s, body["fatmanName"].as_str()), (404, Some("nothing")));
    // HTTP clients resolve dot segments themselves; a raw request shows what PUB does.
    let head = h.raw("GET /pub/fatman/echo/latest/%2e%2e/%2e%2e/other/1/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\r\n").await;
    assert!(
        head.starts_with("HTTP/1.1 400") && head.contains("\"hop\":\"pub\""),
        "{head}"
    );
    let head = h.raw("GET /pub/fatman/echo/latest/x/../../../other/1/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (s, _) = h.get("/fatman/echo/latest/a%2Fb", Some("good")).await;
    assert_eq!(s, 400);
    let resp = h
        .client
        .put(format!("{}/fatman/echo/latest/x", h.pub_url))
        .header("X-Racetrack-Auth", "good")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    let (s, body) = h
        .get("/fatman/lost/latest/api/v1/perform", Some("good"))
        .await;
    assert_eq!(
        (s, body["fatmanStatus"].as_str()),
        (503, Some("lost")),
        "{body}"
    );
}

#[tokio::test]
async fn public_endpoints_and_probes_need_no_token_but_only_they() {
    let h = harness(&[]).await;
    assert_eq!(
        h.get("/fatman/echo/latest/api/v1/public", None).await.0,
        200
    );
    assert_eq!(
        h.get("/fatman/echo/latest/api/v1/public/sub", None).await.0,
        200
    );
    assert_eq!(
        h.get("/fatman/echo/latest/api/v1/publicity", None).await.0,
        401
    );
    assert_eq!(h.get("/fatman/echo/latest/live", None).await.0, 200);
    assert_eq!(
        h.get("/fatman/echo/latest/api/v1/perform", None).await.0,
        401
    );
    assert_eq!(
        h.lifecycle.authorizes.load(Ordering::SeqCst),
        0,
        "no token, nothing to ask"
    );
}

#[tokio::test]
async fn warm_cache_asks_lifecycle_nothing_and_fails_closed_when_it_is_gone() {
    let h = harness(&[("AUTH_CACHE_TTL", "2")]).await;
    for _ in 0..20 {
        assert_eq!(
            h.get("/fatman/echo/latest/api/v1/perform", Some("good"))
                .await
                .0,
            200
        );
    }
    assert_eq!(h.lifecycle.resolves.load(Ordering::SeqCst), 1);
    assert_eq!(h.lifecycle.authorizes.load(Ordering::SeqCst), 1);
    h.lifecycle.down.store(true, Ordering::SeqCst);
    // Cached allow: still served.
    assert_eq!(
        h.get("/fatman/echo/latest/api/v1/perform", Some("good"))
            .await
            .0,
        200
    );
    // Not cached: refused, and the body names Lifecycle.
    let (s, body) = h
        .get("/fatman/echo/latest/api/v1/perform", Some("other"))
        .await;
    assert_eq!(
        (s, body["hop"].as_str()),
        (503, Some("lifecycle")),
        "{body}"
    );
    // After the TTL the cached allow is gone too.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        h.get("/fatman/echo/latest/api/v1/perform", Some("good"))
            .await
            .0,
        503
    );
}

#[tokio::test]
async fn broken_slow_and_missing_fatmen_are_explained() {
    let h = harness(&[]).await;
    let (s, body) = h.get("/fatman/garbage/latest/x", Some("good")).await;
    assert_eq!((s, body["hop"].as_str()), (502, Some("fatman")), "{body}");
    let (s, body) = h.get("/fatman/refused/latest/x", Some("good")).await;
    assert_eq!(s, 502, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("cannot connect"),
        "{body}"
    );
    let (s, body) = h.get("/fatman/silent/latest/x", Some("good")).await;
    assert_eq!(s, 504, "{body}");
    // Truncated body: the client sees a broken response, not a hang; PUB keeps serving.
    let r = h
        .client
        .get(format!("{}/fatman/half/latest/x", h.pub_url))
        .header("X-Racetrack-Auth", "good")
        .send()
        .await
        .unwrap();
    assert!(r.bytes().await.is_err());
    assert_eq!(h.get("/fatman/echo/latest/x", Some("good")).await.0, 200);
    // Parked connections the fatman has closed are not used, or the call is sent again on a
    // new one: back-to-back and after a pause, every call succeeds.
    for i in 0..6 {
        if i % 2 == 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let r = h
            .client
            .get(format!("{}/fatman/oneshot/latest/x", h.pub_url))
            .header("X-Racetrack-Auth", "good")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "call {i}");
        assert_eq!(r.text().await.unwrap(), "ok");
    }
}

#[tokio::test]
async fn hostile_clients_are_bounded() {
    let h = harness(&[]).await;
    // Huge header → 431.
    let big = "x".repeat(100_000);
    let resp = h
        .client
        .get(format!("{}/fatman/echo/latest/x", h.pub_url))
        .header("X-Big", big)
        .send()
        .await;
    match resp {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => assert!(e.is_request() || e.is_connect(), "{e}"),
    }
    // Slowloris: a head that never ends is cut after HEADER_READ_TIMEOUT (1 s here).
    let mut slow = h.send(b"GET /pub/live HTTP/1.1\r\nHost: x\r\nX-A: ").await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the slow connection was not closed");
    // Others are served meanwhile.
    assert_eq!(h.get("/live", None).await.0, 200);
}

#[tokio::test]
async fn streams_and_upgrades_pass_through() {
    let h = harness(&[]).await;
    let resp = h
        .client
        .get(format!("{}/fatman/echo/latest/stream", h.pub_url))
        .header("X-Racetrack-Auth", "good")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let start = std::time::Instant::now();
    let first = futures_util::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: first\n\n");
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "first event was buffered"
    );
    let second = futures_util::StreamExt::next(&mut stream)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&second[..], b"data: second\n\n");

    for (token, expect) in [("", "401"), ("good", "101")] {
        let req = format!("GET /pub/fatman/echo/latest/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\nX-Racetrack-Auth: {token}\r\n\r\n");
        let mut s = h.send(req.as_bytes()).await;
        let mut buf = vec![0u8; 4096];
        let n = s.read(&mut buf).await.unwrap();
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(head.starts_with(&format!("HTTP/1.1 {expect}")), "{head}");
        if expect == "101" {
            s.write_all(b"ping over the upgrade").await.unwrap();
            let n = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(&buf[..n], b"ping over the upgrade");
        }
    }
}

#[tokio::test]
async fn own_routes_answer_without_lifecycle() {
    let h = harness(&[]).await;
    assert_eq!(
        h.get("/live", None).await,
        (200, serde_json::json!({"live": true}))
    );
    let (s, health) = h.get("/health", None).await;
    assert_eq!(
        (
            s,
            health["service"].as_str(),
            health["auth_required"].as_bool()
        ),
        (200, Some("pub"), Some(true))
    );
    // The first call is decided, the next two (same keep-alive connection) remembered: all
    // three are counted.
    for _ in 0..3 {
        assert_eq!(h.get("/fatman/echo/latest/x", Some("good")).await.0, 200);
    }
    let metrics = h.metrics().await;
    assert!(
        metrics
            .contains("pub_fatman_proxy_requests{fatman_name=\"echo\",fatman_version=\"1.0.0\"} 3"),
        "{metrics}"
    );
    for line in [
        "pub_auth_successful 3",
        "pub_fatman_call_response_time_histogram_count{fatman_name=\"echo\",fatman_version=\"1.0.0\"} 3",
        "pub_fatman_proxy_response_codes{fatman_name=\"echo\",fatman_version=\"1.0.0\",status_code=\"200\"} 3",
    ] {
        assert!(metrics.contains(line), "{line}: {metrics}");
    }
    assert!(metrics.contains("pub_auth_cache_misses"), "{metrics}");
    assert_eq!(h.lifecycle.resolves.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn tls_listener_serves_https_only() {
    let dir = std::env::temp_dir().join(format!("pub-tls-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = racetrack_tls::testing::self_signed(&dir);
    let h = harness(&[
        ("TLS_CERT_FILE", cert.to_str().unwrap()),
        ("TLS_KEY_FILE", key.to_str().unwrap()),
    ])
    .await;
    let text = racetrack_tls::testing::https_raw(
        h.pub_addr,
        &cert,
        "GET /pub/fatman/echo/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\nConnection: close\r\n\r\n",
    )
    .await
    .expect("TLS handshake");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("/pub/fatman/echo/latest/x"), "{text}");
    // Plain HTTP on the TLS port gets nothing useful.
    let plain = h
        .raw_or_empty("GET /pub/live HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_wire_protocol_is_kept_for_every_kind_of_client() {
    let h = harness(&[]).await;
    // Two pipelined calls, the second with a chunked body: both answered, in order.
    let pipelined = concat!(
        "GET /pub/fatman/echo/latest/one HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\r\n",
        "POST /pub/fatman/echo/latest/two HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n",
        "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    );
    let mut s = h.send(pipelined.as_bytes()).await;
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("/pub/fatman/echo/latest/one"), "{body}");
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["body"], "abcde");

    // HTTP/1.0 keep-alive is confirmed (1.0 closes unless told), plain 1.0 is closed.
    let mut s = TcpStream::connect(h.pub_addr).await.unwrap();
    for _ in 0..2 {
        s.write_all(b"GET /pub/fatman/echo/latest/x HTTP/1.0\r\nConnection: keep-alive\r\nX-Racetrack-Auth: good\r\n\r\n")
            .await
            .unwrap();
        let (head, _) = read_response(&mut s).await;
        assert!(
            head.to_ascii_lowercase().contains("connection: keep-alive"),
            "{head}"
        );
    }
    let head = h.raw("GET /pub/live HTTP/1.0\r\n\r\n").await;
    assert!(head.contains("connection: close"), "{head}");
    // A stream to an HTTP/1.0 client is not chunked (1.0 has no chunks): it ends with the
    // connection.
    let mut s = h
        .send(b"GET /pub/fatman/echo/latest/stream HTTP/1.0\r\nX-Racetrack-Auth: good\r\n\r\n")
        .await;
    let mut all = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut all))
        .await
        .unwrap()
        .unwrap();
    let all = String::from_utf8_lossy(&all).to_ascii_lowercase();
    assert!(all.starts_with("http/1.1 200"), "{all}");
    assert!(!all.contains("transfer-encoding"), "{all}");
    assert!(all.ends_with("data: first\n\ndata: second\n\n"), "{all}");

    // Expect: 100-continue: a refused caller is answered at once and never asked for the body;
    // an allowed one is told to continue.
    let head = h.raw("POST /pub/fatman/echo/latest/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    let mut s = h.send(b"POST /pub/fatman/echo/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n").await;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
    s.write_all(b"hello").await.unwrap();
    let (head, body) = read_response(&mut s).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let echo: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echo["body"], "hello");
    assert!(echo["headers"].get("expect").is_none(), "{echo}");

    // Ambiguous lengths are refused before anything reaches a fatman.
    let head = h.raw("POST /pub/fatman/echo/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
}

/// A shutdown stops accepting, closes idle connections at once and lets the call in flight
/// finish before PUB ends (the binary's wiring: a control thread and a worker).
#[tokio::test]
async fn shutdown_finishes_the_calls_in_flight() {
    let h = harness(&[("SHUTDOWN_TIMEOUT", "10")]).await;
    let fatman = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fatman_addr = fatman.local_addr().unwrap();
    let (asked_tx, asked_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = fatman.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await.unwrap();
        let _ = asked_tx.send(());
        // Below the harness's UPSTREAM_TIMEOUT (1 s).
        tokio::time::sleep(Duration::from_millis(600)).await;
        s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\ndone")
            .await
            .unwrap();
    });
    h.lifecycle
        .routes
        .lock()
        .unwrap()
        .insert("slow".into(), route("slow", fatman_addr.to_string(), &[]));
    let mut busy = h
        .send(
            b"GET /pub/fatman/slow/latest/x HTTP/1.1\r\nHost: x\r\nX-Racetrack-Auth: good\r\n\r\n",
        )
        .await;
    asked_rx.await.unwrap();
    let mut idle = h.send(b"GET /pub/live HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let (head, _) = read_response(&mut idle).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");

    let addr = h.pub_addr;
    let Harness { server, .. } = h;
    let started = std::time::Instant::now();
    let stopping = tokio::task::spawn_blocking(move || server.shutdown());
    // The idle connection is closed at once; nobody new gets in.
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_millis(500), idle.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "an idle connection was kept open");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a new connection was accepted while shutting down"
    );
    // The call in flight is answered whole.
    let (head, body) = read_response(&mut busy).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(body, "done");
    stopping.await.unwrap().unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(5),
        "shutdown took {took:?}"
    );
}
