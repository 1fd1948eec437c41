//! Patches: how a host's state changes on the wire after the first snapshot.
//!
//! A patch is a merge patch (RFC 7386) of the snapshot's CBOR map, with one
//! extension for arrays:
//!
//! - a key that is absent is unchanged;
//! - a key whose value is `null` is removed (the field takes its default:
//!   null for optional values, empty for lists);
//! - a map patches the map it lands on, key by key, recursively;
//! - a map with unsigned-integer keys patches the array it lands on, element
//!   by element (index → patch); the array keeps its length;
//! - anything else replaces the value.
//!
//! [`diff`] computes the patch from what the peer holds to the truth, leaving
//! out changes within the documented [`tolerance`] of each field. Because the
//! agent diffs against its mirror of the peer (not against the previous
//! snapshot), a change too small to send accumulates until it is visible and
//! is then sent: the peer never drifts further than the tolerance.

use ciborium::value::Value;
use thiserror::Error;

/// How close two numbers must be for a peer's copy to count as current.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Tolerance {
    /// Any difference is sent.
    Exact,
    /// Within `abs`, or within `rel` (a fraction) of the larger value.
    Within { abs: f64, rel: f64 },
}

const MIB: f64 = 1_048_576.0;
const MHZ: f64 = 1e6;

/// The tolerance of the field at `path` (map keys; `*` for an array element),
/// e.g. `["services", "*", "memory_bytes"]`. The one table of them: the
/// protocol document lists the same.
pub fn tolerance(path: &[&str]) -> Tolerance {
    use Tolerance::Within;
    let abs = |abs: f64| Within { abs, rel: 0.0 };
    match path {
        ["uptime_seconds"] => abs(60.0),
        ["cpu", "load1" | "load5" | "load15"] => abs(0.01),
        ["cpu", "utilisation_percent"] => abs(0.5),
        ["cpu", "frequency_hz" | "max_frequency_hz"] | ["cpu", "core_frequencies_hz", "*"] => abs(50.0 * MHZ),
        ["cpu", "temperature_celsius"] => abs(0.5),
        ["memory", "used_bytes" | "available_bytes" | "swap_used_bytes"] => Within { abs: MIB, rel: 0.005 },
        ["memory", "tmpfs", "*", "used_bytes"] => Within { abs: MIB, rel: 0.01 },
        ["memory", "zram", "*", "original_bytes" | "compressed_bytes" | "memory_used_bytes"] => {
            Within { abs: MIB, rel: 0.01 }
        }
        ["gpus", "*", "utilisation_percent"] => abs(1.0),
        ["gpus", "*", "memory_used_bytes"] => Within { abs: MIB, rel: 0.01 },
        ["gpus", "*", "temperature_celsius"] => abs(0.5),
        ["gpus", "*", "power_watts"] => abs(1.0),
        ["gpus", "*", "clock_hz"] => abs(50.0 * MHZ),
        ["drives", "*", "used_bytes"] => Within { abs: MIB, rel: 0.001 },
        ["filesystems", "*", "used_bytes" | "available_bytes"] => Within { abs: MIB, rel: 0.001 },
        ["services", "*", "memory_bytes" | "io_read_bytes" | "io_write_bytes"] => Within { abs: MIB, rel: 0.01 },
        ["services", "*", "cpu_percent"] => abs(0.5),
        ["services", "*", "cpu_throttled_usec"] => Within { abs: 1e6, rel: 0.01 },
        ["collectors", "*", "collected_ms"] => abs(60_000.0),
        ["collectors", "*", "duration_us"] => Within { abs: 100_000.0, rel: 0.5 },
        _ => Tolerance::Exact,
    }
}

/// A patch that does not fit the state it is applied to.
#[derive(Debug, Error, PartialEq)]
#[error("patch does not fit the state at {path}: {what}")]
pub struct PatchError {
    pub path: String,
    pub what: String,
}

/// The patch that brings `old` to `new`, or `None` when they agree within
/// tolerance. `exact` ignores the tolerances (every difference is sent).
pub fn diff(old: &Value, new: &Value, exact: bool) -> Option<Value> {
    let mut path = Vec::with_capacity(8);
    diff_at(old, new, exact, &mut path)
}

