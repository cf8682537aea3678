use actix_web::{web, HttpRequest, HttpResponse};
use racetrack_auth::password;
use racetrack_db::models::User;
use racetrack_db::repo::users::{self, UserChanges};
use racetrack_model::AuthScope;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{null, with_caller, with_db, State};
use crate::accounts::{self, NewAccount};
use crate::caller::{require_authn, require_scope, require_user, AuthToken};
use crate::error::ApiError;
use crate::registry::unix_time;
use crate::subjects;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/users/validate_user_auth",
        web::get().to(validate_user_auth),
    )
    .route("/users/register", web::post().to(register))
    .route("/users/login", web::post().to(login))
    .route("/users/me/password", web::put().to(change_own_password))
    .route("/users", web::get().to(list))
    .route("/users/{username}/profile", web::get().to(get_profile))
    .route("/users/{username}/profile", web::post().to(init_profile))
    .route("/users/{username}/password", web::put().to(set_password))
    .route("/users/{username}", web::get().to(get_user))
    .route("/users/{username}", web::patch().to(update_user))
    .route("/users/{username}", web::delete().to(delete_user));
}

#[derive(Serialize)]
struct UserDto {
    username: String,
    email: String,
    first_name: String,
    last_name: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
    last_login: Option<i64>,
    date_joined: i64,
}

impl From<User> for UserDto {
    fn from(u: User) -> Self {
        UserDto {
            username: u.username,
            email: u.email,
            first_name: u.first_name,
            last_name: u.last_name,
            is_active: u.is_active,
            is_staff: u.is_staff,
            is_superuser: u.is_superuser,
            last_login: u.last_login.map(unix_time),
            date_joined: unix_time(u.date_joined),
        }
    }
}

async fn validate_user_auth(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let username = with_caller(state, token, |_, _, caller| {
        require_authn(caller)?;
        Ok(caller.username().to_string())
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "username": username })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

async fn register(state: State, body: web::Json<Credentials>) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let user = with_db(state, move |conn, state| {
        accounts::validate_username(&body.username, true)?;
        accounts::check_password_rules(&body.password, &body.username)?;
        let user = accounts::create_account(
            conn,
            &state.signer,
            &NewAccount {
                username: &body.username,
                email: &body.username,
                password: &body.password,
                is_active: state.config.auto_activate_users,
                is_staff: false,
                is_superuser: false,
            },
        )?;
        tracing::info!(user = %user.username, active = user.is_active, "user registered");
        Ok(user)
    })
    .await?;
    Ok(HttpResponse::Created()
        .json(json!({"username": user.username, "is_active": user.is_active})))
}

async fn login(
    state: State,
    req: HttpRequest,
    body: web::Json<Credentials>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    // The socket's address, not X-Forwarded-For: a client could forge that to dodge the limit.
    let address = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let (username, token) = with_db(state, move |conn, state| {
        let user_key = body.username.to_lowercase();
        // Counted before the password is checked, so concurrent guesses cannot overrun the limit.
        state
            .login_address_throttle
            .acquire(&address)
            .map_err(ApiError::TooManyRequests)?;
        if let Err(retry) = state.login_user_throttle.acquire(&user_key) {
            state.login_address_throttle.release(&address);
            return Err(ApiError::TooManyRequests(retry));
        }
        let user = users::find_by_username(conn, &body.username)?;
        if !password::verify_password(&body.password, user.as_ref().map(|u| u.password.as_str())) {
            tracing::info!("login refused: wrong username or password");
            return Err(ApiError::Unauthenticated(
                "wrong username or password".into(),
            ));
        }
        let user =
            user.ok_or_else(|| ApiError::Unauthenticated("wrong username or password".into()))?;
        state.login_user_throttle.reset(&user_key);
        state.login_address_throttle.release(&address);
        if !user.is_active {
            return Err(ApiError::Forbidden(
                "user account is not active yet: ask a Racetrack admin to activate it".into(),
            ));
        }
        users::touch_last_login(conn, user.id)?;
        let subject = subjects::ensure_user_subject(conn, &state.signer, &user)?;
        let token =
            subjects::current_token(conn, &state.signer, &subject, &subjects::user_owner(&user))?;
        Ok((user.username, token))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "username": username, "token": token })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    old_password: String,
    new_password: String,
}

