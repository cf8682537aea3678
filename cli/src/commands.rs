//! One function per command (the deploy flow itself is in `deploy`).

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::client::{cause_chain, http_client, status_error, Lifecycle, AUTH_HEADER};
use crate::config::{trim_alias_url, ClientConfig, Credentials};
use crate::deploy::{self, DeployArgs};
use crate::error::{CliError, Result};
use crate::follow::new_lines;
use crate::interrupt::Interrupt;
use crate::manifest;
use crate::output::{self, Format};
use crate::payload::BuildContextMode;

/// How often `--follow` asks for new lines, and how many recent lines it asks for.
const FOLLOW_EVERY: Duration = Duration::from_secs(1);
const FOLLOW_WINDOW: u32 = 500;

pub async fn deploy(format: Format, args: DeployArgs<'_>) -> Result<()> {
    let config = ClientConfig::load()?;
    let deployment = deploy::deploy(&config, args).await?;
    if let Some(text) = output::structured(format, &deployment) {
        output::print(&text);
    }
    let fatman = &deployment["fatman"];
    let name = fatman["name"].as_str().unwrap_or_default();
    let pub_url = fatman["pub_url"].as_str().unwrap_or_default();
    output::info(&format!(
        "Fatman \"{name}\" has been deployed. Check out {pub_url} to access your fatman"
    ));
    Ok(())
}

pub fn validate(format: Format, path: &Path) -> Result<()> {
    let loaded = manifest::load(path)?;
    output::info(&format!(
        "Manifest file \"{}\" is valid",
        loaded.path.display()
    ));
    match output::structured(format, &manifest::to_payload(&loaded.manifest)) {
        Some(text) => output::print(&text),
        None => output::print(&racetrack_model::manifest_to_yaml(&loaded.manifest)),
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Column {
    Infrastructure,
    DeployedBy,
    UpdatedAt,
    LastCallAt,
    PubUrl,
    All,
}

const EXTRA_COLUMNS: [Column; 5] = [
    Column::Infrastructure,
    Column::DeployedBy,
    Column::UpdatedAt,
    Column::LastCallAt,
    Column::PubUrl,
];

fn ago(now: i64, time: Option<i64>) -> String {
    match time {
        Some(t) if t > 0 => racetrack_model::ago_words(now - t),
        _ => "never".to_string(),
    }
}

fn list_table(fatmen: &[Value], columns: &[Column], now: i64) -> String {
    let extra: Vec<Column> = EXTRA_COLUMNS
        .into_iter()
        .filter(|c| columns.contains(c) || columns.contains(&Column::All))
        .collect();
    let mut header = vec!["NAME", "VERSION", "STATUS"];
    for c in &extra {
        header.push(match c {
            Column::Infrastructure => "INFRASTRUCTURE",
            Column::DeployedBy => "DEPLOYED BY",
            Column::UpdatedAt => "UPDATED AT",
            Column::LastCallAt => "LAST CALL AT",
            Column::PubUrl | Column::All => "PUB URL",
        });
    }
    let text = |f: &Value, key: &str| f[key].as_str().unwrap_or_default().to_string();
    let rows: Vec<Vec<String>> = fatmen
        .iter()
        .map(|f| {
            let mut row = vec![
                text(f, "name"),
                text(f, "version"),
                text(f, "status").to_uppercase(),
            ];
            for c in &extra {
                row.push(match c {
                    Column::Infrastructure => text(f, "infrastructure_target"),
                    Column::DeployedBy => text(f, "deployed_by"),
                    Column::UpdatedAt => ago(now, f["update_time"].as_i64()),
                    Column::LastCallAt => ago(now, f["last_call_time"].as_i64()),
                    Column::PubUrl | Column::All => text(f, "pub_url"),
                });
            }
            row
        })
        .collect();
    output::table(&header, &rows)
}

pub async fn list(format: Format, remote: Option<&str>, columns: &[Column]) -> Result<()> {
    let config = ClientConfig::load()?;
    let lc = Lifecycle::connect(&config, remote).await?;
    let fatmen = lc.get("/api/v1/fatman", "listing fatmen").await?;
    if let Some(text) = output::structured(format, &fatmen) {
        output::print(&text);
        return Ok(());
    }
    let fatmen = fatmen.as_array().cloned().unwrap_or_default();
    if fatmen.is_empty() {
        output::info(&format!("No fatmen deployed at {}.", lc.url));
        return Ok(());
    }
    output::info(&format!(
        "List of all fatmen ({}) deployed at {}:",
        fatmen.len(),
        lc.url
    ));
    output::print(&list_table(
        &fatmen,
        columns,
        chrono::Utc::now().timestamp(),
    ));
    Ok(())
}

fn logs_text(v: &Value) -> String {
    v.get("logs")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn logs_path(kind: &str, name: &str, version: &str, tail: u32) -> String {
    format!("/api/v1/fatman/{name}/{version}/{kind}?tail={tail}")
}

/// Prints new lines of a log every second until Ctrl-C.
async fn follow_logs(lc: &Lifecycle, kind: &str, name: &str, version: &str) -> Result<()> {
    let mut seen: Vec<String> = Vec::new();
    let mut interrupt = Interrupt::listen()?;
    let mut first = true;
    loop {
        let v = lc
            .get(
                &logs_path(kind, name, version, FOLLOW_WINDOW),
                "following logs",
            )
            .await?;
        let lines: Vec<String> = logs_text(&v).lines().map(String::from).collect();
        // The first answer was printed already (as the requested tail).
        if !first {
            for line in new_lines(&seen, &lines) {
                output::print(line);
            }
        }
        first = false;
        seen = lines;
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_EVERY) => {}
            _ = interrupt.recv() => return Ok(()),
        }
    }
}

/// Which log `logs` and `build-logs` show.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum LogKind {
    Runtime,
    Build,
}

