//! Users: activate or deactivate, grant or remove staff and admin rights, set a password.

use actix_web::{web, HttpResponse};
use maud::html;
use racetrack_proto::dashboard::{Empty, SetUserPasswordRequest, UserInfo, UserUpdate};
use serde::Deserialize;

use super::{admin_page, alerts_with, parse_bool, require_staff, staff_form};
use crate::error::PageError;
use crate::layout::{csrf_field, see_other, Alert};
use crate::session::{self, SignedIn};
use crate::State;

const USERS: &str = "/dashboard/administration/users";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/administration/users", web::get().to(list))
        .route("/administration/users/update", web::post().to(update))
        .route(
            "/administration/users/password",
            web::post().to(set_password),
        );
}

#[derive(Debug, Default, Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    username: String,
    is_active: Option<String>,
    is_staff: Option<String>,
    is_superuser: Option<String>,
    csrf_token: Option<String>,
}

/// The update a form asks for, and how to say it once done. Fields left out stay as they are.
fn parse_update(form: &UpdateForm) -> Result<(UserUpdate, String), String> {
    let username = form.username.trim();
    if username.is_empty() {
        return Err("no user given".into());
    }
    let flag = |field: &str, v: &Option<String>| -> Result<Option<bool>, String> {
        v.as_deref().map(|v| parse_bool(field, v)).transpose()
    };
    let update = UserUpdate {
        username: username.to_string(),
        is_active: flag("is_active", &form.is_active)?,
        is_staff: flag("is_staff", &form.is_staff)?,
        is_superuser: flag("is_superuser", &form.is_superuser)?,
    };
    let mut done = Vec::new();
    if let Some(a) = update.is_active {
        done.push(if a { "activated" } else { "deactivated" });
    }
    if let Some(s) = update.is_staff {
        done.push(if s { "made staff" } else { "no longer staff" });
    }
    if let Some(s) = update.is_superuser {
        done.push(if s { "made admin" } else { "no longer admin" });
    }
    if done.is_empty() {
        return Err("nothing to change".into());
    }
    let text = format!("User {username}: {}", done.join(", "));
    Ok((update, text))
}

#[derive(Debug, Default, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password1: String,
    #[serde(default)]
    password2: String,
    csrf_token: Option<String>,
}

fn parse_password(form: &PasswordForm) -> Result<SetUserPasswordRequest, String> {
    let username = form.username.trim();
    if username.is_empty() {
        return Err("no user given".into());
    }
    if form.password1.is_empty() {
        return Err("the new password is empty".into());
    }
    if form.password1 != form.password2 {
        return Err("the two passwords differ".into());
    }
    Ok(SetUserPasswordRequest {
        username: username.to_string(),
        password: form.password1.clone(),
    })
}

async fn page(state: &State, user: &SignedIn, more: Vec<Alert>) -> HttpResponse {
    let mut more = more;
    let users = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_users(r).await
        })
        .await
        .map(|l| l.users)
        .unwrap_or_else(|e| {
            more.push(Alert::Error(e.to_string()));
            Vec::new()
        });
    let alerts = alerts_with(user, more);
    let csrf = user.csrf();
    let body = html! {
        section.card {
            h1 { "Users" }
            p.muted { "Self-registered accounts stay inactive until activated here." }
            table #users {
                thead { tr { th { "Username" } th { "E-mail" } th { "Active" } th { "Staff" } th { "Admin" } th { "Last login" } th { "Joined" } th { "Actions" } th { "Set password" } } }
                tbody {
                    @for u in &users { (user_row(u, &csrf)) }
                }
            }
        }
    };
    admin_page(state, user, "Users", &alerts, body)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn user_row(u: &UserInfo, csrf: &str) -> maud::Markup {
    let toggle = |field: &str, value: bool, class: &str, label: &str, confirm: Option<String>| {
        html! {
            form.inline method="post" action="/dashboard/administration/users/update" data-confirm=[confirm] {
                (csrf_field(csrf))
                input type="hidden" name="username" value=(u.username);
                input type="hidden" name=(field) value=(value);
                button class=(class) type="submit" { (label) }
            }
        }
    };
    html! {
        tr.user data-username=(u.username) {
            td { (u.username) }
            td { (u.email) }
            td.active { (yes_no(u.is_active)) }
            td.staff { (yes_no(u.is_staff)) }
            td.admin { (yes_no(u.is_superuser)) }
            td { (u.last_login) }
            td { (u.date_joined) }
            td {
                @if u.is_active {
                    (toggle("is_active", false, "deactivate danger", "Deactivate", Some(format!("Deactivate {}? Their tokens stop working.", u.username))))
                } @else {
                    (toggle("is_active", true, "activate", "Activate", None))
                }
                @if u.is_staff {
                    (toggle("is_staff", false, "toggle-staff secondary", "Remove staff", None))
                } @else {
                    (toggle("is_staff", true, "toggle-staff secondary", "Make staff", None))
                }
                @if u.is_superuser {
                    (toggle("is_superuser", false, "toggle-admin secondary", "Remove admin", Some(format!("Remove admin rights of {}?", u.username))))
                } @else {
                    (toggle("is_superuser", true, "toggle-admin secondary", "Make admin", Some(format!("Give {} admin rights?", u.username))))
                }
            }
            td {
                form.set-password method="post" action="/dashboard/administration/users/password" {
                    (csrf_field(csrf))
                    input type="hidden" name="username" value=(u.username);
                    input type="password" name="password1" placeholder="New password" autocomplete="new-password" required;
                    input type="password" name="password2" placeholder="Again" autocomplete="new-password" required;
                    button.set-password type="submit" { "Set password" }
                }
            }
        }
    }
}

