//! Per-column filter expressions of the portfolio table.
//!
//! Users of the original dashboard learned a small filter language (`>30`, `!lost`, `rgx:^a`,
//! `a || b`, ...) from its table widget, and operators keep saved habits, so this module
//! reproduces that widget's semantics, quirks included (docs/architecture.md, "Dashboard:
//! portfolio filters and purge score"). It is our own parser, so it can be used server-side and
//! tested; the page may still filter in the browser.
//!
//! Choices where the original is silent or cannot be copied as is:
//! - An expression is parsed once ([`ColumnFilter::parse`]) and then matched against many cells.
//!   Bad input is reported as a [`FilterError`] instead of silently matching nothing (the widget
//!   hid every row on an invalid regex), so the page can tell the user what is wrong. There is no
//!   "unknown operator" error: in this language any text that is not an operator is a substring.
//! - `rgx:` patterns use the `regex` crate's syntax (no look-around or back-references) and are
//!   bounded in compiled size, so a user-supplied pattern cannot exhaust memory; the expression
//!   itself is bounded by [`MAX_FILTER_LEN`].
//! - Dates are read as RFC 3339 / ISO-8601, `YYYY-MM-DD[ HH:MM[:SS]]` or `YYYY-MM-DDTHH:MM[:SS]`;
//!   times without an offset are taken as UTC. Like the widget, dates are equal when they agree
//!   to the second.
//! - Numbers print as JavaScript prints them for the usual range; very large or tiny magnitudes
//!   print in Rust's style (no exponent), which only matters for the default substring test on
//!   number columns.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use regex::{Regex, RegexBuilder};

/// Longest filter expression accepted, in bytes: far above any hand-typed filter, small enough
/// that parsing and matching stay cheap on every row.
pub const MAX_FILTER_LEN: usize = 1024;

/// Compiled-size bound of an `rgx:` pattern (and of its lazy DFA cache).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// How a column's cells are read by its filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Text,
    /// Text cells holding numbers: the operator-less filter also compares numerically.
    Number,
    /// Cells holding timestamps: comparisons and equality compare dates.
    Date,
    /// A column without a filter box.
    Unfiltered,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("filter is {len} bytes long; at most {max} bytes are allowed")]
    TooLong { len: usize, max: usize },
    #[error("invalid regular expression '{pattern}': {reason}")]
    InvalidRegex { pattern: String, reason: String },
    #[error("regular expression '{pattern}' is too large (compiled size limit is {limit} bytes)")]
    RegexTooLarge { pattern: String, limit: usize },
    #[error("column {column} does not exist (the table has {count} columns)")]
    UnknownColumn { column: usize, count: usize },
    #[error("column {column} cannot be filtered")]
    NotFilterable { column: usize },
}

/// One parsed column filter.
#[derive(Debug, Clone)]
pub struct ColumnFilter {
    column_type: ColumnType,
    combine: Combine,
}

