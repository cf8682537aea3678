//! Permission rules: "SUBJECT may SCOPE on RESOURCE", purely additive.
//!
//! Deliberate fix over the original: a fatman-level permission matches on the fatman's name AND
//! version (the original compared only the version, so a row for `foo 1.0.0` also granted
//! `bar 1.0.0`).

use std::collections::BTreeSet;

use racetrack_model::AuthScope;

/// Global permissions every new user profile receives. Deliberately narrower than the original's
/// (which added a global `deploy_fatman`, so any user could publish a new version of anyone's
/// family and take over its `latest`): a new user may see and call fatmen and start new families;
/// the family they create is theirs to deploy ([`FAMILY_CREATOR_SCOPES`]); anything more is granted
/// by an admin (README: "Permissions of a new user").
pub const DEFAULT_USER_SCOPES: &[AuthScope] = &[
    AuthScope::ReadFatman,
    AuthScope::CallFatman,
    AuthScope::DeployNewFamily,
];

/// Family-level permissions the subject whose deployment created a family receives on it, so it
/// can deploy the family's next versions without a global `deploy_fatman`.
pub const FAMILY_CREATOR_SCOPES: &[AuthScope] = &[AuthScope::DeployFatman];

/// Fatman-level permissions the deployer of a new fatman receives on it (so users can delete only
/// what they deployed).
pub const DEPLOYER_SCOPES: &[AuthScope] = &[
    AuthScope::ReadFatman,
    AuthScope::CallFatman,
    AuthScope::DeployFatman,
    AuthScope::DeleteFatman,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub scope: AuthScope,
    /// Family filter (all current and future versions of the family).
    pub family: Option<String>,
    /// Fatman filter: (name, version).
    pub fatman: Option<(String, String)>,
    /// Exact endpoint path filter.
    pub endpoint: Option<String>,
}

impl Permission {
    fn grants_scope(&self, scope: AuthScope) -> bool {
        self.scope.grants(scope)
    }

    fn is_global(&self) -> bool {
        self.family.is_none() && self.fatman.is_none()
    }

    fn covers_fatman(&self, name: &str, resolved_version: &str) -> bool {
        let family_ok = self.family.as_deref().is_none_or(|f| f == name);
        let fatman_ok = self
            .fatman
            .as_ref()
            .is_none_or(|(n, v)| n == name && v == resolved_version);
        family_ok && fatman_ok
    }
}

/// Scope check: resource filters are ignored (as the original).
pub fn has_scope(perms: &[Permission], scope: AuthScope) -> bool {
    perms.iter().any(|p| p.grants_scope(scope))
}

/// Resource check on a fatman; `resolved_version` is "" when the version does not exist (yet).
pub fn has_resource(
    perms: &[Permission],
    scope: AuthScope,
    name: &str,
    resolved_version: &str,
) -> bool {
    perms
        .iter()
        .any(|p| p.grants_scope(scope) && p.covers_fatman(name, resolved_version))
}

/// Endpoint check: the resource check plus an exact endpoint match when the row names one.
pub fn has_endpoint(
    perms: &[Permission],
    scope: AuthScope,
    name: &str,
    resolved_version: &str,
    endpoint: &str,
) -> bool {
    perms.iter().any(|p| {
        p.grants_scope(scope)
            && p.covers_fatman(name, resolved_version)
            && p.endpoint.as_deref().is_none_or(|e| e == endpoint)
    })
}

/// Internal (service) tokens: allowed iff their stored scopes hold `required` or `full_access`.
/// Deny by default: no scopes allow nothing (the original let a token without a list do
/// everything), and an endpoint that needs no particular scope (`required == None`) is open only to
/// `full_access`.
pub fn internal_allows(scopes: &[AuthScope], required: Option<AuthScope>) -> bool {
    scopes
        .iter()
        .any(|s| *s == AuthScope::FullAccess || required.is_some_and(|r| *s == r))
}

