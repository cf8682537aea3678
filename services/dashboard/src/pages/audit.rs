//! The audit log page (`/dashboard/activity`): events filtered by fatman and by whether they
//! concern the signed-in user, one sentence each, paged by Lifecycle.

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use racetrack_model::AuditLogEventType;
use racetrack_proto::dashboard::{AuditEvent, AuditPage, AuditQuery};
use serde::Deserialize;

use crate::layout::{self, Alert};
use crate::pages::accounts::viewer;
use crate::pages::fatmen::pager;
use crate::session::SignedIn;
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/activity", web::get().to(activity));
}

/// Lifecycle's page size when the query leaves it at 0.
const DEFAULT_PAGE_SIZE: u32 = 50;

/// An event type title-cased as the original did (Python's `str.title`): every letter following
/// a non-letter upper case, the other letters lower case: `fatman_deployed` → `Fatman_Deployed`.
pub fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_letter = false;
    for c in text.chars() {
        if c.is_alphabetic() {
            if after_letter {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            after_letter = true;
        } else {
            out.push(c);
            after_letter = false;
        }
    }
    out
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The sentence explaining an event: each `AuditLogEventType` in racetrack-model's words; a type
/// this dashboard does not know yet (a newer Lifecycle) still gets a plain sentence.
pub fn sentence(ev: &AuditEvent) -> String {
    let executor = non_empty(&ev.username_executor);
    let subject = non_empty(&ev.username_subject);
    match ev.event_type.parse::<AuditLogEventType>() {
        Ok(kind) => kind.describe(&ev.fatman_name, &ev.fatman_version, executor, subject),
        Err(_) => {
            let mut s = format!("Event {}", ev.event_type);
            if let Some(name) = non_empty(&ev.fatman_name) {
                s.push_str(&format!(" on fatman {name}"));
                if let Some(version) = non_empty(&ev.fatman_version) {
                    s.push_str(&format!(" {version}"));
                }
            }
            if let Some(who) = executor {
                s.push_str(&format!(" by {who}"));
            }
            if let Some(owner) = subject {
                s.push_str(&format!(" (concerning {owner})"));
            }
            s
        }
    }
}

/// The filter as the form and the page links carry it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    pub fatman_name: String,
    pub fatman_version: String,
    pub related_to_me: bool,
}

impl Filter {
    /// The version narrows a family, so it only counts together with a name.
    pub fn query(&self, page: u32) -> AuditQuery {
        let name = self.fatman_name.trim().to_string();
        let version = if name.is_empty() {
            String::new()
        } else {
            self.fatman_version.trim().to_string()
        };
        AuditQuery {
            related_to_me: self.related_to_me,
            fatman_name: name,
            fatman_version: version,
            page,
            page_size: 0,
        }
    }

    pub fn url(&self, page: u32) -> String {
        let enc = racetrack_config::redact::percent_encode;
        let mut url = format!("/dashboard/activity?page={page}");
        if !self.fatman_name.is_empty() {
            url.push_str(&format!("&fatman_name={}", enc(&self.fatman_name)));
            if !self.fatman_version.is_empty() {
                url.push_str(&format!("&fatman_version={}", enc(&self.fatman_version)));
            }
        }
        if self.related_to_me {
            url.push_str("&related_to_me=1");
        }
        url
    }
}

/// Pages there are for `total` events (at least 1).
pub fn page_count(total: u64, page_size: u32) -> u32 {
    let size = u64::from(if page_size == 0 {
        DEFAULT_PAGE_SIZE
    } else {
        page_size
    });
    u32::try_from(total.div_ceil(size).max(1)).unwrap_or(u32::MAX)
}

pub fn render(filter: &Filter, page: &AuditPage, now: DateTime<Utc>) -> Markup {
    let pages = page_count(page.total, page.page_size);
    let current = page.page.max(1);
    html! {
        section.card #audit {
            h1 { "Audit log" }
            form #audit-filter method="get" action="/dashboard/activity" {
                label.inline-label { "Fatman name " input type="text" name="fatman_name" value=(filter.fatman_name); }
                " "
                label.inline-label { "Fatman version " input type="text" name="fatman_version" value=(filter.fatman_version); }
                " "
                label.check { input type="checkbox" name="related_to_me" value="1" checked[filter.related_to_me]; " Related to me" }
                " "
                button type="submit" #audit-filter-submit { "Filter" }
            }
            p.muted #audit-total { (page.total) " events" }
            ul #audit-events.audit-list {
                @for ev in &page.events {
                    li.audit-event data-event-type=(ev.event_type) {
                        div.audit-head {
                            strong.audit-type { (title_case(&ev.event_type)) }
                            " "
                            span.audit-ago.muted title=(ev.timestamp) { (crate::time::ago_text(now, &ev.timestamp)) }
                        }
                        div.audit-sentence { (sentence(ev)) }
                    }
                }
            }
            (pager(current as usize, pages as usize, |p| filter.url(u32::try_from(p).unwrap_or(u32::MAX))))
        }
    }
}

#[derive(Deserialize)]
pub struct ActivityQuery {
    fatman_name: Option<String>,
    fatman_version: Option<String>,
    related_to_me: Option<String>,
    page: Option<String>,
}

