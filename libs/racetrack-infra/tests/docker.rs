//! The Docker target against the real engine, with the local busybox test image.
//! Skipped (with a reason) when Docker or busybox-static is missing, failed instead under CI=true.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use bollard::models::{ContainerCreateBody, RestartPolicyNameEnum};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use racetrack_infra::testing::{
    docker_test_env_or_skip, ensure_test_image, unique_name, ContainerGuard, TEST_IMAGE,
    TEST_MODE_ENV,
};
use racetrack_infra::{
    health, DockerTarget, DockerTargetConfig, FatmanSpec, InfraError, InfraStatus,
    InfrastructureTarget, LABEL_DEPLOYMENT_TIMESTAMP, LABEL_FATMAN_FAMILY, LABEL_FATMAN_NAME,
    LABEL_FATMAN_VERSION, LABEL_MANAGED,
};
use racetrack_model::names::resource_name;

const NETWORK: &str = "racetrack-infra-test";
const VERSION: &str = "1.0.0";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Skips (returns from) the test when Docker is not there; builds the test image once.
macro_rules! require_docker {
    ($test:expr) => {
        if !docker_test_env_or_skip($test).await {
            return;
        }
        ensure_test_image().await.expect("building the test image");
    };
}

fn target() -> DockerTarget {
    racetrack_infra::testing::docker_target(NETWORK)
}

fn spec(name: &str, mode: Option<&str>, timestamp: i64) -> FatmanSpec {
    let mut env = BTreeMap::from([
        ("FATMAN_NAME".to_string(), name.to_string()),
        (
            "FATMAN_DEPLOYMENT_TIMESTAMP".to_string(),
            timestamp.to_string(),
        ),
    ]);
    if let Some(mode) = mode {
        env.insert(TEST_MODE_ENV.into(), mode.into());
    }
    FatmanSpec {
        name: name.into(),
        version: VERSION.into(),
        image: TEST_IMAGE.into(),
        env,
        deployment_timestamp: timestamp,
        ..Default::default()
    }
}

async fn docker() -> bollard::Docker {
    bollard::Docker::connect_with_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap()
}

