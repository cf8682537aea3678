//! Fatmen as the API shows them: version resolution and DTOs.

use racetrack_db::models::{Deployment, Fatman};
use racetrack_db::repo::fatmen;
use racetrack_db::DbConnection;
use racetrack_model::version::{resolve_version, VersionQuery};
use racetrack_model::{AuditLogEventType, DeploymentStatus, FatmanStatus};
use serde::Serialize;

use crate::error::ApiError;

/// Finds the fatman a version query (`latest`, `1.x`, exact) means.
pub fn resolve_fatman(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
) -> Result<Fatman, ApiError> {
    let query = VersionQuery::parse(version);
    if let VersionQuery::Exact(exact) = &query {
        return exact_fatman(conn, name, exact);
    }
    let versions = fatmen::versions_of(conn, name)?;
    let refs: Vec<&str> = versions.iter().map(String::as_str).collect();
    let resolved = resolve_version(&query, name, &refs)?;
    exact_fatman(conn, name, resolved)
}

/// Like [`resolve_fatman`] but a missing fatman resolves to `None` (permission checks then use
/// version ""), while an unparsable stored version is still an error.
pub fn try_resolve_fatman(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
) -> Result<Option<Fatman>, ApiError> {
    match resolve_fatman(conn, name, version) {
        Ok(f) => Ok(Some(f)),
        Err(ApiError::NotFound(_)) => Ok(None),
        Err(other) => Err(other),
    }
}

/// Exact lookup (delete, redeploy, move do not resolve aliases).
pub fn exact_fatman(
    conn: &mut DbConnection,
    name: &str,
    version: &str,
) -> Result<Fatman, ApiError> {
    fatmen::find(conn, name, version)?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "Fatman with name {name} and version {version} was not found"
        ))
    })
}

fn unix(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
}

/// A stored normalised manifest (written at deploy, docs/architecture.md "The manifest's path")
/// as the API shows it: JSON with every key present.
fn manifest_value(json: Option<&String>) -> Option<serde_json::Value> {
    serde_json::from_str(json?).ok()
}

/// The normalised manifest of one fatman as the API shows it.
pub fn manifest_of(
    conn: &mut DbConnection,
    f: &Fatman,
) -> Result<Option<serde_json::Value>, ApiError> {
    let stored = fatmen::manifest_jsons(conn, &[f.id.as_str()])?;
    Ok(manifest_value(stored.get(&f.id)))
}

/// `GET /fatman`'s list: the DTOs of `list` with their manifests, read in one query.
pub fn fatman_dtos(
    conn: &mut DbConnection,
    list: &[Fatman],
    external_pub_url: &str,
) -> Result<Vec<FatmanDto>, ApiError> {
    let ids: Vec<&str> = list.iter().map(|f| f.id.as_str()).collect();
    let stored = fatmen::manifest_jsons(conn, &ids)?;
    Ok(list
        .iter()
        .map(|f| FatmanDto::new(f, manifest_value(stored.get(&f.id)), external_pub_url))
        .collect())
}

/// `GET /fatman/{name}/{version}`'s DTO.
pub fn fatman_details(conn: &mut DbConnection, f: &Fatman) -> Result<FatmanDetailsDto, ApiError> {
    Ok(FatmanDetailsDto::new(f, manifest_of(conn, f)?))
}

/// The normalised manifest stored for `manifest`.
pub fn normalised_manifest(manifest: &racetrack_model::Manifest) -> String {
    racetrack_model::manifest_to_json(manifest).to_string()
}

/// Fills in the normalised manifest of fatmen deployed before it was stored (migration 0005),
/// once at startup: from then on no request parses YAML. A stored YAML that no longer parses is
/// left without one (the API shows its manifest as `null`, as before). Returns how many were
/// filled in.
pub fn backfill_manifest_json(conn: &mut DbConnection) -> Result<usize, ApiError> {
    let mut filled = 0;
    for (id, yaml) in fatmen::missing_manifest_json(conn)? {
        match racetrack_model::parse_manifest_yaml(&yaml) {
            Ok(m) => {
                fatmen::set_manifest_json(conn, &id, Some(&normalised_manifest(&m)))?;
                filled += 1;
            }
            Err(e) => tracing::warn!(fatman_id = %id, error = %e, "stored manifest does not parse"),
        }
    }
    Ok(filled)
}

