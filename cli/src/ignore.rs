//! `.dockerignore` in the fatman's directory keeps files out of the local build context, with the
//! usual rules: one pattern per line, `#` comments, `*` and `?` within a path component, `**`
//! across components, `!` re-includes, the last matching line wins, and excluding a directory
//! excludes what it contains.

pub const IGNORE_FILE: &str = ".dockerignore";

struct Rule {
    include: bool,
    parts: Vec<String>,
}

pub struct Ignore {
    rules: Vec<Rule>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let rules = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (include, pattern) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let parts: Vec<String> = pattern
                    .split('/')
                    .filter(|p| !p.is_empty() && *p != ".")
                    .map(String::from)
                    .collect();
                (!parts.is_empty()).then_some(Rule { include, parts })
            })
            .collect();
        Ignore { rules }
    }

    pub fn empty() -> Ignore {
        Ignore { rules: Vec::new() }
    }

    /// Whether some rule re-includes paths (then excluded directories must still be walked).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.include)
    }

    /// `path`: relative, `/`-separated.
    pub fn is_excluded(&self, path: &str) -> bool {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut excluded = false;
        for rule in &self.rules {
            let hit = (1..=parts.len()).any(|n| match_parts(&rule.parts, &parts[..n]));
            if hit {
                excluded = !rule.include;
            }
        }
        excluded
    }
}

fn match_parts(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_parts(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((head, tail)) => {
                wildcard(first.as_bytes(), head.as_bytes()) && match_parts(rest, tail)
            }
            None => false,
        },
    }
}

/// `*` any run of characters, `?` one character, anything else literally.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| wildcard(rest, &text[i..])),
        Some((b'?', rest)) => !text.is_empty() && wildcard(rest, &text[1..]),
        Some((c, rest)) => text.first() == Some(c) && wildcard(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_like_rules() {
        let ig = Ignore::parse(
            "# data stays home\n/data\n*.csv\n**/__pycache__\n.git\n!keep.csv\nvenv/\n",
        );
        assert!(ig.is_excluded("data"));
        assert!(ig.is_excluded("data/big.bin"));
        assert!(ig.is_excluded("x.csv"));
        assert!(!ig.is_excluded("keep.csv"));
        assert!(
            !ig.is_excluded("sub/x.csv"),
            "patterns are anchored at the root"
        );
        assert!(ig.is_excluded("a/b/__pycache__/m.pyc"));
        assert!(ig.is_excluded(".git/config"));
        assert!(ig.is_excluded("venv/bin/python"));
        assert!(!ig.is_excluded("adder.py"));
        assert!(!ig.is_excluded("sub/data"));
        assert!(ig.has_exceptions());
        assert!(!Ignore::empty().is_excluded("x"));
    }
}
