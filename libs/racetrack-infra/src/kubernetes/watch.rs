//! The Kubernetes target's event feed (docs/architecture.md, "The Kubernetes target"): two
//! watches (kube-runtime's `watcher`) over the namespace's fatman Deployments and pods, selected
//! like [`super::KubernetesTarget::list`] selects them (`app.kubernetes.io/managed-by=racetrack`
//! and a `racetrack/fatman` label), turned into [`InfraEvent`]s meaning what the Docker target's
//! mean to the supervisor:
//!
//! - a fatman's Deployment deleted → `Removed` (the fatman is gone: lost);
//! - a pod whose container died (its restart count went up), that entered CrashLoopBackOff or
//!   another state it cannot leave by itself (image pull, config error, unschedulable), or whose
//!   phase became `Failed` (evicted) → `Died`, with the exit code and Kubernetes' reason
//!   (`OutOfMemory` when the container was OOM-killed);
//! - a pod becoming Ready (its `/ready` probe passes) → `Started`.
//!
//! The first listing of both is the baseline: what is already so reports nothing. Pods being
//! deleted (rollouts, scale-down) report nothing either: their containers are stopped on purpose.
//!
//! Errors: a watch that breaks is resumed by the watcher from the last resourceVersion it saw,
//! after the watcher's own backoff, so nothing is missed and the feed goes on. When it cannot
//! resume and lists afresh (the resourceVersion expired: 410 Gone), events may have been missed:
//! the feed yields an error and ends, so the caller reconnects and (the supervisor's rule) syncs
//! in full. `events()` itself fails when the first listing does (API unreachable, RBAC), so the
//! caller's retry and backoff apply.

use std::collections::{HashMap, VecDeque};

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;

use super::objects::{
    ANNOTATION_FATMAN_NAME, ANNOTATION_FATMAN_VERSION, K8S_LABEL_FATMAN, K8S_LABEL_FATMAN_NAME,
    K8S_LABEL_FATMAN_VERSION, K8S_LABEL_MANAGED_BY, MANAGER,
};
use super::{map_error, status, KubernetesTarget, Op};
use crate::{InfraError, InfraEvent, InfraEventKind, InfraEventStream};

/// One change seen by one of the two watches (boxed: a Pod is far larger than a Deployment).
pub(crate) enum Change {
    Deployment(Box<watcher::Event<Deployment>>),
    Pod(Box<watcher::Event<Pod>>),
}

/// The watches' failure: which resource, and the watcher's error.
type WatchFailure = (&'static str, watcher::Error);

/// What a fatman version's pod looked like last time.
#[derive(Debug, Clone, Default, PartialEq)]
struct PodSeen {
    ready: bool,
    restarts: i32,
    /// The kind of trouble it is stuck in (`CrashLoopBackOff`, `ImagePullBackOff`, `Failed`...).
    stuck: Option<String>,
}

/// The last state of every watched object, to tell what changed.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    /// Deployment name → (fatman name, version).
    deployments: HashMap<String, (String, String)>,
    pods: HashMap<String, PodSeen>,
    deployments_listed: bool,
    pods_listed: bool,
}

/// What one change means.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Step {
    pub events: Vec<InfraEvent>,
    /// A watch started over from a fresh listing after its first: events may have been missed.
    pub relisted: Option<&'static str>,
}

/// The fatman name and version an object belongs to: annotations hold them exactly, labels
/// (possibly shortened) are the fallback.
fn fatman_of(meta: &ObjectMeta) -> Option<(String, String)> {
    let pick = |annotation: &str, label: &str| {
        meta.annotations
            .as_ref()
            .and_then(|a| a.get(annotation))
            .or_else(|| meta.labels.as_ref().and_then(|l| l.get(label)))
            .cloned()
    };
    Some((
        pick(ANNOTATION_FATMAN_NAME, K8S_LABEL_FATMAN_NAME)?,
        pick(ANNOTATION_FATMAN_VERSION, K8S_LABEL_FATMAN_VERSION)?,
    ))
}

