//! Job types: folders under `JOB_TYPES_DIR`, each described by a `job-type.yaml`:
//!
//! ```yaml
//! name: python3                    # the manifest's `lang` is `name:version` or `name:latest`
//! version: 1.0.0                   # SemVer; `latest` resolves to the highest one
//! base_dockerfile: base.Dockerfile # optional; built once as fatman-base/{name}:{version}
//! base_context: .                  # optional (default `.`): build context of the base image
//! template: fatman.Dockerfile.tpl  # optional; absent = the user's own Dockerfile
//!                                  #   (manifest `docker.dockerfile_path`)
//! base_build_args: [PYTHON_BASE_IMAGE]  # optional: which configured build args
//! template_build_args: []               #   (PYTHON_BASE_IMAGE, BASE_IMAGE, EXTRA_CA_CERTS)
//! user_build_args: [BASE_IMAGE]         #   each kind of build gets; absent = all of them
//! ```
//!
//! Paths are relative to the job type's folder and must stay inside it; `base_dockerfile` must
//! be inside `base_context`. `job-type.yaml` files are looked for up to three levels deep
//! (`job-types/python3/job-type.yaml`, `job-types/python3/1.0.0/job-type.yaml`...). Unknown
//! keys are ignored, so job types may carry documentation fields.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use racetrack_model::SemVer;
use serde::Deserialize;

pub const JOB_TYPE_FILE: &str = "job-type.yaml";
const MAX_DEPTH: usize = 3;

#[derive(Debug, Deserialize)]
struct JobTypeFile {
    name: String,
    version: String,
    #[serde(default)]
    base_dockerfile: Option<String>,
    #[serde(default)]
    base_context: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    base_build_args: Option<Vec<String>>,
    #[serde(default)]
    template_build_args: Option<Vec<String>>,
    #[serde(default)]
    user_build_args: Option<Vec<String>>,
}

/// One loaded job type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobType {
    pub name: String,
    pub version: String,
    /// The job type's folder (build context of its base image).
    pub dir: PathBuf,
    /// Base Dockerfile, relative to `dir`.
    pub base_dockerfile: Option<String>,
    /// Build context of the base image, relative to `dir` (`.` by default).
    pub base_context: String,
    /// Fatman Dockerfile template, relative to `dir`; `None`: the user's Dockerfile.
    pub template: Option<String>,
    /// Configured build args given to the base build, the template build and the user's
    /// Dockerfile build; `None`: all of them.
    pub base_build_args: Option<Vec<String>>,
    pub template_build_args: Option<Vec<String>>,
    pub user_build_args: Option<Vec<String>>,
}

impl JobType {
    /// `name:version`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.name, self.version)
    }

    pub fn template_path(&self) -> Option<PathBuf> {
        self.template.as_ref().map(|t| self.dir.join(t))
    }

    /// The base build's context folder and its Dockerfile's path inside it (`/`-separated).
    pub fn base_build(&self) -> Option<(PathBuf, String)> {
        let dockerfile = self.base_dockerfile.as_ref()?;
        let context = normalize(&self.base_context);
        let dockerfile = normalize(dockerfile);
        let inside = if context.is_empty() {
            dockerfile.clone()
        } else {
            dockerfile.strip_prefix(&format!("{context}/"))?.to_string()
        };
        Some((self.dir.join(&context), inside))
    }

    /// A minimal job type (tests and embedding).
    pub fn new(name: &str, version: &str, dir: PathBuf) -> JobType {
        JobType {
            name: name.into(),
            version: version.into(),
            dir,
            base_dockerfile: None,
            base_context: ".".into(),
            template: None,
            base_build_args: None,
            template_build_args: None,
            user_build_args: None,
        }
    }
}

/// Every job type found, plus what could not be loaded.
#[derive(Debug, Clone, Default)]
pub struct JobTypeCatalog {
    types: BTreeMap<String, JobType>,
    /// Problems found while loading (a bad `job-type.yaml` is skipped, not fatal).
    pub problems: Vec<String>,
}

