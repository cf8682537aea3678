//! HTTP/1.1 on the wire, as much as a proxy needs and no more: heads parsed in place (offsets into
//! the bytes read, no per-header allocation), message framing decided by the strict rules that
//! keep a proxy safe from request smuggling, and a chunked-body scanner that finds where a message
//! ends without decoding it, so bodies are forwarded byte for byte.
//!
//! PUB used to proxy through hyper's server and client; per call that meant a header map built
//! and torn down four times and a hop between the connection task and the client's connection
//! task. Forwarding heads as bytes in one task is what lets PUB keep up with nginx.

use std::io;
use std::ops::Range;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// More headers than this in one head is refused (431), as hyper's default.
pub const MAX_HEADERS: usize = 100;
/// Reads are at least this large: one read takes a typical head and body whole.
const READ_CHUNK: usize = 16 * 1024;
/// Bounds a chunk-size line's extensions and a chunked body's trailers.
const MAX_CHUNK_LINE: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("too many headers")]
    TooManyHeaders,
    #[error("malformed message head: {0}")]
    Malformed(String),
    #[error("invalid message length: {0}")]
    Framing(&'static str),
    #[error("malformed chunked body")]
    Chunked,
}

/// The headers PUB acts on, recognised once as a head is parsed so that no later look-up
/// compares names again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    Other,
    ContentLength,
    TransferEncoding,
    Connection,
    Upgrade,
    /// The other hop-by-hop headers: `Keep-Alive`, `Proxy-*`, `TE`, `Trailer`.
    HopByHop,
    Expect,
    Host,
    Cookie,
    Location,
    XForwardedFor,
    XForwardedHost,
    /// The caller token headers, in the order they are read.
    RacetrackAuth,
    EscAuth,
    FatmanAuth,
    UserAuth,
    /// Identity headers only PUB may set.
    Caller,
    CallerType,
    /// W3C trace context: PUB writes its own (docs/architecture.md, "Tracing").
    TraceParent,
    TraceState,
}

impl Known {
    pub fn of(name: &[u8]) -> Known {
        let is = |s: &str| name.eq_ignore_ascii_case(s.as_bytes());
        // The length rules out all but one or two candidates before any comparison.
        match name.len() {
            2 if is("te") => Known::HopByHop,
            4 if is("host") => Known::Host,
            6 if is("cookie") => Known::Cookie,
            6 if is("expect") => Known::Expect,
            7 if is("upgrade") => Known::Upgrade,
            7 if is("trailer") => Known::HopByHop,
            8 if is("location") => Known::Location,
            10 if is("connection") => Known::Connection,
            10 if is("keep-alive") => Known::HopByHop,
            10 if is("tracestate") => Known::TraceState,
            11 if is("traceparent") => Known::TraceParent,
            14 if is("content-length") => Known::ContentLength,
            15 if is("x-forwarded-for") => Known::XForwardedFor,
            16 if is("x-racetrack-auth") => Known::RacetrackAuth,
            16 if is("x-forwarded-host") => Known::XForwardedHost,
            16 if is("proxy-connection") => Known::HopByHop,
            17 if is("transfer-encoding") => Known::TransferEncoding,
            18 if is("x-racetrack-caller") => Known::Caller,
            18 if is("proxy-authenticate") => Known::HopByHop,
            19 if is("proxy-authorization") => Known::HopByHop,
            20 if is("x-racetrack-esc-auth") => Known::EscAuth,
            21 if is("x-racetrack-user-auth") => Known::UserAuth,
            23 if is("x-racetrack-fatman-auth") => Known::FatmanAuth,
            23 if is("x-racetrack-caller-type") => Known::CallerType,
            _ => Known::Other,
        }
    }

    /// Hop-by-hop (RFC 9110 §7.6.1): the connection's, not the message's. Framing headers are
    /// not: bodies are forwarded as framed.
    pub fn is_hop_by_hop(self) -> bool {
        matches!(self, Known::Connection | Known::Upgrade | Known::HopByHop)
    }
}

/// One header: where its name and value lie in the head, and what it is.
#[derive(Debug)]
struct Field {
    name: Range<usize>,
    value: Range<usize>,
    /// `name: value` as sent, without the line end.
    line: Range<usize>,
    known: Known,
}