#[tokio::test]
async fn deploy_serve_list_replace_delete() {
    require_docker!("deploy_serve_list_replace_delete");
    let name = unique_name("itest-life");
    let resource = resource_name(&name, VERSION);
    let _guard = ContainerGuard::new([resource.clone()]);
    let target = target();

    let mut fatman_spec = spec(&name, None, 1000);
    fatman_spec
        .labels
        .insert("racetrack.test".into(), "lifecycle".into());
    fatman_spec.memory_max_bytes = Some(64 << 20);
    fatman_spec.cpu_max = Some(0.5);

    let started = Instant::now();
    let deployed = target.deploy(&fatman_spec).await.unwrap();
    eprintln!("deploy took {:?}", started.elapsed());
    assert_eq!(deployed.status, InfraStatus::Running, "{deployed:?}");
    assert_eq!(deployed.error, None);
    assert_eq!(deployed.name, name);
    assert_eq!(deployed.version, VERSION);
    assert_eq!(deployed.resource_name, resource);
    assert_eq!(deployed.image.as_deref(), Some(TEST_IMAGE));
    assert!(deployed.create_time > 0);
    assert_eq!(deployed.deployment_timestamp(), Some(1000));
    for (label, value) in [
        (LABEL_MANAGED, "true"),
        (LABEL_FATMAN_NAME, name.as_str()),
        (LABEL_FATMAN_VERSION, VERSION),
        (LABEL_FATMAN_FAMILY, name.as_str()),
        (LABEL_DEPLOYMENT_TIMESTAMP, "1000"),
        ("racetrack.test", "lifecycle"),
    ] {
        assert_eq!(
            deployed.labels.get(label).map(String::as_str),
            Some(value),
            "{label}"
        );
    }
    assert!(
        deployed.internal_name.starts_with("127.0.0.1:"),
        "{}",
        deployed.internal_name
    );

    // Reachable from this host, and ready.
    let started = Instant::now();
    health::wait_until_ready_with(&deployed.internal_name, READY_TIMEOUT, Some(1000))
        .await
        .unwrap();
    eprintln!("ready after {:?}", started.elapsed());
    target
        .wait_until_ready(&deployed, READY_TIMEOUT)
        .await
        .unwrap();
    let live = reqwest::get(format!("http://{}/live", deployed.internal_name))
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let health = health::check(&deployed.internal_name).await;
    assert!(health.live && health.ready, "{health:?}");

    assert!(target.exists(&name, VERSION).await.unwrap());
    let got = target.get(&name, VERSION).await.unwrap().unwrap();
    assert_eq!(got.internal_name, deployed.internal_name);
    let listed = target.list().await.unwrap();
    let mine: Vec<_> = listed.iter().filter(|f| f.name == name).collect();
    assert_eq!(mine.len(), 1, "{listed:?}");
    assert_eq!(mine[0].status, InfraStatus::Running);
    assert_eq!(mine[0].internal_name, deployed.internal_name);
    assert_eq!(mine[0].labels.get("racetrack.test").unwrap(), "lifecycle");

    let logs = target.logs(&name, VERSION, 0).await.unwrap();
    assert!(
        logs.contains("test fatman listening on port 7000"),
        "{logs}"
    );
    let last = target.logs(&name, VERSION, 1).await.unwrap();
    assert_eq!(last.lines().count(), 1, "{last}");

    // Limits, restart policy, network, extra hosts reached the engine.
    let inspect = docker()
        .await
        .inspect_container(&resource, None)
        .await
        .unwrap();
    let host = inspect.host_config.unwrap();
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(
        host.restart_policy.unwrap().name,
        Some(RestartPolicyNameEnum::NO)
    );
    assert_eq!(
        host.extra_hosts.unwrap(),
        vec!["host.docker.internal:host-gateway"]
    );
    let networks = inspect.network_settings.unwrap().networks.unwrap();
    assert!(networks.contains_key(NETWORK), "{:?}", networks.keys());

    // Deploying again replaces the container.
    fatman_spec.deployment_timestamp = 2000;
    fatman_spec
        .env
        .insert("FATMAN_DEPLOYMENT_TIMESTAMP".into(), "2000".into());
    let redeployed = target.deploy(&fatman_spec).await.unwrap();
    assert_eq!(redeployed.status, InfraStatus::Running);
    assert_eq!(redeployed.deployment_timestamp(), Some(2000));
    health::wait_until_ready_with(&redeployed.internal_name, READY_TIMEOUT, Some(2000))
        .await
        .unwrap();
    let mine: Vec<_> = target
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter(|f| f.name == name)
        .collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].deployment_timestamp(), Some(2000));

    // Delete; deleting again is fine.
    target.delete(&name, VERSION).await.unwrap();
    assert!(!target.exists(&name, VERSION).await.unwrap());
    assert_eq!(target.get(&name, VERSION).await.unwrap(), None);
    assert!(!target.list().await.unwrap().iter().any(|f| f.name == name));
    target.delete(&name, VERSION).await.unwrap();
    let err = target.logs(&name, VERSION, 10).await.unwrap_err();
    assert!(matches!(err, InfraError::NotFound(_)), "{err:?}");
}

#[tokio::test]
async fn crash_at_start_is_reported_with_its_logs() {
    require_docker!("crash_at_start_is_reported_with_its_logs");
    let name = unique_name("itest-crash");
    let _guard = ContainerGuard::new([resource_name(&name, VERSION)]);
    let target = target();

    let started = Instant::now();
    let deployed = target.deploy(&spec(&name, Some("crash"), 1)).await.unwrap();
    eprintln!("crashing deploy took {:?}", started.elapsed());
    assert_eq!(deployed.status, InfraStatus::Exited, "{deployed:?}");
    let error = deployed.error.clone().unwrap();
    assert!(
        error.starts_with("exited with code 3; last log lines:\n"),
        "{error}"
    );
    assert!(error.ends_with("boom"), "{error}");
    assert_eq!(deployed.internal_name, "");

    let listed = target.get(&name, VERSION).await.unwrap().unwrap();
    assert_eq!(listed.status, InfraStatus::Exited);
    assert_eq!(
        listed.error.as_deref(),
        Some("exited with code 3; last log lines:\nboom")
    );
    assert!(target.list().await.unwrap().contains(&listed));
    assert!(target
        .logs(&name, VERSION, 0)
        .await
        .unwrap()
        .contains("boom"));

    let err = target
        .wait_until_ready(&deployed, READY_TIMEOUT)
        .await
        .unwrap_err();
    assert!(matches!(err, InfraError::Unhealthy(_)), "{err:?}");
    assert!(err.to_string().contains("boom"), "{err}");
}

