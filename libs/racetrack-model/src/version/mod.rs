//! Fatman versions: parsing, the original's ordering, and turning a user's version query
//! (`latest`, a wildcard such as `1.x`, or an exact string) into one stored version.

mod query;
mod resolve;
mod semver;

pub use query::{VersionQuery, WildcardPattern};
pub use resolve::{resolve_version, ResolveError};
pub use semver::{SemVer, VersionError};
