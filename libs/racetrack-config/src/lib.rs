//! Typed reading of the services' environment variables (docs/architecture.md, "Configuration
//! conventions"), so each service's `Config::from_lookup` only states names, defaults and its own
//! rules.
//!
//! [`Env`] wraps a lookup function (`std::env::var` in production, [`lookup_in`] in tests). An
//! unset, empty or whitespace-only variable counts as unset and gets its default. The typed
//! getters trim the value before parsing and, on a bad value, return a [`ConfigError`] that names
//! the variable and the value. [`Env::string`] never fails, so secrets (keys, tokens, passwords,
//! URLs with credentials) are read with it and never end up in an error message.
//!
//! ```
//! use racetrack_config::Env;
//! use std::time::Duration;
//!
//! let env = Env::new(|k| (k == "SYNC_INTERVAL_SECS").then(|| "0.5".to_string()));
//! let sync = env.secs("SYNC_INTERVAL_SECS", Duration::from_secs(60)).unwrap();
//! assert_eq!(sync, Duration::from_millis(500));
//! assert!(env.flag("DRY_RUN", false).is_ok_and(|dry| !dry));
//! ```

pub mod cli;
pub mod redact;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

/// A variable whose value cannot be used. Displayed as `invalid {var}: {reason}`, e.g.
/// `invalid HTTP_ADDR: must be host:port, got "nope"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct ConfigError {
    /// The variable at fault (the first one, when a rule involves several).
    pub var: String,
    /// What is wrong ("must be ..., got ...").
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            var: var.into(),
            reason: reason.into(),
        }
    }
}

/// Environment variables read through a lookup function.
pub struct Env<F> {
    lookup: F,
    trim_strings: bool,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// Values are trimmed; empty and whitespace-only values count as unset.
    pub fn new(lookup: F) -> Env<F> {
        Env {
            lookup,
            trim_strings: true,
        }
    }

    /// As [`Env::new`], but [`Env::string`] returns a set value exactly as given (surrounding
    /// whitespace kept, e.g. in a key or password). Typed getters still trim before parsing.
    pub fn untrimmed(lookup: F) -> Env<F> {
        Env {
            lookup,
            trim_strings: false,
        }
    }

    /// The value, unless unset, empty or only whitespace.
    fn value(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.trim().is_empty())
    }

    /// A string value (trimmed unless [`Env::untrimmed`]); `None` when unset. Never fails, so
    /// this is the getter for secrets.
    pub fn string(&self, var: &str) -> Option<String> {
        let v = self.value(var)?;
        Some(if self.trim_strings {
            v.trim().to_string()
        } else {
            v
        })
    }

    /// [`Env::string`] with a default.
    pub fn string_or(&self, var: &str, default: &str) -> String {
        self.string(var).unwrap_or_else(|| default.to_string())
    }

    /// Two variables that are set both or neither (a certificate and its key): `None` when
    /// neither is set.
    pub fn pair(&self, a: &str, b: &str) -> Result<Option<(String, String)>, ConfigError> {
        match (self.string(a), self.string(b)) {
            (Some(x), Some(y)) => Ok(Some((x, y))),
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError::new(b, format!("must be set too when {a} is"))),
            (None, Some(_)) => Err(ConfigError::new(a, format!("must be set too when {b} is"))),
        }
    }

    /// Parses the trimmed value with `parse`; `expected` completes "must be ...".
    fn parsed<T>(
        &self,
        var: &str,
        default: T,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let Some(v) = self.value(var) else {
            return Ok(default);
        };
        let v = v.trim();
        parse(v).ok_or_else(|| ConfigError::new(var, format!("must be {expected}, got {v:?}")))
    }

    /// A boolean: see [`parse_bool`] for the accepted words.
    pub fn flag(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        self.parsed(var, default, "true or false", parse_bool)
    }

    /// Anything `FromStr` parses (zero and, for signed types, negatives included).
    pub fn number<T: FromStr>(&self, var: &str, default: T) -> Result<T, ConfigError> {
        self.parsed(var, default, "a number", |v| v.parse().ok())
    }

    /// A count greater than zero (`T` an unsigned integer, typically).
    pub fn positive<T: FromStr + PartialOrd + Default>(
        &self,
        var: &str,
        default: T,
    ) -> Result<T, ConfigError> {
        self.parsed(var, default, "a positive whole number", |v| {
            v.parse().ok().filter(|n| *n > T::default())
        })
    }

    /// A duration in seconds, whole or fractional (`0.5`), greater than zero and below 10⁹.
    /// (For whole seconds only: `positive::<u64>(..).map(Duration::from_secs)`.)
    pub fn secs(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        self.parsed(var, default, "a positive number of seconds", |v| {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0 && *n < 1e9)
                .map(Duration::from_secs_f64)
        })
    }

    /// A socket address `host:port` (IP literal host); `default` is parsed the same way.
    pub fn addr(&self, var: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let v = self.value(var).unwrap_or_else(|| default.to_string());
        let v = v.trim();
        v.parse()
            .map_err(|_| ConfigError::new(var, format!("must be host:port, got {v:?}")))
    }

    /// A byte size greater than zero: see [`parse_size`].
    pub fn size(&self, var: &str, default: u64) -> Result<u64, ConfigError> {
        self.parsed(
            var,
            default,
            "a positive size (bytes, or with Ki, Mi or Gi)",
            |v| parse_size(v).filter(|n| *n > 0),
        )
    }
}

