//! Against the real Redis `make test-services` starts on 127.0.0.1:6379.

use std::time::Duration;

use racetrack_events::{subscribe, Event, Notification, Publisher};

fn redis_url() -> Option<String> {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let addr = url
        .trim_start_matches("redis://")
        .split('/')
        .next()?
        .to_string();
    if std::net::TcpStream::connect(&addr).is_ok() {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("Redis at {addr} is required under CI (make test-services starts it)");
    }
    eprintln!("SKIPPED: no Redis at {addr}; run `make test-services`");
    None
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Notification>) -> Notification {
    tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("a notification within 3 s")
        .expect("subscriber alive")
}

#[tokio::test]
async fn published_events_reach_every_subscriber() {
    let Some(url) = redis_url() else { return };
    let mut a = subscribe(&url).unwrap();
    let mut b = subscribe(&url).unwrap();
    assert_eq!(next(&mut a).await, Notification::Connected);
    assert_eq!(next(&mut b).await, Notification::Connected);

    let publisher = Publisher::new(Some(&url)).unwrap();
    let revoked = Event::Subject {
        subject_id: format!("s-{}", std::process::id()),
    };
    publisher.publish(revoked.clone());
    publisher.publish(Event::Fatman {
        name: "adder".into(),
    });
    for rx in [&mut a, &mut b] {
        assert_eq!(next(rx).await, Notification::Event(revoked.clone()));
        assert_eq!(
            next(rx).await,
            Notification::Event(Event::Fatman {
                name: "adder".into()
            })
        );
    }
}

#[tokio::test]
async fn unreachable_redis_never_blocks_publishers() {
    // Nothing listens on port 1: publishing must still return at once.
    let publisher = Publisher::new(Some("redis://127.0.0.1:1")).unwrap();
    let start = std::time::Instant::now();
    for _ in 0..100 {
        publisher.publish(Event::All);
    }
    assert!(start.elapsed() < Duration::from_millis(500));
    let mut rx = subscribe("redis://127.0.0.1:1").unwrap();
    assert_eq!(next(&mut rx).await, Notification::Disconnected);
}
