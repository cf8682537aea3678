//! Lifecycle's application layer stays free of its adapters (docs/architecture.md, "Lifecycle's
//! layers"): nothing under `src/app/` names actix or tonic, and the deploy steps take no actix
//! state.

use std::path::Path;

fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src/app exists") {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text));
        }
    }
    out
}

#[test]
fn the_application_layer_names_no_adapter_framework() {
    let app = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app");
    let files = sources(&app);
    assert!(files.len() >= 8, "one module per concept: {files:?}");
    let mut found = Vec::new();
    for (path, text) in &files {
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if ["actix_web", "actix_rt", "tonic", "web::Data", "web::block"]
                .iter()
                .any(|banned| code.contains(banned))
            {
                found.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "adapter code in the application layer:\n{}",
        found.join("\n")
    );
}

#[test]
fn deploy_steps_take_no_actix_state() {
    let deploy = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/deploy.rs");
    let text = std::fs::read_to_string(deploy).unwrap();
    for banned in ["actix_web", "web::Data", "web::block"] {
        assert!(!text.contains(banned), "deploy.rs uses {banned}");
    }
}
