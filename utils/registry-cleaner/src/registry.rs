//! Adapter: the Docker registry HTTP API v2 (catalog, tags, manifest digests, manifest deletes).

use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, LINK};
use reqwest::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Service};
use crate::http::{self, Call, Secret};

/// Every manifest type a pushed image may have: the digest is then the one of the manifest the
/// tag points at (an index for a multi-platform image), never a converted one.
pub const MANIFEST_ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.index.v1+json";

const DIGEST_HEADER: &str = "Docker-Content-Digest";
/// Page size asked for when listing; the registry follows up with a `Link` header.
const PAGE: usize = 100;

pub struct BasicAuth {
    pub username: String,
    pub password: Secret,
}

pub struct Registry {
    http: reqwest::Client,
    base: String,
    auth: Option<BasicAuth>,
}

/// What a manifest delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Now,
    /// Someone else deleted it first.
    AlreadyGone,
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(default)]
    repositories: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    pub fn new(url: &str, auth: Option<BasicAuth>, timeout: Duration) -> Result<Registry, Error> {
        Ok(Registry {
            http: http::client(timeout)?,
            base: http::base_url("REGISTRY_URL", url)?,
            auth,
        })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, url);
        match &self.auth {
            Some(a) => request.basic_auth(&a.username, Some(a.password.expose())),
            None => request,
        }
    }

    fn call<'a>(method: &'static str, url: &'a str) -> Call<'a> {
        Call {
            service: Service::Registry,
            method,
            url,
        }
    }

    async fn refused(&self, call: Call<'_>, response: reqwest::Response) -> Error {
        if response.status() == StatusCode::UNAUTHORIZED {
            return Error::RegistryUnauthorized {
                method: call.method,
                url: call.url.to_string(),
            };
        }
        call.status_error(response).await
    }

    /// `GET /v2/`: the registry answers and speaks API v2 (with our credentials, if any).
    pub async fn check(&self) -> Result<(), Error> {
        let url = format!("{}/v2/", self.base);
        let call = Self::call("GET", &url);
        let response = call.send(self.request(reqwest::Method::GET, &url)).await?;
        if !response.status().is_success() {
            return Err(self.refused(call, response).await);
        }
        Ok(())
    }

    /// Every repository name, across the catalog's pages.
    pub async fn repositories(&self) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut next = Some(format!("{}/v2/_catalog?n={PAGE}", self.base));
        while let Some(url) = next.take() {
            let call = Self::call("GET", &url);
            let response = call.send(self.request(reqwest::Method::GET, &url)).await?;
            if !response.status().is_success() {
                return Err(self.refused(call, response).await);
            }
            next = self.next_page(response.headers(), &url)?;
            let page: Catalog = call.json(response).await?;
            out.extend(page.repositories.unwrap_or_default());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The repository's tags (none when the repository is unknown or all its manifests were
    /// deleted).
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>, Error> {
        let mut out = Vec::new();
        let mut next = Some(format!("{}/v2/{repository}/tags/list?n={PAGE}", self.base));
        while let Some(url) = next.take() {
            let call = Self::call("GET", &url);
            let response = call.send(self.request(reqwest::Method::GET, &url)).await?;
            if response.status() == StatusCode::NOT_FOUND {
                break;
            }
            if !response.status().is_success() {
                return Err(self.refused(call, response).await);
            }
            next = self.next_page(response.headers(), &url)?;
            let page: TagList = call.json(response).await?;
            out.extend(page.tags.unwrap_or_default());
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The digest of the manifest `tag` points at; `None` when the tag is gone meanwhile.
    pub async fn digest(&self, repository: &str, tag: &str) -> Result<Option<String>, Error> {
        let url = format!("{}/v2/{repository}/manifests/{tag}", self.base);
        let call = Self::call("HEAD", &url);
        let response = call
            .send(
                self.request(reqwest::Method::HEAD, &url)
                    .header(ACCEPT, MANIFEST_ACCEPT),
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.refused(call, response).await);
        }
        if let Some(digest) = digest_header(response.headers()) {
            return Ok(Some(digest));
        }
        // Some registries leave the header out of HEAD answers: the digest is the manifest's
        // SHA-256, as served.
        let call = Self::call("GET", &url);
        let response = call
            .send(
                self.request(reqwest::Method::GET, &url)
                    .header(ACCEPT, MANIFEST_ACCEPT),
            )
            .await?;
        if response.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(self.refused(call, response).await);
        }
        if let Some(digest) = digest_header(response.headers()) {
            return Ok(Some(digest));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| call.bad_answer(e.to_string()))?;
        let hash = Sha256::digest(&body);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        Ok(Some(format!("sha256:{hex}")))
    }

    /// `DELETE /v2/{repository}/manifests/{digest}`: the manifest and every tag pointing at it.
    pub async fn delete_manifest(&self, repository: &str, digest: &str) -> Result<Deleted, Error> {
        let url = format!("{}/v2/{repository}/manifests/{digest}", self.base);
        let call = Self::call("DELETE", &url);
        let response = call
            .send(self.request(reqwest::Method::DELETE, &url))
            .await?;
        match response.status() {
            s if s.is_success() => Ok(Deleted::Now),
            StatusCode::NOT_FOUND => Ok(Deleted::AlreadyGone),
            StatusCode::METHOD_NOT_ALLOWED => Err(Error::DeleteDisabled { url }),
            _ => Err(self.refused(call, response).await),
        }
    }

    /// The absolute URL of the next page, from a `Link: </v2/...?last=x&n=100>; rel="next"`.
    fn next_page(&self, headers: &HeaderMap, current: &str) -> Result<Option<String>, Error> {
        let Some(value) = headers.get(LINK) else {
            return Ok(None);
        };
        let value = value
            .to_str()
            .map_err(|_| Self::call("GET", current).bad_answer("unreadable Link header"))?;
        let Some(target) = next_link(value) else {
            return Ok(None);
        };
        let next = if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("{}{}", origin(&self.base), target)
        };
        if next == current {
            return Err(Self::call("GET", current).bad_answer("the next page is this page"));
        }
        Ok(Some(next))
    }
}

fn digest_header(headers: &HeaderMap) -> Option<String> {
    headers
        .get(DIGEST_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// The target of the `rel="next"` link in a `Link` header value.
fn next_link(value: &str) -> Option<&str> {
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then_some(target)
    })
}

/// `http://host:port` of a base URL (links are absolute paths).
fn origin(base: &str) -> &str {
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    match base[after_scheme..].find('/') {
        Some(i) => &base[..after_scheme + i],
        None => base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_links() {
        assert_eq!(
            next_link("</v2/_catalog?last=b&n=100>; rel=\"next\""),
            Some("/v2/_catalog?last=b&n=100")
        );
        assert_eq!(
            next_link("<http://r/x>; rel=\"prev\", <http://r/y>; rel=\"next\""),
            Some("http://r/y")
        );
        assert_eq!(next_link("</v2/x>; rel=\"prev\""), None);
        assert_eq!(next_link("garbage"), None);
    }

    #[test]
    fn origins() {
        assert_eq!(origin("http://127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(origin("http://host/registry"), "http://host");
    }
}
