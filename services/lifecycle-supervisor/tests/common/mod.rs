//! Helpers shared by the healing tests: a recording fake Lifecycle and registry rows.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;

use lifecycle_supervisor::config::Config;
use lifecycle_supervisor::Supervisor;
use racetrack_db::models::Fatman;
use racetrack_db::repo::fatmen;
use racetrack_db::Database;
use racetrack_infra::InfrastructureTarget;

/// Requests the fake Lifecycle received: `(METHOD path, X-Racetrack-Auth)`.
pub type Calls = Arc<Mutex<Vec<(String, String)>>>;

/// Records `POST path` + the auth header of each request, calls `on_call` with the path, answers
/// 200 `null` (as Lifecycle's reprovision does when the fatman runs again).
pub fn fake_lifecycle(on_call: impl Fn(&str) + Send + 'static) -> (String, Calls) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            let _ = reader.read_line(&mut request_line);
            let mut token = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("x-racetrack-auth") {
                        token = v.trim().to_string();
                    }
                }
            }
            let path = request_line
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            on_call(&path);
            recorded.lock().unwrap().push((path, token));
            let mut stream = stream;
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\nConnection: close\r\n\r\nnull",
            );
        }
    });
    (url, calls)
}

pub fn register(db: &Database, name: &str, internal_name: &str) {
    let mut conn = db.get().unwrap();
    let (family, _) = fatmen::get_or_create_family(&mut conn, name).unwrap();
    let now = racetrack_db::now();
    fatmen::insert(
        &mut conn,
        &Fatman {
            id: racetrack_db::new_id(),
            family_id: family.id,
            name: name.into(),
            version: "1.0.0".into(),
            status: racetrack_model::FatmanStatus::Running,
            create_time: now,
            update_time: now,
            manifest: Some(format!("name: {name}\nversion: 1.0.0\n")),
            internal_name: Some(internal_name.into()),
            error: None,
            image_tag: Some("t".into()),
            deployed_by: Some("alice".into()),
            last_call_time: None,
            infrastructure_target: Some("docker".into()),
        },
    )
    .unwrap();
}

pub fn status(db: &Database, name: &str) -> (String, Option<String>) {
    fatmen::find(&mut db.get().unwrap(), name, "1.0.0")
        .unwrap()
        .map(|f| (f.status.to_string(), f.error))
        .unwrap()
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

/// How many `POST .../reprovision` calls for `name` the fake Lifecycle received (each must carry
/// the supervisor's stored token, `sup-token`).
pub fn reprovisions(calls: &Mutex<Vec<(String, String)>>, name: &str) -> usize {
    let wanted = format!("POST /api/v1/fatman/{name}/1.0.0/reprovision");
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(path, token)| {
            assert_eq!(token, "sup-token", "the supervisor's stored token is sent");
            *path == wanted
        })
        .count()
}

/// A supervisor on `db` watching `target` as `docker`, leading already, with its stop flag.
pub fn leading_supervisor(
    config: Config,
    db: &Database,
    target: Arc<dyn InfrastructureTarget>,
) -> (Arc<Supervisor>, Arc<AtomicBool>) {
    let targets: BTreeMap<String, Arc<dyn InfrastructureTarget>> =
        BTreeMap::from([("docker".to_string(), target)]);
    let sup = Arc::new(Supervisor::new(
        config,
        db.clone(),
        targets,
        racetrack_events::Publisher::disabled(),
    ));
    sup.leadership.set(true, Duration::from_secs(600));
    (sup, Arc::new(AtomicBool::new(false)))
}
