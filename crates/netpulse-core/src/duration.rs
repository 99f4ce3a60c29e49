//! Durations as people type them: `1ms`, `0.5` (seconds, as ping takes them), `2s`, `1m30s`.

use std::time::Duration;

/// `d` in nanoseconds, saturating at `u64::MAX` (584 years).
pub fn saturating_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Why a duration string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationParseError {
    /// Empty input.
    #[error("empty duration (expected e.g. 1ms, 0.5, 2s)")]
    Empty,
    /// Neither a number of seconds nor a duration with units.
    #[error("invalid duration \"{0}\" (expected e.g. 1ms, 0.5, 2s, 1m30s)")]
    Invalid(String),
    /// Negative, NaN or absurdly large.
    #[error("duration \"{0}\" is out of range")]
    OutOfRange(String),
}

/// Parses a duration: a bare number is seconds (`0.2` = 200 ms, as ping's `-i`), otherwise units
/// are required (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`, `d`, combinable as `1m30s`).
pub fn parse_duration(text: &str) -> Result<Duration, DurationParseError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DurationParseError::Empty);
    }
    if t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = t
            .parse()
            .map_err(|_| DurationParseError::Invalid(t.to_string()))?;
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| DurationParseError::OutOfRange(t.to_string()));
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(DurationParseError::Invalid(t.to_string()));
        }
        let value: f64 = rest[..num_len]
            .parse()
            .map_err(|_| DurationParseError::Invalid(t.to_string()))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hours" => 3600.0,
            "d" | "days" => 86400.0,
            _ => return Err(DurationParseError::Invalid(t.to_string())),
        };
        let part = Duration::try_from_secs_f64(value * scale)
            .map_err(|_| DurationParseError::OutOfRange(t.to_string()))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| DurationParseError::OutOfRange(t.to_string()))?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ping_and_human_forms() {
        assert_eq!(parse_duration("1ms"), Ok(Duration::from_millis(1)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            parse_duration("abc"),
            Err(DurationParseError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("5 parsecs"),
            Err(DurationParseError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("-1"),
            Err(DurationParseError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("ms"),
            Err(DurationParseError::Invalid(_))
        ));
        assert_eq!(parse_duration(""), Err(DurationParseError::Empty));
        assert!(matches!(
            parse_duration("1e400"),
            Err(DurationParseError::Invalid(_))
        ));
        assert!(matches!(
            parse_duration("99999999999999999999999"),
            Err(DurationParseError::OutOfRange(_))
        ));
    }
}
