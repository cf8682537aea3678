use diesel::prelude::*;
use racetrack_model::DeploymentStatus;

use crate::models::Deployment;
use crate::schema::registry_deployment::dsl;
use crate::{DbConnection, DbError};

pub fn insert(conn: &mut DbConnection, deployment: &Deployment) -> Result<(), DbError> {
    diesel::insert_into(dsl::registry_deployment)
        .values(deployment)
        .execute(conn)?;
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Deployment>, DbError> {
    Ok(dsl::registry_deployment
        .find(id)
        .select(Deployment::as_select())
        .first(conn)
        .optional()?)
}

pub fn save(conn: &mut DbConnection, deployment: &Deployment) -> Result<(), DbError> {
    diesel::update(dsl::registry_deployment.find(&deployment.id))
        .set(deployment)
        .execute(conn)?;
    Ok(())
}

/// The most recently updated deployment of a fatman version (whose build logs the API shows).
pub fn latest_for_fatman(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
) -> Result<Option<Deployment>, DbError> {
    Ok(dsl::registry_deployment
        .filter(dsl::fatman_name.eq(name))
        .filter(dsl::fatman_version.eq(version))
        .order(dsl::update_time.desc())
        .select(Deployment::as_select())
        .first(conn)
        .optional()?)
}

pub fn list_in_progress(conn: &mut DbConnection) -> Result<Vec<Deployment>, DbError> {
    Ok(dsl::registry_deployment
        .filter(dsl::status.eq(DeploymentStatus::InProgress))
        .select(Deployment::as_select())
        .load(conn)?)
}

/// The image of the newest successful deployment of a fatman version that ran it on an
/// infrastructure target. Build-only records (`POST /build`) have no target: their images were
/// never deployed by anyone allowed to, so reprovisioning (and reconcile) never picks them.
pub fn latest_provisioned_image(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
) -> Result<Option<String>, DbError> {
    Ok(dsl::registry_deployment
        .filter(dsl::fatman_name.eq(name))
        .filter(dsl::fatman_version.eq(version))
        .filter(dsl::status.eq(DeploymentStatus::Done))
        .filter(dsl::infrastructure_target.is_not_null())
        .filter(dsl::image_name.is_not_null())
        .order(dsl::update_time.desc())
        .select(dsl::image_name)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// An in-progress deployment of this fatman version updated after `since`, if any.
pub fn ongoing(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
    since: chrono::NaiveDateTime,
) -> Result<Option<Deployment>, DbError> {
    Ok(dsl::registry_deployment
        .filter(dsl::fatman_name.eq(name))
        .filter(dsl::fatman_version.eq(version))
        .filter(dsl::status.eq(DeploymentStatus::InProgress))
        .filter(dsl::update_time.gt(since))
        .select(Deployment::as_select())
        .first(conn)
        .optional()?)
}

/// Newest first, at most `limit`; only one family (and one version of it) when given.
pub fn list(
    conn: &mut DbConnection,
    fatman_name: Option<&str>,
    fatman_version: Option<&str>,
    limit: i64,
) -> Result<Vec<Deployment>, DbError> {
    let mut q = dsl::registry_deployment.into_boxed();
    if let Some(name) = fatman_name {
        q = q.filter(dsl::fatman_name.eq(name));
    }
    if let Some(version) = fatman_version {
        q = q.filter(dsl::fatman_version.eq(version));
    }
    Ok(q.order((dsl::create_time.desc(), dsl::id.desc()))
        .limit(limit)
        .select(Deployment::as_select())
        .load(conn)?)
}
