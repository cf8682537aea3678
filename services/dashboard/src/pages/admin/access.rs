//! Who may call what: external service consumers (ESCs) and their tokens, permissions, and
//! requests to make fatman endpoints public.

use actix_web::{web, HttpResponse};
use maud::{html, Markup};
use racetrack_model::AuthScope;
use racetrack_proto::dashboard::{
    CreateEscRequest, Empty, Esc, EscRef, EscWithToken, GrantPermissionRequest, Permission,
    PermissionRef, PublicEndpointRequest, SetPublicEndpointRequestRequest, Subject,
};
use serde::Deserialize;

use super::{admin_page, alerts_with, parse_bool, require_staff, seg, staff_form};
use crate::error::PageError;
use crate::layout::{csrf_field, see_other, Alert};
use crate::session::{self, SignedIn};
use crate::State;

const ESCS: &str = "/dashboard/administration/escs";
const PERMISSIONS: &str = "/dashboard/administration/permissions";
const PUBLIC_ENDPOINTS: &str = "/dashboard/administration/public-endpoints";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/administration/escs", web::get().to(escs))
        .route("/administration/escs", web::post().to(create_esc))
        .route(
            "/administration/escs/{id}/reset-token",
            web::post().to(reset_esc_token),
        )
        .route(
            "/administration/escs/{id}/delete",
            web::post().to(delete_esc),
        )
        .route("/administration/permissions", web::get().to(permissions))
        .route("/administration/permissions", web::post().to(grant))
        .route(
            "/administration/permissions/{id}/revoke",
            web::post().to(revoke),
        )
        .route(
            "/administration/public-endpoints",
            web::get().to(public_endpoints),
        )
        .route(
            "/administration/public-endpoints/{id}",
            web::post().to(set_public_endpoint),
        );
}

#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    csrf_token: Option<String>,
}

// ---------------------------------------------------------------- ESCs

#[derive(Debug, Default, Deserialize)]
pub struct EscForm {
    #[serde(default)]
    name: String,
    csrf_token: Option<String>,
}

fn parse_esc_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("give the ESC a name".into());
    }
    Ok(name.to_string())
}

fn esc_row(e: &Esc, csrf: &str) -> Markup {
    html! {
        tr.esc data-esc-id=(e.id) {
            td { (e.name) }
            td { code { (e.id) } }
            td {
                form.inline method="post" action=(format!("{ESCS}/{}/reset-token", seg(&e.id)))
                    data-confirm=(format!("Issue a new token for {}? The current one stops working.", e.name)) {
                    (csrf_field(csrf))
                    button.reset-token.secondary type="submit" { "Reset token" }
                }
                " "
                form.inline method="post" action=(format!("{ESCS}/{}/delete", seg(&e.id)))
                    data-confirm=(format!("Delete ESC {}? Its token stops working.", e.name)) {
                    (csrf_field(csrf))
                    button.delete.danger type="submit" { "Delete" }
                }
            }
        }
    }
}

/// The ESC page, with a token shown this once when there is one.
async fn escs_page(
    state: &State,
    user: &SignedIn,
    typed_name: &str,
    new: Option<(&EscWithToken, &str)>,
    more: Vec<Alert>,
) -> HttpResponse {
    let mut more = more;
    let list = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_escs(r).await
        })
        .await
        .map(|l| l.escs)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let alerts = alerts_with(user, more);
    let csrf = user.csrf();
    let body = html! {
        section.card {
            h1 { "External service consumers" }
            p.muted { "Programs outside Racetrack calling fatmen, each with its own token. Grant them call_fatman on the permissions page." }
            form #create-esc method="post" action=(ESCS) {
                (csrf_field(&csrf))
                label.inline { "Name " input type="text" name="name" value=(typed_name) required; }
                button #create-esc-submit type="submit" { "Create ESC" }
            }
        }
        @if let Some((esc, heading)) = new {
            section.card.highlight #new-esc-token-card {
                h2 { (heading) ": " (esc.esc.as_ref().map(|e| e.name.as_str()).unwrap_or_default()) }
                p { "Copy the token now: it is shown only this once." }
                code #new-esc-token { (esc.token) }
            }
        }
        section.card {
            table #escs {
                thead { tr { th { "Name" } th { "Id" } th { "Actions" } } }
                tbody {
                    @for e in &list { (esc_row(e, &csrf)) }
                    @if list.is_empty() { tr { td colspan="3" { "No ESCs" } } }
                }
            }
        }
    };
    admin_page(state, user, "ESCs", &alerts, body)
}

async fn escs(state: State, user: SignedIn) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    Ok(escs_page(&state, &user, "", None, Vec::new()).await)
}