impl LogKind {
    fn path(self) -> &'static str {
        match self {
            LogKind::Runtime => "logs",
            LogKind::Build => "build-logs",
        }
    }
}

pub struct LogArgs<'a> {
    pub kind: LogKind,
    pub name: &'a str,
    pub version: &'a str,
    pub tail: u32,
    pub follow: bool,
}

pub async fn logs(format: Format, remote: Option<&str>, args: LogArgs<'_>) -> Result<()> {
    let LogArgs {
        kind,
        name,
        version,
        tail,
        follow,
    } = args;
    let config = ClientConfig::load()?;
    let lc = Lifecycle::connect(&config, remote).await?;
    if kind == LogKind::Runtime {
        output::info(&format!(
            "Retrieving runtime logs of fatman \"{name}\" v{version} from {}...",
            lc.url
        ));
    }
    let v = lc
        .get(
            &logs_path(kind.path(), name, version, tail),
            "fetching logs",
        )
        .await?;
    if let Some(text) = output::structured(format, &v) {
        output::print(&text);
        return Ok(());
    }
    let text = logs_text(&v);
    let count = text.lines().count();
    match kind {
        LogKind::Runtime => {
            output::info(&format!(
                "Viewing the latest logs from fatman \"{name}\" v{version} below ({count} lines):"
            ));
            output::print("---");
        }
        LogKind::Build => output::info(&format!(
            "Recent build logs of \"{name}\" fatman ({count} lines):"
        )),
    }
    output::print(&text);
    if follow {
        follow_logs(&lc, kind.path(), name, version).await?;
    }
    Ok(())
}

pub async fn delete(remote: Option<&str>, name: &str, version: &str) -> Result<()> {
    let config = ClientConfig::load()?;
    let lc = Lifecycle::connect(&config, remote).await?;
    lc.request(
        Method::DELETE,
        &format!("/api/v1/fatman/{name}/{version}"),
        None,
        "deleting fatman",
    )
    .await?;
    output::info(&format!(
        "Fatman \"{name}\" v{version} has been deleted from {}",
        lc.url
    ));
    Ok(())
}

