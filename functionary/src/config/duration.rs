//! Human-readable durations such as `"120s"`, `"200ms"`, `"2m"` or `"1.5s"`.

use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Parses a duration written as a decimal number followed by a unit: `ns`, `us`, `ms`, `s`, `m` (minutes) or `h`.
/// Examples: `"120s"`, `"200ms"`, `"2m"`, `"1.5s"`. The value must be a whole number of nanoseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    let unit_start = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{s}` has no unit (write e.g. \"120s\", \"200ms\" or \"2m\")"))?;
    let (number, unit) = text.split_at(unit_start);
    let unit_nanos: u128 = match unit.trim() {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => NANOS_PER_SEC,
        "m" | "min" => 60 * NANOS_PER_SEC,
        "h" => 3_600 * NANOS_PER_SEC,
        other => {
            return Err(format!(
                "`{s}` has unknown unit `{other}` (use ns, us, ms, s, m or h)"
            ))
        }
    };
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_ok(int_part)
        || !digits_ok(frac_part)
    {
        return Err(format!("`{s}` is not a number followed by a unit"));
    }
    if int_part.len() > 20 || frac_part.len() > 18 {
        return Err(format!("`{s}` has too many digits"));
    }
    let whole: u128 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse()
            .map_err(|_| format!("`{s}` is not a number followed by a unit"))?
    };
    let mut total = whole
        .checked_mul(unit_nanos)
        .ok_or_else(|| format!("`{s}` is too large"))?;
    if !frac_part.is_empty() {
        let frac: u128 = frac_part
            .parse()
            .map_err(|_| format!("`{s}` is not a number followed by a unit"))?;
        let scale = 10u128.pow(frac_part.len() as u32);
        let scaled = frac * unit_nanos;
        if !scaled.is_multiple_of(scale) {
            return Err(format!("`{s}` is finer than one nanosecond"));
        }
        total = total
            .checked_add(scaled / scale)
            .ok_or_else(|| format!("`{s}` is too large"))?;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| format!("`{s}` is too large"))?;
    // The remainder is below 10^9 and always fits.
    let nanos = (total % NANOS_PER_SEC) as u32;
    Ok(Duration::new(secs, nanos))
}

/// Formats a duration so that [`parse_duration`] reads it back exactly: whole seconds as `"120s"`, otherwise the
/// largest of `ms`, `us`, `ns` that represents it exactly (`"200ms"`, `"1500ms"`).
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos.is_multiple_of(NANOS_PER_SEC) {
        format!("{}s", nanos / NANOS_PER_SEC)
    } else if nanos.is_multiple_of(1_000_000) {
        format!("{}ms", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!("{}us", nanos / 1_000)
    } else {
        format!("{nanos}ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_fractions() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "s",
            "120",
            "1.2.3s",
            "-1s",
            "1x",
            "1.5ns",
            "99999999999999999999999h",
            "1e3s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn format_round_trips() {
        for d in [
            Duration::from_secs(120),
            Duration::from_millis(1500),
            Duration::from_micros(1),
            Duration::from_nanos(123_456_789_123),
            Duration::ZERO,
        ] {
            assert_eq!(parse_duration(&format_duration(d)), Ok(d));
        }
        assert_eq!(format_duration(Duration::from_secs(120)), "120s");
        assert_eq!(format_duration(Duration::from_millis(200)), "200ms");
    }
}