/// One header of a [`Head`].
pub struct Header<'a> {
    pub known: Known,
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// `name: value` as sent, without the line end: copied whole when forwarded.
    pub line: &'a [u8],
}

/// A request or response head: the bytes as received and where each part lies in them.
#[derive(Debug)]
pub struct Head {
    raw: Bytes,
    /// Request: the method; response: empty.
    method: Range<usize>,
    /// Request: the target; response: the reason phrase.
    text: Range<usize>,
    pub status: u16,
    pub minor_version: u8,
    headers: Vec<Field>,
}

impl Head {
    /// Bytes in the head, through its empty line.
    pub fn size(&self) -> usize {
        self.raw.len()
    }

    pub fn method(&self) -> &[u8] {
        &self.raw[self.method.clone()]
    }

    pub fn target(&self) -> &[u8] {
        &self.raw[self.text.clone()]
    }

    pub fn reason(&self) -> &[u8] {
        &self.raw[self.text.clone()]
    }

    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.fields().map(|h| (h.name, h.value))
    }

    /// Every header with what it is.
    pub fn fields(&self) -> impl Iterator<Item = Header<'_>> {
        self.headers.iter().map(|f| Header {
            known: f.known,
            name: &self.raw[f.name.clone()],
            value: &self.raw[f.value.clone()],
            line: &self.raw[f.line.clone()],
        })
    }

    /// Every value of a recognised header.
    pub fn all_known(&self, known: Known) -> impl Iterator<Item = &[u8]> {
        self.headers
            .iter()
            .filter(move |f| f.known == known)
            .map(|f| &self.raw[f.value.clone()])
    }

    pub fn known(&self, known: Known) -> Option<&[u8]> {
        self.all_known(known).next()
    }

    /// Every value of a header (names compare case-insensitively).
    #[cfg(test)]
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.headers()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.headers()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// Whether a comma-separated list header (`Connection`, `Expect`) names `token`.
    pub fn has_token(&self, known: Known, token: &str) -> bool {
        self.all_known(known).any(|v| list_has(v, token))
    }

    /// Whether the sender wants the connection kept after this message.
    pub fn keep_alive(&self) -> bool {
        if self.has_token(Known::Connection, "close") {
            false
        } else {
            self.minor_version >= 1 || self.has_token(Known::Connection, "keep-alive")
        }
    }

    /// A request asking to switch protocols (WebSocket and the like).
    pub fn is_upgrade(&self) -> bool {
        self.known(Known::Upgrade).is_some() && self.has_token(Known::Connection, "upgrade")
    }

    /// Header names the `Connection` header lists beyond its own options: hop-by-hop too.
    pub fn connection_listed(&self) -> Vec<&[u8]> {
        self.all_known(Known::Connection)
            .flat_map(|v| v.split(|b| *b == b','))
            .map(<[u8]>::trim_ascii)
            .filter(|t| {
                !t.is_empty()
                    && !t.eq_ignore_ascii_case(b"keep-alive")
                    && !t.eq_ignore_ascii_case(b"close")
                    && !t.eq_ignore_ascii_case(b"upgrade")
            })
            .collect()
    }
}

pub fn list_has(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Where `part` (a slice the parser took from `base`) lies in `base`; an empty part anywhere.
fn span(base: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).wrapping_sub(base.as_ptr() as usize);
    match start.checked_add(part.len()) {
        Some(end) if !part.is_empty() && end <= base.len() => start..end,
        _ => 0..0,
    }
}

