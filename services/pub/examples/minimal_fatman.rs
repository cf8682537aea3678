//! The smallest fatman that keeps the runtime contract (`/live`, `/ready`, `/health`, and a
//! `perform` under `/pub/fatman/{name}/{version}/api/v1/perform`): the upstream of PUB's benchmark
//! (`bench/pub.py`), so that the proxy, not the fatman, is what gets measured.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(7000);
    let started = std::env::var("FATMAN_DEPLOYMENT_TIMESTAMP").unwrap_or_else(|_| "0".into());
    let live: &'static str = Box::leak(
        format!("{{\"live\": true, \"deployment_timestamp\": {started}}}").into_boxed_str(),
    );
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<hyper::body::Incoming>| async move {
                        let path = req.uri().path();
                        let body: &'static str = if path.ends_with("/live") {
                            live
                        } else if path.ends_with("/ready") {
                            "{\"ready\": true}"
                        } else if path.ends_with("/health") {
                            "{\"status\": \"pass\"}"
                        } else {
                            "42"
                        };
                        let mut resp =
                            Response::new(Full::new(Bytes::from_static(body.as_bytes())));
                        resp.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        Ok::<_, Infallible>(resp)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        })
}