/// The first word of a reason (`CrashLoopBackOff: ...` → `CrashLoopBackOff`): what kind of
/// trouble, without the counts that change at each restart.
fn trouble_kind(reason: &str) -> String {
    reason
        .split(':')
        .next()
        .unwrap_or(reason)
        .trim()
        .to_string()
}

/// Why the pod cannot run, when it is stuck: its containers' state, or a `Failed` phase.
fn pod_stuck(pod: &Pod) -> Option<String> {
    if let Some((_, reason)) = status::pod_failure(pod) {
        return Some(reason);
    }
    let s = pod.status.as_ref()?;
    (s.phase.as_deref() == Some("Failed")).then(|| {
        format!(
            "Failed: {}: {}",
            s.reason.as_deref().unwrap_or("the pod failed"),
            s.message.as_deref().unwrap_or_default()
        )
    })
}

/// The last termination of the pod's containers (the one before a restart, or the current one).
fn last_termination(pod: &Pod) -> Option<&ContainerStateTerminated> {
    pod.status
        .as_ref()?
        .container_statuses
        .iter()
        .flatten()
        .find_map(|c| {
            c.last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .or_else(|| c.state.as_ref().and_then(|s| s.terminated.as_ref()))
        })
}

fn seen(pod: &Pod) -> PodSeen {
    PodSeen {
        ready: status::pod_ready(pod),
        restarts: pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|c| c.iter().map(|c| c.restart_count).sum())
            .unwrap_or(0),
        stuck: pod_stuck(pod).as_deref().map(trouble_kind),
    }
}

impl Tracker {
    /// Takes in one change; `Step::events` are what it means for fatmen.
    pub(crate) fn step(&mut self, change: Change) -> Step {
        let mut step = Step::default();
        match change {
            Change::Deployment(event) => match *event {
                watcher::Event::Init if self.deployments_listed => {
                    step.relisted = Some("deployments")
                }
                watcher::Event::Init => {}
                watcher::Event::InitApply(d) | watcher::Event::Apply(d) => {
                    if let (Some(object), Some(fatman)) =
                        (d.metadata.name.clone(), fatman_of(&d.metadata))
                    {
                        self.deployments.insert(object, fatman);
                    }
                }
                watcher::Event::Delete(d) => {
                    let object = d.metadata.name.clone().unwrap_or_default();
                    let known = self.deployments.remove(&object);
                    if let Some((name, version)) = fatman_of(&d.metadata).or(known) {
                        step.events.push(InfraEvent {
                            name,
                            version,
                            kind: InfraEventKind::Removed,
                            exit_code: None,
                            reason: Some(format!("Deployment {object} was deleted")),
                        });
                    }
                }
                watcher::Event::InitDone => self.deployments_listed = true,
            },
            Change::Pod(event) => match *event {
                watcher::Event::Init if self.pods_listed => step.relisted = Some("pods"),
                watcher::Event::Init => {}
                watcher::Event::InitApply(p) => {
                    if let Some(name) = p.metadata.name.clone() {
                        self.pods.insert(name, seen(&p));
                    }
                }
                watcher::Event::Apply(p) => step.events = self.pod_changed(&p),
                watcher::Event::Delete(p) => {
                    if let Some(name) = &p.metadata.name {
                        self.pods.remove(name);
                    }
                }
                watcher::Event::InitDone => self.pods_listed = true,
            },
        }
        step
    }

    /// Both watches have delivered their first listing.
    pub(crate) fn listed(&self) -> bool {
        self.deployments_listed && self.pods_listed
    }

