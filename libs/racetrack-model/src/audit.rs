use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLogEventType {
    FatmanDeployed,
    FatmanRedeployed,
    FatmanDeleted,
    /// Supervisor (not in the original): a registered fatman is gone from its infrastructure.
    FatmanLost,
    /// Supervisor: a fatman found in the infrastructure without a registry entry was registered
    /// as `orphaned`.
    FatmanOrphaned,
    /// Supervisor: an orphan's container was removed after the grace period.
    FatmanOrphanRemoved,
    /// Supervisor: re-provisioning a lost fatman failed (a success is `fatman_deployed`).
    FatmanReconcileFailed,
    /// Dashboard (not in the original): an admin replaced the stored manifest.
    FatmanManifestUpdated,
    /// Not in the original (which wrote `fatman_deployed` and `fatman_deleted`): the fatman now
    /// runs on another infrastructure target; `properties` say which targets and what came along.
    FatmanMoved,
}

wire_enum!(AuditLogEventType, "audit log event type", {
    FatmanDeployed => "fatman_deployed",
    FatmanRedeployed => "fatman_redeployed",
    FatmanDeleted => "fatman_deleted",
    FatmanLost => "fatman_lost",
    FatmanOrphaned => "fatman_orphaned",
    FatmanOrphanRemoved => "fatman_orphan_removed",
    FatmanReconcileFailed => "fatman_reconcile_failed",
    FatmanManifestUpdated => "fatman_manifest_updated",
    FatmanMoved => "fatman_moved",
});

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown audit log event type: {0}")]
pub struct UnknownEventType(pub String);

/// The sentence the dashboard shows for a stored event whose type is still a raw column value.
pub fn render_audit_event(
    event_type: &str,
    fatman_name: &str,
    fatman_version: &str,
    executor: Option<&str>,
    subject: Option<&str>,
) -> Result<String, UnknownEventType> {
    let event_type: AuditLogEventType = event_type
        .parse()
        .map_err(|_| UnknownEventType(event_type.to_string()))?;
    Ok(event_type.describe(fatman_name, fatman_version, executor, subject))
}

impl AuditLogEventType {
    /// Word for word what the original produced, quirks included: an event without an owner keeps
    /// the space around the missing owner part (two spaces in a row), an empty owner counts as no
    /// owner, and a missing executor prints as Python's `None`.
    pub fn describe(
        self,
        fatman_name: &str,
        fatman_version: &str,
        executor: Option<&str>,
        subject: Option<&str>,
    ) -> String {
        let executor = executor.unwrap_or("None");
        let owner = match subject {
            Some(s) if !s.is_empty() => format!("(owned by {s})"),
            _ => String::new(),
        };
        match self {
            AuditLogEventType::FatmanDeployed => {
                format!("Fatman {fatman_name} {fatman_version} deployed by {executor}")
            }
            AuditLogEventType::FatmanRedeployed => {
                format!("Fatman {fatman_name} {fatman_version} {owner} redeployed by {executor}")
            }
            AuditLogEventType::FatmanDeleted => {
                format!("Fatman {fatman_name} {fatman_version} {owner} deleted by {executor}")
            }
            AuditLogEventType::FatmanLost => format!(
                "Fatman {fatman_name} {fatman_version} was not found in its infrastructure and was marked lost by {executor}"
            ),
            AuditLogEventType::FatmanOrphaned => format!(
                "Fatman {fatman_name} {fatman_version} was found running without a registry entry and was registered as orphaned by {executor}"
            ),
            AuditLogEventType::FatmanOrphanRemoved => format!(
                "Orphaned fatman {fatman_name} {fatman_version} was removed by {executor}"
            ),
            AuditLogEventType::FatmanReconcileFailed => format!(
                "Reprovisioning lost fatman {fatman_name} {fatman_version} failed ({executor})"
            ),
            AuditLogEventType::FatmanManifestUpdated => format!(
                "Manifest of fatman {fatman_name} {fatman_version} {owner} updated by {executor}"
            ),
            AuditLogEventType::FatmanMoved => format!(
                "Fatman {fatman_name} {fatman_version} {owner} moved to another infrastructure target by {executor}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployed_ignores_the_owner() {
        assert_eq!(
            render_audit_event(
                "fatman_deployed",
                "adder",
                "1.0.0",
                Some("bob"),
                Some("alice")
            )
            .unwrap(),
            "Fatman adder 1.0.0 deployed by bob"
        );
    }

    #[test]
    fn redeployed_and_deleted_name_the_owner() {
        assert_eq!(
            render_audit_event(
                "fatman_redeployed",
                "adder",
                "1.0.0",
                Some("bob"),
                Some("alice")
            )
            .unwrap(),
            "Fatman adder 1.0.0 (owned by alice) redeployed by bob"
        );
        assert_eq!(
            render_audit_event(
                "fatman_deleted",
                "adder",
                "1.0.0",
                Some("bob"),
                Some("alice")
            )
            .unwrap(),
            "Fatman adder 1.0.0 (owned by alice) deleted by bob"
        );
    }

    #[test]
    fn missing_owner_leaves_a_double_space() {
        assert_eq!(
            render_audit_event("fatman_deleted", "adder", "1.0.0", Some("bob"), None).unwrap(),
            "Fatman adder 1.0.0  deleted by bob"
        );
        assert_eq!(
            render_audit_event("fatman_redeployed", "adder", "1.0.0", Some("bob"), Some(""))
                .unwrap(),
            "Fatman adder 1.0.0  redeployed by bob"
        );
    }

    #[test]
    fn missing_executor_renders_as_none() {
        assert_eq!(
            render_audit_event("fatman_deployed", "adder", "1.0.0", None, None).unwrap(),
            "Fatman adder 1.0.0 deployed by None"
        );
    }

    #[test]
    fn supervisor_events_read_as_sentences() {
        assert_eq!(
            render_audit_event("fatman_lost", "adder", "1.0.0", Some("racetrack"), None).unwrap(),
            "Fatman adder 1.0.0 was not found in its infrastructure and was marked lost by racetrack"
        );
        assert_eq!(
            render_audit_event(
                "fatman_orphan_removed",
                "adder",
                "1.0.0",
                Some("racetrack"),
                None
            )
            .unwrap(),
            "Orphaned fatman adder 1.0.0 was removed by racetrack"
        );
    }

    #[test]
    fn unknown_type_is_an_error() {
        let err = render_audit_event("fatman_teleported", "a", "1.0.0", None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown audit log event type: fatman_teleported"
        );
    }

    #[test]
    fn wire_values() {
        let names: Vec<&str> = AuditLogEventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "fatman_deployed",
                "fatman_redeployed",
                "fatman_deleted",
                "fatman_lost",
                "fatman_orphaned",
                "fatman_orphan_removed",
                "fatman_reconcile_failed",
                "fatman_manifest_updated",
                "fatman_moved"
            ]
        );
        for t in AuditLogEventType::ALL {
            assert_eq!(serde_json::to_string(t).unwrap(), format!("\"{t}\""));
            assert_eq!(t.as_str().parse::<AuditLogEventType>(), Ok(*t));
        }
    }
}
