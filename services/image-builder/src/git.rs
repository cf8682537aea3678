//! Fetching a fatman's source with the system `git`.
//!
//! Credentials go into the clone URL (`https://user:pass@host/path`, URL-encoded) and nowhere
//! else; every line git prints passes through the build log's redactor, and so does every
//! error. Git never prompts (`GIT_TERMINAL_PROMPT=0`, no credential helpers) and may only use
//! the network protocols (plus `file` when `ALLOW_FILE_GIT_REMOTES` is on, for tests).

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::builds::BuildLog;
use racetrack_config::redact::percent_encode;

pub const CLONE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// What to clone.
#[derive(Clone)]
pub struct GitSource {
    pub remote: String,
    pub branch: Option<String>,
    pub directory: String,
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for GitSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitSource")
            .field(
                "remote",
                &racetrack_config::redact::scrub_url_credentials(&self.remote),
            )
            .field("branch", &self.branch)
            .field("directory", &self.directory)
            .field("credentials", &self.credentials.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Whether `remote` may be cloned. Network remotes (`https`, `http`, `ssh`, `git`, scp-like
/// `user@host:path`) always; `file://` URLs and plain paths only when `allow_file`.
pub fn check_remote(remote: &str, allow_file: bool) -> Result<(), String> {
    let remote = remote.trim();
    if remote.is_empty() {
        return Err("git.remote is empty".into());
    }
    if remote.starts_with('-') {
        return Err("git.remote must not start with '-'".into());
    }
    if remote.chars().any(|c| c.is_control()) {
        return Err("git.remote contains control characters".into());
    }
    let lower = remote.to_ascii_lowercase();
    if let Some((scheme, _)) = lower.split_once("://") {
        return match scheme {
            "https" | "http" | "ssh" | "git" => Ok(()),
            "file" if allow_file => Ok(()),
            "file" => {
                Err("file:// git remotes are not allowed (ALLOW_FILE_GIT_REMOTES is off)".into())
            }
            other => Err(format!(
                "git remotes with scheme `{other}` are not supported"
            )),
        };
    }
    if lower.contains("::") {
        return Err("git remote helpers (`transport::address`) are not supported".into());
    }
    // scp-like syntax: `user@host:path` (a colon before any slash).
    if let Some(colon) = remote.find(':') {
        if !remote[..colon].contains('/') {
            return Ok(());
        }
    }
    if allow_file {
        Ok(())
    } else {
        Err(format!(
            "git.remote `{}` is not a URL (local paths are not allowed)",
            racetrack_config::redact::scrub_url_credentials(remote)
        ))
    }
}

/// `remote` with `username:password@` put into an `http(s)` URL; other remotes unchanged.
pub fn url_with_credentials(remote: &str, credentials: Option<&(String, String)>) -> String {
    let Some((user, pass)) = credentials else {
        return remote.to_string();
    };
    let Some((scheme, rest)) = remote.split_once("://") else {
        return remote.to_string();
    };
    if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
        return remote.to_string();
    }
    // Replace user-info already in the URL.
    let host_start = match rest.find('/') {
        Some(slash) => rest[..slash].rfind('@').map(|at| at + 1).unwrap_or(0),
        None => rest.rfind('@').map(|at| at + 1).unwrap_or(0),
    };
    let userinfo = if pass.is_empty() {
        percent_encode(user)
    } else {
        format!("{}:{}", percent_encode(user), percent_encode(pass))
    };
    format!("{scheme}://{userinfo}@{}", &rest[host_start..])
}

/// `directory` inside `repo`, refusing absolute paths, `..` and symlinks that leave the repo.
pub fn workspace_dir(repo: &Path, directory: &str) -> Result<PathBuf, String> {
    let rel = Path::new(directory.trim());
    if rel.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    }) {
        return Err(format!(
            "git.directory `{directory}` must be a relative path inside the repository"
        ));
    }
    let repo = std::fs::canonicalize(repo).map_err(|e| format!("repository folder: {e}"))?;
    let dir = std::fs::canonicalize(repo.join(rel))
        .map_err(|_| format!("git.directory `{directory}` does not exist in the repository"))?;
    if !dir.starts_with(&repo) {
        return Err(format!(
            "git.directory `{directory}` leads outside of the repository"
        ));
    }
    if !dir.is_dir() {
        return Err(format!("git.directory `{directory}` is not a directory"));
    }
    Ok(dir)
}

