//! Accepting connections and reading requests off them: HTTP/1.1 with bounded heads, a deadline
//! on slow request heads, an idle limit between requests, a cap on concurrent connections and a
//! share of it per client address.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::config::Config;
use crate::lock;
use crate::proxy::{Conn, Next, Peer, Pub};
use crate::wire::{self, Head, WireError};

/// What a connection holds while it is open: a place under `MAX_CONNECTIONS` and one in its
/// address's share; both are given back when it is dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _share: Option<AddressShare>,
}

/// Connections open per client address (IPv6: per /64, what one host usually has).
type Shares = Arc<Mutex<HashMap<IpAddr, usize, foldhash::fast::RandomState>>>;

struct AddressShare {
    shares: Shares,
    key: IpAddr,
}

impl Drop for AddressShare {
    fn drop(&mut self) {
        let mut shares = lock(&self.shares);
        if let Some(n) = shares.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                shares.remove(&self.key);
            }
        }
    }
}

fn share_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
        v4 => v4,
    }
}

/// Takes a place in `ip`'s share, if the share has room.
fn take_share(shares: &Shares, ip: IpAddr, limit: usize) -> Option<AddressShare> {
    let key = share_key(ip);
    let mut map = lock(shares);
    let n = map.entry(key).or_insert(0);
    if *n >= limit {
        return None;
    }
    *n += 1;
    Some(AddressShare {
        shares: shares.clone(),
        key,
    })
}

/// Accepts until the listener fails, handing each connection to `hand_off` with its [`Slot`]:
/// at most as many at once as `slots` has permits, and at most `per_address` of them from one address (the
/// rest are closed as soon as they are accepted, so one client cannot starve the others).
pub async fn accept_loop(
    listener: TcpListener,
    slots: Arc<Semaphore>,
    per_address: Option<usize>,
    on_refused: impl Fn(),
    mut hand_off: impl FnMut(TcpStream, SocketAddr, Slot),
) -> anyhow::Result<()> {
    let shares: Shares = Arc::default();
    loop {
        let permit = slots.clone().acquire_owned().await?;
        match listener.accept().await {
            Ok((stream, peer)) => {
                let share = match per_address {
                    Some(limit) => match take_share(&shares, peer.ip(), limit) {
                        Some(share) => Some(share),
                        None => {
                            on_refused();
                            drop(stream);
                            continue;
                        }
                    },
                    None => None,
                };
                let _ = stream.set_nodelay(true);
                let slot = Slot {
                    _permit: permit,
                    _share: share,
                };
                hand_off(stream, peer, slot);
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one accepted connection on the current runtime; with `tls`, a TLS handshake first.
pub fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    app: Arc<Pub>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    tokio::spawn(async move {
        match tls {
            None => serve_connection(stream, peer, app).await,
            Some(acceptor) => {
                // A handshake gets the same deadline as a request head.
                let deadline = app.config.header_read_timeout;
                match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_connection(tls_stream, peer, app).await,
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            }
        }
        drop(slot);
    });
}

/// Serves requests on one connection until either side ends it.
pub async fn serve_connection<I>(io: I, peer: SocketAddr, app: Arc<Pub>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut conn = Conn {
        io,
        buf: BytesMut::with_capacity(16 * 1024),
        peer: Peer::new(peer),
        admission: None,
        http10: false,
    };
    // A new connection gets as long for its first head as any head gets; between requests a
    // kept-alive connection may idle longer.
    let mut idle = app.config.header_read_timeout;
    loop {
        // Shutting down: an idle connection is closed at once, a busy one after its response.
        let next = tokio::select! {
            biased;
            _ = app.stopped(), if conn.buf.is_empty() => break,
            next = read_head(&mut conn, idle, &app.config) => next,
        };
        let head = match next {
            Ok(Some(head)) => head,
            Ok(None) => break,
            Err(refusal) => {
                tracing::debug!(%peer, refusal, "bad request head");
                let limit = Some(app.config.client_timeout);
                let _ = wire::send_within(&mut conn.io, refusal.as_bytes(), limit).await;
                break;
            }
        };
        if app.handle(&mut conn, head).await == Next::Close || app.stopping() {
            break;
        }
        idle = app.config.keep_alive_timeout;
    }
    let _ = conn.io.shutdown().await;
}

/// The next request head; `None` when the client closed or idled out between requests, `Err`
/// with the response that refuses a head that is malformed, too large or too slow.
async fn read_head<I>(
    conn: &mut Conn<I>,
    idle: Duration,
    config: &Config,
) -> Result<Option<Head>, &'static str>
where
    I: AsyncRead + Unpin,
{
    // A pipelined head has started already.
    let mut started = !conn.buf.is_empty();
    let mut deadline = Instant::now()
        + if started {
            config.header_read_timeout
        } else {
            idle
        };
    loop {
        if !conn.buf.is_empty() {
            match wire::parse_request(&mut conn.buf) {
                Ok(Some(head)) if head.size() > config.max_header_bytes => return Err(TOO_LARGE),
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) if conn.buf.len() > config.max_header_bytes => return Err(TOO_LARGE),
                Ok(None) => {}
                Err(WireError::TooManyHeaders) => return Err(TOO_LARGE),
                Err(_) => return Err(BAD_REQUEST),
            }
        }
        match tokio::time::timeout_at(deadline, wire::read_more(&mut conn.io, &mut conn.buf)).await
        {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(_)) => {
                if !started {
                    started = true;
                    deadline = Instant::now() + config.header_read_timeout;
                }
            }
            Err(_) if conn.buf.is_empty() => return Ok(None),
            Err(_) => return Err(TIMEOUT),
        }
    }
}

const BAD_REQUEST: &str = "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 78\r\nconnection: close\r\n\r\n{\"error\":\"Proxy request error: malformed request head\",\"status\":\"Bad Request\"}";
const TOO_LARGE: &str = "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\ncontent-length: 98\r\nconnection: close\r\n\r\n{\"error\":\"Proxy request error: request head too large\",\"status\":\"Request Header Fields Too Large\"}";
const TIMEOUT: &str = "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: 93\r\nconnection: close\r\n\r\n{\"error\":\"Proxy request error: request head not received in time\",\"status\":\"Request Timeout\"}";

#[cfg(test)]
mod tests {
    #[test]
    fn canned_refusals_have_exact_lengths() {
        for r in [super::BAD_REQUEST, super::TOO_LARGE, super::TIMEOUT] {
            let (head, body) = r.split_once("\r\n\r\n").unwrap();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, body.len(), "{r}");
            serde_json::from_str::<serde_json::Value>(body).unwrap();
        }
    }
}
