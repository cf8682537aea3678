//! The portfolio page: every fatman version the user can see, best removal candidates first,
//! filtered, sorted and paged on the server (the rules are in `crate::portfolio::table`).

use std::collections::HashMap;

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use racetrack_proto::dashboard::Empty;

use crate::layout::{self, Alert};
use crate::pages::accounts::viewer;
use crate::portfolio::table::{
    build_rows, select, PortfolioQuery, Selection, SortOrder, CREATION_COLUMN, DATA_COLUMNS,
    PAGE_SIZES,
};
use crate::portfolio::PORTFOLIO_COLUMNS;
use crate::session::{self, SignedIn};
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/portfolio", web::get().to(portfolio));
}

/// `/dashboard/{action}/{name}/{version}` with each segment percent-encoded.
pub fn fatman_url(action: &str, name: &str, version: &str) -> String {
    use racetrack_config::redact::percent_encode;
    format!(
        "/dashboard/{action}/{}/{}",
        percent_encode(name),
        percent_encode(version)
    )
}

async fn portfolio(
    state: State,
    user: SignedIn,
    params: web::Query<HashMap<String, String>>,
) -> HttpResponse {
    let query = PortfolioQuery::from_params(&params);
    let mut alerts: Vec<Alert> = session::take_flash(&user.session)
        .into_iter()
        .map(Alert::from)
        .collect();
    let listed = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_fatmen(r).await
        })
        .await;
    let rows = match listed {
        Ok(list) => match build_rows(&list.fatmen, chrono::Utc::now().timestamp()) {
            Ok(rows) => rows,
            Err(e) => {
                alerts.push(Alert::Error(e.to_string()));
                Vec::new()
            }
        },
        Err(e) => {
            alerts.push(Alert::Error(e.to_string()));
            Vec::new()
        }
    };
    let selection = select(rows, &query);
    alerts.extend(selection.errors.iter().map(|e| Alert::Error(e.to_string())));
    let csrf = user.csrf();
    let body = render(&query, &selection);
    layout::page(
        &state.ui,
        Some(&viewer(&user, &csrf)),
        "Portfolio",
        &alerts,
        body,
    )
}

