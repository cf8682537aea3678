//! Leadership between replicas of a service (the lifecycle supervisor): only the holder acts.
//!
//! - **Postgres**: a session-level advisory lock (`pg_try_advisory_lock`) held on a dedicated
//!   connection outside the pool. The server releases it the moment that connection dies (process
//!   killed, network gone), so another replica takes over at its next attempt. The holder checks
//!   its connection on every renewal; an error there means leadership is lost. (Session locks
//!   need a direct connection: not through pgbouncer in transaction pooling mode.)
//! - **SQLite**: a lease row in `racetrack_lease` with an expiry time, renewed by the holder and
//!   taken over by another replica once it has expired. A file lock would free the lease sooner
//!   after a crash, but a row needs no platform-specific locking (and no `unsafe`), works wherever
//!   the database file works, and shows who holds it (`holder`) to anyone reading the database.
//!   Takeover after a crash waits out the lease (its length is the caller's choice).

use std::time::Duration;

use diesel::prelude::*;
use diesel::{Connection, PgConnection};

use crate::schema::racetrack_lease as lease;
use crate::{Backend, Database, DbConnection, DbError};

/// One named leadership, as seen by one replica (`holder`).
pub struct LeaderLock {
    name: String,
    holder: String,
    kind: Kind,
}

enum Kind {
    Postgres {
        url: String,
        conn: Option<PgConnection>,
        held: bool,
    },
    Sqlite {
        db: Database,
        lease: Duration,
    },
}

impl std::fmt::Debug for LeaderLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderLock")
            .field("name", &self.name)
            .field("holder", &self.holder)
            .field("mechanism", &self.mechanism())
            .finish()
    }
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    flag: bool,
}

impl LeaderLock {
    /// `database_url` must be the URL `db` was opened with (Postgres needs its own connection).
    /// `lease` is how long an SQLite lease lasts without renewal.
    pub fn new(
        db: &Database,
        database_url: &str,
        name: &str,
        holder: &str,
        lease: Duration,
    ) -> LeaderLock {
        let kind = match db.backend() {
            Backend::Postgres => Kind::Postgres {
                url: database_url.to_string(),
                conn: None,
                held: false,
            },
            Backend::Sqlite => Kind::Sqlite {
                db: db.clone(),
                lease,
            },
        };
        LeaderLock {
            name: name.to_string(),
            holder: holder.to_string(),
            kind,
        }
    }

    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// `"postgres advisory lock"` or `"sqlite lease row"`.
    pub fn mechanism(&self) -> &'static str {
        match self.kind {
            Kind::Postgres { .. } => "postgres advisory lock",
            Kind::Sqlite { .. } => "sqlite lease row",
        }
    }

    /// Takes the leadership when free, or confirms (renews) it when already held. `Ok(true)`:
    /// this replica leads (for an SQLite lease: until `lease` from now, unless renewed again).
    /// `Ok(false)`: another replica leads. `Err`: the database could not be asked, so this
    /// replica must not act (a held Postgres lock is dropped with its connection).
    pub fn try_acquire(&mut self) -> Result<bool, DbError> {
        let key = advisory_key(&self.name);
        match &mut self.kind {
            Kind::Postgres { url, conn, held } => {
                if conn.is_none() {
                    *held = false;
                    *conn = Some(
                        PgConnection::establish(url)
                            .map_err(|e| DbError::Connection(e.to_string()))?,
                    );
                }
                let Some(c) = conn.as_mut() else {
                    return Err(DbError::Connection("no leadership connection".into()));
                };
                let query = if *held {
                    // Still ours? (A restarted server or a terminated backend frees it.)
                    // This dedicated session takes no other advisory lock.
                    diesel::sql_query(
                        "SELECT count(*) > 0 AS flag FROM pg_locks WHERE locktype = 'advisory' \
                         AND granted AND pid = pg_backend_pid()",
                    )
                    .get_result::<Flag>(c)
                } else {
                    diesel::sql_query("SELECT pg_try_advisory_lock($1) AS flag")
                        .bind::<diesel::sql_types::BigInt, _>(key)
                        .get_result::<Flag>(c)
                };
                match query {
                    Ok(row) => {
                        *held = row.flag;
                        Ok(row.flag)
                    }
                    Err(e) => {
                        // The session (and any lock it held) is gone or unusable.
                        *conn = None;
                        *held = false;
                        Err(DbError::from(e))
                    }
                }
            }
            Kind::Sqlite { db, lease } => {
                let mut conn = db.get()?;
                sqlite_acquire(&mut conn, &self.name, &self.holder, *lease)
            }
        }
    }

    /// Gives the leadership up (best effort) so another replica may take it at once.
    pub fn release(&mut self) {
        match &mut self.kind {
            Kind::Postgres { conn, held, .. } => {
                // Closing the session releases its advisory locks.
                *conn = None;
                *held = false;
            }
            Kind::Sqlite { db, .. } => {
                if let Ok(mut conn) = db.get() {
                    let _ = diesel::delete(
                        lease::table
                            .filter(lease::name.eq(&self.name))
                            .filter(lease::holder.eq(&self.holder)),
                    )
                    .execute(&mut *conn);
                }
            }
        }
    }
}