/// A lookup over fixed `(name, value)` pairs, for tests: `Config::from_lookup(lookup_in(&[..]))`.
pub fn lookup_in(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'static {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

/// The variables a `from_lookup` reads, recorded over several runs: with `base` alone, then with
/// each of `listed` also set to a few kinds of value (a number, a word, an address), so reads
/// behind a branch (`CLUSTER_FQDN` → `RACETRACK_SUBDOMAIN`) are seen too. Each service checks its
/// `ENV_VARS` against it, and the deployment manifests are checked against `ENV_VARS`
/// (docs/architecture.md, "Configuration conventions").
pub fn variables_read(
    base: &[(&str, &str)],
    listed: &[&str],
    mut run: impl FnMut(&dyn Fn(&str) -> Option<String>),
) -> std::collections::BTreeSet<String> {
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let base: HashMap<String, String> = base
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut runs = vec![base.clone()];
    for var in listed {
        for value in ["1", "x", "127.0.0.1:1", "true"] {
            let mut vars = base.clone();
            vars.insert(var.to_string(), value.to_string());
            runs.push(vars);
        }
    }
    for vars in &runs {
        let lookup = |k: &str| {
            seen.borrow_mut().insert(k.to_string());
            vars.get(k).cloned()
        };
        run(&lookup);
    }
    seen.into_inner()
}

/// Asserts that `read` (from [`variables_read`]) and a service's `ENV_VARS` name the same
/// variables; the message lists the differences.
pub fn check_env_vars(
    listed: &[&str],
    read: &std::collections::BTreeSet<String>,
) -> Result<(), String> {
    let listed: std::collections::BTreeSet<String> = listed.iter().map(|v| v.to_string()).collect();
    let unlisted: Vec<&String> = read.difference(&listed).collect();
    let unread: Vec<&String> = listed.difference(read).collect();
    if unlisted.is_empty() && unread.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "read but not in ENV_VARS: {unlisted:?}; in ENV_VARS but never read: {unread:?}"
        ))
    }
}

/// `a` then `b` in one constant, for a service's `ENV_VARS` that include a library's list
/// (`N` must be their total length, which the compiler checks where the constant is built).
pub const fn concat_vars<const N: usize>(
    a: &[&'static str],
    b: &[&'static str],
) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[i + j] = b[j];
        j += 1;
    }
    out
}

/// `1/true/t/yes/y/on` and `0/false/f/no/n/off`, any case, surrounding whitespace ignored.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
        "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
        _ => None,
    }
}

