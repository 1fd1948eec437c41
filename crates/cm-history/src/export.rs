//! Export of history answers as CSV or JSON, the same from `cm-agent export`
//! (a local store) and `cm-dashboard export` (over the wire).
//!
//! CSV has a header row and RFC 3339 timestamps: `series,ts,value` for raw
//! samples, `series,ts,min,max,mean,count` for rollups. JSON is an array of
//! `{series, ts, value}` (or `min`, `max`, `mean`, `count` for rollups), with
//! `ts` in RFC 3339 too. Alert events are `ts,rule,instance,state,severity,value,reason`
//! in CSV, and objects of those keys in JSON.

use std::io::Write;

use cm_proto::history::{Answer, Resolution};
use cm_proto::AlertEvent;

use crate::time::rfc3339;

/// The formats export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            other => Err(format!("{other:?}: expected csv or json")),
        }
    }
}

fn is_raw(answer: &Answer) -> bool {
    answer.series.iter().all(|(_, r, _)| *r == Resolution::Raw)
}

/// A CSV field: quoted when it holds a comma, a quote or a line break.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes `answer` to `out` in `format`.
pub fn write(answer: &Answer, format: Format, out: &mut impl Write) -> std::io::Result<()> {
    let raw = is_raw(answer);
    match format {
        Format::Csv => {
            writeln!(out, "{}", if raw { "series,ts,value" } else { "series,ts,min,max,mean,count" })?;
            for (series, _, points) in &answer.series {
                let name = field(series);
                for p in points {
                    let ts = rfc3339(p.ts_ms);
                    if raw {
                        writeln!(out, "{name},{ts},{}", p.mean)?;
                    } else {
                        writeln!(out, "{name},{ts},{},{},{},{}", p.min, p.max, p.mean, p.count)?;
                    }
                }
            }
        }
        Format::Json => {
            write!(out, "[")?;
            let mut first = true;
            for (series, _, points) in &answer.series {
                let name = serde_json::to_string(series).expect("a string serialises");
                for p in points {
                    let sep = if first { "\n" } else { ",\n" };
                    first = false;
                    let ts = rfc3339(p.ts_ms);
                    if raw {
                        write!(out, "{sep}{{\"series\":{name},\"ts\":\"{ts}\",\"value\":{}}}", num(p.mean))?;
                    } else {
                        write!(
                            out,
                            "{sep}{{\"series\":{name},\"ts\":\"{ts}\",\"min\":{},\"max\":{},\"mean\":{},\"count\":{}}}",
                            num(p.min),
                            num(p.max),
                            num(p.mean),
                            p.count
                        )?;
                    }
                }
            }
            writeln!(out, "{}]", if first { "" } else { "\n" })?;
        }
    }
    Ok(())
}

/// Writes alert events to `out` in `format`, oldest first.
pub fn write_events(events: &[AlertEvent], format: Format, out: &mut impl Write) -> std::io::Result<()> {
    match format {
        Format::Csv => {
            writeln!(out, "ts,rule,instance,state,severity,value,reason")?;
            for e in events {
                let value = e.value.map_or_else(String::new, |v| v.to_string());
                writeln!(
                    out,
                    "{},{},{},{},{},{value},{}",
                    rfc3339(e.ts_ms as i64),
                    field(&e.rule),
                    field(&e.instance),
                    e.state.label(),
                    e.severity.label(),
                    field(&e.reason)
                )?;
            }
        }
        Format::Json => {
            let rows: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "ts": rfc3339(e.ts_ms as i64),
                        "rule": e.rule,
                        "instance": e.instance,
                        "state": e.state.label(),
                        "severity": e.severity.label(),
                        "value": e.value.filter(|v| v.is_finite()),
                        "reason": e.reason,
                    })
                })
                .collect();
            serde_json::to_writer_pretty(&mut *out, &rows)?;
            writeln!(out)?;
        }
    }
    Ok(())
}

/// A JSON number (the store holds finite values only; anything else is null).
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        "null".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cm_proto::history::{HistoryEnd, Point};

    fn answer(resolution: Resolution, points: Vec<Point>) -> Answer {
        Answer {
            series: vec![("fs./a,b.used_percent".into(), resolution, points)],
            events: Vec::new(),
            end: HistoryEnd::default(),
        }
    }

    #[test]
    fn csv_has_a_header_rfc3339_times_and_quoted_names() {
        let a = answer(Resolution::Raw, vec![Point::raw(0, 1.5), Point::raw(2000, 2.0)]);
        let mut out = Vec::new();
        write(&a, Format::Csv, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "series,ts,value\n\"fs./a,b.used_percent\",1970-01-01T00:00:00.000Z,1.5\n\
             \"fs./a,b.used_percent\",1970-01-01T00:00:02.000Z,2\n"
        );
    }

    #[test]
    fn json_is_an_array_of_points_with_rollup_fields() {
        let a = answer(Resolution::Minute, vec![Point { ts_ms: 60_000, min: 1.0, max: 3.0, mean: 2.0, count: 30 }]);
        let mut out = Vec::new();
        write(&a, Format::Json, &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let p = &v.as_array().expect("an array")[0];
        assert_eq!(
            (p["series"].as_str(), p["ts"].as_str()),
            (Some("fs./a,b.used_percent"), Some("1970-01-01T00:01:00.000Z"))
        );
        let nums: Vec<_> = ["min", "max", "mean", "count"].iter().map(|k| p[k].as_f64()).collect();
        assert_eq!(nums, [Some(1.0), Some(3.0), Some(2.0), Some(30.0)]);
        let mut out = Vec::new();
        write(&answer(Resolution::Raw, vec![]), Format::Json, &mut out).unwrap();
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&out).unwrap(), serde_json::json!([]));
    }
}