fn fields(base: &[u8], headers: &[httparse::Header<'_>]) -> Vec<Field> {
    headers
        .iter()
        .map(|h| {
            let name = span(base, h.name.as_bytes());
            let value = span(base, h.value);
            // An empty value's line is the name and its colon.
            let end = if value.is_empty() {
                name.end + 1
            } else {
                value.end
            };
            Field {
                line: name.start..end,
                name,
                value,
                known: Known::of(h.name.as_bytes()),
            }
        })
        .collect()
}

fn parse_error(e: httparse::Error) -> WireError {
    match e {
        httparse::Error::TooManyHeaders => WireError::TooManyHeaders,
        e => WireError::Malformed(e.to_string()),
    }
}

/// Takes a complete request head off the front of `buf`; `None` until it has all arrived.
pub fn parse_request(buf: &mut BytesMut) -> Result<Option<Head>, WireError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (len, method, target, minor_version, headers) = {
        let mut req = httparse::Request::new(&mut slots);
        let len = match req.parse(buf).map_err(parse_error)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let base: &[u8] = buf;
        let method = span(base, req.method.unwrap_or_default().as_bytes());
        let target = span(base, req.path.unwrap_or_default().as_bytes());
        let headers = fields(base, req.headers);
        (len, method, target, req.version.unwrap_or(1), headers)
    };
    Ok(Some(Head {
        raw: buf.split_to(len).freeze(),
        method,
        text: target,
        status: 0,
        minor_version,
        headers,
    }))
}

/// Takes a complete response head off the front of `buf`; `None` until it has all arrived.
pub fn parse_response(buf: &mut BytesMut) -> Result<Option<Head>, WireError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let (len, status, reason, minor_version, headers) = {
        let mut resp = httparse::Response::new(&mut slots);
        let len = match resp.parse(buf).map_err(parse_error)? {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => return Ok(None),
        };
        let base: &[u8] = buf;
        let reason = span(base, resp.reason.unwrap_or_default().as_bytes());
        let headers = fields(base, resp.headers);
        (
            len,
            resp.code.unwrap_or_default(),
            reason,
            resp.version.unwrap_or(1),
            headers,
        )
    };
    Ok(Some(Head {
        raw: buf.split_to(len).freeze(),
        method: 0..0,
        text: reason,
        status,
        minor_version,
        headers,
    }))
}

/// How a message's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Empty,
    Length(u64),
    Chunked,
    /// Until the sender closes (responses only).
    UntilClose,
}

/// A request's `Transfer-Encoding` is one header reading `chunked` and nothing else: several
/// headers, an empty one or a list are read differently by different servers (TE.TE smuggling),
/// and PUB re-encodes chunked bodies itself, so other codings have no meaning here.
fn request_chunked(head: &Head) -> Result<bool, WireError> {
    let mut values = head.all_known(Known::TransferEncoding);
    match (values.next(), values.next()) {
        (None, _) => Ok(false),
        (Some(v), None) if v.trim_ascii().eq_ignore_ascii_case(b"chunked") => Ok(true),
        _ => Err(WireError::Framing(
            "Transfer-Encoding must be one header reading chunked",
        )),
    }
}

/// `Some(true)`: chunked is the final coding; `Some(false)`: some other coding; `None`: absent.
fn transfer_coding(head: &Head) -> Option<bool> {
    let mut last: Option<&[u8]> = None;
    for v in head.all_known(Known::TransferEncoding) {
        for t in v.split(|b| *b == b',') {
            let t = t.trim_ascii();
            if !t.is_empty() {
                last = Some(t);
            }
        }
    }
    last.map(|t| t.eq_ignore_ascii_case(b"chunked"))
}

/// Every `Content-Length` value must be the same number (a list of equal values is tolerated).
fn content_length(head: &Head) -> Result<Option<u64>, WireError> {
    let mut found: Option<u64> = None;
    for v in head.all_known(Known::ContentLength) {
        for part in v.split(|b| *b == b',') {
            let part = part.trim_ascii();
            if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
                return Err(WireError::Framing("invalid Content-Length"));
            }
            let n = part.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if found.is_some_and(|f| f != n) {
                return Err(WireError::Framing("conflicting Content-Length values"));
            }
            found = Some(n);
        }
    }
    Ok(found)
}

/// Ambiguous requests are refused rather than guessed at: a proxy and its upstream reading one
/// request's length differently is how requests get smuggled. What is accepted here is what PUB
/// writes to the fatman itself (see `proxy::upstream_request_head`): the client's own framing
/// headers never travel on.
pub fn request_framing(head: &Head) -> Result<Framing, WireError> {
    let length = content_length(head)?;
    if head.all_known(Known::Host).nth(1).is_some() {
        return Err(WireError::Framing("more than one Host header"));
    }
    let chunked = request_chunked(head)?;
    match length {
        Some(_) if chunked => Err(WireError::Framing(
            "both Transfer-Encoding and Content-Length",
        )),
        _ if chunked && head.minor_version == 0 => Err(WireError::Framing(
            "Transfer-Encoding in an HTTP/1.0 request",
        )),
        _ if chunked => Ok(Framing::Chunked),
        None | Some(0) => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
    }
}

