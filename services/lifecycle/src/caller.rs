//! Who is calling: authentication of the request's token and the authorization checks handlers
//! ask for. Rules themselves live in `racetrack_auth`.

use std::future::{ready, Ready};

use actix_web::{FromRequest, HttpRequest};
use racetrack_auth::permission::{self, Permission};
use racetrack_auth::token;
use racetrack_db::models::{PermissionView, SubjectOwner};
use racetrack_db::repo::auth as repo;
use racetrack_db::DbConnection;
use racetrack_model::{AuthScope, AuthSubjectType, InternalService};

use crate::error::ApiError;
use crate::state::AppState;

/// Header names in the order Lifecycle reads them (the last three are legacy fallbacks).
pub const AUTH_HEADERS: [&str; 4] = [
    "X-Racetrack-Auth",
    "X-Racetrack-User-Auth",
    "X-Racetrack-Fatman-Auth",
    "X-Racetrack-Esc-Auth",
];

/// The raw token of a request, if any (first non-empty auth header).
#[derive(Clone)]
pub struct AuthToken(pub Option<String>);

impl FromRequest for AuthToken {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let token = AUTH_HEADERS.iter().find_map(|name| {
            req.headers()
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        });
        ready(Ok(AuthToken(token)))
    }
}

#[derive(Debug, Clone)]
pub enum Caller {
    /// A Racetrack service (pub, dashboard, image-builder, lifecycle-supervisor): a stored subject
    /// whose scopes are its global permission rows (resource filters never apply to services).
    Internal {
        subject_id: String,
        service: String,
        scopes: Vec<AuthScope>,
    },
    Subject {
        subject_id: String,
        owner: SubjectOwner,
        /// The token's `subject` claim: username, ESC id or family name.
        name: String,
        permissions: Vec<Permission>,
    },
}

impl Caller {
    /// The token's subject: what the original records as `deployed_by`, audit executor, etc.
    pub fn username(&self) -> &str {
        match self {
            Caller::Internal { service, .. } => match service.parse::<InternalService>() {
                Ok(known) => known.executor(),
                Err(_) => service,
            },
            Caller::Subject { name, .. } => name,
        }
    }

    /// The caller's kind; `None` for a subject whose owner is gone.
    pub fn subject_type(&self) -> Option<AuthSubjectType> {
        match self {
            Caller::Internal { .. } => Some(AuthSubjectType::Internal),
            Caller::Subject { owner, .. } => owner.subject_type(),
        }
    }

    /// [`Caller::subject_type`] as messages show it.
    pub fn subject_type_name(&self) -> &'static str {
        self.subject_type()
            .map_or("unknown", AuthSubjectType::as_str)
    }

    pub fn display(&self) -> String {
        match self {
            Caller::Internal { service, .. } => format!("Internal: {service}"),
            Caller::Subject {
                owner, subject_id, ..
            } => owner.display(subject_id),
        }
    }
}

pub fn to_permission(view: PermissionView) -> Permission {
    Permission {
        scope: view.scope,
        family: view.family_name,
        fatman: view.fatman,
        endpoint: view.endpoint,
    }
}

