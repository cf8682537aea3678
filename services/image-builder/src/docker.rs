//! The Docker engine, through bollard: builds (classic builder, layer cache on), pushes,
//! image look-ups. The connection follows `DOCKER_HOST` (default: the local socket) and the API
//! version is negotiated with the engine on first use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::query_parameters::{BuildImageOptions, PushImageOptions, RemoveImageOptions};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::sync::OnceCell;

use crate::context::{stream_context, ExtraFile};

/// Bridge option that, `false`, drops traffic between the network's containers.
const BRIDGE_ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";

/// Network modes the engine provides itself (as opposed to a network the builder makes sure of).
pub fn is_builtin_network_mode(mode: &str) -> bool {
    matches!(mode, "host" | "bridge" | "none" | "default") || mode.starts_with("container:")
}

/// Timeout of one Docker API request until its response starts (build output streams on).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(900);

/// Everything one `docker build` needs.
#[derive(Debug, Clone, Default)]
pub struct BuildSpec {
    /// Folder sent as the build context.
    pub context_dir: PathBuf,
    /// Dockerfile path inside the context (`/`-separated).
    pub dockerfile: String,
    /// Full image name with tag.
    pub image: String,
    pub build_args: HashMap<String, String>,
    pub labels: HashMap<String, String>,
    /// Context entries never dropped by `.dockerignore`.
    pub always_include: Vec<String>,
    /// Files added to the context.
    pub extra_files: Vec<ExtraFile>,
    /// `--network` of RUN steps (`host` lets package managers reach the network like the host).
    pub network_mode: Option<String>,
}

pub struct DockerEngine {
    client: OnceCell<Docker>,
}

impl Default for DockerEngine {
    fn default() -> Self {
        DockerEngine::new()
    }
}

fn describe(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        DockerError::DockerStreamError { error } => error.trim().to_string(),
        other => other.to_string(),
    }
}

fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Splits streamed text into whole lines.
#[derive(Default)]
struct LineBuffer {
    pending: String,
}

impl LineBuffer {
    fn push(&mut self, chunk: &str, mut emit: impl FnMut(&str)) {
        self.pending.push_str(chunk);
        while let Some(i) = self.pending.find('\n') {
            let line: String = self.pending.drain(..=i).collect();
            emit(line.trim_end_matches(['\n', '\r']));
        }
    }

    fn flush(&mut self, mut emit: impl FnMut(&str)) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            emit(rest.trim_end_matches(['\n', '\r']));
        }
    }
}

impl DockerEngine {
    pub fn new() -> DockerEngine {
        DockerEngine {
            client: OnceCell::new(),
        }
    }

    /// The connected client (connects and negotiates the API version on first success).
    pub async fn client(&self) -> Result<&Docker, String> {
        self.client
            .get_or_try_init(|| async {
                let docker = Docker::connect_with_defaults()
                    .map_err(|e| format!("can't connect to the Docker engine: {e}"))?
                    .with_timeout(REQUEST_TIMEOUT);
                let docker = docker
                    .negotiate_version()
                    .await
                    .map_err(|e| format!("the Docker engine is unreachable: {e}"))?;
                Ok::<Docker, String>(docker)
            })
            .await
    }

    pub async fn ping(&self) -> Result<(), String> {
        let docker = self.client().await?;
        tokio::time::timeout(Duration::from_secs(5), docker.ping())
            .await
            .map_err(|_| "the Docker engine did not answer within 5 s".to_string())?
            .map(|_| ())
            .map_err(|e| format!("the Docker engine is unreachable: {e}"))
    }

    /// Waits for the engine with Fibonacci back-off, up to `max`.
    pub async fn wait_ready(&self, max: Duration) -> Result<(), String> {
        let started = tokio::time::Instant::now();
        let (mut a, mut b) = (Duration::from_millis(250), Duration::from_millis(250));
        loop {
            match self.ping().await {
                Ok(()) => return Ok(()),
                Err(e) if started.elapsed() + a > max => return Err(e),
                Err(_) => {
                    tokio::time::sleep(a).await;
                    (a, b) = (b, a + b);
                }
            }
        }
    }

