//! Auth subjects and their tokens: issuing, showing again, rotating.

use chrono::NaiveDateTime;
use racetrack_auth::permission::DEFAULT_USER_SCOPES;
use racetrack_auth::token::{self, Claims, ScopesClaim};
use racetrack_auth::TokenSigner;
use racetrack_db::models::{
    AuthSubject, AuthToken, Esc, Family, NewAuthPermission, SubjectOwner, User,
};
use racetrack_db::repo::auth::{self as repo, SubjectKey};
use racetrack_db::Connection as _;
use racetrack_db::DbConnection;
use racetrack_model::{AuthScope, InternalService};

use super::AppError;

/// Adds a live token to a subject; the subject's other tokens keep working.
pub fn issue_token(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    subject: &AuthSubject,
    owner: &SubjectOwner,
    label: &str,
    expiry_time: Option<NaiveDateTime>,
) -> Result<(AuthToken, String), AppError> {
    let (Some(name), Some(kind)) = (owner.token_subject(), owner.subject_type()) else {
        return Err(AppError::BadRequest(
            "auth subject has no owner to issue a token for".into(),
        ));
    };
    let id = racetrack_db::new_id();
    let (token, digest) = signer
        .subject_token(&id, name, kind)
        .map_err(AppError::internal)?;
    let row = AuthToken {
        id,
        auth_subject_id: subject.id.clone(),
        token_hash: digest,
        public_seed: None,
        label: label.to_string(),
        create_time: racetrack_db::now(),
        expiry_time,
        last_use_time: None,
    };
    repo::insert_token(conn, &row)?;
    Ok((row, token))
}

/// Whether the token still authenticates as far as the token itself goes (not expired); its
/// subject may still be revoked or expired as a whole.
pub fn token_live(row: &AuthToken) -> bool {
    row.expiry_time.is_none_or(|e| e > racetrack_db::now())
}

/// The token that a stored row stands for, if it can be rebuilt with the current `AUTH_KEY`.
pub fn reveal(signer: &TokenSigner, row: &AuthToken, owner: &SubjectOwner) -> Option<String> {
    let claims = Claims {
        seed: row
            .public_seed
            .clone()
            .unwrap_or_else(|| signer.derive_seed(&row.id)),
        subject: owner.token_subject()?.to_string(),
        subject_type: owner.subject_type()?.as_str().to_string(),
        scopes: if row.public_seed.is_some() {
            ScopesClaim::Null
        } else {
            ScopesClaim::Absent
        },
    };
    if !token::digests_match(&token::digest(&claims), &row.token_hash) {
        // Issued under another AUTH_KEY (or imported): it cannot be shown, only replaced.
        return None;
    }
    signer.sign(&claims).ok()
}

/// The subject's newest showable, unexpired token; a new one when there is none.
pub fn current_token(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    subject: &AuthSubject,
    owner: &SubjectOwner,
) -> Result<String, AppError> {
    let now = racetrack_db::now();
    let tokens = repo::tokens_of_subject(conn, &subject.id)?;
    let shown = tokens
        .iter()
        .rev()
        .filter(|t| t.expiry_time.is_none_or(|e| e > now))
        .find_map(|t| reveal(signer, t, owner));
    match shown {
        Some(token) => Ok(token),
        None => Ok(issue_token(conn, signer, subject, owner, "default", None)?.1),
    }
}

/// Replaces every token of the subject with one new token: the old ones die at once. Returns
/// the new token's row and the token.
pub fn regenerate(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    subject: &AuthSubject,
    owner: &SubjectOwner,
) -> Result<(AuthToken, String), AppError> {
    conn.transaction(|conn| {
        repo::delete_tokens_of_subject(conn, &subject.id)?;
        issue_token(conn, signer, subject, owner, "default", None)
    })
}

pub fn user_owner(user: &User) -> SubjectOwner {
    SubjectOwner::User {
        username: user.username.clone(),
        is_active: user.is_active,
    }
}

/// The user's subject; a new one gets a token and the default global permissions (get-or-create:
/// the original created a duplicate subject on every call).
pub fn ensure_user_subject(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    user: &User,
) -> Result<AuthSubject, AppError> {
    conn.transaction(|conn| {
        let (subject, created) = repo::get_or_create_subject(conn, SubjectKey::User(user.id))?;
        if created {
            issue_token(conn, signer, &subject, &user_owner(user), "default", None)?;
            for scope in DEFAULT_USER_SCOPES {
                grant_global(conn, &subject.id, *scope)?;
            }
        }
        Ok(subject)
    })
}

pub fn ensure_esc_subject(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    esc: &Esc,
) -> Result<AuthSubject, AppError> {
    let owner = SubjectOwner::Esc {
        id: esc.id.clone(),
        name: esc.name.clone(),
    };
    conn.transaction(|conn| {
        let (subject, created) = repo::get_or_create_subject(conn, SubjectKey::Esc(&esc.id))?;
        if created {
            issue_token(conn, signer, &subject, &owner, "default", None)?;
        }
        Ok(subject)
    })
}

pub fn ensure_family_subject(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    family: &Family,
) -> Result<AuthSubject, AppError> {
    let owner = SubjectOwner::Family {
        name: family.name.clone(),
    };
    conn.transaction(|conn| {
        let (subject, created) = repo::get_or_create_subject(conn, SubjectKey::Family(&family.id))?;
        if created {
            issue_token(conn, signer, &subject, &owner, "default", None)?;
        }
        Ok(subject)
    })
}

/// The service's subject; a new one gets the service's scopes as global rows (an admin may change
/// them later through the permission endpoints).
pub fn ensure_service_subject(
    conn: &mut DbConnection,
    service: InternalService,
) -> Result<AuthSubject, AppError> {
    conn.transaction(|conn| {
        let (subject, created) =
            repo::get_or_create_subject(conn, SubjectKey::Service(service.as_str()))?;
        if created {
            for scope in service.scopes() {
                grant_global(conn, &subject.id, *scope)?;
            }
        }
        Ok(subject)
    })
}

/// A new internal token for `service` (`lifecycle generate-auth`): stored as a digest like every
/// token; the service's earlier tokens stay valid until revoked, so operators can roll.
pub fn issue_service_token(
    conn: &mut DbConnection,
    signer: &TokenSigner,
    service: InternalService,
) -> Result<(AuthToken, String), AppError> {
    let subject = ensure_service_subject(conn, service)?;
    let owner = SubjectOwner::Service {
        name: service.as_str().to_string(),
    };
    let label = format!(
        "generate-auth {}",
        racetrack_db::now().format("%Y-%m-%d %H:%M:%S")
    );
    issue_token(conn, signer, &subject, &owner, &label, None)
}

pub fn grant_global(
    conn: &mut DbConnection,
    subject_id: &str,
    scope: AuthScope,
) -> Result<(), AppError> {
    repo::grant(
        conn,
        &NewAuthPermission {
            auth_subject_id: subject_id,
            scope,
            fatman_family_id: None,
            fatman_id: None,
            endpoint: None,
        },
    )?;
    Ok(())
}
