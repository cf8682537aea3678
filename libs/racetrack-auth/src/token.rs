//! Tokens: HS256 JWTs with exactly the original's claims (`seed`, `subject`, `subject_type`,
//! optional `scopes`; no expiry claim), plus the legacy base64 ESC caller token.
//!
//! Storage: a token is never stored. Lifecycle stores [`digest`] of the verified claims; the
//! signature has already proven the claims were issued with `AUTH_KEY`, and the random `seed` makes
//! the digest unguessable. Tokens Lifecycle issues get a seed derived from `AUTH_KEY` and the
//! token row's id ([`TokenSigner::derive_seed`]), so a subject's token can be shown again to an
//! admin without keeping it: reading the database alone reveals no token. Internal (service)
//! tokens are stored the same way: a token is valid only while its digest has a row, so a token
//! merely signed with `AUTH_KEY` is refused.

use std::collections::HashSet;

use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use racetrack_model::AuthSubjectType;
use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Deliberately says nothing about the token itself (the original echoed it back).
    #[error("invalid JWT token")]
    Invalid(String),
    #[error("token signing failed: {0}")]
    Signing(String),
}

/// The `scopes` claim: absent in stored-subject tokens, `null` in the original's seeded admin
/// token, a list in internal tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ScopesClaim {
    #[default]
    Absent,
    Null,
    List(Vec<String>),
}

impl ScopesClaim {
    fn is_absent(&self) -> bool {
        matches!(self, ScopesClaim::Absent)
    }

    /// `None` when there is no scope restriction.
    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            ScopesClaim::List(l) => Some(l),
            _ => None,
        }
    }
}

impl Serialize for ScopesClaim {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ScopesClaim::List(l) => l.serialize(s),
            _ => s.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for ScopesClaim {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match Option::<Vec<String>>::deserialize(d)? {
            Some(l) => ScopesClaim::List(l),
            None => ScopesClaim::Null,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub seed: String,
    pub subject: String,
    pub subject_type: String,
    #[serde(default, skip_serializing_if = "ScopesClaim::is_absent")]
    pub scopes: ScopesClaim,
}

/// A verified token: its claims and whether it came in the legacy base64 form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub claims: Claims,
    pub legacy: bool,
}

pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    hmac_key: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { .. }")
    }
}

impl TokenSigner {
    pub fn new(auth_key: &str) -> TokenSigner {
        let mut validation = Validation::new(Algorithm::HS256);
        // The original's tokens carry no exp/iat/aud; expiry lives with the stored subject.
        validation.required_spec_claims = HashSet::new();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        TokenSigner {
            encoding: EncodingKey::from_secret(auth_key.as_bytes()),
            decoding: DecodingKey::from_secret(auth_key.as_bytes()),
            validation,
            hmac_key: auth_key.as_bytes().to_vec(),
        }
    }

    pub fn sign(&self, claims: &Claims) -> Result<String, TokenError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Checks the signature (or recognises a legacy caller token) and returns the claims.
    /// Whether a stored subject still owns the token is the caller's lookup of [`digest`].
    pub fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation) {
            Ok(data) => Ok(VerifiedToken {
                claims: data.claims,
                legacy: false,
            }),
            Err(jwt_err) => match decode_legacy_caller_token(token) {
                Some(claims) => Ok(VerifiedToken {
                    claims,
                    legacy: true,
                }),
                None => Err(TokenError::Invalid(jwt_err.to_string())),
            },
        }
    }

    /// The seed of a token Lifecycle issued for the token row `token_id`: reproducible only with
    /// `AUTH_KEY`, so the token can be shown again without being stored.
    #[allow(
        clippy::expect_used,
        reason = "HMAC-SHA256 accepts keys of any length: new_from_slice cannot fail"
    )]
    pub fn derive_seed(&self, token_id: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.hmac_key)
            .expect("HMAC accepts keys of any length");
        mac.update(b"racetrack-token-seed:");
        mac.update(token_id.as_bytes());
        let bytes = mac.finalize().into_bytes();
        let mut raw = [0u8; 16];
        raw.copy_from_slice(&bytes[..16]);
        uuid::Builder::from_random_bytes(raw)
            .into_uuid()
            .to_string()
    }

    /// The token of a stored subject for the token row `token_id`, and its digest.
    pub fn subject_token(
        &self,
        token_id: &str,
        subject: &str,
        subject_type: AuthSubjectType,
    ) -> Result<(String, String), TokenError> {
        let claims = Claims {
            seed: self.derive_seed(token_id),
            subject: subject.to_string(),
            subject_type: subject_type.to_string(),
            scopes: ScopesClaim::Absent,
        };
        let token = self.sign(&claims)?;
        Ok((token, digest(&claims)))
    }
}

/// What is stored for a token: SHA-256 over its identity (type, subject, seed), length-prefixed
/// so no two different claim sets share an input.
pub fn digest(claims: &Claims) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"racetrack-token-v1");
    for part in [&claims.subject_type, &claims.subject, &claims.seed] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize())
}

/// Constant-time comparison of two digests.
pub fn digests_match(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LegacyCallerToken {
    #[serde(rename = "esc-id")]
    esc_id: String,
    #[serde(rename = "api-key")]
    api_key: String,
}

/// Legacy ESC caller token: strict, padded base64 of `{"esc-id": .., "api-key": ..}`.
fn decode_legacy_caller_token(token: &str) -> Option<Claims> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token.as_bytes())
        .ok()?;
    let parsed: LegacyCallerToken = serde_json::from_slice(&raw).ok()?;
    Some(Claims {
        seed: parsed.api_key,
        subject: parsed.esc_id,
        subject_type: AuthSubjectType::Esc.as_str().to_string(),
        scopes: ScopesClaim::Absent,
    })
}