#[tokio::test]
async fn followed_logs_come_as_written_and_end_with_the_container() {
    require_docker!("followed_logs_come_as_written_and_end_with_the_container");
    let name = unique_name("itest-follow");
    let _guard = ContainerGuard::new([resource_name(&name, VERSION)]);
    let target = target();

    let missing = target.follow_logs(&name, VERSION, 10).await.err();
    assert!(
        matches!(missing, Some(InfraError::NotFound(_))),
        "{missing:?}"
    );

    target
        .deploy(&spec(&name, Some("crash-late"), 1))
        .await
        .unwrap();
    let mut stream = target.follow_logs(&name, VERSION, 0).await.unwrap();
    let mut got = String::new();
    let started = Instant::now();
    // The container prints a line, 3 s later another, then exits: the stream then ends.
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the follow ends within 30 s")
    {
        let chunk = chunk.unwrap();
        assert!(chunk.ends_with('\n'), "whole lines: {chunk:?}");
        got.push_str(&chunk);
    }
    assert_eq!(got, "starting slowly\nlate boom\n");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "followed, not read at once"
    );
}

#[tokio::test]
async fn a_later_crash_ends_the_wait_early() {
    require_docker!("a_later_crash_ends_the_wait_early");
    let name = unique_name("itest-late");
    let _guard = ContainerGuard::new([resource_name(&name, VERSION)]);
    let target = target();

    let deployed = target
        .deploy(&spec(&name, Some("crash-late"), 1))
        .await
        .unwrap();
    assert_eq!(deployed.status, InfraStatus::Running, "{deployed:?}");
    let started = Instant::now();
    let err = target
        .wait_until_ready(&deployed, Duration::from_secs(60))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    eprintln!("late crash noticed after {waited:?}");
    assert!(waited < Duration::from_secs(15), "{waited:?}");
    let message = err.to_string();
    assert!(matches!(err, InfraError::Unhealthy(_)), "{err:?}");
    assert!(
        message.starts_with("fatman stopped while starting: exited with code 4"),
        "{message}"
    );
    assert!(message.contains("late boom"), "{message}");
}

