//! Human-readable numbers. Memory is shown in binary units (GiB, as `free -h`),
//! storage in decimal units (GB, as drives are sold).

/// `1.2 GiB`, `512 MiB`, `88 KiB`, `0 B`.
/// A NixOS host for the overview: its generation, then "reboot" while the
/// booted system is not the current one, else the short revision.
pub fn nixos_cell(n: &cm_proto::NixosState) -> String {
    let generation = n.generation.map_or_else(|| "-".to_string(), |g| g.to_string());
    match (&n.configuration_revision, n.reboot_needed) {
        (_, true) => format!("{generation} reboot"),
        (Some(rev), false) => format!("{generation} {}", short_revision(rev)),
        (None, false) => generation,
    }
}

/// The first 7 characters of a revision, `*` for a dirty tree.
pub fn short_revision(rev: &str) -> String {
    let dirty = rev.ends_with("-dirty");
    let short: String = rev.trim_end_matches("-dirty").chars().take(7).collect();
    if dirty {
        format!("{short}*")
    } else {
        short
    }
}

pub fn iec(bytes: u64) -> String {
    scaled(bytes as f64, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
}

/// `1.0 TB`, `412 GB`, `0 B`.
pub fn si(bytes: u64) -> String {
    scaled(bytes as f64, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"])
}

fn scaled(v: f64, step: f64, units: &[&str]) -> String {
    let (scale, unit) = pick_unit(v, step, units.len());
    format!("{} {}", number(v / scale), units[unit])
}

fn pick_unit(v: f64, step: f64, count: usize) -> (f64, usize) {
    let (mut scale, mut unit) = (1.0, 0);
    while v / scale >= step && unit + 1 < count {
        scale *= step;
        unit += 1;
    }
    (scale, unit)
}

/// One decimal below 10, none above: `2.4`, `12`, `412`.
fn number(v: f64) -> String {
    if v < 9.95 && v.fract() != 0.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// `used/total unit` with the total's unit for both: `2.4/7.6 GiB`.
pub fn iec_pair(used: u64, total: u64) -> String {
    pair(used, total, 1024.0, &["B", "KiB", "MiB", "GiB", "TiB", "PiB"])
}

/// `98/200 GB`.
pub fn si_pair(used: u64, total: u64) -> String {
    pair(used, total, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"])
}

fn pair(used: u64, total: u64, step: f64, units: &[&str]) -> String {
    let (scale, unit) = pick_unit(total as f64, step, units.len());
    format!("{}/{} {}", number(used as f64 / scale), number(total as f64 / scale), units[unit])
}

/// `88K`, `256M`, `1.2G`, `4G`: for narrow columns.
pub fn iec_short(bytes: u64) -> String {
    let (scale, unit) = pick_unit(bytes as f64, 1024.0, 6);
    let suffix = ["B", "K", "M", "G", "T", "P"][unit];
    format!("{}{suffix}", number(bytes as f64 / scale))
}

/// `42s`, `3m`, `5h`, `12d`: how long ago, for narrow columns.
pub fn short_age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// `0.4 s ago`, `12 s ago`, `3 min ago`, `2 h ago`.
pub fn age(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{:.1} s ago", ms as f64 / 1000.0),
        10_000..=119_999 => format!("{} s ago", ms / 1000),
        120_000..=7_199_999 => format!("{} min ago", ms / 60_000),
        _ => format!("{} h ago", ms / 3_600_000),
    }
}

/// `3d 4h`, `5h 12m`, `42m`.
pub fn uptime(seconds: u64) -> String {
    let (d, h, m) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else {
        format!("{m}m")
    }
}

/// A series' value in its unit, as the chart prints it: `45.6%`, `56.0 °C`,
/// `2.4 GiB`, `3.4 GHz`, `0.42`.
pub fn value(unit: cm_proto::series::Unit, v: f64) -> String {
    use cm_proto::series::Unit;
    match unit {
        Unit::Percent => format!("{v:.1}%"),
        Unit::Celsius => format!("{v:.1} °C"),
        Unit::Bytes => iec(v.max(0.0) as u64),
        Unit::Hertz if v >= 1e9 => format!("{:.2} GHz", v / 1e9),
        Unit::Hertz => format!("{:.0} MHz", v / 1e6),
        Unit::Watts => format!("{v:.1} W"),
        Unit::Load => format!("{v:.2}"),
        Unit::Seconds => format!("{v:.0} s"),
        Unit::Count | Unit::Flag | Unit::Level => {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_free_and_df() {
        assert_eq!(iec(0), "0 B");
        assert_eq!(iec(88 * 1024), "88 KiB");
        assert_eq!(iec(2_576_980_378), "2.4 GiB");
        assert_eq!(si(1_000_204_886_016), "1.0 TB");
        assert_eq!(si(412_000_000_000), "412 GB");
        assert_eq!(iec_pair(2_576_980_378, 8_160_437_862), "2.4/7.6 GiB");
        assert_eq!(iec_pair(1126 << 20, 12 << 30), "1.1/12 GiB");
        assert_eq!(iec_pair(8 << 30, 8 << 30), "8/8 GiB");
        assert_eq!(si_pair(98_000_000_000, 200_000_000_000), "98/200 GB");
        assert_eq!(iec_pair(0, 0), "0/0 B");
    }

    #[test]
    fn short_forms_for_the_services_table() {
        assert_eq!(iec_short(256 << 20), "256M");
        assert_eq!(iec_short(4 << 30), "4G");
        assert_eq!(iec_short(1_288_490_188), "1.2G");
        assert_eq!(short_age(42_000), "42s");
        assert_eq!(short_age(3 * 3_600_000), "3h");
        assert_eq!(short_age(5 * 86_400_000), "5d");
    }

    #[test]
    fn values_carry_their_unit() {
        use cm_proto::series::Unit;
        assert_eq!(value(Unit::Percent, 45.64), "45.6%");
        assert_eq!(value(Unit::Celsius, 56.0), "56.0 °C");
        assert_eq!(value(Unit::Bytes, 2_576_980_378.0), "2.4 GiB");
        assert_eq!(value(Unit::Hertz, 3_400_000_000.0), "3.40 GHz");
        assert_eq!(value(Unit::Load, 0.42), "0.42");
        assert_eq!(value(Unit::Count, 3.0), "3");
    }

    #[test]
    fn ages_and_uptimes() {
        assert_eq!(age(400), "0.4 s ago");
        assert_eq!(age(42_000), "42 s ago");
        assert_eq!(age(600_000), "10 min ago");
        assert_eq!(uptime(3 * 86_400 + 4 * 3600 + 59), "3d 4h");
        assert_eq!(uptime(2520), "42m");
    }
}
