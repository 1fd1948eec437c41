//! History kept by a real `cm-agent run`: what a kill -9 loses, a full disk,
//! a read-only or corrupt state, and export checked by Python's parsers.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use cm_history::Reader;
use cm_net::client::subscribe;
use cm_net::{tls, Role};
use cm_proto::history::{HistoryRequest, Resolution};

mod common;

use common::{agent_bin, ok, Setup};

const T: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The stored times of `series` (raw), in milliseconds.
fn stored(dir: &Path, series: &str) -> Vec<i64> {
    let reader = Reader::open(dir).unwrap();
    let req = HistoryRequest {
        series: vec![series.into()],
        from_ms: 0,
        to_ms: now_ms() + 60_000,
        resolution: Resolution::Raw,
        max_points: 0,
        events: false,
    };
    let answer = reader.range(&req, now_ms()).unwrap();
    answer.series.first().map(|(_, _, p)| p.iter().map(|p| p.ts_ms).collect()).unwrap_or_default()
}

fn is_root() -> bool {
    rustix_uid() == 0
}

fn rustix_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Mounts a tmpfs of `size` at `dir` (root only); unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// A tmpfs for the test `tag`, or SKIPPED (and `None`) where none can be mounted.
    fn for_test(tag: &str, options: &str) -> Option<Tmpfs> {
        if !is_root() {
            eprintln!("SKIPPED: mounting a tmpfs ({options}) as the state dir needs root");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("cm-{tag}-{}", std::process::id()));
        let mount = Tmpfs::mount(&dir, options);
        if mount.is_none() {
            eprintln!("SKIPPED: cannot mount a tmpfs here");
        }
        mount
    }

    fn mount(dir: &Path, options: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount").args(["-t", "tmpfs", "-o", options, "cm-test", dir.to_str()?]).status().ok()?;
        ok.success().then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn kill_9_loses_at_most_the_last_interval_and_never_corrupts() {
    let setup = Setup::new("kill9", 0.5, None, |_| {});
    let state = setup.dir.join("state");
    let endpoint_dir = setup.dir.clone();
    for round in 0..20 {
        let mut agent = setup.run();
        let endpoint = tls::client(&agent.identity("laptop")).unwrap();
        let mut sub = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
        // Two intervals seen by a subscriber; the one before the last must be stored.
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let snap = tokio::time::timeout(T, sub.next_snapshot()).await.unwrap().unwrap().unwrap();
            if seen.last() != Some(&snap.timestamp_ms) {
                seen.push(snap.timestamp_ms);
            }
        }
        agent.child.kill().unwrap(); // SIGKILL
        agent.child.wait().unwrap();
        let reader = Reader::open(&state).unwrap();
        assert_eq!(reader.integrity_check().unwrap(), "ok", "round {round}");
        let times = stored(&state, "memory.total_bytes");
        for &ts in &seen[..seen.len() - 1] {
            let ts = ts as i64 / 100 * 100;
            assert!(times.contains(&ts), "round {round}: the interval at {ts} was lost; stored {times:?}");
        }
    }
    let _ = std::fs::remove_dir_all(endpoint_dir);
}

