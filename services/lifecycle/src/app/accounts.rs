//! User accounts: registration, login, profiles, admin changes, passwords (also for the admin
//! CLI and the first start).

use racetrack_auth::password;
use racetrack_auth::TokenSigner;
use racetrack_db::models::{AuthSubject, AuthToken, NewUser, SubjectOwner, User};
use racetrack_db::repo::auth as auth_repo;
use racetrack_db::repo::users::{self, UserChanges};
use racetrack_db::Connection as _;
use racetrack_db::DbConnection;
use racetrack_model::AuthScope;

use super::permissions::{require_authn, require_scope, require_user};
use super::{subjects, AppError, Caller, Denial};
use crate::events;
use crate::state::AppState;

pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

pub fn validate_username(username: &str, require_email: bool) -> Result<(), AppError> {
    if username.is_empty() || username.chars().count() > 150 {
        return Err(AppError::validation(
            "username",
            "must be 1 to 150 characters",
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        return Err(AppError::validation(
            "username",
            "may contain only letters, digits and @ . + - _",
        ));
    }
    if require_email && !username.contains('@') {
        return Err(AppError::validation(
            "username",
            "You have to pass email as username",
        ));
    }
    Ok(())
}

pub fn check_password_rules(password: &str, username: &str) -> Result<(), AppError> {
    password::validate_password(password, username).map_err(|problems| {
        AppError::Validation(
            problems
                .into_iter()
                .map(|p| ("password".to_string(), p))
                .collect(),
        )
    })
}

/// Creates the user, its auth subject with a token and the default permissions; a superuser also
/// gets `full_access` (a deliberate difference: the original gave that only to the seeded admin,
/// which left other superusers unable to administer through the API).
pub fn create_account(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    new: &NewAccount<'_>,
) -> Result<User, AppError> {
    let hash = password::hash_password(new.password).map_err(AppError::internal)?;
    conn.transaction(|conn| {
        if users::find_by_username(conn, new.username)?.is_some() {
            return Err(AppError::AlreadyExists(format!(
                "user {} already exists",
                new.username
            )));
        }
        let user = users::insert(
            conn,
            &NewUser {
                username: new.username,
                password: &hash,
                email: new.email,
                is_active: new.is_active,
                is_staff: new.is_staff,
                is_superuser: new.is_superuser,
                date_joined: racetrack_db::now(),
            },
        )?;
        let subject = subjects::ensure_user_subject(conn, signer, &user)?;
        if new.is_superuser {
            subjects::grant_global(conn, &subject.id, AuthScope::FullAccess)?;
        }
        Ok(user)
    })
}

pub fn set_password(
    conn: &mut DbConnection,
    user: &User,
    new_password: &str,
) -> Result<(), AppError> {
    let hash = password::hash_password(new_password).map_err(AppError::internal)?;
    users::set_password(conn, user.id, &hash)?;
    Ok(())
}

pub fn find_user(conn: &mut DbConnection, username: &str) -> Result<User, AppError> {
    users::find_by_username(conn, username)?
        .ok_or_else(|| AppError::NotFound(format!("User was not found: {username}")))
}

/// Who the token belongs to (`validate_user_auth`).
pub fn whoami(caller: &Caller) -> Result<String, AppError> {
    require_authn(caller)?;
    Ok(caller.username().to_string())
}

/// Self-registration: the username is the e-mail; active at once only with
/// `AUTO_ACTIVATE_USERS`.
pub fn register(
    conn: &mut DbConnection,
    state: &AppState,
    username: &str,
    password: &str,
) -> Result<User, AppError> {
    validate_username(username, true)?;
    check_password_rules(password, username)?;
    let user = create_account(
        conn,
        &state.signer,
        &NewAccount {
            username,
            email: username,
            password,
            is_active: state.config.auto_activate_users,
            is_staff: false,
            is_superuser: false,
        },
    )?;
    tracing::info!(user = %user.username, active = user.is_active, "user registered");
    Ok(user)
}

/// Checks the password (throttled per user and per client `address`) and returns the user with
/// the user's current token.
pub fn login(
    conn: &mut DbConnection,
    state: &AppState,
    username: &str,
    password: &str,
    address: &str,
) -> Result<(User, String), AppError> {
    let user_key = username.to_lowercase();
    // Counted before the password is checked, so concurrent guesses cannot overrun the limit.
    state
        .login_address_throttle
        .acquire(address)
        .map_err(AppError::TooManyRequests)?;
    if let Err(retry) = state.login_user_throttle.acquire(&user_key) {
        state.login_address_throttle.release(address);
        return Err(AppError::TooManyRequests(retry));
    }
    let wrong = || AppError::Unauthenticated(Denial::new("wrong username or password"));
    let user = users::find_by_username(conn, username)?;
    if !password::verify_password(password, user.as_ref().map(|u| u.password.as_str())) {
        tracing::info!("login refused: wrong username or password");
        return Err(wrong());
    }
    let user = user.ok_or_else(wrong)?;
    state.login_user_throttle.reset(&user_key);
    state.login_address_throttle.release(address);
    if !user.is_active {
        return Err(AppError::Forbidden(Denial::with_detail(
            "user account is not active yet",
            "ask a Racetrack admin to activate it",
        )));
    }
    users::touch_last_login(conn, user.id)?;
    let subject = subjects::ensure_user_subject(conn, &state.signer, &user)?;
    let token =
        subjects::current_token(conn, &state.signer, &subject, &subjects::user_owner(&user))?;
    let user = find_user(conn, &user.username)?;
    Ok((user, token))
}

/// The signed-in user's account (users only: ESC and fatman family tokens have none).
pub fn me(conn: &mut DbConnection, caller: &Caller) -> Result<User, AppError> {
    let username = require_user(caller)?;
    find_user(conn, username)
}

/// The signed-in user's auth subject and how its tokens name it.
fn own_subject(
    conn: &mut DbConnection,
    caller: &Caller,
) -> Result<(AuthSubject, SubjectOwner), AppError> {
    let user = me(conn, caller)?;
    // The token just authenticated belongs to this subject.
    let subject = auth_repo::find_subject(conn, caller.subject_id())?
        .ok_or_else(|| AppError::internal("the caller's auth subject vanished"))?;
    Ok((subject, subjects::user_owner(&user)))
}

/// The signed-in user's own tokens (rows only: a token's value is shown once, when issued).
pub fn own_tokens(conn: &mut DbConnection, caller: &Caller) -> Result<Vec<AuthToken>, AppError> {
    let (subject, _) = own_subject(conn, caller)?;
    Ok(auth_repo::tokens_of_subject(conn, &subject.id)?)
}

/// One more token for the signed-in user; the others keep working. Returns the row and the
/// token (shown once).
pub fn add_own_token(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
) -> Result<(AuthToken, String), AppError> {
    let (subject, owner) = own_subject(conn, caller)?;
    let (row, token) =
        subjects::issue_token(conn, &state.signer, &subject, &owner, "dashboard", None)?;
    tracing::info!(user = %caller.username(), token_id = %row.id, "own token added");
    Ok((row, token))
}

/// Revokes one of the signed-in user's own tokens; another subject's token is refused.
pub fn revoke_own_token(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    token_id: &str,
) -> Result<(), AppError> {
    let (subject, _) = own_subject(conn, caller)?;
    let row = auth_repo::find_token(conn, token_id)?
        .ok_or_else(|| AppError::NotFound(format!("token {token_id} was not found")))?;
    if row.auth_subject_id != subject.id {
        return Err(AppError::Forbidden(Denial::new(
            "you may revoke only your own tokens",
        )));
    }
    auth_repo::delete_token(conn, token_id)?;
    events::subject_changed(state, &subject.id);
    tracing::info!(user = %caller.username(), token_id = %token_id, "own token revoked");
    Ok(())
}

/// Revokes every token of the signed-in user and issues one new one (shown once).
pub fn regenerate_own_token(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
) -> Result<(AuthToken, String), AppError> {
    let (subject, owner) = own_subject(conn, caller)?;
    let issued = subjects::regenerate(conn, &state.signer, &subject, &owner)?;
    events::subject_changed(state, &subject.id);
    tracing::info!(user = %caller.username(), "own tokens regenerated");
    Ok(issued)
}

pub fn change_own_password(
    conn: &mut DbConnection,
    caller: &Caller,
    old_password: &str,
    new_password: &str,
) -> Result<(), AppError> {
    let username = require_user(caller)?;
    let user = find_user(conn, username)?;
    if !password::verify_password(old_password, Some(&user.password)) {
        return Err(AppError::Forbidden(Denial::new(
            "the old password is not correct",
        )));
    }
    check_password_rules(new_password, username)?;
    set_password(conn, &user, new_password)
}

pub fn list(conn: &mut DbConnection, caller: &Caller) -> Result<Vec<User>, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    Ok(users::list(conn)?)
}

/// The user's current token (get-or-create of the subject: the original created a duplicate
/// subject on every call).
pub fn profile(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    username: &str,
) -> Result<(String, String), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let user = find_user(conn, username)?;
    let subject = subjects::ensure_user_subject(conn, &state.signer, &user)?;
    let token =
        subjects::current_token(conn, &state.signer, &subject, &subjects::user_owner(&user))?;
    Ok((user.username, token))
}

