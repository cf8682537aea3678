//! Properties of PUB's own parsers that must hold for every input, whatever it is: the head
//! parser, the chunked-body scanner and the path normaliser. The fuzz targets in
//! `services/pub/fuzz` call these with mutated input; `tests/smuggling.rs` replays the fuzz seeds
//! and every input a fuzzer ever failed on (`fuzz/regressions/<target>/`), so a finding stays a
//! test. A broken property panics with what differed.

use bytes::BytesMut;
use racetrack_pub::path::{self, Route};
use racetrack_pub::wire::{self, ChunkedScanner, Framing, Head, Known};

/// A property: panics, saying what differed, when it does not hold for an input.
pub type Property = fn(&[u8]);

/// The fuzz targets, by the name of their regression folder.
pub const TARGETS: [(&str, Property); 3] = [
    ("head_parser", head_parser),
    ("chunked_scanner", chunked_scanner),
    ("path_normaliser", path_normaliser),
];

/// Request and response heads: parsing never panics, the accessors agree with the bytes, and a
/// framing PUB accepts is one that no other reading of the same head can dispute.
pub fn head_parser(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    if let Ok(Some(head)) = wire::parse_request(&mut buf) {
        fields_agree(&head, data, buf.len());
        let _ = (
            head.keep_alive(),
            head.is_upgrade(),
            head.connection_listed(),
        );
        if let Ok(framing) = wire::request_framing(&head) {
            request_framing_is_unambiguous(&head, framing);
            body_end_is_consistent(framing, &buf);
        }
    }
    let mut buf = BytesMut::from(data);
    if let Ok(Some(head)) = wire::parse_response(&mut buf) {
        fields_agree(&head, data, buf.len());
        if let Ok(framing) = wire::response_framing(&head) {
            if head.status >= 200 && head.status != 204 && head.status != 304 {
                lengths_agree(&head, framing);
            }
            body_end_is_consistent(framing, &buf);
        }
    }
}

fn fields_agree(head: &Head, data: &[u8], left: usize) {
    assert_eq!(
        head.size() + left,
        data.len(),
        "the head and the rest split the input"
    );
    assert!(head.size() <= data.len());
    for f in head.fields() {
        assert!(!f.name.is_empty(), "empty header name");
        assert!(f.line.starts_with(f.name), "a line starts with its name");
        assert_eq!(
            f.known,
            Known::of(f.name),
            "{:?}",
            String::from_utf8_lossy(f.name)
        );
        if !f.value.is_empty() {
            assert!(f.line.ends_with(f.value), "a line ends with its value");
        }
        assert!(
            !f.value.contains(&b'\n') && !f.value.contains(&b'\r'),
            "a line end inside a value"
        );
    }
}

fn named<'a>(head: &'a Head, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    head.headers()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

/// The rules that keep a proxy and its upstream from reading one request's length differently:
/// a request is chunked only with exactly one `Transfer-Encoding: chunked`, has a length only
/// when every `Content-Length` says that number, never both, and no codings in HTTP/1.0.
fn request_framing_is_unambiguous(head: &Head, framing: Framing) {
    let te: Vec<&[u8]> = named(head, "transfer-encoding").collect();
    let cl: Vec<&[u8]> = named(head, "content-length").collect();
    let show = || {
        head.headers()
            .map(|(n, v)| {
                format!(
                    "{}: {}",
                    String::from_utf8_lossy(n),
                    String::from_utf8_lossy(v)
                )
            })
            .collect::<Vec<_>>()
    };
    match framing {
        Framing::Chunked => {
            assert!(cl.is_empty(), "chunked with a Content-Length: {:?}", show());
            assert!(head.minor_version == 1, "chunked in HTTP/1.0: {:?}", show());
            assert!(
                te.len() == 1 && te[0].trim_ascii().eq_ignore_ascii_case(b"chunked"),
                "chunked from an ambiguous Transfer-Encoding: {:?}",
                show()
            );
        }
        Framing::Length(_) | Framing::Empty => {
            assert!(
                te.is_empty(),
                "a Transfer-Encoding not taken as chunked: {:?}",
                show()
            );
            lengths_agree(head, framing);
        }
        Framing::UntilClose => panic!("a request read until close: {:?}", show()),
    }
}

/// Every `Content-Length` (each item of a list) is plain digits naming the framed length.
fn lengths_agree(head: &Head, framing: Framing) {
    let expected = match framing {
        Framing::Length(n) => n,
        Framing::Empty => 0,
        _ => return,
    };
    for v in named(head, "content-length") {
        for part in v.split(|b| *b == b',') {
            let part = part.trim_ascii();
            assert!(
                !part.is_empty() && part.iter().all(u8::is_ascii_digit),
                "accepted Content-Length {:?}",
                String::from_utf8_lossy(v)
            );
            assert_eq!(
                std::str::from_utf8(part)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()),
                Some(expected),
                "Content-Length {:?} framed as {framing:?}",
                String::from_utf8_lossy(v)
            );
        }
    }
}

