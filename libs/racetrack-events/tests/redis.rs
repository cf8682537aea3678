//! Against the real Redis `make test-services` starts on 127.0.0.1:6379.

use std::time::Duration;

use racetrack_events::{ping, subscribe, Event, Notification, Publisher, RedisAddr};

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

/// What this crate needs (README): its one channel, PUBLISH/SUBSCRIBE/PING, no keys.
const LEAST_PRIVILEGE: &[&str] = &[
    "resetchannels",
    "&racetrack:invalidate",
    "-@all",
    "+publish",
    "+subscribe",
    "+ping",
];

/// A Redis ACL user made for one test and deleted when it ends, however it ends.
struct AclUser {
    admin_url: String,
    name: String,
}

impl AclUser {
    async fn create(admin_url: &str, password: &str, rules: &[&str]) -> AclUser {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("rt-events-{}-{nanos}", std::process::id());
        let mut admin = redis::Client::open(admin_url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg(&name)
            .arg("reset")
            .arg("on")
            .arg(format!(">{password}"))
            .arg(rules)
            .exec_async(&mut admin)
            .await
            .unwrap();
        AclUser {
            admin_url: admin_url.to_string(),
            name,
        }
    }
}

impl Drop for AclUser {
    fn drop(&mut self) {
        let deleted = redis::Client::open(self.admin_url.as_str())
            .and_then(|c| c.get_connection())
            .and_then(|mut c| {
                redis::cmd("ACL")
                    .arg("DELUSER")
                    .arg(&self.name)
                    .exec(&mut c)
            });
        if let Err(e) = deleted {
            eprintln!("could not delete ACL user {}: {e}", self.name);
        }
    }
}

/// `redis://user:password@host:port/db` with the parts percent-encoded where needed.
fn url_as(base: &str, user: &str, password_encoded: &str) -> String {
    let a = RedisAddr::parse(base).unwrap();
    format!(
        "redis://{user}:{password_encoded}@{}:{}/{}",
        a.host, a.port, a.db
    )
}

#[tokio::test]
async fn an_acl_user_and_password_from_the_url_publish_and_subscribe() {
    let Some(url) = redis_url() else { return };
    let user = AclUser::create(&url, "s3cret:with@odd/chars", LEAST_PRIVILEGE).await;
    let as_user = url_as(&url, &user.name, "s3cret%3Awith%40odd%2Fchars");
    ping(&as_user).await.unwrap();

    let mut rx = subscribe(&as_user).unwrap();
    assert_eq!(next(&mut rx).await, Notification::Connected);
    let event = Event::Fatman {
        name: format!("acl-{}", user.name),
    };
    Publisher::new(Some(&as_user))
        .unwrap()
        .publish(event.clone());
    // Other tests publish on the same channel meanwhile.
    loop {
        match next(&mut rx).await {
            Notification::Event(got) if got == event => break,
            Notification::Event(_) => continue,
            other => panic!("{other:?} before the event"),
        }
    }

    // The credentials are really checked: a wrong password neither pings nor subscribes.
    let wrong = url_as(&url, &user.name, "not-the-password");
    let err = ping(&wrong).await.unwrap_err().to_string();
    assert!(err.contains("authentication failed"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    let mut denied = subscribe(&wrong).unwrap();
    assert_eq!(next(&mut denied).await, Notification::Disconnected);
}

async fn within(rx: &mut tokio::sync::mpsc::Receiver<Notification>, secs: u64) -> Notification {
    tokio::time::timeout(Duration::from_secs(secs), rx.recv())
        .await
        .expect("a notification in time")
        .expect("subscriber alive (its task did not panic)")
}

#[tokio::test]
async fn rediss_against_a_plain_redis_fails_cleanly() {
    let Some(url) = redis_url() else { return };
    let plain = RedisAddr::parse(&url).unwrap();
    let tls_url = format!("rediss://{}:{}", plain.host, plain.port);
    assert!(RedisAddr::parse(&tls_url).unwrap().tls);

    // Redis takes the ClientHello for the start of an inline command and waits for its end, so
    // the handshake can only time out.
    let start = std::time::Instant::now();
    let err = ping(&tls_url).await.unwrap_err().to_string();
    assert!(err.contains("timed out"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let publisher = Publisher::new(Some(&tls_url)).unwrap();
    let start = std::time::Instant::now();
    publisher.publish(Event::All);
    assert!(start.elapsed() < Duration::from_millis(100));
    let mut rx = subscribe(&tls_url).unwrap();
    assert_eq!(within(&mut rx, 10).await, Notification::Disconnected);
}

#[tokio::test]
async fn rediss_against_a_plain_text_answer_is_a_tls_handshake_error() {
    // A plain server that answers at once, as a Redis with a small inline limit or a proxy does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_url = format!("rediss://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut hello = [0u8; 512];
            let _ = conn.read(&mut hello).await;
            let _ = conn.write_all(b"-ERR unknown command\r\n").await;
        }
    });

    // The publisher's client (the redis crate's rustls) and the subscriber's own both refuse.
    let err = ping(&tls_url).await.unwrap_err().to_string();
    assert!(
        err.contains("corrupt message"),
        "not a TLS handshake error: {err}"
    );
    let mut rx = subscribe(&tls_url).unwrap();
    assert_eq!(within(&mut rx, 5).await, Notification::Disconnected);
    assert_eq!(within(&mut rx, 5).await, Notification::Disconnected);
    server.abort();
}

/// Waits for `want`, skipping the events other tests publish on the same channel meanwhile.
async fn until(rx: &mut tokio::sync::mpsc::Receiver<Notification>, want: &Notification) {
    loop {
        match within(rx, 5).await {
            got if &got == want => return,
            Notification::Event(_) => continue,
            other => panic!("{other:?} while waiting for {want:?}"),
        }
    }
}

#[tokio::test]
async fn connections_killed_by_redis_are_remade_and_the_subscriber_says_connected_again() {
    let Some(url) = redis_url() else { return };
    // A user of its own so that killing its connections touches no other test.
    let user = AclUser::create(&url, "kill-me", LEAST_PRIVILEGE).await;
    let as_user = url_as(&url, &user.name, "kill-me");
    let mut rx = subscribe(&as_user).unwrap();
    assert_eq!(within(&mut rx, 5).await, Notification::Connected);
    let publisher = Publisher::new(Some(&as_user)).unwrap();
    let first = Event::Subject {
        subject_id: format!("before-{}", user.name),
    };
    publisher.publish(first.clone());
    until(&mut rx, &Notification::Event(first)).await;

    let mut admin = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("USER")
        .arg(&user.name)
        .query_async(&mut admin)
        .await
        .unwrap();
    assert_eq!(
        killed, 2,
        "the publisher's and the subscriber's connections"
    );

    // PUB drops its whole cache on this Connected: events may have been missed in between.
    until(&mut rx, &Notification::Disconnected).await;
    until(&mut rx, &Notification::Connected).await;
    let second = Event::Subject {
        subject_id: format!("after-{}", user.name),
    };
    publisher.publish(second.clone());
    until(&mut rx, &Notification::Event(second)).await;
}

#[tokio::test]
async fn a_redis_that_never_answers_never_blocks_publishers() {
    // Accepts connections and reads commands but never replies: every PUBLISH waits for its
    // response timeout in the background while the queue fills and overflows.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut held = Vec::new();
        loop {
            let (mut conn, _) = listener.accept().await.unwrap();
            held.push(tokio::spawn(async move {
                let mut sink = [0u8; 1024];
                while conn.read(&mut sink).await.map(|n| n > 0).unwrap_or(false) {}
            }));
        }
    });
    let publisher = Publisher::new(Some(&url)).unwrap();
    let start = std::time::Instant::now();
    for i in 0..5000 {
        publisher.publish(Event::Fatman {
            name: format!("f{i}"),
        });
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "publishing 5000 events took {:?}",
        start.elapsed()
    );
    server.abort();
}