async fn activity(state: State, user: SignedIn, query: web::Query<ActivityQuery>) -> HttpResponse {
    let q = query.into_inner();
    let filter = Filter {
        fatman_name: q.fatman_name.unwrap_or_default().trim().to_string(),
        fatman_version: q.fatman_version.unwrap_or_default().trim().to_string(),
        related_to_me: q
            .related_to_me
            .is_some_and(|v| !matches!(v.as_str(), "" | "0" | "false" | "off")),
    };
    let page_no = q
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    let mut alerts = Vec::new();
    let page = match state
        .lifecycle
        .call(
            Some(&user.token),
            filter.query(page_no),
            |mut c, r| async move { c.list_audit_events(r).await },
        )
        .await
    {
        Ok(p) => p,
        Err(e) => {
            alerts.push(Alert::Error(e.to_string()));
            AuditPage {
                page: page_no,
                ..Default::default()
            }
        }
    };
    let body = render(&filter, &page, Utc::now());
    let csrf = user.csrf();
    let viewer = viewer(&user, &csrf);
    layout::page(&state.ui, Some(&viewer), "Audit log", &alerts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: &str, executor: &str, subject: &str) -> AuditEvent {
        AuditEvent {
            id: "1".into(),
            timestamp: "2026-12-01T10:00:00Z".into(),
            event_type: kind.into(),
            username_executor: executor.into(),
            username_subject: subject.into(),
            fatman_name: "adder".into(),
            fatman_version: "1.0.0".into(),
            properties: "{}".into(),
        }
    }

    #[test]
    fn title_case_like_python() {
        assert_eq!(title_case("fatman_deployed"), "Fatman_Deployed");
        assert_eq!(title_case("fatman_orphan_removed"), "Fatman_Orphan_Removed");
        assert_eq!(title_case("FATMAN_lost2x"), "Fatman_Lost2X");
        assert_eq!(title_case(""), "");
    }

    #[test]
    fn every_event_type_has_a_sentence_naming_the_fatman() {
        for kind in AuditLogEventType::ALL {
            let s = sentence(&event(kind.as_str(), "bob", "alice"));
            assert!(s.contains("adder 1.0.0"), "{kind}: {s}");
            assert!(s.contains("bob"), "{kind}: {s}");
        }
    }

    #[test]
    fn sentences_of_the_original_types() {
        assert_eq!(
            sentence(&event("fatman_deployed", "bob", "alice")),
            "Fatman adder 1.0.0 deployed by bob"
        );
        assert_eq!(
            sentence(&event("fatman_redeployed", "bob", "alice")),
            "Fatman adder 1.0.0 (owned by alice) redeployed by bob"
        );
        assert_eq!(
            sentence(&event("fatman_deleted", "bob", "alice")),
            "Fatman adder 1.0.0 (owned by alice) deleted by bob"
        );
        assert_eq!(
            sentence(&event("fatman_lost", "supervisor", "")),
            "Fatman adder 1.0.0 was not found in its infrastructure and was marked lost by supervisor"
        );
    }

    #[test]
    fn unknown_types_get_a_plain_sentence() {
        assert_eq!(
            sentence(&event("fatman_teleported", "bob", "alice")),
            "Event fatman_teleported on fatman adder 1.0.0 by bob (concerning alice)"
        );
        let mut bare = event("something_else", "", "");
        bare.fatman_name.clear();
        assert_eq!(sentence(&bare), "Event something_else");
    }

    #[test]
    fn version_only_with_a_name() {
        let f = Filter {
            fatman_name: String::new(),
            fatman_version: "1.0.0".into(),
            related_to_me: true,
        };
        let q = f.query(2);
        assert_eq!(
            (q.fatman_name.as_str(), q.fatman_version.as_str(), q.page),
            ("", "", 2)
        );
        assert!(q.related_to_me);
        assert_eq!(f.url(3), "/dashboard/activity?page=3&related_to_me=1");
        let g = Filter {
            fatman_name: "my adder".into(),
            fatman_version: "1.0.0".into(),
            related_to_me: false,
        };
        assert_eq!(g.query(1).fatman_version, "1.0.0");
        assert_eq!(
            g.url(1),
            "/dashboard/activity?page=1&fatman_name=my%20adder&fatman_version=1.0.0"
        );
    }

    #[test]
    fn page_counts() {
        assert_eq!(page_count(0, 50), 1);
        assert_eq!(page_count(50, 50), 1);
        assert_eq!(page_count(51, 0), 2);
        assert_eq!(page_count(1001, 100), 11);
    }

    #[test]
    fn renders_events_filter_and_page_links() {
        let page = AuditPage {
            events: vec![
                event("fatman_deployed", "bob", ""),
                event("from_the_future", "bob", ""),
            ],
            page: 1,
            page_size: 50,
            total: 120,
        };
        let filter = Filter {
            fatman_name: "adder".into(),
            fatman_version: String::new(),
            related_to_me: true,
        };
        let html = render(&filter, &page, Utc::now()).into_string();
        for want in [
            r#"<form id="audit-filter" method="get" action="/dashboard/activity">"#,
            r#"name="fatman_name" value="adder""#,
            r#"name="fatman_version" value="""#,
            r#"name="related_to_me" value="1" checked"#,
            r#"<button id="audit-filter-submit" type="submit">Filter</button>"#,
            r#"<strong class="audit-type">Fatman_Deployed</strong>"#,
            r#"<div class="audit-sentence">Fatman adder 1.0.0 deployed by bob</div>"#,
            r#"<div class="audit-sentence">Event from_the_future on fatman adder 1.0.0 by bob</div>"#,
            r#"<a class="page-link" href="/dashboard/activity?page=2&amp;fatman_name=adder&amp;related_to_me=1">2</a>"#,
            r#"<a class="page-link" href="/dashboard/activity?page=3&amp;fatman_name=adder&amp;related_to_me=1">3</a>"#,
        ] {
            assert!(html.contains(want), "missing {want:?} in {html}");
        }
        assert_eq!(html.matches("<li class=\"audit-event\"").count(), 2);
        assert_eq!(html.matches("class=\"page-link\"").count(), 2);
    }
}