/// Which fatmen a subject may see with `scope`. `fatmen` are (name, version) pairs in the order to
/// keep when a global permission applies; otherwise the result is sorted by `"<name> v<version>"`
/// (the original's order). Returns indexes into `fatmen`.
pub fn permitted_fatmen(
    perms: &[Permission],
    scope: AuthScope,
    fatmen: &[(&str, &str)],
) -> Vec<usize> {
    let relevant: Vec<&Permission> = perms.iter().filter(|p| p.grants_scope(scope)).collect();
    if relevant.iter().any(|p| p.is_global()) {
        return (0..fatmen.len()).collect();
    }
    let mut picked: Vec<(String, usize)> = fatmen
        .iter()
        .enumerate()
        .filter(|(_, (name, version))| {
            relevant.iter().any(|p| match (&p.family, &p.fatman) {
                (_, Some((n, v))) => n == name && v == version,
                (Some(f), None) => f == name,
                (None, None) => true,
            })
        })
        .map(|(i, (name, version))| (format!("{name} v{version}"), i))
        .collect();
    picked.sort();
    picked.into_iter().map(|(_, i)| i).collect()
}

/// Whether any permission of `scope` is narrower than global (the original then re-sorts lists).
pub fn has_only_scoped(perms: &[Permission], scope: AuthScope) -> bool {
    let relevant: Vec<&Permission> = perms.iter().filter(|p| p.grants_scope(scope)).collect();
    !relevant.is_empty() && !relevant.iter().any(|p| p.is_global())
}

/// Family names a subject may see with `scope`, sorted. Fixed behaviour: family-level rows
/// contribute their family (the original crashed on them), fatman-level rows their fatman's family.
pub fn permitted_families(
    perms: &[Permission],
    scope: AuthScope,
    families: &[&str],
) -> Vec<String> {
    let relevant: Vec<&Permission> = perms.iter().filter(|p| p.grants_scope(scope)).collect();
    let all: BTreeSet<&str> = families.iter().copied().collect();
    if relevant.iter().any(|p| p.is_global()) {
        return all.into_iter().map(String::from).collect();
    }
    relevant
        .iter()
        .filter_map(|p| match (&p.family, &p.fatman) {
            (Some(f), _) => Some(f.as_str()),
            (None, Some((n, _))) => Some(n.as_str()),
            (None, None) => None,
        })
        .filter(|f| all.contains(f))
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(String::from)
        .collect()
}