async fn list(state: State, user: SignedIn) -> Result<HttpResponse, PageError> {
    require_staff(&user)?;
    Ok(page(&state, &user, Vec::new()).await)
}

async fn update(
    state: State,
    user: SignedIn,
    form: web::Form<UpdateForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    let (update, done) = match parse_update(&form) {
        Ok(u) => u,
        Err(e) => return Ok(page(&state, &user, vec![Alert::Error(e)]).await),
    };
    let result = state
        .lifecycle
        .call(Some(&user.token), update, |mut c, r| async move {
            c.update_user(r).await
        })
        .await;
    Ok(match result {
        Ok(_) => {
            tracing::info!(admin = %user.username, "{done}");
            session::flash(&user.session, true, done);
            see_other(USERS)
        }
        Err(e) => page(&state, &user, vec![Alert::Error(e.to_string())]).await,
    })
}

async fn set_password(
    state: State,
    user: SignedIn,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    staff_form(&user, form.csrf_token.as_deref())?;
    // Passwords are never put back into the page (nor logged).
    let request = match parse_password(&form) {
        Ok(r) => r,
        Err(e) => return Ok(page(&state, &user, vec![Alert::Error(e)]).await),
    };
    let username = request.username.clone();
    let result = state
        .lifecycle
        .call(Some(&user.token), request, |mut c, r| async move {
            c.set_user_password(r).await
        })
        .await;
    Ok(match result {
        Ok(_) => {
            tracing::info!(admin = %user.username, user = %username, "password set");
            session::flash(&user.session, true, format!("Password of {username} set"));
            see_other(USERS)
        }
        Err(e) => {
            page(
                &state,
                &user,
                vec![Alert::Error(format!("Password of {username}: {e}"))],
            )
            .await
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(active: Option<&str>, staff: Option<&str>, admin: Option<&str>) -> UpdateForm {
        UpdateForm {
            username: " bob@example.com ".into(),
            is_active: active.map(Into::into),
            is_staff: staff.map(Into::into),
            is_superuser: admin.map(Into::into),
            csrf_token: None,
        }
    }

    #[test]
    fn update_forms() {
        let (u, text) = parse_update(&form(Some("true"), None, None)).unwrap();
        assert_eq!(u.username, "bob@example.com");
        assert_eq!(
            (u.is_active, u.is_staff, u.is_superuser),
            (Some(true), None, None)
        );
        assert_eq!(text, "User bob@example.com: activated");
        let (u, text) = parse_update(&form(None, Some("false"), Some("true"))).unwrap();
        assert_eq!(
            (u.is_active, u.is_staff, u.is_superuser),
            (None, Some(false), Some(true))
        );
        assert_eq!(text, "User bob@example.com: no longer staff, made admin");
        assert!(parse_update(&form(None, None, None)).is_err());
        assert!(parse_update(&form(Some("maybe"), None, None)).is_err());
        let mut nobody = form(Some("true"), None, None);
        nobody.username = " ".into();
        assert!(parse_update(&nobody).is_err());
    }

    #[test]
    fn password_forms() {
        let f = |p1: &str, p2: &str| PasswordForm {
            username: "bob".into(),
            password1: p1.into(),
            password2: p2.into(),
            csrf_token: None,
        };
        assert_eq!(
            parse_password(&f("s3cret!x", "s3cret!x")).unwrap().password,
            "s3cret!x"
        );
        assert_eq!(
            parse_password(&f("a", "b")).unwrap_err(),
            "the two passwords differ"
        );
        assert!(parse_password(&f("", "")).is_err());
    }

    #[test]
    fn a_row_offers_the_opposite_of_each_flag() {
        let u = UserInfo {
            username: "bob@example.com".into(),
            is_active: false,
            is_staff: true,
            ..UserInfo::default()
        };
        let html = user_row(&u, "tok").into_string();
        assert!(
            html.contains(r#"<tr class="user" data-username="bob@example.com">"#),
            "{html}"
        );
        assert!(html.contains(r#"class="activate""#));
        assert!(!html.contains("deactivate"));
        assert!(html.contains(r#"name="is_staff" value="false""#));
        assert!(html.contains(r#"name="is_superuser" value="true""#));
        assert!(html.contains(r#"name="csrf_token" value="tok""#));
        assert!(html.contains(r#"class="set-password""#));
    }
}
