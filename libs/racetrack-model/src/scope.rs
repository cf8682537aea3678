use serde::{Deserialize, Serialize};

use crate::wire::wire_enum;

/// What a permission allows. Stored in a 32-character column, so names stay short.
#[cfg_attr(
    feature = "diesel",
    derive(diesel::expression::AsExpression, diesel::deserialize::FromSqlRow),
    diesel(sql_type = diesel::sql_types::Text)
)]
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
    /// Lifecycle's internal gRPC API (`ResolveFatman`, `AuthorizeCall`): what PUB needs.
    AuthorizeCalls,
    /// `POST /fatman/{name}/{version}/reprovision` only: what the supervisor's reconcile needs.
    ReprovisionFatman,
    /// `PUT /deploy/{id}/phase`: a builder reporting progress.
    WriteDeploymentPhase,
    /// Lifecycle's `Supervision` gRPC API (leadership lease, fatmen to follow, observations):
    /// what the supervisor needs besides re-provisioning.
    SuperviseFatmen,
}

wire_enum!(AuthScope, "scope", {
    ReadFatman => "read_fatman",
    DeployFatman => "deploy_fatman",
    DeployNewFamily => "deploy_new_family",
    DeleteFatman => "delete_fatman",
    CallFatman => "call_fatman",
    CallAdminApi => "call_admin_api",
    FullAccess => "full_access",
    AuthorizeCalls => "authorize_calls",
    ReprovisionFatman => "reprovision_fatman",
    WriteDeploymentPhase => "write_deployment_phase",
    SuperviseFatmen => "supervise_fatmen",
});

impl AuthScope {
    /// Whether holding `self` is enough for an operation that requires `required`.
    pub fn grants(self, required: AuthScope) -> bool {
        self == AuthScope::FullAccess || self == required
    }
}

/// Racetrack's own services that hold internal tokens (`lifecycle generate-auth SERVICE`). Each gets
/// only the scopes its calls to Lifecycle need (docs: README, "Internal tokens").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InternalService {
    Pub,
    Dashboard,
    ImageBuilder,
    LifecycleSupervisor,
}

wire_enum!(InternalService, "service", {
    Pub => "pub",
    Dashboard => "dashboard",
    ImageBuilder => "image-builder",
    LifecycleSupervisor => "lifecycle-supervisor",
});

impl InternalService {
    /// The scopes a new token of this service gets.
    pub fn scopes(self) -> &'static [AuthScope] {
        match self {
            // Resolve fatmen and decide calls; nothing on the REST API, and no call_fatman: PUB's
            // token is not a key to every fatman.
            InternalService::Pub => &[AuthScope::AuthorizeCalls],
            // User profiles (registration, login: call_admin_api) and read-only pages.
            InternalService::Dashboard => &[AuthScope::CallAdminApi, AuthScope::ReadFatman],
            // Deployment progress of the builds it runs.
            InternalService::ImageBuilder => &[AuthScope::WriteDeploymentPhase],
            // Its Supervision API (lease, fatmen, observations) and re-provisioning of lost
            // fatmen from their last deployed image, nothing else.
            InternalService::LifecycleSupervisor => {
                &[AuthScope::ReprovisionFatman, AuthScope::SuperviseFatmen]
            }
        }
    }

    /// Who the service's actions are recorded as (`deployed_by`, audit executor): the supervisor
    /// re-provisions as `racetrack`, as the original's reconcile did.
    pub fn executor(self) -> &'static str {
        match self {
            InternalService::LifecycleSupervisor => "racetrack",
            other => other.as_str(),
        }
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
        assert_eq!(AuthScope::ALL.len(), 11);
        for scope in AuthScope::ALL {
            assert!(
                scope.as_str().len() <= 32,
                "stored in a 32-character column"
            );
        }
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

    #[test]
    fn internal_services_are_narrow() {
        for service in InternalService::ALL {
            assert_eq!(service.as_str().parse::<InternalService>(), Ok(*service));
            assert!(!service.scopes().contains(&AuthScope::FullAccess));
            assert!(!service.scopes().contains(&AuthScope::CallFatman));
        }
        assert_eq!(InternalService::Pub.scopes(), [AuthScope::AuthorizeCalls]);
        assert_eq!(InternalService::LifecycleSupervisor.executor(), "racetrack");
        let err = "nginx".parse::<InternalService>().unwrap_err().to_string();
        assert!(
            err.contains("pub, dashboard, image-builder, lifecycle-supervisor"),
            "{err}"
        );
    }
}
