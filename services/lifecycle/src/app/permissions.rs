//! Who is calling and what they may do: authentication of a token, the checks every operation
//! asks for, "may this token do SCOPE on this fatman (endpoint)?" (REST `/auth/allowed/*` and
//! gRPC `AuthorizeCall`), and the administration of permissions, subjects and tokens. The rules
//! themselves live in `racetrack_auth`.

use std::str::FromStr;

use chrono::NaiveDateTime;
use racetrack_auth::permission::{self, Permission};
use racetrack_auth::{token, TokenSigner};
use racetrack_db::models::{
    AuthSubject, AuthToken, NewAuthPermission, PermissionView, SubjectOwner,
};
use racetrack_db::repo::auth as repo;
use racetrack_db::DbConnection;
use racetrack_model::{AuthScope, AuthSubjectType, InternalService};

use super::{escs, families, fatmen, subjects, AppError, Denial};
use crate::events;
use crate::state::AppState;

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

    pub fn subject_id(&self) -> &str {
        match self {
            Caller::Internal { subject_id, .. } | Caller::Subject { subject_id, .. } => subject_id,
        }
    }

    /// The name PUB puts in its identity headers: the service, or the token's subject claim.
    pub fn subject_name(&self) -> &str {
        match self {
            Caller::Internal { service, .. } => service,
            Caller::Subject { name, .. } => name,
        }
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

fn unauthenticated(reason: &str, detail: Option<&str>) -> AppError {
    AppError::Unauthenticated(Denial {
        reason: reason.to_string(),
        detail: detail.map(String::from),
    })
}

/// Verifies the token and finds its live subject.
pub fn authenticate(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    token: Option<&str>,
) -> Result<Caller, AppError> {
    let raw = token.ok_or_else(|| {
        unauthenticated("auth token not found in a header X-Racetrack-Auth", None)
    })?;
    let verified = signer
        .verify(raw)
        .map_err(|e| AppError::Unauthenticated(Denial::new(e.to_string())))?;
    // Every token, internal ones included, is valid only while its digest is stored: a token
    // merely signed with AUTH_KEY (or revoked) is refused.
    let claims = verified.claims;
    let digest = token::digest(&claims);
    let unknown = || unauthenticated("wrong credentials", Some("token is unknown"));
    let (stored, subject) = repo::find_token_by_hash(conn, &digest)?
        .filter(|(stored, _)| token::digests_match(&stored.token_hash, &digest))
        .ok_or_else(unknown)?;
    let now = racetrack_db::now();
    if !subject.active {
        return Err(unauthenticated("subject access has been revoked", None));
    }
    if subject.expiry_time.is_some_and(|e| now > e) || stored.expiry_time.is_some_and(|e| now > e) {
        return Err(unauthenticated("subject access has expired", None));
    }
    let owner = repo::owner_of(conn, &subject)?;
    // The digest covers subject and type, so a mismatch means a corrupted row: refuse.
    if owner.token_subject() != Some(claims.subject.as_str())
        || owner.subject_type().map(AuthSubjectType::as_str) != Some(claims.subject_type.as_str())
    {
        return Err(unknown());
    }
    if let SubjectOwner::User {
        is_active: false, ..
    } = owner
    {
        // Fixed behaviour: the original let inactive users' tokens through.
        return Err(unauthenticated("user account is not active", None));
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
pub fn require_authn(caller: &Caller) -> Result<(), AppError> {
    match caller {
        Caller::Internal { scopes, .. } if !permission::internal_allows(scopes, None) => {
            Err(scope_denied(caller, "(none)"))
        }
        _ => Ok(()),
    }
}

pub fn require_scope(caller: &Caller, scope: AuthScope) -> Result<(), AppError> {
    let allowed = match caller {
        Caller::Internal { scopes, .. } => permission::internal_allows(scopes, Some(scope)),
        Caller::Subject { permissions, .. } => permission::has_scope(permissions, scope),
    };
    if allowed {
        Ok(())
    } else {
        Err(scope_denied(caller, scope.as_str()))
    }
}

fn scope_denied(caller: &Caller, scope: &str) -> AppError {
    AppError::Forbidden(Denial::with_detail(
        format!("permission scope \"{scope}\" is required to do this operation"),
        format!(
            "auth subject \"{}\" does not have permission with scope \"{scope}\"",
            caller.display()
        ),
    ))
}

fn resource_denied(caller: &Caller, detail: String) -> AppError {
    AppError::Forbidden(Denial::with_detail(
        "no permission to do this operation",
        format!(
            "auth subject \"{}\" does not have {detail}",
            caller.display()
        ),
    ))
}

/// Resource check on fatman `name` at an already resolved version ("" when it does not exist).
pub fn require_resource(
    caller: &Caller,
    scope: AuthScope,
    name: &str,
    resolved_version: &str,
) -> Result<(), AppError> {
    let allowed = match caller {
        Caller::Internal { scopes, .. } => permission::internal_allows(scopes, Some(scope)),
        Caller::Subject { permissions, .. } => {
            permission::has_resource(permissions, scope, name, resolved_version)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(resource_denied(
            caller,
            format!("permission to access resource \"{name} v{resolved_version}\" with scope \"{scope}\""),
        ))
    }
}

/// Users, and services holding `service_scope`: for what ESC and fatman family tokens (credentials
/// handed to programs) must not do, such as reading the whole audit log.
pub fn require_user_or_service(caller: &Caller, service_scope: AuthScope) -> Result<(), AppError> {
    match caller {
        Caller::Internal { .. } => require_scope(caller, service_scope),
        _ => require_user(caller).map(|_| ()),
    }
}

pub fn require_user(caller: &Caller) -> Result<&str, AppError> {
    match caller {
        Caller::Subject {
            owner: SubjectOwner::User { username, .. },
            ..
        } => Ok(username),
        other => Err(AppError::Forbidden(Denial::with_detail(
            "wrong subject type to do this operation",
            format!(
                "auth subject type \"{}\" is not one of required types: [user]",
                other.subject_type_name()
            ),
        ))),
    }
}

/// Only Racetrack's services, holding `scope` (Lifecycle's internal gRPC API).
pub fn require_service(caller: &Caller, scope: AuthScope) -> Result<(), AppError> {
    if !matches!(caller, Caller::Internal { .. }) {
        return Err(AppError::Forbidden(Denial::new(
            "only internal service tokens may use this API",
        )));
    }
    require_scope(caller, scope)
}

/// "May this token do `scope` on this fatman (endpoint)?" with the scope as a caller wrote it
/// (a URL segment): the authenticated caller when allowed; `Unauthenticated` for a bad token,
/// `Forbidden` for a valid one without permission. The version alias is resolved before
/// permissions are checked.
pub fn check_allowed(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    token: Option<&str>,
    name: &str,
    version: &str,
    scope: &str,
    endpoint: Option<&str>,
) -> Result<Caller, AppError> {
    let caller = authenticate(conn, signer, token)?;
    let scope = parse_scope(scope)?;
    decide(conn, caller, name, version, scope, endpoint)
}

/// [`check_allowed`] for a scope known in advance (PUB's `call_fatman`).
pub fn check_allowed_scope(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    token: Option<&str>,
    name: &str,
    version: &str,
    scope: AuthScope,
    endpoint: Option<&str>,
) -> Result<Caller, AppError> {
    let caller = authenticate(conn, signer, token)?;
    decide(conn, caller, name, version, scope, endpoint)
}

fn decide(
    conn: &mut DbConnection,
    caller: Caller,
    name: &str,
    version: &str,
    scope: AuthScope,
    endpoint: Option<&str>,
) -> Result<Caller, AppError> {
    let found = fatmen::try_resolve(conn, name, version)?;
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
    Err(resource_denied(
        &caller,
        match endpoint {
            Some(ep) => format!(
                "permission to access endpoint {ep} at resource \"{name} v{resolved}\" with scope \"{scope}\""
            ),
            None => format!(
                "permission to access resource \"{name} v{resolved}\" with scope \"{scope}\""
            ),
        },
    ))
}

pub fn parse_scope(scope: &str) -> Result<AuthScope, AppError> {
    AuthScope::from_str(scope).map_err(|e| AppError::validation("scope", e.to_string()))
}

fn grant(
    conn: &mut DbConnection,
    subject_id: &str,
    scope: AuthScope,
    family_id: Option<&str>,
    fatman_id: Option<&str>,
    endpoint: Option<&str>,
) -> Result<i64, AppError> {
    let (id, created) = repo::grant(
        conn,
        &NewAuthPermission {
            auth_subject_id: subject_id,
            scope,
            fatman_family_id: family_id,
            fatman_id,
            endpoint,
        },
    )?;
    if created {
        tracing::info!(
            permission = id,
            subject = subject_id,
            %scope,
            "permission granted"
        );
    }
    Ok(id)
}

/// Lets an ESC do `scope` on every version of a family.
pub fn allow_esc(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    esc_id: &str,
    family: &str,
    scope: &str,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let scope = parse_scope(scope)?;
    let esc = escs::find(conn, esc_id)?;
    let family = families::find(conn, family)?;
    let subject = subjects::ensure_esc_subject(conn, &state.signer, &esc)?;
    grant(conn, &subject.id, scope, Some(&family.id), None, None)?;
    events::subject_changed(state, &subject.id);
    Ok(())
}

/// Lets the fatmen of family `source` do `scope` on every version of family `target`.
pub fn allow_family(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    source: &str,
    target: &str,
    scope: &str,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let scope = parse_scope(scope)?;
    let source = families::find(conn, source)?;
    let target = families::find(conn, target)?;
    let subject = subjects::ensure_family_subject(conn, &state.signer, &source)?;
    grant(conn, &subject.id, scope, Some(&target.id), None, None)?;
    events::subject_changed(state, &subject.id);
    Ok(())
}

/// Re-signs every token of one subject type (after an `AUTH_KEY` change). Internal tokens are
/// rolled with `lifecycle generate-auth`, not here.
pub fn regenerate_all(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    subject_type: AuthSubjectType,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let list = repo::subjects_of_type(conn, subject_type)?;
    for subject in &list {
        let owner = repo::owner_of(conn, subject)?;
        subjects::regenerate(conn, &state.signer, subject, &owner)?;
    }
    events::everything_changed(state);
    tracing::info!(%subject_type, count = list.len(), by = %caller.username(), "tokens regenerated");
    Ok(())
}

/// A permission with its subject as the admin panel shows it.
#[derive(Debug, Clone)]
pub struct PermissionEntry {
    pub view: PermissionView,
    pub subject: String,
}

fn entry(conn: &mut DbConnection, view: PermissionView) -> Result<PermissionEntry, AppError> {
    let subject = match repo::find_subject(conn, &view.auth_subject_id)? {
        Some(s) => repo::owner_of(conn, &s)?.display(&s.id),
        None => view.auth_subject_id.clone(),
    };
    Ok(PermissionEntry { view, subject })
}

pub fn list_permissions(
    conn: &mut DbConnection,
    caller: &Caller,
    subject_id: Option<&str>,
) -> Result<Vec<PermissionEntry>, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let views = match subject_id {
        Some(id) => repo::permissions_of_subject(conn, id)?,
        None => repo::list_permissions(conn)?,
    };
    views.into_iter().map(|v| entry(conn, v)).collect()
}

/// A permission to grant: names, resolved here.
#[derive(Debug, Clone, Default)]
pub struct NewPermission {
    pub auth_subject_id: String,
    pub scope: String,
    pub fatman_family: Option<String>,
    pub fatman_name: Option<String>,
    pub fatman_version: Option<String>,
    pub endpoint: Option<String>,
}

pub fn create_permission(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    new: &NewPermission,
) -> Result<PermissionEntry, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let scope = parse_scope(&new.scope)?;
    let subject = find_subject(conn, &new.auth_subject_id)?;
    let family = match &new.fatman_family {
        Some(name) => Some(families::find(conn, name)?),
        None => None,
    };
    let fatman = match (&new.fatman_name, &new.fatman_version) {
        (Some(n), Some(v)) => Some(fatmen::exact(conn, n, v)?),
        (None, None) => None,
        _ => {
            return Err(AppError::validation(
                "body.fatman_version",
                "fatman_name and fatman_version go together",
            ))
        }
    };
    let endpoint = new.endpoint.as_deref().map(permission::normalize_endpoint);
    let id = grant(
        conn,
        &subject.id,
        scope,
        family.as_ref().map(|f| f.id.as_str()),
        fatman.as_ref().map(|f| f.id.as_str()),
        endpoint.as_deref(),
    )?;
    events::subject_changed(state, &subject.id);
    tracing::info!(permission = id, by = %caller.username(), "permission created");
    let view = repo::find_permission(conn, id)?
        .ok_or_else(|| AppError::internal("permission vanished"))?;
    entry(conn, view)
}

pub fn delete_permission(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    id: i64,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let not_found = || AppError::NotFound(format!("permission {id} was not found"));
    let view = repo::find_permission(conn, id)?.ok_or_else(not_found)?;
    if !repo::revoke_permission(conn, id)? {
        return Err(not_found());
    }
    events::subject_changed(state, &view.auth_subject_id);
    tracing::info!(permission = id, by = %caller.username(), "permission revoked");
    Ok(())
}

/// Unix seconds from a request body field.
fn from_unix(field: &str, secs: Option<i64>) -> Result<Option<NaiveDateTime>, AppError> {
    secs.map(|s| {
        chrono::DateTime::from_timestamp(s, 0)
            .map(|d| d.naive_utc())
            .ok_or_else(|| AppError::validation(format!("body.{field}"), "not a valid unix time"))
    })
    .transpose()
}

fn find_subject(conn: &mut DbConnection, id: &str) -> Result<AuthSubject, AppError> {
    repo::find_subject(conn, id)?
        .ok_or_else(|| AppError::NotFound(format!("auth subject {id} was not found")))
}

pub fn list_subjects(
    conn: &mut DbConnection,
    caller: &Caller,
) -> Result<Vec<(AuthSubject, SubjectOwner)>, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    Ok(repo::list_subjects(conn)?)
}

pub fn list_tokens(
    conn: &mut DbConnection,
    caller: &Caller,
    subject_id: &str,
) -> Result<Vec<AuthToken>, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let subject = find_subject(conn, subject_id)?;
    Ok(repo::tokens_of_subject(conn, &subject.id)?)
}

