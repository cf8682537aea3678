//! The infrastructure's event feed, in the platform's own terms: which fatman version's
//! container went away and how, or came up. Consumers (the supervisor) never see engine types.

use std::fmt;
use std::pin::Pin;

use futures_util::Stream;

use crate::InfraError;

/// What happened to a fatman's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InfraEventKind {
    /// Its process ended (crash, kill, or stop).
    Died,
    /// Sent a signal (it may live on).
    Killed,
    /// Stopped on request.
    Stopped,
    /// Killed by the kernel for exceeding its memory limit.
    OutOfMemory,
    /// The container was removed (Kubernetes: the fatman's Deployment was deleted).
    Removed,
    /// It came up (Kubernetes: a pod became Ready, i.e. passes its `/ready` probe).
    Started,
}

impl InfraEventKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            InfraEventKind::Died => "died",
            InfraEventKind::Killed => "killed",
            InfraEventKind::Stopped => "stopped",
            InfraEventKind::OutOfMemory => "out_of_memory",
            InfraEventKind::Removed => "removed",
            InfraEventKind::Started => "started",
        }
    }
}

impl fmt::Display for InfraEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event about one fatman version's container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfraEvent {
    pub name: String,
    pub version: String,
    pub kind: InfraEventKind,
    /// The process's exit code, when the infrastructure reports one (`Died`).
    pub exit_code: Option<i64>,
    /// Why, in the infrastructure's words, when it says (Kubernetes: `CrashLoopBackOff: ...`).
    pub reason: Option<String>,
}

/// A live feed of [`InfraEvent`]s; an `Err` item or the end of the stream means the feed broke.
pub type InfraEventStream = Pin<Box<dyn Stream<Item = Result<InfraEvent, InfraError>> + Send>>;
