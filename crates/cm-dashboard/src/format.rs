//! Human-readable numbers. Every size is in binary units (KiB, MiB, GiB:
//! powers of 1024, as `free -h`, `df -h` and btop print them), memory and
//! storage alike, with three significant digits (`23.5 GiB`, `252 GiB`,
//! `1.80 GiB`), so that figures on one screen compare at a glance.

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

const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/// `23.5 GiB`, `512 MiB`, `88.0 KiB`, `0 B`: three significant digits.
pub fn iec(bytes: u64) -> String {
    let (scale, unit) = pick_unit(bytes as f64);
    format!("{} {}", number(bytes as f64, scale, unit), UNITS[unit])
}

/// The power of 1024 to show `v` in: the largest that leaves at least 1,
/// and a figure that rounds below 1000 (`1010 KiB` is `0.99 MiB`).
fn pick_unit(v: f64) -> (f64, usize) {
    let (mut scale, mut unit) = (1.0, 0);
    while v / scale >= 999.5 && unit + 1 < UNITS.len() {
        scale *= 1024.0;
        unit += 1;
    }
    (scale, unit)
}

/// `v / scale` with three significant digits (`1.80`, `23.5`, `252`);
/// whole bytes have no decimals, and zero is `0`.
fn number(v: f64, scale: f64, unit: usize) -> String {
    let x = v / scale;
    if unit == 0 || x == 0.0 {
        format!("{x:.0}")
    } else if x < 9.995 {
        format!("{x:.2}")
    } else if x < 99.95 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

/// `used/total unit`: `1.80/24.0 GiB`, with the total's unit for both when
/// the used figure reads well in it, else each in its own (`88.0 KiB/16.0 GiB`).
pub fn iec_pair(used: u64, total: u64) -> String {
    let (scale, unit) = pick_unit(total as f64);
    let (used_scale, used_unit) = pick_unit(used as f64);
    if used_unit == unit || used == 0 || used_unit + 1 == unit && used as f64 / scale >= 0.1 {
        format!("{}/{} {}", number(used as f64, scale, unit), number(total as f64, scale, unit), UNITS[unit])
    } else {
        format!("{} {}/{}", number(used as f64, used_scale, used_unit), UNITS[used_unit], iec(total))
    }
}

/// `88.0K`, `256M`, `1.20G`, `4.00G`: the same figures for narrow columns.
pub fn iec_short(bytes: u64) -> String {
    let (scale, unit) = pick_unit(bytes as f64);
    let suffix = ["B", "K", "M", "G", "T", "P"][unit];
    format!("{}{suffix}", number(bytes as f64, scale, unit))
}

/// `s` cut to at most `width` characters with an ellipsis in the middle,
/// keeping more of the end: a path's last components say most
/// (`/mnt/sand…env/v1/python`). Shorter strings come back as they are.
pub fn middle(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count <= width {
        return s.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let head = (width - 1) / 3;
    let tail = width - 1 - head;
    let mut out: String = s.chars().take(head).collect();
    out.push('…');
    out.extend(s.chars().skip(count - tail));
    out
}

/// `s` padded or cut (with `…` at the end) to exactly `width` characters.
pub fn fit(s: &str, width: usize) -> String {
    let count = s.chars().count();
    if count <= width {
        format!("{s:<width$}")
    } else {
        let mut cut: String = s.chars().take(width.saturating_sub(1)).collect();
        if width > 0 {
            cut.push('…');
        }
        cut
    }
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

/// `0.4 s`, `12 s`, `3 min`, `2 h`, `3 d`: how long, for sentences.
pub fn span(ms: u64) -> String {
    match ms {
        0..=9_999 => format!("{:.1} s", ms as f64 / 1000.0),
        10_000..=119_999 => format!("{} s", ms / 1000),
        120_000..=7_199_999 => format!("{} min", ms / 60_000),
        7_200_000..=172_799_999 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}

/// `0.4 s ago`, `12 s ago`, `3 min ago`, `2 h ago`.
pub fn age(ms: u64) -> String {
    format!("{} ago", span(ms))
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
    fn sizes_are_binary_with_three_significant_digits() {
        assert_eq!(iec(0), "0 B");
        assert_eq!(iec(512), "512 B");
        assert_eq!(iec(88 * 1024), "88.0 KiB");
        assert_eq!(iec(2_576_980_378), "2.40 GiB");
        // 23.5 GiB of RAM is not "24 GiB".
        assert_eq!(iec(25_232_932_864), "23.5 GiB");
        // df -h's 252G for a 270 553 174 016-byte filesystem.
        assert_eq!(iec(270_553_174_016), "252 GiB");
        // A "1 TB" drive, as lsblk's 931.5G.
        assert_eq!(iec(1_000_204_886_016), "932 GiB");
        assert_eq!(iec(1_020 << 20), "1.00 GiB");
        assert_eq!(iec(1_000 << 10), "0.98 MiB", "never a four-digit figure");
        assert_eq!(iec(4_000_787_030_016), "3.64 TiB");
    }

    #[test]
    fn pairs_share_the_total_unit_unless_the_used_figure_would_vanish() {
        assert_eq!(iec_pair(2_576_980_378, 8_160_437_862), "2.40/7.60 GiB");
        assert_eq!(iec_pair(1126 << 20, 12 << 30), "1.10/12.0 GiB");
        assert_eq!(iec_pair(8 << 30, 8 << 30), "8.00/8.00 GiB");
        assert_eq!(iec_pair(512 << 20, 24 << 30), "0.50/24.0 GiB");
        assert_eq!(iec_pair(88 << 10, 16 << 30), "88.0 KiB/16.0 GiB");
        assert_eq!(iec_pair(0, 4096), "0/4.00 KiB");
        assert_eq!(iec_pair(0, 0), "0/0 B");
    }

    #[test]
    fn short_forms_for_the_services_table() {
        assert_eq!(iec_short(256 << 20), "256M");
        assert_eq!(iec_short(4 << 30), "4.00G");
        assert_eq!(iec_short(1_288_490_188), "1.20G");
        assert_eq!(iec_short(15 << 30), "15.0G");
        assert_eq!(short_age(42_000), "42s");
        assert_eq!(short_age(3 * 3_600_000), "3h");
        assert_eq!(short_age(5 * 86_400_000), "5d");
    }

    #[test]
    fn values_carry_their_unit() {
        use cm_proto::series::Unit;
        assert_eq!(value(Unit::Percent, 45.64), "45.6%");
        assert_eq!(value(Unit::Celsius, 56.0), "56.0 °C");
        assert_eq!(value(Unit::Bytes, 2_576_980_378.0), "2.40 GiB");
        assert_eq!(value(Unit::Hertz, 3_400_000_000.0), "3.40 GHz");
        assert_eq!(value(Unit::Load, 0.42), "0.42");
        assert_eq!(value(Unit::Count, 3.0), "3");
    }

    #[test]
    fn long_paths_lose_their_middle_and_cells_their_end() {
        let path = "/mnt/sandboxing/model_tools_env/v1/python";
        assert_eq!(middle(path, 100), path);
        assert_eq!(middle(path, 20), "/mnt/s…env/v1/python");
        assert_eq!(middle(path, 20).chars().count(), 20);
        assert_eq!(middle(path, 1), "…");
        assert_eq!(fit("gitea", 8), "gitea   ");
        assert_eq!(fit("a-long-unit-name", 8), "a-long-…");
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