#[tokio::test]
async fn env_and_secrets_reach_the_container_but_no_output_of_ours() {
    require_docker!("env_and_secrets_reach_the_container_but_no_output_of_ours");
    const PLAIN: &str = "plain-value-4711";
    const SECRET: &str = "s3cr3t-value-0815";
    let name = unique_name("itest-env");
    let crash_name = unique_name("itest-envcrash");
    let missing_name = unique_name("itest-noimage");
    let _guard = ContainerGuard::new([
        resource_name(&name, VERSION),
        resource_name(&crash_name, VERSION),
        resource_name(&missing_name, VERSION),
    ]);
    let target = target();
    let with_env = |name: &str, mode: &str| {
        let mut s = spec(name, Some(mode), 1);
        s.env.insert("PLAIN_SETTING".into(), PLAIN.into());
        s.secret_env.insert("API_KEY".into(), SECRET.into());
        s
    };

    let fatman_spec = with_env(&name, "env");
    let deployed = target.deploy(&fatman_spec).await.unwrap();
    assert_eq!(deployed.status, InfraStatus::Running, "{deployed:?}");
    target
        .wait_until_ready(&deployed, READY_TIMEOUT)
        .await
        .unwrap();
    let logs = target.logs(&name, VERSION, 0).await.unwrap();
    assert!(logs.contains(&format!("PLAIN_SETTING={PLAIN}")), "{logs}");
    assert!(logs.contains(&format!("API_KEY={SECRET}")), "{logs}");

    // The secret env is read back from the container (a redeploy or a move runs it again with
    // it), the plain env is not part of it, and a fatman without a container has none.
    let saved = target.saved_secret_env(&name, VERSION).await.unwrap();
    assert_eq!(
        saved,
        Some(std::collections::BTreeMap::from([(
            "API_KEY".to_string(),
            SECRET.to_string()
        )]))
    );
    assert_eq!(
        target
            .saved_secret_env(&missing_name, VERSION)
            .await
            .unwrap(),
        None
    );

    let mut outputs = vec![
        format!("{fatman_spec:?}"),
        format!("{deployed:?}"),
        format!("{target:?}"),
        serde_json::to_string(&deployed).unwrap(),
    ];

    // A crash whose logs print the env: the error quotes those logs (plain values included, they
    // are the fatman's own output) with the secret redacted.
    let crashed = target
        .deploy(&with_env(&crash_name, "env-crash"))
        .await
        .unwrap();
    assert_eq!(crashed.status, InfraStatus::Exited);
    let error = crashed.error.clone().unwrap();
    assert!(
        error.contains(&format!("API_KEY={}", racetrack_config::redact::MASK)),
        "{error}"
    );
    assert!(error.contains(&format!("PLAIN_SETTING={PLAIN}")), "{error}");
    assert!(!error.contains(SECRET), "secret leaked: {error}");

    // Engine errors.
    let mut missing = with_env(&missing_name, "env");
    missing.image = "racetrack-infra-test-missing:nope".into();
    let err = target.deploy(&missing).await.unwrap_err();
    assert!(matches!(err, InfraError::NotFound(_)), "{err:?}");
    outputs.push(err.to_string());
    outputs.push(format!("{err:?}"));
    let mut clash = with_env(&missing_name, "env");
    clash.env.insert("API_KEY".into(), PLAIN.into());
    let err = target.deploy(&clash).await.unwrap_err();
    assert!(matches!(err, InfraError::Invalid(_)), "{err:?}");
    outputs.push(format!("{err:?}"));

    for output in outputs {
        assert!(!output.contains(SECRET), "secret leaked: {output}");
        assert!(!output.contains(PLAIN), "env value leaked: {output}");
    }
}

#[tokio::test]
async fn unlabelled_containers_are_not_listed() {
    require_docker!("unlabelled_containers_are_not_listed");
    let name = unique_name("itest-foreign");
    let resource = resource_name(&name, VERSION);
    let half = format!("{resource}-half");
    let _guard = ContainerGuard::new([resource.clone(), half.clone()]);
    let docker = docker().await;
    // Named like a fatman, without labels.
    docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&resource)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(TEST_IMAGE.into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Managed label but no name/version labels.
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&half).build()),
            ContainerCreateBody {
                image: Some(TEST_IMAGE.into()),
                labels: Some(HashMap::from([(LABEL_MANAGED.into(), "true".into())])),
                ..Default::default()
            },
        )
        .await
        .unwrap();

    let listed = target().list().await.unwrap();
    assert!(
        !listed
            .iter()
            .any(|f| f.resource_name.starts_with(&resource)),
        "{listed:?}"
    );
    assert_eq!(target().get(&name, VERSION).await.unwrap(), None);
}

#[tokio::test]
async fn a_failed_pull_fails_the_deploy() {
    require_docker!("a_failed_pull_fails_the_deploy");
    let name = unique_name("itest-pull");
    let _guard = ContainerGuard::new([resource_name(&name, VERSION)]);
    let target = DockerTarget::connect(DockerTargetConfig {
        network: NETWORK.into(),
        pull: true,
        ..Default::default()
    })
    .unwrap();
    // A registry address on loopback where nothing listens: fails fast, no traffic leaves.
    let mut s = spec(&name, None, 1);
    s.image = "127.0.0.1:1/racetrack/nothing:1.0.0".into();
    let err = target.deploy(&s).await.unwrap_err();
    assert!(
        err.message()
            .starts_with("pulling image 127.0.0.1:1/racetrack/nothing:1.0.0: "),
        "{err:?}"
    );
    assert!(!target.exists(&name, VERSION).await.unwrap());
}

