//! Attacks of issue 10 on the build path, against the real Docker engine and gRPC server:
//! a fatman's Dockerfile reaching the platform from a `RUN` step (item 6), and secret build values
//! left in the image (item 7). Skipped without Docker/busybox, failed instead under `CI=true`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::Command;

use common::*;
use racetrack_infra::testing::http_ok_listener;
use racetrack_infra::{DockerTarget, DockerTargetConfig, FatmanSpec, InfrastructureTarget};
use racetrack_proto::image_builder::{GetBuildRequest, ListJobTypesRequest};

/// The build network with its firewall rule, made by the project's script (needs root).
fn build_network_ready() -> bool {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/build-network.sh"
    );
    let out = Command::new("bash").arg(script).output();
    match out {
        Ok(out) if out.status.success() => true,
        other => {
            let why = format!("scripts/build-network.sh failed: {other:?}");
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{why}");
            }
            eprintln!("SKIPPED: {why}");
            false
        }
    }
}

fn user_manifest(name: &str, family: &str) -> String {
    format!(
        "name: {name}\nowner_email: a@b.cd\nlang: {family}-user:latest\nversion: 0.0.1\n\
git:\n  remote: https://h/r\ndocker:\n  dockerfile_path: Dockerfile\n"
    )
}

/// Item 6: a `RUN` step of the user's Dockerfile tries the host's loopback (a service bound to
/// 127.0.0.1, one bound to all addresses, the registry) and the host's other addresses (the build
/// bridge's gateway, the host's outward address) where platform services bound to 0.0.0.0
/// listen. None accepts the connection; the internet (a Debian mirror) still does, so the probe
/// is not vacuous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_steps_cannot_reach_the_platform() {
    if prerequisites().await.is_none() || !build_network_ready() {
        return;
    }
    let (server, mut client, mut images, base) = server_with_busybox("ibnet").await;
    let family = server.family.clone();

    let loopback_port = http_ok_listener("127.0.0.1:0").await;
    let any_port = http_ok_listener("0.0.0.0:0").await;
    // The host's own address towards the outside (a UDP "connect" sends nothing).
    let host_ip = {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.connect("192.0.2.1:9").unwrap();
        socket.local_addr().unwrap().ip()
    };
    let attacks = [
        format!("127.0.0.1:{loopback_port}"),
        format!("127.0.0.1:{any_port}"),
        format!("GATEWAY:{any_port}"),
        format!("{host_ip}:{any_port}"),
        REGISTRY.to_string(),
    ];
    let control = "deb.debian.org:80";
    let targets = attacks.join(" ") + " " + control;
    let dockerfile = format!(
        "FROM {base}\n\
RUN gw=$(ip route | awk '/default/ {{print $3}}'); \
for t in {targets}; do t=$(echo $t | sed \"s/GATEWAY/$gw/\"); h=${{t%:*}}; p=${{t##*:}}; \
a=$(printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' | nc -w 3 $h $p 2>&1); \
if [ $? -eq 0 ]; then echo \"PROBE REACHED $t\"; \
else echo \"PROBE BLOCKED $t $(echo $a | head -c 40)\"; fi; done\n"
    );
    let name = unique("probe");
    let tag = "2024-06-06T060606";
    images.add(server.entry_image(&name, tag));
    let manifest = user_manifest(&name, &family);
    let context = tar_gz(&[
        ("fatman.yaml", manifest.as_bytes()),
        ("Dockerfile", dockerfile.as_bytes()),
    ]);
    let out = build(
        &mut client,
        request(&format!("{name}-1"), &manifest, context, tag),
    )
    .await;
    let log = out.log();
    assert!(out.result().success, "{}\n{log}", out.result().error);
    let verdicts: Vec<&str> = out
        .lines
        .iter()
        .filter_map(|l| l.trim().strip_prefix("PROBE "))
        .collect();
    eprintln!("{}", verdicts.join("\n"));
    let reached: Vec<&str> = verdicts
        .iter()
        .filter_map(|v| v.strip_prefix("REACHED "))
        .collect();
    assert_eq!(reached, vec![control], "{log}");
    assert_eq!(
        verdicts.len(),
        attacks.len() + 1,
        "every target probed:\n{log}"
    );
}

