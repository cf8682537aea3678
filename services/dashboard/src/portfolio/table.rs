//! The portfolio table as data: one row per fatman version with its cells as the page shows
//! them, and the query (filters, sort, paging) the page applies to them. Filtering happens here
//! on the server with [`super::filter`], so what a filter box matches is tested in Rust and the
//! row counter is exact before paging.

use std::collections::HashMap;

use chrono::SecondsFormat;
use racetrack_model::FatmanStatus;
use racetrack_proto::dashboard::Fatman;

use super::filter::{ColumnFilter, ColumnType, FilterError, RowFilter};
use super::purge::{assess_portfolio, days_ago, format_decimal, PortfolioFatman, PurgeError};
use super::PORTFOLIO_COLUMNS;
use crate::time;

/// Columns with data (all but "Actions"): filter boxes `f0`..`f13` and sortable headers.
pub const DATA_COLUMNS: usize = 14;
/// The purge score column: the default order is by it, highest first.
pub const SCORE_COLUMN: usize = 8;
/// Creation time: shown and sortable, but without a filter box.
pub const CREATION_COLUMN: usize = 12;
pub const PAGE_SIZES: [usize; 4] = [10, 25, 50, 100];
pub const DEFAULT_PAGE_SIZE: usize = 25;

/// One fatman version as the table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioRow {
    pub name: String,
    pub version: String,
    /// The texts of the data columns, in column order ([`DATA_COLUMNS`] of them).
    pub cells: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PortfolioError {
    #[error(transparent)]
    Purge(#[from] PurgeError),
    #[error("fatman {name} {version} has status '{status}', which this dashboard does not know")]
    UnknownStatus {
        name: String,
        version: String,
        status: String,
    },
}

/// Builds the rows of every fatman the user can see, best removal candidates first (purge score
/// descending; equal scores keep Lifecycle's order).
pub fn build_rows(fatmen: &[Fatman], now: i64) -> Result<Vec<PortfolioRow>, PortfolioError> {
    let mut inputs = Vec::with_capacity(fatmen.len());
    for f in fatmen {
        let status: FatmanStatus = f
            .status
            .parse()
            .map_err(|_| PortfolioError::UnknownStatus {
                name: f.name.clone(),
                version: f.version.clone(),
                status: f.status.clone(),
            })?;
        inputs.push(PortfolioFatman {
            name: f.name.clone(),
            version: f.version.clone(),
            status,
            update_time: unix(&f.update_time),
            last_call_time: unix(&f.last_call_time),
        });
    }
    let by_key: HashMap<(&str, &str), &Fatman> = fatmen
        .iter()
        .map(|f| ((f.name.as_str(), f.version.as_str()), f))
        .collect();
    let assessed = assess_portfolio(inputs, now)?;
    Ok(assessed
        .into_iter()
        .filter_map(|a| {
            let source = by_key.get(&(a.fatman.name.as_str(), a.fatman.version.as_str()))?;
            let p = &a.fatman;
            let cells = vec![
                p.name.clone(),
                p.version.clone(),
                p.status.as_str().to_uppercase(),
                source.job_type.clone(),
                source.deployed_by.clone(),
                days_ago(p.update_time, now)
                    .map(|d| format_decimal(d, 2))
                    .unwrap_or_default(),
                days_ago(p.last_call_time, now)
                    .map(|d| format_decimal(d, 2))
                    .unwrap_or_default(),
                a.purge.reasons_text(),
                format_decimal(a.purge.score, 2),
                a.purge.newer_versions.to_string(),
                iso(&source.last_call_time),
                iso(&source.update_time),
                iso(&source.create_time),
                source.infrastructure_target.clone(),
            ];
            Some(PortfolioRow {
                name: p.name.clone(),
                version: p.version.clone(),
                cells,
            })
        })
        .collect())
}

fn unix(ts: &str) -> Option<i64> {
    time::parse(ts).map(|t| t.timestamp())
}

/// ISO-8601 to the second in UTC; text that is not a timestamp is shown as it came.
fn iso(ts: &str) -> String {
    time::parse(ts)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts.to_string())
}

/// Which column orders the table, and which way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortOrder {
    pub column: usize,
    pub descending: bool,
}

