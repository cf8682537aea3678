use diesel::prelude::*;

use crate::models::Esc;
use crate::schema::registry_esc::dsl;
use crate::{DbConnection, DbError};

pub fn list(conn: &mut DbConnection) -> Result<Vec<Esc>, DbError> {
    Ok(dsl::registry_esc
        .order((dsl::name.asc(), dsl::id.asc()))
        .select(Esc::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Esc>, DbError> {
    Ok(dsl::registry_esc
        .find(id)
        .select(Esc::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut DbConnection, esc: &Esc) -> Result<(), DbError> {
    diesel::insert_into(dsl::registry_esc)
        .values(esc)
        .execute(conn)?;
    Ok(())
}

pub fn rename(conn: &mut DbConnection, id: &str, name: &str) -> Result<bool, DbError> {
    Ok(diesel::update(dsl::registry_esc.find(id))
        .set(dsl::name.eq(name))
        .execute(conn)?
        > 0)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(dsl::registry_esc.find(id)).execute(conn)? > 0)
}
