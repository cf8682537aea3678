//! "May this token do `scope` on this fatman (endpoint)?": the one decision behind both the REST
//! `/auth/allowed/*` endpoints and PUB's gRPC `AuthorizeCall`.

use std::str::FromStr;

use racetrack_auth::permission;
use racetrack_db::DbConnection;
use racetrack_model::AuthScope;

use crate::caller::{self, Caller};
use crate::error::ApiError;
use crate::registry::try_resolve_fatman;
use crate::state::AppState;

/// The authenticated caller when allowed; `Unauthenticated` for a bad token, `Forbidden` for a
/// valid one without permission. The version alias is resolved before permissions are checked.
pub fn check_allowed(
    conn: &mut DbConnection,
    state: &AppState,
    token: Option<&str>,
    name: &str,
    version: &str,
    scope: &str,
    endpoint: Option<&str>,
) -> Result<Caller, ApiError> {
    let caller = caller::authenticate(conn, state, token)?;
    let scope =
        AuthScope::from_str(scope).map_err(|e| ApiError::validation("scope", e.to_string()))?;
    decide(conn, caller, name, version, scope, endpoint)
}

/// [`check_allowed`] for a scope known at compile time (PUB's `call_fatman`).
pub fn check_allowed_scope(
    conn: &mut DbConnection,
    state: &AppState,
    token: Option<&str>,
    name: &str,
    version: &str,
    scope: AuthScope,
    endpoint: Option<&str>,
) -> Result<Caller, ApiError> {
    let caller = caller::authenticate(conn, state, token)?;
    decide(conn, caller, name, version, scope, endpoint)
}

fn decide(
    conn: &mut DbConnection,
    caller: Caller,
    name: &str,
    version: &str,
    scope: AuthScope,
    endpoint: Option<&str>,
) -> Result<Caller, ApiError> {
    let found = try_resolve_fatman(conn, name, version)?;
    let resolved = found.as_ref().map_or("", |f| f.version.as_str());
    let allowed = match &caller {
        Caller::Internal { scopes, .. } => permission::internal_allows(scopes, Some(scope)),
        Caller::Subject { permissions, .. } => match endpoint {
            Some(ep) => permission::has_endpoint(permissions, scope, name, resolved, ep),
            None => permission::has_resource(permissions, scope, name, resolved),
        },
    };
    if allowed {
        return Ok(caller);
    }
    Err(ApiError::Forbidden(match endpoint {
        Some(ep) => format!(
            "no permission to do this operation: auth subject \"{}\" does not have permission to access endpoint {ep} at resource \"{name} v{resolved}\" with scope \"{scope}\"",
            caller.display()
        ),
        None => format!(
            "no permission to do this operation: auth subject \"{}\" does not have permission to access resource \"{name} v{resolved}\" with scope \"{scope}\"",
            caller.display()
        ),
    }))
}