pub fn response_framing(head: &Head) -> Result<Framing, WireError> {
    if head.status < 200 || head.status == 204 || head.status == 304 {
        return Ok(Framing::Empty);
    }
    let length = content_length(head)?;
    match transfer_coding(head) {
        Some(_) if length.is_some() => Err(WireError::Framing(
            "both Transfer-Encoding and Content-Length",
        )),
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::UntilClose),
        None => Ok(match length {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => Framing::UntilClose,
        }),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Chunk {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    FinalLf,
    Done,
}

/// Follows a chunked body through the bytes as they arrive, to know where it ends. Strict:
/// CRLF line ends, at most 16 hex digits, bounded extensions and trailers.
#[derive(Debug, Default)]
pub struct ChunkedScanner {
    state: Chunk,
    size: u64,
    digits: u8,
    line: usize,
    trailers: usize,
}

impl ChunkedScanner {
    /// How many bytes of `data` belong to the body, and whether the body ends with them.
    pub fn scan(&mut self, data: &[u8]) -> Result<(usize, bool), WireError> {
        self.scan_into(data, None)
    }

    /// As [`ChunkedScanner::scan`], and with `canonical` the body found so far written again as
    /// plain chunks (sizes in hex, no extensions, no trailers): what the next hop reads is then
    /// what PUB wrote, not a copy of whatever syntax the sender chose.
    pub fn scan_into(
        &mut self,
        data: &[u8],
        mut canonical: Option<&mut Vec<u8>>,
    ) -> Result<(usize, bool), WireError> {
        let mut i = 0;
        while i < data.len() {
            if self.state == Chunk::Data {
                let take = self.size.min((data.len() - i) as u64);
                if let Some(out) = canonical.as_deref_mut() {
                    use std::io::Write as _;
                    let _ = write!(out, "{take:x}\r\n");
                    out.extend_from_slice(&data[i..i + take as usize]);
                    out.extend_from_slice(b"\r\n");
                }
                i += take as usize;
                self.size -= take;
                if self.size == 0 {
                    self.state = Chunk::DataCr;
                }
                continue;
            }
            let b = data[i];
            i += 1;
            self.state = match (self.state, b) {
                (Chunk::Size, b) if b.is_ascii_hexdigit() => {
                    if self.digits == 16 {
                        return Err(WireError::Chunked);
                    }
                    self.digits += 1;
                    self.size = self.size * 16 + u64::from(hex_value(b));
                    Chunk::Size
                }
                (Chunk::Size, b';' | b' ' | b'\t') if self.digits > 0 => {
                    self.line = 0;
                    Chunk::Extension
                }
                (Chunk::Size | Chunk::Extension, b'\r') if self.digits > 0 => Chunk::SizeLf,
                (Chunk::Extension, b) if b != b'\n' => {
                    self.line += 1;
                    if self.line > MAX_CHUNK_LINE {
                        return Err(WireError::Chunked);
                    }
                    Chunk::Extension
                }
                (Chunk::SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.size == 0 {
                        Chunk::TrailerStart
                    } else {
                        Chunk::Data
                    }
                }
                (Chunk::DataCr, b'\r') => Chunk::DataLf,
                (Chunk::DataLf, b'\n') => Chunk::Size,
                (Chunk::TrailerStart, b'\r') => Chunk::FinalLf,
                (Chunk::TrailerStart | Chunk::Trailer, b) if b != b'\n' => {
                    self.trailers += 1;
                    if self.trailers > MAX_TRAILERS {
                        return Err(WireError::Chunked);
                    }
                    if b == b'\r' {
                        Chunk::TrailerLf
                    } else {
                        Chunk::Trailer
                    }
                }
                (Chunk::TrailerLf, b'\n') => Chunk::TrailerStart,
                (Chunk::FinalLf, b'\n') => {
                    self.state = Chunk::Done;
                    if let Some(out) = canonical {
                        out.extend_from_slice(b"0\r\n\r\n");
                    }
                    return Ok((i, true));
                }
                _ => return Err(WireError::Chunked),
            };
        }
        Ok((i, self.state == Chunk::Done))
    }
}

fn hex_value(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

/// Which side of a copy failed: the difference between "the client went away" and "the fatman
/// broke" decides what PUB answers and whether a connection may be reused.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading: {0}")]
    Read(io::Error),
    #[error("the sender closed before the message ended")]
    Truncated,
    #[error("writing: {0}")]
    Write(io::Error),
    #[error(transparent)]
    Malformed(#[from] WireError),
}

/// Reads more into `buf` (at least [`READ_CHUNK`] of room); `Ok(0)` at end of stream.
pub async fn read_more<R: AsyncRead + Unpin>(src: &mut R, buf: &mut BytesMut) -> io::Result<usize> {
    buf.reserve(READ_CHUNK);
    src.read_buf(buf).await
}

/// Writes all of `bytes` and flushes: a no-op on TCP, but TLS streams hold written records
/// until flushed.
pub async fn send<W: AsyncWrite + Unpin>(dst: &mut W, bytes: &[u8]) -> io::Result<()> {
    dst.write_all(bytes).await?;
    dst.flush().await
}

/// How a body is copied from one hop to the next.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub framing: Framing,
    /// A chunked body is written again in plain chunks (requests: the fatman must read the body
    /// exactly as PUB did) rather than copied byte for byte (responses).
    pub rechunk: bool,
    /// Longest wait for the sender's next bytes (`None`: no limit, e.g. a stream of events).
    pub read_timeout: Option<Duration>,
    /// Longest wait for the receiver to take the next bytes.
    pub write_timeout: Option<Duration>,
}

#[cfg(test)]
impl Body {
    /// A body copied as framed, without deadlines.
    pub fn as_framed(framing: Framing) -> Body {
        Body {
            framing,
            rechunk: false,
            read_timeout: None,
            write_timeout: None,
        }
    }
}

/// [`send`] within `limit` (if any): a client that stops reading cannot hold a write for ever.
pub async fn send_within<W: AsyncWrite + Unpin>(
    dst: &mut W,
    bytes: &[u8],
    limit: Option<Duration>,
) -> io::Result<()> {
    within(limit, send(dst, bytes)).await
}

/// Waits at most `limit` (if any) for `io`: a peer that stops reading or sending cannot hold a
/// connection (and the fatman connection paired with it) for ever.
async fn within<T>(
    limit: Option<Duration>,
    io: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match limit {
        None => io.await,
        Some(limit) => match tokio::time::timeout(limit, io).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no progress within {limit:?}"),
            )),
        },
    }
}

