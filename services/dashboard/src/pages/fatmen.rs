//! The fatmen page (`/dashboard/`): every fatman the user may read, grouped by family, paged and
//! searchable on the server so a registry of a thousand fatmen stays quick; and the actions its
//! buttons post (delete, redeploy, reprovision) with the deployment they start.

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use racetrack_model::{DeploymentStatus, FatmanStatus};
use racetrack_proto::dashboard::{Deployment, DeploymentRef, Empty, Fatman, FatmanRef};
use serde::Deserialize;

use crate::error::PageError;
use crate::layout::{self, Alert};
use crate::lifecycle::{self, LifecycleError};
use crate::live::Change;
use crate::pages::accounts::viewer;
use crate::pages::events::api_error;
use crate::session::{self, SignedIn};
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(index))
        .route(
            "/api/delete-fatman/{name}/{version}",
            web::post().to(delete),
        )
        .route(
            "/api/redeploy-fatman/{name}/{version}",
            web::post().to(redeploy),
        )
        .route(
            "/api/reprovision-fatman/{name}/{version}",
            web::post().to(reprovision),
        )
        .route("/api/deployment/{id}", web::get().to(deployment));
}

/// Families shown on one page.
pub const FAMILIES_PER_PAGE: usize = 50;

/// One family and its versions, in the order Lifecycle listed them.
#[derive(Debug)]
pub struct FamilyGroup<'a> {
    pub name: &'a str,
    pub versions: Vec<&'a Fatman>,
}

/// One page of families matching a search.
#[derive(Debug)]
pub struct FatmenPage<'a> {
    pub families: Vec<FamilyGroup<'a>>,
    /// 1-based, within `1..=pages`.
    pub page: usize,
    /// At least 1 (an empty result is one empty page).
    pub pages: usize,
    pub matching_families: usize,
    pub matching_fatmen: usize,
}

/// Groups fatmen by family (families by name), keeps the families whose name contains `q`
/// (case-insensitive; empty = all) and cuts out page `page` (clamped to the pages there are).
pub fn group_and_page<'a>(
    fatmen: &'a [Fatman],
    q: &str,
    page: usize,
    per_page: usize,
) -> FatmenPage<'a> {
    let needle = q.trim().to_lowercase();
    let mut families: BTreeMap<&'a str, Vec<&'a Fatman>> = BTreeMap::new();
    for f in fatmen {
        if needle.is_empty() || f.name.to_lowercase().contains(&needle) {
            families.entry(f.name.as_str()).or_default().push(f);
        }
    }
    let per_page = per_page.max(1);
    let matching_families = families.len();
    let matching_fatmen = families.values().map(Vec::len).sum();
    let pages = matching_families.div_ceil(per_page).max(1);
    let page = page.clamp(1, pages);
    let families = families
        .into_iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .map(|(name, versions)| FamilyGroup { name, versions })
        .collect();
    FatmenPage {
        families,
        page,
        pages,
        matching_families,
        matching_fatmen,
    }
}

/// Page numbers to link around `current` (`None`: a gap), so thousands of pages stay a short
/// row of links.
pub fn page_window(current: usize, pages: usize) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    let mut last = 0;
    for p in 1..=pages {
        let near = p.abs_diff(current) <= 2;
        if p == 1 || p == pages || near {
            if last != 0 && p > last + 1 {
                out.push(None);
            }
            out.push(Some(p));
            last = p;
        }
    }
    out
}

/// The badge's colour class (style.css): the status itself for the two with their own colour.
pub fn status_class(status: &str) -> &'static str {
    match status.parse::<FatmanStatus>() {
        Ok(s @ (FatmanStatus::Running | FatmanStatus::Error)) => s.as_str(),
        _ => "other",
    }
}

fn is_running(status: &str) -> bool {
    status.parse::<FatmanStatus>() == Ok(FatmanStatus::Running)
}

fn enc(s: &str) -> String {
    racetrack_config::redact::percent_encode(s)
}

fn fatman_path(name: &str, version: &str) -> String {
    format!("{}/{}", enc(name), enc(version))
}

/// Where the browser opens a fatman (through PUB, which reads the `X-Racetrack-Auth` cookie).
pub fn open_url(pub_url: &str, name: &str, version: &str) -> String {
    format!("{pub_url}/fatman/{}/", fatman_path(name, version))
}

