//! The property lives in tests/differential/parsers.rs, shared with the regression test that
//! replays this target's seeds and findings (tests/smuggling.rs).
#![no_main]

#[path = "../../tests/differential/parsers.rs"]
#[allow(dead_code)]
mod parsers;

libfuzzer_sys::fuzz_target!(|data: &[u8]| parsers::chunked_scanner(data));
