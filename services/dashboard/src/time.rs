//! Timestamps as pages show them.

use chrono::{DateTime, Utc};

/// RFC 3339 (what Lifecycle sends) to a UTC time; empty or malformed → `None`.
pub fn parse(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// "N minutes ago" the way the original dashboard words it; future times → "".
pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    racetrack_model::ago_words((now - then).num_seconds())
}

/// `ago` of an RFC 3339 text; "" when empty or malformed.
pub fn ago_text(now: DateTime<Utc>, ts: &str) -> String {
    parse(ts).map(|t| ago(now, t)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn words_like_the_original() {
        let now = Utc::now();
        let cases = [
            (5, "just now"),
            (30, "30 seconds ago"),
            (90, "a minute ago"),
            (600, "10 minutes ago"),
            (4000, "an hour ago"),
            (3 * 3600, "3 hours ago"),
            (86_400 + 5, "yesterday"),
            (3 * 86_400, "3 days ago"),
            (8 * 86_400, "a week ago"),
            (20 * 86_400, "2 weeks ago"),
            (40 * 86_400, "a month ago"),
            (100 * 86_400, "3 months ago"),
            (400 * 86_400, "a year ago"),
            (800 * 86_400, "2 years ago"),
        ];
        for (secs, want) in cases {
            assert_eq!(ago(now, now - Duration::seconds(secs)), want, "{secs}s");
        }
        assert_eq!(ago(now, now + Duration::seconds(60)), "");
    }

    #[test]
    fn malformed_is_empty() {
        assert_eq!(ago_text(Utc::now(), ""), "");
        assert_eq!(ago_text(Utc::now(), "yesterday-ish"), "");
    }
}