fn list_url(q: &str, page: usize) -> String {
    if q.is_empty() {
        format!("/dashboard/?page={page}")
    } else {
        format!("/dashboard/?q={}&page={page}", enc(q))
    }
}

pub fn pager(current: usize, pages: usize, url: impl Fn(usize) -> String) -> Markup {
    html! {
        @if pages > 1 {
            nav.pager aria-label="Pages" {
                @for p in page_window(current, pages) {
                    @match p {
                        Some(p) if p == current => span.page-current aria-current="page" { (p) },
                        Some(p) => a.page-link href=(url(p)) { (p) },
                        None => span.muted { "…" },
                    }
                }
            }
        }
    }
}

fn render_fatman(f: &Fatman, pub_url: &str, now: DateTime<Utc>) -> Markup {
    let path = fatman_path(&f.name, &f.version);
    let target = format!("{} v{}", f.name, f.version);
    let labels: BTreeMap<&String, &String> = f.labels.iter().collect();
    let updated = crate::time::ago_text(now, &f.update_time);
    let created = crate::time::ago_text(now, &f.create_time);
    let called = crate::time::ago_text(now, &f.last_call_time);
    html! {
        div.fatman id=(format!("fatman-{}-{}", f.name, f.version)) data-name=(f.name)
            data-version=(f.version) data-open-url=(open_url(pub_url, &f.name, &f.version)) {
            div.fatman-head {
                strong.fatman-title { (f.name) " " span.version { (f.version) } }
                " "
                span class=(format!("badge status {}", status_class(&f.status))) { (f.status.to_uppercase()) }
                @if !f.infrastructure_target.is_empty() {
                    " " span.pill.infrastructure title="Infrastructure Target" { (f.infrastructure_target) }
                }
                @for (k, v) in &labels {
                    " " span.pill.label { (k) ": " (v) }
                }
            }
            p.fatman-meta.muted {
                "Owner: " span.owner { @if f.owner_email.is_empty() { "—" } @else { (f.owner_email) } }
                " · deployed by " span.deployed-by { @if f.deployed_by.is_empty() { "—" } @else { (f.deployed_by) } }
                " · updated " span.age title=(f.update_time) { (updated) }
                @if !created.is_empty() { " · created " span title=(f.create_time) { (created) } }
                " · last called " span title=(f.last_call_time) { @if called.is_empty() { "never" } @else { (called) } }
                @if !f.job_type.is_empty() { " · job type " code { (f.job_type) } }
            }
            div.alert.error.fatman-error role="alert" hidden[f.error.is_empty()] { (f.error) }
            details.manifest {
                summary { "Manifest" }
                pre { code { (f.manifest_yaml) } }
            }
            div.fatman-actions {
                span.open-slot {
                    @if is_running(&f.status) {
                        a.open-fatman href=(open_url(pub_url, &f.name, &f.version)) target="_blank" rel="noopener noreferrer" { "Open" }
                    } @else {
                        span.open-disabled.muted title="Job isn't healthy" { "Open" }
                    }
                }
                " "
                a.logs-runtime href=(format!("/dashboard/fatman/logs/{path}")) target="_blank" rel="noopener" { "Runtime logs" }
                " "
                a.logs-build href=(format!("/dashboard/fatman/build-logs/{path}")) target="_blank" rel="noopener" { "Build logs" }
                " "
                a.logs-follow href=(format!("/dashboard/fatman/{path}/logs/follow")) target="_blank" rel="noopener" { "Follow logs" }
                " "
                button.redeploy type="button"
                    data-action-url=(format!("/dashboard/api/redeploy-fatman/{path}"))
                    data-action-name="Redeploy" data-action-target=(target)
                    data-confirm=(format!("Redeploy {target}: rebuild its image and provision it again?")) { "Redeploy" }
                " "
                button.reprovision.secondary type="button"
                    data-action-url=(format!("/dashboard/api/reprovision-fatman/{path}"))
                    data-action-name="Reprovision" data-action-target=(target)
                    data-confirm=(format!("Reprovision {target} from its existing image?")) { "Reprovision" }
                " "
                button.delete.danger type="button"
                    data-action-url=(format!("/dashboard/api/delete-fatman/{path}"))
                    data-action-name="Delete" data-action-target=(target)
                    data-confirm=(format!("Delete fatman {target}? Its container is removed.")) { "Delete" }
            }
        }
    }
}

