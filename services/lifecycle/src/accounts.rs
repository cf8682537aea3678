//! User accounts: creation (registration, admin CLI, first start), password changes.

use racetrack_auth::password;
use racetrack_auth::TokenSigner;
use racetrack_db::models::{NewUser, User};
use racetrack_db::repo::users;
use racetrack_db::Connection as _;
use racetrack_db::DbConnection;
use racetrack_model::AuthScope;

use crate::error::ApiError;
use crate::subjects;

pub struct NewAccount<'a> {
    pub username: &'a str,
    pub email: &'a str,
    pub password: &'a str,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
}

pub fn validate_username(username: &str, require_email: bool) -> Result<(), ApiError> {
    if username.is_empty() || username.chars().count() > 150 {
        return Err(ApiError::validation(
            "username",
            "must be 1 to 150 characters",
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_alphanumeric() || "@.+-_".contains(c))
    {
        return Err(ApiError::validation(
            "username",
            "may contain only letters, digits and @ . + - _",
        ));
    }
    if require_email && !username.contains('@') {
        return Err(ApiError::validation(
            "username",
            "You have to pass email as username",
        ));
    }
    Ok(())
}

pub fn check_password_rules(password: &str, username: &str) -> Result<(), ApiError> {
    password::validate_password(password, username).map_err(|problems| {
        ApiError::Validation(
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
) -> Result<User, ApiError> {
    let hash = password::hash_password(new.password).map_err(ApiError::internal)?;
    conn.transaction(|conn| {
        if users::find_by_username(conn, new.username)?.is_some() {
            return Err(ApiError::AlreadyExists(format!(
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
) -> Result<(), ApiError> {
    let hash = password::hash_password(new_password).map_err(ApiError::internal)?;
    users::set_password(conn, user.id, &hash)?;
    Ok(())
}

pub fn find_user(conn: &mut DbConnection, username: &str) -> Result<User, ApiError> {
    users::find_by_username(conn, username)?
        .ok_or_else(|| ApiError::NotFound(format!("User was not found: {username}")))
}
