//! A hostile "Redis" on loopback: after confirming the subscription it sends frames announcing
//! huge lengths, deeply nested huge arrays or a line that never ends. The subscriber must drop
//! the connection with an error and reconnect, never buffering more than a bounded amount: the
//! `redis` crate waits for a reply to end, so a half-sent reply ends at the next unanswered
//! `PING` (a few seconds) and a flood at the subscriber's byte budget.

use std::time::{Duration, Instant};

use racetrack_events::{subscribe, Notification};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the fake server sends after the subscription is confirmed.
#[derive(Clone, Copy, Debug)]
enum Attack {
    HugeBulk,
    HugeArray,
    /// Arrays of a million items each, nested: each header alone would reserve tens of MiB, and
    /// the client would wait for items forever.
    NestedArrays,
    /// Bytes without CRLF for as long as the client keeps reading (up to 64 MiB).
    EndlessLine,
}

const ENDLESS_CAP: usize = 64 << 20;

async fn read_command(conn: &mut tokio::net::TcpStream) {
    // The client names itself first (CLIENT SETINFO, answered +OK as Redis does), then sends
    // SUBSCRIBE racetrack:invalidate: short commands, read whole.
    let mut buf = [0u8; 256];
    let mut seen = Vec::new();
    let mut answered = 0;
    while !seen.ends_with(b"racetrack:invalidate\r\n") {
        let n = conn.read(&mut buf).await.unwrap();
        assert!(n > 0, "client closed before subscribing");
        seen.extend_from_slice(&buf[..n]);
        let asked = seen.windows(7).filter(|w| w == b"SETINFO").count();
        for _ in answered..asked {
            conn.write_all(b"+OK\r\n").await.unwrap();
        }
        answered = asked;
    }
}

/// Serves one attack per connection, in order; returns how many bytes of the endless line the
/// client accepted before hanging up.
async fn hostile_server(listener: TcpListener, attacks: Vec<Attack>) -> usize {
    let mut endless_sent = 0;
    for attack in attacks {
        let (mut conn, _) = listener.accept().await.unwrap();
        read_command(&mut conn).await;
        conn.write_all(b"*3\r\n$9\r\nsubscribe\r\n$20\r\nracetrack:invalidate\r\n:1\r\n")
            .await
            .unwrap();
        match attack {
            Attack::HugeBulk => {
                let _ = conn.write_all(b"$9999999999\r\n").await;
            }
            Attack::HugeArray => {
                let _ = conn.write_all(b"*2000000000\r\n").await;
            }
            Attack::NestedArrays => {
                let _ = conn.write_all(&b"*1000000\r\n".repeat(64)).await;
            }
            Attack::EndlessLine => {
                let chunk = vec![b'a'; 64 * 1024];
                let _ = conn.write_all(b"+").await;
                while endless_sent < ENDLESS_CAP {
                    match conn.write_all(&chunk).await {
                        Ok(()) => endless_sent += chunk.len(),
                        Err(_) => break,
                    }
                }
            }
        }
        // Hold the connection open: only the client may end it.
        let mut sink = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(10), async {
            while conn.read(&mut sink).await.map(|n| n > 0).unwrap_or(false) {}
        })
        .await;
    }
    endless_sent
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Notification>, attack: Attack) -> Notification {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no notification within 10 s during {attack:?}"))
        .expect("the subscriber task is alive (it did not panic)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_frames_end_the_connection_and_the_subscriber_reconnects() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    let attacks = vec![
        Attack::HugeBulk,
        Attack::HugeArray,
        Attack::NestedArrays,
        Attack::EndlessLine,
    ];
    let server = tokio::spawn(hostile_server(listener, attacks.clone()));
    let started = Instant::now();
    let mut rx = subscribe(&url).unwrap();
    for &attack in &attacks {
        assert_eq!(next(&mut rx, attack).await, Notification::Connected);
        assert_eq!(
            next(&mut rx, attack).await,
            Notification::Disconnected,
            "{attack:?} must end the connection"
        );
    }
    drop(rx);
    let endless_sent = tokio::time::timeout(Duration::from_secs(20), server)
        .await
        .expect("server done")
        .unwrap();
    // The kernel buffers a few MiB at most; the rest must have been refused by the client.
    assert!(
        endless_sent < 16 << 20,
        "the client swallowed {} MiB of one line",
        endless_sent >> 20
    );
    assert!(started.elapsed() < Duration::from_secs(30));
}
