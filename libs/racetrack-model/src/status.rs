use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

/// What the registry believes about a fatman's presence in its infrastructure.
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FatmanStatus {
    /// Registered, not yet seen in the infrastructure.
    Created,
    Running,
    /// Present in the infrastructure but failing.
    Error,
    /// Found in the infrastructure without a registry entry.
    Orphaned,
    /// Registered but gone from the infrastructure; reconciliation may bring it back.
    Lost,
}

wire_enum!(FatmanStatus, "fatman status", {
    Created => "created",
    Running => "running",
    Error => "error",
    Orphaned => "orphaned",
    Lost => "lost",
});

#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    InProgress,
    Done,
    Failed,
}

wire_enum!(DeploymentStatus, "deployment status", {
    InProgress => "in_progress",
    Done => "done",
    Failed => "failed",
});

/// The `subject_type` a token speaks for.
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthSubjectType {
    User,
    Esc,
    FatmanFamily,
    /// Racetrack's own services; stored subjects with a `service_name` (see `InternalService`).
    Internal,
}

wire_enum!(AuthSubjectType, "auth subject type", {
    User => "user",
    Esc => "esc",
    FatmanFamily => "fatman_family",
    Internal => "internal",
});

#[cfg(test)]
mod tests {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::de::DeserializeOwned;
    use serde::Serialize;

    use super::*;

    fn assert_wire<T>(all: &[T], expected: &[&str])
    where
        T: Copy + PartialEq + std::fmt::Debug + Display + FromStr + Serialize + DeserializeOwned,
        <T as FromStr>::Err: std::fmt::Debug,
    {
        let rendered: Vec<String> = all.iter().map(|v| v.to_string()).collect();
        assert_eq!(rendered, expected);
        for value in all {
            let text = value.to_string();
            assert_eq!(text.parse::<T>().unwrap(), *value);
            assert_eq!(
                serde_json::to_value(value).unwrap(),
                serde_json::Value::String(text.clone())
            );
            assert_eq!(
                serde_json::from_value::<T>(serde_json::Value::String(text)).unwrap(),
                *value
            );
        }
    }

    #[test]
    fn wire_values() {
        assert_wire(
            FatmanStatus::ALL,
            &["created", "running", "error", "orphaned", "lost"],
        );
        assert_wire(DeploymentStatus::ALL, &["in_progress", "done", "failed"]);
        assert_wire(
            AuthSubjectType::ALL,
            &["user", "esc", "fatman_family", "internal"],
        );
    }

    #[test]
    fn unknown_values_are_rejected() {
        assert!("RUNNING".parse::<FatmanStatus>().is_err());
        assert!("in-progress".parse::<DeploymentStatus>().is_err());
        let err = "robot".parse::<AuthSubjectType>().unwrap_err().to_string();
        assert!(err.contains("user, esc, fatman_family, internal"), "{err}");
    }
}
