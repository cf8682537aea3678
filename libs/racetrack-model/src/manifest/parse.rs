//! Reading a manifest from YAML text or a JSON payload, and writing its stored YAML form.

use serde_yaml::{Mapping, Value};

use super::error::{child_path, ManifestError};
use super::schema::Manifest;

/// Turns a schema error into a path pointing at the offending key itself, also for missing keys
/// (which serde reports at the enclosing object).
fn schema_error<E: std::fmt::Display>(err: serde_path_to_error::Error<E>) -> ManifestError {
    let path = err.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let reason = plain_reason(&err.inner().to_string());
    if let Some(field) = reason
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        return ManifestError::new(child_path(&path, field), "missing required field");
    }
    ManifestError::new(path, reason)
}

/// Speaks of YAML/JSON shapes rather than Rust types in serde's messages.
fn plain_reason(reason: &str) -> String {
    let mut reason = reason.replace("unit value", "null");
    while let Some(start) = reason.find("expected struct ") {
        let name_start = start + "expected struct ".len();
        let name_len = reason[name_start..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(reason.len() - name_start);
        reason.replace_range(start..name_start + name_len, "expected a mapping");
    }
    reason
}

/// Strict parse of `fatman.yaml` text: unknown keys and wrong types are errors naming the field.
///
/// As in the original, an empty document counts as an empty mapping and YAML merge keys (`<<`)
/// are applied.
pub fn parse_manifest_yaml(text: &str) -> Result<Manifest, ManifestError> {
    let mut doc: Value = serde_yaml::from_str(text)
        .map_err(|e| ManifestError::new("", format!("invalid YAML: {e}")))?;
    if doc.is_null() {
        doc = Value::Mapping(Mapping::new());
    }
    doc.apply_merge()
        .map_err(|e| ManifestError::new("", format!("invalid YAML: {e}")))?;
    serde_path_to_error::deserialize(&doc).map_err(schema_error)
}

/// Strict parse of a manifest received as JSON (deploy payloads), same rules as the YAML form.
pub fn parse_manifest_json(value: &serde_json::Value) -> Result<Manifest, ManifestError> {
    serde_path_to_error::deserialize(value).map_err(schema_error)
}

/// The manifest as JSON with every key present, absent options as `null` (API responses).
pub fn manifest_to_json(m: &Manifest) -> serde_json::Value {
    serde_json::to_value(m).unwrap_or(serde_json::Value::Null)
}

/// The stored form: YAML without null values and with sorted keys, as the original wrote it, so
/// rows stay byte-compatible with what the original services read and write.
pub fn manifest_to_yaml(m: &Manifest) -> String {
    serde_yaml::to_value(m)
        .map(without_nulls)
        .and_then(|v| serde_yaml::to_string(&v))
        .unwrap_or_default()
}

fn without_nulls(value: Value) -> Value {
    match value {
        Value::Mapping(map) => {
            let mut entries: Vec<(Value, Value)> = map
                .into_iter()
                .filter(|(k, v)| !k.is_null() && !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect();
            entries.sort_by_key(|(key, _)| sort_key(key));
            Value::Mapping(entries.into_iter().collect())
        }
        Value::Sequence(items) => Value::Sequence(
            items
                .into_iter()
                .filter(|v| !v.is_null())
                .map(without_nulls)
                .collect(),
        ),
        other => other,
    }
}

fn sort_key(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => serde_yaml::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADDER: &str = "\
name: adder
owner_email: sample@example.com
lang: python3:latest
git:
  remote: https://github.com/TheRacetrack/racetrack
  directory: sample/python-class
python:
  entrypoint_path: adder.py
  entrypoint_class: AdderModel
";

    fn err(text: &str) -> ManifestError {
        parse_manifest_yaml(text).unwrap_err()
    }

    #[test]
    fn applies_defaults() {
        let m = parse_manifest_yaml(ADDER).unwrap();
        assert_eq!(m.name, "adder");
        assert_eq!(m.version, "0.0.1");
        assert_eq!(m.replicas, 1);
        assert_eq!(m.image_type, "docker");
        assert_eq!(m.git.branch, None);
        assert_eq!(m.git.directory, "sample/python-class");
        let python = m.python.as_ref().unwrap();
        assert_eq!(python.requirements_path, None);
        assert_eq!(python.entrypoint_class, "AdderModel");
        let minimal =
            parse_manifest_yaml("name: a\nowner_email: a@b.c\ngit: {remote: r}\n").unwrap();
        assert_eq!(minimal.lang, "python3");
        assert_eq!(minimal.git.directory, ".");
        let golang = parse_manifest_yaml(&format!("{ADDER}golang: {{}}\n")).unwrap();
        assert_eq!(golang.golang.unwrap().gomod, "go.mod");
    }

    #[test]
    fn full_manifest() {
        let text = format!(
            "{ADDER}version: 1.2.3-dev
extends: null
docker: {{dockerfile_path: Dockerfile}}
system_dependencies: [curl, git]
build_env: {{A: '1'}}
runtime_env: {{PORT: 8080, DEBUG: true, RATIO: 0.5}}
secret_build_env_file: .env.build
secret_runtime_env_file: .env.run
labels: {{team: ml, tier: 2, tags: [a, b]}}
public_endpoints: [/api/v1/perform]
replicas: 3
resources: {{memory_min: 256Mi, memory_max: 1Gi, cpu_min: 10m, cpu_max: 1}}
wrapper_properties: {{docs_input_example: {{numbers: [1, 2]}}}}
infrastructure_target: kubernetes
"
        );
        let m = parse_manifest_yaml(&text).unwrap();
        assert_eq!(m.version, "1.2.3-dev");
        assert_eq!(m.replicas, 3);
        let runtime = m.runtime_env.as_ref().unwrap();
        assert_eq!(runtime["PORT"], "8080");
        assert_eq!(runtime["DEBUG"], "True");
        assert_eq!(runtime["RATIO"], "0.5");
        assert_eq!(m.labels.as_ref().unwrap()["tier"], serde_json::json!(2));
        let resources = m.resources.as_ref().unwrap();
        assert_eq!(resources.memory_max.as_ref().unwrap().as_str(), "1Gi");
        assert_eq!(resources.cpu_max.as_ref().unwrap().value(), 1.0);
        assert_eq!(parse_manifest_yaml(&manifest_to_yaml(&m)).unwrap(), m);
        assert_eq!(parse_manifest_json(&manifest_to_json(&m)).unwrap(), m);
    }

    #[test]
    fn json_has_every_key_including_nulls() {
        let m = parse_manifest_yaml(ADDER).unwrap();
        let json = manifest_to_json(&m);
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "name",
            "owner_email",
            "git",
            "version",
            "lang",
            "extends",
            "python",
            "golang",
            "docker",
            "image_type",
            "system_dependencies",
            "build_env",
            "runtime_env",
            "secret_build_env_file",
            "secret_runtime_env_file",
            "labels",
            "public_endpoints",
            "replicas",
            "resources",
            "wrapper_properties",
            "infrastructure_target",
        ] {
            assert!(keys.contains(&key), "{key} missing from {keys:?}");
        }
        assert_eq!(keys.len(), 21);
        assert!(json["infrastructure_target"].is_null());
        assert!(json["git"]["branch"].is_null());
        assert!(json["python"]["requirements_path"].is_null());
        assert_eq!(parse_manifest_json(&json).unwrap(), m);
    }

    #[test]
    fn stored_yaml_drops_nulls_and_sorts_keys() {
        let m = parse_manifest_yaml(ADDER).unwrap();
        let stored = manifest_to_yaml(&m);
        assert!(!stored.contains("null"), "{stored}");
        assert!(!stored.contains("extends"), "{stored}");
        let top_keys: Vec<&str> = stored
            .lines()
            .filter(|l| !l.starts_with(' '))
            .filter_map(|l| l.split(':').next())
            .collect();
        let mut sorted = top_keys.clone();
        sorted.sort();
        assert_eq!(top_keys, sorted);
        assert_eq!(parse_manifest_yaml(&stored).unwrap(), m);
    }

    #[test]
    fn numeric_looking_strings_survive_the_stored_form() {
        let m =
            parse_manifest_yaml("name: a\nowner_email: a@b.c\nversion: '1.10'\ngit: {remote: r}\n")
                .unwrap();
        assert_eq!(m.version, "1.10");
        assert_eq!(
            parse_manifest_yaml(&manifest_to_yaml(&m)).unwrap().version,
            "1.10"
        );
    }

    #[test]
    fn unknown_keys_are_named_with_their_location() {
        let top = err(&format!("{ADDER}replica: 2\n"));
        assert_eq!(top.path, "replica");
        assert!(top.reason.contains("unknown field `replica`"), "{top}");
        let nested = err(&ADDER.replace("  directory:", "  dir:"));
        assert_eq!(nested.path, "git.dir");
        assert!(nested.reason.contains("unknown field `dir`"), "{nested}");
        assert!(
            nested.reason.contains("`directory`"),
            "lists valid keys: {nested}"
        );
        let deep = err(&format!("{ADDER}resources: {{memory: 1Gi}}\n"));
        assert_eq!(deep.path, "resources.memory");
        assert_eq!(
            err(&format!("{ADDER}secret_build_env: x\n")).path,
            "secret_build_env"
        );
    }

    #[test]
    fn wrong_types_are_named_by_path() {
        assert_eq!(err(&format!("{ADDER}replicas: many\n")).path, "replicas");
        assert_eq!(err(&format!("{ADDER}replicas: -1\n")).path, "replicas");
        assert_eq!(
            err(&format!("{ADDER}public_endpoints: [/a, [x]]\n")).path,
            "public_endpoints[1]"
        );
        assert_eq!(
            err(&format!("{ADDER}runtime_env: {{A: {{b: c}}}}\n")).path,
            "runtime_env.A"
        );
        assert_eq!(
            err(&format!("{ADDER}system_dependencies: curl\n")).path,
            "system_dependencies"
        );
        assert_eq!(err(&ADDER.replace("name: adder", "name: [a]")).path, "name");
        assert_eq!(
            err(&ADDER.replace("name: adder", "name: null")).path,
            "name"
        );
        let not_a_map = err(&format!("{ADDER}golang: x\n"));
        assert_eq!(not_a_map.path, "golang");
        assert_eq!(
            not_a_map.reason,
            "invalid type: string \"x\", expected a mapping"
        );
        let null = err(&ADDER.replace("name: adder", "name:"));
        assert_eq!(null.reason, "invalid type: null, expected a string");
    }

    #[test]
    fn bad_quantities_name_field_and_value() {
        let e = err(&format!("{ADDER}resources:\n  memory_max: 1Zi\n"));
        assert_eq!(e.path, "resources.memory_max");
        assert!(e.reason.contains("1Zi"), "{e}");
        let e = err(&format!("{ADDER}resources:\n  cpu_min: -5\n"));
        assert_eq!(e.path, "resources.cpu_min");
    }

    #[test]
    fn missing_required_fields_point_at_the_field() {
        let e = err("owner_email: a@b.c\ngit: {remote: x}\n");
        assert_eq!(e, ManifestError::new("name", "missing required field"));
        assert_eq!(
            err("name: a\nowner_email: a@b.c\ngit: {branch: x}\n").path,
            "git.remote"
        );
        assert_eq!(err("").path, "name");
        assert_eq!(err("# only a comment\n").path, "name");
    }

    #[test]
    fn documents_that_are_not_manifests() {
        let e = err("name: [");
        assert_eq!(e.path, "");
        assert!(e.reason.starts_with("invalid YAML"), "{e}");
        assert_eq!(
            err("- a\n- b\n"),
            ManifestError::new("", "invalid type: sequence, expected a mapping")
        );
        assert_eq!(err("just text").path, "");
        assert!(parse_manifest_yaml("a: 1\n---\nb: 2\n").is_err());
        assert!(parse_manifest_json(&serde_json::json!(null)).is_err());
        assert!(parse_manifest_json(&serde_json::json!([1])).is_err());
    }

    #[test]
    fn merge_keys_are_applied() {
        let text = "\
name: a
owner_email: a@b.c
git:
  <<: {remote: 'https://example.com/r.git'}
  branch: dev
";
        let m = parse_manifest_yaml(text).unwrap();
        assert_eq!(m.git.remote, "https://example.com/r.git");
        assert_eq!(m.git.branch.as_deref(), Some("dev"));
    }

    #[test]
    fn json_payloads_get_the_same_rules() {
        let ok = serde_json::json!({
            "name": "a", "owner_email": "a@b.c", "git": {"remote": "r"},
            "replicas": 2, "runtime_env": {"PORT": 8080}
        });
        let m = parse_manifest_json(&ok).unwrap();
        assert_eq!(m.replicas, 2);
        assert_eq!(m.runtime_env.unwrap()["PORT"], "8080");
        let unknown = serde_json::json!({"name": "a", "owner_email": "a@b.c", "git": {"remote": "r", "x": 1}});
        assert_eq!(parse_manifest_json(&unknown).unwrap_err().path, "git.x");
        let missing = serde_json::json!({"name": "a", "owner_email": "a@b.c"});
        assert_eq!(parse_manifest_json(&missing).unwrap_err().path, "git");
    }
}
