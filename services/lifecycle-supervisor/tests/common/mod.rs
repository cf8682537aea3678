//! Helpers shared by the supervisor's tests: a fake Lifecycle serving the real `Supervision` gRPC
//! API from an in-memory registry (it writes and audits reports the way Lifecycle does, and
//! records every call), registry rows, and a leading supervisor.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lifecycle_supervisor::config::Config;
use lifecycle_supervisor::Supervisor;
use racetrack_infra::InfrastructureTarget;
use racetrack_proto::supervisor::supervision_server::{Supervision, SupervisionServer};
use racetrack_proto::supervisor::{
    AcquireLeaseRequest, FatmanRef, FatmanStatus, FatmenList, LeaseGrant, ListFatmenRequest,
    ObservationReport, ReleaseLeaseRequest, ReleaseLeaseResponse, ReportOutcome,
    ReprovisionRequest, ReprovisionResponse, SupervisedFatman,
};
use tonic::{Request, Response, Status};

/// What the fake Lifecycle holds and saw.
#[derive(Default)]
pub struct Registry {
    pub rows: Vec<SupervisedFatman>,
    /// `(name, version)` with a deployment in progress.
    pub deploying: Vec<(String, String)>,
    /// Audit events as Lifecycle writes them for reports: `(kind, fatman, subject)`.
    pub audit: Vec<(String, String, Option<String>)>,
    /// Every report received.
    pub reports: Vec<ObservationReport>,
    /// `(name, version, token)` of every `Reprovision` call.
    pub reprovisions: Vec<(String, String, String)>,
    /// Every call: `(method, token)`.
    pub calls: Vec<(String, String)>,
    /// Every call's `traceparent` metadata: `(method, traceparent)`.
    pub traceparents: Vec<(String, Option<String>)>,
}

type OnReprovision = Arc<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

#[derive(Clone)]
pub struct FakeLifecycle {
    pub url: String,
    pub registry: Arc<Mutex<Registry>>,
    /// `Some`: `Reprovision` fails with this status.
    pub reprovision_error: Arc<Mutex<Option<Status>>>,
    on_reprovision: OnReprovision,
}

fn token_of<T>(req: &Request<T>) -> String {
    req.metadata()
        .get("x-racetrack-auth")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap()
}

fn status_of(s: &str) -> i32 {
    FatmanStatus::from(s.parse::<racetrack_model::FatmanStatus>().unwrap()) as i32
}

fn status_text(s: i32) -> String {
    let wire = FatmanStatus::try_from(s).unwrap();
    racetrack_model::FatmanStatus::try_from(wire)
        .unwrap()
        .as_str()
        .to_string()
}

impl FakeLifecycle {
    /// Registers a fatman `name` 1.0.0 deployed by alice, with a manifest.
    pub fn register(&self, name: &str, status: &str, internal_name: &str) -> SupervisedFatman {
        let now = now_nanos();
        let row = SupervisedFatman {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.into(),
            version: "1.0.0".into(),
            status: status_of(status),
            error: None,
            internal_name: Some(internal_name.into()),
            infrastructure_target: Some("docker".into()),
            has_manifest: true,
            deployed_by: Some("alice".into()),
            create_time_nanos: now,
            update_time_nanos: now,
            last_call_time_nanos: None,
            last_check_time_nanos: None,
        };
        self.registry.lock().unwrap().rows.push(row.clone());
        row
    }

    pub fn row(&self, name: &str) -> Option<SupervisedFatman> {
        self.registry
            .lock()
            .unwrap()
            .rows
            .iter()
            .find(|r| r.name == name)
            .cloned()
    }

    /// Changes a row as a deploy would (new update time).
    pub fn update(&self, name: &str, f: impl FnOnce(&mut SupervisedFatman)) {
        let mut reg = self.registry.lock().unwrap();
        let row = reg.rows.iter_mut().find(|r| r.name == name).unwrap();
        f(row);
        row.update_time_nanos = now_nanos();
    }

    pub fn set_status(&self, name: &str, status: &str, error: Option<&str>) {
        self.update(name, |r| {
            r.status = status_of(status);
            r.error = error.map(String::from);
        });
    }

    pub fn status(&self, name: &str) -> Option<(String, Option<String>)> {
        self.row(name).map(|r| (status_text(r.status), r.error))
    }

    pub fn last_check(&self, name: &str) -> Option<i64> {
        self.row(name).and_then(|r| r.last_check_time_nanos)
    }

