//! What a request path means to PUB, decided once: the route, and for fatman calls the fatman,
//! the version query and the normalised endpoint. The endpoint checked for permission is exactly
//! the one forwarded, so no encoding trick can make them differ.

/// A request PUB answers itself, or a call to forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Live,
    Ready,
    Health,
    Metrics,
    Fatman(FatmanCall),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FatmanCall {
    pub name: String,
    /// As requested: exact, `latest` or a wildcard.
    pub version: String,
    /// Normalised path inside the fatman: `""`, `"/"` or `/a/b` (a trailing `/` kept as sent).
    pub rest: String,
}

impl FatmanCall {
    /// The endpoint permissions are checked against: leading `/`, no trailing `/`.
    pub fn endpoint(&self) -> &str {
        let trimmed = self.rest.strip_suffix('/').unwrap_or(&self.rest);
        if trimmed.is_empty() {
            "/"
        } else {
            trimmed
        }
    }

    /// Appends the path forwarded to the fatman: fatmen serve under `/pub/fatman/{name}/{version}`.
    pub fn push_forward_path(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"/pub/fatman/");
        out.extend_from_slice(self.name.as_bytes());
        out.push(b'/');
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(self.rest.as_bytes());
    }

    #[cfg(test)]
    fn forward_path(&self) -> String {
        let mut out = Vec::new();
        self.push_forward_path(&mut out);
        String::from_utf8(out).expect("built from strings")
    }

    /// Health probes of the fatman itself are never behind auth: exactly these three paths and
    /// nothing below them, so no trick appended to a probe can reach past it.
    pub fn is_health_probe(&self) -> bool {
        matches!(self.endpoint(), "/live" | "/ready" | "/health")
    }

    /// Whether an approved public endpoint covers this call (whole segments only: `/api/v1/perform`
    /// does not open `/api/v1/performance`).
    pub fn is_public(&self, public_endpoints: &[String]) -> bool {
        public_endpoints
            .iter()
            .any(|ep| segment_prefix(self.endpoint(), ep))
    }
}

fn segment_prefix(path: &str, prefix: &str) -> bool {
    let prefix = prefix.strip_suffix('/').unwrap_or(prefix);
    if prefix.is_empty() {
        return true;
    }
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with('/'))
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("no such route")]
    NotFound,
    #[error("invalid {0} in path")]
    InvalidName(&'static str),
    #[error("encoded slash, backslash or NUL in path")]
    EncodedSeparator,
    /// A raw `\\` is a separator to some servers; a dot segment with parameters (`..;x`) is a
    /// dot segment to others. Either would let a fatman see another path than the one checked.
    #[error("backslash or dot segment with parameters in path")]
    AmbiguousSegment,
    #[error("path goes above the fatman's root")]
    Escapes,
    #[error("invalid percent-encoding in path")]
    BadEncoding,
}

/// Parses `[/pub]/fatman/{name}/{version}[/{path}]` and PUB's own routes.
pub fn route(raw: &str) -> Result<Route, PathError> {
    let path = raw
        .strip_prefix("/pub")
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(raw);
    match path {
        "/live" => return Ok(Route::Live),
        "/ready" => return Ok(Route::Ready),
        "/health" => return Ok(Route::Health),
        "/metrics" => return Ok(Route::Metrics),
        _ => {}
    }
    let rest = path.strip_prefix("/fatman/").ok_or(PathError::NotFound)?;
    let mut parts = rest.splitn(3, '/');
    let name = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let tail = parts.next();
    if name.is_empty() || version.is_empty() {
        return Err(PathError::NotFound);
    }
    if !valid_token(name) {
        return Err(PathError::InvalidName("fatman name"));
    }
    if !valid_token(version) {
        return Err(PathError::InvalidName("fatman version"));
    }
    let rest = match tail {
        None => String::new(),
        Some(t) => normalise(t)?,
    };
    Ok(Route::Fatman(FatmanCall {
        name: name.to_string(),
        version: version.to_string(),
        rest,
    }))
}

/// Names and version queries are plain: letters, digits, `.`, `-`, `_`, `+` (no encoding at all).
fn valid_token(s: &str) -> bool {
    s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
        && s != "."
        && s != ".."
}

