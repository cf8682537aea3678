//! The Kubernetes manifests cannot drift from the code: `kubectl kustomize kustomize/dev` is
//! rendered and each service's container is checked against that service's own `Config`: its
//! image, that every variable it is given is one its `Config` reads (`ENV_VARS`, which a unit test
//! in each crate checks against `from_lookup`) or one of the shared ones (logging, the Docker
//! engine), that `from_lookup` accepts the values, that the container ports are the ports the
//! configured addresses listen on, that the probes ask the service's real probe paths on its probe
//! port, and that its Service targets those ports. See kustomize/README.md.

mod harness;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use base64::Engine;
use harness::{require, workspace_root};
use serde::Deserialize;
use serde_yaml::Value;

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;
/// Every listening port, and the port serving the probes.
type Listening = (BTreeSet<u16>, u16);

/// What a service's code says about it.
struct Service {
    name: &'static str,
    env_vars: &'static [&'static str],
    /// Variables read outside `Config` by this service (the Docker engine's address).
    extra_env: &'static [&'static str],
    /// `(liveness, readiness)` paths.
    probes: (&'static str, &'static str),
    /// `from_lookup`, then `(every listening port, the port serving the probes)`.
    ports: fn(Lookup) -> Result<Listening, String>,
}

fn ports(list: &[u16], probe: u16) -> Listening {
    (list.iter().copied().collect(), probe)
}

const DOCKER_ENGINE: &[&str] = &["DOCKER_HOST"];

fn services() -> Vec<Service> {
    vec![
        Service {
            name: "lifecycle",
            env_vars: lifecycle::config::ENV_VARS,
            extra_env: DOCKER_ENGINE,
            probes: ("/live", "/ready"),
            ports: |get| {
                let c = lifecycle::config::Config::from_lookup(get).map_err(|e| e.to_string())?;
                Ok(ports(
                    &[c.http_addr.port(), c.grpc_addr.port()],
                    c.http_addr.port(),
                ))
            },
        },
        Service {
            name: "image-builder",
            env_vars: image_builder::config::ENV_VARS,
            extra_env: DOCKER_ENGINE,
            probes: ("/live", "/ready"),
            ports: |get| {
                let c =
                    image_builder::config::Config::from_lookup(get).map_err(|e| e.to_string())?;
                Ok(ports(
                    &[c.grpc_addr.port(), c.http_addr.port()],
                    c.http_addr.port(),
                ))
            },
        },
        Service {
            name: "lifecycle-supervisor",
            env_vars: lifecycle_supervisor::config::ENV_VARS,
            extra_env: DOCKER_ENGINE,
            probes: ("/live", "/ready"),
            ports: |get| {
                let c = lifecycle_supervisor::config::Config::from_lookup(get)
                    .map_err(|e| e.to_string())?;
                Ok(ports(&[c.http_addr.port()], c.http_addr.port()))
            },
        },
        Service {
            name: "pub",
            env_vars: racetrack_pub::config::ENV_VARS,
            extra_env: &[],
            probes: ("/pub/live", "/pub/ready"),
            ports: |get| {
                let c =
                    racetrack_pub::config::Config::from_lookup(get).map_err(|e| e.to_string())?;
                Ok(ports(&[c.addr.port()], c.addr.port()))
            },
        },
        Service {
            name: "dashboard",
            env_vars: dashboard::config::ENV_VARS,
            extra_env: &[],
            probes: ("/dashboard/live", "/dashboard/ready"),
            ports: |get| {
                let c = dashboard::config::Config::from_lookup(get).map_err(|e| e.to_string())?;
                Ok(ports(&[c.addr.port()], c.addr.port()))
            },
        },
    ]
}

/// Read by every service through `racetrack-telemetry`.
const TELEMETRY_ENV: &[&str] = &[
    racetrack_telemetry::ENV_LOG_FILTER,
    racetrack_telemetry::ENV_LOG_FORMAT,
    racetrack_telemetry::ENV_OTLP_ENDPOINT,
];

