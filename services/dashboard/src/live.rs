//! Which fatmen changed, for pages that update without a reload.
//!
//! Lifecycle publishes a `Fatman { name }` event on Redis whenever a fatman is deployed,
//! deleted or changes status (the same channel PUB listens on). Every dashboard replica
//! subscribes and fans the names out to its open pages, which then ask Lifecycle — with their
//! own user's token — what the fatmen look like now. Without Redis, and as a safety net when
//! events were missed, pages refresh every `LIVE_REFRESH`.

use racetrack_events::{Event, Notification};
use tokio::sync::broadcast;

/// A change an open page should react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A family (any version) changed.
    Family(String),
    /// Anything may have changed (reconnected after missing events, or a broad change).
    Everything,
}

#[derive(Clone)]
pub struct Live {
    tx: broadcast::Sender<Change>,
}

impl Live {
    /// Starts listening on Redis when `redis_url` is set (on the current Tokio runtime).
    pub fn start(redis_url: Option<&str>) -> Result<Live, String> {
        let (tx, _) = broadcast::channel(1024);
        let live = Live { tx };
        if let Some(url) = redis_url {
            let mut rx = racetrack_events::subscribe(url).map_err(|e| e.to_string())?;
            let tx = live.tx.clone();
            tokio::spawn(async move {
                while let Some(n) = rx.recv().await {
                    let change = match n {
                        Notification::Event(Event::Fatman { name }) => Change::Family(name),
                        Notification::Event(Event::All) | Notification::Connected => {
                            Change::Everything
                        }
                        Notification::Event(Event::Subject { .. }) | Notification::Disconnected => {
                            continue
                        }
                    };
                    // No page open: nobody to tell.
                    let _ = tx.send(change);
                }
            });
        }
        Ok(live)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.tx.subscribe()
    }

    /// Tells this replica's pages directly (used after the dashboard itself changed something).
    pub fn notify(&self, change: Change) {
        let _ = self.tx.send(change);
    }
}