/// The page body (tested without a server).
pub fn render(query: &PortfolioQuery, sel: &Selection) -> Markup {
    html! {
        section.card {
            h1 { "Portfolio" }
            p.muted {
                "Fatmen ranked by purge score: the higher, the better a candidate for removal. "
                "Filters: text matches anywhere; "
                code { "=x" } " exact, " code { "!x" } " not containing, " code { "{x" } " starts with, "
                code { "}x" } " ends with, " code { "<" } " " code { "<=" } " " code { ">" } " " code { ">=" } " numbers or dates, "
                code { "rgx:" } " regular expression, " code { "[empty]" } ", " code { "[nonempty]" } ", "
                code { "a || b" } ", " code { "a && b" } "."
            }
            form #portfolio-filter method="get" action="/dashboard/portfolio" {
                div.filters {
                    @for (i, (name, _)) in PORTFOLIO_COLUMNS.iter().enumerate().take(DATA_COLUMNS) {
                        @if i != CREATION_COLUMN {
                            label {
                                (name)
                                input type="text" name=(format!("f{i}")) value=(query.filters.get(i).map(String::as_str).unwrap_or_default());
                            }
                        }
                    }
                }
                input type="hidden" name="sort" value=(query.sort.param());
                label {
                    "Rows: "
                    select name="page_size" {
                        @for n in PAGE_SIZES {
                            option value=(n) selected[n == query.page_size] { (n) }
                        }
                    }
                }
                button #portfolio-apply type="submit" { "Apply" }
                " "
                a href="/dashboard/portfolio" #portfolio-clear { "Clear" }
            }
            p { "Rows: " strong #portfolio-count { (sel.matching) } }
            details #portfolio-columns {
                summary { "Columns" }
                @for (i, (name, _)) in PORTFOLIO_COLUMNS.iter().enumerate() {
                    label.inline {
                        input type="checkbox" data-column=(i) checked;
                        " " (name)
                    }
                }
            }
            table #portfolio {
                thead {
                    tr {
                        @for (i, (name, _)) in PORTFOLIO_COLUMNS.iter().enumerate() {
                            th data-col=(i) {
                                @if i < DATA_COLUMNS {
                                    @let next = SortOrder {
                                        column: i,
                                        descending: query.sort.column == i && !query.sort.descending,
                                    };
                                    a href=(query.link(1, next)) { (name) }
                                    @if query.sort.column == i {
                                        @if query.sort.descending { " ▼" } @else { " ▲" }
                                    }
                                } @else {
                                    (name)
                                }
                            }
                        }
                    }
                }
                tbody {
                    @for row in &sel.rows {
                        tr.portfolio-row data-name=(row.name) data-version=(row.version) {
                            @for (i, cell) in row.cells.iter().enumerate() {
                                td data-col=(i) {
                                    @for (n, line) in cell.lines().enumerate() {
                                        @if n > 0 { br; }
                                        (line)
                                    }
                                }
                            }
                            td data-col=(DATA_COLUMNS) {
                                button.delete.danger type="button"
                                    data-action-url=(fatman_url("api/delete-fatman", &row.name, &row.version))
                                    data-action-name="Delete"
                                    data-action-target=(format!("{} {}", row.name, row.version))
                                    data-confirm=(format!("Delete fatman {} {}? This cannot be undone.", row.name, row.version)) {
                                    "Delete"
                                }
                            }
                        }
                    }
                    @if sel.rows.is_empty() {
                        tr { td colspan=(PORTFOLIO_COLUMNS.len()) { "No results" } }
                    }
                }
            }
            nav.pager #portfolio-pager {
                @if sel.page > 1 {
                    a href=(query.link(sel.page - 1, query.sort)) rel="prev" { "‹ Previous" }
                }
                span { "Page " (sel.page) " of " (sel.pages) }
                @if sel.page < sel.pages {
                    a href=(query.link(sel.page + 1, query.sort)) rel="next" { "Next ›" }
                }
            }
        }
        script src="/dashboard/static/portfolio.js" defer {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portfolio::table::PortfolioRow;

    fn row(name: &str) -> PortfolioRow {
        let mut cells = vec![String::new(); DATA_COLUMNS];
        cells[0] = name.into();
        cells[1] = "1.0.0".into();
        cells[7] = "first reason\nsecond reason".into();
        PortfolioRow {
            name: name.into(),
            version: "1.0.0".into(),
            cells,
        }
    }

    #[test]
    fn renders_the_element_contract() {
        let mut params = HashMap::new();
        params.insert("f0".to_string(), "a\"b".to_string());
        let query = PortfolioQuery::from_params(&params);
        let sel = Selection {
            rows: vec![row("adder"), row("sub")],
            matching: 42,
            page: 1,
            pages: 2,
            errors: Vec::new(),
        };
        let html = render(&query, &sel).into_string();
        assert!(
            html.contains(r#"<form id="portfolio-filter" method="get""#),
            "{html}"
        );
        for i in 0..DATA_COLUMNS {
            let input = format!(r#"name="f{i}""#);
            assert_eq!(html.contains(&input), i != CREATION_COLUMN, "{input}");
        }
        assert!(
            html.contains(r#"value="a&quot;b""#),
            "typed filter kept, escaped"
        );
        assert!(html.contains(r#"id="portfolio-apply""#));
        assert!(html.contains(r#"<table id="portfolio">"#));
        assert_eq!(html.matches(r#"class="portfolio-row""#).count(), 2);
        assert!(html.contains(r#"data-name="adder" data-version="1.0.0""#));
        assert!(html.contains(r#"<strong id="portfolio-count">42</strong>"#));
        assert!(html.contains(r#"data-action-url="/dashboard/api/delete-fatman/adder/1.0.0""#));
        assert_eq!(html.matches(r#"class="delete danger""#).count(), 2);
        assert!(html.contains("first reason<br>second reason"));
        assert!(html.contains(r#"rel="next""#));
        assert!(!html.contains(r#"rel="prev""#));
    }

    #[test]
    fn fatman_urls_are_encoded() {
        assert_eq!(
            fatman_url("api/delete-fatman", "a/b", "1.0.0+x"),
            "/dashboard/api/delete-fatman/a%2Fb/1.0.0%2Bx"
        );
    }
}
