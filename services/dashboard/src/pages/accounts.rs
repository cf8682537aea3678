//! Sign in, sign out, registration, profile (the user's own tokens) and password change.

use actix_session::Session;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use racetrack_proto::dashboard::{
    ChangePasswordRequest, Credentials, Empty, LoginRequest, NewToken, TokenRef,
};
use serde::Deserialize;

use crate::error::PageError;
use crate::layout::{self, csrf_field, see_other, Alert, Viewer};
use crate::session::{self, SessionUser, SignedIn};
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts/login", web::get().to(login_form))
        .route("/accounts/login", web::post().to(login))
        .route("/accounts/logout", web::post().to(logout))
        .route("/register", web::get().to(register_form))
        .route("/register", web::post().to(register))
        .route("/registered", web::get().to(registered))
        .route("/profile", web::get().to(profile))
        .route("/profile/tokens", web::post().to(add_token))
        .route(
            "/profile/tokens/regenerate",
            web::post().to(regenerate_token),
        )
        .route("/profile/tokens/{id}/revoke", web::post().to(revoke_token))
        .route("/change_password", web::get().to(change_password_form))
        .route("/change_password", web::post().to(change_password));
}

/// Where to go after signing in: only a path of this dashboard (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/dashboard")
                && !n.contains("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/dashboard/".into(),
    }
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
    csrf_token: Option<String>,
}

fn login_page(
    state: &State,
    session: &Session,
    username: &str,
    next: &str,
    alerts: &[Alert],
) -> HttpResponse {
    let csrf = session::csrf_token(session);
    let body = html! {
        section.card.narrow {
            h1 { "Sign in" }
            form method="post" action="/dashboard/accounts/login" {
                (csrf_field(&csrf))
                input type="hidden" name="next" value=(next);
                label { "Email" input type="text" name="username" id="username" value=(username) autofocus required; }
                label { "Password" input type="password" name="password" id="password" required; }
                button type="submit" id="sign-in" { "Sign in" }
            }
            p.muted { "Lost password? Ask a Racetrack administrator to set a new one." }
            p { "Not registered yet? " a href="/dashboard/register" { "Register" } }
        }
    };
    layout::page(&state.ui, None, "Sign in", alerts, body)
}

async fn login_form(state: State, session: Session, q: web::Query<NextQuery>) -> HttpResponse {
    let alerts: Vec<Alert> = session::take_flash(&session)
        .into_iter()
        .map(Alert::from)
        .collect();
    let next = safe_next(q.next.as_deref());
    login_page(&state, &session, "", &next, &alerts)
}

async fn login(
    req: HttpRequest,
    state: State,
    session: Session,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    session::verify_csrf(&session, form.csrf_token.as_deref())?;
    let next = safe_next(form.next.as_deref());
    // The TCP peer, not a header a client could forge: login throttling counts per address.
    let address = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let reply = state
        .lifecycle
        .call(
            None,
            LoginRequest {
                username: form.username.clone(),
                password: form.password,
                client_address: address,
            },
            |mut c, r| async move { c.login(r).await },
        )
        .await;
    let reply = match reply {
        Ok(r) => r,
        Err(e) => {
            return Ok(login_page(
                &state,
                &session,
                &form.username,
                &next,
                &[Alert::Error(e.to_string())],
            ))
        }
    };
    let user = reply.user.unwrap_or_default();
    let cookie = start_session(
        &state,
        &session,
        &user.username,
        &reply.token,
        user.is_staff,
        user.is_superuser,
    )?;
    tracing::info!(user = %user.username, "signed in");
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, next))
        .cookie(cookie)
        .finish())
}

/// Signs `username` in with `token` for `SESSION_TTL`; answers the `X-Racetrack-Auth` cookie
/// carrying the same token to PUB, for the response to set.
fn start_session(
    state: &State,
    session: &Session,
    username: &str,
    token: &str,
    is_staff: bool,
    is_superuser: bool,
) -> Result<actix_web::cookie::Cookie<'static>, PageError> {
    let ttl = i64::try_from(state.config.session_ttl.as_secs()).unwrap_or(i64::MAX);
    session::sign_in(
        session,
        SessionUser {
            username: username.to_string(),
            token: token.to_string(),
            is_staff,
            is_superuser,
            expires: chrono::Utc::now().timestamp().saturating_add(ttl),
        },
    )?;
    Ok(session::auth_cookie(
        token,
        ttl,
        state.config.cookie_secure,
        state.config.auth_cookie_domain.as_deref(),
    ))
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: Option<String>,
}

async fn logout(
    state: State,
    session: Session,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session::verify_csrf(&session, form.csrf_token.as_deref())?;
    session::sign_out(&session);
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/dashboard/accounts/login"))
        .cookie(session::removed_auth_cookie(
            state.config.auth_cookie_domain.as_deref(),
        ))
        .finish())
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password1: String,
    #[serde(default)]
    password2: String,
    csrf_token: Option<String>,
}