#[tokio::test]
async fn an_unreachable_engine_is_unavailable() {
    // No Docker needed: nothing listens on these.
    let err =
        DockerTarget::connect_with_host("ftp://x", DockerTargetConfig::default()).unwrap_err();
    assert!(matches!(err, InfraError::Invalid(_)), "{err:?}");
    for host in ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let target = DockerTarget::connect_with_host(host, DockerTargetConfig::default()).unwrap();
        let err = target.list().await.unwrap_err();
        assert!(matches!(err, InfraError::Unavailable(_)), "{host}: {err:?}");
        let err = target.deploy(&spec("adder", None, 1)).await.unwrap_err();
        assert!(matches!(err, InfraError::Unavailable(_)), "{host}: {err:?}");
    }
}

#[tokio::test]
async fn invalid_requests_fail_before_reaching_the_engine() {
    let target =
        DockerTarget::connect_with_host("tcp://127.0.0.1:1", DockerTargetConfig::default())
            .unwrap();
    let mut bad_name = spec("Bad_Name", None, 1);
    bad_name.name = "Bad_Name".into();
    for (what, s) in [
        ("name", bad_name),
        (
            "image",
            FatmanSpec {
                image: String::new(),
                ..spec("adder", None, 1)
            },
        ),
    ] {
        let err = target.deploy(&s).await.unwrap_err();
        assert!(matches!(err, InfraError::Invalid(_)), "{what}: {err:?}");
    }
    let err = target.delete("../x", VERSION).await.unwrap_err();
    assert!(matches!(err, InfraError::Invalid(_)), "{err:?}");
}

#[tokio::test]
async fn a_container_the_engine_cannot_start_is_an_error() {
    require_docker!("a_container_the_engine_cannot_start_is_an_error");
    let name = unique_name("itest-nostart");
    let _guard = ContainerGuard::new([resource_name(&name, VERSION)]);
    // An address this host does not have (TEST-NET-1): publishing on it cannot work. Nothing is
    // sent there; the bind fails locally.
    let target = DockerTarget::connect(DockerTargetConfig {
        network: NETWORK.into(),
        pull: false,
        publish_host: "192.0.2.1".into(),
        ..Default::default()
    })
    .unwrap();
    let deployed = target.deploy(&spec(&name, None, 1)).await.unwrap();
    if deployed.status == InfraStatus::Running {
        // Engines without the userland proxy publish through iptables only and never bind.
        eprintln!("engine started a container on an absent address; nothing to check");
        return;
    }
    assert_eq!(deployed.status, InfraStatus::Error, "{deployed:?}");
    let error = deployed.error.unwrap();
    eprintln!("start failure reported as: {error}");
    assert!(error.starts_with("container failed to start: "), "{error}");
    let listed = target.get(&name, VERSION).await.unwrap().unwrap();
    assert_eq!(listed.status, InfraStatus::Error);
}

#[tokio::test]
async fn list_network_only_sees_just_its_network() {
    require_docker!("list_network_only_sees_just_its_network");
    let name = unique_name("itest-net");
    let resource = resource_name(&name, VERSION);
    let _guard = ContainerGuard::new([resource.clone()]);
    let deployed = target()
        .deploy(&spec(&name, None, 1000))
        .await
        .expect("deploy");
    assert_eq!(deployed.status, InfraStatus::Running, "{deployed:?}");
    let scoped = |network: &str| {
        DockerTarget::connect(DockerTargetConfig {
            network: network.into(),
            pull: false,
            list_network_only: true,
            ..Default::default()
        })
        .unwrap()
    };
    let names = |list: Vec<racetrack_infra::DeployedFatman>| -> Vec<String> {
        list.into_iter().map(|f| f.resource_name).collect()
    };
    let own = names(scoped(NETWORK).list().await.unwrap());
    assert!(own.contains(&resource), "{own:?}");
    let other = names(scoped("racetrack-infra-test-other").list().await.unwrap());
    assert!(!other.contains(&resource), "{other:?}");
    // `get` agrees with `list` (the supervisor's one-fatman checks use it).
    let version = deployed.version.as_str();
    assert!(scoped(NETWORK)
        .get(&deployed.name, version)
        .await
        .unwrap()
        .is_some());
    assert!(scoped("racetrack-infra-test-other")
        .get(&deployed.name, version)
        .await
        .unwrap()
        .is_none());
    let all = names(target().list().await.unwrap());
    assert!(
        all.contains(&resource),
        "unscoped listing sees every network: {all:?}"
    );
}