/// Sends `head` and then a body read from `src` (starting with what `buf` already holds) to
/// `dst`, as it arrives. The head and whatever body has arrived leave in one write. Bytes after
/// the body stay in `buf` (a pipelined request, or garbage from an upstream).
pub async fn forward<R, W>(
    body: Body,
    mut head: Vec<u8>,
    src: &mut R,
    buf: &mut BytesMut,
    dst: &mut W,
) -> Result<(), CopyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let framing = body.framing;
    let mut scanner = ChunkedScanner::default();
    let mut canonical = Vec::new();
    let rechunk = body.rechunk && framing == Framing::Chunked;
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    loop {
        let (take, done) = match framing {
            Framing::Empty => (0, true),
            Framing::Length(_) => {
                let take = left.min(buf.len() as u64);
                left -= take;
                (take as usize, left == 0)
            }
            Framing::Chunked if rechunk => {
                canonical.clear();
                scanner.scan_into(buf, Some(&mut canonical))?
            }
            Framing::Chunked => scanner.scan(buf)?,
            Framing::UntilClose => (buf.len(), false),
        };
        let piece = if rechunk {
            &canonical[..]
        } else {
            &buf[..take]
        };
        if head.is_empty() {
            if !piece.is_empty() {
                send_within(dst, piece, body.write_timeout)
                    .await
                    .map_err(CopyError::Write)?;
            }
        } else {
            head.extend_from_slice(piece);
            send_within(dst, &head, body.write_timeout)
                .await
                .map_err(CopyError::Write)?;
            head = Vec::new();
        }
        buf.advance(take);
        if done {
            return Ok(());
        }
        match within(body.read_timeout, read_more(src, buf)).await {
            Ok(0) if framing == Framing::UntilClose => return Ok(()),
            Ok(0) => return Err(CopyError::Truncated),
            Ok(_) => {}
            Err(e) => return Err(CopyError::Read(e)),
        }
    }
}

