//! Lifecycle's `Supervision` gRPC API (the lifecycle supervisor's only way to the registry),
//! through the real gRPC surface of a real Lifecycle on SQLite and on Postgres: who may call it,
//! the leadership lease, listing, reports written and audited as the supervisor's, and
//! re-provisioning.

mod common;

use std::time::Duration;

use common::{Backend, TestApp};
use racetrack_db::repo::{audit, fatmen, supervisor as repo};
use racetrack_model::InternalService;
use racetrack_proto::supervisor::supervision_client::SupervisionClient;
use racetrack_proto::supervisor::{
    AcquireLeaseRequest, FatmanStatus, FoundOrphan, ListFatmenRequest, Observation,
    ObservationReport, OrphanGone, ReconcileFailure, ReleaseLeaseRequest, ReprovisionRequest,
    StatusChange,
};
use tonic::Code;

const LEASE: &str = "lifecycle-supervisor";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

async fn client(app: &TestApp) -> SupervisionClient<tonic::transport::Channel> {
    SupervisionClient::connect(app.grpc_url.clone())
        .await
        .expect("gRPC connects")
}

fn req<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    if let Some(token) = token {
        req.metadata_mut()
            .insert("x-racetrack-auth", token.parse().unwrap());
    }
    req
}

fn acquire(holder: &str, ttl_secs: f64) -> AcquireLeaseRequest {
    AcquireLeaseRequest {
        name: LEASE.into(),
        holder: holder.into(),
        ttl_secs,
    }
}

fn report(holder: &str) -> ObservationReport {
    ObservationReport {
        lease: LEASE.into(),
        holder: holder.into(),
        ..Default::default()
    }
}

