//! `logs --follow`: Lifecycle offers the last N lines of a fatman's log, so following means asking
//! again and printing only the lines after what was already seen.

/// The lines of `new` that come after `seen`: the longest tail of `seen` that starts `new` is
/// taken as the overlap. Identical repeated lines can make the overlap look longer than it is,
/// so a window much larger than what arrives between two polls is asked for.
pub fn new_lines<'a>(seen: &[String], new: &'a [String]) -> &'a [String] {
    for skip in 0..=seen.len() {
        let overlap = &seen[skip..];
        if overlap.len() <= new.len() && new[..overlap.len()] == *overlap {
            return &new[overlap.len()..];
        }
    }
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn only_what_is_new() {
        // The window slid by two lines.
        assert_eq!(
            new_lines(&lines("a b c d"), &lines("c d e f")),
            lines("e f")
        );
        // The log is shorter than the window and grew.
        assert_eq!(new_lines(&lines("a b"), &lines("a b c")), lines("c"));
        // Nothing new.
        assert_eq!(new_lines(&lines("a b"), &lines("a b")), lines(""));
        // No overlap: everything is new (more arrived than the window holds).
        assert_eq!(new_lines(&lines("a b"), &lines("x y")), lines("x y"));
        assert_eq!(new_lines(&[], &lines("x")), lines("x"));
    }
}
