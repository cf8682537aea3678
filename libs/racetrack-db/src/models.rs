//! Rows as stored, which are also the registry's domain types (one `Fatman`, `Family`,
//! `Deployment` each; docs/architecture.md, "Where each concept lives"). Statuses, scopes and
//! event kinds are `racetrack_model` enums stored as their wire text. Conversion to API DTOs
//! happens in the service, not here.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use racetrack_model::{
    AuditLogEventType, AuthScope, AuthSubjectType, DeploymentStatus, FatmanStatus,
};

use crate::schema::*;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = auth_user)]
pub struct User {
    pub id: i32,
    pub username: String,
    /// PHC string (argon2) — never serialised anywhere.
    pub password: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub last_login: Option<NaiveDateTime>,
    pub date_joined: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = auth_user)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub email: &'a str,
    pub is_active: bool,
    pub is_staff: bool,
    pub is_superuser: bool,
    pub date_joined: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = registry_fatmanfamily)]
pub struct Family {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = registry_fatman, treat_none_as_null = true)]
pub struct Fatman {
    pub id: String,
    pub family_id: String,
    pub name: String,
    pub version: String,
    pub status: FatmanStatus,
    pub create_time: NaiveDateTime,
    pub update_time: NaiveDateTime,
    /// YAML, as the original stored it.
    pub manifest: Option<String>,
    pub internal_name: Option<String>,
    pub error: Option<String>,
    pub image_tag: Option<String>,
    pub deployed_by: Option<String>,
    pub last_call_time: Option<NaiveDateTime>,
    pub infrastructure_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset, Identifiable)]
#[diesel(table_name = registry_deployment, treat_none_as_null = true)]
pub struct Deployment {
    pub id: String,
    pub status: DeploymentStatus,
    pub create_time: NaiveDateTime,
    pub update_time: NaiveDateTime,
    pub manifest: String,
    pub fatman_name: String,
    pub fatman_version: String,
    pub error: Option<String>,
    pub deployed_by: Option<String>,
    pub build_logs: Option<String>,
    pub phase: Option<String>,
    pub image_name: Option<String>,
    pub infrastructure_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = registry_esc)]
pub struct Esc {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = registry_publicendpointrequest)]
pub struct PublicEndpointRequest {
    pub id: String,
    pub fatman_id: String,
    pub endpoint: String,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = registry_trashfatman)]
pub struct TrashFatman {
    pub id: String,
    pub name: String,
    pub version: String,
    pub status: FatmanStatus,
    pub create_time: NaiveDateTime,
    pub update_time: NaiveDateTime,
    pub manifest: Option<String>,
    pub internal_name: Option<String>,
    pub error: Option<String>,
    pub image_tag: Option<String>,
    pub deployed_by: Option<String>,
    pub last_call_time: Option<NaiveDateTime>,
    pub infrastructure_target: Option<String>,
    pub delete_time: NaiveDateTime,
    pub age_days: f64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = registry_auditlogevent)]
pub struct AuditLogEvent {
    pub id: String,
    pub version: i32,
    pub timestamp: NaiveDateTime,
    pub event_type: AuditLogEventType,
    pub properties: Option<String>,
    pub username_executor: Option<String>,
    pub username_subject: Option<String>,
    pub fatman_name: Option<String>,
    pub fatman_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = registry_authsubject)]
pub struct AuthSubject {
    pub id: String,
    pub user_id: Option<i32>,
    pub esc_id: Option<String>,
    pub fatman_family_id: Option<String>,
    pub expiry_time: Option<NaiveDateTime>,
    pub active: bool,
    /// Set for a Racetrack service (`pub`, `lifecycle-supervisor`, ...): its internal tokens.
    pub service_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, Identifiable)]
#[diesel(table_name = registry_authtoken)]
pub struct AuthToken {
    pub id: String,
    pub auth_subject_id: String,
    pub token_hash: String,
    /// Only for tokens whose seed is public anyway (the original's seeded admin token).
    pub public_seed: Option<String>,
    pub label: String,
    pub create_time: NaiveDateTime,
    pub expiry_time: Option<NaiveDateTime>,
    pub last_use_time: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Identifiable)]
#[diesel(table_name = registry_authresourcepermission)]
pub struct AuthPermission {
    pub id: i64,
    pub auth_subject_id: String,
    pub scope: AuthScope,
    pub fatman_family_id: Option<String>,
    pub fatman_id: Option<String>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = registry_authresourcepermission)]
