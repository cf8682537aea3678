use diesel::prelude::*;

use crate::models::AuditLogEvent;
use crate::schema::registry_auditlogevent::dsl;
use crate::{DbConnection, DbError};

/// The original never returned more than this many events.
pub const MAX_EVENTS: i64 = 100;

pub fn insert(conn: &mut DbConnection, event: &AuditLogEvent) -> Result<(), DbError> {
    diesel::insert_into(dsl::registry_auditlogevent)
        .values(event)
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Default, Clone)]
pub struct EventFilter<'a> {
    /// Events done by or concerning this user.
    pub related_to_user: Option<&'a str>,
    pub fatman_name: Option<&'a str>,
    /// Literal version; aliases are not resolved (as the original).
    pub fatman_version: Option<&'a str>,
}

type Backend = <DbConnection as diesel::Connection>::Backend;

fn filtered<'a>(
    filter: &EventFilter<'a>,
) -> crate::schema::registry_auditlogevent::BoxedQuery<'a, Backend> {
    let mut q = dsl::registry_auditlogevent.into_boxed();
    if let Some(user) = filter.related_to_user {
        q = q.filter(
            dsl::username_executor
                .eq(user)
                .or(dsl::username_subject.eq(user)),
        );
    }
    if let Some(name) = filter.fatman_name {
        q = q.filter(dsl::fatman_name.eq(name));
    }
    if let Some(version) = filter.fatman_version {
        q = q.filter(dsl::fatman_version.eq(version));
    }
    q
}

/// Newest first, capped at [`MAX_EVENTS`].
pub fn query(
    conn: &mut DbConnection,
    filter: &EventFilter<'_>,
) -> Result<Vec<AuditLogEvent>, DbError> {
    page(conn, filter, 0, MAX_EVENTS)
}

/// Newest first: `limit` events after skipping `offset`.
pub fn page(
    conn: &mut DbConnection,
    filter: &EventFilter<'_>,
    offset: i64,
    limit: i64,
) -> Result<Vec<AuditLogEvent>, DbError> {
    Ok(filtered(filter)
        .order((dsl::timestamp.desc(), dsl::id.desc()))
        .offset(offset)
        .limit(limit)
        .select(AuditLogEvent::as_select())
        .load(conn)?)
}

/// How many events match `filter`.
pub fn count(conn: &mut DbConnection, filter: &EventFilter<'_>) -> Result<i64, DbError> {
    Ok(filtered(filter).count().get_result(conn)?)
}
