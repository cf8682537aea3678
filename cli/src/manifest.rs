//! Reading `fatman.yaml` (and the base manifest it `extends`) from disk, then the same parsing and
//! checks as `racetrack-model` defines for everyone, before anything is sent.

use std::path::{Path, PathBuf};

use racetrack_model::{Manifest, ManifestError};
use serde_yaml::Value;

use crate::error::{CliError, Result};

pub const MANIFEST_FILE: &str = "fatman.yaml";

/// A manifest ready to send, with where it came from.
pub struct Loaded {
    pub manifest: Manifest,
    /// The manifest file read.
    pub path: PathBuf,
    /// The directory whose files make the build context and hold secret env files.
    pub workdir: PathBuf,
}

/// `path` is a directory holding `fatman.yaml` or the manifest file itself.
pub fn locate(path: &Path) -> Result<(PathBuf, PathBuf)> {
    if path.is_dir() {
        let file = path.join(MANIFEST_FILE);
        if !file.is_file() {
            return Err(CliError::Invalid(format!(
                "manifest file not found: {} (a directory with {MANIFEST_FILE} or a manifest file is expected)",
                file.display()
            )));
        }
        Ok((file, path.to_path_buf()))
    } else if path.is_file() {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Ok((path.to_path_buf(), dir.to_path_buf()))
    } else {
        Err(CliError::Invalid(format!(
            "manifest file not found: {} does not exist",
            path.display()
        )))
    }
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let mut doc: Value = serde_yaml::from_str(&text).map_err(|e| {
        CliError::Invalid(format!(
            "validating manifest: {}: invalid YAML: {e}",
            path.display()
        ))
    })?;
    doc.apply_merge().map_err(|e| {
        CliError::Invalid(format!(
            "validating manifest: {}: invalid YAML: {e}",
            path.display()
        ))
    })?;
    Ok(doc)
}

fn invalid(path: &Path, errors: &[ManifestError]) -> CliError {
    let listed: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    CliError::Invalid(format!(
        "validating manifest: {}: {}",
        path.display(),
        listed.join("; ")
    ))
}

/// Loads, merges the base manifest if the file `extends` one, parses strictly and validates.
pub fn load(path: &Path) -> Result<Loaded> {
    let (file, workdir) = locate(path)?;
    let doc = read_yaml(&file)?;
    let base = racetrack_model::manifest::overlay_base_path(&doc)
        .map_err(|e| invalid(&file, &[e]))?
        .map(|p| file.parent().unwrap_or(Path::new(".")).join(p));
    let doc = match base {
        Some(base_path) => {
            let base = read_yaml(&base_path)?;
            racetrack_model::merge_overlay(base, doc).map_err(|e| invalid(&file, &[e]))?
        }
        None => doc,
    };
    let text = serde_yaml::to_string(&doc)
        .map_err(|e| CliError::Invalid(format!("validating manifest: {e}")))?;
    let manifest = racetrack_model::parse_manifest_yaml(&text).map_err(|e| invalid(&file, &[e]))?;
    racetrack_model::validate_manifest(&manifest).map_err(|errors| invalid(&file, &errors))?;
    Ok(Loaded {
        manifest,
        path: file,
        workdir,
    })
}

/// The manifest as sent to Lifecycle: JSON without null fields.
pub fn to_payload(m: &Manifest) -> serde_json::Value {
    without_nulls(racetrack_model::manifest_to_json(m))
}

fn without_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k, without_nulls(v)))
            .collect(),
        serde_json::Value::Array(items) => items.into_iter().map(without_nulls).collect(),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: adder\nowner_email: sample@example.com\nlang: python3:latest\ngit:\n  remote: https://github.com/org/repo\npython:\n  entrypoint_path: adder.py\n  entrypoint_class: AdderModel\n";

    #[test]
    fn loads_a_directory_or_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST_FILE), GOOD).unwrap();
        let l = load(dir.path()).unwrap();
        assert_eq!(l.manifest.name, "adder");
        assert_eq!(l.workdir, dir.path());
        let l = load(&dir.path().join(MANIFEST_FILE)).unwrap();
        assert_eq!(l.workdir, dir.path());
        let payload = to_payload(&l.manifest);
        assert_eq!(payload["git"]["remote"], "https://github.com/org/repo");
        assert!(payload.get("docker").is_none(), "{payload}");
    }

    #[test]
    fn errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(MANIFEST_FILE);
        std::fs::write(&file, GOOD.replace("sample@example.com", "nobody")).unwrap();
        let err = load(dir.path()).err().unwrap();
        assert!(matches!(err, CliError::Invalid(_)));
        assert!(err.to_string().contains("owner_email"), "{err}");
        std::fs::write(&file, format!("{GOOD}colour: blue\n")).unwrap();
        assert!(load(dir.path())
            .err()
            .unwrap()
            .to_string()
            .contains("colour"));
        std::fs::write(&file, GOOD.replace("name: adder\n", "")).unwrap();
        assert!(load(dir.path()).err().unwrap().to_string().contains("name"));
        let missing = load(&dir.path().join("nope")).err().unwrap();
        assert!(missing.to_string().contains("not found"), "{missing}");
    }

    #[test]
    fn overlays_merge_the_base() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.yaml"), GOOD).unwrap();
        std::fs::write(
            dir.path().join(MANIFEST_FILE),
            "extends: base.yaml\nversion: 1.2.3\n",
        )
        .unwrap();
        let l = load(dir.path()).unwrap();
        assert_eq!(l.manifest.version, "1.2.3");
        assert_eq!(l.manifest.name, "adder");
        assert_eq!(l.manifest.extends, None);
    }
}
