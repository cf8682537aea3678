//! Fatman families: every version of a fatman name, the unit permissions and family tokens
//! apply to, and the graph of who may call which family.

use std::collections::{BTreeMap, BTreeSet};

use racetrack_auth::permission::{self, Permission};
use racetrack_db::models::{Esc, Family, Fatman};
use racetrack_db::repo::auth::{self as auth_repo, SubjectKey};
use racetrack_db::repo::{escs, fatmen as repo};
use racetrack_db::DbConnection;
use racetrack_model::AuthScope;

use super::permissions::{require_scope, to_permission};
use super::{fatmen, AppError, Caller};

/// The family, or `NotFound` (no authorization: callers check it first).
pub fn find(conn: &mut DbConnection, name: &str) -> Result<Family, AppError> {
    repo::find_family(conn, name)?
        .ok_or_else(|| AppError::NotFound(format!("fatman family {name} was not found")))
}

/// Families the caller may read, by name.
pub fn list(conn: &mut DbConnection, caller: &Caller) -> Result<Vec<Family>, AppError> {
    require_scope(caller, AuthScope::ReadFatman)?;
    let families = repo::list_families(conn)?;
    let allowed: BTreeSet<String> = match caller {
        Caller::Internal { .. } => families.iter().map(|f| f.name.clone()).collect(),
        Caller::Subject { permissions, .. } => {
            let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
            permission::permitted_families(permissions, AuthScope::ReadFatman, &names)
                .into_iter()
                .collect()
        }
    };
    Ok(families
        .into_iter()
        .filter(|f| allowed.contains(&f.name))
        .collect())
}

/// Who may call which family: ESCs and families (by their tokens' permissions) → families.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub escs: Vec<Esc>,
    /// Visible families by name, with their visible versions.
    pub families: BTreeMap<String, Vec<Fatman>>,
    /// (family, family it may call).
    pub family_calls: Vec<(String, String)>,
    /// (ESC id, family it may call).
    pub esc_calls: Vec<(String, String)>,
}

pub fn graph(conn: &mut DbConnection, caller: &Caller) -> Result<Graph, AppError> {
    require_scope(caller, AuthScope::ReadFatman)?;
    let visible = fatmen::visible(conn, caller, AuthScope::ReadFatman)?;
    let mut families: BTreeMap<String, Vec<Fatman>> = BTreeMap::new();
    for f in visible {
        families.entry(f.name.clone()).or_default().push(f);
    }
    let callable = |perms: &[Permission]| -> Vec<String> {
        families
            .iter()
            .filter(|(name, members)| {
                members.iter().any(|f| {
                    permission::has_resource(perms, AuthScope::CallFatman, name, &f.version)
                })
            })
            .map(|(name, _)| name.clone())
            .collect()
    };
    let permissions_of = |conn: &mut DbConnection, key: SubjectKey<'_>| {
        Ok::<_, AppError>(match auth_repo::find_subject_by(conn, key)? {
            Some(subject) => Some(
                auth_repo::permissions_of_subject(conn, &subject.id)?
                    .into_iter()
                    .map(to_permission)
                    .collect::<Vec<_>>(),
            ),
            None => None,
        })
    };
    let mut family_calls = Vec::new();
    for name in families.keys() {
        let Some(family) = repo::find_family(conn, name)? else {
            continue;
        };
        let Some(perms) = permissions_of(conn, SubjectKey::Family(&family.id))? else {
            continue;
        };
        for target in callable(&perms) {
            family_calls.push((name.clone(), target));
        }
    }
    let escs = escs::list(conn)?;
    let mut esc_calls = Vec::new();
    for esc in &escs {
        let Some(perms) = permissions_of(conn, SubjectKey::Esc(&esc.id))? else {
            continue;
        };
        for target in callable(&perms) {
            esc_calls.push((esc.id.clone(), target));
        }
    }
    Ok(Graph {
        escs,
        families,
        family_calls,
        esc_calls,
    })
}
