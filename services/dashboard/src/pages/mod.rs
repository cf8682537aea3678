//! The pages: thin HTTP adapters, one module per area. Each renders Lifecycle's errors inside
//! itself and keeps what the user typed.

pub mod accounts;

use actix_web::web;

pub fn routes(cfg: &mut web::ServiceConfig) {
    accounts::routes(cfg);
}