pub async fn move_fatman(
    remote: Option<&str>,
    name: &str,
    version: &str,
    target: &str,
) -> Result<()> {
    let config = ClientConfig::load()?;
    let lc = Lifecycle::connect(&config, remote).await?;
    output::info(&format!(
        "Moving fatman \"{name}\" v{version} to {target} infrastructure..."
    ));
    lc.request(
        Method::POST,
        &format!("/api/v1/fatman/{name}/{version}/move"),
        Some(&json!({ "infrastructure_target": target })),
        "moving fatman",
    )
    .await?;
    output::info(&format!(
        "Fatman \"{name}\" v{version} has been moved to {target} infrastructure"
    ));
    Ok(())
}

/// PUB's base URL from a fatman's `pub_url` (`<pub>/fatman/<name>/<version>`).
fn pub_base(fatmen: &Value, name: &str) -> Option<String> {
    fatmen.as_array()?.iter().find_map(|f| {
        if f["name"].as_str()? != name {
            return None;
        }
        let url = f["pub_url"].as_str()?;
        let suffix = format!("/fatman/{name}/{}", f["version"].as_str()?);
        url.strip_suffix(&suffix).map(String::from)
    })
}

pub async fn call(
    remote: Option<&str>,
    name: &str,
    version: &str,
    endpoint: &str,
    data: &str,
    pub_url: Option<&str>,
) -> Result<()> {
    let body: Value = serde_json::from_str(data)
        .map_err(|e| CliError::Invalid(format!("--data is not valid JSON: {e}")))?;
    let config = ClientConfig::load()?;
    let lc = Lifecycle::connect(&config, remote).await?;
    let base = match pub_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let fatmen = lc.get("/api/v1/fatman", "finding the fatman").await?;
            pub_base(&fatmen, name).ok_or_else(|| {
                CliError::NotFound(format!(
                    "fatman {name} is not deployed at {} (or its PUB address is unknown: pass --pub-url)",
                    lc.url
                ))
            })?
        }
    };
    let endpoint = if endpoint.starts_with('/') {
        endpoint.to_string()
    } else {
        format!("/{endpoint}")
    };
    let url = format!("{base}/fatman/{name}/{version}{endpoint}");
    output::debug(&format!("POST {url}"));
    let mut req = http_client()?.post(&url).json(&body);
    if let Some(token) = lc.token() {
        req = req.header(AUTH_HEADER, token);
    }
    let resp = req.send().await.map_err(|e| {
        CliError::Unreachable(format!("Request failed: POST {url}: {}", cause_chain(&e)))
    })?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| {
        CliError::Unreachable(format!("Request failed: POST {url}: {}", cause_chain(&e)))
    })?;
    if !status.is_success() {
        return Err(status_error(status, &text, &url, &lc.url).context("calling fatman"));
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(v) => output::print(&serde_json::to_string_pretty(&v).unwrap_or(text)),
        Err(_) => output::print(&text),
    }
    Ok(())
}

pub async fn login(remote: Option<&str>, token: &str) -> Result<()> {
    let mut config = ClientConfig::load()?;
    let url = config.resolve_remote(remote);
    let lc = Lifecycle::new(url.clone(), Some(token.to_string()))?;
    let user = lc
        .get("/api/v1/users/validate_user_auth", "checking the token")
        .await
        .map_err(|e| match e {
            CliError::Auth(_) => CliError::Auth(format!("Invalid Auth Token for {url}")),
            other => other,
        })?;
    let username = user["username"].as_str().unwrap_or_default().to_string();
    config.user_auths.insert(url.clone(), token.to_string());
    config.save()?;
    output::info(&format!("Logged as user {username} to Racetrack: {url}"));
    Ok(())
}

pub fn logout(remote: Option<&str>) -> Result<()> {
    let mut config = ClientConfig::load()?;
    let url = config.resolve_remote(remote);
    if config.user_auths.remove(&url).is_none() {
        return Err(CliError::NotFound(format!(
            "Missing {url} in Racetrack logged servers"
        )));
    }
    config.save()?;
    output::info(&format!("Logged out from Racetrack: {url}"));
    Ok(())
}

pub fn set_remote(remote: &str) -> Result<()> {
    let mut config = ClientConfig::load()?;
    config.lifecycle_url = remote.to_string();
    config.save()?;
    output::info(&format!("Current remote set to \"{remote}\""));
    Ok(())
}

