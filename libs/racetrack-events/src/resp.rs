//! The sliver of RESP2 this crate needs: commands out, simple replies and pub/sub pushes in.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::EventError;

/// A value a Redis server sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Frame>),
}

/// Bulk strings above this are refused: pub/sub payloads here are tiny, and a confused or hostile
/// peer must not make us allocate gigabytes.
const MAX_LEN: usize = 1 << 20;

/// Longest line (type byte, simple string or length, CRLF); checked while reading, so a line that
/// never ends is cut off instead of buffered.
const MAX_LINE: usize = 64 * 1024;

/// Replies and pushes we read have at most a handful of items (`message`, channel, payload);
/// anything larger or deeper is a broken or hostile peer.
const MAX_ARRAY: usize = 1024;
const MAX_DEPTH: usize = 8;

pub fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for p in parts {
        out.extend_from_slice(format!("${}\r\n", p.len()).as_bytes());
        out.extend_from_slice(p);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn parse_len(line: &str) -> Result<i64, EventError> {
    line.parse()
        .map_err(|_| EventError::Protocol(format!("bad length {line:?}")))
}

/// One CRLF-terminated line, never more than [`MAX_LINE`] bytes buffered.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<String, EventError> {
    let mut line = Vec::new();
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Err(EventError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        let (taken, done) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (at + 1, true),
            None => (available.len(), false),
        };
        if line.len() + taken > MAX_LINE {
            return Err(EventError::Protocol(format!(
                "line longer than {MAX_LINE} bytes"
            )));
        }
        line.extend_from_slice(&available[..taken]);
        r.consume(taken);
        if done {
            break;
        }
    }
    let line =
        String::from_utf8(line).map_err(|_| EventError::Protocol("line is not UTF-8".into()))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Reads one frame (arrays nest one level deep at most in what we receive; deeper is still fine).
pub async fn read_frame<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Frame, EventError> {
    let mut pending: Vec<(Vec<Frame>, usize)> = Vec::new();
    loop {
        let line = read_line(r).await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        let frame = match kind {
            "+" => Frame::Simple(rest.to_string()),
            "-" => Frame::Error(rest.to_string()),
            ":" => Frame::Integer(parse_len(rest)?),
            "$" => {
                let len = parse_len(rest)?;
                if len < 0 {
                    Frame::Bulk(None)
                } else {
                    let len = len as usize;
                    if len > MAX_LEN {
                        return Err(EventError::Protocol(format!("bulk of {len} bytes")));
                    }
                    let mut buf = vec![0; len + 2];
                    r.read_exact(&mut buf).await?;
                    buf.truncate(len);
                    Frame::Bulk(Some(buf))
                }
            }
            "*" => {
                let len = parse_len(rest)?;
                if len > MAX_ARRAY as i64 {
                    return Err(EventError::Protocol(format!("array of {len} items")));
                }
                if len <= 0 {
                    Frame::Array(Vec::new())
                } else if pending.len() >= MAX_DEPTH {
                    return Err(EventError::Protocol(format!(
                        "arrays nested deeper than {MAX_DEPTH}"
                    )));
                } else {
                    // Reserve for what has arrived, not for what the peer announces.
                    pending.push((Vec::with_capacity((len as usize).min(8)), len as usize));
                    continue;
                }
            }
            _ => return Err(EventError::Protocol(format!("unexpected line {line:?}"))),
        };
        // Fold the finished frame into the arrays waiting for it.
        let mut done = frame;
        loop {
            match pending.last_mut() {
                None => return Ok(done),
                Some((items, want)) => {
                    items.push(done);
                    if items.len() < *want {
                        break;
                    }
                    let (items, _) = pending.pop().expect("checked above");
                    done = Frame::Array(items);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Frame, EventError> {
        let mut r = tokio::io::BufReader::new(bytes);
        read_frame(&mut r).await
    }

    #[tokio::test]
    async fn frames() {
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Frame::Simple("OK".into()));
        assert_eq!(parse(b":3\r\n").await.unwrap(), Frame::Integer(3));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Frame::Bulk(None));
        assert_eq!(
            parse(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nab\r\n\r\n")
                .await
                .unwrap(),
            Frame::Array(vec![
                Frame::Bulk(Some(b"message".to_vec())),
                Frame::Bulk(Some(b"ch".to_vec())),
                Frame::Bulk(Some(b"ab\r\n".to_vec())),
            ])
        );
        assert_eq!(
            parse(b"*2\r\n*1\r\n:1\r\n+x\r\n").await.unwrap(),
            Frame::Array(vec![
                Frame::Array(vec![Frame::Integer(1)]),
                Frame::Simple("x".into())
            ])
        );
        assert!(parse(b"?what\r\n").await.is_err());
        assert!(parse(b"$99999999\r\n").await.is_err());
        assert!(parse(b"*2\r\n:1\r\n").await.is_err(), "truncated array");
        assert!(parse(b"*2000000000\r\n").await.is_err());
        assert!(parse(&b"*1\r\n".repeat(MAX_DEPTH + 1)).await.is_err());
        let mut long = b"+".to_vec();
        long.resize(MAX_LINE + 1, b'a');
        long.extend_from_slice(b"\r\n");
        assert!(parse(&long).await.is_err(), "line too long");
    }

    #[test]
    fn commands_are_bulk_arrays() {
        assert_eq!(
            command(&[b"PUBLISH", b"c", b"{}"]),
            b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\n{}\r\n".to_vec()
        );
    }
}
