//! The differential harness of tests/smuggling.rs on fuzzer-made inputs: one PUB, fake Lifecycle
//! and recording fatman for the whole run, every property checked per input (`{MARK}` in an input
//! is replaced by the attacker's mark, as in the corpus).
#![no_main]

use std::sync::{Mutex, OnceLock};

#[path = "../../tests/common/mod.rs"]
mod common;
#[path = "../../tests/differential/mod.rs"]
#[allow(dead_code)]
mod differential;

/// Larger inputs only slow the run; the families fit in far less.
const MAX_INPUT: usize = 16 * 1024;

struct State {
    runtime: tokio::runtime::Runtime,
    harness: Mutex<differential::Differential>,
}

static STATE: OnceLock<State> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let state = STATE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let harness = Mutex::new(runtime.block_on(differential::Differential::start()));
        State { runtime, harness }
    });
    let mut harness = state.harness.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(report) = state.runtime.block_on(harness.check(data)) {
        panic!("{report}");
    }
});