    fn pod_changed(&mut self, pod: &Pod) -> Vec<InfraEvent> {
        let Some(pod_name) = pod.metadata.name.clone() else {
            return vec![];
        };
        let now = seen(pod);
        let before = self.pods.insert(pod_name, now.clone()).unwrap_or_default();
        let Some((name, version)) = fatman_of(&pod.metadata) else {
            return vec![];
        };
        if pod.metadata.deletion_timestamp.is_some() {
            return vec![];
        }
        let mut events = Vec::new();
        let newly_stuck = now.stuck.is_some() && now.stuck != before.stuck;
        if now.restarts > before.restarts || newly_stuck {
            let terminated = last_termination(pod);
            let oom = terminated.is_some_and(|t| t.reason.as_deref() == Some("OOMKilled"));
            let reason = pod_stuck(pod).or_else(|| {
                terminated.map(|t| {
                    format!(
                        "the fatman's container exited with code {} ({}) and was restarted",
                        t.exit_code,
                        t.reason.as_deref().unwrap_or("terminated")
                    )
                })
            });
            events.push(InfraEvent {
                name: name.clone(),
                version: version.clone(),
                kind: if oom {
                    InfraEventKind::OutOfMemory
                } else {
                    InfraEventKind::Died
                },
                exit_code: terminated.map(|t| i64::from(t.exit_code)),
                reason,
            });
        }
        if now.ready && !before.ready {
            events.push(InfraEvent {
                name,
                version,
                kind: InfraEventKind::Started,
                exit_code: None,
                reason: None,
            });
        }
        events
    }
}

fn watch_error(namespace: &str, resource: &str, e: watcher::Error) -> InfraError {
    let op = |verb| Op {
        verb,
        resource,
        name: "",
    };
    match e {
        watcher::Error::InitialListFailed(e) => map_error(namespace, op("list"), e),
        watcher::Error::WatchStartFailed(e) | watcher::Error::WatchFailed(e) => {
            map_error(namespace, op("watch"), e)
        }
        watcher::Error::WatchError(status) => {
            map_error(namespace, op("watch"), kube::Error::Api(status))
        }
        other @ watcher::Error::NoResourceVersion => InfraError::Kubernetes(format!(
            "watch {resource} in namespace {namespace}: {other}"
        )),
    }
}

struct Feed {
    changes: BoxStream<'static, Result<Change, WatchFailure>>,
    tracker: Tracker,
    queue: VecDeque<InfraEvent>,
    namespace: String,
    ended: bool,
}

impl KubernetesTarget {
    /// The event feed; returns once both watches have listed what is there now (the baseline).
    pub(crate) async fn watch_events(&self) -> Result<InfraEventStream, InfraError> {
        let selector = format!("{K8S_LABEL_MANAGED_BY}={MANAGER},{K8S_LABEL_FATMAN}");
        let config = watcher::Config::default().labels(&selector);
        let deployments = watcher(self.api::<Deployment>(), config.clone())
            .default_backoff()
            .map(|r| {
                r.map(|e| Change::Deployment(Box::new(e)))
                    .map_err(|e| ("deployments", e))
            });
        let pods = watcher(self.api::<Pod>(), config)
            .default_backoff()
            .map(|r| r.map(|e| Change::Pod(Box::new(e))).map_err(|e| ("pods", e)));
        let mut changes = futures_util::stream::select(deployments, pods).boxed();
        let namespace = self.config.namespace.clone();
        let mut tracker = Tracker::default();
        while !tracker.listed() {
            match changes.next().await {
                Some(Ok(change)) => {
                    tracker.step(change);
                }
                Some(Err((resource, e))) => return Err(watch_error(&namespace, resource, e)),
                None => {
                    return Err(InfraError::KubernetesUnavailable(format!(
                        "the watches in namespace {namespace} ended before their first listing"
                    )))
                }
            }
        }
        tracing::debug!(namespace = %namespace, "watching fatman Deployments and pods");
        let feed = Feed {
            changes,
            tracker,
            queue: VecDeque::new(),
            namespace,
            ended: false,
        };
        Ok(Box::pin(futures_util::stream::unfold(feed, next_event)))
    }
}