impl SortOrder {
    /// `"3"` ascending by column 3, `"-8"` descending by column 8; anything else → `None`.
    pub fn parse(text: &str) -> Option<SortOrder> {
        let text = text.trim();
        let (descending, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let column: usize = digits.parse().ok()?;
        (column < DATA_COLUMNS).then_some(SortOrder { column, descending })
    }

    pub fn param(&self) -> String {
        if self.descending {
            format!("-{}", self.column)
        } else {
            self.column.to_string()
        }
    }
}

impl Default for SortOrder {
    fn default() -> SortOrder {
        SortOrder {
            column: SCORE_COLUMN,
            descending: true,
        }
    }
}

/// What the page's query string asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct PortfolioQuery {
    /// The filter box of each data column (blank when not given); the creation column's is
    /// always blank.
    pub filters: Vec<String>,
    pub sort: SortOrder,
    /// 1-based.
    pub page: usize,
    pub page_size: usize,
}

impl Default for PortfolioQuery {
    fn default() -> PortfolioQuery {
        PortfolioQuery {
            filters: vec![String::new(); DATA_COLUMNS],
            sort: SortOrder::default(),
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

impl PortfolioQuery {
    /// Reads `f0`..`f13`, `sort`, `page` and `page_size`; unknown or malformed values fall back
    /// to the defaults (a bookmarked link never breaks the page).
    pub fn from_params(params: &HashMap<String, String>) -> PortfolioQuery {
        let mut q = PortfolioQuery::default();
        for (i, slot) in q.filters.iter_mut().enumerate() {
            if i == CREATION_COLUMN {
                continue;
            }
            if let Some(v) = params.get(&format!("f{i}")) {
                *slot = v.clone();
            }
        }
        if let Some(s) = params.get("sort").and_then(|s| SortOrder::parse(s)) {
            q.sort = s;
        }
        if let Some(p) = params
            .get("page")
            .and_then(|p| p.trim().parse::<usize>().ok())
        {
            q.page = p.max(1);
        }
        if let Some(n) = params
            .get("page_size")
            .and_then(|p| p.trim().parse::<usize>().ok())
            .filter(|n| PAGE_SIZES.contains(n))
        {
            q.page_size = n;
        }
        q
    }

    /// The query string of this query with another page and sort order (for pager and header
    /// links), blank filters left out.
    pub fn link(&self, page: usize, sort: SortOrder) -> String {
        let mut parts: Vec<String> = self
            .filters
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.trim().is_empty())
            .map(|(i, f)| format!("f{i}={}", racetrack_config::redact::percent_encode(f)))
            .collect();
        parts.push(format!("sort={}", sort.param()));
        parts.push(format!("page={page}"));
        parts.push(format!("page_size={}", self.page_size));
        format!("?{}", parts.join("&"))
    }
}

/// A filter box that does not parse: the page names the column and applies the others.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnError {
    pub column: usize,
    pub error: FilterError,
}

impl std::fmt::Display for ColumnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = PORTFOLIO_COLUMNS
            .get(self.column)
            .map_or("?", |(name, _)| *name);
        write!(f, "Filter of column \"{name}\": {}", self.error)
    }
}

/// The row filter of every filter box that parses, and the errors of those that do not.
pub fn compile_filters(filters: &[String]) -> (RowFilter, Vec<ColumnError>) {
    let types = super::portfolio_column_types();
    let mut good: Vec<(usize, &str)> = Vec::new();
    let mut errors = Vec::new();
    for (column, expr) in filters.iter().enumerate().take(DATA_COLUMNS) {
        if expr.trim().is_empty() || column == CREATION_COLUMN {
            continue;
        }
        let ty = types.get(column).copied().unwrap_or(ColumnType::Unfiltered);
        match ColumnFilter::parse(expr, ty) {
            Ok(_) => good.push((column, expr.as_str())),
            Err(error) => errors.push(ColumnError { column, error }),
        }
    }
    match RowFilter::parse(&types, &good) {
        Ok(filter) => (filter, errors),
        // Every expression above parsed on its own, so this is not expected; match nothing
        // rather than everything if it happens.
        Err(error) => (
            RowFilter::default(),
            vec![ColumnError {
                column: good.first().map_or(0, |(c, _)| *c),
                error,
            }],
        ),
    }
}

