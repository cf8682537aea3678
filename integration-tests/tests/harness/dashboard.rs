//! The dashboard on top of a [`Platform`], a cookie-keeping HTTP session for it, and a headless
//! chromium driven over WebDriver (Debian's `chromium` + `chromium-driver`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{free_port, wait_http_ok, Platform, Service, REDIS_URL};

pub const SECRET_KEY: &str = "integration-dashboard-secret-key-0123456789abcdef";

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub fn chromium_ok() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

impl Platform {
    /// Starts the dashboard against this platform's Lifecycle (gRPC) with links to `pub_url`;
    /// returns its base URL (`http://127.0.0.1:<port>`).
    pub async fn start_dashboard(&mut self, pub_url: &str) -> String {
        let port = free_port();
        let s = |v: &str| v.to_string();
        let env = vec![
            (s("DASHBOARD_ADDR"), format!("127.0.0.1:{port}")),
            (s("LIFECYCLE_GRPC_URL"), self.lifecycle_grpc_url.clone()),
            (s("SECRET_KEY"), s(SECRET_KEY)),
            (s("EXTERNAL_PUB_URL"), pub_url.to_string()),
            (s("REDIS_URL"), s(REDIS_URL)),
            (s("LIVE_REFRESH"), s("2")),
        ];
        let service = Service::spawn("dashboard", &super::binary("dashboard"), &[], &env);
        let url = format!("http://127.0.0.1:{port}");
        wait_http_ok(&format!("{url}/dashboard/live"), Duration::from_secs(20)).await;
        self.services.push(service);
        url
    }
}

/// A browser-less user of the dashboard: keeps cookies, sends the CSRF token of the last page.
pub struct WebSession {
    pub base: String,
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
    pub csrf: Option<String>,
}

impl WebSession {
    pub fn new(base: &str) -> WebSession {
        WebSession {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            csrf: None,
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&String> {
        self.cookies.get(name)
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for v in resp.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap_or_default();
            let pair = v.split(';').next().unwrap_or_default();
            if let Some((k, val)) = pair.split_once('=') {
                let removed = v.to_ascii_lowercase().contains("max-age=0") || val.is_empty();
                if removed {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies.insert(k.trim().to_string(), val.to_string());
                }
            }
        }
    }

    fn remember_csrf(&mut self, body: &str) {
        if let Some(i) = body.find("name=\"csrf_token\" value=\"") {
            let rest = &body[i + "name=\"csrf_token\" value=\"".len()..];
            if let Some(end) = rest.find('"') {
                self.csrf = Some(rest[..end].to_string());
            }
        }
    }

    /// GET; answers (status, Location header, body).
    pub async fn get(&mut self, path: &str) -> (u16, String, String) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    /// POSTs a form with the CSRF token of the last page (unless `fields` has one already).
    pub async fn post_form(
        &mut self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (u16, String, String) {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !fields.iter().any(|(k, _)| *k == "csrf_token") {
            if let Some(t) = &self.csrf {
                form.push(("csrf_token".into(), t.clone()));
            }
        }
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .form(&form)
            .send()
            .await
            .unwrap();
        self.finish(resp).await
    }

    /// A script's POST: the CSRF header when `with_csrf`.
    pub async fn post_action(&mut self, path: &str, with_csrf: bool) -> (u16, String, String) {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header());
        if with_csrf {
            req = req.header("X-CSRF-Token", self.csrf.clone().unwrap_or_default());
        }
        let resp = req.send().await.unwrap();
        self.finish(resp).await
    }

    async fn finish(&mut self, resp: reqwest::Response) -> (u16, String, String) {
        self.keep(&resp);
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.text().await.unwrap_or_default();
        self.remember_csrf(&body);
        (status, location, body)
    }

    /// A GET left open (server-sent events): the caller reads its chunks.
    pub async fn open_stream(&mut self, path: &str) -> reqwest::Response {
        reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .header("Cookie", self.cookie_header())
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap()
    }

    /// Signs in (fetching the form first for its CSRF token); panics unless it redirects.
    pub async fn sign_in(&mut self, username: &str, password: &str) {
        self.get("/dashboard/accounts/login").await;
        let (status, location, body) = self
            .post_form(
                "/dashboard/accounts/login",
                &[
                    ("username", username),
                    ("password", password),
                    ("next", "/dashboard/"),
                ],
            )
            .await;
        assert_eq!(status, 303, "sign in as {username} failed: {body}");
        assert_eq!(location, "/dashboard/");
        self.get("/dashboard/profile").await;
    }
}

/// Headless chromium through chromium-driver.
pub struct Browser {
    pub client: fantoccini::Client,
    _driver: Service,
    /// Where screenshots go (kept after the test).
    pub shots: PathBuf,
}

impl Browser {
    pub async fn start(name: &str) -> Browser {
        let port = free_port();
        let driver = Service::spawn(
            "chromedriver",
            Path::new(CHROMEDRIVER),
            &[&format!("--port={port}")],
            &[],
        );
        let url = format!("http://127.0.0.1:{port}");
        wait_http_ok(&format!("{url}/status"), Duration::from_secs(20)).await;
        let profile = tempfile::tempdir().unwrap().keep();
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000", "--no-first-run", "--disable-extensions",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--metrics-recording-only",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let caps = match caps {
            serde_json::Value::Object(m) => m,
            _ => unreachable!(),
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = fantoccini::ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("chromium-driver session");
        let shots = super::workspace_root()
            .join("target")
            .join("browser-screenshots")
            .join(name);
        std::fs::create_dir_all(&shots).unwrap();
        Browser {
            client,
            _driver: driver,
            shots,
        }
    }

    /// Saves a PNG of the page; returns its path.
    pub async fn screenshot(&self, label: &str) -> PathBuf {
        let path = self.shots.join(format!("{label}.png"));
        if let Ok(png) = self.client.screenshot().await {
            let _ = std::fs::write(&path, png);
        }
        path
    }

    /// Waits until `check` holds (polling every 200 ms).
    pub async fn wait_for<F, Fut>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: F,
    ) -> Result<(), String>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if check().await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("timed out after {timeout:?} waiting for {what}"))
    }
}
