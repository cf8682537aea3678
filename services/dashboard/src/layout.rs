//! The frame every page shares: navigation, alerts, footer; and small rendering helpers.
//! Pages are maud templates (compiled, escaped by default); no inline script anywhere (the CSP
//! forbids it): behaviour lives in `/dashboard/static/app.js`, data for it in `data-*`
//! attributes or `<script type="application/json">` blocks.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::session::Flash;

/// What the frame needs to know about the deployment (from `Config`).
#[derive(Debug, Clone)]
pub struct Ui {
    pub site_name: String,
    pub git_version: String,
    pub external_pub_url: String,
}

impl Ui {
    /// The navbar's colour class (style.css): green for test, orange for preprod, dark red
    /// for prod, so nobody mistakes one environment for another. A class, not a style
    /// attribute: the CSP allows no inline style.
    fn navbar_class(&self) -> &'static str {
        match self.site_name.to_lowercase().as_str() {
            "test" => "navbar site-test",
            "preprod" => "navbar site-preprod",
            "prod" => "navbar site-prod",
            _ => "navbar",
        }
    }

    fn prefix(&self) -> String {
        if self.site_name.is_empty() {
            String::new()
        } else {
            format!("[{}] ", self.site_name)
        }
    }
}

/// Who is looking at the page.
pub struct Viewer<'a> {
    pub username: &'a str,
    pub is_staff: bool,
    /// Put in a `<meta>` for scripts' `X-CSRF-Token` header.
    pub csrf: &'a str,
}

/// A message shown at the top of the page.
#[derive(Debug, Clone, PartialEq)]
pub enum Alert {
    Success(String),
    Error(String),
}

impl From<Flash> for Alert {
    fn from(f: Flash) -> Alert {
        if f.success {
            Alert::Success(f.text)
        } else {
            Alert::Error(f.text)
        }
    }
}

/// A whole page (200).
pub fn page(
    ui: &Ui,
    viewer: Option<&Viewer>,
    title: &str,
    alerts: &[Alert],
    body: Markup,
) -> HttpResponse {
    page_with_status(StatusCode::OK, ui, viewer, title, alerts, body)
}

pub fn page_with_status(
    status: StatusCode,
    ui: &Ui,
    viewer: Option<&Viewer>,
    title: &str,
    alerts: &[Alert],
    body: Markup,
) -> HttpResponse {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(v) = viewer { meta name="csrf-token" content=(v.csrf); }
                title { (ui.prefix()) (title) " · Racetrack Dashboard" }
                link rel="stylesheet" href="/dashboard/static/style.css";
                script src="/dashboard/static/app.js" defer {}
            }
            body {
                nav class=(ui.navbar_class()) {
                    a.brand href="/dashboard/" { (ui.prefix()) "Racetrack Dashboard" }
                    @if viewer.is_some() {
                        a href="/dashboard/" { "Fatmen" }
                        a href="/dashboard/graph" { "Graph" }
                        a href="/dashboard/portfolio" { "Portfolio" }
                        a href="/dashboard/activity" { "Audit Log" }
                    }
                    span.spacer {}
                    @match viewer {
                        Some(v) => {
                            @if v.is_staff { a href="/dashboard/administration" { "Administration" } }
                            a href="/dashboard/profile" title=(format!("Hi {}!", v.username)) { "Profile" }
                            form.inline method="post" action="/dashboard/accounts/logout" {
                                input type="hidden" name="csrf_token" value=(v.csrf);
                                button.link type="submit" id="logout" { "Sign out" }
                            }
                        }
                        None => { a href="/dashboard/accounts/login" { "Sign in" } }
                    }
                }
                main {
                    div #alerts {
                        @for a in alerts {
                            @match a {
                                Alert::Success(t) => div.alert.success role="status" { (t) },
                                Alert::Error(t) => div.alert.error role="alert" { (t) },
                            }
                        }
                    }
                    (body)
                }
                footer { "Racetrack version " (ui.git_version) }
            }
        }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// 303 to `to`: where a form's action sends the browser next (POST → redirect → GET).
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((actix_web::http::header::LOCATION, to.to_string()))
        .finish()
}

/// A bare page for errors that happen outside any page (no session at hand).
pub fn error_page(status: StatusCode, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Error · Racetrack Dashboard" }
                link rel="stylesheet" href="/dashboard/static/style.css";
            }
            body {
                nav.navbar { a.brand href="/dashboard/" { "Racetrack Dashboard" } }
                main {
                    div.alert.error role="alert" {
                        strong { (status.as_u16()) " " (status.canonical_reason().unwrap_or("Error")) ": " }
                        (message)
                    }
                    p { a href="/dashboard/" { "Back to the dashboard" } }
                }
            }
        }
    }
}

/// Data for the page's script: JSON in a non-executed `<script type="application/json">` (the
/// CSP allows it; `</` is escaped so the data cannot end the element).
pub fn json_data(id: &str, value: &serde_json::Value) -> Markup {
    let text = value.to_string().replace("</", "<\\/");
    html! { script type="application/json" id=(id) { (PreEscaped(text)) } }
}

/// A hidden CSRF field for a form.
pub fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(csrf); }
}
