//! Spans (`10m`, `48h`, `7d`, `2y`) and RFC 3339 timestamps, for configuration
//! and export. Times are milliseconds since the Unix epoch, in UTC.

/// Parses a span such as `90s`, `10m`, `48h`, `7d`, `2w` or `2y` (365 days)
/// into milliseconds.
pub fn parse_span(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("{text:?}: expected a span such as 90s, 10m, 48h, 7d or 2y"))?;
    let unit_ms: f64 = match unit.trim() {
        "ms" => 1.0,
        "s" => 1e3,
        "m" | "min" => 60e3,
        "h" => 3600e3,
        "d" => 86_400e3,
        "w" => 7.0 * 86_400e3,
        "y" => 365.0 * 86_400e3,
        _ => {
            return Err(format!(
                "{text:?}: expected a span such as 90s, 10m, 48h, 7d or 2y (unit ms, s, m, h, d, w or y)"
            ))
        }
    };
    let ms = n * unit_ms;
    if !(ms.is_finite() && ms > 0.0 && ms < 1e15) {
        return Err(format!("{text:?}: expected a span above zero"));
    }
    Ok(ms as i64)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-12-02T06:30:00.000Z`
pub fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil(days);
    let (h, mi, s, milli) = (rem / 3_600_000, rem / 60_000 % 60, rem / 1000 % 60, rem % 1000);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// `2026-12-02` (UTC), for dates a person reads.
pub fn date(ms: i64) -> String {
    let (y, mo, d) = civil(ms.div_euclid(86_400_000));
    format!("{y:04}-{mo:02}-{d:02}")
}

/// Parses an RFC 3339 time (`2026-12-02T06:30:00Z`, with optional fraction
/// and offset) or a bare date (`2026-12-02`, midnight UTC) to milliseconds.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("{text:?}: expected a time such as 2026-12-02T06:30:00Z or a date such as 2026-12-02");
    let t = text.trim();
    let num = |s: &str| s.parse::<i64>().map_err(|_| bad());
    if t.len() < 10 || t.as_bytes()[4] != b'-' || t.as_bytes()[7] != b'-' {
        return Err(bad());
    }
    let (y, mo, d) = (num(&t[..4])?, num(&t[5..7])?, num(&t[8..10])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let mut ms = days_from_civil(y, mo as u32, d as u32) * 86_400_000;
    let rest = &t[10..];
    if rest.is_empty() {
        return Ok(ms);
    }
    let rest = rest.strip_prefix(['T', 't', ' ']).ok_or_else(bad)?;
    if rest.len() < 8 || rest.as_bytes()[2] != b':' || rest.as_bytes()[5] != b':' {
        return Err(bad());
    }
    let (h, mi, s) = (num(&rest[..2])?, num(&rest[3..5])?, num(&rest[6..8])?);
    if h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    ms += (h * 3600 + mi * 60 + s) * 1000;
    let mut rest = &rest[8..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.find(|c: char| !c.is_ascii_digit()).unwrap_or(frac.len());
        let f = &frac[..digits];
        if f.is_empty() {
            return Err(bad());
        }
        ms += num(&format!("{:0<3}", &f[..f.len().min(3)]))?;
        rest = &frac[digits..];
    }
    match rest {
        "Z" | "z" => Ok(ms),
        off if off.len() == 6 && (off.starts_with('+') || off.starts_with('-')) && &off[3..4] == ":" => {
            let sign = if off.starts_with('-') { -1 } else { 1 };
            Ok(ms - sign * (num(&off[1..3])? * 3600 + num(&off[4..6])? * 60) * 1000)
        }
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(parse_span("10m"), Ok(600_000));
        assert_eq!(parse_span("48h"), Ok(172_800_000));
        assert_eq!(parse_span("30d"), Ok(2_592_000_000));
        assert_eq!(parse_span("2y"), Ok(730 * 86_400_000));
        assert_eq!(parse_span("1.5h"), Ok(5_400_000));
        assert!(parse_span("10").unwrap_err().contains("unit"));
        assert!(parse_span("0s").unwrap_err().contains("above zero"));
        assert!(parse_span("soon").is_err());
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        for ms in [0, 1_764_000_000_123, 951_782_400_000 /* 2000-02-29 */, 4_102_444_800_000] {
            assert_eq!(parse_time(&rfc3339(ms)), Ok(ms), "{}", rfc3339(ms));
        }
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_time("2026-12-02"), parse_time("2026-12-02T00:00:00Z"));
        assert_eq!(parse_time("2026-12-02T02:00:00+02:00"), parse_time("2026-12-02T00:00:00Z"));
        assert_eq!(date(1_764_000_000_000), "2025-11-24");
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-13-01").is_err());
    }
}
