//! What the user reads: log lines for people on stderr (timestamped like the original's, coloured
//! on a terminal), payloads (tables, logs, JSON, YAML) on stdout so they can be piped.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::ProgressBar;

static VERBOSE: AtomicBool = AtomicBool::new(false);
/// While a spinner is drawn, log lines go through it so they don't tear its line.
static SPINNER: Mutex<Option<ProgressBar>> = Mutex::new(None);

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned tables and plain text for people.
    Table,
    Json,
    Yaml,
}

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn set_spinner(bar: Option<ProgressBar>) {
    if let Ok(mut slot) = SPINNER.lock() {
        *slot = bar;
    }
}

#[derive(Clone, Copy)]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

fn log(level: Level, message: &str) {
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (tag, code) = match level {
        Level::Debug => ("DEBUG", "32"),
        Level::Info => ("INFO ", "34"),
        Level::Warn => ("WARN ", "33"),
        Level::Error => ("ERROR", "1;31"),
    };
    let time = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
    let line = if colour {
        format!("\x1b[2m[{time}]\x1b[0m \x1b[{code}m{tag}\x1b[0m {message}")
    } else {
        format!("[{time}] {tag} {message}")
    };
    if let Ok(slot) = SPINNER.lock() {
        if let Some(bar) = slot.as_ref() {
            bar.println(line);
            return;
        }
    }
    let _ = writeln!(std::io::stderr(), "{line}");
}

pub fn debug(message: &str) {
    if VERBOSE.load(Ordering::Relaxed) {
        log(Level::Debug, message);
    }
}

pub fn info(message: &str) {
    log(Level::Info, message);
}

pub fn warn(message: &str) {
    log(Level::Warn, message);
}

pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Raw text on stdout (logs, tables); a trailing newline is added when missing.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.is_empty() && !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// A value for scripts in the chosen format; `None` when the format is for people.
pub fn structured(format: Format, value: &serde_json::Value) -> Option<String> {
    match format {
        Format::Table => None,
        Format::Json => Some(serde_json::to_string_pretty(value).unwrap_or_default()),
        Format::Yaml => Some(serde_yaml::to_string(value).unwrap_or_default()),
    }
}

/// Columns left-aligned, each as wide as its widest cell, joined by three spaces (the original's
/// `list` layout); trailing spaces trimmed.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |i: usize| {
        rows.iter()
            .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("   ").trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    for r in rows {
        out.push(line(r.iter().map(String::as_str).collect()));
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["NAME", "VERSION", "STATUS"],
            &[
                vec!["adder".into(), "0.0.1".into(), "RUNNING".into()],
                vec!["a-much-longer-name".into(), "10.2.3".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "NAME                 VERSION   STATUS\nadder                0.0.1     RUNNING\na-much-longer-name   10.2.3\n"
        );
    }
}
