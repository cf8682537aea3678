//! Accepting connections: HTTP/1.1 with bounded heads, a deadline on slow request heads, a cap on
//! concurrent connections, upgrades allowed.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::proxy::{Peer, Pub};

/// Accepts until the listener fails, handing each connection to `hand_off` (a semaphore permit
/// travels with it: at most `max_connections` at once).
pub async fn accept_loop(
    listener: TcpListener,
    max_connections: usize,
    mut hand_off: impl FnMut(TcpStream, SocketAddr, OwnedSemaphorePermit),
) -> anyhow::Result<()> {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let permit = slots.clone().acquire_owned().await?;
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                hand_off(stream, peer, permit);
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
    permit: OwnedSemaphorePermit,
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
        drop(permit);
    });
}

/// Accepts and serves on the current runtime (one worker).
pub async fn serve(
    listener: TcpListener,
    app: Arc<Pub>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<()> {
    let max = app.config.max_connections;
    accept_loop(listener, max, move |stream, peer, permit| {
        spawn_connection(stream, peer, permit, app.clone(), tls.clone())
    })
    .await
}

pub async fn serve_connection<I>(io: I, peer: SocketAddr, app: Arc<Pub>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let app = app.clone();
        let client = Arc::new(Peer::new(peer));
        service_fn(move |req| {
            let app = app.clone();
            let client = client.clone();
            async move { Ok::<_, std::convert::Infallible>(app.handle(req, &client).await) }
        })
    };
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(app.config.header_read_timeout)
        .max_header_size(app.config.max_header_bytes)
        .max_buf_size(app.config.max_header_bytes.max(64 * 1024) * 2)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}
