//! `cm-dashboard export` against real agents on loopback (the cm-agent
//! library, in this process, keeping history in a temporary directory), and
//! the errors a person gets for each way it can go wrong.

mod common;

use std::path::Path;
use std::process::Command;

use common::{eventually, free_port, Agent, Fleet};

/// Runs `cm-dashboard export` with `args` and the fleet in `config`:
/// (success, stdout, stderr).
fn export(config: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cm-dashboard"))
        .arg("export")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Data rows of a CSV export that has the header `header`.
fn rows(csv: &str, header: &str) -> Result<Vec<Vec<String>>, String> {
    let mut lines = csv.lines();
    if lines.next() != Some(header) {
        return Err(format!("not the header {header:?}: {csv}"));
    }
    Ok(lines.map(|l| l.split(',').map(str::to_owned).collect()).collect())
}

#[test]
fn a_hosts_history_comes_out_as_csv_and_json() {
    let fleet = Fleet::new("export");
    let port = free_port();
    let _agent = Agent::start(&fleet, "srv01", port);
    let config = fleet.dashboard_config(&[("srv01", port, "server")]);

    // Every 0.5 s the agent stores a sample: wait for three.
    let raw = eventually("three raw samples of memory", || {
        let (ok, out, err) =
            export(&config, &["--host", "srv01", "memory.used_percent", "--since", "1h", "--resolution", "raw"]);
        if !ok {
            return Err(err);
        }
        let rows = rows(&out, "series,ts,value")?;
        if rows.len() >= 3 {
            Ok(rows)
        } else {
            Err(out)
        }
    });
    for row in &raw {
        assert_eq!(row[0], "memory.used_percent");
        let ts = cm_history::time::parse_time(&row[1]).unwrap_or_else(|e| panic!("{e}"));
        assert!(row[1].ends_with('Z') && ts > 1_700_000_000_000, "an RFC 3339 time: {row:?}");
        let v: f64 = row[2].parse().unwrap();
        assert!((0.0..=100.0).contains(&v), "{row:?}");
    }

    let (ok, out, err) = export(
        &config,
        &["--host", "srv01", "memory.used_percent", "cpu.load1", "--since", "1h", "--resolution", "1m"],
    );
    assert!(ok, "{err}");
    let minutes = rows(&out, "series,ts,min,max,mean,count").unwrap();
    assert!(
        minutes.iter().any(|r| r[0] == "cpu.load1") && minutes.iter().any(|r| r[0] == "memory.used_percent"),
        "{out}"
    );
    for r in &minutes {
        let (min, max, mean): (f64, f64, f64) = (r[2].parse().unwrap(), r[3].parse().unwrap(), r[4].parse().unwrap());
        assert!(min <= mean && mean <= max && r[5].parse::<u32>().unwrap() >= 1, "{r:?}");
        assert!(r[1].ends_with(":00.000Z"), "a minute starts on its minute: {r:?}");
    }

    let (ok, out, err) =
        export(&config, &["--host", "srv01", "fs.*", "--since", "1h", "--format", "json", "--resolution", "raw"]);
    assert!(ok, "{err}");
    let points: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let points = points.as_array().expect("an array");
    assert!(!points.is_empty(), "a glob selects the filesystems: {out}");
    for p in points {
        assert!(p["series"].as_str().unwrap().starts_with("fs."), "{p}");
        assert!(p["ts"].as_str().unwrap().ends_with('Z') && p["value"].is_number(), "{p}");
    }

    let (ok, _, err) = export(&config, &["--host", "srv01", "no.such.series", "--since", "1h"]);
    assert!(!ok);
    assert!(err.contains("no series on srv01 matches no.such.series"), "{err}");
}

#[test]
fn each_failure_says_what_went_wrong_and_where() {
    let fleet = Fleet::new("export-errors");
    let (dead, old) = (free_port(), fleet.old_agent("srv02", 1));
    let config = fleet.dashboard_config(&[("srv01", dead, "server"), ("srv02", old, "lab")]);

    let (ok, _, err) = export(&config, &["--host", "srv99", "cpu.load1"]);
    assert!(!ok);
    assert!(err.contains("no host \"srv99\" in") && err.contains("it has: srv01, srv02"), "{err}");

    let (ok, _, err) = export(&config, &["--host", "srv01", "cpu.load1"]);
    assert!(!ok);
    assert!(
        err.contains(&format!("dialling srv01 at 127.0.0.1:{dead}: ")),
        "names the host and where it was looked for: {err}"
    );

    let (ok, _, err) = export(&config, &["--host", "srv02", "cpu.load1"]);
    assert!(!ok);
    assert!(err.contains("srv02's agent 0.0.9 speaks protocol 1.1") && err.contains("upgrade cm-agent"), "{err}");

    let (ok, _, err) = export(&config, &["--host", "srv02", "cpu.load1", "--since", "a while"]);
    assert!(!ok);
    assert!(err.contains("--since \"a while\": expected a span such as 90s"), "{err}");
    let (ok, _, err) = export(&config, &["--host", "srv02", "cpu.load1", "--from", "2026-02-30T25:00:00Z"]);
    assert!(!ok);
    assert!(err.contains("--from \"2026-02-30T25:00:00Z\": expected a time"), "{err}");
}