/// The attack of issue 10 item 5: a container on the fatmen's network calls another fatman
/// directly (by address and by name, and through the host gateway at its published port) instead
/// of going through PUB. Every such way is closed; the container still reaches the host (where PUB
/// listens), and the host still reaches the fatman at its published loopback port (as PUB does).
#[tokio::test]
async fn fatmen_cannot_reach_each_other_only_the_host() {
    require_docker!("fatmen_cannot_reach_each_other_only_the_host");
    let victim = unique_name("itest-victim");
    let other = unique_name("itest-other");
    let victim_resource = resource_name(&victim, VERSION);
    let _guard = ContainerGuard::new([victim_resource.clone(), resource_name(&other, VERSION)]);
    let target = target();
    let deployed = target.deploy(&spec(&victim, None, 1)).await.unwrap();
    assert_eq!(deployed.status, InfraStatus::Running, "{deployed:?}");
    let neighbour = target.deploy(&spec(&other, None, 1)).await.unwrap();
    assert_eq!(neighbour.status, InfraStatus::Running, "{neighbour:?}");
    target
        .wait_until_ready(&deployed, READY_TIMEOUT)
        .await
        .unwrap();

    // Published on loopback only: nothing off this host, and no container, reaches the port.
    let (published_ip, published_port) = deployed.internal_name.rsplit_once(':').unwrap();
    assert_eq!(published_ip, "127.0.0.1", "{deployed:?}");
    let docker = docker().await;
    let inspect = docker
        .inspect_container(&victim_resource, None)
        .await
        .unwrap();
    for bindings in inspect
        .host_config
        .unwrap()
        .port_bindings
        .unwrap()
        .into_values()
        .flatten()
        .flatten()
    {
        assert_eq!(bindings.host_ip.as_deref(), Some("127.0.0.1"));
    }
    let endpoint = inspect.network_settings.unwrap().networks.unwrap()[NETWORK].clone();
    let victim_ip = endpoint.ip_address.unwrap();
    let gateway = endpoint.gateway.unwrap();
    let pub_port = racetrack_infra::testing::http_ok_listener("0.0.0.0:0").await;
    let attacks = vec![
        format!("{victim_ip}:7000"),
        format!("{victim_resource}:7000"),
        format!("{gateway}:{published_port}"),
        format!("host.docker.internal:{published_port}"),
    ];
    let pub_address = format!("host.docker.internal:{pub_port}");
    let mut targets = attacks.clone();
    targets.push(pub_address.clone());
    let started = Instant::now();
    let report = racetrack_infra::testing::probe_ports(NETWORK, &targets, 3)
        .await
        .unwrap();
    eprintln!("probe took {:?}:\n{}", started.elapsed(), report.output);
    assert_eq!(report.reached, vec![pub_address], "{}", report.output);
    assert_eq!(report.blocked, attacks, "{}", report.output);
    assert!(started.elapsed() < Duration::from_secs(30));

    let network = docker.inspect_network(NETWORK, None).await.unwrap();
    assert_eq!(
        network
            .options
            .unwrap_or_default()
            .get(racetrack_infra::BRIDGE_ICC_OPTION)
            .map(String::as_str),
        Some("false")
    );

    // The host side, which PUB uses, still answers.
    let health = health::check(&deployed.internal_name).await;
    assert!(health.live && health.ready, "{health:?}");
}