async fn create_esc(
    state: State,
    user: SignedIn,
    form: web::Form<EscForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let name = match parse_esc_name(&form.name) {
        Ok(n) => n,
        Err(e) => {
            return Ok(escs_page(&state, &user, &form.name, None, vec![Alert::Error(e)]).await)
        }
    };
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            CreateEscRequest { name: name.clone() },
            |mut c, r| async move { c.create_esc(r).await },
        )
        .await;
    Ok(match result {
        Ok(created) => {
            tracing::info!(admin = %user.username, esc = %name, "ESC created");
            escs_page(
                &state,
                &user,
                "",
                Some((&created, "New ESC")),
                vec![Alert::Success(format!("ESC {name} created"))],
            )
            .await
        }
        Err(e) => {
            escs_page(
                &state,
                &user,
                &form.name,
                None,
                vec![Alert::Error(e.to_string())],
            )
            .await
        }
    })
}

async fn reset_esc_token(
    state: State,
    user: SignedIn,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let id = path.into_inner();
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            EscRef { id: id.clone() },
            |mut c, r| async move { c.reset_esc_token(r).await },
        )
        .await;
    Ok(match result {
        Ok(reset) => {
            tracing::info!(admin = %user.username, esc = %id, "ESC token reset");
            escs_page(
                &state,
                &user,
                "",
                Some((&reset, "New token of ESC")),
                vec![Alert::Success(
                    "Token reset: the old one no longer works".into(),
                )],
            )
            .await
        }
        Err(e) => escs_page(&state, &user, "", None, vec![Alert::Error(e.to_string())]).await,
    })
}

async fn delete_esc(
    state: State,
    user: SignedIn,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let id = path.into_inner();
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            EscRef { id: id.clone() },
            |mut c, r| async move { c.delete_esc(r).await },
        )
        .await;
    match result {
        Ok(_) => {
            tracing::info!(admin = %user.username, esc = %id, "ESC deleted");
            session::flash(&user.session, true, format!("ESC {id} deleted"));
        }
        Err(e) => session::flash(&user.session, false, e.to_string()),
    }
    Ok(see_other(ESCS))
}

// ---------------------------------------------------------------- permissions

#[derive(Debug, Default, Clone, Deserialize)]
pub struct GrantForm {
    #[serde(default)]
    auth_subject_id: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    fatman_family: String,
    #[serde(default)]
    fatman_name: String,
    #[serde(default)]
    fatman_version: String,
    #[serde(default)]
    endpoint: String,
    csrf_token: Option<String>,
}

/// The grant a form asks for: a subject, a known scope, and optional narrowing fields.
fn parse_grant(form: &GrantForm) -> Result<GrantPermissionRequest, String> {
    let subject = form.auth_subject_id.trim();
    if subject.is_empty() {
        return Err("choose who gets the permission".into());
    }
    let scope: AuthScope = form.scope.trim().parse().map_err(|e| format!("{e}"))?;
    if !form.fatman_version.trim().is_empty() && form.fatman_name.trim().is_empty() {
        return Err("a fatman version needs the fatman's name".into());
    }
    Ok(GrantPermissionRequest {
        auth_subject_id: subject.to_string(),
        scope: scope.as_str().to_string(),
        fatman_family: form.fatman_family.trim().to_string(),
        fatman_name: form.fatman_name.trim().to_string(),
        fatman_version: form.fatman_version.trim().to_string(),
        endpoint: form.endpoint.trim().to_string(),
    })
}

/// "kind: name", as the subject picker shows it.
fn subject_label(s: &Subject) -> String {
    format!("{}: {}", s.kind, s.name)
}

fn grant_form(subjects: &[Subject], typed: &GrantForm, csrf: &str) -> Markup {
    html! {
        form #grant-permission method="post" action=(PERMISSIONS) {
            (csrf_field(csrf))
            label {
                "Who"
                select name="auth_subject_id" required {
                    @for s in subjects {
                        option value=(s.id) selected[s.id == typed.auth_subject_id] { (subject_label(s)) }
                    }
                }
            }
            label {
                "Scope"
                select name="scope" required {
                    @for scope in AuthScope::ALL {
                        option value=(scope.as_str()) selected[scope.as_str() == typed.scope] { (scope.as_str()) }
                    }
                }
            }
            p.muted { "Leave the fields below empty for any; each one filled narrows the permission." }
            label.inline { "Fatman family " input type="text" name="fatman_family" value=(typed.fatman_family); }
            label.inline { "Fatman name " input type="text" name="fatman_name" value=(typed.fatman_name); }
            label.inline { "Fatman version " input type="text" name="fatman_version" value=(typed.fatman_version); }
            label.inline { "Endpoint " input type="text" name="endpoint" value=(typed.endpoint) placeholder="/api/v1/perform"; }
            button #grant-submit type="submit" { "Grant" }
        }
    }
}

