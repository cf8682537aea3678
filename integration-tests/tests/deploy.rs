//! Deploying fatmen end to end: lifecycle + image-builder binaries, the Docker engine, the local
//! registry and the debootstrapped base images.

mod harness;

use harness::*;
use reqwest::Method;
use serde_json::{json, Value};

async fn fatman(p: &Platform, name: &str, version: &str) -> Value {
    let (status, list) = p.call(Method::GET, "/api/v1/fatman", None).await;
    assert_eq!(status, 200);
    list.as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name && f["version"] == version)
        .cloned()
        .unwrap_or_else(|| panic!("{name} {version} not listed: {list}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adder_from_local_context_and_from_git() {
    if !deploy_prerequisites() {
        return;
    }
    let p = Platform::start().await;
    let name = unique("adder");
    let sample = workspace_root().join("sample/python-class");

    // 1. Local build context.
    let d = p
        .deploy(json!({"manifest": sample_manifest("python-class", &name, "0.0.1"), "build_context": build_context(&sample)}))
        .await;
    assert_eq!(d["status"], "done", "{d}");
    assert_eq!(d["fatman"]["status"], "running", "{d}");
    let f = fatman(&p, &name, "0.0.1").await;
    let internal = f["internal_name"].as_str().unwrap().to_string();
    assert_eq!(
        perform(&internal, json!({"numbers": [40, 2]})).await,
        (200, json!(42))
    );

    let (status, logs) = p
        .call(
            Method::GET,
            &format!("/api/v1/fatman/{name}/0.0.1/logs?tail=50"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        !logs["logs"].as_str().unwrap().is_empty(),
        "runtime logs: {logs}"
    );
    let (status, build_logs) = p
        .call(
            Method::GET,
            &format!("/api/v1/fatman/{name}/latest/build-logs"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert!(
        build_logs["logs"].as_str().unwrap().lines().count() > 3,
        "build logs: {build_logs}"
    );

    // Same version again without force: refused, and the running one is untouched.
    let again = p
        .deploy(json!({"manifest": sample_manifest("python-class", &name, "0.0.1"), "build_context": build_context(&sample)}))
        .await;
    assert_eq!(again["status"], "failed");
    assert!(
        again["error"]
            .as_str()
            .unwrap()
            .contains("already deployed"),
        "{again}"
    );
    assert_eq!(
        perform(&internal, json!({"numbers": [1, 2]})).await,
        (200, json!(3))
    );

    // 2. From a git repository (a local repo the builder may clone by file://).
    let repo = local_git_repo(&p, &sample);
    let mut manifest = sample_manifest("python-class", &name, "0.0.2");
    manifest["git"] =
        json!({"remote": format!("file://{}", repo.display()), "branch": "main", "directory": "."});
    let d = p.deploy(json!({ "manifest": manifest })).await;
    assert_eq!(d["status"], "done", "{d}");
    let internal2 = fatman(&p, &name, "0.0.2").await["internal_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        perform(&internal2, json!({"numbers": [2, 3]})).await,
        (200, json!(5))
    );

    // 3. Redeploy (rebuild from git + provision) and reprovision (same image).
    let (status, body) = p
        .call(
            Method::POST,
            &format!("/api/v1/fatman/{name}/0.0.2/redeploy"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let internal2 = fatman(&p, &name, "0.0.2").await["internal_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        perform(&internal2, json!({"numbers": [3, 4]})).await,
        (200, json!(7))
    );
    let (status, body) = p
        .call(
            Method::POST,
            &format!("/api/v1/fatman/{name}/0.0.1/reprovision"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let internal = fatman(&p, &name, "0.0.1").await["internal_name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        perform(&internal, json!({"numbers": [5, 5]})).await,
        (200, json!(10))
    );
    let (_, events) = p
        .call(
            Method::GET,
            &format!("/api/v1/audit/events/fatman/{name}"),
            None,
        )
        .await;
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"fatman_redeployed") && kinds.contains(&"fatman_deployed"),
        "{kinds:?}"
    );

    // 4. Delete: the containers go away.
    assert_eq!(containers_named(&format!("fatman-{name}-")).len(), 2);
    for v in ["0.0.1", "0.0.2"] {
        let (status, body) = p
            .call(Method::DELETE, &format!("/api/v1/fatman/{name}/{v}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(containers_named(&format!("fatman-{name}-")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_build_and_crash_at_start_explain_themselves() {
    if !deploy_prerequisites() {
        return;
    }
    let p = Platform::start().await;

    let name = unique("badreq");
    let dir = workspace_root().join("sample/python-bad-requirements");
    let d = p
        .deploy(json!({"manifest": sample_manifest("python-bad-requirements", &name, "0.0.1"), "build_context": build_context(&dir)}))
        .await;
    assert_eq!(d["status"], "failed", "{d}");
    assert!(
        d["error"]
            .as_str()
            .unwrap()
            .contains("building image failed"),
        "{d}"
    );
    let (status, logs) = p
        .call(
            Method::GET,
            &format!("/api/v1/fatman/{name}/0.0.1/build-logs"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{logs}");
    assert!(
        logs["logs"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("pip"),
        "the whole log is kept: {logs}"
    );

    let name = unique("crash");
    let dir = workspace_root().join("sample/python-crash-at-start");
    let d = p
        .deploy(json!({"manifest": sample_manifest("python-crash-at-start", &name, "0.0.1"), "build_context": build_context(&dir)}))
        .await;
    assert_eq!(d["status"], "failed", "{d}");
    let error = d["error"].as_str().unwrap();
    assert!(
        error.contains("crashed at start") || error.contains("did not start"),
        "{error}"
    );
    assert!(
        containers_named(&format!("fatman-{name}-")).is_empty(),
        "a crashed fatman is cleaned up"
    );
    let (status, _) = p
        .call(Method::GET, &format!("/api/v1/fatman/{name}/0.0.1"), None)
        .await;
    assert_eq!(status, 404, "a failed deployment registers no fatman");

    // Bad manifests are refused before any work starts.
    let (status, body) = p
        .call(Method::POST, "/api/v1/deploy", Some(json!({"manifest": {"name": "x", "owner_email": "a@b.c", "git": {"remote": "r"}, "replica": 2}})))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("replica"),
        "{body}"
    );
    let (status, body) = p
        .call(Method::POST, "/api/v1/deploy", Some(json!({"manifest": {"name": "Bad_Name", "owner_email": "a@b.c", "git": {"remote": "r"}}})))
        .await;
    assert_eq!(status, 422, "{body}");
}
