//! An in-process fake of the Kubernetes API server, for the paths the Kubernetes target uses:
//! server-side apply (PATCH `application/apply-patch+yaml`), GET, LIST (label selectors), WATCH
//! (`?watch=true&resourceVersion=N`), DELETE of namespaced objects, and pod logs. Objects keep
//! `metadata.resourceVersion`: an apply that changes nothing keeps it, an apply naming a stale one
//! gets 409. Failures can be injected.
//!
//! Watches: every change (apply, [`FakeKube::put`], [`FakeKube::remove`], DELETE) gets the next
//! resourceVersion and is kept in a log; a watch replays the log after the resourceVersion it
//! names (none, or `0`: from now on), then streams changes as they happen, as newline-delimited
//! `{"type": "ADDED|MODIFIED|DELETED", "object": ...}`. A list answers with the collection's
//! current resourceVersion. Bookmarks are not sent. [`FakeKube::expire_history`] compacts the
//! log: a watch resumed from before that gets a 410 Gone `ERROR` event, as from a real server.
//! Shared by this crate's tests and the services' (Lifecycle, supervisor).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

type Key = (String, String, String);
type Body = UnsyncBoxBody<Bytes, Infallible>;

/// One change, as watches see it.
struct Logged {
    rv: u64,
    kind: &'static str,
    key: Key,
    object: Value,
}

/// An open watch: `(resource, namespace, label selector)` and where its events go.
struct Watch {
    resource: String,
    ns: String,
    selector: String,
    tx: tokio::sync::mpsc::UnboundedSender<Bytes>,
}

impl Watch {
    fn wants(&self, key: &Key, object: &Value) -> bool {
        self.resource == key.0 && self.ns == key.1 && matches_selector(object, &self.selector)
    }
}

fn watch_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

#[derive(Default)]
struct State {
    /// (resource plural, namespace, name) → object.
    objects: BTreeMap<Key, Value>,
    next_rv: u64,
    /// (method, resource, status code), each used once.
    failures: Vec<(Method, String, u16)>,
    /// (namespace, pod) → log text.
    logs: BTreeMap<(String, String), String>,
    /// `METHOD path?query content-type` of every request.
    requests: Vec<String>,
    /// Every change, oldest first.
    log: Vec<Logged>,
    /// A watch from an older resourceVersion than this is too old (410).
    oldest_rv: u64,
    watches: Vec<Watch>,
}

impl State {
    /// Logs a change (its object carrying its new resourceVersion) and sends it to the watches
    /// that select it (dropping the ones whose client went away).
    fn changed(&mut self, kind: &'static str, key: Key, object: Value) {
        let rv = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(self.next_rv);
        self.watches
            .retain(|w| !w.wants(&key, &object) || w.tx.send(watch_line(kind, &object)).is_ok());
        self.log.push(Logged {
            rv,
            kind,
            key,
            object,
        });
    }
}

#[derive(Clone)]
pub struct FakeKube {
    state: Arc<Mutex<State>>,
    pub url: String,
}

impl FakeKube {
    pub async fn start() -> FakeKube {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            next_rv: 100,
            ..Default::default()
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeKube { state, url }
    }

    pub fn client_config(&self) -> kube::Config {
        let mut config = kube::Config::new(self.url.parse().unwrap());
        config.default_namespace = "fatmen".into();
        config
    }

    pub fn object(&self, resource: &str, ns: &str, name: &str) -> Option<Value> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(&(resource.into(), ns.into(), name.into()))
            .cloned()
    }

    pub fn names(&self, resource: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .keys()
            .filter(|(r, _, _)| r == resource)
            .map(|(_, _, n)| n.clone())
            .collect()
    }

    /// Stores an object as a controller would (pods, statuses), with a fresh resourceVersion.
    pub fn put(&self, resource: &str, ns: &str, name: &str, mut object: Value) {
        let mut state = self.state.lock().unwrap();
        state.next_rv += 1;
        object["metadata"]["resourceVersion"] = json!(state.next_rv.to_string());
        object["metadata"]["name"] = json!(name);
        object["metadata"]["namespace"] = json!(ns);
        let key: Key = (resource.into(), ns.into(), name.into());
        let kind = match state.objects.insert(key.clone(), object.clone()) {
            Some(_) => "MODIFIED",
            None => "ADDED",
        };
        state.changed(kind, key, object);
    }

    /// Deletes an object as a controller or another client would (watches see it DELETED).
    pub fn remove(&self, resource: &str, ns: &str, name: &str) {
        let mut state = self.state.lock().unwrap();
        remove_object(&mut state, (resource.into(), ns.into(), name.into()));
    }

    /// Forgets the change log, as an API server that lost its watches and compacted changes
    /// nobody saw, and closes every open watch: the clients resume from their last
    /// resourceVersion, get 410 Gone, and list afresh.
    pub fn expire_history(&self) {
        let mut state = self.state.lock().unwrap();
        state.log.clear();
        state.next_rv += 1;
        state.oldest_rv = state.next_rv;
        state.watches.clear();
    }

    /// How many watches are open on `resource` (a test can wait for a watcher to be in place).
    pub fn watching(&self, resource: &str) -> usize {
        let mut state = self.state.lock().unwrap();
        state.watches.retain(|w| !w.tx.is_closed());
        state
            .watches
            .iter()
            .filter(|w| w.resource == resource)
            .count()
    }

    /// The next `method` request on `resource` fails with `code`.
    pub fn fail_next(&self, method: Method, resource: &str, code: u16) {
        let mut state = self.state.lock().unwrap();
        state.failures.push((method, resource.into(), code));
    }

    pub fn set_log(&self, ns: &str, pod: &str, text: &str) {
        let mut state = self.state.lock().unwrap();
        state.logs.insert((ns.into(), pod.into()), text.into());
    }

    pub fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn kind_of(resource: &str) -> &'static str {
    match resource {
        "deployments" => "Deployment",
        "services" => "Service",
        "secrets" => "Secret",
        "pods" => "Pod",
        "networkpolicies" => "NetworkPolicy",
        _ => "Unknown",
    }
}

