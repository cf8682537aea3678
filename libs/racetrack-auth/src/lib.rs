//! Racetrack's authentication and authorization rules, free of I/O so that Lifecycle (and tests)
//! can apply them to whatever storage holds the subjects.
//!
//! - [`password`]: argon2id hashing with timing-equalised verification, password rules.
//! - [`token`]: the original's HS256 JWTs (same claims, so tokens signed by the original with the
//!   same `AUTH_KEY` validate here), legacy base64 ESC caller tokens, token digests for storage.
//! - [`permission`]: scope/resource/endpoint checks and listing filters.
//! - [`throttle`]: per-key attempt limiting for logins.

pub mod password;
pub mod permission;
pub mod throttle;
pub mod token;

pub use permission::Permission;
pub use token::{Claims, TokenError, TokenSigner};
