//! What both HTTP adapters share: base URLs, the client, answers turned into errors.

use std::fmt;
use std::time::Duration;

use crate::error::{excerpt, Error, Service};

/// A value never shown: `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A base URL without a trailing slash, to which API paths are appended. Only plain HTTP: the
/// workspace's reqwest is built without TLS (the registry listens on loopback; Lifecycle's plain
/// listener or a tunnel serves an operator). Credentials in the URL are refused, so URLs can
/// appear in messages.
pub fn base_url(setting: &'static str, value: &str) -> Result<String, Error> {
    let config = |reason: String| Error::Config { setting, reason };
    let url = reqwest::Url::parse(value.trim())
        .map_err(|e| config(format!("not a URL ({e}); expected http://host:port")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(config(
                "https is not supported by this tool (built without TLS); use a plain http:// \
                 address on a trusted network"
                    .into(),
            ))
        }
        other => return Err(config(format!("unsupported scheme `{other}`; use http://"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(config(
            "must not hold credentials; give them in their own settings".into(),
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(config("must not have a query or a fragment".into()));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

pub fn client(timeout: Duration) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!(
            "racetrack-registry-cleaner/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .map_err(|e| Error::Config {
            setting: "HTTP client",
            reason: e.to_string(),
        })
}

/// One request's identity, for error messages.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub service: Service,
    pub method: &'static str,
    pub url: &'a str,
}

impl Call<'_> {
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, Error> {
        request.send().await.map_err(|source| Error::Unreachable {
            service: self.service,
            method: self.method,
            url: self.url.to_string(),
            source,
        })
    }

    pub async fn status_error(&self, response: reqwest::Response) -> Error {
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Error::Status {
            service: self.service,
            method: self.method,
            url: self.url.to_string(),
            status,
            body: excerpt(&body, 300),
        }
    }

    pub fn bad_answer(&self, reason: impl Into<String>) -> Error {
        Error::BadAnswer {
            service: self.service,
            method: self.method,
            url: self.url.to_string(),
            reason: reason.into(),
        }
    }

    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        response: reqwest::Response,
    ) -> Result<T, Error> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.bad_answer(e.to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| self.bad_answer(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls() {
        assert_eq!(
            base_url("X", "http://127.0.0.1:5000/").unwrap(),
            "http://127.0.0.1:5000"
        );
        assert_eq!(
            base_url("X", " http://host/lifecycle/ ").unwrap(),
            "http://host/lifecycle"
        );
        for bad in [
            "127.0.0.1:5000",
            "https://host",
            "ftp://host",
            "http://user:pw@host",
            "http://host/?a=b",
            "",
        ] {
            let e = base_url("X", bad).unwrap_err();
            assert!(matches!(e, Error::Config { setting: "X", .. }), "{bad}");
            assert!(!e.to_string().contains("pw"), "{e}");
        }
    }

    #[test]
    fn secrets_are_not_shown() {
        let s = Secret::new("tok");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
        assert_eq!(s.expose(), "tok");
    }
}
