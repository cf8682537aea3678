//! Permission rules: "SUBJECT may SCOPE on RESOURCE", purely additive.
//!
//! Deliberate fix over the original: a fatman-level permission matches on the fatman's name AND
//! version (the original compared only the version, so a row for `foo 1.0.0` also granted
//! `bar 1.0.0`).

use std::collections::BTreeSet;

pub const FULL_ACCESS: &str = "full_access";

/// Global permissions every new user profile receives. Deliberately narrower than the original's
/// (which added a global `deploy_fatman`, so any user could publish a new version of anyone's
/// family and take over its `latest`): a new user may see and call fatmen and start new families;
/// the family they create is theirs to deploy ([`FAMILY_CREATOR_SCOPES`]); anything more is granted
/// by an admin (README: "Permissions of a new user").
pub const DEFAULT_USER_SCOPES: &[&str] = &["read_fatman", "call_fatman", "deploy_new_family"];

/// Family-level permissions the subject whose deployment created a family receives on it, so it
/// can deploy the family's next versions without a global `deploy_fatman`.
pub const FAMILY_CREATOR_SCOPES: &[&str] = &["deploy_fatman"];

/// Fatman-level permissions the deployer of a new fatman receives on it (so users can delete only
/// what they deployed).
pub const DEPLOYER_SCOPES: &[&str] = &[
    "read_fatman",
    "call_fatman",
    "deploy_fatman",
    "delete_fatman",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub scope: String,
    /// Family filter (all current and future versions of the family).
    pub family: Option<String>,
    /// Fatman filter: (name, version).
    pub fatman: Option<(String, String)>,
    /// Exact endpoint path filter.
    pub endpoint: Option<String>,
}

