//! Racetrack's domain vocabulary, free of I/O: the `fatman.yaml` manifest, fatman versions and
//! version queries, name rules, statuses, permission scopes and audit event texts.

mod wire;

pub mod ago;
pub mod audit;
pub mod dockerignore;
pub mod manifest;
pub mod names;
pub mod scope;
pub mod status;
pub mod version;

pub use ago::ago_words;
pub use audit::{render_audit_event, AuditLogEventType, UnknownEventType};
pub use manifest::{
    manifest_to_json, manifest_to_yaml, merge_overlay, parse_manifest_json, parse_manifest_yaml,
    validate_manifest, Manifest, ManifestError, Quantity,
};
pub use names::{
    resource_name, validate_fatman_identity, validate_fatman_name, validate_fatman_version,
    NameError,
};
pub use scope::{AuthScope, InternalService};
pub use status::{AuthSubjectType, DeploymentStatus, FatmanStatus};
pub use version::{
    resolve_version, ResolveError, SemVer, VersionError, VersionQuery, WildcardPattern,
};
pub use wire::ParseEnumError;
