//! Listening for events: one long-lived SUBSCRIBE connection, re-made after any failure.

use std::time::Duration;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::resp::{command, read_frame, Frame};
use crate::{redact, Event, EventError, RedisAddr, CHANNEL};

/// What a subscriber hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// (Re)subscribed. Events may have been missed while disconnected: drop everything cached.
    Connected,
    /// The connection is gone; [`Notification::Connected`] follows once it is back.
    Disconnected,
    Event(Event),
}

/// Silence longer than this means the connection is dead even if TCP has not noticed.
const PING_EVERY: Duration = Duration::from_secs(10);
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// Spawns the listener on the current Tokio runtime; notifications arrive on the returned channel
/// until it is dropped.
pub fn subscribe(redis_url: &str) -> Result<mpsc::Receiver<Notification>, EventError> {
    let addr = RedisAddr::parse(redis_url)?;
    let shown = redact(redis_url);
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(async move {
        loop {
            let result = listen(&addr, &tx).await;
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(Notification::Disconnected).await;
            if let Err(e) = result {
                tracing::warn!(redis = %shown, error = %e, "redis subscription lost; retrying");
            }
            tokio::time::sleep(RECONNECT_AFTER).await;
        }
    });
    Ok(rx)
}

async fn expect_ok(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Result<(), EventError> {
    match read_frame(reader).await? {
        Frame::Error(e) => Err(EventError::Redis(e)),
        _ => Ok(()),
    }
}

async fn listen(addr: &RedisAddr, tx: &mpsc::Sender<Notification>) -> Result<(), EventError> {
    let stream = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(addr.socket()))
        .await
        .map_err(|_| EventError::Io(std::io::ErrorKind::TimedOut.into()))??;
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    if let Some(pw) = &addr.password {
        write.write_all(&command(&[b"AUTH", pw.as_bytes()])).await?;
        expect_ok(&mut reader).await?;
    }
    write
        .write_all(&command(&[b"SUBSCRIBE", CHANNEL.as_bytes()]))
        .await?;
    match read_frame(&mut reader).await? {
        Frame::Array(items) if items.first() == Some(&Frame::Bulk(Some(b"subscribe".to_vec()))) => {
        }
        Frame::Error(e) => return Err(EventError::Redis(e)),
        other => {
            return Err(EventError::Protocol(format!(
                "unexpected subscribe reply {other:?}"
            )))
        }
    }
    if tx.send(Notification::Connected).await.is_err() {
        return Ok(());
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let mut answered = true;
    loop {
        tokio::select! {
            frame = read_frame(&mut reader) => {
                answered = true;
                let Frame::Array(items) = frame? else { continue };
                if let [Frame::Bulk(Some(kind)), Frame::Bulk(Some(_channel)), Frame::Bulk(Some(payload))] = items.as_slice() {
                    if kind == b"message" {
                        match Event::decode(payload) {
                            // An event we cannot read still means something changed.
                            Ok(e) => { if tx.send(Notification::Event(e)).await.is_err() { return Ok(()) } }
                            Err(e) => {
                                tracing::warn!(error = %e, "undecodable invalidation; treating it as 'all'");
                                if tx.send(Notification::Event(Event::All)).await.is_err() { return Ok(()) }
                            }
                        }
                    }
                }
            }
            _ = ping.tick() => {
                if !answered {
                    return Err(EventError::Io(std::io::ErrorKind::TimedOut.into()));
                }
                answered = false;
                write.write_all(&command(&[b"PING"])).await?;
            }
        }
    }
}