    /// Audit events of fatman `name`, newest first (as Lifecycle's audit log lists them):
    /// `(kind, subject)`.
    pub fn events(&self, name: &str) -> Vec<(String, Option<String>)> {
        self.registry
            .lock()
            .unwrap()
            .audit
            .iter()
            .rev()
            .filter(|(_, n, _)| n == name)
            .map(|(kind, _, subject)| (kind.clone(), subject.clone()))
            .collect()
    }

    fn record<T>(&self, method: &str, req: &Request<T>) {
        let token = token_of(req);
        let traceparent = req
            .metadata()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut reg = self.registry.lock().unwrap();
        reg.calls.push((method.to_string(), token));
        reg.traceparents.push((method.to_string(), traceparent));
    }

    fn apply(&self, report: ObservationReport) -> ReportOutcome {
        let mut reg = self.registry.lock().unwrap();
        reg.reports.push(report.clone());
        let now = now_nanos();
        let mut out = ReportOutcome::default();
        for c in report.changes {
            let observed = c.observed.unwrap_or_default();
            let Some(row) = reg.rows.iter_mut().find(|r| {
                r.id == c.id
                    && r.status == c.read_status
                    && r.update_time_nanos == c.read_update_time_nanos
            }) else {
                out.superseded += 1;
                continue;
            };
            row.status = observed.status;
            row.error = observed.error;
            row.internal_name = observed.internal_name;
            row.infrastructure_target = observed.infrastructure_target;
            row.last_call_time_nanos = observed.last_call_time_nanos;
            row.update_time_nanos = now;
            row.last_check_time_nanos = Some(now);
            let lost = FatmanStatus::Lost as i32;
            if observed.status == lost && c.read_status != lost {
                let (name, owner) = (row.name.clone(), row.deployed_by.clone());
                reg.audit.push(("fatman_lost".into(), name, owner));
            }
            out.written.push(c.id);
        }
        for row in reg.rows.iter_mut() {
            if report.checked_ids.contains(&row.id) {
                row.last_check_time_nanos = Some(now);
            }
        }
        for o in report.new_orphans {
            if reg
                .rows
                .iter()
                .any(|r| r.name == o.name && r.version == o.version)
            {
                continue;
            }
            reg.rows.push(SupervisedFatman {
                id: uuid::Uuid::new_v4().to_string(),
                name: o.name.clone(),
                version: o.version.clone(),
                status: FatmanStatus::Orphaned as i32,
                error: Some("found in the infrastructure without a registry entry".into()),
                internal_name: Some(o.internal_name.clone()),
                infrastructure_target: Some(o.target.clone()),
                has_manifest: false,
                deployed_by: None,
                create_time_nanos: now,
                update_time_nanos: now,
                last_call_time_nanos: None,
                last_check_time_nanos: Some(now),
            });
            reg.audit
                .push(("fatman_orphaned".into(), o.name.clone(), None));
            out.registered.push(FatmanRef {
                name: o.name,
                version: o.version,
            });
        }
        for o in report.gone_orphans {
            let before = reg.rows.len();
            reg.rows.retain(|r| {
                !(r.id == o.id && r.status == FatmanStatus::Orphaned as i32 && !r.has_manifest)
            });
            if reg.rows.len() < before {
                reg.audit
                    .push(("fatman_orphan_removed".into(), o.name.clone(), None));
                out.dropped.push(o.id);
            }
        }
        for f in report.reconcile_failures {
            let owner = reg
                .rows
                .iter()
                .find(|r| r.name == f.name && r.version == f.version)
                .and_then(|r| r.deployed_by.clone());
            reg.audit
                .push(("fatman_reconcile_failed".into(), f.name, owner));
        }
        out
    }
}

#[tonic::async_trait]
impl Supervision for FakeLifecycle {
    async fn acquire_lease(
        &self,
        req: Request<AcquireLeaseRequest>,
    ) -> Result<Response<LeaseGrant>, Status> {
        self.record("AcquireLease", &req);
        Ok(Response::new(LeaseGrant {
            granted: true,
            holder: req.into_inner().holder,
        }))
    }

    async fn release_lease(
        &self,
        req: Request<ReleaseLeaseRequest>,
    ) -> Result<Response<ReleaseLeaseResponse>, Status> {
        self.record("ReleaseLease", &req);
        Ok(Response::new(ReleaseLeaseResponse { released: true }))
    }

