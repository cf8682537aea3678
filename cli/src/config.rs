//! `~/.racetrack/config.yaml`, the file the original Python client reads and writes: the current
//! remote, aliases, a token per Lifecycle URL and git credentials. Both clients must be able to
//! use a file the other wrote, so keys and layout follow the original (sorted keys, block style)
//! and keys this client does not know are kept as they are.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};
use serde_yaml::Value;

use crate::error::{CliError, Result};

pub const DEFAULT_LIFECYCLE_URL: &str = "http://localhost:7002";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub git_credentials: BTreeMap<String, Credentials>,
    /// The current remote as the user gave it: an alias name or a URL.
    #[serde(default = "default_url", deserialize_with = "null_as_default_url")]
    pub lifecycle_url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub lifecycle_url_aliases: BTreeMap<String, String>,
    /// Resolved Lifecycle URL → token.
    #[serde(default, deserialize_with = "null_as_default")]
    pub user_auths: BTreeMap<String, String>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            git_credentials: BTreeMap::new(),
            lifecycle_url: default_url(),
            lifecycle_url_aliases: BTreeMap::new(),
            user_auths: BTreeMap::new(),
            other: BTreeMap::new(),
        }
    }
}

fn default_url() -> String {
    DEFAULT_LIFECYCLE_URL.to_string()
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_default_url<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(default_url))
}

/// `$HOME/.racetrack/config.yaml`, where the original keeps it (Python's `Path.home()` reads
/// `HOME` too).
pub fn config_path() -> Result<PathBuf> {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| {
            CliError::Invalid("HOME is not set: cannot locate ~/.racetrack/config.yaml".to_string())
        })?;
    Ok(Path::new(&home).join(".racetrack").join("config.yaml"))
}

impl ClientConfig {
    pub fn load() -> Result<ClientConfig> {
        Self::load_from(&config_path()?)
    }