impl Permission {
    fn grants_scope(&self, scope: &str) -> bool {
        self.scope == scope || self.scope == FULL_ACCESS
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
pub fn has_scope(perms: &[Permission], scope: &str) -> bool {
    perms.iter().any(|p| p.grants_scope(scope))
}

/// Resource check on a fatman; `resolved_version` is "" when the version does not exist (yet).
pub fn has_resource(perms: &[Permission], scope: &str, name: &str, resolved_version: &str) -> bool {
    perms
        .iter()
        .any(|p| p.grants_scope(scope) && p.covers_fatman(name, resolved_version))
}

/// Endpoint check: the resource check plus an exact endpoint match when the row names one.
pub fn has_endpoint(
    perms: &[Permission],
    scope: &str,
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
pub fn internal_allows(scopes: &[String], required: Option<&str>) -> bool {
    scopes
        .iter()
        .any(|s| s == FULL_ACCESS || required.is_some_and(|r| s == r))
}

/// Which fatmen a subject may see with `scope`. `fatmen` are (name, version) pairs in the order to
/// keep when a global permission applies; otherwise the result is sorted by `"<name> v<version>"`
/// (the original's order). Returns indexes into `fatmen`.
pub fn permitted_fatmen(perms: &[Permission], scope: &str, fatmen: &[(&str, &str)]) -> Vec<usize> {
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
pub fn has_only_scoped(perms: &[Permission], scope: &str) -> bool {
    let relevant: Vec<&Permission> = perms.iter().filter(|p| p.grants_scope(scope)).collect();
    !relevant.is_empty() && !relevant.iter().any(|p| p.is_global())
}

/// Family names a subject may see with `scope`, sorted. Fixed behaviour: family-level rows
/// contribute their family (the original crashed on them), fatman-level rows their fatman's family.
pub fn permitted_families(perms: &[Permission], scope: &str, families: &[&str]) -> Vec<String> {
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
        scope: &str,
        family: Option<&str>,
        fatman: Option<(&str, &str)>,
        endpoint: Option<&str>,
    ) -> Permission {
        Permission {
            scope: scope.into(),
            family: family.map(Into::into),
            fatman: fatman.map(|(n, v)| (n.into(), v.into())),
            endpoint: endpoint.map(Into::into),
        }
    }

    #[test]
    fn full_access_implies_every_scope() {
        let p = [perm(FULL_ACCESS, None, None, None)];
        assert!(has_scope(&p, "call_admin_api"));
        assert!(has_resource(&p, "delete_fatman", "any", "1.0.0"));
    }

    #[test]
    fn scope_check_ignores_resource_filters() {
        let p = [perm("call_admin_api", Some("adder"), None, None)];
        assert!(has_scope(&p, "call_admin_api"));
        assert!(!has_scope(&p, "read_fatman"));
    }

    #[test]
    fn fatman_rows_match_name_and_version() {
        let p = [perm("delete_fatman", None, Some(("foo", "1.0.0")), None)];
        assert!(has_resource(&p, "delete_fatman", "foo", "1.0.0"));
        assert!(
            !has_resource(&p, "delete_fatman", "bar", "1.0.0"),
            "the original's leak is fixed"
        );
        assert!(!has_resource(&p, "delete_fatman", "foo", "1.0.1"));
    }

    #[test]
    fn family_rows_cover_future_versions_but_not_other_families() {
        let p = [perm("deploy_fatman", Some("adder"), None, None)];
        assert!(has_resource(&p, "deploy_fatman", "adder", ""));
        assert!(has_resource(&p, "deploy_fatman", "adder", "9.9.9"));
        assert!(!has_resource(&p, "deploy_fatman", "badder", "1.0.0"));
    }

    #[test]
    fn endpoint_rows_match_exactly() {
        let p = [perm(
            "call_fatman",
            Some("adder"),
            None,
            Some("/api/v1/perform"),
        )];
        assert!(has_endpoint(
            &p,
            "call_fatman",
            "adder",
            "1.0.0",
            "/api/v1/perform"
        ));
        assert!(!has_endpoint(
            &p,
            "call_fatman",
            "adder",
            "1.0.0",
            "/api/v1/perform/x"
        ));
        assert!(!has_endpoint(
            &p,
            "call_fatman",
            "adder",
            "1.0.0",
            "/api/v1"
        ));
        assert!(!has_endpoint(
            &p,
            "call_fatman",
            "badder",
            "1.0.0",
            "/api/v1/perform"
        ));
    }

    #[test]
    fn internal_token_scopes() {
        let full = vec![FULL_ACCESS.to_string()];
        let read = vec!["read_fatman".to_string()];
        assert!(!internal_allows(&[], None), "no scopes allow nothing");
        assert!(!internal_allows(&[], Some("read_fatman")));
        assert!(internal_allows(&full, None));
        assert!(internal_allows(&full, Some("call_admin_api")));
        assert!(internal_allows(&read, Some("read_fatman")));
        assert!(!internal_allows(&read, Some("delete_fatman")));
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
        let global = [perm("read_fatman", None, None, None)];
        assert_eq!(
            permitted_fatmen(&global, "read_fatman", &fatmen),
            vec![0, 1, 2, 3]
        );
        let scoped = [
            perm("read_fatman", Some("a"), None, None),
            perm("read_fatman", None, Some(("c", "1.0.0")), None),
            perm("deploy_fatman", Some("b"), None, None),
        ];
        assert_eq!(
            permitted_fatmen(&scoped, "read_fatman", &fatmen),
            vec![2, 1, 3]
        );
        assert!(has_only_scoped(&scoped, "read_fatman"));
        assert!(!has_only_scoped(&global, "read_fatman"));
        assert_eq!(
            permitted_families(&scoped, "read_fatman", &["c", "b", "a"]),
            vec!["a".to_string(), "c".to_string()]
        );
        assert!(permitted_fatmen(&[], "read_fatman", &fatmen).is_empty());
    }

    #[test]
    fn endpoints_normalise() {
        assert_eq!(normalize_endpoint("api/v1/perform/"), "/api/v1/perform");
        assert_eq!(normalize_endpoint("/api/v1/perform"), "/api/v1/perform");
        assert_eq!(normalize_endpoint(""), "/");
    }
}
