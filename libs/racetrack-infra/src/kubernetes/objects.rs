//! The objects one fatman version becomes (docs/architecture.md, "Infrastructure targets"), as
//! the JSON sent with server-side apply, and the names and labels they carry. Pure functions: no
//! API calls here.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::KubernetesTargetConfig;
use crate::{FatmanSpec, InfraError};

/// Longest Kubernetes object name used here, and longest label value: an RFC 1035 label.
pub const MAX_NAME_LEN: usize = 63;

/// `app.kubernetes.io/name`: the object name; Deployment and Service select on it too.
pub const K8S_LABEL_NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/managed-by: racetrack` on every object this target applies.
pub const K8S_LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The fatman version's object name.
pub const K8S_LABEL_FATMAN: &str = "racetrack/fatman";
/// The fatman's name (shortened with a hash if it does not fit a label value).
pub const K8S_LABEL_FATMAN_NAME: &str = "racetrack/fatman-name";
/// The fatman's version (shortened with a hash if it does not fit a label value).
pub const K8S_LABEL_FATMAN_VERSION: &str = "racetrack/fatman-version";
/// `racetrack/resource: fatman` on fatman pods: what the NetworkPolicy protects.
pub const K8S_LABEL_RESOURCE: &str = "racetrack/resource";
/// Exact fatman name (annotations have no length limit; `list` reads these).
pub const ANNOTATION_FATMAN_NAME: &str = "racetrack/fatman-name";
/// Exact fatman version.
pub const ANNOTATION_FATMAN_VERSION: &str = "racetrack/fatman-version";
/// Unix seconds of the deployment, on the Deployment and its pod template: a new deploy changes
/// the template, so Kubernetes rolls the pods even when the image tag is the same.
pub const ANNOTATION_DEPLOYMENT_DATE: &str = "racetrack-deployment-date";
/// The one NetworkPolicy per namespace.
pub const NETWORK_POLICY_NAME: &str = "racetrack-fatmen-ingress";
pub(crate) const MANAGER: &str = "racetrack";
const RESOURCE_FATMAN: &str = "fatman";
const PORT_NAME: &str = "http";

/// `s` when it fits in `max` characters, else its first characters, `-` and 8 hex digits of its
/// SHA-256: deterministic, still unique in practice, and ends with an alphanumeric.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let hash = Sha256::digest(s.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let keep: String = s.chars().take(max - hex.len() - 1).collect();
    let keep = keep.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    format!("{keep}-{hex}")
}

/// Name of the Deployment, Service and Secret of a fatman version: its resource name
/// (`fatman-<name>-v-<version>`, dots as dashes, lowercase), shortened with a hash beyond 63
/// characters.
pub fn object_name(name: &str, version: &str) -> String {
    shorten(
        &racetrack_model::names::resource_name(name, version),
        MAX_NAME_LEN,
    )
}

/// A valid label value for `s` (a fatman name or version: already letters, digits, `-`, `.`).
fn label_value(s: &str) -> String {
    shorten(s, MAX_NAME_LEN)
}

/// Labels of every object of a fatman version.
pub(crate) fn object_labels(spec: &FatmanSpec, object: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (K8S_LABEL_NAME.to_string(), object.to_string()),
        (K8S_LABEL_MANAGED_BY.to_string(), MANAGER.to_string()),
        (K8S_LABEL_FATMAN.to_string(), object.to_string()),
        (K8S_LABEL_FATMAN_NAME.to_string(), label_value(&spec.name)),
        (
            K8S_LABEL_FATMAN_VERSION.to_string(),
            label_value(&spec.version),
        ),
    ])
}

fn object_annotations(spec: &FatmanSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (ANNOTATION_FATMAN_NAME.to_string(), spec.name.clone()),
        (ANNOTATION_FATMAN_VERSION.to_string(), spec.version.clone()),
        (
            ANNOTATION_DEPLOYMENT_DATE.to_string(),
            spec.deployment_timestamp.to_string(),
        ),
    ])
}

/// Requests and limits of a fatman's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resources {
    pub memory_min: u64,
    pub memory_max: u64,
    /// Millicores.
    pub cpu_min: u64,
    /// Millicores.
    pub cpu_max: u64,
}

fn millicores(cores: f64, what: &str) -> Result<u64, InfraError> {
    if !(cores.is_finite() && cores > 0.0 && cores < 1e9) {
        return Err(InfraError::Invalid(format!(
            "{what} {cores} is out of range"
        )));
    }
    Ok(((cores * 1000.0).round() as u64).max(1))
}

/// The manifest's resources with the target's defaults; the memory request is raised to a
/// quarter of the limit, and a memory limit above the cap is refused (as the original plugin).
pub(crate) fn resources(
    spec: &FatmanSpec,
    config: &KubernetesTargetConfig,
) -> Result<Resources, InfraError> {
    let d = &config.resources;
    let mut memory_min = spec.memory_min_bytes.unwrap_or(d.memory_min_bytes);
    let memory_max = spec
        .memory_max_bytes
        .unwrap_or_else(|| d.memory_max_bytes.max(memory_min));
    if memory_min.saturating_mul(4) < memory_max {
        memory_min = memory_max.div_ceil(4);
    }
    let cpu_min = millicores(spec.cpu_min.unwrap_or(d.cpu_min), "cpu_min")?;
    let cpu_max = match spec.cpu_max {
        Some(c) => millicores(c, "cpu_max")?,
        None => millicores(d.cpu_max, "cpu_max")?.max(cpu_min),
    };
    if memory_min == 0 {
        return Err(InfraError::Invalid("memory_min must be more than 0".into()));
    }
    if memory_max > d.memory_max_limit_bytes {
        return Err(InfraError::Invalid(format!(
            "memory_max {} exceeds the limit of {} per fatman",
            memory_quantity(memory_max),
            memory_quantity(d.memory_max_limit_bytes)
        )));
    }
    if let Some(limit) = d.cpu_max_limit {
        let limit = millicores(limit, "cpu limit")?;
        if cpu_max > limit {
            return Err(InfraError::Invalid(format!(
                "cpu_max {}m exceeds the limit of {limit}m per fatman",
                cpu_max
            )));
        }
    }
    if memory_min > memory_max {
        return Err(InfraError::Invalid(format!(
            "memory_min {} is more than memory_max {}",
            memory_quantity(memory_min),
            memory_quantity(memory_max)
        )));
    }
    if cpu_min > cpu_max {
        return Err(InfraError::Invalid(format!(
            "cpu_min {cpu_min}m is more than cpu_max {cpu_max}m"
        )));
    }
    Ok(Resources {
        memory_min,
        memory_max,
        cpu_min,
        cpu_max,
    })
}

/// Bytes as a Kubernetes quantity, in the largest binary unit that divides them.
pub(crate) fn memory_quantity(bytes: u64) -> String {
    for (unit, size) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    bytes.to_string()
}

/// Secret keys and env names must be `[-._a-zA-Z0-9]+` to travel through a Secret.
fn check_secret_key(name: &str) -> Result<(), InfraError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if ok {
        Ok(())
    } else {
        Err(InfraError::Invalid(format!(
            "secret env var name {name:?} cannot be a Kubernetes Secret key \
             (letters, digits, '-', '.', '_' only)"
        )))
    }
}

/// The Secret holding the secret runtime env (keys = variable names, values base64).
pub(crate) fn secret(
    spec: &FatmanSpec,
    object: &str,
    namespace: &str,
) -> Result<Value, InfraError> {
    let mut data = serde_json::Map::new();
    for (key, value) in &spec.secret_env {
        check_secret_key(key)?;
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        data.insert(key.clone(), Value::String(encoded));
    }
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": object,
            "namespace": namespace,
            "labels": object_labels(spec, object),
            "annotations": {
                ANNOTATION_FATMAN_NAME: spec.name,
                ANNOTATION_FATMAN_VERSION: spec.version,
            },
        },
        "type": "Opaque",
        "data": data,
    }))
}

/// The ClusterIP Service in front of the fatman's pods, port `http` 7000.
pub(crate) fn service(spec: &FatmanSpec, object: &str, config: &KubernetesTargetConfig) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": object,
            "namespace": config.namespace,
            "labels": object_labels(spec, object),
            "annotations": {
                ANNOTATION_FATMAN_NAME: spec.name,
                ANNOTATION_FATMAN_VERSION: spec.version,
            },
        },
        "spec": {
            "type": "ClusterIP",
            "selector": { K8S_LABEL_FATMAN: object },
            "ports": [{
                "name": PORT_NAME,
                "port": config.container_port,
                "targetPort": PORT_NAME,
                "protocol": "TCP",
            }],
        },
    })
}

fn http_probe(path: &str, period: u32, failures: u32) -> Value {
    json!({
        "httpGet": { "path": path, "port": PORT_NAME },
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    })
}

/// The Deployment: the fatman's container with plain env as values and secret env as references
/// into the Secret, requests/limits, and the runtime contract's probes: a startup probe on
/// `/live` allowing 6 minutes to start (as the original deploy waited), then liveness on `/live`
/// and readiness on `/ready`.
pub(crate) fn deployment(
    spec: &FatmanSpec,
    object: &str,
    resources: Resources,
    config: &KubernetesTargetConfig,
) -> Value {
    let labels = object_labels(spec, object);
    let mut pod_labels = labels.clone();
    pod_labels.insert(K8S_LABEL_RESOURCE.to_string(), RESOURCE_FATMAN.to_string());
    let mut env: Vec<Value> = spec
        .env
        .iter()
        .map(|(k, v)| json!({ "name": k, "value": v }))
        .collect();
    env.extend(spec.secret_env.keys().map(|k| {
        json!({
            "name": k,
            "valueFrom": { "secretKeyRef": { "name": object, "key": k } },
        })
    }));
    let quantities = json!({
        "requests": {
            "memory": memory_quantity(resources.memory_min),
            "cpu": format!("{}m", resources.cpu_min),
        },
        "limits": {
            "memory": memory_quantity(resources.memory_max),
            "cpu": format!("{}m", resources.cpu_max),
        },
    });
    let mut pod_spec = json!({
        // Fatmen never talk to the Kubernetes API.
        "automountServiceAccountToken": false,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 100000,
            "runAsGroup": 100000,
            "fsGroup": 200000,
            "supplementalGroups": [200000],
            "seccompProfile": { "type": "RuntimeDefault" },
        },
        "containers": [{
            "name": object,
            "image": spec.image,
            "imagePullPolicy": config.image_pull_policy,
            "ports": [{
                "name": PORT_NAME,
                "containerPort": config.container_port,
                "protocol": "TCP",
            }],
            "env": env,
            "resources": quantities,
            "startupProbe": http_probe("/live", 5, 72),
            "livenessProbe": http_probe("/live", 10, 3),
            "readinessProbe": http_probe("/ready", 5, 3),
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "capabilities": { "drop": ["ALL"] },
            },
        }],
    });
    if let Some(secret) = &config.image_pull_secret {
        pod_spec["imagePullSecrets"] = json!([{ "name": secret }]);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": object,
            "namespace": config.namespace,
            "labels": labels,
            "annotations": object_annotations(spec),
        },
        "spec": {
            "replicas": spec.replicas,
            "revisionHistoryLimit": 2,
            "selector": { "matchLabels": { K8S_LABEL_FATMAN: object } },
            "template": {
                "metadata": {
                    "labels": pod_labels,
                    "annotations": object_annotations(spec),
                },
                "spec": pod_spec,
            },
        },
    })
}

/// The namespace's NetworkPolicy: fatman pods accept traffic on their port only from pods
/// matching the PUB selector (in `pub_namespace` when set, else in the same namespace).
pub(crate) fn network_policy(config: &KubernetesTargetConfig) -> Value {
    let mut peer = json!({ "podSelector": { "matchLabels": config.pub_selector } });
    if let Some(ns) = &config.pub_namespace {
        peer["namespaceSelector"] = json!({ "matchLabels": { "kubernetes.io/metadata.name": ns } });
    }
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": NETWORK_POLICY_NAME,
            "namespace": config.namespace,
            "labels": { K8S_LABEL_MANAGED_BY: MANAGER },
        },
        "spec": {
            "podSelector": { "matchLabels": { K8S_LABEL_RESOURCE: RESOURCE_FATMAN } },
            "policyTypes": ["Ingress"],
            "ingress": [{
                "from": [peer],
                "ports": [{ "protocol": "TCP", "port": config.container_port }],
            }],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_and_are_deterministic() {
        assert_eq!(object_name("adder", "1.2.3"), "fatman-adder-v-1-2-3");
        let long_version = format!("1.0.0-{}", "rc".repeat(40));
        let a = object_name("adder", &long_version);
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert_eq!(a, object_name("adder", &long_version));
        assert_ne!(a, object_name("adder", &format!("{long_version}x")));
        assert!(a.starts_with("fatman-adder-v-1-0-0-rcrc"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
        assert!(a.ends_with(|c: char| c.is_ascii_alphanumeric()));
        // A cut right after a dash does not leave "--".
        let s = shorten(&format!("{}-{}", "a".repeat(54), "b".repeat(20)), 63);
        assert!(!s.contains("--"), "{s}");
        assert_eq!(label_value("1.0.0"), "1.0.0");
    }

    #[test]
    fn quantities() {
        assert_eq!(memory_quantity(256 << 20), "256Mi");
        assert_eq!(memory_quantity(1 << 30), "1Gi");
        assert_eq!(memory_quantity(3 << 29), "1536Mi");
        assert_eq!(memory_quantity(1000), "1000");
    }

    #[test]
    fn resources_defaults_quarter_rule_and_caps() {
        let config = KubernetesTargetConfig::default();
        let spec = FatmanSpec::default();
        assert_eq!(
            resources(&spec, &config).unwrap(),
            Resources {
                memory_min: 256 << 20,
                memory_max: 1 << 30,
                cpu_min: 10,
                cpu_max: 1000
            }
        );
        // Request raised to a quarter of the limit.
        let big = FatmanSpec {
            memory_max_bytes: Some(4 << 30),
            ..Default::default()
        };
        assert_eq!(resources(&big, &config).unwrap().memory_min, 1 << 30);
        // No limit given and the default is below the request: limit = request.
        let min_only = FatmanSpec {
            memory_min_bytes: Some(2 << 30),
            cpu_min: Some(2.0),
            ..Default::default()
        };
        let r = resources(&min_only, &config).unwrap();
        assert_eq!((r.memory_max, r.cpu_max), (2 << 30, 2000));
        let too_big = FatmanSpec {
            memory_max_bytes: Some(9 << 30),
            ..Default::default()
        };
        assert_eq!(
            resources(&too_big, &config).unwrap_err().to_string(),
            "memory_max 9Gi exceeds the limit of 8Gi per fatman"
        );
        let inverted = FatmanSpec {
            cpu_min: Some(2.0),
            cpu_max: Some(1.0),
            ..Default::default()
        };
        assert_eq!(
            resources(&inverted, &config).unwrap_err().to_string(),
            "cpu_min 2000m is more than cpu_max 1000m"
        );
    }

    #[test]
    fn secret_keys_must_fit_a_secret() {
        let spec = FatmanSpec {
            secret_env: BTreeMap::from([("BAD KEY".to_string(), "v".to_string())]),
            ..Default::default()
        };
        let e = secret(&spec, "x", "ns").unwrap_err();
        assert!(e.to_string().contains("\"BAD KEY\""), "{e}");
    }
}
