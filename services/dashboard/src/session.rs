//! Sign-in state and CSRF protection (docs/architecture.md, "The dashboard").
//!
//! The session lives in an encrypted, signed cookie (actix-session's cookie store, key derived
//! from `SECRET_KEY`), so replicas share nothing but the key. It holds the username, the user's
//! Racetrack token, the staff flag, the CSRF token and an absolute expiry checked on every
//! request (a copied cookie stops working after `SESSION_TTL` even if a browser keeps it).
//! The same token also goes into the `X-Racetrack-Auth` cookie that PUB reads, so the browser
//! can open fatmen.

use std::future::{ready, Ready};

use actix_session::{Session, SessionExt};
use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::{dev::Payload, FromRequest, HttpRequest};
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::PageError;

/// Name of the encrypted session cookie.
pub const SESSION_COOKIE: &str = "racetrack_session";
/// Cookie PUB reads the caller's token from (the original's name).
pub const AUTH_COOKIE: &str = "X-Racetrack-Auth";
/// Form field and header carrying the CSRF token.
pub const CSRF_FIELD: &str = "csrf_token";
pub const CSRF_HEADER: &str = "X-CSRF-Token";

const USER_KEY: &str = "user";
const CSRF_KEY: &str = "csrf";
const FLASH_KEY: &str = "flash";

/// What the session remembers about the signed-in user.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionUser {
    pub username: String,
    pub token: String,
    pub is_staff: bool,
    pub is_superuser: bool,
    /// Unix seconds after which the sign-in is void.
    pub expires: i64,
}

/// A signed-in user: the extractor redirects to the sign-in page otherwise.
pub struct SignedIn {
    pub username: String,
    pub token: String,
    /// Staff or admin: may open the administration pages (Lifecycle still checks each call).
    pub is_staff: bool,
    pub is_superuser: bool,
    pub session: Session,
}

impl SignedIn {
    pub fn csrf(&self) -> String {
        csrf_token(&self.session)
    }
}

impl FromRequest for SignedIn {
    type Error = PageError;
    type Future = Ready<Result<SignedIn, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let session = req.get_session();
        let next = req
            .uri()
            .path_and_query()
            .map_or("/dashboard/", |p| p.as_str())
            .to_string();
        let user = session.get::<SessionUser>(USER_KEY).ok().flatten();
        ready(match user {
            Some(u) if u.expires > chrono::Utc::now().timestamp() => Ok(SignedIn {
                username: u.username,
                token: u.token,
                is_staff: u.is_staff || u.is_superuser,
                is_superuser: u.is_superuser,
                session,
            }),
            _ => {
                session.purge();
                Err(PageError::SignInRequired { next })
            }
        })
    }
}

/// The signed-in user, if any, without redirecting (pages anyone may see).
pub fn current_user(session: &Session) -> Option<SessionUser> {
    session
        .get::<SessionUser>(USER_KEY)
        .ok()
        .flatten()
        .filter(|u| u.expires > chrono::Utc::now().timestamp())
}

/// Starts a signed-in session: a fresh session (no fixation) with a fresh CSRF token.
pub fn sign_in(session: &Session, user: SessionUser) -> Result<(), PageError> {
    session.renew();
    session.clear();
    session
        .insert(USER_KEY, user)
        .map_err(|e| PageError::Session(e.to_string()))?;
    session
        .insert(CSRF_KEY, new_secret())
        .map_err(|e| PageError::Session(e.to_string()))?;
    Ok(())
}

pub fn sign_out(session: &Session) {
    session.purge();
}

/// The `X-Racetrack-Auth` cookie carrying the user's token for PUB: HttpOnly (scripts never
/// see it), SameSite=Lax, Secure when the dashboard is served over TLS.
pub fn auth_cookie(
    token: &str,
    ttl_secs: i64,
    secure: bool,
    domain: Option<&str>,
) -> Cookie<'static> {
    let mut c = Cookie::build(AUTH_COOKIE, racetrack_config::redact::percent_encode(token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::seconds(ttl_secs))
        .finish();
    if let Some(d) = domain {
        c.set_domain(d.to_string());
    }
    c
}

/// Removes the `X-Racetrack-Auth` cookie (same path and domain as it was set with).
pub fn removed_auth_cookie(domain: Option<&str>) -> Cookie<'static> {
    let mut c = Cookie::build(AUTH_COOKIE, "").path("/").finish();
    if let Some(d) = domain {
        c.set_domain(d.to_string());
    }
    c.make_removal();
    c
}

/// The session's CSRF token, created on first use (anonymous forms — sign in, register — are
/// protected too).
pub fn csrf_token(session: &Session) -> String {
    if let Ok(Some(t)) = session.get::<String>(CSRF_KEY) {
        return t;
    }
    let t = new_secret();
    // A session that cannot store it fails the later check: the form is refused, not trusted.
    let _ = session.insert(CSRF_KEY, &t);
    t
}

/// Refuses a state-changing request whose CSRF token is missing or not the session's.
pub fn verify_csrf(session: &Session, presented: Option<&str>) -> Result<(), PageError> {
    let expected = session.get::<String>(CSRF_KEY).ok().flatten();
    match (expected, presented) {
        (Some(e), Some(p)) if !e.is_empty() && bool::from(e.as_bytes().ct_eq(p.as_bytes())) => {
            Ok(())
        }
        _ => Err(PageError::Csrf),
    }
}

/// The CSRF token of a script's request (`X-CSRF-Token` header).
pub fn verify_csrf_header(req: &HttpRequest, session: &Session) -> Result<(), PageError> {
    let presented = req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok());
    verify_csrf(session, presented)
}

/// A message for the next page this browser opens (after a redirect).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Flash {
    pub success: bool,
    pub text: String,
}

pub fn flash(session: &Session, success: bool, text: impl Into<String>) {
    let _ = session.insert(
        FLASH_KEY,
        Flash {
            success,
            text: text.into(),
        },
    );
}

pub fn take_flash(session: &Session) -> Option<Flash> {
    session.remove_as::<Flash>(FLASH_KEY).and_then(Result::ok)
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