/// A network of the configured name that lets containers talk to each other is not trusted: with
/// containers attached the deploy fails naming the fix; once empty it is recreated isolated.
#[tokio::test]
async fn an_open_network_is_refused_then_recreated() {
    require_docker!("an_open_network_is_refused_then_recreated");
    let network = unique_name("racetrack-infra-test-open");
    let name = unique_name("itest-open");
    let squatter = unique_name("squatter");
    let _guard = ContainerGuard::new([resource_name(&name, VERSION), squatter.clone()]);
    let docker = docker().await;
    docker
        .create_network(bollard::models::NetworkCreateRequest {
            name: network.clone(),
            driver: Some("bridge".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    docker
        .create_container(
            Some(
                CreateContainerOptionsBuilder::default()
                    .name(&squatter)
                    .build(),
            ),
            ContainerCreateBody {
                image: Some(TEST_IMAGE.into()),
                host_config: Some(bollard::models::HostConfig {
                    network_mode: Some(network.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    docker.start_container(&squatter, None).await.unwrap();
    let target = DockerTarget::connect(DockerTargetConfig {
        network: network.clone(),
        pull: false,
        ..Default::default()
    })
    .unwrap();
    let err = target.deploy(&spec(&name, None, 1)).await.unwrap_err();
    assert!(matches!(err, InfraError::Invalid(_)), "{err:?}");
    assert!(
        err.message().contains("enable_icc=false") && err.message().contains(&squatter),
        "{err}"
    );
    assert!(!target.exists(&name, VERSION).await.unwrap());

    docker
        .remove_container(
            &squatter,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    let deployed = target.deploy(&spec(&name, None, 1)).await.unwrap();
    assert_eq!(deployed.status, InfraStatus::Running, "{deployed:?}");
    let options = docker
        .inspect_network(&network, None)
        .await
        .unwrap()
        .options
        .unwrap_or_default();
    assert_eq!(
        options
            .get(racetrack_infra::BRIDGE_ICC_OPTION)
            .map(String::as_str),
        Some("false")
    );
    target.delete(&name, VERSION).await.unwrap();
    let _ = docker.remove_network(&network).await;
}

/// Next event of `name` from the stream, within `within`.
async fn next_event_of(
    stream: &mut racetrack_infra::InfraEventStream,
    name: &str,
    within: Duration,
) -> racetrack_infra::InfraEvent {
    use futures_util::StreamExt;
    tokio::time::timeout(within, async {
        loop {
            let event = stream
                .next()
                .await
                .expect("the stream ended")
                .expect("the stream broke");
            if event.name == name {
                return event;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no event of {name} within {within:?}"))
}

#[tokio::test]
async fn events_report_killed_and_removed_fatmen_by_name() {
    require_docker!("events_report_killed_and_removed_fatmen_by_name");
    let name = unique_name("itest-events");
    let resource = resource_name(&name, VERSION);
    let _guard = ContainerGuard::new([resource.clone()]);
    let target = target();
    target.deploy(&spec(&name, None, 1000)).await.unwrap();
    // Not polled before the kill: events from the call on are still delivered.
    let mut stream = target.events().await.unwrap();
    let docker = docker().await;

    docker
        .kill_container(
            &resource,
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .unwrap();
    let mut kinds = vec![];
    let died = loop {
        let event = next_event_of(&mut stream, &name, Duration::from_secs(5)).await;
        assert_eq!(event.version, VERSION);
        kinds.push(event.kind);
        if event.kind == racetrack_infra::InfraEventKind::Died {
            break event;
        }
    };
    assert_eq!(died.exit_code, Some(137), "{kinds:?}");
    assert!(
        kinds.contains(&racetrack_infra::InfraEventKind::Killed),
        "{kinds:?}"
    );

    target.delete(&name, VERSION).await.unwrap();
    let removed = next_event_of(&mut stream, &name, Duration::from_secs(5)).await;
    assert_eq!(removed.kind, racetrack_infra::InfraEventKind::Removed);
}