/// The page's content (everything inside the frame).
pub fn render_list(page: &FatmenPage, q: &str, pub_url: &str, now: DateTime<Utc>) -> Markup {
    html! {
        section.card #fatmen {
            h1 { "Fatmen (" span #fatmen-count { (page.matching_fatmen) } ")" }
            form #fatmen-search method="get" action="/dashboard/" {
                label.inline-label {
                    "Family name "
                    input type="search" name="q" value=(q) placeholder="search families";
                }
                " "
                button type="submit" #fatmen-search-submit { "Search" }
                @if !q.is_empty() { " " a href="/dashboard/" { "clear" } }
            }
            div #live-note.alert.success role="status" hidden {
                span #live-note-text {}
                " "
                a href=(list_url(q, page.page)) { "reload" }
            }
            @if page.families.is_empty() {
                p.muted #no-fatmen {
                    @if q.is_empty() { "No fatmen yet." } @else { "No family matches this search." }
                }
            }
            @for family in &page.families {
                div.family id=(format!("family-{}", family.name)) data-family=(family.name) {
                    h2 { (family.name) " " span.muted { "(" (family.versions.len()) ")" } }
                    @for f in &family.versions { (render_fatman(f, pub_url, now)) }
                }
            }
            (pager(page.page, page.pages, |p| list_url(q, p)))
        }
        script src="/dashboard/static/fatmen.js" defer {}
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    page: Option<String>,
}

async fn index(state: State, user: SignedIn, query: web::Query<ListQuery>) -> HttpResponse {
    let mut alerts: Vec<Alert> = session::take_flash(&user.session)
        .into_iter()
        .map(Alert::from)
        .collect();
    let q = query.q.clone().unwrap_or_default();
    let page_no = query
        .page
        .as_deref()
        .and_then(|p| p.trim().parse::<usize>().ok())
        .unwrap_or(1);
    let fatmen = match state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_fatmen(r).await
        })
        .await
    {
        Ok(list) => list.fatmen,
        Err(e) => {
            alerts.push(Alert::Error(e.to_string()));
            Vec::new()
        }
    };
    let page = group_and_page(&fatmen, &q, page_no, FAMILIES_PER_PAGE);
    let body = render_list(&page, &q, &state.ui.external_pub_url, Utc::now());
    let csrf = user.csrf();
    let viewer = viewer(&user, &csrf);
    layout::page(&state.ui, Some(&viewer), "Fatmen", &alerts, body)
}

/// A deployment as the page's script polls it: `final` tells it to stop (an unknown status is
/// final too, so no page polls forever).
pub fn deployment_json(d: &Deployment) -> serde_json::Value {
    let finished = !matches!(
        d.status.parse::<DeploymentStatus>(),
        Ok(DeploymentStatus::InProgress)
    );
    serde_json::json!({
        "deployment": {
            "id": d.id,
            "status": d.status,
            "phase": d.phase,
            "error": d.error,
            "fatman_name": d.fatman_name,
            "fatman_version": d.fatman_version,
            "final": finished,
        }
    })
}

fn lifecycle_json_error(e: LifecycleError) -> HttpResponse {
    HttpResponse::build(lifecycle::http_status(&e))
        .json(serde_json::json!({ "error": e.to_string() }))
}

#[derive(Clone, Copy)]
enum Action {
    Delete,
    Redeploy,
    Reprovision,
}