/// `./a/./b` → `a/b`, `.` → ``.
fn normalize(path: &str) -> String {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// A relative path that stays inside its folder.
fn safe_relative(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn valid_version(s: &str) -> bool {
    !s.is_empty()
        && s != "latest"
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
}

fn load_one(file: &Path) -> Result<JobType, String> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| format!("{shown}: {e}"))?;
    let parsed: JobTypeFile = serde_yaml::from_str(&text).map_err(|e| format!("{shown}: {e}"))?;
    let dir = file
        .parent()
        .ok_or_else(|| format!("{shown}: no parent folder"))?
        .to_path_buf();
    if !valid_name(&parsed.name) {
        return Err(format!(
            "{shown}: name `{}` must be lowercase letters, digits, '-', '_' or '.'",
            parsed.name
        ));
    }
    if !valid_version(&parsed.version) {
        return Err(format!(
            "{shown}: version `{}` is not usable as an image tag",
            parsed.version
        ));
    }
    let base_context = parsed.base_context.clone().unwrap_or_else(|| ".".into());
    if !safe_relative(&base_context) || !dir.join(&base_context).is_dir() {
        return Err(format!(
            "{shown}: base_context `{base_context}` must be a folder inside the job type folder"
        ));
    }
    if let Some(base) = &parsed.base_dockerfile {
        let context = normalize(&base_context);
        if !context.is_empty() && !normalize(base).starts_with(&format!("{context}/")) {
            return Err(format!(
                "{shown}: base_dockerfile `{base}` must be inside base_context `{base_context}`"
            ));
        }
    }
    for (field, value) in [
        ("base_dockerfile", &parsed.base_dockerfile),
        ("template", &parsed.template),
    ] {
        if let Some(rel) = value {
            if !safe_relative(rel) {
                return Err(format!(
                    "{shown}: {field} `{rel}` must be a relative path inside the job type folder"
                ));
            }
            if !dir.join(rel).is_file() {
                return Err(format!("{shown}: {field} `{rel}` does not exist"));
            }
        }
    }
    Ok(JobType {
        name: parsed.name,
        version: parsed.version,
        dir,
        base_dockerfile: parsed.base_dockerfile,
        base_context,
        template: parsed.template,
        base_build_args: parsed.base_build_args,
        template_build_args: parsed.template_build_args,
        user_build_args: parsed.user_build_args,
    })
}

fn find_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let is_dir = file_type.is_dir() || (file_type.is_symlink() && path.is_dir());
        if is_dir && depth < MAX_DEPTH && !entry.file_name().to_string_lossy().starts_with('.') {
            let candidate = path.join(JOB_TYPE_FILE);
            if candidate.is_file() {
                out.push(candidate);
            } else {
                find_files(&path, depth + 1, out);
            }
        }
    }
}

/// Ordering of versions for `latest`: SemVer first (by SemVer rules), then anything else by text.
fn version_rank(v: &str) -> (bool, Option<SemVer>, String) {
    match SemVer::parse(v) {
        Ok(s) => (true, Some(s), v.to_string()),
        Err(_) => (false, None, v.to_string()),
    }
}

impl JobTypeCatalog {
    /// Loads every job type under `dir`. A missing folder gives an empty catalog with a problem.
    pub fn load(dir: &Path) -> JobTypeCatalog {
        let mut catalog = JobTypeCatalog::default();
        if !dir.is_dir() {
            catalog
                .problems
                .push(format!("job types folder {} does not exist", dir.display()));
            return catalog;
        }
        let mut files = Vec::new();
        find_files(dir, 1, &mut files);
        for file in files {
            match load_one(&file) {
                Ok(jt) => {
                    let key = jt.key();
                    if let Some(existing) = catalog.types.get(&key) {
                        catalog.problems.push(format!(
                            "job type {key} is defined twice ({} and {}); keeping the first",
                            existing.dir.display(),
                            jt.dir.display()
                        ));
                    } else {
                        catalog.types.insert(key, jt);
                    }
                }
                Err(problem) => catalog.problems.push(problem),
            }
        }
        catalog
    }

    /// A catalog from already-built job types (tests).
    pub fn from_types(types: impl IntoIterator<Item = JobType>) -> JobTypeCatalog {
        JobTypeCatalog {
            types: types.into_iter().map(|t| (t.key(), t)).collect(),
            problems: Vec::new(),
        }
    }

