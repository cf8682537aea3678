//! `deploy` and `run-local`'s build: send the manifest (and maybe the local files), then watch the
//! deployment's phases until it ends, the user presses Ctrl-C, or an hour passes.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use racetrack_model::DeploymentStatus;
use reqwest::Method;
use serde_json::Value;

use crate::client::Lifecycle;
use crate::config::ClientConfig;
use crate::error::{CliError, Result};
use crate::interrupt::Interrupt;
use crate::manifest;
use crate::output;
use crate::payload::{self, BuildContextMode};

const GIVE_UP_AFTER: Duration = Duration::from_secs(3600);
/// Lines of the build log shown when a deployment fails.
const FAILURE_LOG_TAIL: usize = 20;

pub struct DeployArgs<'a> {
    pub workdir: &'a Path,
    pub remote: Option<&'a str>,
    pub build_context: Option<BuildContextMode>,
    pub force: bool,
    /// Print the build log as it grows.
    pub follow: bool,
    /// `POST /build` (image only, for `run-local`) rather than `/deploy`.
    pub build_only: bool,
}

/// Delays between polls: 1, 1, 2, 3, 3, ... seconds (Fibonacci capped), as the original.
struct Backoff {
    previous: u64,
    current: u64,
    cap: u64,
}

impl Backoff {
    fn new(cap: u64) -> Backoff {
        Backoff {
            previous: 0,
            current: 1,
            cap,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let delay = self.current.min(self.cap);
        let next = (self.previous + self.current).min(self.cap);
        self.previous = self.current.min(self.cap);
        self.current = next;
        Duration::from_secs(delay)
    }
}

/// Progress on a terminal (a spinner with the phase and elapsed time), plain lines otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    last_phase: Option<String>,
}

impl Progress {
    fn start() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message("deployment requested");
            output::set_spinner(Some(bar.clone()));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
            last_phase: None,
        }
    }

    fn phase(&mut self, phase: Option<&str>) {
        let text = phase.map_or("deployment in progress...".to_string(), |p| {
            format!("deployment in progress: {p}...")
        });
        if let Some(bar) = &self.bar {
            bar.set_message(text.clone());
        }
        let phase = phase.map(String::from);
        if phase != self.last_phase {
            let elapsed = self.started.elapsed().as_secs();
            // Above the spinner too, so the phases stay in the terminal's history.
            output::info(&format!("{text} ({elapsed}s elapsed)"));
            self.last_phase = phase;
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            output::set_spinner(None);
        }
    }

    fn elapsed(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// How much of the build log was printed, to print only what is new.
struct LogFollower {
    printed: usize,
}

impl LogFollower {
    async fn poll(&mut self, lc: &Lifecycle, name: &str, version: &str) {
        let path = format!("/api/v1/fatman/{name}/{version}/build-logs?tail=0");
        // The log appears once the builder has sent some; until then there is nothing to show.
        let Ok(v) = lc.get(&path, "fetching build logs").await else {
            return;
        };
        let logs = v.get("logs").and_then(Value::as_str).unwrap_or_default();
        if logs.len() > self.printed && logs.is_char_boundary(self.printed) {
            output::print(&logs[self.printed..]);
            self.printed = logs.len();
        }
    }
}

/// The last `n` lines of the deployment's build log, when there is one.
async fn build_log_tail(lc: &Lifecycle, name: &str, version: &str, n: usize) -> Option<String> {
    let path = format!("/api/v1/fatman/{name}/{version}/build-logs?tail={n}");
    let v = lc.get(&path, "fetching build logs").await.ok()?;
    v.get("logs")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
}

/// Deploys (or builds) and waits for the end; returns the final deployment.
pub async fn deploy(config: &ClientConfig, args: DeployArgs<'_>) -> Result<Value> {
    let loaded = manifest::load(args.workdir)?;
    let lc = Lifecycle::connect(config, args.remote).await?;
    let m = &loaded.manifest;
    let (name, version) = (m.name.clone(), m.version.clone());
    let verb = if args.build_only {
        "building"
    } else {
        "deploying"
    };
    output::info(&format!(
        "{verb} workspace \"{}\" (job {name} v{version}) {} {}",
        loaded.workdir.display(),
        if args.build_only { "by" } else { "to" },
        lc.url
    ));
    let body = payload::deploy_payload(&loaded, config, &lc.url, args.build_context, args.force)?;
    if let Some(ctx) = body.get("build_context").and_then(Value::as_str) {
        output::debug(&format!("build context: {} bytes (base64)", ctx.len()));
    }
    let endpoint = if args.build_only {
        "/api/v1/build"
    } else {
        "/api/v1/deploy"
    };
    let started = lc
        .request(Method::POST, endpoint, Some(&body), "requesting deployment")
        .await
        .map_err(|e| match e {
            // A server refusing a large body may drop the connection before answering.
            CliError::Unreachable(m) if body.get("build_context").is_some_and(|c| !c.is_null()) => {
                CliError::Unreachable(format!(
                    "{m}. If Lifecycle is up, it may have refused a build context this large: keep data, virtualenvs and .git out of {} or list them in its .dockerignore",
                    loaded.workdir.display()
                ))
            }
            other => other,
        })?;
    let id = started
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            CliError::Other(format!(
                "Lifecycle answered without a deployment id: {started}"
            ))
        })?
        .to_string();
    // From here on Ctrl-C only stops the watching (a Ctrl-C during a request is seen after it).
    let mut interrupt = Interrupt::listen()?;
    output::info(&format!("job deployment requested: {id}"));

    let mut progress = Progress::start();
    let mut follower = args.follow.then_some(LogFollower { printed: 0 });
    let mut backoff = Backoff::new(3);
    loop {
        let deployment = lc
            .get(&format!("/api/v1/deploy/{id}"), "checking the deployment")
            .await?;
        if let Some(f) = follower.as_mut() {
            f.poll(&lc, &name, &version).await;
        }
        // Case-insensitive, as the original client read it.
        let status = deployment
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
            .parse::<DeploymentStatus>()
            .ok();
        match status {
            Some(DeploymentStatus::Done) => {
                progress.finish();
                output::info(&format!("deployment finished in {}s", progress.elapsed()));
                return Ok(deployment);
            }
            Some(DeploymentStatus::Failed) => {
                progress.finish();
                let error = deployment
                    .get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown reason")
                    .to_string();
                if let Some(tail) = build_log_tail(&lc, &name, &version, FAILURE_LOG_TAIL).await {
                    output::error(&format!(
                        "last lines of the build log of {name} v{version}:"
                    ));
                    output::print(&tail);
                }
                return Err(CliError::DeploymentFailed(error));
            }
            _ => progress.phase(deployment.get("phase").and_then(Value::as_str)),
        }
        if progress.started.elapsed() > GIVE_UP_AFTER {
            progress.finish();
            return Err(CliError::DeploymentFailed(format!(
                "Deployment timeout error: {id} still running after {}s; follow it with: racetrack build-logs {name} --version {version} --follow --remote {}",
                progress.elapsed(),
                lc.url
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = interrupt.recv() => {
                progress.finish();
                return Err(CliError::Interrupted(format!(
                    "stopped watching; deployment {id} goes on at {}. Follow it with: racetrack build-logs {name} --version {version} --follow --remote {}; see the result with: racetrack list --remote {}",
                    lc.url, lc.url, lc.url
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fibonacci_delays_capped() {
        let mut b = Backoff::new(3);
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 1, 2, 3, 3, 3, 3]);
        let mut b = Backoff::new(5);
        let delays: Vec<u64> = (0..7).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 1, 2, 3, 5, 5, 5]);
    }
}
