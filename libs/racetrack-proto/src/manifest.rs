//! The one conversion between racetrack-model's [`Manifest`] and the `Manifest` message the
//! image-builder receives (`proto/image_builder.proto`): Lifecycle validates a manifest once and
//! sends it typed; the builder converts it back without parsing YAML (docs/architecture.md,
//! "The manifest's path").

use std::collections::BTreeMap;

use racetrack_model::manifest::{
    DockerManifest, GitManifest, GolangManifest, PythonManifest, ResourcesManifest,
};
use racetrack_model::{Manifest, Quantity};

use crate::image_builder as pb;

/// A message that cannot be a manifest (a sender that did not come from [`Manifest`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestMessageError {
    #[error("manifest.{0} is required")]
    Missing(&'static str),
    #[error("manifest.{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl From<&Manifest> for pb::Manifest {
    fn from(m: &Manifest) -> pb::Manifest {
        pb::Manifest {
            name: m.name.clone(),
            owner_email: m.owner_email.clone(),
            git: Some(pb::GitManifest {
                remote: m.git.remote.clone(),
                branch: m.git.branch.clone(),
                directory: m.git.directory.clone(),
            }),
            version: m.version.clone(),
            lang: m.lang.clone(),
            extends: m.extends.clone(),
            python: m.python.as_ref().map(|p| pb::PythonManifest {
                requirements_path: p.requirements_path.clone(),
                entrypoint_path: p.entrypoint_path.clone(),
                entrypoint_class: p.entrypoint_class.clone(),
            }),
            golang: m.golang.as_ref().map(|g| pb::GolangManifest {
                gomod: g.gomod.clone(),
            }),
            docker: m.docker.as_ref().map(|d| pb::DockerManifest {
                dockerfile_path: d.dockerfile_path.clone(),
            }),
            image_type: m.image_type.clone(),
            system_dependencies: m.system_dependencies.as_deref().map(list),
            build_env: m.build_env.as_ref().map(map),
            runtime_env: m.runtime_env.as_ref().map(map),
            secret_build_env_file: m.secret_build_env_file.clone(),
            secret_runtime_env_file: m.secret_runtime_env_file.clone(),
            labels: m.labels.as_ref().map(json_map),
            public_endpoints: m.public_endpoints.as_deref().map(list),
            replicas: m.replicas,
            resources: m.resources.as_ref().map(|r| pb::ResourcesManifest {
                memory_min: r.memory_min.as_ref().map(|q| q.as_str().to_string()),
                memory_max: r.memory_max.as_ref().map(|q| q.as_str().to_string()),
                cpu_min: r.cpu_min.as_ref().map(|q| q.as_str().to_string()),
                cpu_max: r.cpu_max.as_ref().map(|q| q.as_str().to_string()),
            }),
            wrapper_properties: m.wrapper_properties.as_ref().map(json_map),
            infrastructure_target: m.infrastructure_target.clone(),
        }
    }
}

impl TryFrom<pb::Manifest> for Manifest {
    type Error = ManifestMessageError;

    fn try_from(m: pb::Manifest) -> Result<Manifest, ManifestMessageError> {
        let git = m.git.ok_or(ManifestMessageError::Missing("git"))?;
        Ok(Manifest {
            name: m.name,
            owner_email: m.owner_email,
            git: GitManifest {
                remote: git.remote,
                branch: git.branch,
                directory: git.directory,
            },
            version: m.version,
            lang: m.lang,
            extends: m.extends,
            python: m.python.map(|p| PythonManifest {
                requirements_path: p.requirements_path,
                entrypoint_path: p.entrypoint_path,
                entrypoint_class: p.entrypoint_class,
            }),
            golang: m.golang.map(|g| GolangManifest { gomod: g.gomod }),
            docker: m.docker.map(|d| DockerManifest {
                dockerfile_path: d.dockerfile_path,
            }),
            image_type: m.image_type,
            system_dependencies: m.system_dependencies.map(|l| l.values),
            build_env: m.build_env.map(|e| e.entries.into_iter().collect()),
            runtime_env: m.runtime_env.map(|e| e.entries.into_iter().collect()),
            secret_build_env_file: m.secret_build_env_file,
            secret_runtime_env_file: m.secret_runtime_env_file,
            labels: m.labels.map(|j| from_json_map("labels", j)).transpose()?,
            public_endpoints: m.public_endpoints.map(|l| l.values),
            replicas: m.replicas,
            resources: m
                .resources
                .map(|r| {
                    Ok::<_, ManifestMessageError>(ResourcesManifest {
                        memory_min: quantity("resources.memory_min", r.memory_min)?,
                        memory_max: quantity("resources.memory_max", r.memory_max)?,
                        cpu_min: quantity("resources.cpu_min", r.cpu_min)?,
                        cpu_max: quantity("resources.cpu_max", r.cpu_max)?,
                    })
                })
                .transpose()?,
            wrapper_properties: m
                .wrapper_properties
                .map(|j| from_json_map("wrapper_properties", j))
                .transpose()?,
            infrastructure_target: m.infrastructure_target,
        })
    }
}

