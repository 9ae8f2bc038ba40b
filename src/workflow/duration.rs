//! Durations as operators write them: `250ms`, `90s`, `15m`, `1h30m`, `2h`, up to 30 days.

use std::time::Duration;

/// The longest duration drctl accepts anywhere: 30 days. Nothing in a recovery waits longer,
/// and every deadline computed from a duration stays far from any clock's limits.
pub const MAX_DURATION: Duration = Duration::from_hours(720);

/// Parses a duration: one or more `<integer><unit>` parts, units `h`, `m`, `s`, `ms`, each at
/// most once and from largest to smallest, at most [`MAX_DURATION`]. Returns a sentence saying
/// what is wrong otherwise.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    if text.is_empty() {
        return Err("a duration cannot be empty".into());
    }
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut total_ms: u64 = 0;
    let mut last_rank: Option<usize> = None;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "expected a number at `{}`; durations look like `90s`, `15m` or `1h30m`",
                &text[start..]
            ));
        }
        // A number too large for u64 is far past the limit too.
        let number: u64 = text[start..i].parse().map_err(|_| too_long())?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &text[unit_start..i];
        let Some(rank) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(if unit.is_empty() {
                format!("`{number}` has no unit; add one of `h`, `m`, `s`, `ms` (e.g. `{number}s`)")
            } else {
                format!("unknown unit `{unit}`; use `h`, `m`, `s` or `ms`")
            });
        };
        if last_rank.is_some_and(|r| rank <= r) {
            return Err(
                "units must go from largest to smallest, each at most once (e.g. `1h30m`)".into(),
            );
        }
        last_rank = Some(rank);
        total_ms = number
            .checked_mul(UNITS[rank].1)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(too_long)?;
    }
    let total = Duration::from_millis(total_ms);
    if total > MAX_DURATION {
        return Err(too_long());
    }
    Ok(total)
}

fn too_long() -> String {
    "durations are limited to 30 days (720h)".into()
}

/// Formats a duration the way it would be written in a workflow (`1h30m`, `250ms`, `0s`).
pub fn format_duration(d: Duration) -> String {
    let total_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if total_ms == 0 {
        return "0s".into();
    }
    let (h, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
    let (m, rest) = (rest / 60_000, rest % 60_000);
    let (s, ms) = (rest / 1_000, rest % 1_000);
    let mut out = String::new();
    for (value, unit) in [(h, "h"), (m, "m"), (s, "s"), (ms, "ms")] {
        if value > 0 {
            out.push_str(&format!("{value}{unit}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_mins(15)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_hours(2)));
        assert_eq!(parse_duration("1m500ms"), Ok(Duration::from_millis(60_500)));
        assert_eq!(parse_duration("720h"), Ok(MAX_DURATION));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "5",
            "5 m",
            "1.5h",
            "30m1h",
            "1h1h",
            "5d",
            "m",
            "-5s",
            "99999999999999999999h",
            "720h1ms",
            "3000000000h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn formats_round_trip() {
        for text in ["250ms", "90s", "15m", "1h30m", "2h", "1h2m3s4ms"] {
            let d = parse_duration(text).unwrap();
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    }
}
