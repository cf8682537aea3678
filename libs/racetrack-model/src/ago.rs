//! "N minutes ago": how the dashboard and the CLI word the age of a timestamp.

/// The age of something `secs` seconds old, worded as the original dashboard did; a negative
/// age (a time in the future) gives "".
pub fn ago_words(secs: i64) -> String {
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
