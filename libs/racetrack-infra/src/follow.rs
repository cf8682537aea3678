//! Following a fatman's runtime log: whole lines as the fatman writes them. Targets whose engine
//! can stream a log (Docker) do so; the others get [`poll_logs`], which reads the log's tail every
//! [`POLL_INTERVAL`] and passes on only the lines it has not seen yet.

use std::pin::Pin;
use std::time::Duration;

use futures_util::Stream;

use crate::{InfraError, InfrastructureTarget};

/// Whole lines, each ending with `\n`, one or more per item. The stream ends when the fatman's
/// container is gone (or stopped, for targets that stream); an error ends it too.
pub type LogStream<'a> = Pin<Box<dyn Stream<Item = Result<String, InfraError>> + Send + 'a>>;

/// How often [`poll_logs`] reads the log.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How many lines [`poll_logs`] reads each time after the first: more new lines than this
/// between two reads are not all passed on.
pub const POLL_WINDOW: usize = 1000;

/// Cuts bytes into whole lines; a line split over two chunks comes out once complete.
#[derive(Debug, Default)]
pub(crate) struct LineBuffer {
    pending: Vec<u8>,
}

impl LineBuffer {
    /// The whole lines completed by `bytes` (`None` when none is complete yet).
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Option<String> {
        self.pending.extend_from_slice(bytes);
        let end = self.pending.iter().rposition(|b| *b == b'\n')? + 1;
        let rest = self.pending.split_off(end);
        let lines = std::mem::replace(&mut self.pending, rest);
        Some(String::from_utf8_lossy(&lines).into_owned())
    }

    /// What is left when the log ends, as a line of its own.
    pub(crate) fn finish(self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let mut last = String::from_utf8_lossy(&self.pending).into_owned();
        last.push('\n');
        Some(last)
    }
}

/// The lines at the end of `current` that come after what `previous` (the last read) ended with:
/// the longest prefix of `current` that ends like `previous` counts as seen. A log that writes
/// the very same lines again between two reads cannot be told apart from one that wrote nothing;
/// with no overlap at all (a new container) everything in `current` is new.
pub fn new_lines<'c>(previous: &[String], current: &'c [String]) -> &'c [String] {
    if previous.is_empty() {
        return current;
    }
    for seen in (1..=current.len()).rev() {
        let overlap = seen.min(previous.len());
        if current[seen - overlap..seen] == previous[previous.len() - overlap..] {
            return &current[seen..];
        }
    }
    current
}

enum Polled {
    First,
    Seen(Vec<String>),
    Done,
}

