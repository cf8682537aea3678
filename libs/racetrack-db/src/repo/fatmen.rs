//! Fatmen, their families, public endpoint requests and the trash of deleted fatmen.

use diesel::prelude::*;

use crate::models::{Family, Fatman, PublicEndpointRequest, TrashFatman};
use crate::schema::{
    registry_fatman as fatman, registry_fatmanfamily as family,
    registry_publicendpointrequest as endpoint, registry_trashfatman as trash,
};
use crate::{DbConnection, DbError};

pub fn list_families(conn: &mut DbConnection) -> Result<Vec<Family>, DbError> {
    Ok(family::table
        .order(family::name.asc())
        .select(Family::as_select())
        .load(conn)?)
}

pub fn find_family(conn: &mut DbConnection, name: &str) -> Result<Option<Family>, DbError> {
    Ok(family::table
        .filter(family::name.eq(name))
        .select(Family::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_family_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<Family>, DbError> {
    Ok(family::table
        .find(id)
        .select(Family::as_select())
        .first(conn)
        .optional()?)
}

/// Returns the family and whether this call created it.
pub fn get_or_create_family(
    conn: &mut DbConnection,
    name: &str,
) -> Result<(Family, bool), DbError> {
    if let Some(found) = find_family(conn, name)? {
        return Ok((found, false));
    }
    let created = Family {
        id: crate::new_id(),
        name: name.to_string(),
    };
    diesel::insert_into(family::table)
        .values(&created)
        .execute(conn)?;
    Ok((created, true))
}

/// All fatmen, most recently updated first, then by name (the original's list order).
pub fn list(conn: &mut DbConnection) -> Result<Vec<Fatman>, DbError> {
    Ok(fatman::table
        .order((fatman::update_time.desc(), fatman::name.asc()))
        .select(Fatman::as_select())
        .load(conn)?)
}

pub fn find(conn: &mut DbConnection, name: &str, version: &str) -> Result<Option<Fatman>, DbError> {
    Ok(fatman::table
        .filter(fatman::name.eq(name))
        .filter(fatman::version.eq(version))
        .select(Fatman::as_select())
        .first(conn)
        .optional()?)
}

pub fn find_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<Fatman>, DbError> {
    Ok(fatman::table
        .find(id)
        .select(Fatman::as_select())
        .first(conn)
        .optional()?)
}

/// Stored version strings of one fatman name, for alias resolution.
pub fn versions_of(conn: &mut DbConnection, name: &str) -> Result<Vec<String>, DbError> {
    Ok(fatman::table
        .filter(fatman::name.eq(name))
        .select(fatman::version)
        .load(conn)?)
}

pub fn list_family_members(
    conn: &mut DbConnection,
    family_id: &str,
) -> Result<Vec<Fatman>, DbError> {
    Ok(fatman::table
        .filter(fatman::family_id.eq(family_id))
        .select(Fatman::as_select())
        .load(conn)?)
}

pub fn insert(conn: &mut DbConnection, row: &Fatman) -> Result<(), DbError> {
    diesel::insert_into(fatman::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn update(conn: &mut DbConnection, row: &Fatman) -> Result<(), DbError> {
    diesel::update(fatman::table.find(&row.id))
        .set(row)
        .execute(conn)?;
    Ok(())
}

/// Stores the normalised manifest (JSON text) the code reads, next to the user's YAML in
/// `manifest` (migration 0005). Whoever writes `manifest` writes this too (Lifecycle's deploy).
pub fn set_manifest_json(
    conn: &mut DbConnection,
    fatman_id: &str,
    json: Option<&str>,
) -> Result<(), DbError> {
    diesel::update(fatman::table.find(fatman_id))
        .set(fatman::manifest_json.eq(json))
        .execute(conn)?;
    Ok(())
}

/// The normalised manifests (JSON text) of the fatmen with these ids, by id; fatmen without
/// one are left out. One query per 500 ids (bound parameters are limited).
pub fn manifest_jsons(
    conn: &mut DbConnection,
    ids: &[&str],
) -> Result<std::collections::HashMap<String, String>, DbError> {
    let mut out = std::collections::HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, Option<String>)> = fatman::table
            .filter(fatman::id.eq_any(chunk))
            .select((fatman::id, fatman::manifest_json))
            .load(conn)?;
        out.extend(rows.into_iter().filter_map(|(id, json)| Some((id, json?))));
    }
    Ok(out)
}

/// `(id, YAML)` of fatmen with a YAML manifest but no normalised one: rows written before
/// migration 0005, for a one-time backfill.
pub fn missing_manifest_json(conn: &mut DbConnection) -> Result<Vec<(String, String)>, DbError> {
    let rows: Vec<(String, Option<String>)> = fatman::table
        .filter(fatman::manifest.is_not_null())
        .filter(fatman::manifest_json.is_null())
        .select((fatman::id, fatman::manifest))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, yaml)| Some((id, yaml?)))
        .collect())
}