    /// Makes sure the build network `name` exists, creating it as `scripts/build-network.sh`
    /// does when missing: a bridge without traffic between builds, its interface named after
    /// the network, so the script's firewall rule (dropping what enters the host from it) applies.
    /// Without that rule a build still cannot reach the host's loopback, but it can reach host
    /// services bound to all addresses through the bridge's gateway: hence the warning.
    pub async fn ensure_build_network(&self, name: &str) -> Result<(), String> {
        let docker = self.client().await?;
        match docker.inspect_network(name, None).await {
            Ok(network) => {
                let isolated = network
                    .options
                    .as_ref()
                    .and_then(|o| o.get(BRIDGE_ICC_OPTION))
                    .is_some_and(|v| v == "false");
                if !isolated {
                    tracing::warn!(network = %name, "build network lets builds reach each other (no {BRIDGE_ICC_OPTION}=false)");
                }
                return Ok(());
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(format!("inspecting build network {name}: {}", describe(&e))),
        }
        let mut options = HashMap::from([(BRIDGE_ICC_OPTION.to_string(), "false".to_string())]);
        if name.len() <= 15 {
            options.insert(
                "com.docker.network.bridge.name".to_string(),
                name.to_string(),
            );
        }
        let request = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            options: Some(options),
            labels: Some(HashMap::from([(
                "racetrack.build-network".to_string(),
                "true".to_string(),
            )])),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => {
                tracing::warn!(
                    network = %name,
                    "created the build network; run scripts/build-network.sh (root) so builds cannot reach host services through its gateway"
                );
                Ok(())
            }
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(format!("creating build network {name}: {}", describe(&e))),
        }
    }

    /// The labels of a local image, `None` when there is no such image.
    pub async fn image_labels(
        &self,
        image: &str,
    ) -> Result<Option<HashMap<String, String>>, String> {
        let docker = self.client().await?;
        match docker.inspect_image(image).await {
            Ok(inspect) => Ok(Some(
                inspect.config.and_then(|c| c.labels).unwrap_or_default(),
            )),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(format!("inspecting image {image}: {}", describe(&e))),
        }
    }

    /// Which of `needles` occur in any string of the image's metadata: `(index, "config")` for
    /// its inspect data (config, env, labels, ...), `(index, "history")` for its history
    /// (`docker history --no-trunc`: every step's command line, with the build args it used).
    pub async fn find_in_image_metadata(
        &self,
        image: &str,
        needles: &[&str],
    ) -> Result<Vec<(usize, &'static str)>, String> {
        let docker = self.client().await?;
        let inspect = docker
            .inspect_image(image)
            .await
            .map_err(|e| format!("inspecting image {image}: {}", describe(&e)))?;
        let history = docker
            .image_history(image)
            .await
            .map_err(|e| format!("reading the history of {image}: {}", describe(&e)))?;
        let mut found = Vec::new();
        for (place, value) in [
            ("config", serde_json::to_value(&inspect)),
            ("history", serde_json::to_value(&history)),
        ] {
            let value = value.map_err(|e| format!("reading image {image}: {e}"))?;
            for (i, needle) in needles.iter().enumerate() {
                if json_strings_contain(&value, needle) {
                    found.push((i, place));
                }
            }
        }
        Ok(found)
    }

    /// Whether a local image exists.
    pub async fn image_exists(&self, image: &str) -> Result<bool, String> {
        Ok(self.image_labels(image).await?.is_some())
    }

    /// The `Env` of a local image's config (tests, diagnostics).
    pub async fn image_env(&self, image: &str) -> Result<Vec<String>, String> {
        let docker = self.client().await?;
        let inspect = docker
            .inspect_image(image)
            .await
            .map_err(|e| format!("inspecting image {image}: {}", describe(&e)))?;
        Ok(inspect.config.and_then(|c| c.env).unwrap_or_default())
    }

