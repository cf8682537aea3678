//! What a fresh installation needs before serving: an `AUTH_KEY` and a first admin.

use racetrack_db::Connection as _;
use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context};
use racetrack_auth::token;
use racetrack_db::models::{AuthToken, NewUser};
use racetrack_db::repo::{auth as auth_repo, users};
use racetrack_db::Backend;
use racetrack_model::AuthScope;
use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::app::subjects;
use crate::config::Config;
use crate::state::AppState;

/// `AUTH_KEY` from the environment; with the embedded SQLite default, generated once and kept
/// beside the database file (readable by its owner only).
pub fn auth_key(config: &Config, backend: Backend) -> anyhow::Result<String> {
    if let Some(key) = &config.auth_key {
        return Ok(key.clone());
    }
    let (Backend::Sqlite, Some(path)) = (backend, config.sqlite_key_file()) else {
        bail!("AUTH_KEY must be set when the database is Postgres");
    };
    load_or_create_key(&path)
}

fn load_or_create_key(path: &Path) -> anyhow::Result<String> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let key = existing.trim().to_string();
        if !key.is_empty() {
            return Ok(key);
        }
    }
    let key: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(48)
        .map(char::from)
        .collect();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write the generated AUTH_KEY to {}", path.display()))?;
    file.write_all(key.as_bytes())?;
    tracing::info!(path = %path.display(), "generated AUTH_KEY for the embedded database");
    Ok(key)
}

/// On a database without users, creates `admin` (staff, superuser, `full_access`) whose token is
/// the original's seeded admin token for this `AUTH_KEY`. Its password is `ADMIN_PASSWORD`, or,
/// with the embedded SQLite default, a random one printed once on standard output.
pub fn first_admin(state: &AppState) -> anyhow::Result<()> {
    let mut conn = state.db.get()?;
    if users::count(&mut conn)? > 0 {
        return Ok(());
    }
    let (password, show) = match (&state.config.admin_password, state.db.backend()) {
        (Some(p), _) => (p.clone(), false),
        (None, Backend::Sqlite) => {
            let p: String = rand::thread_rng()
                .sample_iter(&Alphanumeric)
                .take(20)
                .map(char::from)
                .collect();
            (p, true)
        }
        (None, Backend::Postgres) => {
            tracing::warn!("no users yet: create an admin with `lifecycle createsuperuser`");
            return Ok(());
        }
    };
    let hash = racetrack_auth::password::hash_password(&password)?;
    conn.transaction::<_, anyhow::Error, _>(|conn| {
        let user = users::insert(
            conn,
            &NewUser {
                username: "admin",
                password: &hash,
                email: "admin@example.com",
                is_active: true,
                is_staff: true,
                is_superuser: true,
                date_joined: racetrack_db::now(),
            },
        )?;
        let (subject, _) =
            auth_repo::get_or_create_subject(conn, auth_repo::SubjectKey::User(user.id))?;
        let claims = token::admin_claims("admin");
        auth_repo::insert_token(
            conn,
            &AuthToken {
                id: racetrack_db::new_id(),
                auth_subject_id: subject.id.clone(),
                token_hash: token::digest(&claims),
                public_seed: Some(claims.seed.clone()),
                label: "default".into(),
                create_time: racetrack_db::now(),
                expiry_time: None,
                last_use_time: None,
            },
        )?;
        subjects::grant_global(conn, &subject.id, AuthScope::FullAccess)
            .map_err(|e| anyhow::anyhow!(e.to_string()))?;
        Ok(())
    })?;
    tracing::info!("created the first admin user \"admin\"");
    if show {
        // Deliberately not through tracing: shown once on the console, never in log pipelines.
        println!("\n  Racetrack admin account created: username \"admin\", password \"{password}\"\n  (shown only now; change it with `lifecycle changepassword admin`)\n");
    }
    Ok(())
}