fn git_command(allow_file: bool) -> Command {
    let mut cmd = Command::new("git");
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .env("SSH_ASKPASS", "true")
        .env("GCM_INTERACTIVE", "never")
        .env(
            "GIT_ALLOW_PROTOCOL",
            if allow_file {
                "https:http:ssh:git:file"
            } else {
                "https:http:ssh:git"
            },
        )
        .env(
            "GIT_SSH_COMMAND",
            "ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new",
        )
        .args(["-c", "credential.helper=", "-c", "core.askPass=true"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs git, streaming its output (redacted) into the build log; returns the output text.
async fn run_logged(mut cmd: Command, log: &BuildLog, timeout: Duration) -> Result<String, String> {
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("can't run git: {e} (is git installed?)"))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err("git's output is not piped".into());
    };
    let collect = |reader: Box<dyn tokio::io::AsyncRead + Unpin + Send>| {
        let log = log.clone();
        async move {
            let mut lines = BufReader::new(reader).lines();
            let mut text = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                // git draws progress with carriage returns: keep the last state of each line.
                let line = line
                    .rsplit('\r')
                    .find(|s| !s.trim().is_empty())
                    .unwrap_or("")
                    .to_string();
                log.line(&line);
                text.push_str(&log.redact(&line));
                text.push('\n');
            }
            text
        }
    };
    let run = async {
        let (out, err, status) = tokio::join!(
            collect(Box::new(stdout)),
            collect(Box::new(stderr)),
            child.wait()
        );
        (format!("{out}{err}"), status)
    };
    let (output, status) = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("git did not finish within {} s", timeout.as_secs()))?;
    let status = status.map_err(|e| format!("git failed: {e}"))?;
    if status.success() {
        Ok(output)
    } else {
        Err(output)
    }
}

/// Clones `source` into `repo_dir` (which must not exist) and returns the workspace folder
/// (`git.directory` inside the clone). Errors are already redacted.
pub async fn clone(
    source: &GitSource,
    repo_dir: &Path,
    allow_file: bool,
    log: &BuildLog,
) -> Result<PathBuf, String> {
    check_remote(&source.remote, allow_file)?;
    if let Some((user, pass)) = &source.credentials {
        log.add_secret(pass);
        if !pass.is_empty() {
            log.add_secret(&format!("{user}:{pass}"));
        }
    }
    let url = url_with_credentials(source.remote.trim(), source.credentials.as_ref());
    let mut cmd = git_command(allow_file);
    cmd.args(["clone", "--depth", "1", "--no-tags", "--progress"]);
    if let Some(branch) = source
        .branch
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    {
        if branch.starts_with('-') {
            return Err(format!("git.branch `{branch}` must not start with '-'"));
        }
        cmd.args(["--branch", branch, "--single-branch"]);
    }
    cmd.arg("--").arg(&url).arg(repo_dir);
    log.line(&format!("cloning {url}"));
    match run_logged(cmd, log, CLONE_TIMEOUT).await {
        Ok(_) => {}
        Err(output) => {
            let output = log.redact(&output);
            let lower = output.to_ascii_lowercase();
            let auth_failed = lower.contains("authentication failed")
                || lower.contains("could not read username")
                || lower.contains("terminal prompts disabled")
                || lower.contains("permission denied (publickey");
            if auth_failed {
                return Err(if source.credentials.is_some() {
                    "git authentication failed with the given credentials".into()
                } else {
                    "the git repository needs credentials, but none are configured for it".into()
                });
            }
            let last = output
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("git clone failed")
                .trim()
                .to_string();
            return Err(format!("git clone failed: {last}"));
        }
    }
    workspace_dir(repo_dir, &source.directory)
}