fn register_page(
    state: &State,
    session: &Session,
    username: &str,
    alerts: &[Alert],
) -> HttpResponse {
    let csrf = session::csrf_token(session);
    let body = html! {
        section.card.narrow {
            h1 { "Register" }
            form method="post" action="/dashboard/register" {
                (csrf_field(&csrf))
                label { "Email (your username)" input type="email" name="username" id="username" value=(username) required; }
                label { "Password" input type="password" name="password1" id="password1" required; }
                label { "Password again" input type="password" name="password2" id="password2" required; }
                p.muted { "At least 8 characters, not only digits, not like your e-mail, not a common password." }
                button type="submit" id="register" { "Register" }
            }
        }
    };
    layout::page(&state.ui, None, "Register", alerts, body)
}

async fn register_form(state: State, session: Session) -> HttpResponse {
    register_page(&state, &session, "", &[])
}

async fn register(
    state: State,
    session: Session,
    form: web::Form<RegisterForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    session::verify_csrf(&session, form.csrf_token.as_deref())?;
    if form.password1 != form.password2 {
        return Ok(register_page(
            &state,
            &session,
            &form.username,
            &[Alert::Error("the two passwords differ".into())],
        ));
    }
    let result = state
        .lifecycle
        .call(
            None,
            Credentials {
                username: form.username.clone(),
                password: form.password1,
            },
            |mut c, r| async move { c.register(r).await },
        )
        .await;
    match result {
        Ok(user) => {
            let text = if user.is_active {
                format!("Account {} registered: you can sign in now.", user.username)
            } else {
                format!(
                    "Account {} registered. An administrator has to activate it before you can sign in.",
                    user.username
                )
            };
            session::flash(&session, true, text);
            Ok(see_other("/dashboard/registered"))
        }
        Err(e) => Ok(register_page(
            &state,
            &session,
            &form.username,
            &[Alert::Error(e.to_string())],
        )),
    }
}

async fn registered(state: State, session: Session) -> HttpResponse {
    let alerts: Vec<Alert> = session::take_flash(&session)
        .into_iter()
        .map(Alert::from)
        .collect();
    let body = html! {
        section.card.narrow {
            h1 { "Registered" }
            p { a href="/dashboard/accounts/login" { "Go to sign in" } }
        }
    };
    layout::page(&state.ui, None, "Registered", &alerts, body)
}