#[tokio::test]
async fn a_full_disk_pauses_history_and_serving_goes_on() {
    let Some(mount) = Tmpfs::for_test("full", "size=4m") else { return };
    let tmp = mount.0.clone();
    let state = tmp.join("state");
    let history = format!("state_dir = \"{}\"", state.display());
    let agent = Setup::new("full", 0.2, Some(&history), |_| {}).run();
    agent.wait_log("history kept", |l| l.contains("history: keeping"));
    let deadline = Instant::now() + T;
    while stored(&state, "memory.total_bytes").len() < 2 {
        assert!(Instant::now() < deadline, "no history before the disk filled");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Fill the rest of the tmpfs.
    let filler = tmp.join("filler");
    let _ = Command::new("dd").args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=64k"]).output();
    let log = agent.wait_log("disk full", |l| l.contains("is full; history is paused"));
    assert!(log.contains(&state.display().to_string()), "{log}");
    // The agent serves on, and its snapshots say why history stopped.
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let mut sub = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    let deadline = Instant::now() + T;
    loop {
        let snap = tokio::time::timeout(T, sub.next_snapshot()).await.unwrap().unwrap().unwrap();
        let history = snap.collector("history").expect("a history entry");
        if history.error.as_deref().is_some_and(|e| e.contains("full")) {
            break;
        }
        assert!(Instant::now() < deadline, "snapshots do not say the disk is full: {history:?}");
    }
    std::fs::remove_file(&filler).unwrap();
    agent.wait_log("resumed", |l| l.contains("history: resumed"));
    let before = stored(&state, "memory.total_bytes").len();
    let deadline = Instant::now() + T;
    while stored(&state, "memory.total_bytes").len() <= before {
        assert!(Instant::now() < deadline, "history did not resume");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(Reader::open(&state).unwrap().integrity_check().unwrap(), "ok");
}

#[tokio::test]
async fn a_read_only_state_dir_is_a_clear_error_and_the_agent_serves() {
    let Some(mount) = Tmpfs::for_test("ro", "size=1m,ro") else { return };
    let tmp = mount.0.clone();
    let history = format!("state_dir = \"{}\"", tmp.display());
    let agent = Setup::new("ro", 0.3, Some(&history), |_| {}).run();
    let log = agent.wait_log("history off", |l| l.contains("history is off"));
    assert!(log.contains(&format!("{} is read-only", tmp.display())), "{log}");
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let mut sub = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    let snap = tokio::time::timeout(T, sub.next_snapshot()).await.unwrap().unwrap().unwrap();
    let entry = snap.collector("history").expect("a history entry");
    assert!(entry.error.as_deref().is_some_and(|e| e.contains("read-only")), "{entry:?}");
}

#[test]
fn a_corrupt_file_is_moved_aside_with_a_log_line_and_history_starts_anew() {
    let setup = Setup::new("corrupt", 0.3, None, |dir| {
        std::fs::create_dir_all(dir.join("state")).unwrap();
        std::fs::write(dir.join("state/history.sqlite"), b"this is not a database, it only sits where one should")
            .unwrap();
    });
    let state = setup.dir.join("state");
    let agent = setup.run();
    let log = agent.wait_log("moved aside", |l| l.contains("moved it to"));
    assert!(log.contains("was not usable"), "{log}");
    let aside: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("history.sqlite.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let kept = std::fs::read(state.join(&aside[0])).unwrap();
    assert!(kept.starts_with(b"this is not a database"), "the old file is kept as it was");
    let deadline = Instant::now() + T;
    while stored(&state, "cpu.load1").is_empty() {
        assert!(Instant::now() < deadline, "no new history");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn export_of_a_known_range_parses_with_pythons_csv_and_json() {
    let start = (now_ms() - 3_600_000) / 60_000 * 60_000;
    let values: Vec<f64> = (0..600).map(|i| ((i * 37) % 101) as f64 / 4.0).collect();
    let setup = Setup::new("export", 0.3, None, |dir| {
        let (mut store, _) = cm_history::Store::open(&dir.join("state"), Default::default(), start).unwrap();
        for (i, v) in values.iter().enumerate() {
            let sample = cm_proto::series::Sample { name: "fs./srv/a,b.used_percent".into(), value: *v };
            store.record(start + i as i64 * 2_000, &[sample]).unwrap();
        }
    });
    let state = setup.dir.join("state");
    let (from, to) = (cm_history::time::rfc3339(start), cm_history::time::rfc3339(start + 1_200_000));
    let export = |format: &str, resolution: &str| {
        ok(agent_bin().args([
            "export",
            "--state-dir",
            state.to_str().unwrap(),
            "fs.*.used_percent",
            "--from",
            &from,
            "--to",
            &to,
            "--resolution",
            resolution,
            "--format",
            format,
        ]))
    };
    let python = |script: &str, input: String| {
        let mut child = Command::new("python3")
            .args(["-c", script])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "python failed on:\n{input}");
        String::from_utf8(out.stdout).unwrap()
    };
    // CSV: a header, RFC 3339 times, every value as recorded.
    let csv = python(
        "import csv,sys,datetime\nr=list(csv.DictReader(sys.stdin))\nassert list(r[0])==['series','ts','value'],r[0]\n\
         [datetime.datetime.fromisoformat(x['ts'].replace('Z','+00:00')) for x in r]\nprint(' '.join(x['value'] for x in r))\n\
         print(r[0]['series'])",
        export("csv", "raw"),
    );
    let mut lines = csv.lines();
    let got: Vec<f64> = lines.next().unwrap().split(' ').map(|v| v.parse().unwrap()).collect();
    assert_eq!(got, values, "CSV values");
    assert_eq!(lines.next(), Some("fs./srv/a,b.used_percent"), "a comma in a name survives");
    // JSON: an array of {series, ts, value}; rollups with min/max/mean/count.
    let json = python(
        "import json,sys\na=json.load(sys.stdin)\nprint(len(a), sum(p['count'] for p in a), min(p['min'] for p in a), max(p['max'] for p in a))",
        export("json", "1m"),
    );
    let min = values.iter().cloned().fold(f64::MAX, f64::min);
    let max = values.iter().cloned().fold(f64::MIN, f64::max);
    let got: Vec<f64> = json.split_whitespace().map(|v| v.parse().unwrap()).collect();
    assert_eq!(got, [20.0, 600.0, min, max], "20 minutes of 30 samples, and their extremes");
    // An unknown series and a bad span are clear errors.
    let out = agent_bin().args(["export", "--state-dir", state.to_str().unwrap(), "nope.*"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("no series matches nope.*"), "{out:?}");
    let out = agent_bin()
        .args(["export", "--state-dir", state.to_str().unwrap(), "fs.*", "--since", "soon"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since \"soon\": expected a span"), "{out:?}");
}

#[tokio::test]
async fn a_growing_filesystem_gets_a_full_date_in_the_snapshot() {
    // 20 days of / filling by 2 points a day, to 60 % now: full in about 20 days.
    let now = now_ms();
    let setup = Setup::new("forecast", 0.3, None, |dir| {
        let start = now - 20 * 86_400_000;
        let (mut store, _) = cm_history::Store::open(&dir.join("state"), Default::default(), start).unwrap();
        let mut t = start;
        while t < now - 600_000 {
            let used = 20.0 + 2.0 * (t - start) as f64 / 86_400_000.0;
            store.record(t, &[cm_proto::series::Sample { name: "fs./.used_percent".into(), value: used }]).unwrap();
            t += 600_000;
        }
    });
    let agent = setup.run();
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let mut sub = subscribe(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    let deadline = Instant::now() + T;
    let full = loop {
        let snap = tokio::time::timeout(T, sub.next_snapshot()).await.unwrap().unwrap().unwrap();
        let root = snap.filesystems.iter().find(|f| f.mount_point == "/");
        let Some(root) = root else {
            eprintln!("SKIPPED: this machine's snapshot has no / filesystem to attach a forecast to");
            return;
        };
        if let Some(full) = root.full.clone() {
            break full;
        }
        assert!(Instant::now() < deadline, "no forecast for /: {:?}", root);
    };
    let days = (full.at_ms as i64 - now) as f64 / 86_400_000.0;
    assert!((15.0..25.0).contains(&days), "full in {days:.1} d: {full:?}");
    assert!(full.earliest_ms <= full.at_ms && full.at_ms <= full.latest_ms, "{full:?}");
    assert!((full.per_day - 2.0).abs() < 0.3, "{full:?}");
}
