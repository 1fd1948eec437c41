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
    assert_eq!(state["version"], 1, "docs/STATE.md");
    assert_eq!(state["mode"], "local");
    assert_eq!(host["name"], hostname.trim());
    assert_eq!(host["connection"]["state"], "local");
    assert_eq!(host["connection"]["reason"], serde_json::Value::Null);
    assert!(["ok", "warning", "critical", "unknown"].contains(&host["status"].as_str().unwrap()), "{host}");
    assert!(host["status_since_ms"].as_u64().unwrap() <= state["time_ms"].as_u64().unwrap());
    assert_eq!(host["stale"], false);
    for key in ["selected", "view", "show_help", "filtering"] {
        assert!(state.get(key).is_none(), "{key}: the screen's state is not the fleet's");
    }
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
    assert!(!text.contains("q quit"), "no keys to press in a printed screen: {text}");
    assert!(text.contains("CPU  load 0.21 0.37 0.39"), "{text}");
    assert!(text.contains("55 C"), "{text}");
    assert!(text.starts_with(" cm-dashboard ── unknown ── local"), "no hostname in this capture: {text}");
    assert!(text.contains("! RAM  2.97/3.57 GiB 83%"), "a warning, marked: {text}");
    assert!(text.contains("(estimated)"), "{text}");
}

#[test]
fn without_a_terminal_the_interactive_view_says_what_to_use() {
    // Standard output is a pipe here, standard input nothing.
    let out = Command::new(env!("CARGO_BIN_EXE_cm-dashboard")).stdin(std::process::Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a terminal") && err.contains("--once") && err.contains("--json-lines"), "{err}");
    assert!(out.stdout.is_empty(), "no escape codes written: {:?}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn json_lines_in_local_mode_prints_this_machine_each_second() {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(env!("CARGO_BIN_EXE_cm-dashboard"))
        .args(["--json-lines", "--local"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Lines come once a second; the first with a snapshot ends the wait.
    let mut seen = None;
    for line in lines.map_while(Result::ok).take(30) {
        let state: serde_json::Value = serde_json::from_str(&line).expect("each line is JSON");
        if !state["hosts"][0]["seq"].is_null() {
            seen = Some(state);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let state = seen.expect("a line with this machine's snapshot");
    assert_eq!((state["version"].as_u64(), state["mode"].as_str()), (Some(1), Some("local")));
    assert_eq!(state["hosts"][0]["connection"]["state"], "local");
    assert!(state["hosts"][0].get("snapshot").is_none(), "lines carry no snapshot");
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
    // The example's certificates are not on this machine: its settings are checked alone.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/dashboard.example.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_cm-dashboard"))
        .args(["--check-config", example])
        .env(cm_dashboard::config::SKIP_FILE_CHECKS, "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = dashboard(&["--check-config", example]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("tls.ca = /run/secrets/cm/ca.pem: no such file"), "{err}");
    let bad = std::env::temp_dir().join(format!("cm-dash-bad-{}.toml", std::process::id()));
    std::fs::write(&bad, "[tls]\nca = \"a\"\ncert = \"b\"\nkey = \"c\"\n[[hosts]]\nnmae = \"x\"\n").unwrap();
    let out = dashboard(&["--check-config", bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 6: unknown field `nmae`"), "{err}");
}

#[test]
fn completions_and_manual_pages_come_from_the_binary() {
    for shell in ["bash", "zsh", "fish"] {
        let out = dashboard(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("json-lines") && text.contains("export"), "{shell} completes flags and subcommands");
    }
    assert!(!dashboard(&["completions", "tcsh"]).status.success(), "an unknown shell is refused");
    let out = dashboard(&["man"]);
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && page.contains(".TH cm-dashboard 1"), "{page}");
    assert!(page.contains("json\\-lines"), "every flag is in the page");
    let dir = std::env::temp_dir().join(format!("cm-dash-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dashboard(&["man", "--dir", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for page in ["cm-dashboard.1", "cm-dashboard-export.1"] {
        let text = std::fs::read_to_string(dir.join(page)).unwrap_or_default();
        assert!(text.starts_with(".ie") && text.contains(".TH"), "{page}: {text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