#[derive(Debug, Clone)]
enum Combine {
    /// An empty filter box: every cell matches.
    Everything,
    Single(Term),
    /// `||`: any term matching is enough.
    Any(Vec<Term>),
    /// `&&`: every term has to match.
    All(Vec<Term>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateOp {
    Le,
    Lt,
    Ge,
    Gt,
    Ne,
    Eq,
}

#[derive(Debug, Clone)]
enum Term {
    Regex(Regex),
    Le(f64),
    Ge(f64),
    Lt(f64),
    Gt(f64),
    NotContains(String),
    Contains(String),
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Empty,
    NonEmpty,
    /// No operator. `number` is the term read as a number (0 when it holds none).
    Plain {
        text: String,
        number: f64,
    },
    Date(DateOp, DateTime<Utc>),
}

const OR: &str = "||";
const AND: &str = "&&";

impl ColumnFilter {
    /// Parses the text of one filter box for a column of `column_type`.
    pub fn parse(expr: &str, column_type: ColumnType) -> Result<ColumnFilter, FilterError> {
        if expr.len() > MAX_FILTER_LEN {
            return Err(FilterError::TooLong {
                len: expr.len(),
                max: MAX_FILTER_LEN,
            });
        }
        let value = expr.trim().to_lowercase();
        let parse_term = |t: &str| Term::parse(t.trim(), column_type);
        let combine = if value.is_empty() {
            Combine::Everything
        } else if value.contains(OR) {
            let parts: Vec<&str> = value.split(OR).collect();
            if value.contains(AND) {
                // The widget's loop stops after the first `||` part whatever its result when
                // both separators are present; that part (`&&` included) alone decides.
                Combine::Single(parse_term(parts.first().copied().unwrap_or_default())?)
            } else {
                Combine::Any(
                    parts
                        .into_iter()
                        .map(parse_term)
                        .collect::<Result<_, _>>()?,
                )
            }
        } else if value.contains(AND) {
            Combine::All(value.split(AND).map(parse_term).collect::<Result<_, _>>()?)
        } else {
            Combine::Single(parse_term(&value)?)
        };
        Ok(ColumnFilter {
            column_type,
            combine,
        })
    }

    /// Whether the filter box was empty (the column then restricts nothing).
    pub fn is_empty(&self) -> bool {
        matches!(self.combine, Combine::Everything)
    }

    /// Whether a cell with this text passes the filter.
    pub fn matches(&self, cell: &str) -> bool {
        let cell = Cell::new(cell);
        let ty = self.column_type;
        match &self.combine {
            Combine::Everything => true,
            Combine::Single(term) => term.matches(&cell, ty),
            Combine::Any(terms) => terms.iter().any(|t| t.matches(&cell, ty)),
            Combine::All(terms) => terms.iter().all(|t| t.matches(&cell, ty)),
        }
    }
}

/// The filters of a whole table: a row is shown only if every column's filter passes.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    columns: Vec<(usize, ColumnFilter)>,
}

impl RowFilter {
    /// `columns` are the table's column types; `exprs` the non-blank filter boxes by column index.
    pub fn parse(
        columns: &[ColumnType],
        exprs: &[(usize, &str)],
    ) -> Result<RowFilter, FilterError> {
        let mut parsed = Vec::with_capacity(exprs.len());
        for &(column, expr) in exprs {
            let ty = *columns.get(column).ok_or(FilterError::UnknownColumn {
                column,
                count: columns.len(),
            })?;
            if ty == ColumnType::Unfiltered {
                return Err(FilterError::NotFilterable { column });
            }
            let filter = ColumnFilter::parse(expr, ty)?;
            if !filter.is_empty() {
                parsed.push((column, filter));
            }
        }
        Ok(RowFilter { columns: parsed })
    }

    /// Whether a row (its cells' texts in column order) passes every filter. A filter on a
    /// column the row lacks sees an empty cell.
    pub fn matches<S: AsRef<str>>(&self, row: &[S]) -> bool {
        self.columns.iter().all(|(column, filter)| {
            filter.matches(row.get(*column).map(AsRef::as_ref).unwrap_or_default())
        })
    }
}

/// A cell as the filter sees it: trimmed and lower-cased.
struct Cell {
    text: String,
}

impl Cell {
    fn new(raw: &str) -> Cell {
        Cell {
            text: raw.trim().to_lowercase(),
        }
    }

    /// The cell's number: the digits it holds, or when those read as zero, the whole text as a
    /// number literal (so `0` is zero and words are not a number at all).
    fn number(&self) -> f64 {
        let n = extract_number(&self.text);
        if n != 0.0 {
            n
        } else {
            number_literal(&self.text)
        }
    }
}

/// Removes the first occurrence of `op`, wherever it is.
fn strip_op(term: &str, op: &str) -> String {
    term.replacen(op, "", 1)
}

impl Term {
    fn parse(term: &str, ty: ColumnType) -> Result<Term, FilterError> {
        if ty == ColumnType::Date {
            return Ok(Term::parse_date(term));
        }
        if term.contains("rgx:") {
            return compile_regex(&strip_op(term, "rgx:")).map(Term::Regex);
        }
        let num = |op: &str| extract_number(&strip_op(term, op));
        let text = |op: &str| strip_op(term, op);
        Ok(if term.contains("<=") {
            Term::Le(num("<="))
        } else if term.contains(">=") {
            Term::Ge(num(">="))
        } else if term.contains('<') {
            Term::Lt(num("<"))
        } else if term.contains('>') {
            Term::Gt(num(">"))
        } else if term.contains('!') {
            Term::NotContains(text("!"))
        } else if term.contains('*') {
            Term::Contains(text("*"))
        } else if term.contains('=') {
            Term::Equals(text("="))
        } else if term.contains('{') {
            Term::StartsWith(text("{"))
        } else if term.contains('}') {
            Term::EndsWith(text("}"))
        } else if term == "[empty]" {
            Term::Empty
        } else if term == "[nonempty]" {
            Term::NonEmpty
        } else {
            Term::Plain {
                text: term.to_string(),
                number: extract_number(term),
            }
        })
    }

