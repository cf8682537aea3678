//! Server-sent events: the fatmen page's live statuses (`/api/events`) and what every event
//! stream shares (framing, keep-alive, the per-process cap on open streams).
//!
//! Each connection keeps the last `ListFatmen` answer it saw (fetched with its own user's token,
//! so nobody learns about fatmen they may not read) and sends only the rows that differ, when
//! `live` reports a change or every `LIVE_REFRESH` as a safety net.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use bytes::Bytes;
use racetrack_proto::dashboard::{Empty, Fatman};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;

use crate::error::PageError;
use crate::lifecycle::LifecycleError;
use crate::live::Change;
use crate::session::SignedIn;
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/events", web::get().to(fatmen_events));
}

/// Open event streams this process serves at most; each holds a task and, for log streams, a
/// gRPC stream to Lifecycle.
pub const MAX_STREAMS: usize = 1_000;
/// A comment line this often keeps proxies from closing an idle stream and notices a client
/// that went away.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Counts open streams against a cap.
pub struct StreamSlots {
    open: AtomicUsize,
    max: usize,
}

/// One open stream; frees its slot when dropped.
pub struct StreamSlot<'a> {
    slots: &'a StreamSlots,
}

impl StreamSlots {
    pub const fn new(max: usize) -> StreamSlots {
        StreamSlots {
            open: AtomicUsize::new(0),
            max,
        }
    }

    pub fn try_acquire(&self) -> Option<StreamSlot<'_>> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot { slots: self })
    }

    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }
}

impl Drop for StreamSlot<'_> {
    fn drop(&mut self) {
        self.slots.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// This process's streams (fatmen statuses and followed logs together).
pub static STREAMS: StreamSlots = StreamSlots::new(MAX_STREAMS);

/// One SSE event; `data` must not contain a line break (callers send JSON).
pub fn sse_event(event: &str, data: &str) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

/// `event: failure` with the message as a JSON string; the page shows it and stops listening.
pub fn failure(err: &impl std::fmt::Display) -> Bytes {
    let text = serde_json::Value::String(err.to_string()).to_string();
    sse_event("failure", &text)
}

pub fn sse_comment(text: &str) -> Bytes {
    Bytes::from(format!(": {text}\n\n"))
}

/// A script's request failed before reaching Lifecycle. Without a signed-in session that is a
/// 401 JSON answer, not a redirect to the sign-in page (`fetch` follows a redirect and would
/// take the sign-in page for success).
pub fn api_error(err: &PageError) -> HttpResponse {
    match err {
        PageError::SignInRequired { .. } => HttpResponse::Unauthorized().json(
            serde_json::json!({ "error": "your sign-in expired: reload the page and sign in again" }),
        ),
        e => crate::error::json_error(e),
    }
}

pub fn too_many_streams() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .insert_header((header::RETRY_AFTER, "30"))
        .json(serde_json::json!({ "error": "too many open live connections; try again later" }))
}