/// Removes the object, if there, as a change with a new resourceVersion.
fn remove_object(state: &mut State, key: Key) -> Option<Value> {
    let mut object = state.objects.remove(&key)?;
    state.next_rv += 1;
    object["metadata"]["resourceVersion"] = json!(state.next_rv.to_string());
    state.changed("DELETED", key, object.clone());
    Some(object)
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn respond(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap()
}

/// A watch of `resource` in `ns`: the logged changes after `from` (none when `from` is 0), then
/// every change as it happens, until the client goes away.
fn watch(state: &mut State, resource: &str, ns: &str, selector: &str, from: u64) -> Response<Body> {
    if from > 0 && from < state.oldest_rv {
        let gone = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("too old resource version: {from} ({})", state.oldest_rv),
            "reason": "Expired", "code": 410,
        });
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(full(watch_line("ERROR", &gone)))
            .unwrap();
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let watch = Watch {
        resource: resource.into(),
        ns: ns.into(),
        selector: selector.into(),
        tx,
    };
    if from > 0 {
        for logged in state.log.iter().filter(|l| l.rv > from) {
            if watch.wants(&logged.key, &logged.object) {
                let _ = watch.tx.send(watch_line(logged.kind, &logged.object));
            }
        }
    }
    state.watches.push(watch);
    let frames = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(Frame::data(line)), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(StreamBody::new(frames).boxed_unsync())
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str) -> Response<Body> {
    respond(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": if code < 300 { "Success" } else { "Failure" },
            "message": message, "reason": reason, "code": code,
        }),
    )
}

fn query_param(query: &str, key: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// `a=b,c` selectors: equality and existence.
fn matches_selector(object: &Value, selector: &str) -> bool {
    let labels = &object["metadata"]["labels"];
    selector
        .split(',')
        .filter(|s| !s.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => labels[k].as_str() == Some(v),
            None => !labels[term].is_null(),
        })
}