async fn act(
    req: HttpRequest,
    state: State,
    user: Result<SignedIn, PageError>,
    path: web::Path<(String, String)>,
    action: Action,
) -> HttpResponse {
    let user = match user {
        Ok(u) => u,
        Err(e) => return api_error(&e),
    };
    if let Err(e) = session::verify_csrf_header(&req, &user.session) {
        return crate::error::json_error(&e);
    }
    let (name, version) = path.into_inner();
    let target = FatmanRef {
        name: name.clone(),
        version,
    };
    let token = Some(user.token.as_str());
    let lc = &state.lifecycle;
    let answer = match action {
        Action::Delete => lc
            .call(
                token,
                target,
                |mut c, r| async move { c.delete_fatman(r).await },
            )
            .await
            .map(|_| None),
        Action::Redeploy => lc
            .call(token, target, |mut c, r| async move {
                c.redeploy_fatman(r).await
            })
            .await
            .map(Some),
        Action::Reprovision => lc
            .call(token, target, |mut c, r| async move {
                c.reprovision_fatman(r).await
            })
            .await
            .map(Some),
    };
    match answer {
        Ok(deployment) => {
            state.live.notify(Change::Family(name));
            match deployment {
                Some(d) => HttpResponse::Ok().json(deployment_json(&d)),
                None => HttpResponse::NoContent().finish(),
            }
        }
        Err(e) => lifecycle_json_error(e),
    }
}

async fn delete(
    req: HttpRequest,
    state: State,
    user: Result<SignedIn, PageError>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    act(req, state, user, path, Action::Delete).await
}

async fn redeploy(
    req: HttpRequest,
    state: State,
    user: Result<SignedIn, PageError>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    act(req, state, user, path, Action::Redeploy).await
}

async fn reprovision(
    req: HttpRequest,
    state: State,
    user: Result<SignedIn, PageError>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    act(req, state, user, path, Action::Reprovision).await
}

