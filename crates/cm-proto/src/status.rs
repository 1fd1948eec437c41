//! Status levels shared by every value that can be bad.

use serde::{Deserialize, Serialize};

/// How healthy a value is. Ordered so that `max()` picks the worst.
///
/// `Unknown` sorts between `Ok` and `Warning`: a value we cannot judge is worth
/// a look, but is not yet a problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Within every threshold.
    #[default]
    Ok,
    /// Past a warning threshold.
    Warning,
    /// Past a critical threshold, or failed.
    Critical,
    /// Not judged: no data, or a status this version does not know.
    #[serde(other)]
    Unknown,
}

impl Ord for Status {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.severity().cmp(&other.severity())
    }
}

impl PartialOrd for Status {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Status {
    fn severity(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Unknown => 1,
            Status::Warning => 2,
            Status::Critical => 3,
        }
    }

    /// A short lower-case label for tables and logs.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Unknown => "unknown",
            Status::Warning => "warn",
            Status::Critical => "crit",
        }
    }

    /// Status of `value` against a warning and a critical threshold (higher is worse).
    pub fn from_thresholds(value: f64, warning: f64, critical: f64) -> Status {
        if value.is_nan() {
            Status::Unknown
        } else if value >= critical {
            Status::Critical
        } else if value >= warning {
            Status::Warning
        } else {
            Status::Ok
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worst_status_wins_with_max() {
        let all = [Status::Ok, Status::Critical, Status::Unknown, Status::Warning];
        assert_eq!(all.iter().copied().max(), Some(Status::Critical));
        assert_eq!([Status::Ok, Status::Unknown].iter().copied().max(), Some(Status::Unknown));
    }

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(Status::from_thresholds(79.9, 80.0, 90.0), Status::Ok);
        assert_eq!(Status::from_thresholds(80.0, 80.0, 90.0), Status::Warning);
        assert_eq!(Status::from_thresholds(90.0, 80.0, 90.0), Status::Critical);
        assert_eq!(Status::from_thresholds(f64::NAN, 80.0, 90.0), Status::Unknown);
    }

    #[test]
    fn unknown_status_names_decode_as_unknown() {
        let s: Status = serde_json::from_str("\"degraded\"").unwrap();
        assert_eq!(s, Status::Unknown);
    }
}
