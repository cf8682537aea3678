//! Scopes and statuses are enums, not strings: no quoted wire name of an `AuthScope`,
//! `FatmanStatus` or `DeploymentStatus` variant may appear in the workspace's non-test sources
//! outside the file defining its enum (docs/architecture.md, "Where each concept lives").
//! Serialisation keeps the wire names (serde renames), so JSON stays the same without them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use racetrack_model::{AuthScope, DeploymentStatus, FatmanStatus};

/// Files whose same-looking literals belong to another vocabulary: (path from the workspace
/// root, literal, why).
const OTHER_VOCABULARIES: &[(&str, &str, &str)] = &[
    (
        "libs/racetrack-infra/src/lib.rs",
        "running",
        "InfraStatus: a container's state, not the registry's",
    ),
    (
        "libs/racetrack-infra/src/lib.rs",
        "error",
        "InfraStatus: a container's state, not the registry's",
    ),
    (
        "services/pub/src/access.rs",
        "error",
        "a metric label for failed Lifecycle calls",
    ),
    (
        "services/lifecycle-supervisor/src/sync.rs",
        "failed",
        "a metric label for failed sync runs",
    ),
    (
        "services/lifecycle-supervisor/src/leader.rs",
        "lost",
        "a metric label for lost leadership",
    ),
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("libs/racetrack-model sits two levels below the workspace root")
        .to_path_buf()
}

/// Every `.rs` file under a `src` directory of the workspace (build output and fuzz targets
/// aside).
fn source_files(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, in_src: bool, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().to_string();
            if path.is_dir() {
                if matches!(name.as_str(), "target" | "fuzz" | "node_modules")
                    || name.starts_with('.')
                {
                    continue;
                }
                walk(&path, in_src || name == "src", out);
            } else if in_src && name.ends_with(".rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, false, &mut out);
    out.sort();
    out
}

/// The lines of `text` that are not test code: items after `#[cfg(test)]` are skipped up to their
/// closing brace, comments are dropped.
fn non_test_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut skipping = false;
    let mut depth: i64 = 0;
    let mut opened = false;
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        if !skipping && line.trim_start().starts_with("#[cfg(test)]") {
            skipping = true;
            depth = 0;
            opened = false;
            continue;
        }
        if skipping {
            for c in code.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            // A braced item ends when its braces balance; a one-line item (`use`, `fn;`) at `;`.
            if (opened && depth <= 0) || (!opened && code.trim_end().ends_with(';')) {
                skipping = false;
            }
            continue;
        }
        out.push((i + 1, code.to_string()));
    }
    out
}

/// Occurrences of `"word"` in `code` that are not a JSON/map key (`"error": ...`) or a key
/// lookup (`.get("error")`).
fn uses(code: &str, word: &str) -> usize {
    let quoted = format!("\"{word}\"");
    code.match_indices(&quoted)
        .filter(|(at, _)| {
            let after = code[at + quoted.len()..].trim_start();
            let is_key = after.starts_with(':') && !after.starts_with("::");
            let is_lookup = code[..*at].ends_with("get(");
            !is_key && !is_lookup
        })
        .count()
}

/// Files that are test modules of another source file (`#[cfg(test)]` then `#[path = "x.rs"]`):
/// test code, like an inline `#[cfg(test)] mod tests`.
fn test_module_files(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        for (i, line) in lines.iter().enumerate() {
            if *line != "#[cfg(test)]" {
                continue;
            }
            for next in lines.iter().skip(i + 1).take(2) {
                if let Some(rest) = next.strip_prefix("#[path = \"") {
                    if let (Some(name), Some(dir)) = (rest.split('"').next(), file.parent()) {
                        out.push(dir.join(name));
                    }
                }
            }
        }
    }
    out
}

#[test]
fn scope_and_status_names_live_only_in_their_enums() {
    let root = workspace_root();
    let mut words: Vec<(&'static str, &'static str)> = Vec::new();
    for s in AuthScope::ALL {
        words.push((s.as_str(), "libs/racetrack-model/src/scope.rs"));
    }
    for s in FatmanStatus::ALL {
        words.push((s.as_str(), "libs/racetrack-model/src/status.rs"));
    }
    for s in DeploymentStatus::ALL {
        words.push((s.as_str(), "libs/racetrack-model/src/status.rs"));
    }
    let files = source_files(&root);
    assert!(
        files.len() > 50,
        "the scan found only {} source files under {}",
        files.len(),
        root.display()
    );
    let test_modules = test_module_files(&files);
    let mut found = String::new();
    for file in files.iter().filter(|f| !test_modules.contains(*f)) {
        let rel = file
            .strip_prefix(&root)
            .unwrap_or(file)
            .to_string_lossy()
            .replace('\\', "/");
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (line_no, code) in non_test_lines(&text) {
            for (word, home) in &words {
                if rel == *home
                    || OTHER_VOCABULARIES
                        .iter()
                        .any(|(path, w, _)| *path == rel && w == word)
                {
                    continue;
                }
                if uses(&code, word) > 0 {
                    let _ = writeln!(found, "{rel}:{line_no}: \"{word}\": {}", code.trim());
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "use the racetrack_model enum instead of its wire name:\n{found}"
    );
}

#[test]
fn the_scan_sees_what_it_must_and_skips_what_it_may() {
    let text = "fn a() { let s = \"running\"; }\n#[cfg(test)]\nmod tests {\n    fn b() { \"lost\" }\n}\nfn c() { json!({\"error\": 1}); x.get(\"error\"); } // \"done\"\n";
    let lines = non_test_lines(text);
    let all: String = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(uses(&all, "running"), 1);
    assert_eq!(uses(&all, "lost"), 0, "test modules are skipped");
    assert_eq!(
        uses(&all, "error"),
        0,
        "JSON keys and lookups are not statuses"
    );
    assert_eq!(uses(&all, "done"), 0, "comments are skipped");
    assert_eq!(lines.last().map(|(n, _)| *n), Some(6));
}
