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

/// How PUB serves, in the binary and in tests alike: `WORKERS` single-threaded runtimes, like
/// nginx's worker processes, so a proxied call never hops threads (on a multi-threaded runtime the
/// wake-ups between workers cost more than the proxying itself). A control thread accepts and
/// deals connections to the workers in turn (a shared socket let one worker take most of a burst
/// of connections while another idled), and owns the Lifecycle channel and the Redis
/// subscription.
pub struct Server {
    pub addr: SocketAddr,
    pub core: Arc<Core>,
    control: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

/// Binds and starts serving on threads of its own; returns once PUB accepts connections.
pub fn spawn(config: Config) -> anyhow::Result<Server> {
    let tls = tls_acceptor(&config)?;
    let listener = bind(config.addr)?;
    let addr = listener.local_addr()?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let control = std::thread::Builder::new()
        .name("pub-control".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let core = match Core::new(config, Arc::new(PubMetrics::new())).and_then(|core| {
                    let core = Arc::new(core);
                    listen_for_invalidations(&core)?;
                    Ok(core)
                }) {
                    Ok(core) => core,
                    Err(e) => {
                        let _ = ready_tx.send(Err(anyhow::anyhow!("{e:#}")));
                        return Err(e);
                    }
                };
                let _ = ready_tx.send(Ok(core.clone()));
                serve(listener, core, tls).await
            })
        })?;
    let core = ready_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("PUB's control thread ended before serving"))??;
    tracing::info!(%addr, workers = core.config.workers, config = ?core.config, "pub listening");
    Ok(Server {
        addr,
        core,
        control: Some(control),
    })
}

impl Server {
    /// Stops accepting, lets the calls in flight finish (idle connections are closed at once, a
    /// connection is closed after its current response) for at most `SHUTDOWN_TIMEOUT`, then
    /// ends. Returns the serving error, if serving had failed.
    pub fn shutdown(mut self) -> anyhow::Result<()> {
        self.core.stop();
        match self.control.take() {
            Some(control) => control
                .join()
                .map_err(|_| anyhow::anyhow!("PUB's control thread panicked"))?,
            None => Ok(()),
        }
    }

    /// Serves until Ctrl-C or SIGTERM (or a failure), then shuts down gracefully.
    pub fn run_until_signal(self) -> anyhow::Result<()> {
        let signals = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let core = self.core.clone();
        signals.block_on(async {
            tokio::select! {
                _ = racetrack_telemetry::shutdown_signal() => {
                    tracing::info!("shutting down: finishing the calls in flight");
                }
                _ = core.stopped() => {}
            }
        });
        self.shutdown()
    }
}

impl Drop for Server {
    /// Dropped without `shutdown` (tests): stop without waiting.
    fn drop(&mut self) {
        self.core.stop();
    }
}

/// The binary: serve until a signal.
pub fn run(config: Config) -> anyhow::Result<()> {
    spawn(config)?.run_until_signal()
}

/// Accepts on the control runtime and deals connections to the workers until told to stop, then
/// waits (at most `SHUTDOWN_TIMEOUT`) for every connection to end before the workers stop.
async fn serve(
    listener: std::net::TcpListener,
    core: Arc<Core>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> anyhow::Result<()> {
    let workers = core.config.workers;
    let (exited_tx, mut exited) = tokio::sync::mpsc::unbounded_channel();
    let mut queues = Vec::with_capacity(workers);
    let mut threads = Vec::with_capacity(workers);
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
        threads.push(
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
                })?,
        );
    }
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(tokio::sync::Semaphore::new(core.config.max_connections));
    let per_address = core.config.max_connections_per_address;
    let refused = core
        .metrics
        .connections_refused
        .with_label_values(&["per_address"]);
    // Shared with the accept loop so that the workers outlive it: they must keep serving the
    // connections in flight until the drain ends.
    let queues = Arc::new(queues);
    let dealt = queues.clone();
    let mut next = 0usize;
    let accepting = server::accept_loop(
        listener,
        slots.clone(),
        per_address,
        move || refused.inc(),
        move |stream, peer, slot| match stream.into_std() {
            Ok(std_stream) => {
                let _ = dealt[next % dealt.len()].send((std_stream, peer, slot));
                next = next.wrapping_add(1);
            }
            Err(e) => tracing::warn!(%peer, error = %e, "cannot hand a connection over"),
        },
    );
    let result = tokio::select! {
        r = accepting => r,
        Some((i, result)) = exited.recv() => {
            result.and_then(|()| Err(anyhow::anyhow!("worker {i} stopped")))
        }
        _ = core.stopped() => Ok(()),
    };
    // The listener and the workers' queues are dropped with `accepting`: no new connection is
    // taken. Every open connection holds a slot; all slots back means all connections ended.
    core.stop();
    let all = u32::try_from(core.config.max_connections).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(core.config.shutdown_timeout, slots.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(
            left = core.config.max_connections - slots.available_permits(),
            "connections still open at the end of SHUTDOWN_TIMEOUT: cut"
        );
    }
    drop(queues);
    for thread in threads {
        let _ = thread.join();
    }
    result
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
