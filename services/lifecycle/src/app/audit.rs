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

/// Who may read `query`: the whole log names every user and fatman, so not ESC or fatman family
/// tokens; a user's own events need a user (whose name is returned).
fn authorize(caller: &Caller, query: &Query) -> Result<Option<String>, AppError> {
    if query.mine {
        Ok(Some(require_user(caller)?.to_string()))
    } else {
        require_user_or_service(caller, AuthScope::CallAdminApi)?;
        Ok(None)
    }
}

fn filter<'a>(query: &'a Query, user: Option<&'a str>) -> EventFilter<'a> {
    EventFilter {
        related_to_user: user,
        fatman_name: query.fatman_name.as_deref(),
        fatman_version: query.fatman_version.as_deref(),
    }
}

/// Newest first (at most the original's 100).
pub fn events(
    conn: &mut DbConnection,
    caller: &Caller,
    query: &Query,
) -> Result<Vec<AuditLogEvent>, AppError> {
    let user = authorize(caller, query)?;
    Ok(audit::query(conn, &filter(query, user.as_deref()))?)
}

pub const DEFAULT_PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 500;

/// One page of [`events`]' answer, and how many events the query matches in all.
#[derive(Debug, Clone)]
pub struct Page {
    pub events: Vec<AuditLogEvent>,
    /// 1-based.
    pub page: u32,
    pub page_size: u32,
    pub total: u64,
}

/// [`events`] a page at a time, without the cap: `page` is 1-based (`0` means 1), `page_size`
/// `0` means [`DEFAULT_PAGE_SIZE`] and is at most [`MAX_PAGE_SIZE`].
pub fn events_page(
    conn: &mut DbConnection,
    caller: &Caller,
    query: &Query,
    page: u32,
    page_size: u32,
) -> Result<Page, AppError> {
    let user = authorize(caller, query)?;
    let page = page.max(1);
    let page_size = match page_size {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    };
    let filter = filter(query, user.as_deref());
    let offset = (i64::from(page) - 1) * i64::from(page_size);
    let events = audit::page(conn, &filter, offset, i64::from(page_size))?;
    let total = u64::try_from(audit::count(conn, &filter)?).unwrap_or_default();
    Ok(Page {
        events,
        page,
        page_size,
        total,
    })
}

/// Writes an audit event about a fatman (after the action it records has succeeded).
pub fn record(
    conn: &mut DbConnection,
    event_type: AuditLogEventType,
    executor: &str,
    owner: Option<&str>,
    fatman: &Fatman,
) -> Result<(), AppError> {
    record_with(conn, event_type, executor, owner, fatman, None)
}

/// [`record`] with the event's `properties` (a JSON object).
pub fn record_with(
    conn: &mut DbConnection,
    event_type: AuditLogEventType,
    executor: &str,
    owner: Option<&str>,
    fatman: &Fatman,
    properties: Option<serde_json::Value>,
) -> Result<(), AppError> {
    audit::insert(
        conn,
        &AuditLogEvent {
            id: racetrack_db::new_id(),
            version: 1,
            timestamp: racetrack_db::now(),
            event_type,
            properties: properties.map(|p| p.to_string()),
            username_executor: Some(executor.to_string()),
            username_subject: owner.map(String::from),
            fatman_name: Some(fatman.name.clone()),
            fatman_version: Some(fatman.version.clone()),
        },
    )?;
    tracing::info!(%event_type, executor, fatman = %fatman.name, version = %fatman.version, "Audit log event saved");
    Ok(())
}