pub struct NewAuthPermission<'a> {
    pub auth_subject_id: &'a str,
    pub scope: AuthScope,
    pub fatman_family_id: Option<&'a str>,
    pub fatman_id: Option<&'a str>,
    pub endpoint: Option<&'a str>,
}

/// Who an auth subject is, resolved from its foreign keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectOwner {
    User {
        username: String,
        is_active: bool,
    },
    Esc {
        id: String,
        name: String,
    },
    Family {
        name: String,
    },
    /// A Racetrack service; its tokens are internal tokens.
    Service {
        name: String,
    },
    Unknown,
}

impl SubjectOwner {
    /// The subject's display form used in error messages and the admin panel.
    pub fn display(&self, subject_id: &str) -> String {
        match self {
            SubjectOwner::User { username, .. } => format!("User: {username}"),
            SubjectOwner::Esc { id, name } => format!("ESC: {name} ({id})"),
            SubjectOwner::Family { name } => format!("Fatman Family: {name}"),
            SubjectOwner::Service { name } => format!("Internal: {name}"),
            SubjectOwner::Unknown => subject_id.to_string(),
        }
    }

    /// The `subject` claim of this subject's tokens.
    pub fn token_subject(&self) -> Option<&str> {
        match self {
            SubjectOwner::User { username, .. } => Some(username),
            SubjectOwner::Esc { id, .. } => Some(id),
            SubjectOwner::Family { name } => Some(name),
            SubjectOwner::Service { name } => Some(name),
            SubjectOwner::Unknown => None,
        }
    }

    pub fn subject_type(&self) -> Option<AuthSubjectType> {
        match self {
            SubjectOwner::User { .. } => Some(AuthSubjectType::User),
            SubjectOwner::Esc { .. } => Some(AuthSubjectType::Esc),
            SubjectOwner::Family { .. } => Some(AuthSubjectType::FatmanFamily),
            SubjectOwner::Service { .. } => Some(AuthSubjectType::Internal),
            SubjectOwner::Unknown => None,
        }
    }
}

/// A permission with its resource filters resolved to names: what permission checks work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PermissionView {
    pub id: i64,
    pub auth_subject_id: String,
    pub scope: AuthScope,
    pub family_name: Option<String>,
    /// (name, version) of the fatman filter.
    pub fatman: Option<(String, String)>,
    pub endpoint: Option<String>,
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use racetrack_model::FatmanStatus;

    use super::*;
    use crate::repo::fatmen;
    use crate::Database;

    fn database(dir: &tempfile::TempDir) -> Database {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Database::connect(&url, 1).unwrap();
        db.migrate().unwrap();
        db
    }

    #[test]
    fn statuses_are_stored_as_their_wire_text() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let mut conn = db.get().unwrap();
        let (family, _) = fatmen::get_or_create_family(&mut conn, "adder").unwrap();
        let now = crate::now();
        let row = Fatman {
            id: crate::new_id(),
            family_id: family.id,
            name: "adder".into(),
            version: "1.0.0".into(),
            status: FatmanStatus::Lost,
            create_time: now,
            update_time: now,
            manifest: None,
            internal_name: None,
            error: None,
            image_tag: None,
            deployed_by: None,
            last_call_time: None,
            infrastructure_target: None,
        };
        fatmen::insert(&mut conn, &row).unwrap();
        let stored: String = crate::schema::registry_fatman::table
            .select(crate::schema::registry_fatman::status)
            .first(&mut *conn)
            .unwrap();
        assert_eq!(stored, "lost");
        assert_eq!(fatmen::list(&mut conn).unwrap(), vec![row]);
    }

    #[test]
    fn an_unknown_stored_status_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = database(&dir);
        let mut conn = db.get().unwrap();
        let (family, _) = fatmen::get_or_create_family(&mut conn, "adder").unwrap();
        conn.batch_execute(&format!(
            "INSERT INTO registry_fatman (id, family_id, name, version, status, create_time, update_time) \
             VALUES ('f1', '{}', 'adder', '1.0.0', 'sleeping', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
            family.id
        ))
        .unwrap();
        let err = fatmen::list(&mut conn).unwrap_err().to_string();
        assert!(err.contains("unknown fatman status \"sleeping\""), "{err}");
    }
}