/// Full fatman as `GET /fatman` lists it.
#[derive(Debug, Serialize)]
pub struct FatmanDto {
    pub name: String,
    pub version: String,
    pub status: FatmanStatus,
    pub create_time: i64,
    pub update_time: i64,
    pub id: Option<String>,
    pub manifest: Option<serde_json::Value>,
    pub internal_name: Option<String>,
    pub pub_url: Option<String>,
    pub error: Option<String>,
    pub image_tag: Option<String>,
    pub deployed_by: Option<String>,
    pub last_call_time: Option<i64>,
    pub infrastructure_target: Option<String>,
}

impl FatmanDto {
    /// `manifest`: the stored normalised manifest ([`manifest_of`]).
    pub fn new(
        f: &Fatman,
        manifest: Option<serde_json::Value>,
        external_pub_url: &str,
    ) -> FatmanDto {
        FatmanDto {
            name: f.name.clone(),
            version: f.version.clone(),
            status: f.status,
            create_time: unix(f.create_time),
            update_time: unix(f.update_time),
            id: Some(f.id.clone()),
            manifest,
            internal_name: f.internal_name.clone(),
            pub_url: Some(format!(
                "{external_pub_url}/fatman/{}/{}",
                f.name, f.version
            )),
            error: f.error.clone(),
            image_tag: f.image_tag.clone(),
            deployed_by: f.deployed_by.clone(),
            last_call_time: f.last_call_time.map(unix),
            infrastructure_target: f.infrastructure_target.clone(),
        }
    }
}

/// The reduced form `GET /fatman/{name}/{version}` returns (the original's shape).
#[derive(Debug, Serialize)]
pub struct FatmanDetailsDto {
    pub id: Option<String>,
    pub name: String,
    pub version: String,
    pub deployed_by: Option<String>,
    pub manifest: Option<serde_json::Value>,
    pub error: Option<String>,
    pub status: FatmanStatus,
    pub internal_name: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
}

impl FatmanDetailsDto {
    /// `manifest`: the stored normalised manifest ([`manifest_of`]).
    pub fn new(f: &Fatman, manifest: Option<serde_json::Value>) -> Self {
        FatmanDetailsDto {
            id: Some(f.id.clone()),
            name: f.name.clone(),
            version: f.version.clone(),
            deployed_by: f.deployed_by.clone(),
            manifest,
            error: f.error.clone(),
            status: f.status,
            internal_name: f.internal_name.clone(),
            create_time: unix(f.create_time),
            update_time: unix(f.update_time),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DeploymentDto {
    pub id: String,
    pub status: DeploymentStatus,
    pub error: Option<String>,
    pub fatman: Option<FatmanDto>,
    pub deployed_by: Option<String>,
    pub phase: Option<String>,
    pub image_name: Option<String>,
    pub infrastructure_target: Option<String>,
}

impl DeploymentDto {
    pub fn new(
        conn: &mut DbConnection,
        d: &Deployment,
        external_pub_url: &str,
    ) -> Result<DeploymentDto, ApiError> {
        let fatman = if d.status == DeploymentStatus::Done {
            match fatmen::find(conn, &d.fatman_name, &d.fatman_version)? {
                Some(f) => {
                    let manifest = manifest_of(conn, &f)?;
                    Some(FatmanDto::new(&f, manifest, external_pub_url))
                }
                None => None,
            }
        } else {
            None
        };
        Ok(DeploymentDto {
            id: d.id.clone(),
            status: d.status,
            error: d.error.clone(),
            fatman,
            deployed_by: d.deployed_by.clone(),
            phase: d.phase.clone(),
            image_name: d.image_name.clone(),
            infrastructure_target: d.infrastructure_target.clone(),
        })
    }
}

pub fn unix_time(t: chrono::NaiveDateTime) -> i64 {
    unix(t)
}

/// Writes an audit event about a fatman (after the action it records has succeeded).
pub fn record_event(
    conn: &mut DbConnection,
    event_type: AuditLogEventType,
    executor: &str,
    owner: Option<&str>,
    fatman: &Fatman,
) -> Result<(), ApiError> {
    racetrack_db::repo::audit::insert(
        conn,
        &racetrack_db::models::AuditLogEvent {
            id: racetrack_db::new_id(),
            version: 1,
            timestamp: racetrack_db::now(),
            event_type,
            properties: None,
            username_executor: Some(executor.to_string()),
            username_subject: owner.map(String::from),
            fatman_name: Some(fatman.name.clone()),
            fatman_version: Some(fatman.version.clone()),
        },
    )?;
    tracing::info!(%event_type, executor, fatman = %fatman.name, version = %fatman.version, "Audit log event saved");
    Ok(())
}