async fn change_own_password(
    state: State,
    token: AuthToken,
    body: web::Json<PasswordChange>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    with_caller(state, token, move |conn, _, caller| {
        let username = require_user(caller)?;
        let user = accounts::find_user(conn, username)?;
        if !password::verify_password(&body.old_password, Some(&user.password)) {
            return Err(ApiError::Forbidden(
                "the old password is not correct".into(),
            ));
        }
        accounts::check_password_rules(&body.new_password, username)?;
        accounts::set_password(conn, &user, &body.new_password)
    })
    .await?;
    Ok(null())
}

async fn list(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        Ok(users::list(conn)?
            .into_iter()
            .map(UserDto::from)
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

async fn profile(
    state: State,
    token: AuthToken,
    username: String,
) -> Result<HttpResponse, ApiError> {
    let (username, token) = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let user = accounts::find_user(conn, &username)?;
        let subject = subjects::ensure_user_subject(conn, &state.signer, &user)?;
        let token =
            subjects::current_token(conn, &state.signer, &subject, &subjects::user_owner(&user))?;
        Ok((user.username, token))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "username": username, "token": token })))
}

async fn get_profile(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    profile(state, token, path.into_inner()).await
}

/// Get-or-create (the original created a duplicate subject on every call).
async fn init_profile(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    profile(state, token, path.into_inner()).await
}

async fn get_user(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    let user = with_caller(state, token, move |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        accounts::find_user(conn, &username)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    is_active: Option<bool>,
    is_staff: Option<bool>,
    is_superuser: Option<bool>,
}

async fn update_user(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
    body: web::Json<UserUpdate>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    let body = body.into_inner();
    let user = with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let user = accounts::find_user(conn, &username)?;
        for (field, value) in [("email", &body.email), ("first_name", &body.first_name), ("last_name", &body.last_name)] {
            if value.as_ref().is_some_and(|v| v.chars().count() > 254 || v.chars().any(char::is_control)) {
                return Err(ApiError::validation(format!("body.{field}"), "must be at most 254 printable characters"));
            }
        }
        let changes = UserChanges {
            email: body.email,
            first_name: body.first_name,
            last_name: body.last_name,
            is_active: body.is_active,
            is_staff: body.is_staff,
            is_superuser: body.is_superuser,
        };
        users::update(conn, user.id, &changes)?;
        if changes.is_active.is_some() {
            crate::events::everything_changed(state);
        }
        tracing::info!(user = %user.username, by = %caller.username(), active = ?changes.is_active, "user updated");
        accounts::find_user(conn, &user.username)
    })
    .await?;
    Ok(HttpResponse::Ok().json(UserDto::from(user)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

async fn set_password(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
    body: web::Json<NewPassword>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    let new_password = body.into_inner().password;
    with_caller(state, token, move |conn, _, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let user = accounts::find_user(conn, &username)?;
        accounts::check_password_rules(&new_password, &username)?;
        accounts::set_password(conn, &user, &new_password)?;
        tracing::info!(user = %user.username, by = %caller.username(), "password changed by admin");
        Ok(())
    })
    .await?;
    Ok(null())
}

async fn delete_user(
    state: State,
    token: AuthToken,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let username = path.into_inner();
    with_caller(state, token, move |conn, state, caller| {
        require_scope(caller, AuthScope::CallAdminApi)?;
        let user = accounts::find_user(conn, &username)?;
        if caller.username() == user.username {
            return Err(ApiError::BadRequest(
                "you cannot delete your own account".into(),
            ));
        }
        users::delete(conn, user.id)?;
        crate::events::everything_changed(state);
        tracing::info!(user = %user.username, by = %caller.username(), "user deleted");
        Ok(())
    })
    .await?;
    Ok(null())
}
