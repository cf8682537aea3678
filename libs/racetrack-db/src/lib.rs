//! Racetrack's storage: one diesel schema served by Postgres (production) and SQLite (the embedded
//! default). Only lifecycle and the supervisor link this crate; every other component goes through
//! the Lifecycle API.
//!
//! Repositories are plain functions over `&mut DbConnection`, so callers decide the transaction
//! boundaries (`conn.transaction(|c| ...)`).

mod connection;
mod error;
pub mod lease;
pub mod models;
pub mod repo;
pub mod schema;

pub use connection::{Backend, Database, DbConnection, DbPool, PooledConnection};
pub use diesel::result::Error as QueryError;
/// Brings `transaction` into scope for callers of the repositories.
pub use diesel::Connection;
pub use error::DbError;

/// Current UTC time as stored in the database (timestamps are naive UTC in both backends).
pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// A fresh UUID4 string, the id format of every registry table.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}
