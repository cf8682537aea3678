//! What the lifecycle supervisor writes: the status it observed in the infrastructure, when it
//! last checked each fatman, and the orphans it registers and removes.
//!
//! Writes are narrow (only the columns the supervisor owns) and conditional on the row being
//! unchanged since the supervisor read it, so a deploy, redeploy or delete running at the same
//! time always wins: the supervisor simply looks again at its next sync.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use racetrack_model::{DeploymentStatus, FatmanStatus};

use crate::models::Fatman;
use crate::schema::registry_deployment as deployment;
use crate::schema::registry_fatman as fatman;
use crate::{DbConnection, DbError};

/// Status and details observed for one fatman.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation<'a> {
    pub status: FatmanStatus,
    pub error: Option<&'a str>,
    pub internal_name: Option<&'a str>,
    pub infrastructure_target: Option<&'a str>,
    pub last_call_time: Option<NaiveDateTime>,
}

/// Every fatman with the time the supervisor last checked it.
pub fn list_with_check_time(
    conn: &mut DbConnection,
) -> Result<Vec<(Fatman, Option<NaiveDateTime>)>, DbError> {
    Ok(fatman::table
        .order((fatman::name.asc(), fatman::version.asc()))
        .select((Fatman::as_select(), fatman::last_check_time))
        .load(conn)?)
}

/// Stores an observation that differs from the row as read: status, error, address, target and
/// last call time, with `update_time` and `last_check_time` set to `now`. Applied only when the
/// row still has the `update_time` and `status` it was read with; `false` when it changed (or is
/// gone) meanwhile.
pub fn record_observation(
    conn: &mut DbConnection,
    id: &str,
    read_update_time: NaiveDateTime,
    read_status: FatmanStatus,
    observed: &Observation<'_>,
    now: NaiveDateTime,
) -> Result<bool, DbError> {
    let updated = diesel::update(
        fatman::table
            .filter(fatman::id.eq(id))
            .filter(fatman::update_time.eq(read_update_time))
            .filter(fatman::status.eq(read_status)),
    )
    .set((
        fatman::status.eq(observed.status),
        fatman::error.eq(observed.error),
        fatman::internal_name.eq(observed.internal_name),
        fatman::infrastructure_target.eq(observed.infrastructure_target),
        fatman::last_call_time.eq(observed.last_call_time),
        fatman::update_time.eq(now),
        fatman::last_check_time.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(updated > 0)
}

/// Sets `last_check_time` of fatmen whose observation matched the row (nothing else changes).
pub fn touch_checked(
    conn: &mut DbConnection,
    ids: &[String],
    now: NaiveDateTime,
) -> Result<usize, DbError> {
    let mut total = 0;
    // Bounded IN lists: SQLite limits the number of bound parameters.
    for chunk in ids.chunks(500) {
        total += diesel::update(fatman::table.filter(fatman::id.eq_any(chunk)))
            .set(fatman::last_check_time.eq(Some(now)))
            .execute(conn)?;
    }
    Ok(total)
}

/// When the supervisor last checked a fatman version.
pub fn last_check_time(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
) -> Result<Option<NaiveDateTime>, DbError> {
    Ok(fatman::table
        .filter(fatman::name.eq(name))
        .filter(fatman::version.eq(version))
        .select(fatman::last_check_time)
        .first::<Option<NaiveDateTime>>(conn)
        .optional()?
        .flatten())
}

/// Deletes a row the supervisor registered as an orphan (status `orphaned`, no manifest); `false`
/// when it is no longer one (e.g. someone deployed that version over it meanwhile).
pub fn delete_orphan(conn: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    let deleted = diesel::delete(
        fatman::table
            .filter(fatman::id.eq(id))
            .filter(fatman::status.eq(FatmanStatus::Orphaned))
            .filter(fatman::manifest.is_null()),
    )
    .execute(conn)?;
    Ok(deleted > 0)
}

/// `(name, version)` of deployments in progress that were updated after `since` (older ones are
/// taken as abandoned: their process died without recording an outcome).
pub fn deployments_in_progress(
    conn: &mut DbConnection,
    since: NaiveDateTime,
) -> Result<Vec<(String, String)>, DbError> {
    Ok(deployment::table
        .filter(deployment::status.eq(DeploymentStatus::InProgress))
        .filter(deployment::update_time.gt(since))
        .select((deployment::fatman_name, deployment::fatman_version))
        .distinct()
        .load(conn)?)
}
