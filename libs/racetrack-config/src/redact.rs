//! Keeping secrets out of logs, errors, spans and `Debug` output: one home for every service.
//!
//! [`url`] hides the credentials of one URL (a database or Redis URL in a config's `Debug`, an
//! error message). [`Redactor`] replaces known secret values (and their URL-encoded form) in free
//! text with [`MASK`] and, independently of what it knows, masks the user-info part of any URL in
//! it (`https://user:pass@host` → `https://***@host`).

use std::sync::OnceLock;

use regex::Regex;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Secrets shorter than this are not searched for: masking every `a` would make logs
/// unreadable while protecting nothing.
pub const MIN_SECRET_LEN: usize = 3;

#[allow(
    clippy::expect_used,
    reason = "a constant pattern, compiled by the tests: it cannot fail later"
)]
fn url_userinfo_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\b([a-zA-Z][a-zA-Z0-9+.\-]*://)[^/\s@]+@").expect("valid regex"))
}

#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is masked whole.
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .finish()
    }
}

impl Redactor {
    pub fn new() -> Redactor {
        Redactor::default()
    }

    /// Masks `secret` (and its URL-encoded form) from now on.
    pub fn add(&mut self, secret: &str) {
        for candidate in [secret.to_string(), percent_encode(secret)] {
            if candidate.chars().count() >= MIN_SECRET_LEN && !self.secrets.contains(&candidate) {
                self.secrets.push(candidate);
            }
        }
        self.secrets
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// `text` with every known secret and every URL user-info masked.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        scrub_url_credentials(&out)
    }
}

/// Masks the user-info of URLs: `https://user:token@host/x` → `https://***@host/x`.
pub fn scrub_url_credentials(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    url_userinfo_re()
        .replace_all(text, |caps: &regex::Captures<'_>| {
            format!("{}{MASK}@", &caps[1])
        })
        .into_owned()
}

/// One URL fit for logs: everything between `scheme://` and the last `@` replaced (a password
/// may hold `/` or `@`, so this is not the pattern [`scrub_url_credentials`] looks for in text).
pub fn url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://{MASK}@{}", &url[..s], &url[at + 1..]),
        _ => url.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for URL user-info).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_url_credentials_without_knowing_them() {
        assert_eq!(
            scrub_url_credentials(
                "fatal: unable to access 'https://bob:hunter2@git.example.com/r.git/'"
            ),
            "fatal: unable to access 'https://***@git.example.com/r.git/'"
        );
        assert_eq!(
            scrub_url_credentials("cloning HTTP://tok@host/x and ssh://git@host/y"),
            "cloning HTTP://***@host/x and ssh://***@host/y"
        );
        // An `@` in a path is not user-info.
        assert_eq!(
            scrub_url_credentials("https://host/pkg@1.0 me@example.com"),
            "https://host/pkg@1.0 me@example.com"
        );
    }

    #[test]
    fn masks_known_secrets_plain_and_encoded() {
        let mut r = Redactor::new();
        r.add("p@ss w/rd");
        r.add("tok3n-value");
        r.add("ab"); // too short to be searched for
        let line = "pass=p@ss w/rd enc=p%40ss%20w%2Frd token: tok3n-value ab";
        let out = r.redact(line);
        assert_eq!(out, "pass=*** enc=*** token: *** ab");
        assert!(!out.contains("tok3n"));
    }

    #[test]
    fn longer_secret_wins_over_its_prefix() {
        let mut r = Redactor::new();
        r.add("secret");
        r.add("secret-and-more");
        assert_eq!(r.redact("x secret-and-more y"), "x *** y");
    }

    #[test]
    fn one_url_loses_its_credentials_whatever_they_hold() {
        assert_eq!(url("redis://:pw@h:6379/0"), "redis://***@h:6379/0");
        assert_eq!(
            url("postgres://u:p/@ss@db/racetrack"),
            "postgres://***@db/racetrack"
        );
        assert_eq!(url("sqlite://a/b.db"), "sqlite://a/b.db");
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let mut r = Redactor::new();
        r.add("hunter2");
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("a b@c:d/é"), "a%20b%40c%3Ad%2F%C3%A9");
    }
}