fn body_end_is_consistent(framing: Framing, rest: &[u8]) {
    if framing == Framing::Chunked {
        chunked_scanner(rest);
    }
}

/// The scanner finds the same end however the bytes arrive, agrees with an independent strict
/// decoder about where a body ends, and never claims more bytes than it was given.
pub fn chunked_scanner(data: &[u8]) {
    let whole = ChunkedScanner::default().scan(data);
    if let Ok((n, done)) = whole {
        assert!(n <= data.len());
        if done {
            assert!(
                data[..n].ends_with(b"\r\n\r\n"),
                "a body ends with an empty line"
            );
            let reference = decode_chunked(&data[..n]);
            assert!(
                matches!(reference, Chunked::Done { end, .. } if end == n),
                "the scanner ends a body at {n}, a strict decoder says {reference:?}: {:?}",
                String::from_utf8_lossy(&data[..n])
            );
        } else {
            assert_eq!(n, data.len(), "an unfinished body takes everything given");
        }
    }
    // Every split point (bounded, so a long input stays quick) and byte by byte.
    let splits = data.len().min(512);
    for split in (0..=splits).chain(std::iter::once(data.len())) {
        let split = split.min(data.len());
        let mut s = ChunkedScanner::default();
        let parts = s.scan(&data[..split]).and_then(|(a, done)| {
            if done {
                Ok((a, true))
            } else {
                s.scan(&data[split..]).map(|(b, done)| (a + b, done))
            }
        });
        assert_same(&whole, &parts, split, data);
    }
    if data.len() <= 256 {
        let mut s = ChunkedScanner::default();
        let mut taken = 0;
        let mut bytewise = Ok((0, false));
        for b in data {
            match s.scan(std::slice::from_ref(b)) {
                Ok((n, done)) => {
                    taken += n;
                    bytewise = Ok((taken, done));
                    if done {
                        break;
                    }
                }
                Err(e) => {
                    bytewise = Err(e);
                    break;
                }
            }
        }
        assert_same(&whole, &bytewise, usize::MAX, data);
    }
}

fn assert_same(
    whole: &Result<(usize, bool), wire::WireError>,
    parts: &Result<(usize, bool), wire::WireError>,
    split: usize,
    data: &[u8],
) {
    match (whole, parts) {
        (Ok(a), Ok(b)) => assert_eq!(
            a,
            b,
            "split at {split}: {:?}",
            String::from_utf8_lossy(data)
        ),
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "split at {split}: whole {a:?}, in parts {b:?}: {:?}",
            String::from_utf8_lossy(data)
        ),
    }
}

/// What [`decode_chunked`] made of a chunked body.
#[derive(Debug, PartialEq, Eq)]
pub enum Chunked {
    /// The body ended `end` bytes in; `data` is its decoded content, `trailers` its trailer lines.
    Done {
        end: usize,
        data: Vec<u8>,
        trailers: Vec<Vec<u8>>,
    },
    /// More bytes are needed.
    Partial,
    Malformed(&'static str),
}

/// A strict chunked decoder written from RFC 9112 §7.1, independent of PUB's scanner: CRLF line
/// ends only, hex sizes (at most 16 digits), extensions after `;` (or whitespace).
pub fn decode_chunked(data: &[u8]) -> Chunked {
    let mut at = 0;
    let mut out = Vec::new();
    let line = |at: usize| -> Option<Result<(usize, &[u8]), &'static str>> {
        let rel = data[at..].windows(2).position(|w| w == b"\r\n")?;
        let text = &data[at..at + rel];
        if text.iter().any(|b| *b == b'\n' || *b == b'\r') {
            return Some(Err("bare CR or LF"));
        }
        Some(Ok((at + rel + 2, text)))
    };
    loop {
        let (next, text) = match line(at) {
            None if data[at..].contains(&b'\n') => return Chunked::Malformed("bare LF"),
            None => return Chunked::Partial,
            Some(Err(e)) => return Chunked::Malformed(e),
            Some(Ok(l)) => l,
        };
        let digits = text.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        if digits == 0 || digits > 16 {
            return Chunked::Malformed("chunk size");
        }
        let ext = &text[digits..];
        // What an extension may contain matters to whoever reads it, not to where the body ends.
        if !ext.is_empty() && !matches!(ext[0], b';' | b' ' | b'\t') {
            return Chunked::Malformed("chunk extension");
        }
        let size = text[..digits].iter().fold(0u64, |n, d| {
            (n << 4) | u64::from((*d as char).to_digit(16).unwrap_or(0))
        });
        at = next;
        if size == 0 {
            let mut trailers = Vec::new();
            loop {
                match line(at) {
                    None if data[at..].contains(&b'\n') => return Chunked::Malformed("bare LF"),
                    None => return Chunked::Partial,
                    Some(Err(e)) => return Chunked::Malformed(e),
                    Some(Ok((next, t))) => {
                        at = next;
                        if t.is_empty() {
                            return Chunked::Done {
                                end: at,
                                data: out,
                                trailers,
                            };
                        }
                        trailers.push(t.to_vec());
                    }
                }
            }
        }
        let Some(end) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)) else {
            return Chunked::Partial;
        };
        if data.len() < end + 2 {
            return Chunked::Partial;
        }
        if &data[end..end + 2] != b"\r\n" {
            return Chunked::Malformed("no CRLF after chunk data");
        }
        out.extend_from_slice(&data[at..end]);
        at = end + 2;
    }
}