fn diff_at<'a>(old: &'a Value, new: &'a Value, exact: bool, path: &mut Vec<&'a str>) -> Option<Value> {
    match (old, new) {
        (Value::Map(a), Value::Map(b)) if text_keys(a) && text_keys(b) => {
            let mut patch = Vec::new();
            for (i, (key, nv)) in b.iter().enumerate() {
                let Value::Text(name) = key else { continue };
                // Maps made from the same struct list their keys in the same order.
                let ov = match a.get(i) {
                    Some((k, v)) if k == key => Some(v),
                    _ => a.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                };
                match ov {
                    Some(ov) => {
                        path.push(name);
                        if let Some(p) = diff_at(ov, nv, exact, path) {
                            patch.push((key.clone(), p));
                        }
                        path.pop();
                    }
                    None if nv.is_null() => {}
                    None => patch.push((key.clone(), nv.clone())),
                }
            }
            for (key, ov) in a {
                if !ov.is_null() && !b.iter().any(|(k, _)| k == key) {
                    patch.push((key.clone(), Value::Null));
                }
            }
            (!patch.is_empty()).then_some(Value::Map(patch))
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            path.push("*");
            let changed: Vec<(Value, Value)> = a
                .iter()
                .zip(b)
                .enumerate()
                .filter_map(|(i, (ov, nv))| diff_at(ov, nv, exact, path).map(|p| (Value::Integer(i.into()), p)))
                .collect();
            path.pop();
            let records = b.iter().all(|v| matches!(v, Value::Map(_)));
            match changed.len() {
                0 => None,
                // When most numbers of a list changed, the list is smaller than its
                // index; records (services, drives) are patched field by field.
                n if !records && 2 * n > a.len() => Some(new.clone()),
                _ => Some(Value::Map(changed)),
            }
        }
        (a, b) => {
            let same = match (number(a), number(b)) {
                (Some(x), Some(y)) if !exact => match tolerance(path) {
                    Tolerance::Exact => a == b,
                    Tolerance::Within { abs, rel } => (x - y).abs() <= abs.max(rel * x.abs().max(y.abs())),
                },
                _ => a == b,
            };
            (!same).then(|| b.clone())
        }
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(i128::from(*i) as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn text_keys(map: &[(Value, Value)]) -> bool {
    map.iter().all(|(k, _)| k.is_text())
}

fn index_keys(map: &[(Value, Value)]) -> bool {
    !map.is_empty() && map.iter().all(|(k, _)| k.is_integer())
}

/// Applies `patch` to `target` (see the module documentation).
pub fn apply(target: &mut Value, patch: &Value) -> Result<(), PatchError> {
    apply_at(target, patch, &mut String::new())
}

fn apply_at(target: &mut Value, patch: &Value, path: &mut String) -> Result<(), PatchError> {
    let fail = |path: &String, what: String| PatchError {
        path: if path.is_empty() { ".".into() } else { path.clone() },
        what,
    };
    match (target, patch) {
        (Value::Array(items), Value::Map(entries)) if index_keys(entries) => {
            for (k, p) in entries {
                let i = k.as_integer().and_then(|i| usize::try_from(i).ok());
                let Some(item) = i.and_then(|i| items.get_mut(i)) else {
                    return Err(fail(path, format!("no element {k:?} in an array of {}", items.len())));
                };
                if p.is_null() {
                    return Err(fail(path, "null for an array element".into()));
                }
                let len = path.len();
                path.push_str(&format!("[{}]", i.unwrap_or_default()));
                apply_at(item, p, path)?;
                path.truncate(len);
            }
        }
        (Value::Map(fields), Value::Map(entries)) if text_keys(entries) => {
            for (k, p) in entries {
                let at = fields.iter().position(|(f, _)| f == k);
                match (at, p) {
                    (Some(i), Value::Null) => {
                        fields.remove(i);
                    }
                    (None, Value::Null) => {}
                    (Some(i), p) => {
                        let len = path.len();
                        path.push('.');
                        path.push_str(k.as_text().unwrap_or_default());
                        apply_at(&mut fields[i].1, p, path)?;
                        path.truncate(len);
                    }
                    (None, p) => fields.push((k.clone(), p.clone())),
                }
            }
        }
        (_, Value::Map(entries)) if index_keys(entries) => {
            return Err(fail(path, "element patches for something that is not an array".into()));
        }
        (target, p) => *target = p.clone(),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> Value {
        let j: serde_json::Value = serde_json::from_str(json).unwrap();
        Value::serialized(&j).unwrap()
    }

    fn roundtrip(old: &str, new: &str) -> Option<Value> {
        let (mut o, n) = (v(old), v(new));
        let p = diff(&o, &n, true);
        if let Some(p) = &p {
            apply(&mut o, p).unwrap();
        }
        assert_eq!(o, n, "applying the patch gives the new value");
        p
    }

    #[test]
    fn absent_is_unchanged_null_is_removed() {
        assert_eq!(roundtrip(r#"{"a":1,"b":2}"#, r#"{"a":1,"b":2}"#), None);
        assert_eq!(roundtrip(r#"{"a":1,"b":{"c":2}}"#, r#"{"a":1}"#), Some(v(r#"{"b":null}"#)));
        assert_eq!(
            roundtrip(r#"{"a":1,"b":{"c":2,"d":3}}"#, r#"{"a":1,"b":{"c":2,"d":4}}"#),
            Some(v(r#"{"b":{"d":4}}"#))
        );
        // A value that becomes null: the key goes (null and absent mean the same in a snapshot).
        let mut o = v(r#"{"cpu":{"load1":1}}"#);
        let p = diff(&o, &v(r#"{"cpu":null}"#), false).unwrap();
        assert_eq!(p, v(r#"{"cpu":null}"#));
        apply(&mut o, &p).unwrap();
        assert_eq!(o, v("{}"));
    }

    #[test]
    fn arrays_of_the_same_length_are_patched_by_index() {
        let old = r#"{"s":[{"n":"a","m":1},{"n":"b","m":2},{"n":"c","m":3}]}"#;
        let p = roundtrip(old, r#"{"s":[{"n":"a","m":1},{"n":"b","m":5},{"n":"c","m":3}]}"#).unwrap();
        let expected =
            Value::Map(vec![(Value::Text("s".into()), Value::Map(vec![(Value::Integer(1.into()), v(r#"{"m":5}"#))]))]);
        assert_eq!(p, expected);
        // Another length, or most numbers of a list changed: the whole array.
        assert_eq!(roundtrip(old, r#"{"s":[]}"#), Some(v(r#"{"s":[]}"#)));
        assert_eq!(roundtrip(r#"{"f":[1,2,3]}"#, r#"{"f":[4,5,3]}"#), Some(v(r#"{"f":[4,5,3]}"#)));
        // Records are patched field by field however many changed.
        let all = roundtrip(old, r#"{"s":[{"n":"a","m":9},{"n":"b","m":9},{"n":"c","m":9}]}"#).unwrap();
        assert!(matches!(&all.as_map().unwrap()[0].1, Value::Map(m) if m.len() == 3 && m[0].0.is_integer()));
    }

    #[test]
    fn changes_within_tolerance_are_left_out_until_they_add_up() {
        let mib = 1u64 << 20;
        let at = |used: u64| v(&format!(r#"{{"filesystems":[{{"used_bytes":{used}}}]}}"#));
        let mut peer = at(10_000 * mib);
        let mut sent = 0;
        // 0.5 MiB a step on a 10 GB filesystem: under the tolerance of 10 MiB each time.
        for step in 1..=100u64 {
            let truth = at(10_000 * mib + step * mib / 2);
            if let Some(p) = diff(&peer, &truth, false) {
                apply(&mut peer, &p).unwrap();
                sent += 1;
            }
            let held = peer.as_map().unwrap()[0].1.as_array().unwrap()[0].as_map().unwrap()[0].1.clone();
            let held = i128::from(held.as_integer().unwrap()) as f64;
            let want = (10_000 * mib + step * mib / 2) as f64;
            assert!((held - want).abs() <= want * 0.001, "step {step}: {held} vs {want}");
        }
        assert!((4..=6).contains(&sent), "sent {sent} times: once the drift passes 10 MiB");
        assert!(diff(&peer, &at(10_000 * mib + 50 * mib), true).is_some(), "exact sees the rest");
    }

    #[test]
    fn patches_that_do_not_fit_are_errors_not_panics() {
        let mut o = v(r#"{"s":[1,2]}"#);
        let bad = Value::Map(vec![(
            Value::Text("s".into()),
            Value::Map(vec![(Value::Integer(7.into()), Value::Integer(1.into()))]),
        )]);
        assert!(apply(&mut o, &bad).unwrap_err().to_string().contains("no element"));
        let mut o = v(r#"{"s":{"a":1}}"#);
        assert!(apply(&mut o, &bad).is_err());
    }
}
