//! Registry cleaner: deletes registry images of fatmen that no longer exist and unused tags
//! beyond a retention count (README, "Operations: registry cleaner").
//!
//! [`plan`] decides without I/O; [`registry`] (Docker registry HTTP API v2) and [`lifecycle`]
//! (Lifecycle's REST API) are the adapters around it; [`app::run`] ties them together for the
//! binary.

pub mod app;
pub mod cli;
pub mod error;
pub mod http;
pub mod lifecycle;
pub mod plan;
pub mod registry;

pub use error::Error;