    /// Runs a build, handing every output line to `on_line`. The error is Docker's own message
    /// (`The command '/bin/sh -c …' returned a non-zero code: 1`).
    pub async fn build(
        &self,
        spec: &BuildSpec,
        on_line: &(dyn Fn(&str) + Sync),
    ) -> Result<(), String> {
        let docker = self.client().await?;
        let options = BuildImageOptions {
            dockerfile: spec.dockerfile.clone(),
            t: Some(spec.image.clone()),
            rm: true,
            forcerm: true,
            nocache: false,
            buildargs: Some(spec.build_args.clone()),
            labels: Some(spec.labels.clone()),
            networkmode: spec.network_mode.clone(),
            ..Default::default()
        };
        let (chunks, writer) = stream_context(
            spec.context_dir.clone(),
            spec.always_include.clone(),
            spec.extra_files.clone(),
        );
        let body = bollard::body_stream(tokio_stream::wrappers::ReceiverStream::new(chunks));
        let mut stream = docker.build_image(options, None, Some(body));
        let mut lines = LineBuffer::default();
        let mut failure: Option<String> = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(text) = info.stream {
                        lines.push(&text, on_line);
                    }
                    if let Some(status) = info.status {
                        let status = status.trim();
                        if !status.is_empty() {
                            on_line(status);
                        }
                    }
                }
                Err(e) => {
                    failure = Some(describe(&e));
                    break;
                }
            }
        }
        lines.flush(on_line);
        drop(stream);
        let written = writer.await;
        if let Some(failure) = failure {
            return Err(failure);
        }
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("sending the build context failed: {e}")),
            Err(e) => Err(format!("sending the build context failed: {e}")),
        }
    }

    /// Pushes `image` (`repo:tag`) to its registry, logging status changes (not progress bars).
    pub async fn push(&self, image: &str, on_line: &(dyn Fn(&str) + Sync)) -> Result<(), String> {
        let docker = self.client().await?;
        let (repo, tag) = crate::naming::split_tag(image);
        let options = PushImageOptions {
            tag: Some(tag.unwrap_or("latest").to_string()),
            ..Default::default()
        };
        let mut stream = docker.push_image(repo, Some(options), None);
        let mut last = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    let in_progress = info
                        .progress_detail
                        .as_ref()
                        .is_some_and(|p| p.current.is_some() || p.total.is_some());
                    if let Some(status) = info.status {
                        let status = status.trim().to_string();
                        if !in_progress && !status.is_empty() && status != last {
                            on_line(&status);
                            last = status;
                        }
                    }
                }
                Err(e) => return Err(describe(&e)),
            }
        }
        Ok(())
    }

    /// Removes a local image (forced, with its untagged parents). Missing images are fine.
    pub async fn remove_image(&self, image: &str) -> Result<(), String> {
        let docker = self.client().await?;
        let options = RemoveImageOptions {
            force: true,
            noprune: false,
            ..Default::default()
        };
        match docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(format!("removing image {image}: {}", describe(&e))),
        }
    }
}

/// Whether any string (or object key) inside `value` contains `needle`; strings are compared
/// decoded, so JSON escaping cannot hide a match.
fn json_strings_contain(value: &serde_json::Value, needle: &str) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.contains(needle),
        Value::Array(items) => items.iter().any(|v| json_strings_contain(v, needle)),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(needle) || json_strings_contain(v, needle)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_buffer_joins_split_chunks() {
        let mut buf = LineBuffer::default();
        let mut out = Vec::new();
        buf.push("Step 1/2 : FROM x\n ---> abc", |l| out.push(l.to_string()));
        buf.push("123\nStep 2/2", |l| out.push(l.to_string()));
        buf.flush(|l| out.push(l.to_string()));
        assert_eq!(out, vec!["Step 1/2 : FROM x", " ---> abc123", "Step 2/2"]);
    }

    #[test]
    fn json_search_sees_decoded_strings() {
        let value = serde_json::json!({"Env": ["A=tok \"q\""], "n": 1, "k tok": null});
        assert!(json_strings_contain(&value, "tok \"q\""));
        assert!(json_strings_contain(&value, "k tok"));
        assert!(!json_strings_contain(&value, "absent"));
    }
}
