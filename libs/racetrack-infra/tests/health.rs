//! Health checks against a scripted fake fatman on loopback (no Docker needed).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use racetrack_infra::health::{check, wait_until_ready, wait_until_ready_with};
use racetrack_infra::InfraError;

type Routes = Arc<dyn Fn(&str) -> (u16, String) + Send + Sync>;

/// Serves `routes(path) -> (status, body)` on 127.0.0.1, one connection at a time; returns
/// `host:port`. The thread lives until the test process ends.
fn fake_fatman(routes: impl Fn(&str) -> (u16, String) + Send + Sync + 'static) -> String {
    let routes: Routes = Arc::new(routes);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16384 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
            let (status, body) = routes(&path);
            let reason = match status {
                200 => "OK",
                404 => "Not Found",
                500 => "Internal Server Error",
                503 => "Service Unavailable",
                _ => "Whatever",
            };
            let response = format!(
                "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

fn ok() -> (u16, String) {
    (200, "{}".into())
}

/// An address where nothing listens.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test]
async fn ready_fatman_passes_at_once() {
    let addr = fake_fatman(|_| ok());
    let started = Instant::now();
    wait_until_ready(&addr, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    let health = check(&addr).await;
    assert!(
        health.live && health.ready && health.error.is_none(),
        "{health:?}"
    );
}

#[tokio::test]
async fn unready_fatman_times_out_quoting_the_last_answer() {
    let addr = fake_fatman(|path| match path {
        "/ready" => (503, r#"{"ready":false}"#.into()),
        _ => ok(),
    });
    let started = Instant::now();
    let err = wait_until_ready(&addr, Duration::from_secs(1))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(
        err,
        InfraError::Timeout(
            r#"fatman did not become ready within 1s: GET /ready answered 503 Service Unavailable: {"ready":false}"#
                .into()
        )
    );
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );

    let health = check(&addr).await;
    assert!(health.live && !health.ready, "{health:?}");
    assert!(health.error.unwrap().contains("still initializing"));
}

#[tokio::test]
async fn nothing_listening_times_out_with_connection_refused() {
    let addr = closed_port();
    let err = wait_until_ready(&addr, Duration::from_millis(700))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        InfraError::Timeout(
            "fatman did not become ready within 700ms: GET /live: connection refused".into()
        )
    );
    let health = check(&addr).await;
    assert!(!health.live && !health.ready);
    assert_eq!(
        health.error.as_deref(),
        Some("GET /live: connection refused")
    );
}

#[tokio::test]
async fn fatman_becoming_ready_later_passes() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let addr = fake_fatman(move |path| match path {
        "/ready" if counter.fetch_add(1, Ordering::SeqCst) < 3 => (503, String::new()),
        _ => ok(),
    });
    wait_until_ready(&addr, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn missing_endpoints_and_init_errors_are_final() {
    let no_live = fake_fatman(|path| match path {
        "/live" => (404, String::new()),
        _ => ok(),
    });
    let no_ready = fake_fatman(|path| match path {
        "/ready" => (404, String::new()),
        _ => ok(),
    });
    let init_error = fake_fatman(|path| match path {
        "/live" => (
            500,
            r#"{"live":false,"error":"model failed to load"}"#.into(),
        ),
        _ => ok(),
    });
    let plain_500 = fake_fatman(|path| match path {
        "/live" => (500, "oops".into()),
        _ => ok(),
    });
    let cases = [
        (
            no_live,
            "liveness endpoint not found (GET /live answered 404)",
        ),
        (
            no_ready,
            "readiness endpoint not found (GET /ready answered 404)",
        ),
        (
            init_error,
            "fatman initialization error: model failed to load",
        ),
        (
            plain_500,
            "fatman liveness error: GET /live answered 500 Internal Server Error: oops",
        ),
    ];
    for (addr, expected) in cases {
        let started = Instant::now();
        let err = wait_until_ready(&addr, Duration::from_secs(30))
            .await
            .unwrap_err();
        assert_eq!(err, InfraError::Unhealthy(expected.into()));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "not final: {expected}"
        );
    }
}

#[tokio::test]
async fn an_older_instance_answering_is_not_ready() {
    let addr = fake_fatman(|path| match path {
        "/live" => (200, r#"{"live":true,"deployment_timestamp":"5"}"#.into()),
        _ => ok(),
    });
    wait_until_ready_with(&addr, Duration::from_secs(5), Some(5))
        .await
        .unwrap();
    let err = wait_until_ready_with(&addr, Duration::from_millis(800), Some(6))
        .await
        .unwrap_err();
    assert!(matches!(err, InfraError::Timeout(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("an older instance is still answering"),
        "{err}"
    );
}

#[tokio::test]
async fn no_address_is_reported() {
    let err = wait_until_ready("", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(matches!(err, InfraError::Unhealthy(_)), "{err:?}");
    let health = check("").await;
    assert!(!health.live && health.error.is_some());
}
