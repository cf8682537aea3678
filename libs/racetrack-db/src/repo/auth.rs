//! Auth subjects, their tokens (stored as digests only) and resource permissions.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use racetrack_model::AuthSubjectType;

use crate::models::{
    AuthPermission, AuthSubject, AuthToken, Esc, NewAuthPermission, PermissionView, SubjectOwner,
};
use crate::schema::{
    auth_user as user, registry_authresourcepermission as perm, registry_authsubject as subject,
    registry_authtoken as token, registry_esc as esc, registry_fatman as fatman,
    registry_fatmanfamily as family,
};
use crate::{DbConnection, DbError};

/// Which foreign key identifies a subject.
#[derive(Debug, Clone, Copy)]
pub enum SubjectKey<'a> {
    User(i32),
    Esc(&'a str),
    Family(&'a str),
    /// A Racetrack service, by name.
    Service(&'a str),
}

pub fn find_subject(conn: &mut DbConnection, id: &str) -> Result<Option<AuthSubject>, DbError> {
    Ok(subject::table
        .find(id)
        .select(AuthSubject::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_subject_by(
    conn: &mut DbConnection,
    key: SubjectKey<'_>,
) -> Result<Option<AuthSubject>, DbError> {
    let q = subject::table.select(AuthSubject::as_select()).into_boxed();
    let q = match key {
        SubjectKey::User(id) => q.filter(subject::user_id.eq(id)),
        SubjectKey::Esc(id) => q.filter(subject::esc_id.eq(id)),
        SubjectKey::Family(id) => q.filter(subject::fatman_family_id.eq(id)),
        SubjectKey::Service(name) => q.filter(subject::service_name.eq(name)),
    };
    Ok(q.first(conn).optional()?)
}

/// Returns the subject and whether this call created it (the original's profile endpoint created
/// duplicates; a subject per owner is enforced by unique keys here).
pub fn get_or_create_subject(
    conn: &mut DbConnection,
    key: SubjectKey<'_>,
) -> Result<(AuthSubject, bool), DbError> {
    if let Some(found) = find_subject_by(conn, key)? {
        return Ok((found, false));
    }
    let mut row = AuthSubject {
        id: crate::new_id(),
        user_id: None,
        esc_id: None,
        fatman_family_id: None,
        expiry_time: None,
        active: true,
        service_name: None,
    };
    match key {
        SubjectKey::User(id) => row.user_id = Some(id),
        SubjectKey::Esc(id) => row.esc_id = Some(id.to_string()),
        SubjectKey::Family(id) => row.fatman_family_id = Some(id.to_string()),
        SubjectKey::Service(name) => row.service_name = Some(name.to_string()),
    }
    diesel::insert_into(subject::table)
        .values(&row)
        .execute(conn)?;
    Ok((row, true))
}

pub fn set_subject_access(
    conn: &mut DbConnection,
    id: &str,
    active: bool,
    expiry_time: Option<NaiveDateTime>,
) -> Result<bool, DbError> {
    Ok(diesel::update(subject::table.find(id))
        .set((
            subject::active.eq(active),
            subject::expiry_time.eq(expiry_time),
        ))
        .execute(conn)?
        > 0)
}

pub fn owner_of(conn: &mut DbConnection, row: &AuthSubject) -> Result<SubjectOwner, DbError> {
    if let Some(user_id) = row.user_id {
        let found: Option<(String, bool)> = user::table
            .find(user_id)
            .select((user::username, user::is_active))
            .first(conn)
            .optional()?;
        if let Some((username, is_active)) = found {
            return Ok(SubjectOwner::User {
                username,
                is_active,
            });
        }
    }
    if let Some(esc_id) = &row.esc_id {
        let found: Option<Esc> = esc::table
            .find(esc_id)
            .select(Esc::as_select())
            .first(conn)
            .optional()?;
        if let Some(found) = found {
            return Ok(SubjectOwner::Esc {
                id: found.id,
                name: found.name,
            });
        }
    }
    if let Some(family_id) = &row.fatman_family_id {
        let found: Option<String> = family::table
            .find(family_id)
            .select(family::name)
            .first(conn)
            .optional()?;
        if let Some(name) = found {
            return Ok(SubjectOwner::Family { name });
        }
    }
    if let Some(name) = &row.service_name {
        return Ok(SubjectOwner::Service { name: name.clone() });
    }
    Ok(SubjectOwner::Unknown)
}

pub fn list_subjects(conn: &mut DbConnection) -> Result<Vec<(AuthSubject, SubjectOwner)>, DbError> {
    let rows: Vec<AuthSubject> = subject::table.select(AuthSubject::as_select()).load(conn)?;
    rows.into_iter()
        .map(|row| {
            let owner = owner_of(conn, &row)?;
            Ok((row, owner))
        })
        .collect()
}

/// Subjects of one kind, for bulk token regeneration.
pub fn subjects_of_type(
    conn: &mut DbConnection,
    subject_type: AuthSubjectType,
) -> Result<Vec<AuthSubject>, DbError> {
    let q = subject::table.select(AuthSubject::as_select()).into_boxed();
    let q = match subject_type {
        AuthSubjectType::User => q.filter(subject::user_id.is_not_null()),
        AuthSubjectType::Esc => q.filter(subject::esc_id.is_not_null()),
        AuthSubjectType::FatmanFamily => q.filter(subject::fatman_family_id.is_not_null()),
        AuthSubjectType::Internal => q.filter(subject::service_name.is_not_null()),
    };
    Ok(q.load(conn)?)
}

pub fn insert_token(conn: &mut DbConnection, row: &AuthToken) -> Result<(), DbError> {
    diesel::insert_into(token::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find_token_by_hash(
    conn: &mut DbConnection,
    token_hash: &str,
) -> Result<Option<(AuthToken, AuthSubject)>, DbError> {
    Ok(token::table
        .inner_join(subject::table)
        .filter(token::token_hash.eq(token_hash))
        .select((AuthToken::as_select(), AuthSubject::as_select()))
        .first(conn)
        .optional()?)
}

pub fn find_token(conn: &mut DbConnection, id: &str) -> Result<Option<AuthToken>, DbError> {
    Ok(token::table
        .find(id)
        .select(AuthToken::as_select())
        .first(conn)
        .optional()?)
}

/// Oldest first.
pub fn tokens_of_subject(
    conn: &mut DbConnection,
    subject_id: &str,
) -> Result<Vec<AuthToken>, DbError> {
    Ok(token::table
        .filter(token::auth_subject_id.eq(subject_id))
        .order((token::create_time.asc(), token::id.asc()))
        .select(AuthToken::as_select())
        .load(conn)?)
}

pub fn delete_token(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(token::table.find(id)).execute(conn)? > 0)
}

pub fn delete_tokens_of_subject(
    conn: &mut DbConnection,
    subject_id: &str,
) -> Result<usize, DbError> {
    Ok(diesel::delete(token::table.filter(token::auth_subject_id.eq(subject_id))).execute(conn)?)
}

pub fn touch_token(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> Result<(), DbError> {
    diesel::update(token::table.find(id))
        .set(token::last_use_time.eq(at))
        .execute(conn)?;
    Ok(())
}

/// Which permissions to load.
enum Select<'a> {
    All,
    Subject(&'a str),
    Id(i64),
}

/// Permissions with their filters resolved to names, in one query (the subject's permissions are
/// loaded on every authorised request).
fn load_views(conn: &mut DbConnection, which: Select<'_>) -> Result<Vec<PermissionView>, DbError> {
    let mut q = perm::table
        .left_join(family::table.on(family::id.nullable().eq(perm::fatman_family_id)))
        .left_join(fatman::table.on(fatman::id.nullable().eq(perm::fatman_id)))
        .select((
            AuthPermission::as_select(),
            family::name.nullable(),
            fatman::name.nullable(),
            fatman::version.nullable(),
        ))
        .into_boxed();
    q = match which {
        Select::All => q,
        Select::Subject(id) => q.filter(perm::auth_subject_id.eq(id)),
        Select::Id(id) => q.filter(perm::id.eq(id)),
    };
    // A permission with its family name and its fatman's name and version, when it has them.
    type Row = (
        AuthPermission,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = q.order(perm::id.asc()).load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(row, family_name, fatman_name, fatman_version)| PermissionView {
                id: row.id,
                auth_subject_id: row.auth_subject_id,
                scope: row.scope,
                family_name,
                fatman: fatman_name.zip(fatman_version),
                endpoint: row.endpoint,
            },
        )
        .collect())
}

/// Every permission of a subject with its filters resolved to names.
pub fn permissions_of_subject(
    conn: &mut DbConnection,
    subject_id: &str,
) -> Result<Vec<PermissionView>, DbError> {
    load_views(conn, Select::Subject(subject_id))
}

pub fn list_permissions(conn: &mut DbConnection) -> Result<Vec<PermissionView>, DbError> {
    load_views(conn, Select::All)
}

pub fn find_permission(
    conn: &mut DbConnection,
    id: i64,
) -> Result<Option<PermissionView>, DbError> {
    Ok(load_views(conn, Select::Id(id))?.into_iter().next())
}

/// Grants unless the same subject already holds the same scope on the same resource shape.
/// Returns the permission id and whether it was created.
pub fn grant(conn: &mut DbConnection, new: &NewAuthPermission<'_>) -> Result<(i64, bool), DbError> {
    conn.transaction(|conn| {
        let existing = find_same(conn, new)?;
        if let Some(id) = existing {
            return Ok((id, false));
        }
        diesel::insert_into(perm::table).values(new).execute(conn)?;
        let id = find_same(conn, new)?.ok_or(DbError::Query(diesel::NotFound))?;
        Ok((id, true))
    })
}

fn find_same(conn: &mut DbConnection, new: &NewAuthPermission<'_>) -> Result<Option<i64>, DbError> {
    let mut q = perm::table
        .filter(perm::auth_subject_id.eq(new.auth_subject_id))
        .filter(perm::scope.eq(new.scope))
        .select(perm::id)
        .into_boxed();
    q = match new.fatman_family_id {
        Some(id) => q.filter(perm::fatman_family_id.eq(id)),
        None => q.filter(perm::fatman_family_id.is_null()),
    };
    q = match new.fatman_id {
        Some(id) => q.filter(perm::fatman_id.eq(id)),
        None => q.filter(perm::fatman_id.is_null()),
    };
    q = match new.endpoint {
        Some(ep) => q.filter(perm::endpoint.eq(ep)),
        None => q.filter(perm::endpoint.is_null()),
    };
    Ok(q.order(perm::id.asc()).first(conn).optional()?)
}

pub fn revoke_permission(conn: &mut DbConnection, id: i64) -> Result<bool, DbError> {
    Ok(diesel::delete(perm::table.find(id)).execute(conn)? > 0)
}