async fn next_event(mut feed: Feed) -> Option<(Result<InfraEvent, InfraError>, Feed)> {
    loop {
        if let Some(event) = feed.queue.pop_front() {
            return Some((Ok(event), feed));
        }
        if feed.ended {
            return None;
        }
        match feed.changes.next().await {
            Some(Ok(change)) => {
                let step = feed.tracker.step(change);
                if let Some(resource) = step.relisted {
                    feed.ended = true;
                    let error = InfraError::Kubernetes(format!(
                        "the watch of {resource} in namespace {} started over from a fresh listing (its resourceVersion expired): events may have been missed",
                        feed.namespace
                    ));
                    return Some((Err(error), feed));
                }
                feed.queue.extend(step.events);
            }
            Some(Err((resource, e))) => {
                // The watcher resumes from its last resourceVersion after its backoff.
                let error = watch_error(&feed.namespace, resource, e);
                tracing::warn!(%error, "Kubernetes watch failed; resuming after a backoff");
            }
            None => {
                feed.ended = true;
                let error = InfraError::KubernetesUnavailable(format!(
                    "the watches in namespace {} ended",
                    feed.namespace
                ));
                return Some((Err(error), feed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {
                "name": "fatman-adder-v-1-abc",
                "annotations": {"racetrack/fatman-name": "adder", "racetrack/fatman-version": "1"},
            },
            "status": status,
        }))
        .unwrap()
    }

    fn crashed(restarts: i32, waiting: &str, reason: &str, code: i32) -> Pod {
        pod(json!({"containerStatuses": [{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": restarts,
            "state": {"waiting": {"reason": waiting}},
            "lastState": {"terminated": {"exitCode": code, "reason": reason}},
        }]}))
    }

    fn listed() -> Tracker {
        let mut t = Tracker::default();
        for change in [
            Change::Deployment(Box::new(watcher::Event::Init)),
            Change::Deployment(Box::new(watcher::Event::InitDone)),
            Change::Pod(Box::new(watcher::Event::Init)),
            Change::Pod(Box::new(watcher::Event::InitApply(pod(json!({}))))),
            Change::Pod(Box::new(watcher::Event::InitDone)),
        ] {
            assert_eq!(t.step(change), Step::default());
        }
        assert!(t.listed());
        t
    }

    fn kinds(step: Step) -> Vec<(InfraEventKind, Option<i64>)> {
        step.events.iter().map(|e| (e.kind, e.exit_code)).collect()
    }

    #[test]
    fn restarts_crash_loops_and_readiness_are_reported_once_each() {
        let mut t = listed();
        let apply = |p: Pod| Change::Pod(Box::new(watcher::Event::Apply(p)));
        // Restarted once (not yet in back-off): died with its exit code.
        let step = t.step(apply(crashed(1, "ContainerCreating", "Error", 3)));
        assert_eq!(kinds(step), [(InfraEventKind::Died, Some(3))]);
        // The same again: nothing new.
        assert!(t
            .step(apply(crashed(1, "ContainerCreating", "Error", 3)))
            .events
            .is_empty());
        // Back-off after the second crash: one event, with Kubernetes' reason.
        let step = t.step(apply(crashed(2, "CrashLoopBackOff", "Error", 3)));
        assert_eq!(step.events.len(), 1);
        let reason = step.events[0].reason.clone().unwrap_or_default();
        assert!(reason.starts_with("CrashLoopBackOff: "), "{reason}");
        // OOM-killed.
        let step = t.step(apply(crashed(3, "CrashLoopBackOff", "OOMKilled", 137)));
        assert_eq!(kinds(step), [(InfraEventKind::OutOfMemory, Some(137))]);
        // Ready: started, once.
        let ready = || pod(json!({"conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(
            kinds(t.step(apply(ready()))),
            [(InfraEventKind::Started, None)]
        );
        assert!(t.step(apply(ready())).events.is_empty());
        // Evicted.
        let step = t.step(apply(pod(json!({"phase": "Failed", "reason": "Evicted"}))));
        assert_eq!(kinds(step), [(InfraEventKind::Died, None)]);
    }

    #[test]
    fn terminating_pods_report_nothing_and_a_relist_ends_the_feed() {
        let mut t = listed();
        let mut p = crashed(5, "CrashLoopBackOff", "Error", 1);
        p.metadata.deletion_timestamp =
            serde_json::from_value(json!("2026-12-03T12:00:00Z")).unwrap();
        assert!(t
            .step(Change::Pod(Box::new(watcher::Event::Apply(p))))
            .events
            .is_empty());
        assert_eq!(
            t.step(Change::Pod(Box::new(watcher::Event::Init))).relisted,
            Some("pods")
        );
    }
}
