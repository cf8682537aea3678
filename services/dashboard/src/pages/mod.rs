//! The pages: thin HTTP adapters, one module per area. Each renders Lifecycle's errors inside
//! itself and keeps what the user typed.

pub mod accounts;
pub mod admin;
pub mod audit;
pub mod events;
pub mod fatmen;
pub mod graph;
pub mod logs;
pub mod portfolio;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    accounts::routes(cfg);
    fatmen::routes(cfg);
    events::routes(cfg);
    logs::routes(cfg);
    audit::routes(cfg);
    portfolio::routes(cfg);
    graph::routes(cfg);
    admin::routes(cfg);
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod http_tests;

#[cfg(test)]
#[path = "fake_lifecycle.rs"]
mod fake_lifecycle;