/// `git describe --long --tags --dirty --always` in `dir`; `unknown` when that fails.
pub async fn describe(dir: &Path) -> String {
    let output = Command::new("git")
        .args(["describe", "--long", "--tags", "--dirty", "--always"])
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .await;
    match output {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v.is_empty() {
                "unknown".into()
            } else {
                v
            }
        }
        _ => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remotes() {
        assert!(check_remote("https://github.com/TheRacetrack/racetrack", false).is_ok());
        assert!(check_remote("git@github.com:org/repo.git", false).is_ok());
        assert!(check_remote("ssh://git@host/repo", false).is_ok());
        assert!(check_remote("file:///tmp/repo", false).is_err());
        assert!(check_remote("file:///tmp/repo", true).is_ok());
        assert!(check_remote("/tmp/repo", false).is_err());
        assert!(check_remote("/tmp/repo", true).is_ok());
        assert!(check_remote("--upload-pack=evil", true).is_err());
        assert!(check_remote("ext::sh -c evil", true).is_err());
        assert!(check_remote("fd::3", true).is_err());
        assert!(check_remote("", true).is_err());
    }

    #[test]
    fn credentials_in_url() {
        let creds = ("bob".to_string(), "p@ss/w:rd".to_string());
        assert_eq!(
            url_with_credentials("https://github.com/org/repo", Some(&creds)),
            "https://bob:p%40ss%2Fw%3Ard@github.com/org/repo"
        );
        assert_eq!(
            url_with_credentials("https://old:x@github.com/org/repo", Some(&creds)),
            "https://bob:p%40ss%2Fw%3Ard@github.com/org/repo"
        );
        assert_eq!(
            url_with_credentials("https://host", Some(&("tok".into(), String::new()))),
            "https://tok@host"
        );
        assert_eq!(
            url_with_credentials("git@host:org/r", Some(&creds)),
            "git@host:org/r"
        );
        assert_eq!(
            url_with_credentials("https://host/r", None),
            "https://host/r"
        );
    }

    #[test]
    fn debug_hides_credentials() {
        let s = GitSource {
            remote: "https://bob:hunter2@host/r".into(),
            branch: None,
            directory: ".".into(),
            credentials: Some(("bob".into(), "hunter2".into())),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn workspace_dir_must_stay_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("sample/adder")).unwrap();
        std::os::unix::fs::symlink("/etc", repo.join("escape")).unwrap();
        std::fs::write(repo.join("file"), "x").unwrap();
        assert!(workspace_dir(&repo, ".").is_ok());
        assert!(workspace_dir(&repo, "sample/adder")
            .unwrap()
            .ends_with("sample/adder"));
        assert!(workspace_dir(&repo, "../")
            .unwrap_err()
            .contains("relative path"));
        assert!(workspace_dir(&repo, "/etc")
            .unwrap_err()
            .contains("relative path"));
        assert!(workspace_dir(&repo, "escape")
            .unwrap_err()
            .contains("outside"));
        assert!(workspace_dir(&repo, "missing")
            .unwrap_err()
            .contains("does not exist"));
        assert!(workspace_dir(&repo, "file")
            .unwrap_err()
            .contains("not a directory"));
    }

    #[tokio::test]
    async fn clone_failure_is_redacted() {
        let tmp = tempfile::tempdir().unwrap();
        let record = std::sync::Arc::new(crate::builds::BuildRecord::new("git-test"));
        let log = BuildLog::open(record.clone(), tmp.path());
        let source = GitSource {
            // Nothing listens on port 9 of loopback: the clone fails fast.
            remote: "http://127.0.0.1:9/org/repo.git".into(),
            branch: None,
            directory: ".".into(),
            credentials: Some(("bob".into(), "sup3r-secret-pw".into())),
        };
        let err = clone(&source, &tmp.path().join("repo"), false, &log)
            .await
            .unwrap_err();
        let logs = record.logs();
        assert!(!err.contains("sup3r-secret-pw"), "{err}");
        assert!(!logs.contains("sup3r-secret-pw"), "{logs}");
        assert!(
            logs.contains("cloning http://***@127.0.0.1:9/org/repo.git"),
            "{logs}"
        );
        let file = std::fs::read_to_string(tmp.path().join("git-test.log")).unwrap();
        assert!(!file.contains("sup3r-secret-pw"));
    }
}
