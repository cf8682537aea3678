//! Fire-and-forget publishing from any thread (Lifecycle publishes from its blocking DB closures).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::time::Duration;

use crate::resp::command;
use crate::{redact, Event, EventError, RedisAddr, CHANNEL};

/// Events waiting for Redis beyond this are dropped (and logged): the cache TTL still bounds
/// staleness, and a stalled Redis must not grow Lifecycle's memory.
const QUEUE: usize = 4096;
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Publishes [`Event`]s on [`CHANNEL`] from a background thread. Cloning is cheap.
#[derive(Clone)]
pub struct Publisher {
    tx: Option<SyncSender<Event>>,
}

impl Publisher {
    /// A publisher that drops everything (no Redis configured).
    pub fn disabled() -> Publisher {
        Publisher { tx: None }
    }

    /// `None` → [`Publisher::disabled`]. The connection is made lazily and re-made after errors.
    pub fn new(redis_url: Option<&str>) -> Result<Publisher, EventError> {
        let Some(url) = redis_url else {
            return Ok(Publisher::disabled());
        };
        let addr = RedisAddr::parse(url)?;
        let (tx, rx) = sync_channel(QUEUE);
        let shown = redact(url);
        std::thread::Builder::new()
            .name("redis-publisher".into())
            .spawn(move || run(addr, shown, rx))?;
        Ok(Publisher { tx: Some(tx) })
    }

    pub fn is_enabled(&self) -> bool {
        self.tx.is_some()
    }

    pub fn publish(&self, event: Event) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(e)) => {
                tracing::warn!(event = ?e, "redis publish queue full; event dropped (cache TTL applies)")
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::warn!("redis publisher thread is gone; event dropped")
            }
        }
    }
}

struct Conn {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: &RedisAddr) -> Result<Conn, EventError> {
        let socket = std::net::ToSocketAddrs::to_socket_addrs(&addr.socket())?
            .next()
            .ok_or_else(|| EventError::Url(addr.socket()))?;
        let stream = TcpStream::connect_timeout(&socket, IO_TIMEOUT)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        };
        if let Some(pw) = &addr.password {
            conn.call(&[b"AUTH", pw.as_bytes()])?;
        }
        if let Some(db) = addr.db {
            conn.call(&[b"SELECT", db.to_string().as_bytes()])?;
        }
        Ok(conn)
    }

    /// Sends a command whose reply is a single line (`+OK`, `:n` or `-ERR …`).
    fn call(&mut self, parts: &[&[u8]]) -> Result<String, EventError> {
        self.writer.write_all(&command(parts))?;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(EventError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let line = line.trim_end();
        match line.split_at(line.len().min(1)) {
            ("-", msg) => Err(EventError::Redis(msg.to_string())),
            ("+" | ":", rest) => Ok(rest.to_string()),
            _ => Err(EventError::Protocol(format!("unexpected reply {line:?}"))),
        }
    }
}

fn run(addr: RedisAddr, shown: String, rx: Receiver<Event>) {
    let mut conn: Option<Conn> = None;
    while let Ok(event) = rx.recv() {
        let payload = event.encode();
        // One retry on a fresh connection covers a Redis restart between events.
        for attempt in 0..2 {
            if conn.is_none() {
                match Conn::open(&addr) {
                    Ok(c) => conn = Some(c),
                    Err(e) => {
                        tracing::warn!(redis = %shown, error = %e, "cannot reach redis; event dropped (cache TTL applies)");
                        break;
                    }
                }
            }
            let c = conn.as_mut().expect("just connected");
            match c.call(&[b"PUBLISH", CHANNEL.as_bytes(), payload.as_bytes()]) {
                Ok(receivers) => {
                    tracing::debug!(?event, %receivers, "published invalidation");
                    break;
                }
                Err(e) => {
                    conn = None;
                    if attempt == 1 {
                        tracing::warn!(redis = %shown, error = %e, "redis publish failed; event dropped (cache TTL applies)");
                    }
                }
            }
        }
    }
}
