//! The manifest's shape. Unknown keys are refused at every level, absent keys take the original's
//! defaults, and serialising writes every key (absent options as `null`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lenient;
use super::quantity::Quantity;

pub const DEFAULT_VERSION: &str = "0.0.1";
pub const DEFAULT_LANG: &str = "python3";
pub const DEFAULT_IMAGE_TYPE: &str = "docker";
pub const DEFAULT_REPLICAS: u32 = 1;
pub const DEFAULT_GIT_DIRECTORY: &str = ".";
pub const DEFAULT_GOMOD: &str = "go.mod";

fn default_version() -> String {
    DEFAULT_VERSION.into()
}

fn default_lang() -> String {
    DEFAULT_LANG.into()
}

fn default_image_type() -> String {
    DEFAULT_IMAGE_TYPE.into()
}

fn default_replicas() -> u32 {
    DEFAULT_REPLICAS
}

fn default_git_directory() -> String {
    DEFAULT_GIT_DIRECTORY.into()
}

fn default_gomod() -> String {
    DEFAULT_GOMOD.into()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(deserialize_with = "lenient::string")]
    pub owner_email: String,
    pub git: GitManifest,
    #[serde(default = "default_version", deserialize_with = "lenient::string")]
    pub version: String,
    /// Job type as `name:version` (`python3:latest`). The default has no version, as in the
    /// original, so a manifest relying on it fails [`validate_manifest`](super::validate_manifest).
    #[serde(default = "default_lang", deserialize_with = "lenient::string")]
    pub lang: String,
    /// Relative path of the base manifest this one overlays; `None` once merged.
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub extends: Option<String>,
    #[serde(default)]
    pub python: Option<PythonManifest>,
    #[serde(default)]
    pub golang: Option<GolangManifest>,
    #[serde(default)]
    pub docker: Option<DockerManifest>,
    #[serde(default = "default_image_type", deserialize_with = "lenient::string")]
    pub image_type: String,
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    pub system_dependencies: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient::opt_string_map")]
    pub build_env: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "lenient::opt_string_map")]
    pub runtime_env: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub secret_build_env_file: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub secret_runtime_env_file: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_value_map")]
    pub labels: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "lenient::opt_string_list")]
    pub public_endpoints: Option<Vec<String>>,
    #[serde(default = "default_replicas", deserialize_with = "lenient::count")]
    pub replicas: u32,
    #[serde(default)]
    pub resources: Option<ResourcesManifest>,
    #[serde(default, deserialize_with = "lenient::opt_value_map")]
    pub wrapper_properties: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub infrastructure_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitManifest {
    /// Any string: only client-side validation insists on `https`.
    #[serde(deserialize_with = "lenient::string")]
    pub remote: String,
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub branch: Option<String>,
    #[serde(
        default = "default_git_directory",
        deserialize_with = "lenient::string"
    )]
    pub directory: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PythonManifest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub requirements_path: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub entrypoint_path: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub entrypoint_class: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GolangManifest {
    #[serde(default = "default_gomod", deserialize_with = "lenient::string")]
    pub gomod: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DockerManifest {
    #[serde(default, deserialize_with = "lenient::opt_string")]
    pub dockerfile_path: Option<String>,
}

/// Absent amounts are filled in by the infrastructure from its configured defaults.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourcesManifest {
    #[serde(default)]
    pub memory_min: Option<Quantity>,
    #[serde(default)]
    pub memory_max: Option<Quantity>,
    #[serde(default)]
    pub cpu_min: Option<Quantity>,
    #[serde(default)]
    pub cpu_max: Option<Quantity>,
}

impl Default for GolangManifest {
    fn default() -> Self {
        GolangManifest {
            gomod: default_gomod(),
        }
    }
}

impl GitManifest {
    /// A git section with only the remote set, everything else defaulted.
    pub fn new(remote: impl Into<String>) -> GitManifest {
        GitManifest {
            remote: remote.into(),
            branch: None,
            directory: default_git_directory(),
        }
    }
}

impl Manifest {
    /// A manifest with the required fields set and every other field at its default.
    pub fn new(
        name: impl Into<String>,
        owner_email: impl Into<String>,
        git: GitManifest,
    ) -> Manifest {
        Manifest {
            name: name.into(),
            owner_email: owner_email.into(),
            git,
            version: default_version(),
            lang: default_lang(),
            extends: None,
            python: None,
            golang: None,
            docker: None,
            image_type: default_image_type(),
            system_dependencies: None,
            build_env: None,
            runtime_env: None,
            secret_build_env_file: None,
            secret_runtime_env_file: None,
            labels: None,
            public_endpoints: None,
            replicas: default_replicas(),
            resources: None,
            wrapper_properties: None,
            infrastructure_target: None,
        }
    }
}