/// Current holder of an SQLite lease and when it expires (`None` when nobody ever held it).
pub fn sqlite_lease_holder(
    conn: &mut DbConnection,
    name: &str,
) -> Result<Option<(String, chrono::NaiveDateTime)>, DbError> {
    Ok(lease::table
        .filter(lease::name.eq(name))
        .select((lease::holder, lease::expire_time))
        .first(conn)
        .optional()?)
}

/// A lease row granted by the one service writing the database (Lifecycle, for its
/// `Supervision` API), on either backend: takes the lease `name` for `holder` when it is free or
/// expired, renews it when `holder` has it. `Ok(true)`: `holder` has it until `duration` from now.
pub fn acquire_row(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    duration: Duration,
) -> Result<bool, DbError> {
    sqlite_acquire(conn, name, holder, duration)
}

/// Drops the lease row when `holder` has it; `true` when it did.
pub fn release_row(conn: &mut DbConnection, name: &str, holder: &str) -> Result<bool, DbError> {
    let deleted = diesel::delete(
        lease::table
            .filter(lease::name.eq(name))
            .filter(lease::holder.eq(holder)),
    )
    .execute(conn)?;
    Ok(deleted > 0)
}

/// Whether `holder` has the (unexpired) lease `name` right now.
pub fn holds(conn: &mut DbConnection, name: &str, holder: &str) -> Result<bool, DbError> {
    let n: i64 = lease::table
        .filter(lease::name.eq(name))
        .filter(lease::holder.eq(holder))
        .filter(lease::expire_time.gt(crate::now()))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

fn sqlite_acquire(
    conn: &mut DbConnection,
    name: &str,
    holder: &str,
    duration: Duration,
) -> Result<bool, DbError> {
    let now = crate::now();
    let expire = now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
    conn.transaction(|conn| {
        let renewed = diesel::update(
            lease::table
                .filter(lease::name.eq(name))
                .filter(lease::holder.eq(holder)),
        )
        .set(lease::expire_time.eq(expire))
        .execute(conn)?;
        if renewed > 0 {
            return Ok(true);
        }
        let taken = diesel::update(
            lease::table
                .filter(lease::name.eq(name))
                .filter(lease::expire_time.lt(now)),
        )
        .set((
            lease::holder.eq(holder),
            lease::acquire_time.eq(now),
            lease::expire_time.eq(expire),
        ))
        .execute(conn)?;
        if taken > 0 {
            return Ok(true);
        }
        let exists: i64 = lease::table
            .filter(lease::name.eq(name))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            return Ok(false);
        }
        diesel::insert_into(lease::table)
            .values((
                lease::name.eq(name),
                lease::holder.eq(holder),
                lease::acquire_time.eq(now),
                lease::expire_time.eq(expire),
            ))
            .execute(conn)?;
        Ok(true)
    })
    .or_else(|e: DbError| match e {
        // Another replica inserted the row first.
        DbError::AlreadyExists(_) => Ok(false),
        other => Err(other),
    })
}