/// Writes a head's headers except those `skip` rejects, as `name: value` lines.
pub fn copy_headers(out: &mut Vec<u8>, head: &Head, mut skip: impl FnMut(&[u8]) -> bool) {
    for (name, value) in head.headers() {
        if !skip(name) {
            put_header(out, name, value);
        }
    }
}

/// A header line as received.
pub fn put_line(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(line);
    out.extend_from_slice(b"\r\n");
}

pub fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Header values PUB makes from text (caller names, ids) must not break the head.
pub fn valid_value(v: &[u8]) -> bool {
    v.iter().all(|b| *b == b'\t' || (*b >= b' ' && *b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(raw: &str) -> Head {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_request(&mut buf).unwrap().unwrap()
    }

    #[test]
    fn heads_parse_in_place_and_leave_the_rest() {
        let mut buf = BytesMut::from(
            &b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nConnection: Keep-Alive, Upgrade\r\nUpgrade: ws\r\n\r\nbody"[..],
        );
        let head = parse_request(&mut buf).unwrap().unwrap();
        assert_eq!(head.method(), b"POST");
        assert_eq!(head.target(), b"/a?b=1");
        assert_eq!(head.get("HOST"), Some(&b"x"[..]));
        assert_eq!(head.known(Known::Host), Some(&b"x"[..]));
        let lines = request("GET / HTTP/1.1\r\nX-Empty:\r\nX-Spaced:   \r\nX-Tight:v\r\n\r\n");
        let lines: Vec<_> = lines
            .fields()
            .map(|h| (h.value.to_vec(), h.line.to_vec()))
            .collect();
        assert_eq!(
            lines,
            [
                (b"".to_vec(), b"X-Empty:".to_vec()),
                (b"".to_vec(), b"X-Spaced:".to_vec()),
                (b"v".to_vec(), b"X-Tight:v".to_vec())
            ]
        );
        assert!(head.is_upgrade() && head.keep_alive());
        assert_eq!(&buf[..], b"body");
        let mut partial = BytesMut::from(&b"GET / HTTP/1.1\r\nHost:"[..]);
        assert!(parse_request(&mut partial).unwrap().is_none());
        assert_eq!(partial.len(), 21, "a partial head is left where it was");
        assert!(parse_request(&mut BytesMut::from(&b"GET / NOPE\r\n\r\n"[..])).is_err());
        assert!(!request("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive());
        assert!(!request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive());
    }

    #[test]
    fn header_names_are_recognised_whatever_their_case() {
        for (name, known) in [
            ("Content-Length", Known::ContentLength),
            ("TRANSFER-ENCODING", Known::TransferEncoding),
            ("x-racetrack-fatman-auth", Known::FatmanAuth),
            ("X-Racetrack-Caller-Type", Known::CallerType),
            ("X-Racetrack-Caller", Known::Caller),
            ("Proxy-Authorization", Known::HopByHop),
            ("te", Known::HopByHop),
            ("x-racetrack-authx", Known::Other),
            ("content-lengtx", Known::Other),
        ] {
            assert_eq!(Known::of(name.as_bytes()), known, "{name}");
        }
    }

    #[test]
    fn ambiguous_request_lengths_are_refused() {
        let framing = |h: &str| request_framing(&request(&format!("POST / HTTP/1.1\r\n{h}\r\n")));
        assert_eq!(framing("").unwrap(), Framing::Empty);
        assert_eq!(
            framing("Content-Length: 5\r\n").unwrap(),
            Framing::Length(5)
        );
        assert_eq!(
            framing("Content-Length: 5\r\nContent-Length: 5\r\n").unwrap(),
            Framing::Length(5)
        );
        assert_eq!(
            framing("Transfer-Encoding:  Chunked \r\n").unwrap(),
            Framing::Chunked
        );
        for bad in [
            // TE.TE: codings that some servers skip, lists, repeats, empties.
            "Transfer-Encoding: gzip, chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n",
            "Transfer-Encoding:\r\n",
            "Transfer-Encoding: chunked, identity\r\n",
            "Transfer-Encoding: xchunked\r\n",
            "Transfer-Encoding: \"chunked\"\r\n",
            "Host: a\r\nHost: b\r\n",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 5x\r\n",
            "Content-Length: 99999999999999999999\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "Transfer-Encoding: chunked, gzip\r\n",
        ] {
            assert!(framing(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn response_lengths() {
        let framing = |raw: &str| {
            let mut buf = BytesMut::from(raw.as_bytes());
            response_framing(&parse_response(&mut buf).unwrap().unwrap())
        };
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n").unwrap(),
            Framing::Empty
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\n\r\n").unwrap(),
            Framing::UntilClose
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n").unwrap(),
            Framing::Length(2)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap(),
            Framing::Chunked
        );
    }

    #[test]
    fn chunked_bodies_end_where_they_end_however_they_arrive() {
        let body = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT";
        let end = body.len() - 4;
        for split in 0..end {
            let mut s = ChunkedScanner::default();
            let (a, done) = s.scan(&body[..split]).unwrap();
            assert_eq!(a, split);
            assert!(!done);
            let (b, done) = s.scan(&body[split..]).unwrap();
            assert!(done);
            assert_eq!(split + b, end, "split at {split}");
        }
        let mut s = ChunkedScanner::default();
        assert_eq!(s.scan(b"0\r\n\r\n").unwrap(), (5, true));
        for bad in [
            &b"x\r\n"[..],
            b"4\nWiki",
            b"4\r\nWikiX",
            b"11111111111111111\r\n",
            b"\r\n",
        ] {
            assert!(ChunkedScanner::default().scan(bad).is_err(), "{bad:?}");
        }
    }

    /// Mangled heads and bodies give errors or partial results, never a panic.
    #[test]
    fn mangled_input_never_panics() {
        let seeds: [&[u8]; 3] = [
            b"POST /pub/fatman/a/1/x?y HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: keep-alive, x\r\nX-E:\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nLocation: http://x\r\n\r\n",
            b"5;e\r\nhello\r\n0\r\nT: 1\r\n\r\n",
        ];
        // xorshift: deterministic, no dependency.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let mut input = seeds[round % seeds.len()].to_vec();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % (input.len() + 1);
                match next() % 3 {
                    0 if at < input.len() => input[at] = next() as u8,
                    1 => input.insert(
                        at,
                        [b'\r', b'\n', b':', b',', b' ', b'0', 0xff][next() as usize % 7],
                    ),
                    _ => input.truncate(at),
                }
            }
            if let Ok(Some(h)) = parse_request(&mut BytesMut::from(&input[..])) {
                let _ = (
                    request_framing(&h),
                    h.keep_alive(),
                    h.is_upgrade(),
                    h.connection_listed(),
                );
                let _: Vec<_> = h.fields().map(|f| f.line.len()).collect();
            }
            if let Ok(Some(h)) = parse_response(&mut BytesMut::from(&input[..])) {
                let _ = response_framing(&h);
            }
            let _ = ChunkedScanner::default().scan(&input);
        }
    }

    #[tokio::test]
    async fn forwarding_keeps_what_follows_the_body() {
        let mut buf = BytesMut::from(&b"hel"[..]);
        let (mut src, mut feed) = tokio::io::duplex(64);
        feed.write_all(b"lo world").await.unwrap();
        let mut out = Vec::new();
        forward(
            Body::as_framed(Framing::Length(5)),
            b"HEAD\r\n".to_vec(),
            &mut src,
            &mut buf,
            &mut out,
        )
        .await
        .unwrap();
        assert_eq!(out, b"HEAD\r\nhello");
        assert_eq!(&buf[..], b" world");
        drop(feed);
        let mut buf = BytesMut::from(&b"ab"[..]);
        let err = forward(
            Body::as_framed(Framing::Length(5)),
            Vec::new(),
            &mut src,
            &mut buf,
            &mut Vec::new(),
        )
        .await;
        assert!(matches!(err, Err(CopyError::Truncated)), "{err:?}");
    }
}