fn render() -> Option<Vec<Value>> {
    let ok = Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require("kubectl (Debian's kubernetes-client)", ok) {
        return None;
    }
    let out = Command::new("kubectl")
        .args(["kustomize", "kustomize/dev"])
        .current_dir(workspace_root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl kustomize kustomize/dev: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    Some(
        serde_yaml::Deserializer::from_str(&text)
            .map(|doc| Value::deserialize(doc).unwrap())
            .filter(|v| !v.is_null())
            .collect(),
    )
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for key in path {
        cur = cur.get(*key)?;
    }
    cur.as_str()
}

fn find<'a>(docs: &'a [Value], kind: &str, namespace: &str, name: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        s(d, &["kind"]) == Some(kind)
            && s(d, &["metadata", "namespace"]) == Some(namespace)
            && s(d, &["metadata", "name"]) == Some(name)
    })
}

/// The container's environment as the kubelet would give it: `envFrom` ConfigMaps, then `env`
/// (literal values, ConfigMap and Secret keys; a Secret the operator makes later, such as the
/// internal tokens, gets a placeholder).
fn environment(docs: &[Value], ns: &str, container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_sequence().into_iter().flatten() {
        let name = s(source, &["configMapRef", "name"]).expect("envFrom uses ConfigMaps only");
        let map = find(docs, "ConfigMap", ns, name)
            .unwrap_or_else(|| panic!("ConfigMap {name} is not in the manifests"));
        for (k, v) in map["data"].as_mapping().into_iter().flatten() {
            env.insert(
                k.as_str().unwrap().to_string(),
                v.as_str().unwrap().to_string(),
            );
        }
    }
    for var in container["env"].as_sequence().into_iter().flatten() {
        let name = s(var, &["name"]).unwrap().to_string();
        let value = if let Some(v) = s(var, &["value"]) {
            v.to_string()
        } else if let Some(r) = var["valueFrom"].get("secretKeyRef") {
            let (secret, key) = (s(r, &["name"]).unwrap(), s(r, &["key"]).unwrap());
            match find(docs, "Secret", ns, secret).and_then(|d| s(d, &["data", key])) {
                Some(b64) => String::from_utf8(
                    base64::engine::general_purpose::STANDARD
                        // Long values come wrapped over several lines.
                        .decode(b64.split_whitespace().collect::<String>())
                        .unwrap(),
                )
                .unwrap(),
                None => "operator-made-secret-placeholder-0123456789".to_string(),
            }
        } else if let Some(r) = var["valueFrom"].get("configMapKeyRef") {
            let (map, key) = (s(r, &["name"]).unwrap(), s(r, &["key"]).unwrap());
            s(find(docs, "ConfigMap", ns, map).unwrap(), &["data", key])
                .unwrap_or_else(|| panic!("ConfigMap {map} has no key {key}"))
                .to_string()
        } else {
            panic!("{name}: unsupported valueFrom {:?}", var["valueFrom"]);
        };
        env.insert(name, value);
    }
    env
}

/// A port reference (number or name) resolved against the container's ports.
fn port_of(container: &Value, port: &Value) -> Option<u16> {
    let ports = container["ports"].as_sequence()?;
    match port {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(name) => ports
            .iter()
            .find(|p| s(p, &["name"]) == Some(name))
            .and_then(|p| p["containerPort"].as_u64())
            .and_then(|n| u16::try_from(n).ok()),
        _ => None,
    }
}