/// How a column's cells compare when sorting.
fn sort_key_type(column: usize) -> ColumnType {
    if column == CREATION_COLUMN {
        return ColumnType::Date;
    }
    PORTFOLIO_COLUMNS
        .get(column)
        .map_or(ColumnType::Text, |(_, t)| *t)
}

/// Sorts stably by one column: numbers numerically, dates by time, text case-insensitively;
/// empty cells come first ascending, last descending.
pub fn sort_rows(rows: &mut [PortfolioRow], order: SortOrder) {
    let ty = sort_key_type(order.column);
    let cell = |r: &PortfolioRow| r.cells.get(order.column).cloned().unwrap_or_default();
    rows.sort_by(|a, b| {
        let (a, b) = (cell(a), cell(b));
        let ordering = match ty {
            ColumnType::Number => {
                let (x, y) = (a.trim().parse::<f64>().ok(), b.trim().parse::<f64>().ok());
                match (x, y) {
                    (Some(x), Some(y)) => x.total_cmp(&y),
                    (x, y) => x.is_some().cmp(&y.is_some()),
                }
            }
            ColumnType::Date => time::parse(&a).cmp(&time::parse(&b)),
            _ => a.to_lowercase().cmp(&b.to_lowercase()),
        };
        if order.descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

/// One page of the filtered, sorted rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub rows: Vec<PortfolioRow>,
    /// Rows matching the filters, before paging.
    pub matching: usize,
    /// The page shown (1-based, within `1..=pages`).
    pub page: usize,
    pub pages: usize,
    pub errors: Vec<ColumnError>,
}

/// Filters (AND across columns), sorts and pages `rows` as `query` asks.
pub fn select(rows: Vec<PortfolioRow>, query: &PortfolioQuery) -> Selection {
    let (filter, errors) = compile_filters(&query.filters);
    let mut matching: Vec<PortfolioRow> = rows
        .into_iter()
        .filter(|r| filter.matches(&r.cells))
        .collect();
    // Rows arrive best candidates first; re-sorting by the score keeps that order for ties.
    sort_rows(&mut matching, query.sort);
    let total = matching.len();
    let size = query.page_size.max(1);
    let pages = total.div_ceil(size).max(1);
    let page = query.page.clamp(1, pages);
    let rows = matching
        .into_iter()
        .skip((page - 1) * size)
        .take(size)
        .collect();
    Selection {
        rows,
        matching: total,
        page,
        pages,
        errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_780_000_000;

    fn ts(unix: i64) -> String {
        chrono::DateTime::from_timestamp(unix, 0)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default()
    }

    fn fatman(name: &str, version: &str, status: FatmanStatus) -> Fatman {
        Fatman {
            name: name.into(),
            version: version.into(),
            status: status.as_str().into(),
            create_time: ts(NOW - 10 * DAY),
            update_time: ts(NOW - 10 * DAY),
            last_call_time: ts(NOW - DAY / 2),
            deployed_by: "alice@example.com".into(),
            job_type: "python3:2.4.0".into(),
            infrastructure_target: "kubernetes".into(),
            ..Fatman::default()
        }
    }

    fn sample() -> Vec<PortfolioRow> {
        let mut never = fatman("billing", "2.0.0", FatmanStatus::Running);
        never.last_call_time = String::new();
        never.deployed_by = "bob@example.com".into();
        never.infrastructure_target = "docker".into();
        let rows = build_rows(
            &[
                fatman("adder", "1.0.0", FatmanStatus::Running),
                fatman("adder", "1.1.0", FatmanStatus::Running),
                fatman("adder", "0.9.0", FatmanStatus::Lost),
                fatman("ghost", "0.0.1", FatmanStatus::Orphaned),
                never,
                fatman("calc", "3.0.0", FatmanStatus::Error),
            ],
            NOW,
        );
        rows.unwrap_or_default()
    }

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn names(sel: &Selection) -> Vec<String> {
        sel.rows
            .iter()
            .map(|r| format!("{}@{}", r.name, r.version))
            .collect()
    }

    /// The rows matching a query string given as pairs (all on one page).
    fn matching(pairs: &[(&str, &str)]) -> Vec<String> {
        let mut pairs = pairs.to_vec();
        pairs.push(("page_size", "100"));
        let sel = select(sample(), &PortfolioQuery::from_params(&params(&pairs)));
        assert!(sel.errors.is_empty(), "{:?}", sel.errors);
        names(&sel)
    }

    #[test]
    fn rows_have_the_fifteen_columns_data_best_candidates_first() {
        let rows = sample();
        assert_eq!(rows.len(), 6);
        assert!(rows.iter().all(|r| r.cells.len() == DATA_COLUMNS));
        assert_eq!(PORTFOLIO_COLUMNS.len(), DATA_COLUMNS + 1);
        let first = &rows[0];
        assert_eq!(
            (first.name.as_str(), first.version.as_str()),
            ("ghost", "0.0.1")
        );
        assert_eq!(first.cells[2], "ORPHANED");
        assert_eq!(first.cells[SCORE_COLUMN], "100");
        let lost = &rows[1];
        assert_eq!(lost.version, "0.9.0");
        // lost 50 + two newer versions of adder
        assert_eq!(lost.cells[SCORE_COLUMN], "52");
        assert_eq!(lost.cells[9], "2");
        assert_eq!(lost.cells[3], "python3:2.4.0");
        assert_eq!(lost.cells[4], "alice@example.com");
        assert_eq!(lost.cells[5], "10");
        assert_eq!(lost.cells[6], "0.5");
        assert_eq!(lost.cells[12], ts(NOW - 10 * DAY).replace("+00:00", "Z"));
        assert_eq!(lost.cells[13], "kubernetes");
        let never = rows.iter().find(|r| r.name == "billing");
        let never = never.map(|r| r.cells.clone()).unwrap_or_default();
        assert_eq!(never[6], "", "never called: empty cell");
        assert!(never[7].contains("never been called"), "{}", never[7]);
        let scores: Vec<f64> = rows
            .iter()
            .map(|r| r.cells[SCORE_COLUMN].parse().unwrap_or(-1.0))
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    }

    #[test]
    fn an_unknown_status_or_a_bad_version_is_an_error() {
        let mut odd = fatman("a", "1.0.0", FatmanStatus::Running);
        odd.status = "sleeping".into();
        assert!(matches!(
            build_rows(&[odd], NOW),
            Err(PortfolioError::UnknownStatus { .. })
        ));
        let bad = fatman("a", "latest", FatmanStatus::Running);
        assert!(matches!(
            build_rows(&[bad], NOW),
            Err(PortfolioError::Purge(_))
        ));
    }

    #[test]
    fn query_parsing_defaults_and_bounds() {
        let q = PortfolioQuery::from_params(&params(&[]));
        assert_eq!(q, PortfolioQuery::default());
        assert_eq!(
            q.sort,
            SortOrder {
                column: 8,
                descending: true
            }
        );
        let q = PortfolioQuery::from_params(&params(&[
            ("f0", "adder"),
            ("f12", "2020"),
            ("f14", "x"),
            ("sort", "-3"),
            ("page", "0"),
            ("page_size", "50"),
        ]));
        assert_eq!(q.filters[0], "adder");
        assert_eq!(q.filters[12], "", "creation time has no filter");
        assert_eq!(q.filters.len(), DATA_COLUMNS);
        assert_eq!(
            q.sort,
            SortOrder {
                column: 3,
                descending: true
            }
        );
        assert_eq!(q.page, 1);
        assert_eq!(q.page_size, 50);
        let q = PortfolioQuery::from_params(&params(&[
            ("sort", "14"),
            ("page", "x"),
            ("page_size", "7"),
        ]));
        assert_eq!(q.sort, SortOrder::default());
        assert_eq!(q.page, 1);
        assert_eq!(q.page_size, DEFAULT_PAGE_SIZE);
        assert_eq!(SortOrder::parse("5").map(|s| s.param()), Some("5".into()));
        assert_eq!(SortOrder::parse("-0").map(|s| s.param()), Some("-0".into()));
    }

    #[test]
    fn filters_through_the_query_string_with_many_operators() {
        // default: substring, case-insensitive
        assert_eq!(matching(&[("f0", "ADD")]).len(), 3);
        // `=` exact
        assert_eq!(matching(&[("f1", "=1.0.0")]), vec!["adder@1.0.0"]);
        // `!` does not contain
        assert_eq!(matching(&[("f0", "!adder")]).len(), 3);
        // `>=` on a number column (purge score)
        assert_eq!(
            matching(&[("f8", ">=50")]),
            vec!["ghost@0.0.1", "adder@0.9.0"]
        );
        // `<` on the newer-versions column
        assert_eq!(matching(&[("f9", "<1")]).len(), 4);
        // `{` starts with, `}` ends with
        assert_eq!(matching(&[("f0", "{bil")]), vec!["billing@2.0.0"]);
        assert_eq!(
            matching(&[("f4", "}bob@example.com")]),
            vec!["billing@2.0.0"]
        );
        // `rgx:`
        assert_eq!(matching(&[("f2", "rgx:^(lost|error)$")]).len(), 2);
        // `[empty]` / `[nonempty]`
        assert_eq!(matching(&[("f6", "[empty]")]), vec!["billing@2.0.0"]);
        assert_eq!(matching(&[("f6", "[nonempty]")]).len(), 5);
        // `||` within a column
        assert_eq!(matching(&[("f0", "ghost || calc")]).len(), 2);
        // dates: after a day
        assert_eq!(matching(&[("f10", ">2000-01-01")]).len(), 5);
        // AND across columns
        assert_eq!(
            matching(&[
                ("f0", "adder"),
                ("f2", FatmanStatus::Running.as_str()),
                ("f1", "{1.0")
            ]),
            vec!["adder@1.0.0"]
        );
    }

    #[test]
    fn a_bad_filter_names_its_column_and_the_others_still_apply() {
        let sel = select(
            sample(),
            &PortfolioQuery::from_params(&params(&[("f2", "rgx:("), ("f0", "adder")])),
        );
        assert_eq!(sel.errors.len(), 1);
        assert_eq!(sel.errors[0].column, 2);
        let text = sel.errors[0].to_string();
        assert!(text.contains("\"Status\""), "{text}");
        assert!(text.contains("invalid regular expression"), "{text}");
        assert_eq!(sel.matching, 3);
    }

    #[test]
    fn sorting_by_a_column_either_way() {
        let by = |sort: &str| {
            names(&select(
                sample(),
                &PortfolioQuery::from_params(&params(&[("sort", sort)])),
            ))
        };
        assert_eq!(by("0")[..3], ["adder@0.9.0", "adder@1.0.0", "adder@1.1.0"]);
        assert_eq!(by("-0")[0], "ghost@0.0.1");
        // numbers sort numerically, not as text
        let asc = by("8");
        assert_eq!(asc.last().map(String::as_str), Some("ghost@0.0.1"));
        let default = by("");
        assert_eq!(default, by("-8"));
        assert_eq!(default[0], "ghost@0.0.1");
        // empty cells first ascending
        assert_eq!(by("6")[0], "billing@2.0.0");
        assert_eq!(by("-6").last().map(String::as_str), Some("billing@2.0.0"));
    }

    #[test]
    fn paging_counts_before_paging_and_clamps_the_page() {
        let q = |page: &str| {
            PortfolioQuery::from_params(&params(&[("page", page), ("page_size", "10")]))
        };
        let many: Vec<PortfolioRow> = (0..23)
            .map(|i| PortfolioRow {
                name: format!("f{i:02}"),
                version: "1.0.0".into(),
                cells: vec![String::new(); DATA_COLUMNS],
            })
            .collect();
        let sel = select(many.clone(), &q("2"));
        assert_eq!(
            (sel.matching, sel.page, sel.pages, sel.rows.len()),
            (23, 2, 3, 10)
        );
        assert_eq!(sel.rows[0].name, "f10");
        let last = select(many.clone(), &q("99"));
        assert_eq!((last.page, last.rows.len()), (3, 3));
        let none = select(Vec::new(), &q("5"));
        assert_eq!((none.matching, none.page, none.pages), (0, 1, 1));
    }

    #[test]
    fn links_keep_the_filters() {
        let q = PortfolioQuery::from_params(&params(&[("f0", "a b"), ("page_size", "10")]));
        assert_eq!(
            q.link(
                2,
                SortOrder {
                    column: 1,
                    descending: false
                }
            ),
            "?f0=a%20b&sort=1&page=2&page_size=10"
        );
    }
}
