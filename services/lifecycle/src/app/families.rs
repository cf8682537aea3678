//! Fatman families: every version of a fatman name, the unit permissions and family tokens
//! apply to, and the graph of who may call which family (and who deployed what).

use std::collections::{BTreeMap, BTreeSet};

use racetrack_auth::permission::{self, Permission};
use racetrack_db::models::{Esc, Family, Fatman};
use racetrack_db::repo::auth::{self as auth_repo, SubjectKey};
use racetrack_db::repo::{escs, fatmen as repo, users};
use racetrack_db::DbConnection;
use racetrack_model::{AuthScope, AuthSubjectType};

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
    /// (username, family it may call), from call permissions on one family or fatman only: the
    /// global `call_fatman` every user gets by default would link every user to every family.
    pub user_calls: Vec<(String, String)>,
    /// (username, fatman name, version): the user who deployed each visible fatman.
    pub owners: Vec<(String, String, String)>,
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
    let (user_calls, owners) = user_links(conn, &families)?;
    Ok(Graph {
        escs,
        families,
        family_calls,
        esc_calls,
        user_calls,
        owners,
    })
}

/// Users' scoped call permissions and deployments among `families`, in three queries.
#[allow(clippy::type_complexity)]
fn user_links(
    conn: &mut DbConnection,
    families: &BTreeMap<String, Vec<Fatman>>,
) -> Result<(Vec<(String, String)>, Vec<(String, String, String)>), AppError> {
    let usernames: BTreeMap<i32, String> = users::list(conn)?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    let subjects: BTreeMap<String, &String> =
        auth_repo::subjects_of_type(conn, AuthSubjectType::User)?
            .into_iter()
            .filter_map(|s| Some((s.id, usernames.get(&s.user_id?)?)))
            .collect();
    let mut calls = BTreeSet::new();
    for view in auth_repo::list_permissions(conn)? {
        let Some(username) = subjects.get(&view.auth_subject_id) else {
            continue;
        };
        let family = view
            .family_name
            .or_else(|| view.fatman.map(|(name, _)| name));
        match family {
            Some(family)
                if view.scope == AuthScope::CallFatman && families.contains_key(&family) =>
            {
                calls.insert(((*username).clone(), family));
            }
            _ => {}
        }
    }
    let known: BTreeSet<&String> = usernames.values().collect();
    let owners = families
        .values()
        .flatten()
        .filter_map(|f| {
            let user = f.deployed_by.as_ref().filter(|u| known.contains(u))?;
            Some((user.clone(), f.name.clone(), f.version.clone()))
        })
        .collect();
    Ok((calls.into_iter().collect(), owners))
}