#[test]
fn dev_manifests_match_the_services_configuration() {
    let Some(docs) = render() else { return };
    let mut problems = Vec::new();
    for svc in services() {
        let image = format!("127.0.0.1:5000/racetrack/{}:latest", svc.name);
        let mut found = Vec::new();
        for doc in &docs {
            let kind = s(doc, &["kind"]).unwrap_or_default();
            if kind != "Deployment" && kind != "StatefulSet" {
                continue;
            }
            for c in doc["spec"]["template"]["spec"]["containers"]
                .as_sequence()
                .into_iter()
                .flatten()
            {
                if s(c, &["image"])
                    .is_some_and(|i| i.contains(&format!("/racetrack/{}:", svc.name)))
                {
                    found.push((doc, c));
                }
            }
        }
        let [(workload, container)] = found[..] else {
            problems.push(format!(
                "{}: expected one container, found {}",
                svc.name,
                found.len()
            ));
            continue;
        };
        let ns = s(workload, &["metadata", "namespace"]).unwrap_or_default();
        let problem = |p: String| format!("{}: {p}", svc.name);
        if s(container, &["image"]) != Some(image.as_str()) {
            problems.push(problem(format!(
                "image {:?}, expected {image}",
                s(container, &["image"])
            )));
        }
        if ns != "racetrack" {
            problems.push(problem(format!("namespace {ns:?}, expected racetrack")));
        }
        let binary = container["args"][0].as_str().unwrap_or_default();
        if !binary.is_empty() && binary != svc.name {
            problems.push(problem(format!("runs {binary:?}")));
        }

        // Every variable is one the service reads.
        let env = environment(&docs, ns, container);
        for name in env.keys() {
            let known = svc.env_vars.contains(&name.as_str())
                || svc.extra_env.contains(&name.as_str())
                || TELEMETRY_ENV.contains(&name.as_str());
            if !known {
                problems.push(problem(format!(
                    "sets {name}, which the service does not read (not in its ENV_VARS)"
                )));
            }
        }

        // The values are accepted, and give the listening ports.
        let lookup = |k: &str| env.get(k).cloned();
        let listening = match (svc.ports)(&lookup) {
            Ok(p) => p,
            Err(e) => {
                problems.push(problem(format!("configuration refused: {e}")));
                continue;
            }
        };
        let (all_ports, probe_port) = listening;
        let declared: BTreeSet<u16> = container["ports"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|p| p["containerPort"].as_u64())
            .filter_map(|n| u16::try_from(n).ok())
            .collect();
        if declared != all_ports {
            problems.push(problem(format!(
                "container ports {declared:?}, the configuration listens on {all_ports:?}"
            )));
        }

        // Probes: the real paths, on the port serving them.
        for (probe, path) in [
            ("livenessProbe", svc.probes.0),
            ("readinessProbe", svc.probes.1),
        ] {
            let get = &container[probe]["httpGet"];
            if s(get, &["path"]) != Some(path) {
                problems.push(problem(format!(
                    "{probe} path {:?}, expected {path}",
                    s(get, &["path"])
                )));
            }
            if port_of(container, &get["port"]) != Some(probe_port) {
                problems.push(problem(format!(
                    "{probe} port {:?}, the probes are served on {probe_port}",
                    get["port"]
                )));
            }
        }

        // The Service in front of the pods targets ports the container has.
        let labels = &workload["spec"]["template"]["metadata"]["labels"];
        let fronting: Vec<&Value> = docs
            .iter()
            .filter(|d| {
                s(d, &["kind"]) == Some("Service")
                    && s(d, &["metadata", "namespace"]) == Some(ns)
                    && d["spec"]["selector"].as_mapping().is_some_and(|sel| {
                        sel.iter()
                            .all(|(k, v)| labels.get(k.as_str().unwrap()) == Some(v))
                    })
            })
            .collect();
        if fronting.is_empty() {
            problems.push(problem("no Service selects its pods".into()));
        }
        for service in fronting {
            for p in service["spec"]["ports"].as_sequence().into_iter().flatten() {
                match port_of(container, &p["targetPort"]) {
                    Some(port) if all_ports.contains(&port) => {}
                    other => problems.push(problem(format!(
                        "Service {:?} targets {:?} ({other:?}), not a listening port",
                        s(service, &["metadata", "name"]),
                        p["targetPort"]
                    ))),
                }
            }
        }

        // Non-root, read-only root file system.
        let pod_sc = &workload["spec"]["template"]["spec"]["securityContext"];
        let sc = &container["securityContext"];
        let non_root = sc["runAsNonRoot"]
            .as_bool()
            .or(pod_sc["runAsNonRoot"].as_bool());
        if non_root != Some(true) || sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
            problems.push(problem(
                "must run as non-root with a read-only root file system".into(),
            ));
        }
    }
    assert!(problems.is_empty(), "drift:\n{}", problems.join("\n"));
}

/// The drift check finds drift: a variable no service reads is reported.
#[test]
fn an_unknown_variable_would_be_reported() {
    let svc = &services()[3];
    assert_eq!(svc.name, "pub");
    assert!(!svc.env_vars.contains(&"PUB_LISTEN_ADDRESS"));
    assert!(svc.env_vars.contains(&"PUB_ADDR"));
    let with_addr = |addr: &'static str| {
        move |k: &str| match k {
            "PUB_ADDR" => Some(addr.to_string()),
            "LIFECYCLE_AUTH_TOKEN" => Some("internal-token".to_string()),
            _ => None,
        }
    };
    assert_eq!((svc.ports)(&with_addr("0.0.0.0:7205")).unwrap().1, 7205);
    assert!((svc.ports)(&with_addr("nope")).is_err());
}