pub fn get(conn: &mut DbConnection, caller: &Caller, username: &str) -> Result<User, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    find_user(conn, username)
}

/// Fields an admin may change; `None` leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

pub fn update(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    username: &str,
    update: UserUpdate,
) -> Result<User, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let user = find_user(conn, username)?;
    for (field, value) in [
        ("email", &update.email),
        ("first_name", &update.first_name),
        ("last_name", &update.last_name),
    ] {
        if value
            .as_ref()
            .is_some_and(|v| v.chars().count() > 254 || v.chars().any(char::is_control))
        {
            return Err(AppError::validation(
                format!("body.{field}"),
                "must be at most 254 printable characters",
            ));
        }
    }
    let changes = UserChanges {
        email: update.email,
        first_name: update.first_name,
        last_name: update.last_name,
        is_active: update.is_active,
        is_staff: update.is_staff,
        is_superuser: update.is_superuser,
    };
    users::update(conn, user.id, &changes)?;
    if changes.is_active.is_some() {
        events::everything_changed(state);
    }
    tracing::info!(user = %user.username, by = %caller.username(), active = ?changes.is_active, "user updated");
    find_user(conn, &user.username)
}

/// An admin sets a user's password.
pub fn reset_password(
    conn: &mut DbConnection,
    caller: &Caller,
    username: &str,
    new_password: &str,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let user = find_user(conn, username)?;
    check_password_rules(new_password, username)?;
    set_password(conn, &user, new_password)?;
    tracing::info!(user = %user.username, by = %caller.username(), "password changed by admin");
    Ok(())
}

pub fn delete(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    username: &str,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let user = find_user(conn, username)?;
    if caller.username() == user.username {
        return Err(AppError::BadRequest(
            "you cannot delete your own account".into(),
        ));
    }
    users::delete(conn, user.id)?;
    events::everything_changed(state);
    tracing::info!(user = %user.username, by = %caller.username(), "user deleted");
    Ok(())
}