/// Collapses duplicate slashes and resolves dot segments (also percent-encoded ones, since a
/// fatman's server may decode them); refuses encoded separators. Other percent-encodings are kept
/// as sent.
fn normalise(tail: &str) -> Result<String, PathError> {
    // Most paths are already normal: no escapes, empty or dot segments. They need no decoding.
    if is_plain(tail.as_bytes()) {
        let mut out = String::with_capacity(tail.len() + 1);
        out.push('/');
        out.push_str(tail);
        return Ok(out);
    }
    resolve(tail)
}

/// No escapes, no empty segment (a leading or doubled `/`), no `.` or `..` segment, nothing
/// that [`resolve`] must look at (`;`, `\\`); one pass.
fn is_plain(tail: &[u8]) -> bool {
    // Length of the current segment, and whether it is all dots so far.
    let mut len = 0usize;
    let mut dots = true;
    for &b in tail {
        match b {
            b'%' | b';' | b'\\' => return false,
            b'/' => {
                if len == 0 || (dots && len <= 2) {
                    return false;
                }
                len = 0;
                dots = true;
            }
            _ => {
                len += 1;
                dots &= b == b'.';
            }
        }
    }
    !(dots && (1..=2).contains(&len))
}

fn resolve(tail: &str) -> Result<String, PathError> {
    let mut segments: Vec<&str> = Vec::new();
    for seg in tail.split('/') {
        if seg.is_empty() {
            continue;
        }
        if seg.contains('\\') {
            return Err(PathError::AmbiguousSegment);
        }
        let decoded = percent_decode(seg)?;
        if decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) {
            return Err(PathError::EncodedSeparator);
        }
        // Servers that take `;` as the start of path parameters read `..;x` as `..`.
        if let Some(i) = decoded.iter().position(|b| *b == b';') {
            if matches!(&decoded[..i], b"." | b"..") {
                return Err(PathError::AmbiguousSegment);
            }
        }
        match decoded.as_slice() {
            b"." => {}
            b".." => {
                segments.pop().ok_or(PathError::Escapes)?;
            }
            _ => segments.push(seg),
        }
    }
    let mut out = String::with_capacity(tail.len() + 1);
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if tail.ends_with('/') || tail.is_empty() {
        out.push('/');
    }
    Ok(out)
}