/// The code of every `Supervision` RPC called with `token`.
async fn codes(app: &TestApp, token: Option<&str>) -> Vec<Code> {
    let mut c = client(app).await;
    let code = |r: Result<(), tonic::Status>| r.err().map_or(Code::Ok, |s| s.code());
    vec![
        code(
            c.acquire_lease(req(acquire("probe", 1.0), token))
                .await
                .map(|_| ()),
        ),
        code(
            c.release_lease(req(
                ReleaseLeaseRequest {
                    name: LEASE.into(),
                    holder: "probe".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        ),
        code(
            c.list_fatmen(req(ListFatmenRequest::default(), token))
                .await
                .map(|_| ()),
        ),
        code(
            c.report_observations(req(report("probe"), token))
                .await
                .map(|_| ()),
        ),
        code(
            c.reprovision(req(
                ReprovisionRequest {
                    lease: LEASE.into(),
                    holder: "probe".into(),
                    name: "nope".into(),
                    version: "1.0.0".into(),
                },
                token,
            ))
            .await
            .map(|_| ()),
        ),
    ]
}

both_backends!(
    only_the_supervisors_token_may_supervise,
    |app: TestApp| async move {
        let supervisor = app
            .service_token(InternalService::LifecycleSupervisor)
            .await;
        // The supervisor's token: every call is let through (the lease is released, then
        // `probe` does not hold it for the report and re-provisioning).
        let ok = codes(&app, Some(&supervisor)).await;
        assert_eq!(
            ok,
            [
                Code::Ok,
                Code::Ok,
                Code::Ok,
                Code::FailedPrecondition,
                Code::FailedPrecondition
            ]
        );
        // Other services' tokens, users (even admins), ESCs and fatman families are refused
        // every call.
        let user = app.user("user@example.com", true).await;
        let (_, esc) = app.esc("consumer").await;
        let family = app.seed_fatman("caller", "1.0.0", None).await;
        for token in [
            app.service_token(InternalService::Pub).await,
            app.service_token(InternalService::Dashboard).await,
            app.service_token(InternalService::ImageBuilder).await,
            app.admin_token.clone(),
            user,
            esc,
            family,
        ] {
            assert_eq!(
                codes(&app, Some(&token)).await,
                [Code::PermissionDenied; 5],
                "a token without supervise_fatmen"
            );
        }
        // No token, garbage, or an internal token that was never stored.
        let forged = app.forged_internal_token("lifecycle-supervisor");
        for token in [None, Some("garbage"), Some(forged.as_str())] {
            assert_eq!(
                codes(&app, token).await,
                [Code::Unauthenticated; 5],
                "{token:?}"
            );
        }
        // The supervisor's scopes: exactly these two.
        let mut scopes: Vec<&str> = InternalService::LifecycleSupervisor
            .scopes()
            .iter()
            .map(|s| s.as_str())
            .collect();
        scopes.sort();
        assert_eq!(scopes, ["reprovision_fatman", "supervise_fatmen"]);
    }
);

both_backends!(
    the_lease_has_one_holder_and_expires,
    |app: TestApp| async move {
        let token = app
            .service_token(InternalService::LifecycleSupervisor)
            .await;
        let t = Some(token.as_str());
        let mut c = client(&app).await;
        let grant = |r: Result<tonic::Response<racetrack_proto::supervisor::LeaseGrant>, _>| {
            let g: racetrack_proto::supervisor::LeaseGrant = r.unwrap().into_inner();
            (g.granted, g.holder)
        };
        assert_eq!(
            grant(c.acquire_lease(req(acquire("a", 60.0), t)).await),
            (true, "a".into())
        );
        assert_eq!(
            grant(c.acquire_lease(req(acquire("b", 60.0), t)).await),
            (false, "a".into()),
            "b must not lead while a's lease runs"
        );
        assert_eq!(
            grant(c.acquire_lease(req(acquire("a", 60.0), t)).await),
            (true, "a".into()),
            "a renews"
        );
        // Only the holder's reports are written.
        let err = c
            .report_observations(req(report("b"), t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        c.report_observations(req(report("a"), t)).await.unwrap();
        // Released: b takes it at once; a's reports are refused from now on.
        let released = c
            .release_lease(req(
                ReleaseLeaseRequest {
                    name: LEASE.into(),
                    holder: "a".into(),
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner()
            .released;
        assert!(released);
        assert_eq!(
            grant(c.acquire_lease(req(acquire("b", 0.3), t)).await),
            (true, "b".into())
        );
        let err = c
            .report_observations(req(report("a"), t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition);
        // b stops renewing (killed): a takes over once b's lease has expired.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let err = c
            .report_observations(req(report("b"), t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "an expired lease");
        assert_eq!(
            grant(c.acquire_lease(req(acquire("a", 60.0), t)).await),
            (true, "a".into())
        );
        // Bad input is refused clearly.
        for bad in [acquire("a", 0.0), acquire("a", 1e9), acquire("", 5.0)] {
            let err = c.acquire_lease(req(bad, t)).await.unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        }
    }
);

both_backends!(
    reports_are_written_and_audited_as_the_supervisors,
    |app: TestApp| async move {
        let token = app
            .service_token(InternalService::LifecycleSupervisor)
            .await;
        let t = Some(token.as_str());
        let mut c = client(&app).await;
        assert!(
            c.acquire_lease(req(acquire("sup", 60.0), t))
                .await
                .unwrap()
                .into_inner()
                .granted
        );
        app.user("alice@example.com", true).await;
        for name in ["gone", "healthy", "raced", "failing"] {
            app.seed_fatman(name, "1.0.0", Some("alice@example.com"))
                .await;
        }
        let list = c
            .list_fatmen(req(
                ListFatmenRequest {
                    deployment_stale_secs: 3600.0,
                    ..Default::default()
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.fatmen.len(), 4);
        let row = |name: &str| list.fatmen.iter().find(|f| f.name == name).unwrap().clone();
        let gone = row("gone");
        assert_eq!(gone.status, FatmanStatus::Running as i32);
        assert!(gone.has_manifest);
        assert_eq!(gone.deployed_by.as_deref(), Some("alice@example.com"));
        assert_eq!(gone.last_check_time_nanos, None);
        let one = c
            .list_fatmen(req(
                ListFatmenRequest {
                    name: "healthy".into(),
                    version: "1.0.0".into(),
                    deployment_stale_secs: 3600.0,
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(one.fatmen.len(), 1);
        assert_eq!(one.fatmen[0].name, "healthy");

        let lost =
            |f: &racetrack_proto::supervisor::SupervisedFatman, read_update_time| StatusChange {
                id: f.id.clone(),
                name: f.name.clone(),
                version: f.version.clone(),
                read_status: f.status,
                read_update_time_nanos: read_update_time,
                observed: Some(Observation {
                    status: FatmanStatus::Lost as i32,
                    error: Some("not found in the infrastructure".into()),
                    internal_name: f.internal_name.clone(),
                    infrastructure_target: Some("docker".into()),
                    last_call_time_nanos: None,
                }),
            };
        let raced = row("raced");
        let outcome = c
            .report_observations(req(
                ObservationReport {
                    changes: vec![
                        lost(&gone, gone.update_time_nanos),
                        // Read before a deploy changed the row: not written.
                        lost(&raced, raced.update_time_nanos - 1),
                    ],
                    checked_ids: vec![row("healthy").id],
                    new_orphans: vec![FoundOrphan {
                        target: "docker".into(),
                        name: "stray".into(),
                        version: "1.0.0".into(),
                        resource_name: "fatman-stray-v-1-0-0".into(),
                        internal_name: "127.0.0.1:9".into(),
                        image: Some(
                            "127.0.0.1:5000/racetrack/fatman/stray:2026-01-01T000000".into(),
                        ),
                        container_status: "running".into(),
                    }],
                    reconcile_failures: vec![ReconcileFailure {
                        name: "failing".into(),
                        version: "1.0.0".into(),
                        error: "Lifecycle answered Aborted: pull failed".into(),
                    }],
                    ..report("sup")
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(outcome.written, std::slice::from_ref(&gone.id));
        assert_eq!(outcome.superseded, 1);
        assert_eq!(outcome.registered.len(), 1);

        let mut conn = app.db();
        let stored = fatmen::find(&mut conn, "gone", "1.0.0").unwrap().unwrap();
        assert_eq!(stored.status, racetrack_model::FatmanStatus::Lost);
        assert_eq!(
            stored.error.as_deref(),
            Some("not found in the infrastructure")
        );
        assert_eq!(
            fatmen::find(&mut conn, "raced", "1.0.0")
                .unwrap()
                .unwrap()
                .status,
            racetrack_model::FatmanStatus::Running
        );
        assert!(repo::last_check_time(&mut conn, "healthy", "1.0.0")
            .unwrap()
            .is_some());
        let orphan = fatmen::find(&mut conn, "stray", "1.0.0").unwrap().unwrap();
        assert_eq!(orphan.status, racetrack_model::FatmanStatus::Orphaned);
        assert!(orphan.manifest.is_none());
        assert_eq!(orphan.image_tag.as_deref(), Some("2026-01-01T000000"));
        let events = |conn: &mut racetrack_db::DbConnection, name: &str| {
            audit::query(
                conn,
                &audit::EventFilter {
                    fatman_name: Some(name),
                    ..Default::default()
                },
            )
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.event_type.as_str().to_string(),
                    e.username_executor,
                    e.username_subject,
                )
            })
            .collect::<Vec<_>>()
        };
        let by_racetrack = |kind: &str, subject: Option<&str>| {
            (
                kind.to_string(),
                Some("racetrack".to_string()),
                subject.map(String::from),
            )
        };
        assert_eq!(
            events(&mut conn, "gone"),
            [by_racetrack("fatman_lost", Some("alice@example.com"))]
        );
        assert!(events(&mut conn, "raced").is_empty());
        assert_eq!(
            events(&mut conn, "stray"),
            [by_racetrack("fatman_orphaned", None)]
        );
        assert_eq!(
            events(&mut conn, "failing"),
            [by_racetrack(
                "fatman_reconcile_failed",
                Some("alice@example.com")
            )]
        );
        drop(conn);

        // The orphan's container was removed: its entry is dropped and the removal audited.
        let outcome = c
            .report_observations(req(
                ObservationReport {
                    gone_orphans: vec![OrphanGone {
                        id: orphan.id.clone(),
                        name: "stray".into(),
                        version: "1.0.0".into(),
                        target: "docker".into(),
                        removed: true,
                        found_at: 0,
                        grace_secs: 600.0,
                    }],
                    ..report("sup")
                },
                t,
            ))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(outcome.dropped, [orphan.id]);
        let mut conn = app.db();
        assert!(fatmen::find(&mut conn, "stray", "1.0.0").unwrap().is_none());
        assert_eq!(
            events(&mut conn, "stray")[0],
            by_racetrack("fatman_orphan_removed", None)
        );
        drop(conn);

        // A report with an unspecified status is refused whole.
        let mut bad = lost(&row("healthy"), row("healthy").update_time_nanos);
        bad.observed.as_mut().unwrap().status = FatmanStatus::Unspecified as i32;
        let err = c
            .report_observations(req(
                ObservationReport {
                    changes: vec![bad],
                    ..report("sup")
                },
                t,
            ))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
);

both_backends!(
    reprovision_follows_the_rest_rules,
    env = &[("DOCKER_NETWORK", "racetrack-lc-tests")],
    |app: TestApp| async move {
        let token = app
            .service_token(InternalService::LifecycleSupervisor)
            .await;
        let t = Some(token.as_str());
        let mut c = client(&app).await;
        c.acquire_lease(req(acquire("sup", 60.0), t)).await.unwrap();
        app.seed_fatman("adder", "1.0.0", None).await;
        let reprovision = |name: &str, holder: &str| ReprovisionRequest {
            lease: LEASE.into(),
            holder: holder.into(),
            name: name.into(),
            version: "1.0.0".into(),
        };
        let err = c
            .reprovision(req(reprovision("nope", "sup"), t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::NotFound, "{err:?}");
        // No deployment provisioned it on a target: nothing to run again.
        let err = c
            .reprovision(req(reprovision("adder", "sup"), t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
        assert!(err.message().contains("no built image"), "{err:?}");
        // Only the lease holder may.
        let err = c
            .reprovision(req(reprovision("adder", "other"), t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");

        if !std::path::Path::new("/var/run/docker.sock").exists() {
            assert!(!in_ci(), "Docker is required under CI");
            eprintln!("SKIPPED: no Docker engine (reprovisioning runs on the docker target)");
            return;
        }
        // A deployed image and a later build-only one: the deployed one is run (it does not
        // exist, so pulling it fails and the error names it).
        let (deployed, built) = app.seed_deployed_then_built("adder", "1.0.0");
        let err = c
            .reprovision(req(reprovision("adder", "sup"), t))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Aborted, "{err:?}");
        assert!(
            err.message().contains(&deployed) && !err.message().contains(&built),
            "{err:?}"
        );
        // Recorded as the supervisor's (`racetrack`) deployment.
        let mut conn = app.db();
        let latest = racetrack_db::repo::deployments::list_in_progress(&mut conn).unwrap();
        assert!(latest.is_empty(), "the deployment finished: {latest:?}");
    }
);
