//! Fleet mode end to end on loopback: real agents (the cm-agent library, in
//! this process) and the real dashboard binary.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{free_port, Agent, Fleet, Tmux};

fn once(config: &Path, wait: &str) -> (bool, serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cm-dashboard"))
        .args(["--once", "--json", "--wait", wait, "--config"])
        .arg(config)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    (out.status.success(), json, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn once_json_reports_every_host_and_fails_when_one_is_down() {
    let fleet = Fleet::new("once");
    let (p1, p2) = (free_port(), free_port());
    let _a1 = Agent::start(&fleet, "srv01", p1);
    let a2 = Agent::start(&fleet, "srv02", p2);
    let config = fleet.dashboard_config(&[("srv01", p1, "server"), ("srv02", p2, "lab")]);

    let (ok, state, err) = once(&config, "10");
    assert!(ok, "{err}\n{state:#}");
    assert_eq!((state["version"].as_u64(), state["mode"].as_str()), (Some(1), Some("fleet")));
    for (i, name) in ["srv01", "srv02"].iter().enumerate() {
        let host = &state["hosts"][i];
        assert_eq!(host["name"], *name);
        assert_eq!(host["connection"]["state"], "connected");
        assert_eq!(host["snapshot"]["host"], *name, "each snapshot came from the host its connection dialled");
        assert_eq!(host["interval_ms"], 500);
    }

    drop(a2);
    let (ok, state, err) = once(&config, "2");
    assert!(!ok, "a host is down: non-zero exit");
    assert!(err.contains("unreachable: srv02"), "{err}");
    assert_eq!(state["hosts"][1]["connection"]["state"], "unreachable");
    // Either the pool's dial limit or --wait ran out first: both say so.
    assert!(state["hosts"][1]["connection"]["reason"].as_str().unwrap().contains("no answer within 2"), "{state:#}");
    assert!(state["hosts"][1]["snapshot"].is_null());
    assert_eq!(state["hosts"][0]["connection"]["state"], "connected");
}

#[test]
fn a_host_dialled_under_the_wrong_name_is_refused() {
    let fleet = Fleet::new("name");
    let port = free_port();
    let _agent = Agent::start(&fleet, "srv01", port);
    // The config says srv02 lives where srv01's agent answers.
    let config = fleet.dashboard_config(&[("srv02", port, "server")]);
    let (ok, state, _) = once(&config, "2");
    assert!(!ok);
    let reason = state["hosts"][0]["connection"]["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("presents a certificate for srv01, not srv02"), "{reason}");
}

#[test]
fn the_overview_in_a_terminal_sorts_opens_hosts_and_follows_an_agent_down_and_back() {
    let Some(t) = Tmux::start("fleet", 120, 30) else { return };
    let fleet = Fleet::new("tmux");
    let ports = [free_port(), free_port(), free_port()];
    let names = ["srv01", "srv02", "laptop"];
    let _a1 = Agent::start(&fleet, "srv01", ports[0]);
    let mut a2 = Some(Agent::start(&fleet, "srv02", ports[1]));
    // A third host that never answers.
    let config = fleet.dashboard_config(&[
        (names[0], ports[0], "server"),
        (names[1], ports[1], "server"),
        ("ghost", ports[2], "lab"),
    ]);
    t.keys(&[&format!("{} --config {} ; echo exit=$?", env!("CARGO_BIN_EXE_cm-dashboard"), config.display()), "Enter"]);
    let screen = t.wait_for("3 hosts: 2 connected, 1 unreachable", |s| s.contains(" srv01 ") && s.contains(" srv02 "));
    let rows: Vec<&str> = screen.lines().filter(|l| l.contains("server") || l.contains(" lab ")).collect();
    assert!(rows[0].contains("ghost") && rows[0].contains("crit"), "worst first: {rows:?}");

    t.keys(&["s"]); // by name
    let screen = t.wait_for("sort: name", |_| true);
    let order: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|w| w.trim_start_matches('>')) // the selection's mark
        .filter(|w| ["ghost", "srv01", "srv02"].contains(w))
        .collect();
    assert_eq!(order, ["ghost", "srv01", "srv02"], "{screen}");

    t.keys(&["Down", "Enter"]); // srv01's host view
    t.wait_for("cm-dashboard ── srv01 ── connected", |s| s.contains("Storage"));
    t.keys(&["l"]);
    t.wait_for("cm-dashboard ── srv02 ── connected", |_| true);
    t.keys(&["Tab"]);
    t.wait_for("── fleet ──", |_| true);

    a2.take(); // srv02's agent stops
    t.wait_for("1 connected, 2 unreachable", |_| true);
    a2 = Some(Agent::start(&fleet, "srv02", ports[1]));
    let back = std::time::Instant::now();
    t.wait_for("2 connected, 1 unreachable", |_| true);
    assert!(back.elapsed() < Duration::from_secs(5), "srv02 live again after {:?}", back.elapsed());
    t.keys(&["q"]);
    t.wait_for("exit=0", |_| true);
    drop(a2);
}
