//! Wall-clock time as stored (epoch milliseconds) and as shown (RFC 3339).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in epoch milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Epoch milliseconds as RFC 3339 UTC to the second, e.g. `2026-11-25T17:53:52Z`: the one
/// timestamp form of every output (reports too write `%Y-%m-%dT%H:%M:%SZ`); the catalog keeps
/// the milliseconds for whoever needs them.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The UTC day of epoch milliseconds, `2026-11-25`: [`rfc3339`]'s date part.
pub fn day(ms: i64) -> String {
    rfc3339(ms)[..10].to_string()
}

/// Parses a duration: whole seconds (`600`), or with units (`90s`, `10m`, `1h30m`, `500ms`).
/// The one rule for every duration anamo reads (flags, task files).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let d = match t.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(t).map_err(|e| {
            format!("invalid duration '{s}' ({e}); write whole seconds or like 90s, 10m, 1h30m")
        })?,
    };
    if d.is_zero() {
        return Err(format!("duration '{s}' must be longer than zero"));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_zero_is_refused() {
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").unwrap_err().contains("ten"));
    }

    #[test]
    fn rfc3339_is_to_the_second() {
        assert_eq!(rfc3339(1_500), "1970-01-01T00:00:01Z");
    }
}
