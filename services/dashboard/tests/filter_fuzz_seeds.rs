//! Replays the portfolio filter fuzzer's seeds and every finding kept under
//! `fuzz/regressions/portfolio_filter/` through the same properties the fuzzer checks
//! (docs/security-testing.md), so a fixed finding stays fixed without running the fuzzer.

use std::path::Path;

#[test]
fn portfolio_filter_seeds_and_findings_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["corpus/portfolio_filter", "regressions/portfolio_filter"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in entries.flatten() {
            let data = std::fs::read(entry.path()).unwrap();
            dashboard::portfolio::filter::check_properties(&data);
            replayed += 1;
        }
    }
    assert!(
        replayed >= 10,
        "only {replayed} seeds found under {}",
        root.display()
    );
}