pub fn set_alias(alias: &str, url: &str) -> Result<()> {
    let mut config = ClientConfig::load()?;
    let url = trim_alias_url(url);
    config
        .lifecycle_url_aliases
        .insert(alias.to_string(), url.clone());
    config.save()?;
    output::info(&format!("Alias \"{alias}\" set to Racetrack URL {url}"));
    Ok(())
}

pub fn set_credentials(repo_url: &str, username: &str, password: &str) -> Result<()> {
    let mut config = ClientConfig::load()?;
    let repo = trim_alias_url(repo_url);
    config.git_credentials.insert(
        repo.clone(),
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
        },
    );
    config.save()?;
    output::info(&format!("git credentials added for repo: {repo}"));
    Ok(())
}

pub fn get_remote() -> Result<()> {
    let config = ClientConfig::load()?;
    let current = &config.lifecycle_url;
    let url = config.resolve_remote(None);
    if &url == current {
        output::info(&format!("Current remote is \"{current}\""));
    } else {
        output::info(&format!("Current remote is \"{current}\" - {url}"));
    }
    Ok(())
}

pub fn get_config(format: Format) -> Result<()> {
    let config = ClientConfig::load()?;
    let value = serde_json::to_value(&config).unwrap_or(Value::Null);
    match output::structured(format, &value) {
        Some(text) => output::print(&text),
        None => output::print(&config.to_yaml()),
    }
    Ok(())
}

/// Builds the image on Racetrack (`POST /build`), then runs it with the local `docker` CLI.
pub async fn run_local(
    remote: Option<&str>,
    workdir: &Path,
    port: u16,
    build_context: Option<BuildContextMode>,
) -> Result<()> {
    let docker_ok = tokio::process::Command::new("docker")
        .arg("version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .await
        .is_ok();
    if !docker_ok {
        return Err(CliError::Invalid(
            "Docker is not installed in the system".into(),
        ));
    }
    let config = ClientConfig::load()?;
    let loaded = manifest::load(workdir)?;
    let deployment = deploy::deploy(
        &config,
        DeployArgs {
            workdir,
            remote,
            build_context,
            force: false,
            follow: false,
            build_only: true,
        },
    )
    .await?;
    let image = deployment["image_name"]
        .as_str()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| CliError::Other(format!("the build gave no image name: {deployment}")))?
        .to_string();
    let m = &loaded.manifest;
    let env = run_local_env(
        m,
        &payload_secrets(&loaded)?,
        chrono::Utc::now().timestamp(),
    );
    let docker = |args: Vec<String>| async move {
        output::debug(&format!("docker {}", args.join(" ")));
        tokio::process::Command::new("docker")
            .args(&args)
            .status()
            .await
            .map_err(|e| CliError::Other(format!("running docker: {e}")))
    };
    let pulled = docker(vec!["pull".into(), image.clone()]).await?;
    if !pulled.success() {
        return Err(CliError::Other(format!("docker pull {image} failed")));
    }
    let container = format!("local-fatman-{}-v-{}", m.name, m.version).replace('.', "-");
    let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
    // Interactive only from a terminal: docker refuses `-t` without one (scripts, tests).
    if std::io::stdin().is_terminal() {
        args.push("-it".into());
    }
    args.extend([
        "--name".into(),
        container,
        "-p".into(),
        format!("127.0.0.1:{port}:7000"),
    ]);
    for (k, v) in &env {
        args.push("--env".into());
        args.push(format!("{k}={v}"));
    }
    args.extend([
        "--label".into(),
        format!("fatman-name={}", m.name),
        "--label".into(),
        format!("fatman-version={}", m.version),
        image,
    ]);
    output::info(&format!(
        "Running fatman \"{}\" v{} locally. Check out http://127.0.0.1:{port}/pub/fatman/{}/{}/ to access your fatman. CTRL-C to stop.",
        m.name, m.version, m.name, m.version
    ));
    let status = docker(args).await?;
    // 130: stopped with Ctrl-C, the normal way to end it.
    if status.success() || status.code() == Some(130) {
        Ok(())
    } else {
        Err(CliError::Other(format!(
            "the fatman's container exited with {status}"
        )))
    }
}

