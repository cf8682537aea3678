use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

/// What a permission allows. Stored in a 32-character column, so names stay short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScope {
    ReadFatman,
    DeployFatman,
    DeployNewFamily,
    DeleteFatman,
    CallFatman,
    CallAdminApi,
    FullAccess,
}

wire_enum!(AuthScope, "scope", {
    ReadFatman => "read_fatman",
    DeployFatman => "deploy_fatman",
    DeployNewFamily => "deploy_new_family",
    DeleteFatman => "delete_fatman",
    CallFatman => "call_fatman",
    CallAdminApi => "call_admin_api",
    FullAccess => "full_access",
});

impl AuthScope {
    /// Whether holding `self` is enough for an operation that requires `required`.
    pub fn grants(self, required: AuthScope) -> bool {
        self == AuthScope::FullAccess || self == required
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_through_str_and_serde() {
        for scope in AuthScope::ALL {
            assert_eq!(scope.as_str().parse::<AuthScope>(), Ok(*scope));
            assert_eq!(
                serde_json::to_string(scope).unwrap(),
                format!("\"{scope}\"")
            );
            let back: AuthScope = serde_json::from_str(&format!("\"{}\"", scope.as_str())).unwrap();
            assert_eq!(back, *scope);
        }
        assert_eq!(AuthScope::ALL.len(), 7);
    }

    #[test]
    fn unknown_scope_lists_the_valid_ones() {
        let err = "admin".parse::<AuthScope>().unwrap_err().to_string();
        assert!(err.contains("\"admin\""), "{err}");
        assert!(
            err.contains("read_fatman, deploy_fatman, deploy_new_family"),
            "{err}"
        );
        assert!("Read_Fatman".parse::<AuthScope>().is_err());
        assert!(serde_json::from_str::<AuthScope>("\"nope\"").is_err());
    }

    #[test]
    fn full_access_grants_everything_else_only_itself() {
        for scope in AuthScope::ALL {
            assert!(AuthScope::FullAccess.grants(*scope));
            assert!(scope.grants(*scope));
        }
        assert!(!AuthScope::ReadFatman.grants(AuthScope::CallFatman));
        assert!(!AuthScope::CallAdminApi.grants(AuthScope::FullAccess));
    }
}
