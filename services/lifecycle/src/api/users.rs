//! User accounts over REST: registration, login, profiles, admin changes, passwords.

use actix_web::{web, HttpRequest, HttpResponse};
use racetrack_db::models::User;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::dto::unix_time;
use super::{null, with_caller, with_db, AuthToken, State};
use crate::app::accounts::{self, UserUpdate as Changes};
use crate::error::ApiError;

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
    let username = with_caller(state, token, |_, _, caller| accounts::whoami(caller)).await?;
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
        accounts::register(conn, state, &body.username, &body.password)
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
    let (user, token) = with_db(state, move |conn, state| {
        accounts::login(conn, state, &body.username, &body.password, &address)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "username": user.username, "token": token })))
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
        accounts::change_own_password(conn, caller, &body.old_password, &body.new_password)
    })
    .await?;
    Ok(null())
}

async fn list(state: State, token: AuthToken) -> Result<HttpResponse, ApiError> {
    let list = with_caller(state, token, |conn, _, caller| accounts::list(conn, caller)).await?;
    Ok(HttpResponse::Ok().json(list.into_iter().map(UserDto::from).collect::<Vec<_>>()))
}

async fn profile(
    state: State,
    token: AuthToken,
    username: String,
) -> Result<HttpResponse, ApiError> {
    let (username, token) = with_caller(state, token, move |conn, state, caller| {
        accounts::profile(conn, state, caller, &username)
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
        accounts::get(conn, caller, &username)
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
    let changes = Changes {
        email: body.email,
        first_name: body.first_name,
        last_name: body.last_name,
        is_active: body.is_active,
        is_staff: body.is_staff,
        is_superuser: body.is_superuser,
    };
    let user = with_caller(state, token, move |conn, state, caller| {
        accounts::update(conn, state, caller, &username, changes)
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
        accounts::reset_password(conn, caller, &username, &new_password)
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
        accounts::delete(conn, state, caller, &username)
    })
    .await?;
    Ok(null())
}
