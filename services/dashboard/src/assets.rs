//! Static files, compiled into the binary: nothing is fetched from outside at run time and a
//! request can only name a file in this list (no file system paths at all).

use actix_web::http::header;
use actix_web::{web, HttpResponse};

/// (name under /dashboard/static/, content type, bytes)
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.js", JS, include_bytes!("../static/app.js")),
    ("style.css", CSS, include_bytes!("../static/style.css")),
    ("fatmen.js", JS, include_bytes!("../static/fatmen.js")),
    ("portfolio.js", JS, include_bytes!("../static/portfolio.js")),
    ("graph.js", JS, include_bytes!("../static/graph.js")),
    ("admin.js", JS, include_bytes!("../static/admin.js")),
    (
        "vendor/vis-network/vis-network.min.js",
        JS,
        include_bytes!("../static/vendor/vis-network/vis-network.min.js"),
    ),
    (
        "vendor/vis-network/vis-network.css",
        CSS,
        include_bytes!("../static/vendor/vis-network/vis-network.css"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/{path:.*}", web::get().to(serve));
}

async fn serve(path: web::Path<String>) -> HttpResponse {
    match FILES.iter().find(|(name, _, _)| *name == path.as_str()) {
        Some((_, content_type, bytes)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(*bytes),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("no such file"),
    }
}
