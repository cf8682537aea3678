//! The administration pages (staff and admins): users, fatman manifests, deployments, ESCs,
//! permissions, public endpoint requests and lost fatmen. The dashboard only refuses other users
//! early; Lifecycle checks `call_admin_api` on every call with the user's own token.
//!
//! Every form posts with the CSRF token; success redirects with a flash (or re-renders when
//! there is something to show once, like a new token); a failure re-renders with what was typed.

mod access;
mod fatmen;
mod users;

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use racetrack_proto::dashboard::Empty;

use crate::error::PageError;
use crate::layout::{self, Alert};
use crate::pages::accounts::viewer;
use crate::session::{self, SignedIn};
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/administration", web::get().to(index));
    users::routes(cfg);
    fatmen::routes(cfg);
    access::routes(cfg);
}

/// Only staff and admins get past this (Lifecycle would refuse each call anyway; this spares
/// others a page of errors).
fn require_staff(user: &SignedIn) -> Result<(), PageError> {
    if !user.is_staff {
        return Err(PageError::StaffOnly);
    }
    Ok(())
}

/// A staff member's form, sent from one of our pages (its CSRF token checked).
fn staff_form(user: &SignedIn, csrf_token: Option<&str>) -> Result<(), PageError> {
    require_staff(user)?;
    session::verify_csrf(&user.session, csrf_token)
}

/// The flash left by the previous request, then `more`.
fn alerts_with(user: &SignedIn, more: Vec<Alert>) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = session::take_flash(&user.session)
        .into_iter()
        .map(Alert::from)
        .collect();
    alerts.extend(more);
    alerts
}

/// `/dashboard/administration/...` with a path segment percent-encoded.
fn seg(s: &str) -> String {
    racetrack_config::redact::percent_encode(s)
}

const SECTIONS: &[(&str, &str)] = &[
    ("/dashboard/administration/users", "Users"),
    ("/dashboard/administration/deployments", "Deployments"),
    (
        "/dashboard/administration/escs",
        "External service consumers",
    ),
    ("/dashboard/administration/permissions", "Permissions"),
    (
        "/dashboard/administration/public-endpoints",
        "Public endpoint requests",
    ),
    ("/dashboard/administration/lost", "Lost and orphaned fatmen"),
];

/// An administration page: the section links, the body, and admin.js.
fn admin_page(
    state: &State,
    user: &SignedIn,
    title: &str,
    alerts: &[Alert],
    body: Markup,
) -> HttpResponse {
    let csrf = user.csrf();
    let body = html! {
        nav.admin-sections {
            a href="/dashboard/administration" { "Administration" }
            @for (href, label) in SECTIONS {
                " · " a href=(href) { (label) }
            }
        }
        (body)
        script src="/dashboard/static/admin.js" defer {}
    };
    layout::page(&state.ui, Some(&viewer(user, &csrf)), title, alerts, body)
}

/// "true"/"false" of a hidden form field.
fn parse_bool(field: &str, value: &str) -> Result<bool, String> {
    match value.trim() {
        "true" | "on" | "1" => Ok(true),
        "false" | "off" | "0" => Ok(false),
        other => Err(format!("{field} must be true or false, not '{other}'")),
    }
}

async fn index(state: State, user: SignedIn) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    let mut more = Vec::new();
    let fatmen = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_fatmen(r).await
        })
        .await
        .map(|l| l.fatmen)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let alerts = alerts_with(&user, more);
    let body = html! {
        section.card {
            h1 { "Administration" }
            ul #admin-index {
                @for (href, label) in SECTIONS {
                    li { a href=(href) { (label) } }
                }
            }
            p.muted { "Racetrack version " (state.ui.git_version) }
        }
        section.card {
            h2 { "Fatmen" }
            p.muted { "Edit a manifest, then redeploy the fatman for the change to take effect (the next regular deployment overwrites it)." }
            (fatmen::fatmen_table(&fatmen))
        }
    };
    Ok(admin_page(&state, &user, "Administration", &alerts, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_of_hidden_fields() {
        assert_eq!(parse_bool("is_active", "true"), Ok(true));
        assert_eq!(parse_bool("is_active", " false "), Ok(false));
        assert_eq!(parse_bool("is_active", "on"), Ok(true));
        let err = parse_bool("is_staff", "yes please").unwrap_err();
        assert!(err.contains("is_staff"), "{err}");
    }
}
