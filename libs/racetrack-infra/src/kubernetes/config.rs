//! The Kubernetes target's settings from environment variables, read the same way by Lifecycle
//! (which deploys) and the supervisor (which watches), so both look at the same namespace.
//! Table in docs/architecture.md, "The Kubernetes target".

use std::collections::BTreeMap;
use std::time::Duration;

use racetrack_config::{parse_size, ConfigError, Env};

use super::{KubernetesTargetConfig, ResourceDefaults};

/// Every variable [`KubernetesTargetConfig::from_env`] reads; part of each reading service's
/// `ENV_VARS`.
pub const KUBERNETES_ENV_VARS: &[&str] = &[
    "FATMAN_K8S_NAMESPACE",
    "K8S_PUB_SELECTOR",
    "K8S_PUB_NAMESPACE",
    "K8S_IMAGE_PULL_POLICY",
    "K8S_IMAGE_PULL_SECRET",
    "DEFAULT_FATMAN_MEMORY_MIN",
    "DEFAULT_FATMAN_MEMORY_MAX",
    "DEFAULT_FATMAN_CPU_MIN",
    "DEFAULT_FATMAN_CPU_MAX",
    "MAX_FATMAN_MEMORY_LIMIT",
    "MAX_FATMAN_CPU_LIMIT",
    "K8S_POLL_INTERVAL",
];

impl KubernetesTargetConfig {
    /// Unset variables keep [`KubernetesTargetConfig::default`]'s values.
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<KubernetesTargetConfig, ConfigError> {
        let defaults = KubernetesTargetConfig::default();
        let resources = ResourceDefaults::default();
        let pub_selector = match env.string("K8S_PUB_SELECTOR") {
            Some(text) => parse_selector(&text)
                .map_err(|reason| ConfigError::new("K8S_PUB_SELECTOR", reason))?,
            None => defaults.pub_selector.clone(),
        };
        let image_pull_policy = env.string_or("K8S_IMAGE_PULL_POLICY", &defaults.image_pull_policy);
        if !["Always", "IfNotPresent", "Never"].contains(&image_pull_policy.as_str()) {
            return Err(ConfigError::new(
                "K8S_IMAGE_PULL_POLICY",
                format!("must be Always, IfNotPresent or Never, got {image_pull_policy:?}"),
            ));
        }
        let config = KubernetesTargetConfig {
            namespace: env.string_or("FATMAN_K8S_NAMESPACE", &defaults.namespace),
            pub_selector,
            pub_namespace: env.string("K8S_PUB_NAMESPACE"),
            container_port: defaults.container_port,
            image_pull_policy,
            image_pull_secret: env.string("K8S_IMAGE_PULL_SECRET"),
            resources: ResourceDefaults {
                memory_min_bytes: memory(
                    env,
                    "DEFAULT_FATMAN_MEMORY_MIN",
                    resources.memory_min_bytes,
                )?,
                memory_max_bytes: memory(
                    env,
                    "DEFAULT_FATMAN_MEMORY_MAX",
                    resources.memory_max_bytes,
                )?,
                cpu_min: cpu(env, "DEFAULT_FATMAN_CPU_MIN")?.unwrap_or(resources.cpu_min),
                cpu_max: cpu(env, "DEFAULT_FATMAN_CPU_MAX")?.unwrap_or(resources.cpu_max),
                memory_max_limit_bytes: memory(
                    env,
                    "MAX_FATMAN_MEMORY_LIMIT",
                    resources.memory_max_limit_bytes,
                )?,
                cpu_max_limit: cpu(env, "MAX_FATMAN_CPU_LIMIT")?.or(resources.cpu_max_limit),
            },
            poll_interval: env.secs("K8S_POLL_INTERVAL", Duration::from_secs(1))?,
        };
        if !is_dns_label(&config.namespace) {
            return Err(ConfigError::new(
                "FATMAN_K8S_NAMESPACE",
                format!("must be a DNS-1123 label, got {:?}", config.namespace),
            ));
        }
        if config.resources.memory_min_bytes > config.resources.memory_max_bytes {
            return Err(ConfigError::new(
                "DEFAULT_FATMAN_MEMORY_MIN",
                "must not be above DEFAULT_FATMAN_MEMORY_MAX",
            ));
        }
        if config.resources.cpu_min > config.resources.cpu_max {
            return Err(ConfigError::new(
                "DEFAULT_FATMAN_CPU_MIN",
                "must not be above DEFAULT_FATMAN_CPU_MAX",
            ));
        }
        Ok(config)
    }
}