fn permission_row(p: &Permission, csrf: &str) -> Markup {
    let any = |v: &str| -> Markup {
        html! { @if v.is_empty() { span.muted { "any" } } @else { (v) } }
    };
    html! {
        tr.permission data-permission-id=(p.id) {
            td { (p.subject) }
            td.scope { code { (p.scope) } }
            td { (any(&p.fatman_family)) }
            td { (any(&p.fatman_name)) }
            td { (any(&p.fatman_version)) }
            td { (any(&p.endpoint)) }
            td {
                form.inline method="post" action=(format!("{PERMISSIONS}/{}/revoke", seg(&p.id)))
                    data-confirm=(format!("Revoke {} of {}?", p.scope, p.subject)) {
                    (csrf_field(csrf))
                    button.revoke.danger type="submit" { "Revoke" }
                }
            }
        }
    }
}

async fn permissions_page(
    state: &State,
    user: &SignedIn,
    typed: &GrantForm,
    more: Vec<Alert>,
) -> HttpResponse {
    let mut more = more;
    let subjects = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_subjects(r).await
        })
        .await
        .map(|l| l.subjects)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let list = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_permissions(r).await
        })
        .await
        .map(|l| l.permissions)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let alerts = alerts_with(user, more);
    let csrf = user.csrf();
    let body = html! {
        section.card {
            h1 { "Permissions" }
            h2 { "Grant" }
            (grant_form(&subjects, typed, &csrf))
        }
        section.card {
            table #permissions {
                thead { tr { th { "Who" } th { "Scope" } th { "Family" } th { "Fatman" } th { "Version" } th { "Endpoint" } th {} } }
                tbody {
                    @for p in &list { (permission_row(p, &csrf)) }
                    @if list.is_empty() { tr { td colspan="7" { "No permissions" } } }
                }
            }
        }
    };
    admin_page(state, user, "Permissions", &alerts, body)
}

async fn permissions(state: State, user: SignedIn) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    Ok(permissions_page(&state, &user, &GrantForm::default(), Vec::new()).await)
}

async fn grant(
    state: State,
    user: SignedIn,
    form: web::Form<GrantForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let typed = form.into_inner();
    let request = match parse_grant(&typed) {
        Ok(r) => r,
        Err(e) => return Ok(permissions_page(&state, &user, &typed, vec![Alert::Error(e)]).await),
    };
    let scope = request.scope.clone();
    let result = state
        .lifecycle
        .call(Some(&user.token), request, |mut c, r| async move {
            c.grant_permission(r).await
        })
        .await;
    Ok(match result {
        Ok(p) => {
            tracing::info!(admin = %user.username, subject = %p.subject, scope = %scope, "permission granted");
            session::flash(
                &user.session,
                true,
                format!("Granted {scope} to {}", p.subject),
            );
            see_other(PERMISSIONS)
        }
        Err(e) => permissions_page(&state, &user, &typed, vec![Alert::Error(e.to_string())]).await,
    })
}

async fn revoke(
    state: State,
    user: SignedIn,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let id = path.into_inner();
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            PermissionRef { id: id.clone() },
            |mut c, r| async move { c.revoke_permission(r).await },
        )
        .await;
    match result {
        Ok(_) => {
            tracing::info!(admin = %user.username, permission = %id, "permission revoked");
            session::flash(&user.session, true, "Permission revoked");
        }
        Err(e) => session::flash(&user.session, false, e.to_string()),
    }
    Ok(see_other(PERMISSIONS))
}

// ---------------------------------------------------------------- public endpoints

#[derive(Debug, Default, Deserialize)]
pub struct PublicEndpointForm {
    #[serde(default)]
    active: String,
    csrf_token: Option<String>,
}

fn public_endpoint_row(r: &PublicEndpointRequest, csrf: &str) -> Markup {
    html! {
        tr.public-endpoint data-request-id=(r.id) {
            td { (r.fatman_name) }
            td { (r.fatman_version) }
            td { code { (r.endpoint) } }
            td.active { @if r.active { "approved" } @else { "pending" } }
            td {
                form.inline method="post" action=(format!("{PUBLIC_ENDPOINTS}/{}", seg(&r.id))) {
                    (csrf_field(csrf))
                    @if r.active {
                        input type="hidden" name="active" value="false";
                        button.withdraw.danger type="submit" { "Withdraw" }
                    } @else {
                        input type="hidden" name="active" value="true";
                        button.approve type="submit" { "Approve" }
                    }
                }
            }
        }
    }
}

async fn public_endpoints(state: State, user: SignedIn) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    let mut more = Vec::new();
    let list = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_public_endpoint_requests(r).await
        })
        .await
        .map(|l| l.requests)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let alerts = alerts_with(&user, more);
    let csrf = user.csrf();
    let body = html! {
        section.card {
            h1 { "Public endpoint requests" }
            p.muted { "An approved endpoint can be called without a token." }
            table #public-endpoints {
                thead { tr { th { "Fatman" } th { "Version" } th { "Endpoint" } th { "State" } th {} } }
                tbody {
                    @for r in &list { (public_endpoint_row(r, &csrf)) }
                    @if list.is_empty() { tr { td colspan="5" { "No requests" } } }
                }
            }
        }
    };
    Ok(admin_page(&state, &user, "Public endpoints", &alerts, body))
}

