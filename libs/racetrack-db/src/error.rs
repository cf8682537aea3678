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
    /// A stored value the code does not know (e.g. a status text no enum variant has): the row
    /// cannot be read, and the message says which field holds what.
    #[error("database row is invalid: {0}")]
    InvalidRow(String),
}

impl From<diesel::result::Error> for DbError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                DbError::AlreadyExists(info.table_name().unwrap_or("record").to_string())
            }
            Error::DeserializationError(e) => {
                // diesel names the field; its source says what was wrong with the value.
                let mut message = e.to_string();
                let mut source = e.source();
                while let Some(cause) = source {
                    message.push_str(": ");
                    message.push_str(&cause.to_string());
                    source = cause.source();
                }
                DbError::InvalidRow(message)
            }
            other => DbError::Query(other),
        }
    }
}
