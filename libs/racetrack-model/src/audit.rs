use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLogEventType {
    FatmanDeployed,
    FatmanRedeployed,
    FatmanDeleted,
}

wire_enum!(AuditLogEventType, "audit log event type", {
    FatmanDeployed => "fatman_deployed",
    FatmanRedeployed => "fatman_redeployed",
    FatmanDeleted => "fatman_deleted",
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
    fn unknown_type_is_an_error() {
        let err = render_audit_event("fatman_moved", "a", "1.0.0", None, None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Unknown audit log event type: fatman_moved"
        );
    }

    #[test]
    fn wire_values() {
        let names: Vec<&str> = AuditLogEventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            ["fatman_deployed", "fatman_redeployed", "fatman_deleted"]
        );
        for t in AuditLogEventType::ALL {
            assert_eq!(serde_json::to_string(t).unwrap(), format!("\"{t}\""));
            assert_eq!(t.as_str().parse::<AuditLogEventType>(), Ok(*t));
        }
    }
}
