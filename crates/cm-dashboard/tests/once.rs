//! `cm-dashboard --once`: the state it would draw, for scripts and tests.

use std::process::Command;

fn dashboard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cm-dashboard")).args(args).output().expect("cm-dashboard runs")
}

#[test]
fn once_json_prints_this_host() {
    let out = dashboard(&["--once", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let state: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let host = &state["hosts"][0];
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(state["mode"], "local");
    assert_eq!(host["name"], hostname.trim());
    assert_eq!(host["connection"]["state"], "local");
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo.lines().next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(host["snapshot"]["memory"]["total_bytes"], kib * 1024);
    assert!(host["snapshot"]["filesystems"].as_array().unwrap().iter().any(|f| f["mount_point"] == "/"));
}

#[test]
fn once_prints_the_screen_of_a_captured_tree() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../cm-collect/testdata/node_exporter");
    let out = dashboard(&["--once", "--size", "80x24", "--sysroot", root]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 24);
    assert!(text.contains("CPU  load 0.21 0.37 0.39"), "{text}");
    assert!(text.contains("55 C"), "{text}");
    assert!(text.starts_with(" cm-dashboard ── unknown ── local"), "no hostname in this capture: {text}");
    assert!(text.contains("RAM  2.97/3.57 GiB 83% (estimated)"), "{text}");
}

#[test]
fn bad_arguments_are_explained() {
    let out = dashboard(&["--once", "--size", "wide"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected COLSxROWS"));
    let out = dashboard(&["--json"]);
    assert!(!out.status.success(), "--json needs --once");
    let out = dashboard(&["--sysroot", "/nonexistent/root", "--once"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/root is not a directory"));
}

#[test]
fn check_config_validates_a_fleet_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.example.toml");
    let out = dashboard(&["--check-config", example]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bad = std::env::temp_dir().join(format!("cm-dash-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n[[hosts]]\nnmae = \"x\"\n").unwrap();
    let out = dashboard(&["--check-config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 6: unknown field `nmae`"), "{err}");
}
