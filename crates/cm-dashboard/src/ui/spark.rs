//! Sparklines: a timeline as a row of block characters, one per column.

use cm_proto::series::{unit_of, Unit};

use crate::history::Timeline;

/// Heights, lowest first; a column with no point is a dot.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const EMPTY: char = '·';

/// How values map to heights.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scale {
    /// Fixed bounds: a percentage is drawn against 0-100, so that its
    /// height says how full it is and a small wobble stays small.
    Fixed(f64, f64),
    /// The columns' own lowest and highest mean, at least this far apart
    /// (a temperature: 10 degrees).
    Auto { min_span: f64 },
}

fn scale_of(series: &str) -> Scale {
    match unit_of(series) {
        Unit::Percent => Scale::Fixed(0.0, 100.0),
        Unit::Celsius => Scale::Auto { min_span: 10.0 },
        _ => Scale::Auto { min_span: f64::EPSILON },
    }
}

/// `series`' timeline over its window ending at `end_ms`, `width` columns
/// wide, each the mean of its stretch; dots where nothing is known (before
/// the history starts, or while the host was away and its store had nothing).
pub fn sparkline(series: &str, t: Option<&Timeline>, end_ms: Option<i64>, width: usize) -> String {
    let (Some(t), Some(end)) = (t, end_ms) else { return EMPTY.to_string().repeat(width) };
    let columns = t.columns(end, width);
    let means: Vec<f64> = columns.iter().flatten().map(|c| c.mean).collect();
    let (lo, hi) = match scale_of(series) {
        Scale::Fixed(lo, hi) => (lo, hi),
        Scale::Auto { min_span } => {
            let lo = means.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = means.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (lo, hi.max(lo + min_span))
        }
    };
    columns
        .iter()
        .map(|c| match c {
            None => EMPTY,
            Some(c) => {
                let frac = ((c.mean - lo) / (hi - lo)).clamp(0.0, 1.0);
                BLOCKS[((frac * BLOCKS.len() as f64) as usize).min(BLOCKS.len() - 1)]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Window;

    const T0: i64 = 1_764_000_000_000;
    const MINUTE: i64 = 60_000;

    #[test]
    fn percentages_stand_against_a_full_scale_and_gaps_are_dots() {
        let mut t = Timeline::new(Window::LAST_HOUR);
        for (m, v) in [(-60, 0.0), (-45, 50.0), (-30, 100.0), (-1, 20.0)] {
            t.sample(T0 + m * MINUTE, v);
        }
        assert_eq!(sparkline("cpu.utilisation_percent", Some(&t), Some(T0), 4), "▁▅█▂");
        let mut t = Timeline::new(Window::LAST_HOUR);
        t.sample(T0 - MINUTE, 40.0);
        assert_eq!(sparkline("memory.used_percent", Some(&t), Some(T0), 6), "·····▄");
        assert_eq!(sparkline("memory.used_percent", None, None, 3), "···");
    }

    #[test]
    fn temperatures_use_their_own_range_of_at_least_ten_degrees() {
        let mut t = Timeline::new(Window::LAST_HOUR);
        for (m, v) in [(-50, 40.0), (-30, 45.0), (-10, 50.0)] {
            t.sample(T0 + m * MINUTE, v);
        }
        assert_eq!(sparkline("drive.sda.temperature_celsius", Some(&t), Some(T0), 3), "▁▅█");
        let mut flat = Timeline::new(Window::LAST_HOUR);
        flat.sample(T0 - 50 * MINUTE, 40.0);
        flat.sample(T0 - 10 * MINUTE, 41.0);
        assert_eq!(sparkline("drive.sda.temperature_celsius", Some(&flat), Some(T0), 2), "▁▁", "a degree is no cliff");
    }
}