/// Moves a fatman to the trash: the row is copied to `registry_trashfatman` and deleted, which
/// cascades its fatman-level permissions and public endpoint requests. One transaction.
pub fn move_to_trash(conn: &mut DbConnection, row: &Fatman) -> Result<(), DbError> {
    conn.transaction(|conn| {
        let now = crate::now();
        let age = (now - row.create_time).num_milliseconds() as f64 / 86_400_000.0;
        let trashed = TrashFatman {
            id: row.id.clone(),
            name: row.name.clone(),
            version: row.version.clone(),
            status: row.status,
            create_time: row.create_time,
            update_time: row.update_time,
            manifest: row.manifest.clone(),
            internal_name: row.internal_name.clone(),
            error: row.error.clone(),
            image_tag: row.image_tag.clone(),
            deployed_by: row.deployed_by.clone(),
            last_call_time: row.last_call_time,
            infrastructure_target: row.infrastructure_target.clone(),
            delete_time: now,
            age_days: (age * 1000.0).round() / 1000.0,
        };
        // A fatman may be deleted, redeployed with force and deleted again: same id twice.
        diesel::delete(trash::table.find(&row.id)).execute(conn)?;
        diesel::insert_into(trash::table)
            .values(&trashed)
            .execute(conn)?;
        diesel::delete(fatman::table.find(&row.id)).execute(conn)?;
        Ok(())
    })
}

pub fn is_trashed(conn: &mut DbConnection, name: &str, version: &str) -> Result<bool, DbError> {
    let count: i64 = trash::table
        .filter(trash::name.eq(name))
        .filter(trash::version.eq(version))
        .count()
        .get_result(conn)?;
    Ok(count > 0)
}

pub fn list_trash(conn: &mut DbConnection) -> Result<Vec<TrashFatman>, DbError> {
    Ok(trash::table
        .order(trash::delete_time.desc())
        .select(TrashFatman::as_select())
        .load(conn)?)
}

pub fn active_public_endpoints(
    conn: &mut DbConnection,
    fatman_id: &str,
) -> Result<Vec<PublicEndpointRequest>, DbError> {
    Ok(endpoint::table
        .filter(endpoint::fatman_id.eq(fatman_id))
        .filter(endpoint::active.eq(true))
        .order(endpoint::endpoint.asc())
        .select(PublicEndpointRequest::as_select())
        .load(conn)?)
}

pub fn list_public_endpoint_requests(
    conn: &mut DbConnection,
) -> Result<Vec<PublicEndpointRequest>, DbError> {
    Ok(endpoint::table
        .select(PublicEndpointRequest::as_select())
        .load(conn)?)
}

pub fn find_public_endpoint_request(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<PublicEndpointRequest>, DbError> {
    Ok(endpoint::table
        .find(id)
        .select(PublicEndpointRequest::as_select())
        .first(conn)
        .optional()?)
}

/// Every public endpoint one fatman requested, approved or not.
pub fn public_endpoint_requests_of(
    conn: &mut DbConnection,
    fatman_id: &str,
) -> Result<Vec<PublicEndpointRequest>, DbError> {
    Ok(endpoint::table
        .filter(endpoint::fatman_id.eq(fatman_id))
        .order(endpoint::endpoint.asc())
        .select(PublicEndpointRequest::as_select())
        .load(conn)?)
}

/// Records a request for a public endpoint (inactive until an admin approves it); idempotent.
pub fn request_public_endpoint(
    conn: &mut DbConnection,
    fatman_id: &str,
    path: &str,
) -> Result<(), DbError> {
    let existing: i64 = endpoint::table
        .filter(endpoint::fatman_id.eq(fatman_id))
        .filter(endpoint::endpoint.eq(path))
        .count()
        .get_result(conn)?;
    if existing == 0 {
        let row = PublicEndpointRequest {
            id: crate::new_id(),
            fatman_id: fatman_id.to_string(),
            endpoint: path.to_string(),
            active: false,
        };
        diesel::insert_into(endpoint::table)
            .values(&row)
            .execute(conn)?;
    }
    Ok(())
}

pub fn set_public_endpoint_active(
    conn: &mut DbConnection,
    id: &str,
    active: bool,
) -> Result<bool, DbError> {
    Ok(diesel::update(endpoint::table.find(id))
        .set(endpoint::active.eq(active))
        .execute(conn)?
        > 0)
}