    /// Every buildable `lang` value, sorted: `name:version` plus a `name:latest` alias per family.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.types.keys().cloned().collect();
        let families: std::collections::BTreeSet<&str> =
            self.types.values().map(|t| t.name.as_str()).collect();
        names.extend(families.into_iter().map(|f| format!("{f}:latest")));
        names.sort();
        names
    }

    /// The job type of a manifest `lang` (`python3:1.0.0`, `python3:latest`; a bare `python3`
    /// means latest).
    pub fn resolve(&self, lang: &str) -> Result<&JobType, String> {
        let lang = lang.trim();
        let (name, version) = lang.split_once(':').unwrap_or((lang, "latest"));
        let found = if version == "latest" {
            self.types
                .values()
                .filter(|t| t.name == name)
                .max_by(|a, b| version_rank(&a.version).cmp(&version_rank(&b.version)))
        } else {
            self.types.get(&format!("{name}:{version}"))
        };
        found.ok_or_else(|| {
            format!(
                "language {lang} is not supported, supported are: [{}]",
                self.names().join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn fixture() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for v in ["1.2.0", "1.10.0", "1.9.9", "2.0.0-rc1"] {
            write(
                d,
                &format!("python3-{v}/job-type.yaml"),
                &format!("name: python3\nversion: {v}\nbase_dockerfile: base.Dockerfile\ntemplate: fatman.Dockerfile\ndescription: ignored\n"),
            );
            write(d, &format!("python3-{v}/base.Dockerfile"), "FROM scratch\n");
            write(
                d,
                &format!("python3-{v}/fatman.Dockerfile"),
                "FROM {{ base_image }}\n",
            );
        }
        write(
            d,
            "docker-http/job-type.yaml",
            "name: docker-http\nversion: 1.0.0\n",
        );
        write(
            d,
            "golang/1.0.0/job-type.yaml",
            "name: golang\nversion: 1.0.0\ntemplate: t\n",
        );
        write(d, "golang/1.0.0/t", "FROM x\n");
        write(d, "broken/job-type.yaml", "name: [not, a, string]\n");
        write(
            d,
            "escaping/job-type.yaml",
            "name: esc\nversion: 1.0.0\ntemplate: ../x\n",
        );
        write(
            d,
            "missing/job-type.yaml",
            "name: miss\nversion: 1.0.0\ntemplate: nope.tpl\n",
        );
        write(d, "not-a-job-type/README.md", "hello\n");
        tmp
    }

    #[test]
    fn loads_and_lists_with_latest_aliases() {
        let tmp = fixture();
        let catalog = JobTypeCatalog::load(tmp.path());
        assert_eq!(
            catalog.names(),
            vec![
                "docker-http:1.0.0",
                "docker-http:latest",
                "golang:1.0.0",
                "golang:latest",
                "python3:1.10.0",
                "python3:1.2.0",
                "python3:1.9.9",
                "python3:2.0.0-rc1",
                "python3:latest",
            ]
        );
        assert_eq!(catalog.problems.len(), 3, "{:?}", catalog.problems);
        assert!(catalog
            .problems
            .iter()
            .any(|p| p.contains("inside the job type folder")));
        assert!(catalog
            .problems
            .iter()
            .any(|p| p.contains("does not exist")));
    }

    #[test]
    fn latest_is_the_highest_semver() {
        let tmp = fixture();
        let catalog = JobTypeCatalog::load(tmp.path());
        // A version without label ranks above the same numbers with one, but 2.0.0-rc1 > 1.10.0.
        assert_eq!(
            catalog.resolve("python3:latest").unwrap().version,
            "2.0.0-rc1"
        );
        assert_eq!(catalog.resolve("python3").unwrap().version, "2.0.0-rc1");
        assert_eq!(catalog.resolve("python3:1.9.9").unwrap().version, "1.9.9");
        let dh = catalog.resolve("docker-http:latest").unwrap();
        assert!(dh.template.is_none() && dh.base_dockerfile.is_none());
        assert_eq!(
            catalog
                .resolve("golang:1.0.0")
                .unwrap()
                .template_path()
                .unwrap(),
            tmp.path().join("golang/1.0.0/t")
        );
    }

    #[test]
    fn unknown_language_lists_the_supported_ones() {
        let catalog =
            JobTypeCatalog::from_types([JobType::new("python3", "1.0.0", PathBuf::from("/x"))]);
        assert_eq!(
            catalog.resolve("cobol:latest").unwrap_err(),
            "language cobol:latest is not supported, supported are: [python3:1.0.0, python3:latest]"
        );
        assert!(catalog.resolve("python3:9.9.9").is_err());
    }

    #[test]
    fn base_context_and_build_args() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        write(d, "a/job-type.yaml", "name: a\nversion: 1.0.0\nbase_dockerfile: ctx/base.Dockerfile\nbase_context: ./ctx\nbase_build_args: [PYTHON_BASE_IMAGE]\nport: 7000\n");
        write(d, "a/ctx/base.Dockerfile", "FROM x\n");
        write(
            d,
            "b/job-type.yaml",
            "name: b\nversion: 1.0.0\nbase_dockerfile: base.Dockerfile\nbase_context: ctx\n",
        );
        write(d, "b/base.Dockerfile", "FROM x\n");
        write(d, "b/ctx/x", "x\n");
        write(
            d,
            "c/job-type.yaml",
            "name: c\nversion: 1.0.0\nbase_dockerfile: base.Dockerfile\ntemplate: null\n",
        );
        write(d, "c/base.Dockerfile", "FROM x\n");
        let catalog = JobTypeCatalog::load(d);
        let a = catalog.resolve("a:1.0.0").unwrap();
        assert_eq!(
            a.base_build(),
            Some((d.join("a").join("ctx"), "base.Dockerfile".to_string()))
        );
        assert_eq!(
            a.base_build_args.as_deref(),
            Some(&["PYTHON_BASE_IMAGE".to_string()][..])
        );
        assert!(
            catalog.resolve("b:latest").is_err(),
            "{:?}",
            catalog.problems
        );
        let c = catalog.resolve("c:latest").unwrap();
        assert_eq!(
            c.base_build(),
            Some((d.join("c").join(""), "base.Dockerfile".to_string()))
        );
        assert!(c.template.is_none() && c.user_build_args.is_none());
    }

    #[test]
    fn missing_folder_is_a_problem_not_a_panic() {
        let catalog = JobTypeCatalog::load(Path::new("/definitely/not/here"));
        assert!(catalog.names().is_empty());
        assert_eq!(catalog.problems.len(), 1);
    }
}