/// A second live token for the subject, so a consumer can switch before the old one is revoked.
/// Returns the row and the token (shown once).
pub fn add_token(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    subject_id: &str,
    label: &str,
    expiry_time: Option<i64>,
) -> Result<(AuthToken, String), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    if label.chars().count() > 256 {
        return Err(AppError::validation("body.label", "at most 256 characters"));
    }
    let expiry_time = from_unix("expiry_time", expiry_time)?;
    let subject = find_subject(conn, subject_id)?;
    let owner = repo::owner_of(conn, &subject)?;
    let (row, token) =
        subjects::issue_token(conn, &state.signer, &subject, &owner, label, expiry_time)?;
    tracing::info!(subject = %subject.id, token_id = %row.id, by = %caller.username(), "token added");
    Ok((row, token))
}

pub fn regenerate_subject(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    subject_id: &str,
) -> Result<String, AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let subject = find_subject(conn, subject_id)?;
    let owner = repo::owner_of(conn, &subject)?;
    let (_, token) = subjects::regenerate(conn, &state.signer, &subject, &owner)?;
    events::subject_changed(state, &subject.id);
    tracing::info!(subject = %subject.id, by = %caller.username(), "subject token regenerated");
    Ok(token)
}

pub fn set_access(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    subject_id: &str,
    active: bool,
    expiry_time: Option<i64>,
) -> Result<(AuthSubject, SubjectOwner), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let expiry_time = from_unix("expiry_time", expiry_time)?;
    let subject = find_subject(conn, subject_id)?;
    repo::set_subject_access(conn, &subject.id, active, expiry_time)?;
    events::subject_changed(state, &subject.id);
    let subject = find_subject(conn, subject_id)?;
    let owner = repo::owner_of(conn, &subject)?;
    tracing::info!(subject = %subject.id, active, by = %caller.username(), "subject access changed");
    Ok((subject, owner))
}

