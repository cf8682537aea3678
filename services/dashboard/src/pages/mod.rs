//! The pages: thin HTTP adapters, one module per area. Each renders Lifecycle's errors inside
//! itself and keeps what the user typed.

pub mod accounts;
pub mod admin;
pub mod graph;
pub mod portfolio;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    accounts::routes(cfg);
    portfolio::routes(cfg);
    graph::routes(cfg);
    admin::routes(cfg);
}