async fn deployment(
    state: State,
    user: Result<SignedIn, PageError>,
    path: web::Path<String>,
) -> HttpResponse {
    let user = match user {
        Ok(u) => u,
        Err(e) => return api_error(&e),
    };
    let id = path.into_inner();
    match state
        .lifecycle
        .call(
            Some(&user.token),
            DeploymentRef { id },
            |mut c, r| async move { c.get_deployment(r).await },
        )
        .await
    {
        Ok(d) => HttpResponse::Ok().json(deployment_json(&d)),
        Err(e) => lifecycle_json_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fatman(name: &str, version: &str, status: &str) -> Fatman {
        Fatman {
            name: name.into(),
            version: version.into(),
            status: status.into(),
            ..Default::default()
        }
    }

    fn thousand() -> Vec<Fatman> {
        // 250 families of 4 versions, listed newest version first, families interleaved.
        let mut out = Vec::new();
        for v in (1..=4).rev() {
            for fam in 0..250 {
                out.push(fatman(
                    &format!("fam-{fam:03}"),
                    &format!("{v}.0.0"),
                    "running",
                ));
            }
        }
        out
    }

    #[test]
    fn groups_by_family_sorted_by_name_keeping_version_order() {
        let list = vec![
            fatman("zeta", "2.0.0", "running"),
            fatman("adder", "1.1.0", "running"),
            fatman("zeta", "1.0.0", "error"),
            fatman("adder", "1.0.0", "lost"),
        ];
        let page = group_and_page(&list, "", 1, 50);
        let names: Vec<_> = page.families.iter().map(|f| f.name).collect();
        assert_eq!(names, ["adder", "zeta"]);
        let adder: Vec<_> = page.families[0]
            .versions
            .iter()
            .map(|f| f.version.as_str())
            .collect();
        assert_eq!(adder, ["1.1.0", "1.0.0"]);
        assert_eq!((page.page, page.pages, page.matching_fatmen), (1, 1, 4));
    }

    #[test]
    fn pages_of_fifty_families() {
        let list = thousand();
        let first = group_and_page(&list, "", 1, FAMILIES_PER_PAGE);
        assert_eq!(
            (first.pages, first.matching_families, first.matching_fatmen),
            (5, 250, 1000)
        );
        assert_eq!(first.families.len(), 50);
        assert_eq!(first.families[0].name, "fam-000");
        assert_eq!(first.families[0].versions.len(), 4);
        let third = group_and_page(&list, "", 3, FAMILIES_PER_PAGE);
        assert_eq!(third.families[0].name, "fam-100");
        // Out of range pages are clamped, not empty or an error.
        assert_eq!(group_and_page(&list, "", 99, FAMILIES_PER_PAGE).page, 5);
        assert_eq!(group_and_page(&list, "", 0, FAMILIES_PER_PAGE).page, 1);
    }

    #[test]
    fn search_matches_family_names_case_insensitively() {
        let list = thousand();
        let page = group_and_page(&list, " FAM-01 ", 1, FAMILIES_PER_PAGE);
        assert_eq!(page.matching_families, 10);
        assert!(page.families.iter().all(|f| f.name.starts_with("fam-01")));
        let none = group_and_page(&list, "nothing", 1, FAMILIES_PER_PAGE);
        assert!(none.families.is_empty());
        assert_eq!((none.page, none.pages), (1, 1));
    }

    #[test]
    fn page_window_has_gaps() {
        assert_eq!(page_window(1, 1), vec![Some(1)]);
        assert_eq!(
            page_window(10, 20),
            vec![
                Some(1),
                None,
                Some(8),
                Some(9),
                Some(10),
                Some(11),
                Some(12),
                None,
                Some(20)
            ]
        );
        assert_eq!(page_window(2, 4), vec![Some(1), Some(2), Some(3), Some(4)]);
    }

    #[test]
    fn badge_classes() {
        assert_eq!(status_class("running"), "running");
        assert_eq!(status_class("error"), "error");
        for other in ["created", "orphaned", "lost", "something-new", ""] {
            assert_eq!(status_class(other), "other");
        }
    }

    #[test]
    fn renders_the_element_contract() {
        let mut running = fatman("adder", "1.0.0", "running");
        running.owner_email = "owner@example.com".into();
        running.deployed_by = "bob".into();
        running.infrastructure_target = "docker".into();
        running.labels = [("team".to_string(), "<b>ds</b>".to_string())].into();
        running.manifest_yaml = "name: adder\n".into();
        let mut broken = fatman("adder", "0.9.0", "error");
        broken.error = "container exited".into();
        let list = vec![running, broken];
        let page = group_and_page(&list, "", 1, 50);
        let html = render_list(&page, "", "http://pub.example/pub", Utc::now()).into_string();
        for want in [
            r#"<div class="fatman" id="fatman-adder-1.0.0" data-name="adder" data-version="1.0.0""#,
            r#"<span class="badge status running">RUNNING</span>"#,
            r#"<span class="badge status error">ERROR</span>"#,
            r#"<a class="open-fatman" href="http://pub.example/pub/fatman/adder/1.0.0/" target="_blank""#,
            r#"data-action-url="/dashboard/api/redeploy-fatman/adder/1.0.0""#,
            r#"data-action-url="/dashboard/api/reprovision-fatman/adder/1.0.0""#,
            r#"data-action-url="/dashboard/api/delete-fatman/adder/1.0.0""#,
            r#"data-action-target="adder v1.0.0""#,
            r#"href="/dashboard/fatman/logs/adder/1.0.0""#,
            r#"href="/dashboard/fatman/build-logs/adder/1.0.0""#,
            "owner@example.com",
            "team: &lt;b&gt;ds&lt;/b&gt;",
            "<details class=\"manifest\"><summary>Manifest</summary><pre><code>name: adder\n",
            "container exited",
            "Fatmen (<span id=\"fatmen-count\">2</span>)",
        ] {
            assert!(html.contains(want), "missing {want:?} in {html}");
        }
        assert_eq!(
            html.matches("class=\"open-fatman\"").count(),
            1,
            "only the running one opens"
        );
        assert_eq!(html.matches("<button class=\"redeploy\"").count(), 2);
        assert_eq!(
            html.matches("<button class=\"reprovision secondary\"")
                .count(),
            2
        );
        assert_eq!(html.matches("<button class=\"delete danger\"").count(), 2);
        assert_eq!(html.matches("data-confirm=").count(), 6);
        assert!(!html.contains("<script>"), "no inline script");
    }

    #[test]
    fn deployment_json_says_when_to_stop_polling() {
        let mut d = Deployment {
            id: "d1".into(),
            status: "in_progress".into(),
            phase: "building image".into(),
            ..Default::default()
        };
        let j = deployment_json(&d);
        assert_eq!(j["deployment"]["id"], "d1");
        assert_eq!(j["deployment"]["status"], "in_progress");
        assert_eq!(j["deployment"]["phase"], "building image");
        assert_eq!(j["deployment"]["final"], false);
        for status in ["done", "failed", "unheard-of"] {
            d.status = status.into();
            assert_eq!(deployment_json(&d)["deployment"]["final"], true, "{status}");
        }
    }
}