pub(crate) fn percent_decode(seg: &str) -> Result<Vec<u8>, PathError> {
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or(PathError::BadEncoding)?;
            let s = std::str::from_utf8(hex).map_err(|_| PathError::BadEncoding)?;
            out.push(u8::from_str_radix(s, 16).map_err(|_| PathError::BadEncoding)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(raw: &str) -> FatmanCall {
        match route(raw).unwrap() {
            Route::Fatman(c) => c,
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn routes_with_and_without_prefix() {
        assert_eq!(route("/pub/live").unwrap(), Route::Live);
        assert_eq!(route("/health").unwrap(), Route::Health);
        assert_eq!(route("/pub/metrics").unwrap(), Route::Metrics);
        let c = call("/pub/fatman/adder/latest/api/v1/perform");
        assert_eq!((c.name.as_str(), c.version.as_str()), ("adder", "latest"));
        assert_eq!(c.endpoint(), "/api/v1/perform");
        assert_eq!(c.forward_path(), "/pub/fatman/adder/latest/api/v1/perform");
        assert_eq!(call("/fatman/adder/1.x").rest, "");
        assert_eq!(call("/fatman/adder/1.x").endpoint(), "/");
        assert_eq!(call("/pub/fatman/adder/0.0.1/").rest, "/");
        assert_eq!(route("/pubx/live"), Err(PathError::NotFound));
        assert_eq!(route("/pub/fatman/adder"), Err(PathError::NotFound));
        assert_eq!(route("/pub/fatman//1"), Err(PathError::NotFound));
    }

    #[test]
    fn normalisation_makes_checked_and_forwarded_paths_equal() {
        let c = call("/pub/fatman/adder/1/api//v1/./x/../perform/");
        assert_eq!(c.rest, "/api/v1/perform/");
        assert_eq!(c.endpoint(), "/api/v1/perform");
        assert_eq!(c.forward_path(), "/pub/fatman/adder/1/api/v1/perform/");
        assert_eq!(call("/pub/fatman/a/1/x/%2e%2e/y").rest, "/y");
        assert_eq!(call("/pub/fatman/a/1/x%20y").rest, "/x%20y");
        // Parameters on an ordinary segment are data, kept as sent.
        assert_eq!(call("/pub/fatman/a/1/x;y/z").rest, "/x;y/z");
    }

    #[test]
    fn plain_paths_skip_decoding_with_the_same_result() {
        for tail in [
            "",
            "a",
            "a/",
            "api/v1/perform",
            "a/b/c/",
            "a.b/..c/.d",
            "x+y/-_~",
            "...",
            "a/...",
        ] {
            assert!(is_plain(tail.as_bytes()), "{tail}");
            assert_eq!(normalise(tail), resolve(tail), "{tail}");
        }
        for tail in [
            "/a", "a//b", ".", "..", "a/.", "a/../b", "./a", "a%2e", "a;b", "a\\b",
        ] {
            assert!(!is_plain(tail.as_bytes()), "{tail}");
        }
    }

    #[test]
    fn hostile_paths_are_refused() {
        for (raw, err) in [
            ("/pub/fatman/a/1/..", PathError::Escapes),
            ("/pub/fatman/a/1/x/../../other/1/y", PathError::Escapes),
            ("/pub/fatman/a/1/%2e%2e/b", PathError::Escapes),
            ("/pub/fatman/a/1/x%2Fy", PathError::EncodedSeparator),
            ("/pub/fatman/a/1/x%5cy", PathError::EncodedSeparator),
            ("/pub/fatman/a/1/x%00", PathError::EncodedSeparator),
            ("/pub/fatman/a/1/x%zz", PathError::BadEncoding),
            ("/pub/fatman/a/1/x%4", PathError::BadEncoding),
            (
                "/pub/fatman/a/1/live/..;/api/v1/perform",
                PathError::AmbiguousSegment,
            ),
            ("/pub/fatman/a/1/live/.;x/api", PathError::AmbiguousSegment),
            (
                "/pub/fatman/a/1/live/%2e%2e%3b/api",
                PathError::AmbiguousSegment,
            ),
            (
                "/pub/fatman/a/1/live/..%3Bx/api",
                PathError::AmbiguousSegment,
            ),
            (
                "/pub/fatman/a/1/live/..\\api/v1/perform",
                PathError::AmbiguousSegment,
            ),
            ("/pub/fatman/a/1/live\\..\\api", PathError::AmbiguousSegment),
            (
                "/pub/fatman/a%2fb/1/x",
                PathError::InvalidName("fatman name"),
            ),
            ("/pub/fatman/../1/x", PathError::InvalidName("fatman name")),
            (
                "/pub/fatman/a/../x",
                PathError::InvalidName("fatman version"),
            ),
        ] {
            assert_eq!(route(raw), Err(err), "{raw}");
        }
    }

    #[test]
    fn public_endpoints_and_probes_match_whole_segments() {
        let public = vec!["/api/v1/perform".to_string()];
        assert!(call("/pub/fatman/a/1/api/v1/perform").is_public(&public));
        assert!(call("/pub/fatman/a/1/api/v1/perform/x").is_public(&public));
        assert!(!call("/pub/fatman/a/1/api/v1/performance").is_public(&public));
        assert!(!call("/pub/fatman/a/1/api/v1").is_public(&public));
        assert!(!call("/pub/fatman/a/1/api/v1/x/../perform2").is_public(&public));
        assert!(call("/pub/fatman/a/1/live").is_health_probe());
        assert!(call("/pub/fatman/a/1/ready/").is_health_probe());
        assert!(call("/pub/fatman/a/1/health").is_health_probe());
        assert!(!call("/pub/fatman/a/1/live/x").is_health_probe());
        assert!(!call("/pub/fatman/a/1/live;x").is_health_probe());
        assert!(!call("/pub/fatman/a/1/ready/api/v1/perform").is_health_probe());
        assert!(!call("/pub/fatman/a/1/lively").is_health_probe());
        assert!(!call("/pub/fatman/a/1/api/live").is_health_probe());
    }
}