fn without_rv(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(meta) = o["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    o
}

async fn handle(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or_default().to_string();
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let Some(i) = segments.iter().position(|s| *s == "namespaces") else {
        return Ok(status(404, "NotFound", "unknown path"));
    };
    let ns = segments.get(i + 1).copied().unwrap_or_default().to_string();
    let resource = segments.get(i + 2).copied().unwrap_or_default().to_string();
    let name = segments.get(i + 3).map(|s| s.to_string());
    let sub = segments.get(i + 4).map(|s| s.to_string());

    let mut state = state.lock().unwrap();
    state
        .requests
        .push(format!("{method} {path}?{query} {content_type}"));
    if let Some(pos) = state
        .failures
        .iter()
        .position(|(m, r, _)| *m == method && *r == resource)
    {
        let (_, _, code) = state.failures.remove(pos);
        let (reason, message) = match code {
            403 => ("Forbidden", format!(
                "{resource} \"{}\" is forbidden: User \"system:serviceaccount:racetrack:lifecycle\" cannot {} resource \"{resource}\" in the namespace \"{ns}\"",
                name.clone().unwrap_or_default(), method.as_str().to_lowercase()
            )),
            404 => ("NotFound", format!("{resource} \"{}\" not found", name.clone().unwrap_or_default())),
            409 => ("Conflict", format!(
                "Operation cannot be fulfilled on {resource} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
                name.clone().unwrap_or_default()
            )),
            _ => ("InternalError", "injected failure".to_string()),
        };
        return Ok(status(code, reason, &message));
    }
    let kind = kind_of(&resource);

    match (&method, name, sub.as_deref()) {
        (&Method::GET, None, None) if query_param(&query, "watch").as_deref() == Some("true") => {
            let selector = query_param(&query, "labelSelector").unwrap_or_default();
            let from = match query_param(&query, "resourceVersion") {
                None => 0,
                Some(v) => match v.parse::<u64>() {
                    Ok(rv) => rv,
                    Err(_) => {
                        return Ok(status(
                            400,
                            "BadRequest",
                            &format!("invalid resourceVersion {v:?}"),
                        ))
                    }
                },
            };
            Ok(watch(&mut state, &resource, &ns, &selector, from))
        }
        (&Method::GET, None, None) => {
            let selector = query_param(&query, "labelSelector").unwrap_or_default();
            let items: Vec<Value> = state
                .objects
                .iter()
                .filter(|((r, n, _), o)| {
                    *r == resource && *n == ns && matches_selector(o, &selector)
                })
                .map(|(_, o)| o.clone())
                .collect();
            let rv = state.next_rv.to_string();
            Ok(respond(
                200,
                &json!({"kind": format!("{kind}List"), "apiVersion": "v1",
                        "metadata": {"resourceVersion": rv}, "items": items}),
            ))
        }
        (&Method::GET, Some(name), None) => {
            match state
                .objects
                .get(&(resource.clone(), ns.clone(), name.clone()))
            {
                Some(o) => Ok(respond(200, o)),
                None => Ok(status(
                    404,
                    "NotFound",
                    &format!("{resource} \"{name}\" not found"),
                )),
            }
        }
        (&Method::GET, Some(name), Some("log")) => {
            if !state
                .objects
                .contains_key(&("pods".into(), ns.clone(), name.clone()))
            {
                return Ok(status(
                    404,
                    "NotFound",
                    &format!("pods \"{name}\" not found"),
                ));
            }
            let text = state.logs.get(&(ns, name)).cloned().unwrap_or_default();
            let text = match query_param(&query, "tailLines").and_then(|t| t.parse::<usize>().ok())
            {
                Some(tail) => {
                    let lines: Vec<&str> = text.lines().collect();
                    let start = lines.len().saturating_sub(tail);
                    lines[start..].iter().map(|l| format!("{l}\n")).collect()
                }
                None => text,
            };
            Ok(Response::builder()
                .status(200)
                .header("content-type", "text/plain")
                .body(full(text))
                .unwrap())
        }
        (&Method::PATCH, Some(name), None) => {
            if content_type != "application/apply-patch+yaml" {
                return Ok(status(415, "UnsupportedMediaType", "only apply patches"));
            }
            if query_param(&query, "fieldManager").is_none() {
                return Ok(status(
                    400,
                    "BadRequest",
                    "fieldManager is required for apply",
                ));
            }
            let Ok(applied) = serde_json::from_slice::<Value>(&body) else {
                return Ok(status(400, "BadRequest", "body is not JSON"));
            };
            if applied["kind"].as_str() != Some(kind)
                || applied["metadata"]["name"].as_str() != Some(&name)
            {
                return Ok(status(
                    400,
                    "BadRequest",
                    "kind or name does not match the path",
                ));
            }
            let key = (resource.clone(), ns.clone(), name.clone());
            let existing = state.objects.get(&key).cloned();
            if let (Some(rv), Some(current)) =
                (applied["metadata"]["resourceVersion"].as_str(), &existing)
            {
                if current["metadata"]["resourceVersion"].as_str() != Some(rv) {
                    return Ok(status(409, "Conflict", &format!(
                        "Operation cannot be fulfilled on {resource} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                    )));
                }
            }
            let mut candidate = applied.clone();
            candidate["metadata"]["namespace"] = json!(ns);
            match &existing {
                Some(current) => {
                    for field in ["uid", "creationTimestamp"] {
                        candidate["metadata"][field] = current["metadata"][field].clone();
                    }
                    if !current["status"].is_null() {
                        candidate["status"] = current["status"].clone();
                    }
                    if without_rv(current) == without_rv(&candidate) {
                        return Ok(respond(200, current));
                    }
                }
                None => {
                    candidate["metadata"]["uid"] = json!(format!("uid-{}", state.next_rv));
                    candidate["metadata"]["creationTimestamp"] = json!("2026-12-03T12:00:00Z");
                }
            }
            state.next_rv += 1;
            candidate["metadata"]["resourceVersion"] = json!(state.next_rv.to_string());
            state.objects.insert(key.clone(), candidate.clone());
            let kind = if existing.is_some() {
                "MODIFIED"
            } else {
                "ADDED"
            };
            state.changed(kind, key, candidate.clone());
            Ok(respond(
                if existing.is_some() { 200 } else { 201 },
                &candidate,
            ))
        }
        (&Method::DELETE, Some(name), None) => {
            match remove_object(&mut state, (resource.clone(), ns, name.clone())) {
                Some(_) => Ok(status(200, "", "deleted")),
                None => Ok(status(
                    404,
                    "NotFound",
                    &format!("{resource} \"{name}\" not found"),
                )),
            }
        }
        _ => Ok(status(405, "MethodNotAllowed", "not supported by the fake")),
    }
}