/// How a lenient server (Tomcat, Spring, IIS, old WSGI stacks) reads a request path: percent
/// escapes decoded, `\` taken as `/`, `;parameters` cut from each segment, dot segments resolved.
/// Whatever PUB decides about a path must hold for this reading too.
pub fn lenient_segments(path: &[u8]) -> Vec<Vec<u8>> {
    let decoded = lenient_decode(path);
    let mut out: Vec<Vec<u8>> = Vec::new();
    for seg in decoded.split(|b| *b == b'/') {
        match param_cut(seg) {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            s => out.push(s.to_vec()),
        }
    }
    out
}

/// A segment without its `;parameters`.
fn param_cut(seg: &[u8]) -> &[u8] {
    match seg.iter().position(|b| *b == b';') {
        Some(p) => &seg[..p],
        None => seg,
    }
}

/// Percent escapes decoded (malformed ones kept as sent), `\` as `/`.
fn lenient_decode(path: &[u8]) -> Vec<u8> {
    let mut decoded = Vec::with_capacity(path.len());
    let mut i = 0;
    while i < path.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            path[i],
            path.get(i + 1).copied().and_then(hex),
            path.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                decoded.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'\\', _, _) => {
                decoded.push(b'/');
                i += 1;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    decoded
}

/// Probes a fatman answers without a caller: only these, exactly.
pub const PROBES: [&str; 3] = ["/live", "/ready", "/health"];

/// Routing never panics; a call's forwarded path routes to the same call again (normalising is
/// idempotent); nothing a server could read as a dot segment or a separator survives into what
/// is forwarded; and a call PUB lets through as a probe is a probe for every reading of it.
pub fn path_normaliser(data: &[u8]) {
    // Only what can arrive: a request target the head parser takes whole (no spaces, controls),
    // its query cut off as PUB does.
    let mut line = b"GET ".to_vec();
    line.extend_from_slice(data);
    line.extend_from_slice(b" HTTP/1.1\r\n\r\n");
    match wire::parse_request(&mut BytesMut::from(&line[..])) {
        Ok(Some(head)) if head.target() == data => {}
        _ => return,
    }
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let raw = target.split('?').next().unwrap_or_default();
    let Ok(Route::Fatman(call)) = path::route(raw) else {
        return;
    };
    let mut forwarded = Vec::new();
    call.push_forward_path(&mut forwarded);
    let forwarded = String::from_utf8(forwarded).expect("built from strings");
    match path::route(&forwarded) {
        Ok(Route::Fatman(again)) => {
            assert_eq!(again, call, "{raw:?} forwarded as {forwarded:?}");
            assert_eq!(again.endpoint(), call.endpoint());
        }
        other => panic!("{raw:?} forwarded as {forwarded:?} routes to {other:?}"),
    }
    let rest = call.rest.as_bytes();
    for bad in [&b"\\"[..], b"\0", b"//"] {
        assert!(
            !rest.windows(bad.len()).any(|w| w == bad),
            "{raw:?}: {bad:?} in the forwarded rest {:?}",
            call.rest
        );
    }
    let lower = call.rest.to_ascii_lowercase();
    for bad in ["%2f", "%5c", "%00"] {
        assert!(
            !lower.contains(bad),
            "{raw:?}: {bad} in the forwarded rest {:?}",
            call.rest
        );
    }
    // A segment a lenient server drops (`.`, `.;x`, `%3b`) only shortens a path PUB checked
    // whole; `..` (climbing out of what was checked) and separators are what must not pass.
    for seg in call.rest.split('/') {
        let decoded = lenient_decode(seg.as_bytes());
        assert!(
            !decoded.contains(&b'/') && param_cut(&decoded) != b"..",
            "{raw:?}: segment {seg:?} of the forwarded rest {:?} is `..` or a separator to a lenient server",
            call.rest
        );
    }
    if call.is_health_probe() {
        let lenient = lenient_segments(call.rest.as_bytes());
        let endpoint: Vec<u8> = lenient
            .iter()
            .flat_map(|s| [&b"/"[..], s].concat())
            .collect();
        assert!(
            PROBES.iter().any(|p| p.as_bytes() == endpoint.as_slice()),
            "{raw:?} passes as a health probe, but a lenient server serves {:?}",
            String::from_utf8_lossy(&endpoint)
        );
    }
}