/// A stable 64-bit key for a lock name (FNV-1a).
fn advisory_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= byte as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite() -> (tempfile::TempDir, Database, String) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let db = Database::connect(&url, 2).unwrap();
        db.migrate().unwrap();
        (dir, db, url)
    }

    #[test]
    fn sqlite_lease_is_exclusive_renewable_and_expires() {
        let (_dir, db, url) = sqlite();
        let lease = Duration::from_millis(400);
        let mut a = LeaderLock::new(&db, &url, "supervisor", "a", lease);
        let mut b = LeaderLock::new(&db, &url, "supervisor", "b", lease);
        assert!(a.try_acquire().unwrap());
        assert!(
            !b.try_acquire().unwrap(),
            "b must not lead while a's lease runs"
        );
        assert!(a.try_acquire().unwrap(), "a renews");
        let (holder, _) = sqlite_lease_holder(&mut db.get().unwrap(), "supervisor")
            .unwrap()
            .unwrap();
        assert_eq!(holder, "a");
        // a stops renewing (killed): b takes over once the lease has expired.
        std::thread::sleep(Duration::from_millis(500));
        assert!(b.try_acquire().unwrap());
        assert!(!a.try_acquire().unwrap(), "a lost it and knows");
        // Release frees it at once.
        b.release();
        assert!(a.try_acquire().unwrap());
        // Other names are independent.
        let mut c = LeaderLock::new(&db, &url, "other", "c", lease);
        assert!(c.try_acquire().unwrap());
        assert_eq!(a.mechanism(), "sqlite lease row");
    }

    #[test]
    fn advisory_keys_are_stable() {
        assert_eq!(advisory_key("x"), advisory_key("x"));
        assert_ne!(advisory_key("x"), advisory_key("y"));
    }

    fn postgres_url() -> Option<String> {
        let url = std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| {
            "postgres://racetrack:racetrack@127.0.0.1:5432/postgres".to_string()
        });
        match PgConnection::establish(&url) {
            Ok(_) => Some(url),
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("Postgres is required under CI: {e}")
            }
            Err(e) => {
                eprintln!("SKIPPED: Postgres unavailable: {e}");
                None
            }
        }
    }

    #[test]
    fn postgres_advisory_lock_is_exclusive_and_freed_with_its_session() {
        let Some(url) = postgres_url() else { return };
        let db = Database::connect(&url, 1).unwrap();
        // A unique name: tests of other crates may use the same server.
        let name = format!("lease-test-{}", crate::new_id());
        let mut a = LeaderLock::new(&db, &url, &name, "a", Duration::from_secs(1));
        let mut b = LeaderLock::new(&db, &url, &name, "b", Duration::from_secs(1));
        assert!(a.try_acquire().unwrap());
        assert!(
            a.try_acquire().unwrap(),
            "a confirms it still holds the lock"
        );
        assert!(!b.try_acquire().unwrap());
        // a's session ends (as when its process dies): b gets it at one of its next attempts
        // (the server frees the lock once it has noticed the disconnect).
        drop(a);
        let start = std::time::Instant::now();
        while !b.try_acquire().unwrap() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "lock not freed with its session"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(b.try_acquire().unwrap());
        b.release();
        let mut c = LeaderLock::new(&db, &url, &name, "c", Duration::from_secs(1));
        let start = std::time::Instant::now();
        while !c.try_acquire().unwrap() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "lock not freed on release"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(c.mechanism(), "postgres advisory lock");
    }
}
