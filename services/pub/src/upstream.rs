//! Connections to fatmen, kept open between calls. Each worker has its own pool, so a connection is
//! only ever driven by the thread that made it.

use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::lock;

/// An idle connection older than this is closed rather than reused (fatmen's servers drop idle
/// connections too; a minute is below the usual keep-alive limits).
const IDLE_LIMIT: Duration = Duration::from_secs(60);
/// Idle connections kept per fatman address.
const MAX_IDLE_PER_ADDRESS: usize = 256;

/// A connection to a fatman with its read buffer.
pub struct Upstream {
    pub stream: TcpStream,
    pub buf: BytesMut,
    /// Taken from the pool: it may have been closed by the fatman while idle.
    pub reused: bool,
}

/// Parked connections per fatman address, each with the time it was parked.
type Idle = HashMap<Box<str>, Vec<(Upstream, Instant)>, foldhash::fast::RandomState>;

pub struct Upstreams {
    idle: Mutex<Idle>,
    connect_timeout: Duration,
}

impl Upstreams {
    pub fn new(connect_timeout: Duration) -> Upstreams {
        Upstreams {
            idle: Mutex::new(HashMap::default()),
            connect_timeout,
        }
    }

    /// An idle connection to `addr` that still looks open, or a new one.
    pub async fn get(&self, addr: &str) -> io::Result<Upstream> {
        while let Some(up) = self.take_idle(addr) {
            // No syscall when the connection has seen no event since it was parked: Tokio
            // answers from the readiness it last saw. A fatman that closed it, or sent something
            // unasked, has made it readable.
            match up.stream.try_read(&mut [0u8; 1]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(up),
                _ => continue,
            }
        }
        self.connect(addr).await
    }

    pub async fn connect(&self, addr: &str) -> io::Result<Upstream> {
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
                Ok(r) => r?,
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no connection within {:?}", self.connect_timeout),
                    ))
                }
            };
        stream.set_nodelay(true)?;
        Ok(Upstream {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
            reused: false,
        })
    }

    fn take_idle(&self, addr: &str) -> Option<Upstream> {
        let mut idle = lock(&self.idle);
        let list = idle.get_mut(addr)?;
        while let Some((mut up, since)) = list.pop() {
            if since.elapsed() < IDLE_LIMIT {
                up.reused = true;
                return Some(up);
            }
        }
        None
    }

    /// Parks a connection whose last response ended cleanly.
    pub fn put(&self, addr: &str, up: Upstream) {
        debug_assert!(up.buf.is_empty());
        let mut idle = lock(&self.idle);
        let now = Instant::now();
        match idle.get_mut(addr) {
            Some(list) => {
                // Popped from the end, so the oldest gather at the front: swept only when full.
                if list.len() >= MAX_IDLE_PER_ADDRESS {
                    list.retain(|(_, since)| now.duration_since(*since) < IDLE_LIMIT);
                }
                if list.len() < MAX_IDLE_PER_ADDRESS {
                    list.push((up, now));
                }
            }
            None => {
                idle.insert(addr.into(), vec![(up, now)]);
            }
        }
    }
}