fn payload_secrets(
    loaded: &manifest::Loaded,
) -> Result<[std::collections::BTreeMap<String, String>; 2]> {
    let read = |file: &Option<String>| match file {
        Some(f) => crate::payload::read_env_file(&loaded.workdir, f),
        None => Ok(Default::default()),
    };
    Ok([
        read(&loaded.manifest.secret_build_env_file)?,
        read(&loaded.manifest.secret_runtime_env_file)?,
    ])
}

/// The container's environment: build variables shadowed with empty values (they must not leak
/// into the run), then runtime variables (secrets over the manifest's), then the fatman's name
/// and deployment time.
fn run_local_env(
    m: &racetrack_model::Manifest,
    secrets: &[std::collections::BTreeMap<String, String>; 2],
    now: i64,
) -> Vec<(String, String)> {
    let mut env: std::collections::BTreeMap<String, String> = Default::default();
    let build = m.build_env.clone().unwrap_or_default();
    for k in build.keys().chain(secrets[0].keys()) {
        env.insert(k.clone(), String::new());
    }
    for (k, v) in m
        .runtime_env
        .clone()
        .unwrap_or_default()
        .iter()
        .chain(&secrets[1])
    {
        env.insert(k.clone(), v.clone());
    }
    env.insert("FATMAN_NAME".into(), m.name.clone());
    env.insert("FATMAN_DEPLOYMENT_TIMESTAMP".into(), now.to_string());
    env.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_columns_in_fixed_order() {
        let fatmen = json!([
            {"name": "adder", "version": "0.0.1", "status": "running", "infrastructure_target": "docker",
             "deployed_by": "admin", "update_time": 1000, "last_call_time": null,
             "pub_url": "http://p/pub/fatman/adder/0.0.1"},
        ]);
        let t = list_table(
            fatmen.as_array().unwrap(),
            &[Column::PubUrl, Column::Infrastructure],
            1000 + 120,
        );
        assert_eq!(
            t,
            "NAME    VERSION   STATUS    INFRASTRUCTURE   PUB URL\nadder   0.0.1     RUNNING   docker           http://p/pub/fatman/adder/0.0.1\n"
        );
        let t = list_table(fatmen.as_array().unwrap(), &[Column::All], 1000 + 120);
        assert!(t.starts_with("NAME    VERSION   STATUS    INFRASTRUCTURE   DEPLOYED BY   UPDATED AT      LAST CALL AT   PUB URL\n"), "{t}");
        assert!(t.contains("2 minutes ago"), "{t}");
        assert!(t.contains("never"), "{t}");
    }

    #[test]
    fn pub_base_from_a_fatman() {
        let fatmen = json!([{"name": "adder", "version": "1.0.0", "pub_url": "http://h:1/pub/fatman/adder/1.0.0"}]);
        assert_eq!(
            pub_base(&fatmen, "adder").as_deref(),
            Some("http://h:1/pub")
        );
        assert_eq!(pub_base(&fatmen, "other"), None);
    }

    #[test]
    fn run_local_environment() {
        let mut m: racetrack_model::Manifest = racetrack_model::parse_manifest_yaml(
            "name: n\nowner_email: a@b.cd\ngit: {remote: 'https://x/y'}\nbuild_env: {B: b}\nruntime_env: {R: r, S: manifest}\n",
        )
        .unwrap();
        m.version = "1.0.0".into();
        let secrets = [
            [("SB".to_string(), "s".to_string())].into_iter().collect(),
            [("S".to_string(), "secret".to_string())]
                .into_iter()
                .collect(),
        ];
        let env: std::collections::BTreeMap<_, _> =
            run_local_env(&m, &secrets, 42).into_iter().collect();
        assert_eq!(env["B"], "");
        assert_eq!(env["SB"], "");
        assert_eq!(env["R"], "r");
        assert_eq!(env["S"], "secret");
        assert_eq!(env["FATMAN_NAME"], "n");
        assert_eq!(env["FATMAN_DEPLOYMENT_TIMESTAMP"], "42");
    }
}
