//! `.dockerignore` rules, for the image-builder's build contexts and the CLI's local build
//! context alike (reading the file is the caller's job).
//!
//! One pattern per line, `#` comments, `!` exceptions (the last matching line wins), `*` and `?`
//! within a path segment, `**` for any number of segments, a leading `/` or `./` ignored. A
//! pattern matching a directory excludes everything below it. Character classes (`[a-z]`) are
//! not supported (matched literally).

pub const DOCKERIGNORE: &str = ".dockerignore";

#[derive(Debug, Clone)]
struct Pattern {
    exclude: bool,
    segments: Vec<String>,
}

/// The parsed `.dockerignore` of a context.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> DockerIgnore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, pat) = match line.strip_prefix('!') {
                Some(rest) => (false, rest.trim()),
                None => (true, line),
            };
            let pat = pat.trim_start_matches("./").trim_start_matches('/');
            let segments: Vec<String> = pat
                .split('/')
                .filter(|s| !s.is_empty() && *s != ".")
                .map(str::to_string)
                .collect();
            if segments.is_empty() {
                continue;
            }
            patterns.push(Pattern { exclude, segments });
        }
        DockerIgnore { patterns }
    }

    pub fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|p| !p.exclude)
    }

    /// Whether the `/`-separated relative `path` is excluded.
    pub fn is_excluded(&self, path: &str) -> bool {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // The pattern applies to the path itself or to any of its parent directories.
            let matched =
                (1..=segments.len()).any(|n| match_segments(&pattern.segments, &segments[..n]));
            if matched {
                excluded = pattern.exclude;
            }
        }
        excluded
    }
}

fn match_segments(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| match_segments(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((seg, path_rest)) => {
                glob(first.as_bytes(), seg.as_bytes()) && match_segments(rest, path_rest)
            }
            None => false,
        },
    }
}

/// `*` and `?` within one segment.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let (mut star, mut mark) = (None, 0usize);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) && pattern[p] != b'*'
        {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matching() {
        assert!(glob(b"*.py", b"main.py"));
        assert!(!glob(b"*.py", b"main.pyc"));
        assert!(glob(b"te?t", b"test"));
        assert!(glob(b"*", b""));
        assert!(glob(b"a*b*c", b"aXXbYc"));
        assert!(!glob(b"a*b*c", b"aXXbY"));
    }

    #[test]
    fn dockerignore_rules() {
        let ig = DockerIgnore::parse(
            "# comment\n\n.git\n*.pyc\n/build/\n**/__pycache__\ndocs/*.md\n!docs/KEEP.md\nsecret?.txt\n",
        );
        assert!(ig.is_excluded(".git"));
        assert!(ig.is_excluded(".git/HEAD"));
        assert!(ig.is_excluded("x.pyc"));
        assert!(!ig.is_excluded("sub/x.pyc")); // like Docker: `*.pyc` is for the root only
        assert!(ig.is_excluded("build/out.bin"));
        assert!(ig.is_excluded("a/b/__pycache__/m.pyc"));
        assert!(ig.is_excluded("__pycache__"));
        assert!(ig.is_excluded("docs/README.md"));
        assert!(!ig.is_excluded("docs/KEEP.md"));
        assert!(ig.is_excluded("secret1.txt"));
        assert!(!ig.is_excluded("main.py"));
        assert!(ig.has_exceptions());
    }
}