async fn set_public_endpoint(
    state: State,
    user: SignedIn,
    path: web::Path<String>,
    form: web::Form<PublicEndpointForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let active = parse_bool("active", &form.active).map_err(PageError::BadRequest)?;
    let id = path.into_inner();
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            SetPublicEndpointRequestRequest {
                id: id.clone(),
                active,
            },
            |mut c, r| async move { c.set_public_endpoint_request(r).await },
        )
        .await;
    match result {
        Ok(r) => {
            let done = if active { "approved" } else { "withdrawn" };
            tracing::info!(admin = %user.username, request = %id, "public endpoint request {done}");
            session::flash(
                &user.session,
                true,
                format!(
                    "Public endpoint {} of {} {} {done}",
                    r.endpoint, r.fatman_name, r.fatman_version
                ),
            );
        }
        Err(e) => session::flash(&user.session, false, e.to_string()),
    }
    Ok(see_other(PUBLIC_ENDPOINTS))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(subject: &str, scope: &str) -> GrantForm {
        GrantForm {
            auth_subject_id: subject.into(),
            scope: scope.into(),
            fatman_family: " adder ".into(),
            ..GrantForm::default()
        }
    }

    #[test]
    fn grant_forms() {
        let call = AuthScope::CallFatman.as_str();
        let g = parse_grant(&form("s1", call)).unwrap();
        assert_eq!(g.auth_subject_id, "s1");
        assert_eq!(g.scope, call);
        assert_eq!(g.fatman_family, "adder");
        assert_eq!(g.endpoint, "");
        assert!(parse_grant(&form("", call)).unwrap_err().contains("who"));
        let err = parse_grant(&form("s1", "sudo")).unwrap_err();
        assert!(err.contains("sudo"), "{err}");
        let mut version_only = form("s1", call);
        version_only.fatman_version = "1.0.0".into();
        assert!(parse_grant(&version_only).is_err());
        assert_eq!(parse_esc_name("  billing "), Ok("billing".into()));
        assert!(parse_esc_name(" ").is_err());
    }

    #[test]
    fn grant_form_keeps_what_was_typed_and_lists_every_scope() {
        let subjects = vec![
            Subject {
                id: "s1".into(),
                kind: "user".into(),
                name: "alice".into(),
                active: true,
            },
            Subject {
                id: "s2".into(),
                kind: "esc".into(),
                name: "billing".into(),
                active: false,
            },
        ];
        let mut typed = form("s2", AuthScope::ReadFatman.as_str());
        typed.endpoint = "/x".into();
        let html = grant_form(&subjects, &typed, "tok").into_string();
        assert!(
            html.contains(r#"<option value="s1">user: alice</option>"#),
            "{html}"
        );
        assert!(html.contains(r#"<option value="s2" selected>esc: billing</option>"#));
        for scope in AuthScope::ALL {
            assert!(
                html.contains(&format!(r#"value="{}""#, scope.as_str())),
                "{scope}"
            );
        }
        assert!(html.contains(&format!(
            r#"<option value="{0}" selected>{0}</option>"#,
            AuthScope::ReadFatman.as_str()
        )));
        assert!(
            html.contains(r#"name="fatman_family" value=" adder ""#),
            "as typed"
        );
        assert!(html.contains(r#"name="endpoint" value="/x""#));
        assert!(html.contains(r#"id="grant-submit""#));
    }

    #[test]
    fn rows() {
        let esc = esc_row(
            &Esc {
                id: "e-1".into(),
                name: "billing".into(),
            },
            "tok",
        )
        .into_string();
        assert!(
            esc.contains(r#"<tr class="esc" data-esc-id="e-1">"#),
            "{esc}"
        );
        assert!(esc.contains("/dashboard/administration/escs/e-1/reset-token"));
        assert!(esc.contains("data-confirm="));
        let req = PublicEndpointRequest {
            id: "r1".into(),
            active: false,
            ..PublicEndpointRequest::default()
        };
        let html = public_endpoint_row(&req, "tok").into_string();
        assert!(html.contains(r#"name="active" value="true""#) && html.contains("approve"));
        let perm = permission_row(
            &Permission {
                id: "p1".into(),
                ..Permission::default()
            },
            "tok",
        )
        .into_string();
        assert!(perm.contains(r#"<tr class="permission" data-permission-id="p1">"#));
        assert!(perm.contains("/dashboard/administration/permissions/p1/revoke"));
    }
}
