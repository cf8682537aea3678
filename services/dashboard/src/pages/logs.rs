//! A fatman's logs: runtime and build logs as plain text, and a page following the runtime log
//! as the fatman writes it (events from Lifecycle's `FollowRuntimeLogs` stream).

use actix_web::{web, HttpResponse};
use maud::html;
use racetrack_proto::dashboard::LogsRequest;
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::error::PageError;
use crate::layout;
use crate::lifecycle::{self, LifecycleError};
use crate::pages::accounts::viewer;
use crate::pages::events::{api_error, failure, sse_comment, sse_event, sse_response, KEEP_ALIVE};
use crate::session::SignedIn;
use crate::State;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/fatman/logs/{name}/{version}", web::get().to(runtime_logs))
        .route(
            "/fatman/build-logs/{name}/{version}",
            web::get().to(build_logs),
        )
        .route(
            "/fatman/{name}/{version}/logs/follow",
            web::get().to(follow_page),
        )
        .route(
            "/fatman/{name}/{version}/logs/stream",
            web::get().to(follow_stream),
        );
}

/// Removes ANSI colour codes (`ESC [ <numbers separated by ;> m`); other text, including an
/// escape that is not a colour code, stays as it is.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let code_len = after.strip_prefix('[').and_then(|params| {
            let digits = params
                .bytes()
                .take_while(|b| b.is_ascii_digit() || *b == b';')
                .count();
            (params.as_bytes().get(digits) == Some(&b'm')).then_some(1 + digits + 1)
        });
        match code_len {
            Some(len) => rest = &after[len..],
            None => {
                out.push('\x1b');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Deserialize)]
pub struct TailQuery {
    tail: Option<u32>,
}

fn plain(status: actix_web::http::StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

fn logs_response(result: Result<String, LifecycleError>) -> HttpResponse {
    match result {
        Ok(logs) => plain(actix_web::http::StatusCode::OK, strip_ansi(&logs)),
        Err(e) => plain(lifecycle::http_status(&e), e.to_string()),
    }
}

fn logs_request(path: web::Path<(String, String)>, tail: Option<u32>) -> LogsRequest {
    let (name, version) = path.into_inner();
    LogsRequest {
        name,
        version,
        tail: tail.unwrap_or(0),
    }
}

async fn runtime_logs(
    state: State,
    user: SignedIn,
    path: web::Path<(String, String)>,
    query: web::Query<TailQuery>,
) -> HttpResponse {
    let request = logs_request(path, query.tail);
    let result = state
        .lifecycle
        .call(Some(&user.token), request, |mut c, r| async move {
            c.runtime_logs(r).await
        })
        .await
        .map(|l| l.logs);
    logs_response(result)
}

async fn build_logs(
    state: State,
    user: SignedIn,
    path: web::Path<(String, String)>,
    query: web::Query<TailQuery>,
) -> HttpResponse {
    let request = logs_request(path, query.tail);
    let result = state
        .lifecycle
        .call(Some(&user.token), request, |mut c, r| async move {
            c.build_logs(r).await
        })
        .await
        .map(|l| l.logs);
    logs_response(result)
}

async fn follow_page(
    state: State,
    user: SignedIn,
    path: web::Path<(String, String)>,
    query: web::Query<TailQuery>,
) -> HttpResponse {
    let (name, version) = path.into_inner();
    let enc = racetrack_config::redact::percent_encode;
    let mut stream_url = format!(
        "/dashboard/fatman/{}/{}/logs/stream",
        enc(&name),
        enc(&version)
    );
    if let Some(tail) = query.tail {
        stream_url.push_str(&format!("?tail={tail}"));
    }
    let body = html! {
        section.card #log-follow {
            h1 { "Logs of " (name) " " (version) }
            p.muted {
                span #log-status { "connecting…" }
                " · "
                a href=(format!("/dashboard/fatman/logs/{}/{}", enc(&name), enc(&version))) target="_blank" rel="noopener" { "plain text" }
            }
            div #log-failure.alert.error role="alert" hidden {}
            pre #log-lines data-stream-url=(stream_url) {}
        }
        script src="/dashboard/static/fatmen.js" defer {}
    };
    let csrf = user.csrf();
    let viewer = viewer(&user, &csrf);
    layout::page(
        &state.ui,
        Some(&viewer),
        &format!("Logs of {name} {version}"),
        &[],
        body,
    )
}

async fn follow_stream(
    state: State,
    user: Result<SignedIn, PageError>,
    path: web::Path<(String, String)>,
    query: web::Query<TailQuery>,
) -> HttpResponse {
    let user = match user {
        Ok(u) => u,
        Err(e) => return api_error(&e),
    };
    let request = logs_request(path, query.tail);
    let state = state.clone();
    sse_response(move |tx| follow(state, user.token, request, tx))
}

/// `lines` as the event's data: a JSON string, so line breaks and carriage returns in the log
/// cannot break the event framing.
fn lines_event(lines: &str) -> bytes::Bytes {
    let text = serde_json::Value::String(strip_ansi(lines)).to_string();
    sse_event("lines", &text)
}

async fn follow(state: State, token: String, request: LogsRequest, tx: mpsc::Sender<bytes::Bytes>) {
    let request = match state.lifecycle.stream_request(&token, request) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(failure(&e)).await;
            return;
        }
    };
    let mut client = state.lifecycle.client();
    let opened = tokio::select! {
        _ = tx.closed() => return,
        opened = client.follow_runtime_logs(request) => opened,
    };
    let mut stream = match opened {
        Ok(r) => r.into_inner(),
        Err(status) => {
            let _ = tx.send(failure(&LifecycleError::of(status))).await;
            return;
        }
    };
    if tx.send(sse_comment("connected")).await.is_err() {
        return;
    }
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    loop {
        let message = tokio::select! {
            // Dropping the gRPC stream cancels the call on Lifecycle's side too.
            _ = tx.closed() => return,
            _ = keep_alive.tick() => sse_comment("keep-alive"),
            next = stream.message() => match next {
                Ok(Some(chunk)) => lines_event(&chunk.lines),
                Ok(None) => {
                    let _ = tx.send(sse_event("end", "\"the log stream ended\"")).await;
                    return;
                }
                Err(status) => {
                    let _ = tx.send(failure(&LifecycleError::of(status))).await;
                    return;
                }
            },
        };
        if tx.send(message).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colour_codes() {
        assert_eq!(strip_ansi("\x1b[32mINFO\x1b[0m started"), "INFO started");
        assert_eq!(strip_ansi("\x1b[1;31merror\x1b[m!"), "error!");
        assert_eq!(strip_ansi("\x1b[38;5;208morange\x1b[39m"), "orange");
        assert_eq!(strip_ansi("plain\nlines\n"), "plain\nlines\n");
        assert_eq!(strip_ansi("żółć \x1b[33mß\x1b[0m"), "żółć ß");
    }

    #[test]
    fn keeps_what_is_not_a_colour_code() {
        // A cursor movement and a dangling escape are left alone.
        assert_eq!(strip_ansi("a\x1b[2Kb"), "a\x1b[2Kb");
        assert_eq!(strip_ansi("end\x1b"), "end\x1b");
        assert_eq!(strip_ansi("end\x1b["), "end\x1b[");
        assert_eq!(strip_ansi("\x1b\x1b[0mx"), "\x1bx");
    }

    #[test]
    fn lines_travel_as_one_json_string() {
        let e = lines_event("one\r\n\x1b[31mtwo\x1b[0m\n");
        assert_eq!(
            &e[..],
            b"event: lines\ndata: \"one\\r\\ntwo\\n\"\n\n".as_slice()
        );
    }
}