/// Starts an event stream whose body is what `produce` sends on the channel; `produce` should
/// stop once the channel is closed (the client went away).
pub fn sse_response<F, Fut>(produce: F) -> HttpResponse
where
    F: FnOnce(mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(slot) = STREAMS.try_acquire() else {
        return too_many_streams();
    };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let task = produce(tx);
    tokio::spawn(async move {
        let _slot = slot;
        task.await;
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        // nginx and similar proxies would otherwise hold the events back.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(ReceiverStream::new(rx).map(Ok::<Bytes, actix_web::Error>))
}

/// What the page shows of a fatman and the stream compares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub version: String,
    pub status: String,
    pub error: String,
    pub update_time: String,
}

impl From<&Fatman> for Row {
    fn from(f: &Fatman) -> Row {
        Row {
            name: f.name.clone(),
            version: f.version.clone(),
            status: f.status.clone(),
            error: f.error.clone(),
            update_time: f.update_time.clone(),
        }
    }
}

pub type Snapshot = BTreeMap<(String, String), Row>;

pub fn snapshot(fatmen: &[Fatman]) -> Snapshot {
    fatmen
        .iter()
        .map(|f| ((f.name.clone(), f.version.clone()), Row::from(f)))
        .collect()
}

#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub changed: Vec<Row>,
    pub added: Vec<Row>,
    pub removed: Vec<Row>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// The rows that differ between two snapshots (removed rows as last seen).
pub fn diff(old: &Snapshot, new: &Snapshot) -> Diff {
    let mut d = Diff::default();
    for (key, row) in new {
        match old.get(key) {
            None => d.added.push(row.clone()),
            Some(before) if before != row => d.changed.push(row.clone()),
            Some(_) => {}
        }
    }
    d.removed = old
        .iter()
        .filter(|(key, _)| !new.contains_key(*key))
        .map(|(_, row)| row.clone())
        .collect();
    d
}

async fn list_fatmen(state: &State, token: &str) -> Result<Snapshot, LifecycleError> {
    let list = state
        .lifecycle
        .call(Some(token), Empty {}, |mut c, r| async move {
            c.list_fatmen(r).await
        })
        .await?;
    Ok(snapshot(&list.fatmen))
}

async fn fatmen_events(state: State, user: Result<SignedIn, PageError>) -> HttpResponse {
    let user = match user {
        Ok(u) => u,
        Err(e) => return api_error(&e),
    };
    let token = user.token;
    let changes = state.live.subscribe();
    let refresh = state.config.live_refresh;
    let state = state.clone();
    sse_response(move |tx| follow_fatmen(state, token, changes, refresh, tx))
}

/// Why a fatmen stream looks at Lifecycle again.
enum Wake {
    Gone,
    Refresh,
    KeepAlive,
}

async fn follow_fatmen(
    state: State,
    token: String,
    mut changes: broadcast::Receiver<Change>,
    refresh: Duration,
    tx: mpsc::Sender<Bytes>,
) {
    // The page was rendered moments ago; this is the baseline its rows are compared with.
    let mut last = match list_fatmen(&state, &token).await {
        Ok(s) => Some(s),
        Err(e) if e.is_unauthenticated() => {
            let _ = tx.send(failure(&e)).await;
            return;
        }
        Err(_) => None,
    };
    if tx.send(sse_comment("connected")).await.is_err() {
        return;
    }
    let mut refresh_tick = tokio::time::interval(refresh);
    // A slow Lifecycle delays the next refresh instead of causing a burst of them.
    refresh_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    refresh_tick.tick().await;
    keep_alive.tick().await;
    loop {
        let wake = tokio::select! {
            _ = tx.closed() => Wake::Gone,
            change = changes.recv() => match change {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                    // A burst of changes (a deploy touches a family several times) is one fetch.
                    while changes.try_recv().is_ok() {}
                    Wake::Refresh
                }
                Err(broadcast::error::RecvError::Closed) => Wake::Gone,
            },
            _ = refresh_tick.tick() => Wake::Refresh,
            _ = keep_alive.tick() => Wake::KeepAlive,
        };
        let message = match wake {
            Wake::Gone => return,
            Wake::KeepAlive => sse_comment("keep-alive"),
            Wake::Refresh => match list_fatmen(&state, &token).await {
                Ok(now) => {
                    let changed = last.as_ref().map(|before| diff(before, &now));
                    last = Some(now);
                    match changed {
                        Some(d) if !d.is_empty() => match serde_json::to_string(&d) {
                            Ok(json) => sse_event("fatmen", &json),
                            Err(_) => continue,
                        },
                        _ => continue,
                    }
                }
                // The token was revoked: the page has to sign in again (the script stops
                // reconnecting on `failure`).
                Err(e) if e.is_unauthenticated() => {
                    let _ = tx.send(failure(&e)).await;
                    return;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "live fatmen refresh failed");
                    continue;
                }
            },
        };
        if tx.send(message).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fatman(name: &str, version: &str, status: &str) -> Fatman {
        Fatman {
            name: name.into(),
            version: version.into(),
            status: status.into(),
            update_time: "2026-12-01T10:00:00Z".into(),
            ..Default::default()
        }
    }

    #[test]
    fn diff_reports_changed_added_and_removed_rows() {
        let old = snapshot(&[
            fatman("adder", "1.0.0", "created"),
            fatman("adder", "0.9.0", "running"),
            fatman("gone", "1.0.0", "running"),
        ]);
        let mut now = vec![
            fatman("adder", "1.0.0", "running"),
            fatman("adder", "0.9.0", "running"),
            fatman("new", "0.1.0", "created"),
        ];
        let d = diff(&old, &snapshot(&now));
        assert_eq!(d.changed.len(), 1);
        assert_eq!(
            (d.changed[0].version.as_str(), d.changed[0].status.as_str()),
            ("1.0.0", "running")
        );
        assert_eq!(
            d.added.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["new"]
        );
        assert_eq!(
            d.removed
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["gone"]
        );
        assert_eq!(d.removed[0].status, "running", "removed rows as last seen");

        // An error text or a newer update time is a change too; the same list is none.
        now[1].error = "container exited".into();
        let d2 = diff(&snapshot(&now), &snapshot(&now));
        assert!(d2.is_empty());
        let mut later = now.clone();
        later[2].update_time = "2026-12-01T10:05:00Z".into();
        let d3 = diff(&snapshot(&now), &snapshot(&later));
        assert_eq!(d3.changed.len(), 1);
        assert!(d3.added.is_empty() && d3.removed.is_empty());
    }

    #[test]
    fn diff_serialises_the_rows_the_script_reads() {
        let d = diff(
            &Snapshot::new(),
            &snapshot(&[fatman("adder", "1.0.0", "error")]),
        );
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["added"][0]["name"], "adder");
        assert_eq!(json["added"][0]["version"], "1.0.0");
        assert_eq!(json["added"][0]["status"], "error");
        assert_eq!(json["added"][0]["error"], "");
        assert_eq!(json["added"][0]["update_time"], "2026-12-01T10:00:00Z");
        assert_eq!(json["changed"], serde_json::json!([]));
        assert_eq!(json["removed"], serde_json::json!([]));
    }

    #[test]
    fn slots_cap_open_streams_and_free_on_drop() {
        let slots = StreamSlots::new(2);
        let a = slots.try_acquire();
        let b = slots.try_acquire();
        assert!(a.is_some() && b.is_some());
        assert!(slots.try_acquire().is_none());
        drop(a);
        assert_eq!(slots.open(), 1);
        assert!(slots.try_acquire().is_some());
        drop(b);
        assert_eq!(slots.open(), 0);
    }

    #[test]
    fn event_framing() {
        assert_eq!(
            &sse_event("fatmen", "{}")[..],
            b"event: fatmen\ndata: {}\n\n"
        );
        assert_eq!(&sse_comment("keep-alive")[..], b": keep-alive\n\n");
    }
}
