use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::DbError;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// One connection type for both backends, so repositories are written once.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Postgres => "postgres",
            Backend::Sqlite => "sqlite",
        }
    }
}

pub type DbPool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Establishes the backend chosen by the URL scheme (diesel's own MultiConnection manager would try
/// Postgres first and then treat any string as an SQLite path) and applies per-connection pragmas.
#[derive(Debug, Clone)]
pub struct Manager {
    backend: Backend,
    target: String,
}

impl r2d2::ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        match self.backend {
            Backend::Postgres => PgConnection::establish(&self.target)
                .map(DbConnection::Postgresql)
                .map_err(diesel::r2d2::Error::ConnectionError),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.target)
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                // Foreign keys are off by default in SQLite; cascades in the schema rely on them.
                conn.batch_execute(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = NORMAL;",
                )
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// The pool plus what kind of database is behind it.
#[derive(Clone)]
pub struct Database {
    pool: DbPool,
    backend: Backend,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Database {
    /// `postgres://...`/`postgresql://...`, or `sqlite://PATH` / `sqlite:PATH`.
    pub fn connect(url: &str, max_connections: u32) -> Result<Database, DbError> {
        let (backend, target) = parse_url(url)?;
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; it is a property of the file,
            // so set it once, outside the pool.
            let mut conn = SqliteConnection::establish(&target)
                .map_err(|e| DbError::Connection(e.to_string()))?;
            conn.batch_execute("PRAGMA journal_mode = WAL;")?;
        }
        let manager = Manager { backend, target };
        let pool = r2d2::Pool::builder()
            .max_size(max_connections.max(1))
            .min_idle(Some(1))
            .connection_timeout(Duration::from_secs(10))
            .build(manager)?;
        Ok(Database { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn get(&self) -> Result<PooledConnection, DbError> {
        Ok(self.pool.get()?)
    }

    /// Applies pending migrations; safe to call at every start.
    pub fn migrate(&self) -> Result<Vec<String>, DbError> {
        let mut conn = self.get()?;
        let applied = match &mut *conn {
            DbConnection::Postgresql(c) => c.run_pending_migrations(PG_MIGRATIONS),
            DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS),
        }
        .map_err(|e| DbError::Migration(e.to_string()))?;
        Ok(applied.iter().map(|v| v.to_string()).collect())
    }

    /// `SELECT 1` through the pool: what `/health` and `/ready` report.
    pub fn ping(&self) -> bool {
        self.get()
            .and_then(|mut c| c.batch_execute("SELECT 1").map_err(DbError::from))
            .is_ok()
    }
}

fn parse_url(url: &str) -> Result<(Backend, String), DbError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| DbError::UnsupportedUrl(racetrack_config::redact::url(url)))?;
    if path.is_empty() || path == ":memory:" {
        // Every pooled connection would see its own empty in-memory database.
        return Err(DbError::UnsupportedUrl(url.to_string()));
    }
    Ok((Backend::Sqlite, path.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_schemes_pick_backends() {
        assert_eq!(
            parse_url("sqlite://a/b.db").unwrap(),
            (Backend::Sqlite, "a/b.db".into())
        );
        assert_eq!(
            parse_url("sqlite:x.db").unwrap(),
            (Backend::Sqlite, "x.db".into())
        );
        assert_eq!(parse_url("postgres://u@h/db").unwrap().0, Backend::Postgres);
        assert!(parse_url("sqlite://:memory:").is_err());
        assert!(parse_url("mysql://x").is_err());
    }

    #[test]
    fn unsupported_url_errors_hide_passwords() {
        let err = parse_url("mysql://user:s3cret@host/db")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn sqlite_database_migrates_and_pings() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Database::connect(&url, 2).unwrap();
        // Every migration of the folder, whatever their number (0005_manifest_json the latest).
        let migrations =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
                .unwrap()
                .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("up.sql").is_file()))
                .count();
        assert!(migrations >= 4, "{migrations}");
        assert_eq!(db.migrate().unwrap().len(), migrations);
        assert!(
            db.migrate().unwrap().is_empty(),
            "second run applies nothing"
        );
        assert!(db.ping());
    }
}