pub fn revoke_token(
    conn: &mut DbConnection,
    state: &AppState,
    caller: &Caller,
    token_id: &str,
) -> Result<(), AppError> {
    require_scope(caller, AuthScope::CallAdminApi)?;
    let not_found = || AppError::NotFound(format!("token {token_id} was not found"));
    let row = repo::find_token(conn, token_id)?.ok_or_else(not_found)?;
    if !repo::delete_token(conn, token_id)? {
        return Err(not_found());
    }
    events::subject_changed(state, &row.auth_subject_id);
    tracing::info!(token_id = %token_id, by = %caller.username(), "token revoked");
    Ok(())
}

/// What Lifecycle answers PUB about one call.
#[derive(Debug, Clone)]
pub enum CallDecision {
    Allowed(Caller),
    Unauthenticated(Denial),
    Forbidden(Denial),
}

/// May the holder of `token` call `endpoint` of this fatman (`call_fatman`)? Asked by a
/// Racetrack service holding `authorize_calls` (PUB); a denial is an answer, not an error.
#[allow(clippy::too_many_arguments)]
pub fn authorize_call(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    service: &Caller,
    token: Option<&str>,
    name: &str,
    version: &str,
    endpoint: &str,
) -> Result<CallDecision, AppError> {
    require_service(service, AuthScope::AuthorizeCalls)?;
    let endpoint = permission::normalize_endpoint(endpoint);
    let token = token.filter(|t| !t.is_empty());
    match check_allowed_scope(
        conn,
        signer,
        token,
        name,
        version,
        AuthScope::CallFatman,
        Some(&endpoint),
    ) {
        Ok(caller) => Ok(CallDecision::Allowed(caller)),
        Err(AppError::Unauthenticated(d)) => Ok(CallDecision::Unauthenticated(d)),
        Err(AppError::Forbidden(d)) => Ok(CallDecision::Forbidden(d)),
        Err(other) => Err(other),
    }
}