    /// Date columns know fewer operators, and each comparison applies only when its operand is a
    /// date; anything else ends up as a substring test of the whole term.
    fn parse_date(term: &str) -> Term {
        let ops = [
            ("<=", DateOp::Le),
            ("<", DateOp::Lt),
            (">=", DateOp::Ge),
            (">", DateOp::Gt),
            ("!", DateOp::Ne),
            ("=", DateOp::Eq),
        ];
        for (op, date_op) in ops {
            if term.contains(op) {
                if let Some(date) = parse_date(&strip_op(term, op)) {
                    return Term::Date(date_op, date);
                }
            }
        }
        if term.contains('*') {
            return Term::Contains(strip_op(term, "*"));
        }
        if let Some(date) = parse_date(term) {
            return Term::Date(DateOp::Eq, date);
        }
        match term {
            "[empty]" => Term::Empty,
            "[nonempty]" => Term::NonEmpty,
            _ => Term::Contains(term.to_string()),
        }
    }

    fn matches(&self, cell: &Cell, ty: ColumnType) -> bool {
        let text = cell.text.as_str();
        match self {
            Term::Regex(re) => re.is_match(text),
            Term::Le(n) => cell.number() <= *n,
            Term::Ge(n) => cell.number() >= *n,
            Term::Lt(n) => cell.number() < *n,
            Term::Gt(n) => cell.number() > *n,
            Term::NotContains(s) => !text.contains(s.as_str()),
            Term::Contains(s) => text.contains(s.as_str()),
            Term::Equals(s) => equals_padded(text, s),
            Term::StartsWith(s) => text.starts_with(s.as_str()),
            Term::EndsWith(s) => text.ends_with(s.as_str()),
            Term::Empty => text.is_empty(),
            Term::NonEmpty => !text.is_empty(),
            Term::Plain { text: term, number } => {
                let r = cell.number();
                if ty == ColumnType::Number && r != 0.0 && !r.is_nan() {
                    // The widget compares with the term's number when it has one, and otherwise
                    // with the term's text, which never equals a number here.
                    let needle = if *number != 0.0 {
                        js_number_string(*number)
                    } else {
                        term.clone()
                    };
                    r == *number || js_number_string(r).contains(&needle)
                } else {
                    text.contains(term.as_str())
                }
            }
            Term::Date(op, date) => {
                let Some(cell_date) = parse_date(text) else {
                    // An unreadable cell date compares false and differs from every date.
                    return *op == DateOp::Ne;
                };
                match op {
                    DateOp::Le => cell_date <= *date,
                    DateOp::Lt => cell_date < *date,
                    DateOp::Ge => cell_date >= *date,
                    DateOp::Gt => cell_date > *date,
                    DateOp::Ne => cell_date.timestamp() != date.timestamp(),
                    DateOp::Eq => cell_date.timestamp() == date.timestamp(),
                }
            }
        }
    }
}

fn compile_regex(pattern: &str) -> Result<Regex, FilterError> {
    // Pattern and cell are both lower-case already, which is what the widget's case-insensitive
    // flag achieved; the workspace's `regex` has no Unicode case folding to spare.
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => FilterError::RegexTooLarge {
                pattern: pattern.to_string(),
                limit: REGEX_SIZE_LIMIT,
            },
            other => FilterError::InvalidRegex {
                pattern: pattern.to_string(),
                reason: other.to_string(),
            },
        })
}

/// `=`: the cell is the operand, give or take surrounding whitespace (the operand's own
/// whitespace must be there literally).
fn equals_padded(cell: &str, operand: &str) -> bool {
    let mut start = 0;
    loop {
        if let Some(rest) = cell[start..].strip_prefix(operand) {
            if rest.chars().all(char::is_whitespace) {
                return true;
            }
        }
        match cell[start..].chars().next() {
            Some(c) if c.is_whitespace() => start += c.len_utf8(),
            _ => return false,
        }
    }
}