fn list(values: &[String]) -> pb::StringList {
    pb::StringList {
        values: values.to_vec(),
    }
}

fn map(entries: &BTreeMap<String, String>) -> pb::StringMap {
    pb::StringMap {
        entries: entries.clone().into_iter().collect(),
    }
}

fn json_map(entries: &BTreeMap<String, serde_json::Value>) -> pb::JsonMap {
    pb::JsonMap {
        entries: entries
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect(),
    }
}

fn from_json_map(
    field: &str,
    j: pb::JsonMap,
) -> Result<BTreeMap<String, serde_json::Value>, ManifestMessageError> {
    j.entries
        .into_iter()
        .map(|(k, v)| match serde_json::from_str(&v) {
            Ok(value) => Ok((k, value)),
            Err(e) => Err(ManifestMessageError::Invalid {
                field: format!("{field}.{k}"),
                reason: format!("not JSON: {e}"),
            }),
        })
        .collect()
}

fn quantity(field: &str, text: Option<String>) -> Result<Option<Quantity>, ManifestMessageError> {
    text.map(|t| {
        Quantity::parse(&t).map_err(|e| ManifestMessageError::Invalid {
            field: field.to_string(),
            reason: e.to_string(),
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(m: &Manifest) -> Manifest {
        // Through the wire as well, not only the Rust structs.
        let bytes = prost::Message::encode_to_vec(&pb::Manifest::from(m));
        let decoded: pb::Manifest = prost::Message::decode(bytes.as_slice()).unwrap();
        Manifest::try_from(decoded).unwrap()
    }

    #[test]
    fn a_full_manifest_survives_the_round_trip() {
        let yaml = r#"
name: adder
owner_email: a@b.cd
version: 1.2.3
lang: python3:latest
extends: ../base.yaml
git:
  remote: https://github.com/x/y
  branch: main
  directory: sub/dir
python:
  requirements_path: requirements.txt
  entrypoint_path: entry.py
  entrypoint_class: Adder
golang:
  gomod: other.mod
docker:
  dockerfile_path: Dockerfile
image_type: docker
system_dependencies: [curl, git]
build_env: {A: "1", B: two}
runtime_env: {C: ""}
secret_build_env_file: build.env
secret_runtime_env_file: runtime.env
labels: {team: "x", big: 12345678901234567, ratio: 1.5, nested: {a: [1, null, true]}}
public_endpoints: [/api/v1/perform]
replicas: 3
resources: {memory_min: 256Mi, memory_max: 1Gi, cpu_min: 100m, cpu_max: "2"}
wrapper_properties: {workers: 4, flag: false}
infrastructure_target: docker
"#;
        let m = racetrack_model::parse_manifest_yaml(yaml).unwrap();
        let back = round_trip(&m);
        assert_eq!(back, m);
        // The JSON the builder renders templates and labels from is the same, byte for byte
        // (Quantity compares by value, so compare the texts too).
        assert_eq!(
            racetrack_model::manifest_to_json(&back).to_string(),
            racetrack_model::manifest_to_json(&m).to_string()
        );
    }

    #[test]
    fn absent_and_empty_stay_apart() {
        let mut m = Manifest::new("x", "a@b.cd", GitManifest::new("https://h/r"));
        assert_eq!(round_trip(&m), m);
        m.system_dependencies = Some(Vec::new());
        m.build_env = Some(BTreeMap::new());
        m.labels = Some(BTreeMap::new());
        m.python = Some(PythonManifest::default());
        m.resources = Some(ResourcesManifest::default());
        let back = round_trip(&m);
        assert_eq!(back, m);
        assert_eq!(
            racetrack_model::manifest_to_json(&back),
            racetrack_model::manifest_to_json(&m)
        );
    }

    #[test]
    fn a_broken_message_is_an_error_not_a_panic() {
        let m = Manifest::new("x", "a@b.cd", GitManifest::new("https://h/r"));
        let mut msg = pb::Manifest::from(&m);
        msg.git = None;
        assert_eq!(
            Manifest::try_from(msg).unwrap_err(),
            ManifestMessageError::Missing("git")
        );
        let mut msg = pb::Manifest::from(&m);
        msg.resources = Some(pb::ResourcesManifest {
            memory_max: Some("lots".into()),
            ..Default::default()
        });
        let err = Manifest::try_from(msg).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("manifest.resources.memory_max: "),
            "{err}"
        );
        let mut msg = pb::Manifest::from(&m);
        msg.labels = Some(pb::JsonMap {
            entries: [("k".to_string(), "{not json".to_string())].into(),
        });
        assert!(matches!(
            Manifest::try_from(msg).unwrap_err(),
            ManifestMessageError::Invalid { field, .. } if field == "labels.k"
        ));
    }
}