/// Verifies the token and finds its live subject.
pub fn authenticate(
    conn: &mut DbConnection,
    state: &AppState,
    token: Option<&str>,
) -> Result<Caller, ApiError> {
    let raw = token.ok_or_else(|| {
        ApiError::Unauthenticated("auth token not found in a header X-Racetrack-Auth".into())
    })?;
    let verified = state
        .signer
        .verify(raw)
        .map_err(|e| ApiError::Unauthenticated(e.to_string()))?;
    // Every token, internal ones included, is valid only while its digest is stored: a token
    // merely signed with AUTH_KEY (or revoked) is refused.
    let claims = verified.claims;
    let digest = token::digest(&claims);
    let (stored, subject) = repo::find_token_by_hash(conn, &digest)?
        .filter(|(stored, _)| token::digests_match(&stored.token_hash, &digest))
        .ok_or_else(|| ApiError::Unauthenticated("wrong credentials: token is unknown".into()))?;
    let now = racetrack_db::now();
    if !subject.active {
        return Err(ApiError::Unauthenticated(
            "subject access has been revoked".into(),
        ));
    }
    if subject.expiry_time.is_some_and(|e| now > e) || stored.expiry_time.is_some_and(|e| now > e) {
        return Err(ApiError::Unauthenticated(
            "subject access has expired".into(),
        ));
    }
    let owner = repo::owner_of(conn, &subject)?;
    // The digest covers subject and type, so a mismatch means a corrupted row: refuse.
    if owner.token_subject() != Some(claims.subject.as_str())
        || owner.subject_type().map(AuthSubjectType::as_str) != Some(claims.subject_type.as_str())
    {
        return Err(ApiError::Unauthenticated(
            "wrong credentials: token is unknown".into(),
        ));
    }
    if let SubjectOwner::User {
        is_active: false, ..
    } = owner
    {
        // Fixed behaviour: the original let inactive users' tokens through.
        return Err(ApiError::Unauthenticated(
            "user account is not active".into(),
        ));
    }
    // Last use is informational; avoid a write on every request.
    if stored
        .last_use_time
        .is_none_or(|t| (now - t).num_seconds() >= 60)
    {
        let _ = repo::touch_token(conn, &stored.id, now);
    }
    let views = repo::permissions_of_subject(conn, &subject.id)?;
    if let SubjectOwner::Service { name } = owner {
        return Ok(Caller::Internal {
            subject_id: subject.id,
            service: name,
            scopes: views
                .into_iter()
                .filter(|v| v.family_name.is_none() && v.fatman.is_none())
                .map(|v| v.scope)
                .collect(),
        });
    }
    let permissions = views.into_iter().map(to_permission).collect();
    Ok(Caller::Subject {
        subject_id: subject.id,
        owner,
        name: claims.subject,
        permissions,
    })
}

/// Any valid token (limited internal tokens excepted, as the original).
pub fn require_authn(caller: &Caller) -> Result<(), ApiError> {
    match caller {
        Caller::Internal { scopes, .. } if !permission::internal_allows(scopes, None) => {
            Err(ApiError::Forbidden(scope_denial(caller, "(none)")))
        }
        _ => Ok(()),
    }
}

pub fn require_scope(caller: &Caller, scope: AuthScope) -> Result<(), ApiError> {
    let allowed = match caller {
        Caller::Internal { scopes, .. } => permission::internal_allows(scopes, Some(scope)),
        Caller::Subject { permissions, .. } => permission::has_scope(permissions, scope),
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(scope_denial(caller, scope.as_str())))
    }
}

fn scope_denial(caller: &Caller, scope: &str) -> String {
    format!(
        "permission scope \"{scope}\" is required to do this operation: auth subject \"{}\" does not have permission with scope \"{scope}\"",
        caller.display()
    )
}

/// Resource check on fatman `name` at an already resolved version ("" when it does not exist).
pub fn require_resource(
    caller: &Caller,
    scope: AuthScope,
    name: &str,
    resolved_version: &str,
) -> Result<(), ApiError> {
    let allowed = match caller {
        Caller::Internal { scopes, .. } => permission::internal_allows(scopes, Some(scope)),
        Caller::Subject { permissions, .. } => {
            permission::has_resource(permissions, scope, name, resolved_version)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "no permission to do this operation: auth subject \"{}\" does not have permission to access resource \"{name} v{resolved_version}\" with scope \"{scope}\"",
            caller.display()
        )))
    }
}

/// Users, and services holding `service_scope`: for what ESC and fatman family tokens (credentials
/// handed to programs) must not do, such as reading the whole audit log.
pub fn require_user_or_service(caller: &Caller, service_scope: AuthScope) -> Result<(), ApiError> {
    match caller {
        Caller::Internal { .. } => require_scope(caller, service_scope),
        _ => require_user(caller).map(|_| ()),
    }
}

pub fn require_user(caller: &Caller) -> Result<&str, ApiError> {
    match caller {
        Caller::Subject {
            owner: SubjectOwner::User { username, .. },
            ..
        } => Ok(username),
        other => Err(ApiError::Forbidden(format!(
            "wrong subject type to do this operation: auth subject type \"{}\" is not one of required types: [user]",
            other.subject_type_name()
        ))),
    }
}