fn is_line_terminator(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{2028}' | '\u{2029}')
}

/// The number a text holds, the widget's way: `(x)` means `-x` (accounting style), every
/// character but digits, `-` and `.` is dropped, and the longest number at the start is read;
/// no number at all reads as 0. So `"1.2.3"` is 1.2, `"$ 1,000"` is 1000, `"abc"` is 0.
fn extract_number(s: &str) -> f64 {
    let negated = negate_parenthesised(s);
    let kept: String = negated
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '-' || *c == '.')
        .collect();
    leading_float(&kept).unwrap_or(0.0)
}

/// Replaces the first `(...)` on one line (greedy up to that line's last `)`) with `-...`.
fn negate_parenthesised(s: &str) -> std::borrow::Cow<'_, str> {
    for (open, _) in s.match_indices('(') {
        let after = &s[open + 1..];
        let line = after
            .find(is_line_terminator)
            .map_or(after, |end| &after[..end]);
        if let Some(close) = line.rfind(')') {
            let inner = &line[..close];
            let tail = &after[close + 1..];
            return format!("{}-{}{}", &s[..open], inner, tail).into();
        }
    }
    s.into()
}

/// Reads `-?digits[.digits]` at the start of `s` (only digits, `-` and `.` remain by now).
fn leading_float(s: &str) -> Option<f64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let int_len = body.bytes().take_while(u8::is_ascii_digit).count();
    let (int, rest) = body.split_at(int_len);
    let frac = rest
        .strip_prefix('.')
        .map(|r| &r[..r.bytes().take_while(u8::is_ascii_digit).count()])
        .unwrap_or_default();
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let literal = format!(
        "{}{}.{}",
        if negative { "-" } else { "" },
        if int.is_empty() { "0" } else { int },
        if frac.is_empty() { "0" } else { frac }
    );
    literal.parse().ok()
}

/// The whole text as a number literal: blank is 0, a decimal literal its value, anything else NaN.
fn number_literal(s: &str) -> f64 {
    let s = s.trim();
    if s.is_empty() {
        return 0.0;
    }
    // Rust also reads `inf` and `nan`; a number literal here is digits, sign, point and exponent.
    if !s
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | 'e'))
    {
        return f64::NAN;
    }
    s.parse().unwrap_or(f64::NAN)
}

/// A number as the widget prints it: integers without a fraction, others in shortest form.
fn js_number_string(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

/// Reads the dates the portfolio shows (ISO-8601) and the ones users type.
fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if s.trim().is_empty() || s.len() > 64 {
        return None;
    }
    // Cells and terms arrive lower-cased; the formats spell `T` and `Z` in capitals.
    let upper = s.trim().to_uppercase();
    let s = upper.as_str();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    const NAIVE: [&str; 6] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ];
    for format in NAIVE {
        if let Ok(d) = NaiveDateTime::parse_from_str(s, format) {
            return Some(d.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;

/// The properties the fuzzer (`services/dashboard/fuzz`, target `portfolio_filter`) and the seed
/// replay test check on any input: the first byte picks the column type, the rest is
/// `expression \0 cell` (lossy UTF-8). Parsing and matching never panic; a blank expression
/// matches every cell; an accepted expression is at most [`MAX_FILTER_LEN`] bytes.
#[doc(hidden)]
pub fn check_properties(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let ty = match kind % 4 {
        0 => ColumnType::Text,
        1 => ColumnType::Number,
        2 => ColumnType::Date,
        _ => ColumnType::Unfiltered,
    };
    let text = String::from_utf8_lossy(rest);
    let (expr, cell) = text.split_once('\0').unwrap_or((&text, ""));
    match ColumnFilter::parse(expr, ty) {
        Ok(filter) => {
            assert!(expr.len() <= MAX_FILTER_LEN, "accepted an over-long filter");
            let matched = filter.matches(cell);
            if expr.trim().is_empty() {
                assert!(
                    matched && filter.is_empty(),
                    "a blank filter restricted a cell"
                );
            }
        }
        Err(_) => assert!(!expr.trim().is_empty(), "a blank filter was refused"),
    }
    let columns = [ty, ColumnType::Text];
    if let Ok(rows) = RowFilter::parse(&columns, &[(0, expr), (1, cell)]) {
        let _ = rows.matches(&[cell, expr]);
    }
}
