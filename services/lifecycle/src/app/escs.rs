//! External Service Consumers: callers outside Racetrack with their own caller token.

use racetrack_db::models::{Esc, SubjectOwner};
use racetrack_db::repo::escs;
use racetrack_db::Connection as _;
use racetrack_db::DbConnection;
use racetrack_model::AuthScope;

use super::permissions::require_scope;
use super::{subjects, AppError, Caller};
use crate::events;
use crate::state::AppState;

fn validate_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 512 || name.chars().any(char::is_control) {
        return Err(AppError::validation(
            "body.name",
            "must be 1 to 512 printable characters",
        ));
    }
    Ok(name.to_string())
}

fn validate_id(id: &str) -> Result<(), AppError> {
    let ok = !id.is_empty()
        && id.len() <= 36
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(AppError::validation(
            "body.id",
            "must be 1 to 36 letters, digits, '-' or '_'",
        ))
    }
}

/// The ESC, or `NotFound` (no authorization: callers check it first).
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Esc, AppError> {
    escs::find(conn, id)?
        .ok_or_else(|| AppError::NotFound(format!("ESC with id {id} was not found")))
}

pub fn list(conn: &mut DbConnection, caller: &Caller) -> Result<Vec<Esc>, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    Ok(escs::list(conn)?)
}

pub fn get(conn: &mut DbConnection, caller: &Caller, id: &str) -> Result<Esc, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    find(conn, id)
}

/// A new ESC (with `id` when the caller brings one, e.g. to keep an old caller token's id) and
/// its auth subject with a token.
pub fn create(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    name: &str,
    id: Option<String>,
) -> Result<Esc, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let name = validate_name(name)?;
    let id = match id {
        Some(id) => {
            validate_id(&id)?;
            id
        }
        None => racetrack_db::new_id(),
    };
    let esc = Esc { id, name };
    conn.transaction(|conn| {
        if escs::find(conn, &esc.id)?.is_some() {
            return Err(AppError::AlreadyExists("ESC already exists".into()));
        }
        escs::insert(conn, &esc)?;
        subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
        Ok(())
    })?;
    tracing::info!(esc = %esc.id, by = %caller.username(), "ESC created");
    Ok(esc)
}

pub fn rename(
    conn: &mut DbConnection,
    caller: &Caller,
    id: &str,
    name: &str,
) -> Result<Esc, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let name = validate_name(name)?;
    find(conn, id)?;
    escs::rename(conn, id, &name)?;
    Ok(Esc {
        id: id.to_string(),
        name,
    })
}

pub fn delete(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    find(conn, id)?;
    // Cascades the ESC's auth subject, tokens and permissions.
    escs::delete(conn, id)?;
    events::everything_changed(state);
    tracing::info!(esc = %id, by = %caller.username(), "ESC deleted");
    Ok(())
}

fn owner(esc: &Esc) -> SubjectOwner {
    SubjectOwner::Esc {
        id: esc.id.clone(),
        name: esc.name.clone(),
    }
}

/// The ESC's current token (a new one when none can be shown).
pub fn token(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<String, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let esc = find(conn, id)?;
    let subject = subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
    subjects::current_token(conn, &state.signer, &subject, &owner(&esc))
}

/// Replaces the ESC's tokens with a new one.
pub fn reset_token(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<String, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let esc = find(conn, id)?;
    let subject = subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
    let (_, token) = subjects::regenerate(conn, &state.signer, &subject, &owner(&esc))?;
    events::subject_changed(state, &subject.id);
    tracing::info!(esc = %esc.id, by = %caller.username(), "ESC token reset");
    Ok(token)
}
