//! PUB: the authenticating proxy in front of every fatman. Config → wiring (here) → the proxy.

pub mod access;
pub mod cache;
pub mod config;
pub mod error;
pub mod metrics;
pub mod path;
pub mod proxy;
pub mod server;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use racetrack_events::Notification;

use crate::config::Config;
use crate::metrics::PubMetrics;
use crate::proxy::{Core, Pub};

/// A bound, serving PUB (on the current Tokio runtime).
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<Pub>,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

fn tls_acceptor(config: &Config) -> anyhow::Result<Option<tokio_rustls::TlsAcceptor>> {
    if !config.auth_required {
        tracing::warn!("AUTH_REQUIRED is false: every caller may call every fatman");
    }
    Ok(match &config.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(
            racetrack_tls::server_config(cert, key, &[b"http/1.1"])?,
        )),
        None => None,
    })
}

/// Serves on the current runtime with one listener (tests, embedding).
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let tls = tls_acceptor(&config)?;
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let addr = listener.local_addr()?;
    let core = Arc::new(Core::new(config, Arc::new(PubMetrics::new()))?);
    listen_for_invalidations(&core)?;
    tracing::info!(%addr, config = ?core.config, "pub listening");
    let app = Arc::new(Pub::new(core));
    let task = tokio::spawn(server::serve(listener, app.clone(), tls));
    Ok(Running { addr, app, task })
}

/// Drops stale cache entries as Lifecycle announces changes (on the current runtime).
fn listen_for_invalidations(core: &Arc<Core>) -> anyhow::Result<()> {
    let app = core.clone();
    if let Some(url) = app.config.redis_url.clone() {
        let mut rx = racetrack_events::subscribe(&url)?;
        let app = app.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                match &n {
                    Notification::Connected => {
                        app.redis_connected.store(true, Ordering::Relaxed);
                        tracing::info!("listening for invalidations on redis");
                    }
                    Notification::Disconnected => {
                        app.redis_connected.store(false, Ordering::Relaxed)
                    }
                    Notification::Event(_) => {}
                }
                app.access.apply(&n);
            }
        });
    } else {
        tracing::warn!(ttl = ?app.config.cache_ttl, "REDIS_URL unset: cached decisions live until their TTL");
    }
    Ok(())
}

/// How the binary serves: `WORKERS` single-threaded runtimes accepting on one shared listening
/// socket, like nginx's worker processes: a proxied call never hops threads (on a multi-threaded
/// runtime the wake-ups between workers cost more than the proxying itself), and a busy worker
/// simply accepts fewer new connections (per-worker `SO_REUSEPORT` sockets would pin connections
/// by hash, leaving one worker saturated while another idles). A control runtime owns the
/// Lifecycle channel and the Redis subscription.
pub fn run(config: Config) -> anyhow::Result<()> {
    let tls = tls_acceptor(&config)?;
    let listeners = bind_shared(config.addr, config.workers)?;
    let addr = listeners[0].local_addr()?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let core = control.block_on(async {
        let core = Arc::new(Core::new(config, Arc::new(PubMetrics::new()))?);
        listen_for_invalidations(&core)?;
        Ok::<_, anyhow::Error>(core)
    })?;
    tracing::info!(%addr, workers = listeners.len(), config = ?core.config, "pub listening");
    let (exited_tx, mut exited) = tokio::sync::mpsc::unbounded_channel();
    for (i, listener) in listeners.into_iter().enumerate() {
        let core = core.clone();
        let tls = tls.clone();
        let exited_tx = exited_tx.clone();
        std::thread::Builder::new()
            .name(format!("pub-worker-{i}"))
            .spawn(move || {
                let result = (|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    runtime.block_on(async move {
                        listener.set_nonblocking(true)?;
                        let listener = tokio::net::TcpListener::from_std(listener)?;
                        server::serve(listener, Arc::new(Pub::new(core)), tls).await
                    })
                })();
                let _ = exited_tx.send((i, result));
            })?;
    }
    control.block_on(async {
        tokio::select! {
            Some((i, result)) = exited.recv() => {
                result?;
                anyhow::bail!("worker {i} stopped")
            }
            _ = tokio::signal::ctrl_c() => {
                tracing::info!("shutting down");
                Ok(())
            }
        }
    })
}

/// One listening socket, `n` handles on it (one per worker runtime).
fn bind_shared(addr: SocketAddr, n: usize) -> anyhow::Result<Vec<std::net::TcpListener>> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    socket.listen(1024)?;
    let first: std::net::TcpListener = socket.into();
    let mut out = Vec::with_capacity(n.max(1));
    for _ in 1..n.max(1) {
        out.push(first.try_clone()?);
    }
    out.insert(0, first);
    Ok(out)
}