/// Item 7: a secret build value and a secret runtime value appear in no layer, config or history
/// of the image, in no build log and no answer of the image builder. (The runtime value is in the
/// container's env, as `docker inspect` of the container shows: Docker keeps no secrets for plain
/// containers; see the Docker target.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_values_stay_out_of_images_logs_and_answers() {
    if prerequisites().await.is_none() {
        return;
    }
    const BUILD_SECRET: &str = "zq-build-secret-4711-xyz";
    const RUNTIME_SECRET: &str = "zq-runtime-secret-0815-xyz";
    let family = unique("ibsec");
    let server = Server::start(&family, &[]).await;
    let mut client = server.client().await;
    let mut images = Images::default();
    images.add(server.base_image(&family));
    let name = unique("secret");
    let tag = "2024-07-07T070707";
    let image = server.entry_image(&name, tag);
    images.add(&image);
    let manifest = format!(
        "name: {name}\nowner_email: a@b.cd\nlang: {family}:latest\nversion: 0.0.1\n\
git:\n  remote: https://h/r\npython:\n  requirements_path: requirements.txt\n  \
entrypoint_path: main.txt\n  entrypoint_class: Main\nbuild_env:\n  GREETING: hi\n"
    );
    let context = tar_gz(&[
        ("fatman.yaml", manifest.as_bytes()),
        ("requirements.txt", b"six\n"),
        ("main.txt", b"main\n"),
    ]);
    let id = format!("{name}-1");
    let mut req = request(&id, &manifest, context, tag);
    req.secret_build_env = HashMap::from([("API_TOKEN".to_string(), BUILD_SECRET.to_string())]);
    let out = build(&mut client, req).await;
    out.expect_success();
    // The secret did reach the step that needs it (masked in the log).
    assert!(out.log().contains("secret check: [***]"), "{}", out.log());

    let mut answers = vec![format!("{:?}", out.result()), out.log()];
    answers.extend(out.phases.iter().cloned());
    let status = client
        .get_build(GetBuildRequest {
            deployment_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    answers.push(format!("{status:?}"));
    let mut lines = client
        .stream_build_logs(GetBuildRequest {
            deployment_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    while let Some(line) = lines.message().await.unwrap() {
        answers.push(line.line);
    }
    let types = client
        .list_job_types(ListJobTypesRequest {})
        .await
        .unwrap()
        .into_inner();
    answers.push(format!("{types:?}"));
    answers.push(std::fs::read_to_string(server.log_dir().join(format!("{id}.log"))).unwrap());

    // The image, as the docker CLI shows it to whoever pulls it.
    let cli = |args: &[&str]| -> Vec<u8> {
        let out = Command::new("docker").args(args).output().unwrap();
        assert!(out.status.success(), "docker {args:?}: {out:?}");
        out.stdout
    };
    let history = String::from_utf8(cli(&["history", "--no-trunc", &image])).unwrap();
    assert!(history.contains("COPY"), "{history}");
    answers.push(history);
    answers.push(String::from_utf8(cli(&["inspect", &image])).unwrap());
    let saved = cli(&["save", &image]);
    let mut archive = tar::Archive::new(saved.as_slice());
    let mut layers = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if path.ends_with("layer.tar") {
            layers += 1;
            // Every file of the layer, by content and name.
            let mut layer = tar::Archive::new(bytes.as_slice());
            for file in layer.entries().unwrap() {
                let mut file = file.unwrap();
                let file_path = file.path().unwrap().display().to_string();
                let mut content = Vec::new();
                file.read_to_end(&mut content).unwrap();
                for secret in [BUILD_SECRET, RUNTIME_SECRET] {
                    assert!(
                        !contains(&content, secret.as_bytes()) && !file_path.contains(secret),
                        "{secret} in {path}:{file_path}"
                    );
                }
            }
        }
        for secret in [BUILD_SECRET, RUNTIME_SECRET] {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret} in {path} of docker save"
            );
        }
    }
    assert!(layers >= 3, "{layers} layers");

    // Run it as the Lifecycle would, with a secret runtime value.
    let target = DockerTarget::connect(DockerTargetConfig {
        network: "racetrack-ib-test".into(),
        pull: false,
        ..Default::default()
    })
    .unwrap();
    let fatman = FatmanSpec {
        name: name.clone(),
        version: "0.0.1".into(),
        image: image.clone(),
        env: BTreeMap::from([("FATMAN_NAME".to_string(), name.clone())]),
        secret_env: BTreeMap::from([("RUNTIME_TOKEN".to_string(), RUNTIME_SECRET.to_string())]),
        ..Default::default()
    };
    let _container = racetrack_infra::testing::ContainerGuard::new([fatman.resource_name()]);
    let deployed = target.deploy(&fatman).await.unwrap();
    answers.push(format!("{deployed:?}"));
    answers.push(target.logs(&name, "0.0.1", 0).await.unwrap());
    let container = String::from_utf8(cli(&["inspect", &fatman.resource_name()])).unwrap();
    if container.contains(RUNTIME_SECRET) {
        eprintln!(
            "limitation of the Docker target: docker inspect of the container shows the secret runtime env"
        );
    }
    assert!(!container.contains(BUILD_SECRET), "{container}");
    target.delete(&name, "0.0.1").await.unwrap();

    for answer in answers {
        for secret in [BUILD_SECRET, RUNTIME_SECRET] {
            assert!(!answer.contains(secret), "{secret} found in:\n{answer}");
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A user's Dockerfile that uses a secret in the image's own stage would store it in the
/// history: the build fails and nothing is pushed or kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_holding_a_secret_is_refused() {
    if prerequisites().await.is_none() {
        return;
    }
    const SECRET: &str = "zq-user-secret-1234-xyz";
    let (server, mut client, mut images, base) = server_with_busybox("ibsec").await;
    let family = server.family.clone();
    let name = unique("leaky");
    let tag = "2024-08-08T080808";
    let image = server.entry_image(&name, tag);
    images.add(&image);
    let manifest = user_manifest(&name, &family);
    let dockerfile = format!("FROM {base}\nARG API_TOKEN\nRUN test -n \"$API_TOKEN\"\n");
    let context = tar_gz(&[
        ("fatman.yaml", manifest.as_bytes()),
        ("Dockerfile", dockerfile.as_bytes()),
    ]);
    let mut req = request(&format!("{name}-1"), &manifest, context, tag);
    req.secret_build_env = HashMap::from([("API_TOKEN".to_string(), SECRET.to_string())]);
    let out = build(&mut client, req).await;
    let result = out.result();
    assert!(!result.success, "{}", out.log());
    assert!(
        result.error.contains("API_TOKEN (history)") && result.error.contains("build stage"),
        "{}",
        result.error
    );
    assert!(!result.error.contains(SECRET) && !out.log().contains(SECRET));
    assert!(!server.app.docker.image_exists(&image).await.unwrap());
}
