//! Fatmen and deployments as the REST API shows them.

use racetrack_db::models::{Deployment, Fatman};
use racetrack_model::{DeploymentStatus, FatmanStatus};
use serde::Serialize;

fn unix(t: chrono::NaiveDateTime) -> i64 {
    t.and_utc().timestamp()
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
    /// `manifest`: the stored normalised manifest (`app::fatmen::manifests_of`).
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
    /// `manifest`: the stored normalised manifest (`app::fatmen::with_manifest`).
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
    /// `fatman`: the deployed fatman with its normalised manifest, once the deployment is done.
    pub fn new(
        d: &Deployment,
        fatman: Option<(&Fatman, Option<serde_json::Value>)>,
        external_pub_url: &str,
    ) -> DeploymentDto {
        DeploymentDto {
            id: d.id.clone(),
            status: d.status,
            error: d.error.clone(),
            fatman: fatman.map(|(f, manifest)| FatmanDto::new(f, manifest, external_pub_url)),
            deployed_by: d.deployed_by.clone(),
            phase: d.phase.clone(),
            image_name: d.image_name.clone(),
            infrastructure_target: d.infrastructure_target.clone(),
        }
    }
}

pub fn unix_time(t: chrono::NaiveDateTime) -> i64 {
    unix(t)
}