    /// A missing file means all defaults.
    pub fn load_from(path: &Path) -> Result<ClientConfig> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ClientConfig::default())
            }
            Err(e) => {
                return Err(CliError::Invalid(format!(
                    "loading client config failed: {}: {e}",
                    path.display()
                )))
            }
        };
        Self::parse(&text).map_err(|e| {
            CliError::Invalid(format!(
                "loading client config failed: {}: {e}",
                path.display()
            ))
        })
    }

    pub fn parse(text: &str) -> std::result::Result<ClientConfig, serde_yaml::Error> {
        let value: Value = serde_yaml::from_str(text)?;
        if value.is_null() {
            return Ok(ClientConfig::default());
        }
        serde_yaml::from_value(value)
    }

    /// YAML with keys sorted at every level, block style, as the original writes it.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_value(self)
            .map(sorted)
            .and_then(|v| serde_yaml::to_string(&v))
            .unwrap_or_default()
    }

    pub fn save(&self) -> Result<()> {
        self.save_to(&config_path()?)
    }

    /// Rewrites the whole file; owner-only permissions since it holds tokens and passwords.
    pub fn save_to(&self, path: &Path) -> Result<()> {
        let fail = |e: std::io::Error| {
            CliError::Other(format!(
                "saving client config failed: {}: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        write_private(path, self.to_yaml().as_bytes()).map_err(fail)
    }

    /// Where `remote` (or the current remote when `None`) points: alias replaced, scheme and
    /// `/lifecycle` inferred.
    pub fn resolve_remote(&self, remote: Option<&str>) -> String {
        let raw = remote.unwrap_or(&self.lifecycle_url);
        let url = self
            .lifecycle_url_aliases
            .get(raw)
            .map(String::as_str)
            .unwrap_or(raw);
        infer_url(url)
    }

    /// The git credentials for a repository URL: exact match, then `scheme://host/path`,
    /// `scheme://host`, `host`.
    pub fn git_credentials_for(&self, remote: &str) -> Option<&Credentials> {
        if let Some(c) = self.git_credentials.get(remote) {
            return Some(c);
        }
        let (scheme, rest) = remote.split_once("://")?;
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut keys = Vec::new();
        if !path.is_empty() {
            keys.push(format!("{scheme}://{host}/{path}"));
        }
        keys.push(format!("{scheme}://{host}"));
        keys.push(host.to_string());
        keys.iter().find_map(|k| self.git_credentials.get(k))
    }
}

fn sorted(value: Value) -> Value {
    match value {
        Value::Mapping(map) => {
            let mut entries: Vec<(Value, Value)> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            entries.sort_by_key(|(k, _)| key_text(k));
            Value::Mapping(entries.into_iter().collect())
        }
        other => other,
    }
}

fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Splits `scheme://authority/path` (the scheme is required) into its scheme+authority and path.
fn split_url(url: &str) -> Option<(&str, &str)> {
    let scheme_end = url.find("://")? + 3;
    let path_start = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    Some(url.split_at(path_start))
}

/// `host` → `https://host/lifecycle`; a URL with a path (even `/`) is kept as given.
pub fn infer_url(url: &str) -> String {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    match split_url(&url) {
        Some((_, "")) => format!("{url}/lifecycle"),
        _ => url,
    }
}

/// An alias target as stored: trailing `/` trimmed from its path.
pub fn trim_alias_url(url: &str) -> String {
    match split_url(url) {
        Some((base, path)) if !path.starts_with(['?', '#']) => {
            format!("{base}{}", path.trim_end_matches('/'))
        }
        _ => url.to_string(),
    }
}

/// Only the host (and port) of a URL, for deciding what counts as a local remote.
pub fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit('@').next().unwrap_or_default();
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or_default();
    }
    authority.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_resolution() {
        let mut c = ClientConfig::default();
        c.lifecycle_url_aliases
            .insert("dev".into(), "https://dev-cluster/lifecycle".into());
        c.lifecycle_url_aliases
            .insert("kind".into(), "http://localhost:7002".into());
        let cases = [
            (Some("dev"), "https://dev-cluster/lifecycle"),
            (Some("kind"), "http://localhost:7002/lifecycle"),
            (None, "http://localhost:7002/lifecycle"),
            (Some("http://test-cluster"), "http://test-cluster/lifecycle"),
            (Some("test-cluster"), "https://test-cluster/lifecycle"),
            (
                Some("test-cluster/lifecycle"),
                "https://test-cluster/lifecycle",
            ),
            (Some("http://test-cluster/"), "http://test-cluster/"),
            (
                Some("test-cluster:7002"),
                "https://test-cluster:7002/lifecycle",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(c.resolve_remote(input), want, "{input:?}");
        }
    }

    #[test]
    fn alias_urls_lose_trailing_slashes() {
        assert_eq!(
            trim_alias_url("http://host/lifecycle/"),
            "http://host/lifecycle"
        );
        assert_eq!(trim_alias_url("http://host/"), "http://host");
        assert_eq!(trim_alias_url("http://host"), "http://host");
    }

    #[test]
    fn hosts() {
        assert_eq!(url_host("http://localhost:7002/lifecycle"), "localhost");
        assert_eq!(url_host("https://u:p@127.0.0.1/x"), "127.0.0.1");
        assert_eq!(url_host("http://[::1]:80/"), "::1");
    }

    #[test]
    fn git_credentials_lookup_order() {
        let mut c = ClientConfig::default();
        let cred = |u: &str| Credentials {
            username: u.into(),
            password: "p".into(),
        };
        c.git_credentials.insert("github.com".into(), cred("host"));
        c.git_credentials
            .insert("https://github.com".into(), cred("scheme-host"));
        c.git_credentials
            .insert("https://github.com/org/repo".into(), cred("path"));
        let user = |remote: &str| c.git_credentials_for(remote).map(|c| c.username.clone());
        assert_eq!(user("https://github.com/org/repo").as_deref(), Some("path"));
        assert_eq!(
            user("https://github.com/org/other").as_deref(),
            Some("scheme-host")
        );
        assert_eq!(user("http://github.com/x").as_deref(), Some("host"));
        assert_eq!(user("https://gitlab.com/x"), None);
    }

    #[test]
    fn original_file_round_trips_with_sorted_keys_and_unknown_keys_kept() {
        let text = "git_credentials:\n  https://github.com:\n    password: ghp_xxx\n    username: alice@example.com\nlifecycle_url: dev\nlifecycle_url_aliases:\n  dev: https://racetrack.dev.example.com/lifecycle\n  kind: http://localhost:7002\nuser_auths:\n  https://racetrack.dev.example.com/lifecycle: eyJhbGciOi\n";
        let c = ClientConfig::parse(text).unwrap();
        assert_eq!(c.lifecycle_url, "dev");
        assert_eq!(
            c.user_auths["https://racetrack.dev.example.com/lifecycle"],
            "eyJhbGciOi"
        );
        assert_eq!(c.to_yaml(), text);

        let c = ClientConfig::parse("zeta: 1\nuser_auths: null\nalpha: {b: 2, a: 1}\n").unwrap();
        assert_eq!(c.lifecycle_url, DEFAULT_LIFECYCLE_URL);
        let out = c.to_yaml();
        assert!(
            out.starts_with("alpha:\n  a: 1\n  b: 2\ngit_credentials: {}\n"),
            "{out}"
        );
        assert!(out.ends_with("zeta: 1\n"), "{out}");
        assert_eq!(ClientConfig::parse("").unwrap(), ClientConfig::default());
        assert!(ClientConfig::parse("user_auths: [1]").is_err());
    }

    #[test]
    fn missing_file_is_defaults_and_saved_file_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".racetrack/config.yaml");
        assert_eq!(
            ClientConfig::load_from(&path).unwrap(),
            ClientConfig::default()
        );
        let mut c = ClientConfig::default();
        c.user_auths.insert("http://x/lifecycle".into(), "t".into());
        c.save_to(&path).unwrap();
        assert_eq!(ClientConfig::load_from(&path).unwrap(), c);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "user_auths: [").unwrap();
        let err = ClientConfig::load_from(&path).unwrap_err();
        assert!(
            err.to_string().starts_with("loading client config failed"),
            "{err}"
        );
    }
}