/// The endpoint form permission rows use: a leading `/`, one trailing `/` stripped.
pub fn normalize_endpoint(endpoint: &str) -> String {
    let trimmed = endpoint.strip_suffix('/').unwrap_or(endpoint);
    if trimmed.starts_with('/') {
        trimmed.to_string()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perm(
        scope: AuthScope,
        family: Option<&str>,
        fatman: Option<(&str, &str)>,
        endpoint: Option<&str>,
    ) -> Permission {
        Permission {
            scope,
            family: family.map(Into::into),
            fatman: fatman.map(|(n, v)| (n.into(), v.into())),
            endpoint: endpoint.map(Into::into),
        }
    }

    #[test]
    fn full_access_implies_every_scope() {
        let p = [perm(AuthScope::FullAccess, None, None, None)];
        assert!(has_scope(&p, AuthScope::CallAdminApi));
        assert!(has_resource(&p, AuthScope::DeleteFatman, "any", "1.0.0"));
    }

    #[test]
    fn scope_check_ignores_resource_filters() {
        let p = [perm(AuthScope::CallAdminApi, Some("adder"), None, None)];
        assert!(has_scope(&p, AuthScope::CallAdminApi));
        assert!(!has_scope(&p, AuthScope::ReadFatman));
    }

    #[test]
    fn fatman_rows_match_name_and_version() {
        let p = [perm(
            AuthScope::DeleteFatman,
            None,
            Some(("foo", "1.0.0")),
            None,
        )];
        assert!(has_resource(&p, AuthScope::DeleteFatman, "foo", "1.0.0"));
        assert!(
            !has_resource(&p, AuthScope::DeleteFatman, "bar", "1.0.0"),
            "the original's leak is fixed"
        );
        assert!(!has_resource(&p, AuthScope::DeleteFatman, "foo", "1.0.1"));
    }

    #[test]
    fn family_rows_cover_future_versions_but_not_other_families() {
        let p = [perm(AuthScope::DeployFatman, Some("adder"), None, None)];
        assert!(has_resource(&p, AuthScope::DeployFatman, "adder", ""));
        assert!(has_resource(&p, AuthScope::DeployFatman, "adder", "9.9.9"));
        assert!(!has_resource(
            &p,
            AuthScope::DeployFatman,
            "badder",
            "1.0.0"
        ));
    }

    #[test]
    fn endpoint_rows_match_exactly() {
        let p = [perm(
            AuthScope::CallFatman,
            Some("adder"),
            None,
            Some("/api/v1/perform"),
        )];
        assert!(has_endpoint(
            &p,
            AuthScope::CallFatman,
            "adder",
            "1.0.0",
            "/api/v1/perform"
        ));
        assert!(!has_endpoint(
            &p,
            AuthScope::CallFatman,
            "adder",
            "1.0.0",
            "/api/v1/perform/x"
        ));
        assert!(!has_endpoint(
            &p,
            AuthScope::CallFatman,
            "adder",
            "1.0.0",
            "/api/v1"
        ));
        assert!(!has_endpoint(
            &p,
            AuthScope::CallFatman,
            "badder",
            "1.0.0",
            "/api/v1/perform"
        ));
    }

    #[test]
    fn internal_token_scopes() {
        let full = vec![AuthScope::FullAccess];
        let read = vec![AuthScope::ReadFatman];
        assert!(!internal_allows(&[], None), "no scopes allow nothing");
        assert!(!internal_allows(&[], Some(AuthScope::ReadFatman)));
        assert!(internal_allows(&full, None));
        assert!(internal_allows(&full, Some(AuthScope::CallAdminApi)));
        assert!(internal_allows(&read, Some(AuthScope::ReadFatman)));
        assert!(!internal_allows(&read, Some(AuthScope::DeleteFatman)));
        assert!(!internal_allows(&read, None));
    }

    #[test]
    fn listing_filters() {
        let fatmen = [
            ("b", "1.0.0"),
            ("a", "2.0.0"),
            ("a", "1.0.0"),
            ("c", "1.0.0"),
        ];
        let global = [perm(AuthScope::ReadFatman, None, None, None)];
        assert_eq!(
            permitted_fatmen(&global, AuthScope::ReadFatman, &fatmen),
            vec![0, 1, 2, 3]
        );
        let scoped = [
            perm(AuthScope::ReadFatman, Some("a"), None, None),
            perm(AuthScope::ReadFatman, None, Some(("c", "1.0.0")), None),
            perm(AuthScope::DeployFatman, Some("b"), None, None),
        ];
        assert_eq!(
            permitted_fatmen(&scoped, AuthScope::ReadFatman, &fatmen),
            vec![2, 1, 3]
        );
        assert!(has_only_scoped(&scoped, AuthScope::ReadFatman));
        assert!(!has_only_scoped(&global, AuthScope::ReadFatman));
        assert_eq!(
            permitted_families(&scoped, AuthScope::ReadFatman, &["c", "b", "a"]),
            vec!["a".to_string(), "c".to_string()]
        );
        assert!(permitted_fatmen(&[], AuthScope::ReadFatman, &fatmen).is_empty());
    }

    #[test]
    fn endpoints_normalise() {
        assert_eq!(normalize_endpoint("api/v1/perform/"), "/api/v1/perform");
        assert_eq!(normalize_endpoint("/api/v1/perform"), "/api/v1/perform");
        assert_eq!(normalize_endpoint(""), "/");
    }
}
