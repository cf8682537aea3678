//! Builds against the real Docker engine, through the real gRPC server.
//!
//! Nothing can be pulled: fixture images are made from busybox-static (`FROM scratch`). Without
//! Docker (or busybox) the tests are skipped with a printed reason, or fail under `CI=true`.
//! Images are pushed only when a registry answers on 127.0.0.1:5000.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use image_builder::docker::DockerEngine;
use racetrack_proto::image_builder::build_status::State;
use racetrack_proto::image_builder::{GetBuildRequest, GitCredentials};

fn python_like_manifest(name: &str, family: &str) -> String {
    format!(
        "name: {name}\nowner_email: sample@example.com\nlang: {family}:latest\nversion: 0.0.1\n\
git:\n  remote: https://github.com/TheRacetrack/racetrack\n  directory: sample/{name}\n\
python:\n  requirements_path: requirements.txt\n  entrypoint_path: main.txt\n  entrypoint_class: Main\n\
build_env:\n  GREETING: 'hello \"world\" $HOME \\x'\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploaded_context_builds_and_reuses_the_layer_cache() {
    if prerequisites().await.is_none() {
        return;
    }
    let family = unique("ibtest");
    let server = Server::start(&family, &[]).await;
    let mut client = server.client().await;
    let mut images = Images::default();
    let name = unique("cache");
    let manifest = python_like_manifest(&name, &family);
    // A secret with characters that would break a naively quoted ENV line.
    let secret = "tok-S3CR3T \"q\" $HOME \\x";

    // 1. First build: base image built, requirements installed.
    images.add(server.base_image(&family));
    let tag1 = "2024-01-01T000001";
    images.add(server.entry_image(&name, tag1));
    let context = tar_gz(&[
        ("fatman.yaml", manifest.as_bytes()),
        ("requirements.txt", b"numpy==1.0\n"),
        ("main.txt", b"version one\n"),
    ]);
    let mut req = request(&format!("{name}-1"), &manifest, context, tag1);
    req.secret_build_env = HashMap::from([("API_TOKEN".to_string(), secret.to_string())]);
    let started = Instant::now();
    let first = build(&mut client, req).await;
    let first_time = started.elapsed();
    if std::env::var_os("IB_TEST_VERBOSE").is_some() {
        eprintln!("{}", first.log());
    }
    assert!(
        first.result().success,
        "{}\n{}",
        first.result().error,
        first.log()
    );
    assert_eq!(
        first.result().image_names,
        vec![server.entry_image(&name, tag1)]
    );
    let mut expected_phases = vec![
        "fetching the source code",
        "building base image",
        "building image",
    ];
    if server.push {
        expected_phases.push("pushing image");
    }
    assert_eq!(first.phases, expected_phases);
    let log = first.log();
    assert!(log.contains("installing requirements now"), "{log}");
    assert!(log.contains("env check: [hello \"world\" $HOME"), "{log}");
    // The secret reaches the requirements stage (masked in the log), not the image's own stage.
    assert!(log.contains("secret check: [***]"), "{log}");
    assert!(log.contains("$HOME \\x] []"), "{log}");
    assert!(
        !log.contains("S3CR3T"),
        "the secret leaked into the log:\n{log}"
    );

    let docker = DockerEngine::new();
    let env = docker
        .image_env(&server.entry_image(&name, tag1))
        .await
        .unwrap();
    // The secret build value is not in the image config (it used to be set there as ENV).
    assert!(
        !env.iter()
            .any(|e| e.starts_with("API_TOKEN=") || e.contains("S3CR3T")),
        "{env:?}"
    );
    assert!(
        env.contains(&"GREETING=hello \"world\" $HOME \\x".to_string()),
        "{env:?}"
    );
    assert!(env.contains(&format!("FATMAN_NAME={name}")), "{env:?}");
    assert!(env.contains(&"GIT_VERSION=tar".to_string()), "{env:?}");

    // The log file has the whole log, without the secret; GetBuild and StreamBuildLogs agree.
    let file = std::fs::read_to_string(server.log_dir().join(format!("{name}-1.log"))).unwrap();
    assert!(file.contains("installing requirements now") && !file.contains("S3CR3T"));
    let status = client
        .get_build(GetBuildRequest {
            deployment_id: format!("{name}-1"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state, State::Succeeded as i32);
    assert!(status.result.unwrap().success);
    assert_eq!(status.logs.lines().count(), first.lines.len());
    let mut replay = client
        .stream_build_logs(GetBuildRequest {
            deployment_id: format!("{name}-1"),
        })
        .await
        .unwrap()
        .into_inner();
    let mut replayed = 0;
    while let Some(_line) = replay.message().await.unwrap() {
        replayed += 1;
    }
    assert_eq!(replayed, first.lines.len());

    // 2. Only the code changes: base image reused, requirements step from the layer cache.
    let tag2 = "2024-01-01T000002";
    images.add(server.entry_image(&name, tag2));
    let context = tar_gz(&[
        ("fatman.yaml", manifest.as_bytes()),
        ("requirements.txt", b"numpy==1.0\n"),
        ("main.txt", b"version two\n"),
    ]);
    let mut req = request(&format!("{name}-2"), &manifest, context, tag2);
    req.secret_build_env = HashMap::from([("API_TOKEN".to_string(), secret.to_string())]);
    let started = Instant::now();
    let second = build(&mut client, req).await;
    let second_time = started.elapsed();
    if std::env::var_os("IB_TEST_VERBOSE").is_some() {
        eprintln!("{}", second.log());
    }
    assert!(
        second.result().success,
        "{}\n{}",
        second.result().error,
        second.log()
    );
    assert!(
        !second.phases.iter().any(|p| p == "building base image"),
        "{:?}",
        second.phases
    );
    assert!(second.log().contains("is up to date"));
    let after_pip = second
        .line_after("installing requirements now")
        .unwrap_or_default();
    assert!(
        after_pip.contains("Using cache"),
        "requirements were installed again:\n{}",
        second.log()
    );
    assert!(
        !second
            .lines
            .iter()
            .any(|l| l.trim() == "installing requirements now"),
        "the requirements step ran again"
    );
    let after_copy = second.line_after("COPY . /src/fatman/").unwrap_or_default();
    assert!(
        !after_copy.contains("Using cache"),
        "changed code must be copied again"
    );

    // 3. Changed requirements: that step runs again (the cache is not blindly reused).
    let tag3 = "2024-01-01T000003";
    images.add(server.entry_image(&name, tag3));
    let context = tar_gz(&[
        ("fatman.yaml", manifest.as_bytes()),
        ("requirements.txt", b"numpy==2.0\n"),
        ("main.txt", b"version two\n"),
    ]);
    let started = Instant::now();
    let third = build(
        &mut client,
        request(&format!("{name}-3"), &manifest, context, tag3),
    )
    .await;
    assert!(
        third.result().success,
        "{}\n{}",
        third.result().error,
        third.log()
    );
    assert!(third
        .lines
        .iter()
        .any(|l| l.trim() == "installing requirements now"));
    let third_time = started.elapsed();
    eprintln!(
        "timings: first build {:.1} s (base image + requirements), code-only rebuild {:.1} s, \
         requirements rebuild {:.1} s",
        first_time.as_secs_f64(),
        second_time.as_secs_f64(),
        third_time.as_secs_f64()
    );
    assert!(
        second_time < first_time,
        "a cached rebuild should be faster"
    );
    for tag in [tag1, tag2, tag3] {
        assert!(docker
            .image_exists(&server.entry_image(&name, tag))
            .await
            .unwrap());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_results_with_the_phase_and_the_log() {
    if prerequisites().await.is_none() {
        return;
    }
    let family = unique("ibtest");
    let server = Server::start(&family, &[]).await;
    let mut client = server.client().await;
    let mut images = Images::default();
    let base = format!("racetrack-ib-test-base:{}", unique("t"));
    busybox_image(&base, &mut images).await;
    let name = unique("failing");
    let manifest = format!(
        "name: {name}\nowner_email: sample@example.com\nlang: {family}-user:latest\n\
git:\n  remote: https://github.com/x/y\ndocker:\n  dockerfile_path: docker/Dockerfile\n"
    );

    // A RUN step exiting non-zero.
    let dockerfile = format!("FROM {base}\nRUN echo \"about to fail: marker-7f3\" && exit 3\n");
    let context = tar_gz(&[
        ("fatman.yaml", manifest.as_bytes()),
        ("docker/Dockerfile", dockerfile.as_bytes()),
    ]);
    let id = format!("{name}-run");
    let out = build(
        &mut client,
        request(&id, &manifest, context, "2024-01-01T000000"),
    )
    .await;
    let result = out.result();
    assert!(!result.success);
    assert!(
        result.error.starts_with("building image: "),
        "{}",
        result.error
    );
    assert!(
        result.error.contains("returned a non-zero code: 3"),
        "{}",
        result.error
    );
    assert!(result.image_names.is_empty());
    assert!(
        out.log().contains("about to fail: marker-7f3"),
        "{}",
        out.log()
    );
    let file = std::fs::read_to_string(server.log_dir().join(format!("{id}.log"))).unwrap();
    assert!(file.contains("about to fail: marker-7f3"));
    assert!(file.contains("build failed"));
    let status = client
        .get_build(GetBuildRequest {
            deployment_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.state, State::Failed as i32);
    assert_eq!(status.phase, "building image");
    assert!(status.logs.contains("marker-7f3"));
    // The workspace is gone, the log stays.
    assert!(!server.dirs.path().join("ws").join(&id).exists());

    // The manifest names a Dockerfile that is not there.
    let context = tar_gz(&[("fatman.yaml", manifest.as_bytes())]);
    let out = build(
        &mut client,
        request(&format!("{name}-nodf"), &manifest, context, "t1"),
    )
    .await;
    assert_eq!(
        out.result().error,
        "building image: docker.dockerfile_path: `docker/Dockerfile` does not exist"
    );

    // A Dockerfile syntax error.
    let context = tar_gz(&[("docker/Dockerfile", b"FROM scratch\nNOTANINSTRUCTION x\n")]);
    let out = build(
        &mut client,
        request(&format!("{name}-syntax"), &manifest, context, "t1"),
    )
    .await;
    assert!(
        out.result().error.starts_with("building image: "),
        "{}",
        out.result().error
    );
    assert!(
        out.result()
            .error
            .to_lowercase()
            .contains("unknown instruction"),
        "{}",
        out.result().error
    );

    // An unknown job type, before anything is fetched.
    let bad_lang = manifest.replace(&format!("{family}-user:latest"), "cobol:latest");
    let out = build(
        &mut client,
        request(&format!("{name}-lang"), &bad_lang, Vec::new(), "t1"),
    )
    .await;
    assert_eq!(
        out.result().error,
        format!(
            "checking the request: language cobol:latest is not supported, supported are: [{family}-user:1.0.0, {family}-user:latest, {family}:1.0.0, {family}:latest]"
        )
    );
    assert!(out.phases.is_empty());

    // A hostile build context.
    let mut hostile = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_entry_type(tar::EntryType::Regular);
    h.as_old_mut().name[..10].copy_from_slice(b"../evil.sh");
    h.set_cksum();
    hostile.append(&h, &b"x"[..]).unwrap();
    let out = build(
        &mut client,
        request(
            &format!("{name}-evil"),
            &manifest,
            hostile.into_inner().unwrap(),
            "t1",
        ),
    )
    .await;
    assert_eq!(
        out.result().error,
        "fetching the source code: the build context contains a path with '..': ../evil.sh"
    );
    assert!(!server.dirs.path().join("ws").join("evil.sh").exists());

    // An invalid manifest (Lifecycle validates it, but the builder checks what it converts).
    let mut invalid: racetrack_proto::image_builder::Manifest =
        (&racetrack_model::parse_manifest_yaml(&manifest).unwrap()).into();
    invalid.resources = Some(racetrack_proto::image_builder::ResourcesManifest {
        memory_max: Some("lots".into()),
        ..Default::default()
    });
    let out = build(
        &mut client,
        request_with(&format!("{name}-yaml"), invalid, Vec::new(), "t1"),
    )
    .await;
    assert!(
        out.result()
            .error
            .starts_with("checking the request: invalid manifest"),
        "{}",
        out.result().error
    );
}

fn git(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_from_a_git_repository() {
    if prerequisites().await.is_none() {
        return;
    }
    let family = unique("ibtest");
    let server = Server::start(&family, &[]).await;
    let mut client = server.client().await;
    let mut images = Images::default();
    let base = format!("racetrack-ib-test-base:{}", unique("t"));
    busybox_image(&base, &mut images).await;

    let repo = tempfile::tempdir().unwrap();
    let name = unique("gitapp");
    let manifest = format!(
        "name: {name}\nowner_email: sample@example.com\nlang: {family}-user:latest\n\
git:\n  remote: file://{}\n  branch: release\n  directory: sample/app\ndocker:\n  dockerfile_path: Dockerfile\n",
        repo.path().display()
    );
    git(repo.path(), &["init", "-q"]);
    write(repo.path(), "sample/app/fatman.yaml", manifest.as_bytes());
    write(
        repo.path(),
        "sample/app/Dockerfile",
        format!("FROM {base}\nCOPY . /app\nRUN cat /app/hello.txt\n").as_bytes(),
    );
    write(repo.path(), "sample/app/hello.txt", b"hello from main\n");
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "main"]);
    git(repo.path(), &["checkout", "-q", "-b", "release"]);
    write(repo.path(), "sample/app/hello.txt", b"hello from release\n");
    git(repo.path(), &["commit", "-q", "-am", "release"]);
    git(repo.path(), &["checkout", "-q", "main"]);

    let tag = "2024-02-02T020202";
    images.add(server.entry_image(&name, tag));
    let mut req = request(&format!("{name}-1"), &manifest, Vec::new(), tag);
    // Credentials are ignored for file:// remotes but must never show up anywhere.
    req.git_credentials = Some(GitCredentials {
        username: "bob".into(),
        password: "git-pa55word".into(),
    });
    let out = build(&mut client, req).await;
    out.expect_success();
    assert!(out.log().contains("hello from release"), "{}", out.log());
    assert!(!out.log().contains("git-pa55word"));
    let labels = DockerEngine::new()
        .image_labels(&server.entry_image(&name, tag))
        .await
        .unwrap()
        .unwrap();
    let git_version = labels
        .get("racetrack.git-version")
        .cloned()
        .unwrap_or_default();
    assert!(
        git_version.len() >= 7 && git_version != "unknown",
        "{labels:?}"
    );
    assert_eq!(labels.get("racetrack.fatman.name"), Some(&name));

    // git.directory must exist in the repository.
    let bad = manifest.replace("directory: sample/app", "directory: sample/nope");
    let out = build(
        &mut client,
        request(&format!("{name}-2"), &bad, Vec::new(), tag),
    )
    .await;
    assert_eq!(
        out.result().error,
        "fetching the source code: git.directory `sample/nope` does not exist in the repository"
    );
    // A branch that does not exist.
    let bad = manifest.replace("branch: release", "branch: nope");
    let out = build(
        &mut client,
        request(&format!("{name}-3"), &bad, Vec::new(), tag),
    )
    .await;
    assert!(
        out.result()
            .error
            .starts_with("fetching the source code: git clone failed"),
        "{}",
        out.result().error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_remotes_are_refused_unless_allowed() {
    // No Docker needed: the remote is refused while fetching.
    let family = unique("ibtest");
    let server = Server::start(&family, &[("ALLOW_FILE_GIT_REMOTES", "false")]).await;
    let mut client = server.client().await;
    let manifest = format!(
        "name: x\nowner_email: a@b.cd\nlang: {family}-user:latest\ngit:\n  remote: file:///etc\ndocker:\n  dockerfile_path: Dockerfile\n"
    );
    let out = build(
        &mut client,
        request("file-remote", &manifest, Vec::new(), "t"),
    )
    .await;
    assert_eq!(
        out.result().error,
        "fetching the source code: file:// git remotes are not allowed (ALLOW_FILE_GIT_REMOTES is off)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_survive_a_disconnected_client_and_queue_for_a_slot() {
    if prerequisites().await.is_none() {
        return;
    }
    let family = unique("ibtest");
    let server = Server::start(&family, &[("MAX_CONCURRENT_BUILDS", "1")]).await;
    let mut images = Images::default();
    let base = format!("racetrack-ib-test-base:{}", unique("t"));
    busybox_image(&base, &mut images).await;
    let manifest = |name: &str| {
        format!(
            "name: {name}\nowner_email: sample@example.com\nlang: {family}-user:latest\n\
git:\n  remote: https://github.com/x/y\ndocker:\n  dockerfile_path: Dockerfile\n"
        )
    };
    let slow = unique("slow");
    let queued = unique("queued");
    let tag = "2024-03-03T030303";
    images.add(server.entry_image(&slow, tag));
    images.add(server.entry_image(&queued, tag));
    let slow_df = format!("FROM {base}\nRUN echo {slow} && sleep 3 && echo slow-step-done\n");
    let queued_df = format!("FROM {base}\nRUN echo {queued}\n");

    // Start the slow build, read until it is running, hang up.
    let mut client = server.client().await;
    let mut stream = client
        .build(request(
            &slow,
            &manifest(&slow),
            tar_gz(&[("Dockerfile", slow_df.as_bytes())]),
            tag,
        ))
        .await
        .unwrap()
        .into_inner();
    // Its first phase means it holds the only slot.
    loop {
        let event = stream
            .message()
            .await
            .unwrap()
            .expect("a phase before the end");
        if let Some(racetrack_proto::image_builder::build_event::Event::Phase(p)) = event.event {
            assert_eq!(p, "fetching the source code");
            break;
        }
    }
    drop(stream);
    drop(client);

    // The next build waits for the only slot.
    let mut client = server.client().await;
    let queued_out = build(
        &mut client,
        request(
            &queued,
            &manifest(&queued),
            tar_gz(&[("Dockerfile", queued_df.as_bytes())]),
            tag,
        ),
    )
    .await;
    assert!(queued_out.result().success, "{}", queued_out.log());
    assert_eq!(
        queued_out.phases.first().map(String::as_str),
        Some("waiting for a build slot")
    );

    // The abandoned build finished anyway; a client can read all of it.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = client
            .get_build(GetBuildRequest {
                deployment_id: slow.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if status.state != State::Running as i32 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(status.state, State::Succeeded as i32, "{}", status.logs);
    assert!(status.logs.contains("slow-step-done"));
    let mut lines = client
        .stream_build_logs(GetBuildRequest {
            deployment_id: slow.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut all = Vec::new();
    while let Some(l) = lines.message().await.unwrap() {
        all.push(l.line);
    }
    assert!(all.iter().any(|l| l == "slow-step-done"));
    assert!(DockerEngine::new()
        .image_exists(&server.entry_image(&slow, tag))
        .await
        .unwrap());

    // Metrics saw both builds.
    let metrics = server.app.telemetry.render();
    assert!(metrics.contains("images_built 2"), "{metrics}");
    assert!(
        metrics.contains(&format!(
            "image_building_requests{{fatman_name=\"{slow}\",fatman_version=\"0.0.1\"}} 1"
        )),
        "{metrics}"
    );
    assert!(metrics.contains("active_building_tasks 0"));
}

/// A gzipped tar of a folder's files (like the CLI's `--build-context local`).
fn tar_dir(dir: &std::path::Path) -> Vec<u8> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            files.push((
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    tar_gz(&refs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_repository_python3_job_type_builds_the_samples() {
    // Contract with job-types/python3 and sample/: needs the local Debian-based Python image
    // made by scripts/base-images.sh (nothing can be pulled); skipped without it.
    // Slow (minutes: a real Python base image, pip against PyPI), so opt-in: IB_TEST_SAMPLES=1.
    const PYTHON_BASE: &str = "racetrack/python-base:bookworm";
    if std::env::var_os("IB_TEST_SAMPLES").is_none() {
        eprintln!("SKIPPED: set IB_TEST_SAMPLES=1 to build the repository's samples with job-types/python3");
        return;
    }
    if prerequisites().await.is_none() {
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let (job_types, samples) = (root.join("job-types"), root.join("sample"));
    let docker = DockerEngine::new();
    if !job_types.join("python3/job-type.yaml").is_file() || !samples.join("python-class").is_dir()
    {
        eprintln!("SKIPPED: job-types/python3 or sample/python-class is missing");
        return;
    }
    if !docker.image_exists(PYTHON_BASE).await.unwrap() {
        eprintln!("SKIPPED: image {PYTHON_BASE} is missing (scripts/base-images.sh makes it)");
        return;
    }
    let mut env = vec![
        ("JOB_TYPES_DIR", job_types.display().to_string()),
        ("PYTHON_BASE_IMAGE", PYTHON_BASE.to_string()),
        ("BASE_IMAGE", PYTHON_BASE.to_string()),
    ];
    // Builds trust the host's CA bundle (a TLS-intercepting proxy may sit in front of PyPI).
    if std::path::Path::new("/etc/ssl/certs/ca-certificates.crt").is_file() {
        env.push((
            "EXTRA_CA_CERTS",
            "/etc/ssl/certs/ca-certificates.crt".to_string(),
        ));
    }
    let env_refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start("unused", &env_refs).await;
    let mut client = server.client().await;
    let mut images = Images::default();
    let catalog = server.app.builder.job_types();
    let python = catalog.resolve("python3:latest").unwrap().clone();
    images.add(format!(
        "{REGISTRY}/{NAMESPACE}/fatman-base/python3:{}",
        python.version
    ));

    for (sample, check) in [
        ("python-class", None),
        (
            "python-pip-requirements",
            Some("Successfully installed six"),
        ),
        ("python-docker-http", None),
    ] {
        let dir = samples.join(sample);
        if !dir.is_dir() {
            continue;
        }
        let manifest = std::fs::read_to_string(dir.join("fatman.yaml")).unwrap();
        let name = racetrack_model::parse_manifest_yaml(&manifest)
            .unwrap()
            .name;
        let tag = "2024-05-05T050505";
        images.add(server.entry_image(&name, tag));
        let started = Instant::now();
        let out = build(
            &mut client,
            request(&unique(sample), &manifest, tar_dir(&dir), tag),
        )
        .await;
        eprintln!(
            "sample {sample}: {:.1} s, phases {:?}",
            started.elapsed().as_secs_f64(),
            out.phases
        );
        assert!(
            out.result().success,
            "{sample}: {}\n{}",
            out.result().error,
            out.log()
        );
        if let Some(check) = check {
            assert!(out.log().contains(check), "{sample}:\n{}", out.log());
        }
        let env = docker
            .image_env(&server.entry_image(&name, tag))
            .await
            .unwrap();
        if sample != "python-docker-http" {
            assert!(env.contains(&format!("FATMAN_NAME={name}")), "{env:?}");
        }
    }
}
