use diesel::prelude::*;

use crate::models::{NewUser, User};
use crate::schema::auth_user::dsl;
use crate::{DbConnection, DbError};

pub fn insert(conn: &mut DbConnection, user: &NewUser<'_>) -> Result<User, DbError> {
    diesel::insert_into(dsl::auth_user)
        .values(user)
        .execute(conn)?;
    find_by_username(conn, user.username)?.ok_or_else(|| DbError::Query(diesel::NotFound))
}

pub fn find_by_username(conn: &mut DbConnection, username: &str) -> Result<Option<User>, DbError> {
    Ok(dsl::auth_user
        .filter(dsl::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut DbConnection, id: i32) -> Result<Option<User>, DbError> {
    Ok(dsl::auth_user
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

pub fn list(conn: &mut DbConnection) -> Result<Vec<User>, DbError> {
    Ok(dsl::auth_user
        .order(dsl::username.asc())
        .select(User::as_select())
        .load(conn)?)
}

pub fn count(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(dsl::auth_user.count().get_result(conn)?)
}

/// Fields an admin may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone, AsChangeset)]
#[diesel(table_name = crate::schema::auth_user)]
pub struct UserChanges {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub is_active: Option<bool>,
    pub is_staff: Option<bool>,
    pub is_superuser: Option<bool>,
}

pub fn update(conn: &mut DbConnection, id: i32, changes: &UserChanges) -> Result<(), DbError> {
    if changes.email.is_none()
        && changes.first_name.is_none()
        && changes.last_name.is_none()
        && changes.is_active.is_none()
        && changes.is_staff.is_none()
        && changes.is_superuser.is_none()
    {
        return Ok(());
    }
    diesel::update(dsl::auth_user.find(id))
        .set(changes)
        .execute(conn)?;
    Ok(())
}

pub fn set_password(conn: &mut DbConnection, id: i32, password_hash: &str) -> Result<(), DbError> {
    diesel::update(dsl::auth_user.find(id))
        .set(dsl::password.eq(password_hash))
        .execute(conn)?;
    Ok(())
}

pub fn touch_last_login(conn: &mut DbConnection, id: i32) -> Result<(), DbError> {
    diesel::update(dsl::auth_user.find(id))
        .set(dsl::last_login.eq(crate::now()))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConnection, id: i32) -> Result<bool, DbError> {
    Ok(diesel::delete(dsl::auth_user.find(id)).execute(conn)? > 0)
}
