//! How drctl writes and reads times: RFC 3339 in UTC with milliseconds. A leaf: every layer
//! may use it, it uses nothing of drctl.

use chrono::{DateTime, Utc};

/// RFC 3339 with milliseconds, in UTC: how times are stored and shown.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `t` as it is stored: to the millisecond (what [`rfc3339`] writes), so that a record kept
/// in memory equals the same record read back.
pub fn to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::SubsecRound;
    t.trunc_subsecs(3)
}

/// Parses a stored time.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serde for a time kept as [`rfc3339`] (`#[serde(with = "crate::time::stored")]`): written
/// with milliseconds in UTC, read from any RFC 3339 time; anything else does not read.
pub mod stored {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `t` as [`super::rfc3339`].
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*t))
    }

    /// Reads an RFC 3339 time, naming the text that is not one.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_time(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time")))
    }
}

/// As [`stored`], for a time that may be absent (`null`, or missing with `#[serde(default)]`).
pub mod stored_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `t` as [`super::rfc3339`], or `null`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::stored::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Reads an RFC 3339 time or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        match Option::<String>::deserialize(d)? {
            None => Ok(None),
            Some(text) => super::parse_time(&text).map(Some).ok_or_else(|| {
                serde::de::Error::custom(format!("`{text}` is not an RFC 3339 time"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Times {
        #[serde(with = "super::stored")]
        at: DateTime<Utc>,
        #[serde(default, with = "super::stored_opt")]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn a_stored_time_is_written_as_it_always_was_and_read_from_any_offset() {
        let read: Times =
            serde_json::from_str(r#"{"at":"2026-12-07T08:00:00+01:00","until":null}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"{"at":"2026-12-07T07:00:00.000Z","until":null}"#
        );
        let missing: Times = serde_json::from_str(r#"{"at":"2026-12-07T07:00:00.000Z"}"#).unwrap();
        assert_eq!(missing.until, None);
    }

    #[test]
    fn a_time_that_does_not_read_is_an_error_naming_it_never_now() {
        let err = serde_json::from_str::<Times>(r#"{"at":"yesterday","until":null}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("`yesterday` is not an RFC 3339 time"),
            "{err}"
        );
        let err = serde_json::from_str::<Times>(r#"{"at":"2026-12-07T07:00:00Z","until":"soon"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("`soon`"), "{err}");
    }
}