/// Follows a log by reading it every `interval`: the last `tail` lines (`0` = all) at once, then
/// the lines that were not there at the previous read (see [`new_lines`]). Ends when the
/// target no longer finds the fatman; an error reading the log is passed on and ends it.
pub fn poll_logs<'a, T>(
    target: &'a T,
    name: String,
    version: String,
    tail: usize,
    interval: Duration,
) -> LogStream<'a>
where
    T: InfrastructureTarget + ?Sized,
{
    Box::pin(futures_util::stream::unfold(Polled::First, move |state| {
        let (name, version) = (name.clone(), version.clone());
        async move {
            let mut previous = match state {
                Polled::Done => return None,
                Polled::First => None,
                Polled::Seen(lines) => Some(lines),
            };
            loop {
                let window = match &previous {
                    None => tail,
                    Some(_) => {
                        tokio::time::sleep(interval).await;
                        POLL_WINDOW.max(tail)
                    }
                };
                let text = match target.logs(&name, &version, window).await {
                    Ok(text) => text,
                    Err(InfraError::NotFound(_)) => return None,
                    Err(e) => return Some((Err(e), Polled::Done)),
                };
                let current: Vec<String> = text.lines().map(String::from).collect();
                let fresh = match &previous {
                    None => &current[..],
                    Some(p) => new_lines(p, &current),
                };
                if fresh.is_empty() {
                    previous = Some(current);
                    continue;
                }
                let chunk: String = fresh.iter().map(|l| format!("{l}\n")).collect();
                return Some((Ok(chunk), Polled::Seen(current)));
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &[&str]) -> Vec<String> {
        s.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn new_lines_after_the_overlap() {
        let prev = lines(&["a", "b", "c"]);
        assert_eq!(
            new_lines(&prev, &lines(&["a", "b", "c", "d"])),
            &lines(&["d"])[..]
        );
        // A wider window than the first read.
        assert_eq!(
            new_lines(&prev, &lines(&["x", "a", "b", "c", "d", "e"])),
            &lines(&["d", "e"])[..]
        );
        // The window moved on: the start of the previous read fell out.
        assert_eq!(
            new_lines(&prev, &lines(&["b", "c", "d"])),
            &lines(&["d"])[..]
        );
        assert!(new_lines(&prev, &prev).is_empty());
        // A repeated line is new when it follows what was seen.
        assert_eq!(
            new_lines(&lines(&["a", "b"]), &lines(&["a", "b", "b"])),
            &lines(&["b"])[..]
        );
        assert_eq!(new_lines(&[], &lines(&["a"])), &lines(&["a"])[..]);
        // No overlap at all: a new container's log.
        assert_eq!(
            new_lines(&prev, &lines(&["p", "q"])),
            &lines(&["p", "q"])[..]
        );
    }

    /// A log the test writes to; gone when `gone` is set.
    #[derive(Default)]
    struct Written {
        lines: std::sync::Mutex<Vec<String>>,
        gone: std::sync::atomic::AtomicBool,
    }

    #[async_trait::async_trait]
    impl InfrastructureTarget for Written {
        fn name(&self) -> &str {
            "written"
        }
        async fn deploy(&self, _: &crate::FatmanSpec) -> Result<crate::DeployedFatman, InfraError> {
            Err(InfraError::Invalid("no".into()))
        }
        async fn delete(&self, _: &str, _: &str) -> Result<(), InfraError> {
            Ok(())
        }
        async fn exists(&self, _: &str, _: &str) -> Result<bool, InfraError> {
            Ok(true)
        }
        async fn list(&self) -> Result<Vec<crate::DeployedFatman>, InfraError> {
            Ok(Vec::new())
        }
        async fn logs(&self, _: &str, _: &str, tail: usize) -> Result<String, InfraError> {
            if self.gone.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(InfraError::NotFound("gone".into()));
            }
            let lines = self.lines.lock().unwrap();
            let start = if tail == 0 {
                0
            } else {
                lines.len().saturating_sub(tail)
            };
            Ok(lines[start..].iter().map(|l| format!("{l}\n")).collect())
        }
    }

    #[tokio::test]
    async fn polling_passes_on_only_new_lines_and_ends_with_the_fatman() {
        use futures_util::StreamExt;
        let log = Written::default();
        let write = |l: &str| log.lines.lock().unwrap().push(l.to_string());
        write("a");
        write("b");
        write("c");
        let mut stream = poll_logs(&log, "f".into(), "1".into(), 2, Duration::from_millis(10));
        assert_eq!(stream.next().await.unwrap().unwrap(), "b\nc\n");
        write("c");
        write("d");
        assert_eq!(stream.next().await.unwrap().unwrap(), "c\nd\n");
        log.gone.store(true, std::sync::atomic::Ordering::SeqCst);
        assert!(stream.next().await.is_none());
    }

    #[test]
    fn line_buffer_emits_whole_lines() {
        let mut buf = LineBuffer::default();
        assert_eq!(buf.push(b"hel"), None);
        assert_eq!(buf.push(b"lo\nwor").as_deref(), Some("hello\n"));
        assert_eq!(buf.push(b"ld\n1\n2").as_deref(), Some("world\n1\n"));
        assert_eq!(buf.finish().as_deref(), Some("2\n"));
        assert_eq!(LineBuffer::default().finish(), None);
    }
}
