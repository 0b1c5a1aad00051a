//! Durations as people write them, in catalog files and on the command line alike: `90s`,
//! `1h30m`, `500ms`, `1.5h`, `2d`, or a bare number of seconds. One parser, one set of units.

use std::time::Duration;

use crate::error::Error;

const UNITS: &str = "ms, s, m, h or d, e.g. `1h30m`";

/// A duration, or why it does not parse ([`Error::InvalidValue`]).
pub fn parse(text: &str) -> Result<Duration, Error> {
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::InvalidValue("empty duration".into()));
    }
    if let Ok(n) = text.parse::<f64>() {
        return seconds(n, text);
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let n: f64 = rest[..digits].parse().map_err(|_| {
            Error::InvalidValue(format!(
                "`{text}`: a number must come before each unit ({UNITS})"
            ))
        })?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3_600.0,
            "d" => 86_400.0,
            "" => {
                return Err(Error::InvalidValue(format!(
                    "`{text}`: a unit must follow each number ({UNITS})"
                )));
            }
            other => {
                return Err(Error::InvalidValue(format!(
                    "`{text}`: unknown unit `{other}` (use {UNITS})"
                )));
            }
        };
        total = total
            .checked_add(seconds(n * unit, text)?)
            .ok_or_else(|| Error::InvalidValue(format!("`{text}` is too long")))?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Whole seconds, as KubeSphere's fields hold them (a repo's sync period).
pub fn parse_seconds(text: &str) -> Result<i64, Error> {
    let d = parse(text)?;
    if d.subsec_nanos() != 0 {
        return Err(Error::InvalidValue(format!(
            "`{}` is not a whole number of seconds",
            text.trim()
        )));
    }
    i64::try_from(d.as_secs())
        .map_err(|_| Error::InvalidValue(format!("`{}` is too long", text.trim())))
}

fn seconds(n: f64, text: &str) -> Result<Duration, Error> {
    if n < 0.0 {
        return Err(Error::InvalidValue(format!(
            "`{text}` must not be negative"
        )));
    }
    // NaN, infinities and values past Duration's range are refused, never a panic.
    Duration::try_from_secs_f64(n)
        .map_err(|_| Error::InvalidValue(format!("`{text}` is not a usable duration")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1d").unwrap(), Duration::from_secs(86400));
        for bad in [
            "", "1x", "s", "h", "10m5", "-1", "-5s", "NaN", "inf", "1e300", "1e300h",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn whole_seconds() {
        assert_eq!(parse_seconds("0").unwrap(), 0);
        assert_eq!(parse_seconds("3600").unwrap(), 3600);
        assert_eq!(parse_seconds("1h30m").unwrap(), 5400);
        assert_eq!(parse_seconds("90s").unwrap(), 90);
        assert_eq!(parse_seconds("1d").unwrap(), 86400);
        assert!(parse_seconds("500ms").is_err());
        assert!(parse_seconds("-5").is_err());
        assert!(parse_seconds("10m5").is_err());
    }
}
