//! How drctl writes and reads times: RFC 3339 in UTC with milliseconds. A leaf: every layer
//! may use it, it uses nothing of drctl.

use chrono::{DateTime, Utc};

/// RFC 3339 with milliseconds, in UTC: how times are stored and shown.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Parses a stored time.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