fn memory<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    var: &str,
    default: u64,
) -> Result<u64, ConfigError> {
    match env.string(var) {
        None => Ok(default),
        Some(text) => parse_size(&text).filter(|b| *b > 0).ok_or_else(|| {
            ConfigError::new(
                var,
                format!("must be a size like 256Mi or 1Gi, got {text:?}"),
            )
        }),
    }
}

/// Cores as Kubernetes writes them: `0.5`, `2`, or millicores `500m`.
fn cpu<F: Fn(&str) -> Option<String>>(env: &Env<F>, var: &str) -> Result<Option<f64>, ConfigError> {
    let Some(text) = env.string(var) else {
        return Ok(None);
    };
    let cores = match text.strip_suffix('m') {
        Some(milli) => milli.parse::<u32>().ok().map(|m| f64::from(m) / 1000.0),
        None => text.parse::<f64>().ok(),
    };
    match cores {
        Some(c) if c.is_finite() && c > 0.0 => Ok(Some(c)),
        _ => Err(ConfigError::new(
            var,
            format!("must be cores like 0.5 or millicores like 500m, got {text:?}"),
        )),
    }
}

/// `key=value[,key=value...]`, as `kubectl -l` takes equality selectors.
fn parse_selector(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("must be key=value pairs separated by commas, got {part:?}"))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() || value.is_empty() {
            return Err(format!("empty key or value in {part:?}"));
        }
        labels.insert(key.to_string(), value.to_string());
    }
    if labels.is_empty() {
        return Err("must name at least one label (an empty selector matches every pod)".into());
    }
    Ok(labels)
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use racetrack_config::lookup_in;

    fn read(vars: &[(&str, &str)]) -> Result<KubernetesTargetConfig, ConfigError> {
        KubernetesTargetConfig::from_env(&Env::new(lookup_in(vars)))
    }

    #[test]
    fn unset_gives_defaults() {
        assert_eq!(read(&[]).unwrap(), KubernetesTargetConfig::default());
    }

    #[test]
    fn values_are_parsed() {
        let c = read(&[
            ("FATMAN_K8S_NAMESPACE", "fatmen"),
            (
                "K8S_PUB_SELECTOR",
                "app=racetrack, app.kubernetes.io/name=pub",
            ),
            ("K8S_PUB_NAMESPACE", "racetrack"),
            ("K8S_IMAGE_PULL_POLICY", "IfNotPresent"),
            ("DEFAULT_FATMAN_MEMORY_MIN", "128Mi"),
            ("DEFAULT_FATMAN_CPU_MAX", "500m"),
            ("MAX_FATMAN_CPU_LIMIT", "4"),
        ])
        .unwrap();
        assert_eq!(c.namespace, "fatmen");
        assert_eq!(c.pub_selector.len(), 2);
        assert_eq!(c.pub_namespace.as_deref(), Some("racetrack"));
        assert_eq!(c.image_pull_policy, "IfNotPresent");
        assert_eq!(c.resources.memory_min_bytes, 128 << 20);
        assert_eq!(c.resources.cpu_max, 0.5);
        assert_eq!(c.resources.cpu_max_limit, Some(4.0));
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            ("FATMAN_K8S_NAMESPACE", "Not_A_Label"),
            ("K8S_PUB_SELECTOR", "pub"),
            ("K8S_PUB_SELECTOR", ","),
            ("K8S_IMAGE_PULL_POLICY", "sometimes"),
            ("DEFAULT_FATMAN_MEMORY_MIN", "lots"),
            ("DEFAULT_FATMAN_CPU_MIN", "-1"),
            ("DEFAULT_FATMAN_MEMORY_MIN", "4Gi"),
        ] {
            let err = read(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{var}={value}: {err}");
        }
    }

    #[test]
    fn env_vars_list_is_exact() {
        let read = racetrack_config::variables_read(&[], KUBERNETES_ENV_VARS, |get| {
            let _ = KubernetesTargetConfig::from_env(&Env::new(get));
        });
        racetrack_config::check_env_vars(KUBERNETES_ENV_VARS, &read).unwrap();
    }
}