    async fn list_fatmen(
        &self,
        req: Request<ListFatmenRequest>,
    ) -> Result<Response<FatmenList>, Status> {
        self.record("ListFatmen", &req);
        let r = req.into_inner();
        let reg = self.registry.lock().unwrap();
        Ok(Response::new(FatmenList {
            fatmen: reg
                .rows
                .iter()
                .filter(|f| r.name.is_empty() || (f.name == r.name && f.version == r.version))
                .cloned()
                .collect(),
            deploying: reg
                .deploying
                .iter()
                .map(|(name, version)| FatmanRef {
                    name: name.clone(),
                    version: version.clone(),
                })
                .collect(),
        }))
    }

    async fn report_observations(
        &self,
        req: Request<ObservationReport>,
    ) -> Result<Response<ReportOutcome>, Status> {
        self.record("ReportObservations", &req);
        Ok(Response::new(self.apply(req.into_inner())))
    }

    async fn reprovision(
        &self,
        req: Request<ReprovisionRequest>,
    ) -> Result<Response<ReprovisionResponse>, Status> {
        self.record("Reprovision", &req);
        let token = token_of(&req);
        let r = req.into_inner();
        self.registry
            .lock()
            .unwrap()
            .reprovisions
            .push((r.name.clone(), r.version.clone(), token));
        if let Some(status) = self.reprovision_error.lock().unwrap().clone() {
            return Err(status);
        }
        (self.on_reprovision)(r.name).await;
        Ok(Response::new(ReprovisionResponse {}))
    }
}

/// Starts a fake Lifecycle on 127.0.0.1 (within the test's runtime); `on_reprovision` runs for
/// each `Reprovision` (with the fatman's name) before it answers, as Lifecycle answers once the
/// fatman runs again.
pub fn fake_lifecycle_with(on_reprovision: OnReprovision) -> FakeLifecycle {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let fake = FakeLifecycle {
        url,
        registry: Default::default(),
        reprovision_error: Default::default(),
        on_reprovision,
    };
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let server = SupervisionServer::new(fake.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(server)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
            .unwrap();
    });
    fake
}

/// A fake Lifecycle calling `on_reprovision` (synchronously) with the fatman's name.
pub fn fake_lifecycle(on_reprovision: impl Fn(&str) + Send + Sync + 'static) -> FakeLifecycle {
    let on_reprovision = Arc::new(on_reprovision);
    fake_lifecycle_with(Arc::new(move |name: String| {
        on_reprovision(&name);
        Box::pin(async {})
    }))
}

/// The supervisor's config against `fake` (token `sup-token`), with `vars` on top.
pub fn config(fake: &FakeLifecycle, vars: &[(&str, &str)]) -> Config {
    let mut map: BTreeMap<String, String> = BTreeMap::from([
        ("LIFECYCLE_GRPC_URL".to_string(), fake.url.clone()),
        ("LIFECYCLE_AUTH_TOKEN".to_string(), "sup-token".to_string()),
    ]);
    for (k, v) in vars {
        map.insert(k.to_string(), v.to_string());
    }
    Config::from_lookup(|k| map.get(k).cloned()).unwrap()
}

pub async fn wait_for<T>(
    what: &str,
    within: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> (T, Duration) {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return (v, started.elapsed());
        }
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many `Reprovision` calls for `name` the fake Lifecycle received (each must carry the
/// supervisor's stored token, `sup-token`).
pub fn reprovisions(fake: &FakeLifecycle, name: &str) -> usize {
    fake.registry
        .lock()
        .unwrap()
        .reprovisions
        .iter()
        .filter(|(n, _, token)| {
            assert_eq!(token, "sup-token", "the supervisor's stored token is sent");
            n == name
        })
        .count()
}

/// A supervisor watching `target` as `docker`, leading already, with its stop flag.
pub fn leading_supervisor(
    config: Config,
    target: Arc<dyn InfrastructureTarget>,
) -> (Arc<Supervisor>, Arc<AtomicBool>) {
    let targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> =
        BTreeMap::from([("docker".to_string(), target)]);
    let sup = Arc::new(
        Supervisor::new(config, targets, racetrack_events::Publisher::disabled()).unwrap(),
    );
    sup.leadership.set(true, Duration::from_secs(600));
    (sup, Arc::new(AtomicBool::new(false)))
}
