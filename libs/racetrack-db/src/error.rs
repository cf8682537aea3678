use thiserror::Error;

#[derive(Debug, Error)]
pub enum DbError {
    #[error("unsupported DATABASE_URL {0:?}: expected postgres://... or sqlite://PATH")]
    UnsupportedUrl(String),
    #[error("database connection failed: {0}")]
    Connection(String),
    #[error("database pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("database query failed: {0}")]
    Query(diesel::result::Error),
}

impl From<diesel::result::Error> for DbError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                DbError::AlreadyExists(info.table_name().unwrap_or("record").to_string())
            }
            other => DbError::Query(other),
        }
    }
}