/// The profile page, with a freshly issued token shown once when there is one.
async fn profile_page(
    state: &State,
    user: &SignedIn,
    new_token: Option<&NewToken>,
    mut alerts: Vec<Alert>,
) -> HttpResponse {
    alerts.extend(session::take_flash(&user.session).map(Alert::from));
    let tokens = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.list_own_tokens(r).await
        })
        .await;
    let csrf = user.csrf();
    let tokens = match tokens {
        Ok(t) => t.tokens,
        Err(e) => {
            alerts.push(Alert::Error(e.to_string()));
            Vec::new()
        }
    };
    let body = html! {
        section.card {
            h1 { "Profile" }
            p { "Signed in as " strong #profile-username { (user.username) } }
            p { a href="/dashboard/change_password" { "Change password" } }
        }
        @if let Some(t) = new_token {
            section.card.highlight #new-token-card {
                h2 { "New token" }
                p { "Copy it now: it is shown only this once." }
                code #new-token { (t.token) }
            }
        }
        section.card {
            h2 { "Your tokens" }
            p.muted { "Use a token in the X-Racetrack-Auth header to call fatmen or the Lifecycle API." }
            table #tokens {
                thead { tr { th { "Id" } th { "Active" } th { "Created" } th { "Expires" } th { "Last used" } th {} } }
                tbody {
                    @for t in &tokens {
                        tr {
                            td { code { (t.id) } }
                            td { @if t.active { "yes" } @else { "no" } }
                            td { (t.create_time) }
                            td { (t.expiry_time) }
                            td { (t.last_use_time) }
                            td {
                                @if t.active {
                                    form.inline method="post" action=(format!("/dashboard/profile/tokens/{}/revoke", t.id)) data-confirm="Revoke this token? Programs using it will be refused." {
                                        (csrf_field(&csrf))
                                        button.danger type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            form.inline method="post" action="/dashboard/profile/tokens" {
                (csrf_field(&csrf))
                button type="submit" id="add-token" { "Add a token" }
            }
            form.inline method="post" action="/dashboard/profile/tokens/regenerate" data-confirm="Revoke all your tokens and issue one new one?" {
                (csrf_field(&csrf))
                button.danger type="submit" id="regenerate-token" { "Regenerate (revoke all)" }
            }
        }
    };
    let viewer = viewer(user, &csrf);
    layout::page(&state.ui, Some(&viewer), "Profile", &alerts, body)
}

/// How the frame shows a signed-in user.
pub fn viewer<'a>(user: &'a SignedIn, csrf: &'a str) -> Viewer<'a> {
    Viewer {
        username: &user.username,
        is_staff: user.is_staff,
        csrf,
    }
}

async fn profile(state: State, user: SignedIn) -> HttpResponse {
    profile_page(&state, &user, None, Vec::new()).await
}

async fn add_token(
    state: State,
    user: SignedIn,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session::verify_csrf(&user.session, form.csrf_token.as_deref())?;
    let result = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.add_own_token(r).await
        })
        .await;
    Ok(match result {
        Ok(t) => {
            profile_page(
                &state,
                &user,
                Some(&t),
                vec![Alert::Success("Token added".into())],
            )
            .await
        }
        Err(e) => profile_page(&state, &user, None, vec![Alert::Error(e.to_string())]).await,
    })
}

async fn regenerate_token(
    state: State,
    user: SignedIn,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session::verify_csrf(&user.session, form.csrf_token.as_deref())?;
    let result = state
        .lifecycle
        .call(Some(&user.token), Empty {}, |mut c, r| async move {
            c.regenerate_own_token(r).await
        })
        .await;
    let t = match result {
        Ok(t) => t,
        Err(e) => {
            return Ok(profile_page(&state, &user, None, vec![Alert::Error(e.to_string())]).await)
        }
    };
    // The session's token was revoked with the others: carry on with the new one.
    let cookie = start_session(
        &state,
        &user.session,
        &user.username,
        &t.token,
        user.is_staff,
        user.is_superuser,
    )?;
    let user = SignedIn {
        token: t.token.clone(),
        ..user
    };
    let mut resp = profile_page(
        &state,
        &user,
        Some(&t),
        vec![Alert::Success("All your earlier tokens are revoked".into())],
    )
    .await;
    resp.add_cookie(&cookie)
        .map_err(|e| PageError::Session(e.to_string()))?;
    Ok(resp)
}

async fn revoke_token(
    state: State,
    user: SignedIn,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session::verify_csrf(&user.session, form.csrf_token.as_deref())?;
    let id = path.into_inner();
    let result = state
        .lifecycle
        .call(Some(&user.token), TokenRef { id }, |mut c, r| async move {
            c.revoke_own_token(r).await
        })
        .await;
    match result {
        Ok(_) => session::flash(&user.session, true, "Token revoked"),
        Err(e) => session::flash(&user.session, false, e.to_string()),
    }
    Ok(see_other("/dashboard/profile"))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    old_password: String,
    #[serde(default)]
    new_password1: String,
    #[serde(default)]
    new_password2: String,
    csrf_token: Option<String>,
}

fn password_page(state: &State, user: &SignedIn, alerts: &[Alert]) -> HttpResponse {
    let csrf = user.csrf();
    let body = html! {
        section.card.narrow {
            h1 { "Change password" }
            form method="post" action="/dashboard/change_password" {
                (csrf_field(&csrf))
                label { "Old password" input type="password" name="old_password" required; }
                label { "New password" input type="password" name="new_password1" required; }
                label { "New password again" input type="password" name="new_password2" required; }
                button type="submit" { "Change password" }
            }
        }
    };
    let viewer = viewer(user, &csrf);
    layout::page(&state.ui, Some(&viewer), "Change password", alerts, body)
}

async fn change_password_form(state: State, user: SignedIn) -> HttpResponse {
    password_page(&state, &user, &[])
}

async fn change_password(
    state: State,
    user: SignedIn,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    session::verify_csrf(&user.session, form.csrf_token.as_deref())?;
    if form.new_password1 != form.new_password2 {
        return Ok(password_page(
            &state,
            &user,
            &[Alert::Error("the two new passwords differ".into())],
        ));
    }
    let result = state
        .lifecycle
        .call(
            Some(&user.token),
            ChangePasswordRequest {
                old_password: form.old_password,
                new_password: form.new_password1,
            },
            |mut c, r| async move { c.change_password(r).await },
        )
        .await;
    Ok(match result {
        Ok(_) => {
            session::flash(&user.session, true, "Password changed");
            see_other("/dashboard/profile")
        }
        Err(e) => password_page(&state, &user, &[Alert::Error(e.to_string())]),
    })
}

/// Markup helper shared by pages: a form button posting to `action` after a confirmation.
pub fn confirm_button(action: &str, csrf: &str, label: &str, confirm: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) data-confirm=(confirm) {
            (csrf_field(csrf))
            button class=(class) type="submit" { (label) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_the_dashboard() {
        assert_eq!(
            safe_next(Some("/dashboard/portfolio?x=1")),
            "/dashboard/portfolio?x=1"
        );
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/dashboard//evil",
            "/other",
            "/dashboard\\x",
        ] {
            assert_eq!(safe_next(Some(bad)), "/dashboard/", "{bad}");
        }
        assert_eq!(safe_next(None), "/dashboard/");
    }
}
