//! Durations as people write them in catalog files: `1h`, `30m`, `1h30m`, `90s`, `0`.

/// Seconds in a duration, or why it does not parse.
pub fn parse_seconds(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return if n >= 0 {
            Ok(n)
        } else {
            Err("must not be negative".into())
        };
    }
    let mut total: i64 = 0;
    let mut number = String::new();
    let mut seen_unit = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => {
                return Err(format!(
                    "unexpected `{c}`; use units d, h, m, s (e.g. `1h30m`)"
                ));
            }
        };
        let n: i64 = number
            .parse()
            .map_err(|_| format!("a number must come before `{c}`"))?;
        total = total
            .checked_add(n.checked_mul(unit).ok_or("too long")?)
            .ok_or("too long")?;
        number.clear();
        seen_unit = true;
    }
    if !number.is_empty() || !seen_unit {
        return Err("missing unit; use d, h, m or s (e.g. `1h`)".into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("0"), Ok(0));
        assert_eq!(parse_seconds("3600"), Ok(3600));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert_eq!(parse_seconds("1h30m"), Ok(5400));
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert_eq!(parse_seconds("1d"), Ok(86400));
        assert!(parse_seconds("1x").is_err());
        assert!(parse_seconds("h").is_err());
        assert!(parse_seconds("10m5").is_err());
        assert!(parse_seconds("-5").is_err());
    }
}
