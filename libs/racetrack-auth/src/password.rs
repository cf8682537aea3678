//! Passwords are stored as argon2id PHC strings.

use std::sync::OnceLock;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

pub fn hash_password(plain: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(plain.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Verifies `plain` against a stored hash. With no stored hash (unknown user) a dummy hash is
/// verified anyway, so the response time does not reveal whether the user exists.
pub fn verify_password(plain: &str, stored: Option<&str>) -> bool {
    let dummy = dummy_hash();
    let (hash, known) = match stored {
        Some(s) => (s, true),
        None => (dummy, false),
    };
    let parsed = match PasswordHash::new(hash) {
        Ok(p) => p,
        Err(_) => {
            // Unparsable stored hash: spend the same time, then refuse.
            if let Ok(p) = PasswordHash::new(dummy) {
                let _ = Argon2::default().verify_password(plain.as_bytes(), &p);
            }
            return false;
        }
    };
    let ok = Argon2::default()
        .verify_password(plain.as_bytes(), &parsed)
        .is_ok();
    ok && known
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash_password("racetrack-dummy-password").unwrap_or_default())
}

/// A few of the passwords every guesser tries first; the rest of the rules catch most others.
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "password1",
    "password123",
    "12345678",
    "123456789",
    "1234567890",
    "qwertyuiop",
    "qwerty123",
    "iloveyou",
    "sunshine",
    "football",
    "baseball",
    "welcome1",
    "admin123",
    "letmein1",
    "trustno1",
    "princess",
    "abc12345",
    "passw0rd",
    "superman",
    "11111111",
    "00000000",
    "changeme",
    "administrator",
    "racetrack",
];

/// The original's (Django's) password rules: at least 8 characters, not entirely numeric, not a
/// common password, not too similar to the username. Returns every rule broken.
pub fn validate_password(password: &str, username: &str) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if password.chars().count() < 8 {
        problems.push("This password is too short. It must contain at least 8 characters.".into());
    }
    if !password.is_empty() && password.chars().all(|c| c.is_ascii_digit()) {
        problems.push("This password is entirely numeric.".into());
    }
    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        problems.push("This password is too common.".into());
    }
    if too_similar(&lower, &username.to_lowercase()) {
        problems.push("The password is too similar to the username.".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Similar when the password contains the username (or its e-mail local part), or the other way
/// round — a simpler stand-in for Django's sequence-ratio check that catches the same cases.
fn too_similar(password: &str, username: &str) -> bool {
    let local = username.split('@').next().unwrap_or(username);
    [username, local]
        .iter()
        .filter(|part| part.len() >= 3)
        .any(|part| password.contains(*part) || part.contains(password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = hash_password("correct horse battery").unwrap();
        let b = hash_password("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&a)));
        assert!(!verify_password("wrong", Some(&a)));
    }

    #[test]
    fn unknown_user_and_garbage_hash_never_verify() {
        assert!(!verify_password("racetrack-dummy-password", None));
        assert!(!verify_password("x", Some("not a phc string")));
    }

    #[test]
    fn password_rules() {
        assert!(validate_password("Tr4ck-and-field", "alice@example.com").is_ok());
        let errs = validate_password("1234", "bob@example.com").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(validate_password("password", "bob@example.com").is_err());
        assert!(validate_password("alice-secret-1", "alice@example.com").is_err());
    }
}
