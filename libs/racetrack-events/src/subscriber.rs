//! Listening for events: one long-lived SUBSCRIBE connection, re-made after any failure.
//!
//! The `redis` crate parses replies without size limits (a bulk or line is buffered until it
//! ends), so the subscriber owns the socket and hands the crate a [`Budgeted`] stream: a peer
//! that sends more than [`MAX_UNCONFIRMED`] bytes without answering a `PING` in between, or that
//! leaves a reply half-sent, loses the connection instead of growing PUB's memory. (The crate
//! itself caps what an announced array length reserves, 4096 items per level, 100 levels deep.)

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::aio::PubSub;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

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

/// An idle connection is probed this often: silence may mean it is dead even if TCP has not
/// noticed.
const PING_EVERY: Duration = Duration::from_secs(10);
/// Bytes that arrived are confirmed by a `PING` on the next tick; a reply still incomplete then
/// (a huge announced length, a line without end) blocks the `PONG` and ends the connection.
const TICK: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Bytes read since the last answered `PING`. Invalidation messages are ~100 bytes and PINGs go
/// out every second while traffic flows, so only a broken or hostile peer comes near this.
const MAX_UNCONFIRMED: usize = 1 << 20;

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

async fn listen(addr: &RedisAddr, tx: &mpsc::Sender<Notification>) -> Result<(), EventError> {
    let budget = Arc::new(Budget::default());
    let redis = addr.connection_info().redis_settings();
    let setup = async {
        let tcp = TcpStream::connect((addr.host.as_str(), addr.port)).await?;
        tcp.set_nodelay(true)?;
        let pubsub = if addr.tls {
            let tls = tls_connect(&addr.host, tcp).await?;
            PubSub::new(redis, Budgeted::new(tls, budget.clone())).await?
        } else {
            PubSub::new(redis, Budgeted::new(tcp, budget.clone())).await?
        };
        let (mut sink, messages) = pubsub.split();
        sink.subscribe(CHANNEL).await?;
        Ok::<_, EventError>((sink, messages))
    };
    let (mut sink, mut messages) = tokio::time::timeout(CONNECT_TIMEOUT, setup)
        .await
        .map_err(|_| EventError::Io(io::ErrorKind::TimedOut.into()))??;
    budget.confirm();
    if tx.send(Notification::Connected).await.is_err() {
        return Ok(());
    }
    let mut tick = tokio::time::interval(TICK);
    let mut confirmed = Instant::now();
    loop {
        tokio::select! {
            msg = messages.next() => {
                let Some(msg) = msg else {
                    return Err(budget.closed_error());
                };
                let event = match Event::decode(msg.get_payload_bytes()) {
                    Ok(e) => e,
                    // An event we cannot read still means something changed.
                    Err(e) => {
                        tracing::warn!(error = %e, "undecodable invalidation; treating it as 'all'");
                        Event::All
                    }
                };
                if tx.send(Notification::Event(event)).await.is_err() {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                if budget.unconfirmed() == 0 && confirmed.elapsed() < PING_EVERY {
                    continue;
                }
                match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {
                        budget.confirm();
                        confirmed = Instant::now();
                    }
                    Ok(Err(_)) => return Err(budget.closed_error()),
                    Err(_) => {
                        return Err(EventError::Protocol(format!(
                            "no PONG within {PING_TIMEOUT:?} ({} bytes unconfirmed)",
                            budget.unconfirmed()
                        )))
                    }
                }
            }
        }
    }
}

/// rustls needs a process-wide provider for the `redis` crate's own TLS (the publisher); ring,
/// as everywhere in this workspace. Installing fails harmlessly when one is already set.
pub(crate) fn install_ring_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

async fn tls_connect(
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, EventError> {
    let tls_err = |e: &dyn std::fmt::Display| EventError::Tls(e.to_string());
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, as the `redis` crate's TLS does for the
    // publisher; an empty store fails the handshake below with a clear error.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_err(&e))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        rustls::pki_types::ServerName::try_from(host.to_string()).map_err(|e| tls_err(&e))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| tls_err(&e))
}

#[derive(Default)]
struct Budget {
    unconfirmed: AtomicUsize,
    exceeded: AtomicBool,
}

impl Budget {
    fn unconfirmed(&self) -> usize {
        self.unconfirmed.load(Ordering::Relaxed)
    }

    /// Everything read so far was parsed (a reply came back after it).
    fn confirm(&self) {
        self.unconfirmed.store(0, Ordering::Relaxed);
    }

    fn closed_error(&self) -> EventError {
        if self.exceeded.load(Ordering::Relaxed) {
            EventError::Protocol(format!(
                "more than {MAX_UNCONFIRMED} bytes without a complete reply"
            ))
        } else {
            EventError::Io(io::ErrorKind::UnexpectedEof.into())
        }
    }
}

/// The socket as the `redis` crate sees it, failing reads once the budget is spent.
struct Budgeted<S> {
    inner: S,
    budget: Arc<Budget>,
}

impl<S> Budgeted<S> {
    fn new(inner: S, budget: Arc<Budget>) -> Self {
        Budgeted { inner, budget }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Budgeted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                let total = this.budget.unconfirmed.fetch_add(read, Ordering::Relaxed) + read;
                if total > MAX_UNCONFIRMED {
                    this.budget.exceeded.store(true, Ordering::Relaxed);
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "redis reply exceeds the subscriber's size limit",
                    )));
                }
                Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Budgeted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
