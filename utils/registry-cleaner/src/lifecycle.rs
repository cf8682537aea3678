//! Adapter: which fatmen exist, from Lifecycle's REST API (`GET /api/v1/fatman`, as the
//! original's client asks it).

use std::time::Duration;

use racetrack_model::AuthScope;
use reqwest::header::ACCEPT;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::error::{Error, Service};
use crate::http::{self, Call, Secret};
use crate::plan::Fatman;

pub const AUTH_HEADER: &str = "X-Racetrack-Auth";

pub struct Lifecycle {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

/// The fields of Lifecycle's fatman listing this tool needs.
#[derive(Deserialize)]
struct FatmanEntry {
    name: String,
    version: String,
    #[serde(default)]
    image_tag: Option<String>,
}

impl Lifecycle {
    pub fn new(url: &str, token: Secret, timeout: Duration) -> Result<Lifecycle, Error> {
        if token.expose().trim().is_empty() {
            return Err(Error::Config {
                setting: "LIFECYCLE_AUTH_TOKEN",
                reason: "is required (a token that may read every fatman)".into(),
            });
        }
        Ok(Lifecycle {
            http: http::client(timeout)?,
            base: http::base_url("LIFECYCLE_URL", url)?,
            token,
        })
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http
            .get(url)
            .header(ACCEPT, "application/json")
            .header(AUTH_HEADER, self.token.expose())
    }

    fn call(url: &str) -> Call<'_> {
        Call {
            service: Service::Lifecycle,
            method: "GET",
            url,
        }
    }

    /// Every existing fatman version. Fails unless the token reads every fatman: Lifecycle lists
    /// only the fatmen a token may read, and an image of a fatman left out would look unused.
    pub async fn fatmen(&self) -> Result<Vec<Fatman>, Error> {
        let url = format!("{}/api/v1/fatman", self.base);
        let call = Self::call(&url);
        let response = call.send(self.get(&url)).await?;
        match response.status() {
            s if s.is_success() => {}
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                return Err(Error::Unauthorized {
                    status: s.as_u16(),
                    url,
                })
            }
            _ => return Err(call.status_error(response).await),
        }
        let entries: Vec<FatmanEntry> = call.json(response).await?;
        self.ensure_reads_every_fatman().await?;
        Ok(entries
            .into_iter()
            .map(|e| Fatman {
                name: e.name,
                version: e.version,
                image_tag: e.image_tag.filter(|t| !t.is_empty()),
            })
            .collect())
    }

    /// Asks whether the token may read a fatman nobody can have been granted by name: only a
    /// global permission (or an internal token holding the scope) allows that.
    async fn ensure_reads_every_fatman(&self) -> Result<(), Error> {
        let probe = format!("registry-cleaner-probe-{}", uuid::Uuid::new_v4().simple());
        let url = format!(
            "{}/api/v1/auth/allowed/fatman/{probe}/latest/scope/{}",
            self.base,
            AuthScope::ReadFatman
        );
        let call = Self::call(&url);
        let response = call.send(self.get(&url)).await?;
        match response.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(Error::PartialView),
            _ => Err(call.status_error(response).await),
        }
    }
}