/// Builds a legacy caller token (for importing old ESC credentials and for tests).
pub fn legacy_caller_token(esc_id: &str, api_key: &str) -> String {
    let json = serde_json::to_vec(&LegacyCallerToken {
        esc_id: esc_id.to_string(),
        api_key: api_key.to_string(),
    })
    .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// The seed of the original's migration-created `admin` token: public, so the default admin token
/// is the same for a given `AUTH_KEY` in the original and here.
pub const ADMIN_SEED: &str = "ce081b05-a4a0-414a-8f6a-84c0231916a6";

/// The original's seeded admin claims (`scopes: null`).
pub fn admin_claims(username: &str) -> Claims {
    Claims {
        seed: ADMIN_SEED.to_string(),
        subject: username.to_string(),
        subject_type: AuthSubjectType::User.as_str().to_string(),
        scopes: ScopesClaim::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "test-auth-key";

    #[test]
    fn signed_tokens_round_trip() {
        let signer = TokenSigner::new(KEY);
        let (token, digest_value) = signer
            .subject_token("row-1", "alice", AuthSubjectType::User)
            .unwrap();
        let verified = signer.verify(&token).unwrap();
        assert!(!verified.legacy);
        assert_eq!(verified.claims.subject, "alice");
        assert_eq!(digest(&verified.claims), digest_value);
        // Reproducible from the row id, different per row.
        assert_eq!(
            signer
                .subject_token("row-1", "alice", AuthSubjectType::User)
                .unwrap()
                .0,
            token
        );
        assert_ne!(
            signer
                .subject_token("row-2", "alice", AuthSubjectType::User)
                .unwrap()
                .0,
            token
        );
    }

    /// A token made by the original (PyJWT 2.x, `jwt.encode(claims, "secret", algorithm="HS256")`
    /// with the seeded admin's claims).
    #[test]
    fn accepts_tokens_signed_by_the_original() {
        let pyjwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzZWVkIjoiY2UwODFiMDUtYTRhMC00MTRhLThmNmEtODRjMDIzMTkxNmE2Iiwic3ViamVjdCI6ImFkbWluIiwic3ViamVjdF90eXBlIjoidXNlciIsInNjb3BlcyI6bnVsbH0.tu_CjtMoD1pI7395cz6bJEJfRUQPftcYwQJls2CANw4";
        let verified = TokenSigner::new("secret").verify(pyjwt).unwrap();
        assert!(!verified.legacy);
        assert_eq!(verified.claims, admin_claims("admin"));
        assert_eq!(digest(&verified.claims), digest(&admin_claims("admin")));
        assert!(TokenSigner::new("other").verify(pyjwt).is_err());
    }

    #[test]
    fn rejects_forged_garbage_and_extra_claims() {
        let signer = TokenSigner::new(KEY);
        let other = TokenSigner::new("another-key");
        let (forged, _) = other
            .subject_token("x", "admin", AuthSubjectType::User)
            .unwrap();
        assert!(matches!(
            signer.verify(&forged),
            Err(TokenError::Invalid(_))
        ));
        assert!(signer.verify("garbage").is_err());
        assert!(signer.verify("").is_err());
        #[derive(Serialize)]
        struct Extra<'a> {
            seed: &'a str,
            subject: &'a str,
            subject_type: &'a str,
            exp: u64,
        }
        let extra = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Extra {
                seed: "s",
                subject: "a",
                subject_type: "user",
                exp: 1,
            },
            &EncodingKey::from_secret(KEY.as_bytes()),
        )
        .unwrap();
        assert!(
            signer.verify(&extra).is_err(),
            "unknown claims make a token invalid"
        );
        // alg=none must never pass.
        let unsigned = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"alg":"none","typ":"JWT"}"#),
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(r#"{"seed":"s","subject":"a","subject_type":"internal","scopes":null}"#)
        );
        assert!(signer.verify(&unsigned).is_err());
    }

    #[test]
    fn invalid_token_errors_do_not_echo_the_token() {
        let signer = TokenSigner::new(KEY);
        let err = signer.verify("eyJzecret.token.value").unwrap_err();
        assert_eq!(err.to_string(), "invalid JWT token");
    }

    #[test]
    fn legacy_caller_tokens_decode_strictly() {
        let signer = TokenSigner::new(KEY);
        let token = legacy_caller_token("esc-1", "key-1");
        let verified = signer.verify(&token).unwrap();
        assert!(verified.legacy);
        assert_eq!(verified.claims.subject, "esc-1");
        assert_eq!(verified.claims.subject_type, "esc");
        assert_eq!(verified.claims.seed, "key-1");
        // The older `api-token` key and old user tokens are not accepted.
        let old =
            base64::engine::general_purpose::STANDARD.encode(r#"{"esc-id":"e","api-token":"k"}"#);
        assert!(signer.verify(&old).is_err());
        let user =
            base64::engine::general_purpose::STANDARD.encode(r#"{"username":"u","token":"t"}"#);
        assert!(signer.verify(&user).is_err());
        // Unpadded base64 is not the legacy format.
        assert!(signer.verify(token.trim_end_matches('=')).is_err() || !token.ends_with('='));
    }

    #[test]
    fn digests_compare() {
        let a = digest(&admin_claims("a"));
        assert!(digests_match(&a, &a.clone()));
        assert!(!digests_match(&a, &digest(&admin_claims("b"))));
        assert!(!digests_match(&a, "short"));
    }
}
