//! Builds in memory: each build's ordered events (phases, log lines, the result), followed by any
//! number of readers, and a bounded map of recent builds so clients can reattach.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::Stream;
use racetrack_proto::image_builder::build_event::Event;
use racetrack_proto::image_builder::build_status::State;
use racetrack_proto::image_builder::{BuildEvent, BuildResult, BuildStatus, LogLine};
use tokio::sync::watch;

use racetrack_config::redact::Redactor;

/// In-memory log kept per build; the log file always has everything.
pub const MAX_MEMORY_LOG_BYTES: usize = 32 << 20;

#[derive(Default)]
struct Inner {
    events: Vec<BuildEvent>,
    phase: String,
    log_bytes: usize,
    truncated: bool,
    result: Option<BuildResult>,
    finished_at: Option<Instant>,
}

/// One build's record. Cheap to share (`Arc`); readers follow it with [`BuildRecord::events`].
pub struct BuildRecord {
    pub deployment_id: String,
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

/// What a reader gets next.
enum Next {
    Event(BuildEvent),
    Finished,
    Pending,
}

impl BuildRecord {
    pub fn new(deployment_id: &str) -> BuildRecord {
        BuildRecord {
            deployment_id: deployment_id.to_string(),
            inner: Mutex::new(Inner::default()),
            changed: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    pub fn set_phase(&self, phase: &str) {
        {
            let mut inner = self.lock();
            inner.phase = phase.to_string();
            inner.events.push(BuildEvent {
                event: Some(Event::Phase(phase.to_string())),
            });
        }
        self.notify();
    }

    pub fn push_line(&self, line: &str) {
        {
            let mut inner = self.lock();
            if inner.truncated {
                return;
            }
            if inner.log_bytes + line.len() > MAX_MEMORY_LOG_BYTES {
                inner.truncated = true;
                inner.events.push(BuildEvent {
                    event: Some(Event::Log(LogLine {
                        line: "[the rest of this log is only in the build log file]".into(),
                    })),
                });
            } else {
                inner.log_bytes += line.len() + 1;
                inner.events.push(BuildEvent {
                    event: Some(Event::Log(LogLine {
                        line: line.to_string(),
                    })),
                });
            }
        }
        self.notify();
    }

    /// Records the result (only the first one counts) and ends the event stream.
    pub fn finish(&self, result: BuildResult) {
        {
            let mut inner = self.lock();
            if inner.result.is_some() {
                return;
            }
            inner.result = Some(result.clone());
            inner.finished_at = Some(Instant::now());
            inner.events.push(BuildEvent {
                event: Some(Event::Result(result)),
            });
        }
        self.notify();
    }

    pub fn is_finished(&self) -> bool {
        self.lock().result.is_some()
    }

    fn finished_at(&self) -> Option<Instant> {
        self.lock().finished_at
    }

    fn next(&self, index: usize) -> Next {
        let inner = self.lock();
        if index == usize::MAX {
            return Next::Finished;
        }
        match inner.events.get(index) {
            Some(e) => Next::Event(e.clone()),
            None if inner.result.is_some() => Next::Finished,
            None => Next::Pending,
        }
    }

    /// The whole log so far, one line per log event.
    pub fn logs(&self) -> String {
        let inner = self.lock();
        let mut out = String::with_capacity(inner.log_bytes);
        for e in &inner.events {
            if let Some(Event::Log(l)) = &e.event {
                out.push_str(&l.line);
                out.push('\n');
            }
        }
        out
    }

    pub fn status(&self) -> BuildStatus {
        let logs = self.logs();
        let inner = self.lock();
        let state = match &inner.result {
            None => State::Running,
            Some(r) if r.success => State::Succeeded,
            Some(_) => State::Failed,
        };
        BuildStatus {
            state: state as i32,
            phase: inner.phase.clone(),
            logs,
            result: inner.result.clone(),
        }
    }

    /// Every event from the first one, then the new ones as they come, ending after the result.
    pub fn events(self: &Arc<Self>) -> impl Stream<Item = BuildEvent> + Send + 'static {
        let record = Arc::clone(self);
        let rx = record.changed.subscribe();
        futures_util::stream::unfold((record, 0usize, rx), |(record, index, mut rx)| async move {
            loop {
                rx.borrow_and_update();
                match record.next(index) {
                    // Nothing follows the result: lines logged after it stay out of the stream.
                    Next::Event(e) if matches!(e.event, Some(Event::Result(_))) => {
                        return Some((e, (record, usize::MAX, rx)))
                    }
                    Next::Event(e) => return Some((e, (record, index + 1, rx))),
                    Next::Finished => return None,
                    Next::Pending => {
                        if rx.changed().await.is_err() {
                            return None;
                        }
                    }
                }
            }
        })
    }
}

/// Writes a build's log lines: redacted, into memory (record) and appended to the log file.
#[derive(Clone)]
pub struct BuildLog {
    record: Arc<BuildRecord>,
    file: Arc<Mutex<Option<File>>>,
    redactor: Arc<Mutex<Redactor>>,
    pub path: PathBuf,
}

impl BuildLog {
    /// Opens (creates, appends to) `{dir}/{deployment_id}.log`. A log file that can't be opened
    /// is reported in the log itself; the build goes on.
    pub fn open(record: Arc<BuildRecord>, dir: &Path) -> BuildLog {
        let path = dir.join(format!("{}.log", record.deployment_id));
        let file = std::fs::create_dir_all(dir).and_then(|_| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        });
        let (file, problem) = match file {
            Ok(f) => (Some(f), None),
            Err(e) => (
                None,
                Some(format!(
                    "warning: can't write the build log file {}: {e}",
                    path.display()
                )),
            ),
        };
        let log = BuildLog {
            record,
            file: Arc::new(Mutex::new(file)),
            redactor: Arc::new(Mutex::new(Redactor::new())),
            path,
        };
        if let Some(problem) = problem {
            tracing::warn!("{problem}");
            log.line(&problem);
        }
        log
    }

