//! `fatman.yaml`: its schema, overlays, parsing with precise error locations, and the semantic
//! checks the client runs before deploying.

mod error;
mod lenient;
mod overlay;
mod parse;
mod quantity;
mod schema;
mod validate;

pub use error::ManifestError;
pub use overlay::{merge_overlay, overlay_base_path};
pub use parse::{manifest_to_json, manifest_to_yaml, parse_manifest_json, parse_manifest_yaml};
pub use quantity::{Quantity, QuantityError};
pub use schema::{
    DockerManifest, GitManifest, GolangManifest, Manifest, PythonManifest, ResourcesManifest,
    DEFAULT_GIT_DIRECTORY, DEFAULT_GOMOD, DEFAULT_IMAGE_TYPE, DEFAULT_LANG, DEFAULT_REPLICAS,
    DEFAULT_VERSION,
};
pub use validate::{validate_manifest, MAX_REPLICAS, MIN_REPLICAS};
