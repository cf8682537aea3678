//! A fatman version's status from its Deployment and pods: running once a pod is ready, else the
//! first failure the pods or the Deployment report, with Kubernetes' reason and message.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;

use crate::InfraStatus;

/// Container waiting reasons that mean the fatman cannot start without a change (not a phase
/// it passes through): reported as `Error`, with the reason.
const FATAL_WAITING: &[&str] = &[
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];
const CRASH_LOOP: &str = "CrashLoopBackOff";

/// Whether the pod is Ready (its readiness probe, `/ready`, passes).
pub(crate) fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Why this pod cannot run, when it is stuck: `(status, reason)`.
pub(crate) fn pod_failure(pod: &Pod) -> Option<(InfraStatus, String)> {
    let status = pod.status.as_ref()?;
    for condition in status.conditions.iter().flatten() {
        if condition.type_ == "PodScheduled"
            && condition.status == "False"
            && condition.reason.as_deref() == Some("Unschedulable")
        {
            let message = condition.message.as_deref().unwrap_or_default();
            return Some((
                InfraStatus::Error,
                format!("Unschedulable: the pod cannot be placed on any node: {message}"),
            ));
        }
    }
    for container in status.container_statuses.iter().flatten() {
        let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let reason = waiting.reason.as_deref().unwrap_or_default();
        let message = waiting.message.as_deref().unwrap_or_default();
        if reason == CRASH_LOOP {
            let last = container
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .map(|t| {
                    let why = t.reason.as_deref().unwrap_or("terminated");
                    format!("; last exit code {} ({why})", t.exit_code)
                })
                .unwrap_or_default();
            return Some((
                InfraStatus::Exited,
                format!(
                    "CrashLoopBackOff: the fatman keeps crashing ({} restarts){last}",
                    container.restart_count
                ),
            ));
        }
        if FATAL_WAITING.contains(&reason) {
            return Some((InfraStatus::Error, format!("{reason}: {message}")));
        }
    }
    None
}

/// Status of the fatman version: `Running` when any pod is ready; else the first stuck pod's
/// failure, or a failed Deployment condition; else `Starting`.
pub(crate) fn classify(deployment: &Deployment, pods: &[Pod]) -> (InfraStatus, Option<String>) {
    if pods.iter().any(pod_ready) {
        return (InfraStatus::Running, None);
    }
    if let Some((status, reason)) = pods.iter().find_map(pod_failure) {
        return (status, Some(reason));
    }
    let conditions = deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref());
    for condition in conditions.into_iter().flatten() {
        let failed = (condition.type_ == "Progressing" && condition.status == "False")
            || (condition.type_ == "ReplicaFailure" && condition.status == "True");
        if failed {
            let reason = condition.reason.as_deref().unwrap_or(&condition.type_);
            let message = condition.message.as_deref().unwrap_or_default();
            return (InfraStatus::Error, Some(format!("{reason}: {message}")));
        }
    }
    let wanted = deployment
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(1);
    if wanted == 0 {
        return (
            InfraStatus::Error,
            Some("the Deployment is scaled to 0 replicas".into()),
        );
    }
    (InfraStatus::Starting, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": { "name": "p" },
            "status": status,
        }))
        .unwrap()
    }

    #[test]
    fn reasons() {
        let deployment = Deployment::default();
        let crash = pod(serde_json::json!({"containerStatuses": [{
            "name": "c", "image": "i", "imageID": "", "ready": false, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
            "lastState": {"terminated": {"exitCode": 3, "reason": "Error"}},
        }]}));
        assert_eq!(
            classify(&deployment, &[crash]),
            (
                InfraStatus::Exited,
                Some(
                    "CrashLoopBackOff: the fatman keeps crashing (4 restarts); last exit code 3 (Error)"
                        .into()
                )
            )
        );
        let ready = pod(serde_json::json!({"conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(classify(&deployment, &[ready]).0, InfraStatus::Running);
        assert_eq!(classify(&deployment, &[]).0, InfraStatus::Starting);
    }
}
