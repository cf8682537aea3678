//! Overlays: a manifest may name a base manifest in `extends` and override parts of it. Reading
//! the files is the caller's job; this module only decides and merges.

use serde_yaml::{Mapping, Value};

use super::error::ManifestError;

const EXTENDS: &str = "extends";

/// Python truthiness, because the original skipped empty `extends` values (`""`, `false`, ...).
fn is_set(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Sequence(items) => !items.is_empty(),
        Value::Mapping(map) => !map.is_empty(),
        Value::Tagged(_) => true,
    }
}

fn into_mapping(doc: Value, which: &str) -> Result<Mapping, ManifestError> {
    match doc {
        Value::Null => Ok(Mapping::new()),
        Value::Mapping(map) => Ok(map),
        _ => Err(ManifestError::new(
            "",
            format!("{which} manifest must be a mapping"),
        )),
    }
}

/// The base manifest path an overlay document asks for, if any. Must be relative: it is resolved
/// against the overlay's directory.
pub fn overlay_base_path(overlay: &Value) -> Result<Option<&str>, ManifestError> {
    let Some(extends) = overlay.get(EXTENDS).filter(|v| is_set(v)) else {
        return Ok(None);
    };
    let path = extends
        .as_str()
        .ok_or_else(|| ManifestError::new(EXTENDS, "must be a path to the base manifest"))?;
    let windows_drive = matches!(path.as_bytes(), [drive, b':', ..] if drive.is_ascii_alphabetic());
    if path.starts_with('/') || path.starts_with('\\') || windows_drive {
        return Err(ManifestError::new(
            EXTENDS,
            format!("path {path:?} must be relative to the overlay manifest"),
        ));
    }
    Ok(Some(path))
}

/// Applies `overlay` on `base`: mappings merge key by key with the overlay winning, anything else
/// (lists included) is replaced whole. Only one level is allowed, so a base that itself extends
/// is refused. The result no longer extends anything (`extends: null`).
pub fn merge_overlay(base: Value, overlay: Value) -> Result<Value, ManifestError> {
    let base = into_mapping(base, "base")?;
    if base.get(EXTENDS).is_some_and(is_set) {
        return Err(ManifestError::new(
            EXTENDS,
            "base manifest cannot extend another one",
        ));
    }
    let overlay = into_mapping(overlay, "overlay")?;
    let mut merged = merge_mappings(base, overlay);
    merged.insert(Value::from(EXTENDS), Value::Null);
    Ok(Value::Mapping(merged))
}

fn merge_mappings(mut base: Mapping, overlay: Mapping) -> Mapping {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(Value::Mapping(existing)), Value::Mapping(incoming)) => {
                let current = std::mem::take(existing);
                *existing = merge_mappings(current, incoming);
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn maps_merge_and_everything_else_is_replaced() {
        let base = yaml(
            "name: a\nreplicas: 2\ngit: {remote: r, branch: main}\npublic_endpoints: [/x, /z]\nlabels: {a: 1, nested: {k: v, j: w}}\n",
        );
        let overlay = yaml(
            "extends: base.yaml\nreplicas: 3\ngit: {branch: dev}\npublic_endpoints: [/y]\nlabels: {nested: {k: override}}\nversion: 2.0.0\n",
        );
        let merged = merge_overlay(base, overlay).unwrap();
        let expected = yaml(
            "name: a\nreplicas: 3\ngit: {remote: r, branch: dev}\npublic_endpoints: [/y]\nlabels: {a: 1, nested: {k: override, j: w}}\nextends: null\nversion: 2.0.0\n",
        );
        assert_eq!(merged, expected);
    }

    #[test]
    fn overlay_can_replace_a_map_with_a_scalar_and_back() {
        let merged = merge_overlay(
            yaml("python: {entrypoint_path: a.py}\ndocker: null\n"),
            yaml("python: null\ndocker: {dockerfile_path: D}\n"),
        )
        .unwrap();
        assert!(merged["python"].is_null());
        assert_eq!(merged["docker"]["dockerfile_path"], Value::from("D"));
    }

    #[test]
    fn result_no_longer_extends() {
        let merged = merge_overlay(yaml("name: a\n"), yaml("extends: base.yaml\n")).unwrap();
        assert!(merged.get("extends").is_some_and(Value::is_null));
        assert_eq!(overlay_base_path(&merged), Ok(None));
    }

    #[test]
    fn base_may_not_extend() {
        let err = merge_overlay(yaml("extends: other.yaml\n"), yaml("name: a\n")).unwrap_err();
        assert_eq!(err.path, "extends");
        assert!(merge_overlay(yaml("extends: ''\nname: a\n"), yaml("name: b\n")).is_ok());
        assert!(merge_overlay(yaml("extends: null\n"), yaml("name: b\n")).is_ok());
    }

    #[test]
    fn documents_must_be_mappings() {
        assert!(merge_overlay(yaml("[1]"), yaml("name: a")).is_err());
        assert!(merge_overlay(yaml("name: a"), yaml("text")).is_err());
        assert_eq!(
            merge_overlay(Value::Null, yaml("name: a")).unwrap()["name"],
            Value::from("a")
        );
    }

    #[test]
    fn base_path() {
        assert_eq!(
            overlay_base_path(&yaml("extends: ../base.yaml")),
            Ok(Some("../base.yaml"))
        );
        assert_eq!(overlay_base_path(&yaml("name: a")), Ok(None));
        assert_eq!(overlay_base_path(&yaml("extends: ''")), Ok(None));
        assert_eq!(
            overlay_base_path(&yaml("extends: /etc/base.yaml"))
                .unwrap_err()
                .path,
            "extends"
        );
        assert!(overlay_base_path(&yaml("extends: 'C:\\base.yaml'")).is_err());
        assert!(overlay_base_path(&yaml("extends: [a]")).is_err());
        assert_eq!(overlay_base_path(&yaml("[1]")), Ok(None));
    }
}