/// Plain bytes or a binary suffix, optionally followed by `B`: `1048576`, `256Mi`, `1GiB`.
/// `None` when malformed or too large for `u64`.
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_suffix('B').unwrap_or(s);
    let (digits, multiplier) = if let Some(d) = s.strip_suffix("Ki") {
        (d, 1u64 << 10)
    } else if let Some(d) = s.strip_suffix("Mi") {
        (d, 1 << 20)
    } else if let Some(d) = s.strip_suffix("Gi") {
        (d, 1 << 30)
    } else {
        (s, 1)
    };
    digits.trim().parse::<u64>().ok()?.checked_mul(multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        Env::new(lookup_in(vars))
    }

    #[test]
    fn empty_and_blank_values_are_unset() {
        let e = env(&[("A", ""), ("B", "  \t"), ("C", " x ")]);
        assert_eq!(e.string("A"), None);
        assert_eq!(e.string("B"), None);
        assert_eq!(e.string("C").as_deref(), Some("x"));
        assert_eq!(e.string_or("B", "dflt"), "dflt");
        assert_eq!(e.number("B", 7u32), Ok(7));
        assert_eq!(e.flag("A", true), Ok(true));
        assert_eq!(e.addr("B", "0.0.0.0:1").unwrap().port(), 1);
    }

    #[test]
    fn untrimmed_keeps_strings_but_parses_trimmed() {
        let e = Env::untrimmed(|k: &str| match k {
            "KEY" => Some(" s3cret\n".to_string()),
            "N" => Some(" 5 ".to_string()),
            "BLANK" => Some("   ".to_string()),
            _ => None,
        });
        assert_eq!(e.string("KEY").as_deref(), Some(" s3cret\n"));
        assert_eq!(e.string("BLANK"), None);
        assert_eq!(e.number("N", 0u8), Ok(5));
    }

    #[test]
    fn flags() {
        for v in ["1", "true", "T", "Yes", "y", "on", " TRUE "] {
            assert_eq!(env(&[("F", v)]).flag("F", false), Ok(true), "{v}");
        }
        for v in ["0", "false", "f", "NO", "n", "Off"] {
            assert_eq!(env(&[("F", v)]).flag("F", true), Ok(false), "{v}");
        }
        let err = env(&[("F", "maybe")]).flag("F", true).unwrap_err();
        assert_eq!(err.var, "F");
        assert_eq!(
            err.to_string(),
            r#"invalid F: must be true or false, got "maybe""#
        );
    }

    #[test]
    fn numbers_and_counts() {
        assert_eq!(env(&[]).number("N", 10u32), Ok(10));
        assert_eq!(env(&[("N", "0")]).number("N", 10u32), Ok(0));
        assert_eq!(env(&[("N", "-3")]).number("N", 1i64), Ok(-3));
        let err = env(&[("N", "ten")]).number("N", 10usize).unwrap_err();
        assert_eq!(err.to_string(), r#"invalid N: must be a number, got "ten""#);
        assert!(env(&[("N", "300")]).number("N", 1u8).is_err());

        assert_eq!(env(&[("C", "32")]).positive("C", 1u64), Ok(32));
        assert_eq!(env(&[]).positive("C", 4u32), Ok(4));
        for bad in ["0", "-1", "1.5", "x", "99999999999"] {
            let err = env(&[("C", bad)]).positive("C", 4u32).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid C: must be a positive whole number, got {bad:?}")
            );
        }
    }

    #[test]
    fn seconds() {
        let d = Duration::from_secs(60);
        assert_eq!(env(&[]).secs("S", d), Ok(d));
        assert_eq!(
            env(&[("S", "0.5")]).secs("S", d),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(
            env(&[("S", "15")]).secs("S", d),
            Ok(Duration::from_secs(15))
        );
        for bad in ["0", "-1", "soon", "inf", "NaN", "1e9"] {
            let err = env(&[("S", bad)]).secs("S", d).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid S: must be a positive number of seconds, got {bad:?}")
            );
        }
    }

    #[test]
    fn addresses() {
        let e = env(&[("A", "127.0.0.1:9000"), ("BAD", "nope")]);
        assert_eq!(e.addr("A", "0.0.0.0:1").unwrap().port(), 9000);
        assert_eq!(e.addr("UNSET", "0.0.0.0:7102").unwrap().port(), 7102);
        assert_eq!(
            e.addr("BAD", "0.0.0.0:1").unwrap_err().to_string(),
            r#"invalid BAD: must be host:port, got "nope""#
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("2Ki"), Some(2048));
        assert_eq!(parse_size("3MiB"), Some(3 << 20));
        assert_eq!(parse_size(" 1Gi "), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("99999999999Gi"), None);
        assert_eq!(env(&[("S", "1Mi")]).size("S", 5), Ok(1 << 20));
        assert_eq!(env(&[]).size("S", 5), Ok(5));
        for bad in ["0", "lots", "-1Ki"] {
            let err = env(&[("S", bad)]).size("S", 5).unwrap_err();
            assert_eq!(err.var, "S");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn pairs_are_both_or_neither() {
        let both = env(&[("CERT", "c.pem"), ("KEY", "k.pem")]);
        assert_eq!(
            both.pair("CERT", "KEY"),
            Ok(Some(("c.pem".into(), "k.pem".into())))
        );
        assert_eq!(env(&[]).pair("CERT", "KEY"), Ok(None));
        let err = env(&[("CERT", "c.pem")]).pair("CERT", "KEY").unwrap_err();
        assert_eq!(err.to_string(), "invalid KEY: must be set too when CERT is");
        let err = env(&[("KEY", "k.pem")]).pair("CERT", "KEY").unwrap_err();
        assert_eq!(err.to_string(), "invalid CERT: must be set too when KEY is");
    }

    #[test]
    fn errors_of_service_rules() {
        let err = ConfigError::new("MAX_CONCURRENT_BUILDS", "at most 1024");
        assert_eq!(err.var, "MAX_CONCURRENT_BUILDS");
        assert_eq!(
            err.to_string(),
            "invalid MAX_CONCURRENT_BUILDS: at most 1024"
        );
    }
}
