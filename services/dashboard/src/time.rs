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
    let secs = (now - then).num_seconds();
    if secs < 0 {
        return String::new();
    }
    let days = secs / 86_400;
    match secs {
        s if s < 10 => "just now".into(),
        s if s < 60 => format!("{s} seconds ago"),
        s if s < 120 => "a minute ago".into(),
        s if s < 3600 => format!("{} minutes ago", s / 60),
        s if s < 7200 => "an hour ago".into(),
        s if s < 86_400 => format!("{} hours ago", s / 3600),
        _ if days == 1 => "yesterday".into(),
        _ if days < 7 => format!("{days} days ago"),
        _ if days / 7 == 1 => "a week ago".into(),
        _ if days < 31 => format!("{} weeks ago", days / 7),
        _ if days / 30 == 1 => "a month ago".into(),
        _ if days < 365 => format!("{} months ago", days / 30),
        _ if days / 365 == 1 => "a year ago".into(),
        _ => format!("{} years ago", days / 365),
    }
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
