//! PUB: the authenticating proxy in front of every fatman. Config → wiring (here) → the proxy.

pub mod access;
pub mod admission;
pub mod cache;
pub mod config;
pub mod error;
pub mod metrics;
pub mod path;
pub mod proxy;
pub mod server;
pub mod tally;
pub mod upstream;
pub mod wire;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use racetrack_events::Notification;

use crate::config::Config;
use crate::metrics::PubMetrics;
use crate::proxy::{Core, Pub};

/// PUB's locks guard caches, pools and counts: a panic elsewhere mid-update (a poisoned lock)
/// leaves them usable, so it does not take every later call down with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

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

/// How the binary serves: `WORKERS` single-threaded runtimes, like nginx's worker processes, so a
/// proxied call never hops threads (on a multi-threaded runtime the wake-ups between workers cost
/// more than the proxying itself). A control runtime accepts and deals connections to the workers
/// in turn (a shared socket let one worker take most of a burst of connections while another
/// idled), and owns the Lifecycle channel and the Redis subscription.
pub fn run(config: Config) -> anyhow::Result<()> {
    let tls = tls_acceptor(&config)?;
    let listener = bind(config.addr)?;
    let addr = listener.local_addr()?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let core = control.block_on(async {
        let core = Arc::new(Core::new(config, Arc::new(PubMetrics::new()))?);
        listen_for_invalidations(&core)?;
        Ok::<_, anyhow::Error>(core)
    })?;
    let workers = core.config.workers;
    tracing::info!(%addr, workers, config = ?core.config, "pub listening");
    let (exited_tx, mut exited) = tokio::sync::mpsc::unbounded_channel();
    let mut queues = Vec::with_capacity(workers);
    for i in 0..workers {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(
            std::net::TcpStream,
            SocketAddr,
            server::Slot,
        )>();
        queues.push(tx);
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
                        let app = Arc::new(Pub::new(core));
                        while let Some((stream, peer, slot)) = rx.recv().await {
                            match tokio::net::TcpStream::from_std(stream) {
                                Ok(stream) => server::spawn_connection(
                                    stream,
                                    peer,
                                    slot,
                                    app.clone(),
                                    tls.clone(),
                                ),
                                Err(e) => {
                                    tracing::warn!(%peer, error = %e, "cannot adopt a connection")
                                }
                            }
                        }
                        Ok::<_, anyhow::Error>(())
                    })
                })();
                let _ = exited_tx.send((i, result));
            })?;
    }
    control.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let mut next = 0usize;
        let max = core.config.max_connections;
        let per_address = core.config.max_connections_per_address;
        let refused = core
            .metrics
            .connections_refused
            .with_label_values(&["per_address"]);
        let accepting = server::accept_loop(
            listener,
            max,
            per_address,
            move || refused.inc(),
            move |stream, peer, slot| match stream.into_std() {
                Ok(std_stream) => {
                    let _ = queues[next % queues.len()].send((std_stream, peer, slot));
                    next = next.wrapping_add(1);
                }
                Err(e) => tracing::warn!(%peer, error = %e, "cannot hand a connection over"),
            },
        );
        tokio::select! {
            r = accepting => r,
            Some((i, result)) = exited.recv() => {
                result?;
                anyhow::bail!("worker {i} stopped")
            }
            _ = racetrack_telemetry::shutdown_signal() => {
                tracing::info!("shutting down");
                Ok(())
            }
        }
    })
}

fn bind(addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    socket.listen(1024)?;
    Ok(socket.into())
}