    pub fn record(&self) -> &Arc<BuildRecord> {
        &self.record
    }

    /// Masks `secret` in every later line and error.
    pub fn add_secret(&self, secret: &str) {
        self.redactor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(secret);
    }

    pub fn redact(&self, text: &str) -> String {
        self.redactor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .redact(text)
    }

    /// One log line (or several, split on line breaks).
    pub fn line(&self, text: &str) {
        let text = self.redact(text);
        for line in text.split('\n') {
            // Progress bars redraw with carriage returns: keep what was last drawn.
            let line = line.strip_suffix('\r').unwrap_or(line);
            let line = if line.contains('\r') {
                line.rsplit('\r')
                    .find(|s| !s.trim().is_empty())
                    .unwrap_or("")
            } else {
                line
            };
            self.record.push_line(line);
            let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = file.as_mut() {
                // Unbuffered: one write per line reaches the file right away.
                let mut bytes = Vec::with_capacity(line.len() + 1);
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                if f.write_all(&bytes).and_then(|_| f.flush()).is_err() {
                    *file = None;
                }
            }
        }
    }

    pub fn phase(&self, phase: &str) {
        self.record.set_phase(phase);
        self.line(&format!("=== {phase} ==="));
    }
}

/// Builds by deployment id, bounded: finished builds are forgotten beyond `keep` or after `ttl`.
pub struct BuildStore {
    builds: Mutex<HashMap<String, Arc<BuildRecord>>>,
    keep: usize,
    ttl: Duration,
}

impl BuildStore {
    pub fn new(keep: usize, ttl: Duration) -> BuildStore {
        BuildStore {
            builds: Mutex::new(HashMap::new()),
            keep,
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<BuildRecord>>> {
        self.builds.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: &str) -> Option<Arc<BuildRecord>> {
        self.lock().get(id).cloned()
    }

    /// The running build of `id` (attached to, `false`) or a new one (`true`); a finished build
    /// of the same id is replaced.
    pub fn start_or_attach(&self, id: &str) -> (Arc<BuildRecord>, bool) {
        let mut builds = self.lock();
        if let Some(existing) = builds.get(id) {
            if !existing.is_finished() {
                return (Arc::clone(existing), false);
            }
        }
        let record = Arc::new(BuildRecord::new(id));
        builds.insert(id.to_string(), Arc::clone(&record));
        Self::evict(&mut builds, self.keep, self.ttl);
        (record, true)
    }

    fn evict(builds: &mut HashMap<String, Arc<BuildRecord>>, keep: usize, ttl: Duration) {
        let now = Instant::now();
        builds.retain(|_, b| match b.finished_at() {
            Some(at) => now.duration_since(at) <= ttl,
            None => true,
        });
        let mut finished: Vec<(Instant, String)> = builds
            .iter()
            .filter_map(|(id, b)| b.finished_at().map(|at| (at, id.clone())))
            .collect();
        if finished.len() > keep {
            finished.sort();
            let excess = finished.len() - keep;
            for (_, id) in finished.into_iter().take(excess) {
                builds.remove(&id);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn ok() -> BuildResult {
        BuildResult {
            success: true,
            image_names: vec!["img".into()],
            error: String::new(),
        }
    }

    #[tokio::test]
    async fn readers_get_everything_in_order_even_when_late() {
        let record = Arc::new(BuildRecord::new("d1"));
        record.set_phase("fetching the source code");
        record.push_line("a");
        let early = record.events();
        let r2 = Arc::clone(&record);
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            r2.push_line("b");
            r2.finish(ok());
            r2.push_line("ignored? no: lines after the result are stored but not streamed");
        });
        let events: Vec<BuildEvent> = early.collect().await;
        writer.await.unwrap();
        assert_eq!(events.len(), 4);
        assert!(matches!(events[3].event, Some(Event::Result(_))));
        let late: Vec<BuildEvent> = record.events().collect().await;
        assert_eq!(late.len(), 4);
        let status = record.status();
        assert_eq!(status.state, State::Succeeded as i32);
        assert_eq!(status.phase, "fetching the source code");
        assert!(status.logs.starts_with("a\nb\n"));
    }

    #[test]
    fn log_lines_are_redacted_and_written_to_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let record = Arc::new(BuildRecord::new("dep-1"));
        let log = BuildLog::open(Arc::clone(&record), &tmp.path().join("logs"));
        log.add_secret("hunter22");
        log.line(
            "cloning https://bob:hunter22@host/r.git\nsecond line hunter22\r\n 10%\r 50%\r100%",
        );
        let file = std::fs::read_to_string(tmp.path().join("logs/dep-1.log")).unwrap();
        assert_eq!(
            file,
            "cloning https://***@host/r.git\nsecond line ***\n100%\n"
        );
        assert_eq!(record.logs(), file);
    }

    #[test]
    fn store_attaches_to_running_and_evicts_old_finished() {
        let store = BuildStore::new(2, Duration::from_secs(3600));
        let (a, new) = store.start_or_attach("a");
        assert!(new);
        let (a2, new) = store.start_or_attach("a");
        assert!(!new && Arc::ptr_eq(&a, &a2));
        a.finish(ok());
        let (a3, new) = store.start_or_attach("a");
        assert!(new && !Arc::ptr_eq(&a, &a3));
        a3.finish(ok());
        for id in ["b", "c", "d"] {
            let (r, _) = store.start_or_attach(id);
            std::thread::sleep(Duration::from_millis(2));
            r.finish(ok());
        }
        let (_running, _) = store.start_or_attach("e");
        // Two finished kept at most (evicted on insert), plus the running one.
        assert!(store.len() <= 3, "{}", store.len());
        assert!(store.get("e").is_some());
        assert!(store.get("a").is_none());
    }
}
