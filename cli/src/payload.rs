//! What a deploy request carries besides the manifest: the local build context, secret env files,
//! git credentials.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use racetrack_model::dockerignore::{DockerIgnore, DOCKERIGNORE};
use serde_json::{json, Value};

use crate::config::{url_host, ClientConfig};
use crate::error::{CliError, Result};
use crate::manifest::{self, Loaded};

/// The gzipped tar of the files inside `workdir` (paths relative to it) less what its
/// `.dockerignore` excludes, as base64: what Lifecycle's `build_context` expects.
pub fn build_context(workdir: &Path) -> Result<String> {
    let fail = |e: std::io::Error| {
        CliError::Other(format!(
            "packing the build context {}: {e}",
            workdir.display()
        ))
    };
    let ignore = std::fs::read_to_string(workdir.join(DOCKERIGNORE))
        .map(|text| DockerIgnore::parse(&text))
        .unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    {
        let mut tar = tar::Builder::new(&mut gz);
        // Links stay links: nothing outside the directory is read into the context.
        tar.follow_symlinks(false);
        add_dir(&mut tar, workdir, "", &ignore).map_err(fail)?;
        tar.finish().map_err(fail)?;
    }
    let bytes = gz.finish().map_err(fail)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn add_dir<W: std::io::Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    prefix: &str,
    ignore: &DockerIgnore,
) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let excluded = ignore.is_excluded(&rel);
        if entry.file_type()?.is_dir() {
            if excluded && !ignore.has_exceptions() {
                continue;
            }
            if !excluded {
                tar.append_dir(&rel, entry.path())?;
            }
            add_dir(tar, &entry.path(), &rel, ignore)?;
        } else if !excluded {
            tar.append_path_with_name(entry.path(), &rel)?;
        }
    }
    Ok(())
}

/// `KEY=VALUE` lines (INI-like, as the original reads them): blank lines and `#`/`;` comments
/// skipped, keys keep their case, one pair of surrounding quotes is dropped from values.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(':')))
        .map(|(k, v)| {
            let v = v.trim();
            let unquoted = ['"', '\'']
                .iter()
                .find_map(|q| v.strip_prefix(*q).and_then(|s| s.strip_suffix(*q)))
                .unwrap_or(v);
            (k.trim().to_string(), unquoted.to_string())
        })
        .collect()
}

pub fn read_env_file(workdir: &Path, file: &str) -> Result<BTreeMap<String, String>> {
    let path = workdir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CliError::Invalid(format!(
            "secret env file doesn't exist: {}: {e}",
            path.display()
        ))
    })?;
    crate::output::info(&format!("reading secret vars from {}", path.display()));
    Ok(parse_env_file(&text))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BuildContextMode {
    /// Send the local files along.
    Local,
    /// Let the builder clone `git.remote`.
    Git,
}

/// The original's default: local files only for the local sample setup.
pub fn default_mode(lifecycle_url: &str, owner_email: &str) -> BuildContextMode {
    let host = url_host(lifecycle_url);
    if (host == "localhost" || host == "127.0.0.1") && owner_email == "sample@example.com" {
        crate::output::warn("transferring build context due to local development");
        BuildContextMode::Local
    } else {
        BuildContextMode::Git
    }
}

/// The body of `POST /api/v1/deploy` and `/build`.
pub fn deploy_payload(
    loaded: &Loaded,
    config: &ClientConfig,
    lifecycle_url: &str,
    mode: Option<BuildContextMode>,
    force: bool,
) -> Result<Value> {
    let m = &loaded.manifest;
    let mode = mode.unwrap_or_else(|| default_mode(lifecycle_url, &m.owner_email));
    let build_context = match mode {
        BuildContextMode::Local => Some(build_context(&loaded.workdir)?),
        BuildContextMode::Git => None,
    };
    let git_credentials = config
        .git_credentials_for(&m.git.remote)
        .map(|c| json!({"username": c.username, "password": c.password}));
    let build_env = match &m.secret_build_env_file {
        Some(f) => Some(read_env_file(&loaded.workdir, f)?),
        None => None,
    };
    let runtime_env = match &m.secret_runtime_env_file {
        Some(f) => Some(read_env_file(&loaded.workdir, f)?),
        None => None,
    };
    Ok(json!({
        "manifest": manifest::to_payload(m),
        "git_credentials": git_credentials,
        "secret_vars": {"build_env": build_env, "runtime_env": runtime_env},
        "build_context": build_context,
        "force": force,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_files() {
        let vars = parse_env_file(
            "# comment\nTOKEN=\"abc\"\n\nPlain = x=y \nQUOTED='q'\n; other comment\n",
        );
        assert_eq!(vars["TOKEN"], "abc");
        assert_eq!(vars["Plain"], "x=y");
        assert_eq!(vars["QUOTED"], "q");
        assert_eq!(vars.len(), 3);
    }

    #[test]
    fn context_holds_the_directory_contents() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "print(1)").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/b.txt"), "b").unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/huge.bin"), "x").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "data\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let encoded = build_context(dir.path()).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let name = entry.path().unwrap().display().to_string();
            if name == "link" {
                assert_eq!(entry.header().entry_type(), tar::EntryType::Symlink);
            }
            names.push(name);
        }
        assert!(names.iter().any(|n| n.ends_with("a.py")), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("sub/b.txt")), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("data")), "{names:?}");
    }

    #[test]
    fn local_only_for_the_local_sample() {
        assert_eq!(
            default_mode("http://localhost:7002/lifecycle", "sample@example.com"),
            BuildContextMode::Local
        );
        assert_eq!(
            default_mode("https://rt.example.com/lifecycle", "sample@example.com"),
            BuildContextMode::Git
        );
        assert_eq!(
            default_mode("http://127.0.0.1:7002", "me@example.com"),
            BuildContextMode::Git
        );
    }
}
