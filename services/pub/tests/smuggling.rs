//! Request smuggling through PUB (issue 10, items 1 to 3), performed over raw sockets against a
//! real PUB in front of a recording fatman: the differential harness of tests/differential runs
//! the known smuggling families, a bounded deterministic mutation of them, and every input a
//! fuzzer ever failed on. How to run it and the fuzzers: docs/security-testing.md.

mod common;
mod differential;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use differential::{corpus, mutate, parsers, Differential, Rng};

/// Mutated inputs per run (`SMUGGLING_MUTATIONS` overrides), stopped early at the time budget so
/// CI on two cores stays bounded.
const MUTATIONS: usize = 400;
const MUTATION_BUDGET: Duration = Duration::from_secs(40);

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Every file in `fuzz/<kind>/<target>/`, sorted by name.
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let Ok(dir) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = dir
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn fail_with(failures: &[String], of: usize) {
    assert!(
        failures.is_empty(),
        "{} of {of} inputs broke a property:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The reproduced attack: `Connection: Content-Length` on a token-free probe, with a whole
/// `POST .../api/v1/perform` claiming `X-Racetrack-Caller: admin` as its body. The fatman must
/// see one probe with that body, or nothing; never the inner call, and the next caller gets
/// its own answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_named_content_length_smuggles_no_request() {
    let mut d = Differential::start().await;
    let attack = differential::connection_content_length_attack();
    if let Err(report) = d.check(&attack).await {
        panic!("{report}");
    }
    // Once more on a connection whose upstream PUB has pooled for an earlier call.
    let mut pooled = b"GET /pub/fatman/echo/latest/api/v1/perform HTTP/1.1\r\nHost: pub.test\r\nX-Racetrack-Auth: good\r\n\r\n".to_vec();
    pooled.extend_from_slice(&attack);
    if let Err(report) = d.check(&pooled).await {
        panic!("{report}");
    }
}

/// Every family of the corpus: CL.TE, TE.CL, TE.TE with obfuscated codings, Connection-listed
/// framing headers, duplicate, empty and odd-case headers, bare LF, obs-fold, absolute-form,
/// 100-continue, pipelining, chunk extensions and sizes, trailers, probe-path tricks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_corpus_holds_every_property() {
    let mut d = Differential::start().await;
    let corpus = corpus();
    let mut failures = Vec::new();
    for (name, input) in &corpus {
        if let Err(report) = d.check(input).await {
            failures.push(format!("[{name}] {report}"));
        }
    }
    fail_with(&failures, corpus.len());
}

/// Seeded mutations of the corpus around header boundaries (line ends, duplicated and inserted
/// header lines, case, whitespace at colons, numbers nudged, requests appended).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_corpus_holds_every_property() {
    let mut d = Differential::start().await;
    let corpus = corpus();
    let count = std::env::var("SMUGGLING_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTATIONS);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut ran = 0;
    for i in 0..count {
        let (name, seed) = &corpus[rng.next() as usize % corpus.len()];
        let input = mutate(seed, &mut rng, &corpus);
        ran += 1;
        if let Err(report) = d.check(&input).await {
            failures.push(format!("[mutation {i} of {name}] {report}"));
        }
        if start.elapsed() > MUTATION_BUDGET {
            break;
        }
    }
    println!("{ran} mutated inputs in {:?}", start.elapsed());
    fail_with(&failures, ran);
}

/// Inputs the `pub_differential` fuzzer failed on, kept as they were found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn differential_fuzz_findings_stay_fixed() {
    let found = inputs("regressions", "pub_differential");
    let mut d = Differential::start().await;
    let mut failures = Vec::new();
    for (name, input) in &found {
        if let Err(report) = d.check(input).await {
            failures.push(format!("[{name}] {report}"));
        }
    }
    fail_with(&failures, found.len());
}

/// The parser fuzz targets' properties over their seeds and every input they failed on.
#[test]
fn parser_fuzz_seeds_and_findings_hold() {
    let mut failures = Vec::new();
    let mut ran = 0;
    // Each broken property is reported below, with its input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    for (target, property) in parsers::TARGETS {
        for kind in ["corpus", "regressions"] {
            for (name, input) in inputs(kind, target) {
                ran += 1;
                let outcome = std::panic::catch_unwind(|| property(&input));
                if let Err(panic) = outcome {
                    let why = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures.push(format!(
                        "[{target} {kind}/{name}] {:?}: {why}",
                        input.escape_ascii().to_string()
                    ));
                }
            }
        }
    }
    std::panic::set_hook(hook);
    assert!(ran > 0, "no fuzz seeds found under {:?}", fuzz_dir());
    fail_with(&failures, ran);
}

/// The harness's own readers: what they must make of plain, ambiguous and hostile bytes (so a
/// property that passes is not a reader that saw nothing).
#[test]
fn the_reference_readers_read_what_they_should() {
    use differential::{split_requests, Stop};
    let (msgs, stop) = split_requests(&differential::connection_content_length_attack());
    assert_eq!((msgs.len(), stop), (1, None));
    assert!(msgs[0]
        .req
        .body
        .starts_with(b"POST /pub/fatman/echo/latest/api/v1/perform"));
    assert_eq!(msgs[0].problems, ["Connection names \"Content-Length\""]);
    let (msgs, stop) = split_requests(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2;x\r\nab\r\n0\r\nT: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\nGET");
    assert_eq!(msgs.len(), 2);
    assert_eq!(
        (msgs[0].req.body.as_slice(), msgs[1].req.target.as_slice()),
        (&b"ab"[..], &b"/b"[..])
    );
    assert_eq!(stop, Some(Stop::Unfinished));
    for ambiguous in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +2\r\n\r\n",
    ] {
        assert!(matches!(split_requests(ambiguous).1, Some(Stop::Refused(_))), "{ambiguous:?}");
    }
    assert_eq!(
        parsers::lenient_segments(b"/live/..;/api\\v1/%2e/perform;x"),
        [&b"api"[..], b"v1", b"perform"]
    );
}

/// Writes the corpus as fuzz seeds (`fuzz/corpus/<target>/`); run by hand after changing it:
/// `cargo nextest run -p pub --test smuggling --run-ignored only export_fuzz_seeds`.
#[test]
#[ignore]
fn export_fuzz_seeds() {
    let corpus = corpus();
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    for (name, input) in &corpus {
        write("pub_differential", name, input);
        write("head_parser", name, input);
        // The body after the first head: the chunked seeds.
        if let Some(at) = input.windows(4).position(|w| w == b"\r\n\r\n") {
            let body = &input[at + 4..];
            if body.windows(2).any(|w| w == b"\r\n") {
                write("chunked_scanner", name, body);
            }
        }
        // The request target: the path seeds.
        if let Some(target) = input.split(|b| *b == b' ').nth(1) {
            if target.starts_with(b"/") || target.starts_with(b"http") {
                write("path_normaliser", name, target);
            }
        }
    }
    for (name, head) in [
        (
            "response_chunked",
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"[..],
        ),
        (
            "response_length",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok",
        ),
        (
            "response_no_content",
            b"HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n",
        ),
    ] {
        write("head_parser", name, head);
    }
}
