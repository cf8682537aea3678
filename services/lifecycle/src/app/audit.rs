//! The audit log: what happened to which fatman, done by whom.

use racetrack_db::models::{AuditLogEvent, Fatman};
use racetrack_db::repo::audit::{self, EventFilter};
use racetrack_db::DbConnection;
use racetrack_model::{AuditLogEventType, AuthScope};

use super::permissions::{require_user, require_user_or_service};
use super::{AppError, Caller};

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Only events done by or concerning the calling user (`/audit/user_events`).
    pub mine: bool,
    pub fatman_name: Option<String>,
    pub fatman_version: Option<String>,
}

/// Newest first. The whole log names every user and fatman: not for ESC or fatman family
/// tokens; a user's own events need a user.
pub fn events(
    conn: &mut DbConnection,
    caller: &Caller,
    query: &Query,
) -> Result<Vec<AuditLogEvent>, AppError> {
    let user = if query.mine {
        Some(require_user(caller)?.to_string())
    } else {
        require_user_or_service(caller, AuthScope::CallAdminApi)?;
        None
    };
    let filter = EventFilter {
        related_to_user: user.as_deref(),
        fatman_name: query.fatman_name.as_deref(),
        fatman_version: query.fatman_version.as_deref(),
    };
    Ok(audit::query(conn, &filter)?)
}

/// Writes an audit event about a fatman (after the action it records has succeeded).
pub fn record(
    conn: &mut DbConnection,
    event_type: AuditLogEventType,
    executor: &str,
    owner: Option<&str>,
    fatman: &Fatman,
) -> Result<(), AppError> {
    audit::insert(
        conn,
        &AuditLogEvent {
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
