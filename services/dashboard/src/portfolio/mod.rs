//! The portfolio page: every fatman a user can see, ranked by how good a removal candidate it is,
//! and narrowed by one filter expression per column.

pub mod filter;
pub mod purge;
pub mod table;

pub use filter::{ColumnFilter, ColumnType, FilterError, RowFilter, MAX_FILTER_LEN};
pub use purge::{
    assess_portfolio, days_ago, format_decimal, Assessed, PortfolioFatman, PurgeAssessment,
    PurgeError,
};

/// The portfolio table's columns in display order, with the type that decides how their filter
/// reads numbers and dates. `Unfiltered` columns have no filter box (creation time, actions).
pub const PORTFOLIO_COLUMNS: [(&str, ColumnType); 15] = [
    ("Family name", ColumnType::Text),
    ("Fatman version", ColumnType::Text),
    ("Status", ColumnType::Text),
    ("Job type version", ColumnType::Text),
    ("Deployed by", ColumnType::Text),
    ("Last updated ago [days]", ColumnType::Number),
    ("Last called ago [days]", ColumnType::Number),
    ("Purge reasons", ColumnType::Text),
    ("Purge score", ColumnType::Number),
    ("Newer versions", ColumnType::Number),
    ("Last call time", ColumnType::Date),
    ("Update time", ColumnType::Date),
    ("Creation time", ColumnType::Unfiltered),
    ("Infrastructure target", ColumnType::Text),
    ("Actions", ColumnType::Unfiltered),
];

/// The column types of [`PORTFOLIO_COLUMNS`], as [`RowFilter::parse`] wants them.
pub fn portfolio_column_types() -> Vec<ColumnType> {
    PORTFOLIO_COLUMNS.iter().map(|(_, t)| *t).collect()
}
