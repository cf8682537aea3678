//! Queries, one module per entity.

pub mod audit;
pub mod auth;
pub mod deployments;
pub mod escs;
pub mod fatmen;
pub mod supervisor;
pub mod users;
