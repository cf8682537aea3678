//! A fake OTLP/gRPC collector for the export tests.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// Accepts one connection on a free loopback port, records the bytes the
/// exporter sends until `needle` shows up (or 10 s pass), then hangs up so
/// the export fails fast. Returns the endpoint URL and the receiver of the
/// recorded bytes.
pub fn fake_collector(needle: &'static [u8]) -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Server connection preface: an empty SETTINGS frame.
        let _ = stream.write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        let mut received = Vec::new();
        let mut buf = [0u8; 4096];
        while !contains(&received, needle) && received.len() < 1 << 20 {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(received);
    });
    (format!("http://127.0.0.1:{port}"), rx)
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

pub const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
