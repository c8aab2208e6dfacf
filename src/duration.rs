//! Human durations: `"90d"`, `"12h"`, `"1h30m"`, `"45min"`, `"45s"`, `"2w"`,
//! or a bare number of seconds. Used by scripts (`duration()`, `ttl`) and seed files.

/// Parses a duration into seconds. A leading `-` makes it negative (seed files
/// use that for tokens that expired in the past).
pub fn parse_seconds(text: &str) -> Result<i64, String> {
    let raw = text.trim();
    let (negative, body) = match raw.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, raw),
    };
    if body.is_empty() {
        return Err(format!("invalid duration {text:?}: it is empty"));
    }
    match body.chars().next() {
        Some(c) if c.is_ascii_digit() => {}
        Some(c @ ('-' | '+')) => {
            return Err(format!(
                "invalid duration {text:?}: {c:?} cannot come there (one - at the start makes it negative)"
            ))
        }
        Some(c) => {
            return Err(format!(
                "invalid duration {text:?}: a number must come before {c:?}"
            ))
        }
        None => unreachable!("checked not empty above"),
    }
    if body.bytes().all(|b| b.is_ascii_digit()) {
        let n: i64 = body
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: the number is too large"))?;
        return Ok(if negative { -n } else { n });
    }
    let mut total: i64 = 0;
    let mut digits = String::new();
    let mut last_unit: Option<i64> = None;
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if c.is_whitespace() {
            // Between parts only ("1h 30m"), never inside a number ("1 2d").
            if !digits.is_empty() || chars.peek().is_some_and(|n| !n.is_ascii_digit()) {
                return Err(format!(
                    "invalid duration {text:?}: a space can only separate parts, as in \"1h 30m\""
                ));
            }
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' if chars.peek() == Some(&'o') => {
                return Err(format!(
                    "invalid duration {text:?}: months have no fixed length; write days, as in \"180d\""
                ))
            }
            'm' => {
                // "min" is minutes too: unmistakable where "m" could be months.
                if chars.peek() == Some(&'i') {
                    chars.next();
                    if chars.next() != Some('n') {
                        return Err(format!(
                            "invalid duration {text:?}: unknown unit (use s, m or min, h, d, w or y)"
                        ));
                    }
                }
                60
            }
            'h' => 3_600,
            'd' => 86_400,
            'w' => 604_800,
            'y' => 31_536_000,
            _ => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {c:?} (use s, m, h, d, w or y, as in \"90d\" or \"1h30m\")"
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!(
                "invalid duration {text:?}: a number must come before {c:?}"
            ));
        }
        // Each unit once, largest first: "1d1d" or "1h1d" is a typo, not 2 days.
        if last_unit.is_some_and(|last| unit >= last) {
            return Err(format!(
                "invalid duration {text:?}: each unit may come once, largest first (as in \"1d12h\")"
            ));
        }
        last_unit = Some(unit);
        let n: i64 = digits
            .parse()
            .map_err(|_| format!("invalid duration {text:?}: the number is too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("invalid duration {text:?}: it is too large"))?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(format!(
            "invalid duration {text:?}: {digits} has no unit (use s, m, h, d, w or y)"
        ));
    }
    Ok(if negative { -total } else { total })
}

/// As [`format_seconds`], with minutes written `min`: the form a command-line
/// argument takes (where a leading `m` is refused as ambiguous).
pub fn format_arg(seconds: i64) -> String {
    format_seconds(seconds).replace('m', "min")
}

/// Renders seconds compactly, largest units first: `90061` → `"1d1h1m"`.
pub fn format_seconds(seconds: i64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let sign = if seconds < 0 { "-" } else { "" };
    let mut rest = seconds.unsigned_abs();
    let mut out = String::from(sign);
    for (unit, size) in [("d", 86_400u64), ("h", 3_600), ("m", 60), ("s", 1)] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_seconds("90d"), Ok(90 * 86_400));
        assert_eq!(parse_seconds("1h30m"), Ok(5_400));
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("-2d"), Ok(-172_800));
        assert_eq!(parse_seconds("2w"), Ok(1_209_600));
        assert!(parse_seconds("10x")
            .unwrap_err()
            .contains("unknown unit 'x'"));
        assert!(parse_seconds("h").is_err());
        assert!(parse_seconds("12 ").is_ok());
        assert_eq!(parse_seconds("1h 30m"), Ok(5_400));
        for bad in [
            "--5", "- 5", "+5", "-+5", "1 2d", "1h  30m", "d", "１d", "1d1d", "1h1d", "10s5s",
        ] {
            assert!(parse_seconds(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_seconds("1h30").unwrap_err().contains("has no unit"));
        assert_eq!(parse_seconds("45min"), Ok(2_700));
        assert_eq!(parse_seconds("1h30min"), Ok(5_400));
        assert!(parse_seconds("6mo")
            .unwrap_err()
            .contains("months have no fixed length"));
        for bad in ["5mi", "5mn", "5minn", "1min1m"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(parse_seconds("").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_seconds(90_061), "1d1h1m1s");
        assert_eq!(format_seconds(86_400 * 3), "3d");
        assert_eq!(format_seconds(-60), "-1m");
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn parsing_never_panics_and_formats_round_trip(text in "\\PC{0,12}|-?[0-9]{1,6}[smhdwy ]{0,3}[0-9]{0,3}[smhdwy]?", n in -10_000_000i64..10_000_000) {
            let _ = parse_seconds(&text);
            prop_assert_eq!(parse_seconds(&format_seconds(n)), Ok(n));
            prop_assert_eq!(parse_seconds(&format_arg(n)), Ok(n));
        }
    }
}
