//! Alerts evaluated by a real `cm-agent run`: in every subscriber's
//! snapshot, every transition stored, read back over the wire and exported,
//! and nothing told twice across a restart.

use std::time::{Duration, Instant};

use cm_net::client::history;
use cm_net::{tls, Role};
use cm_proto::history::HistoryRequest;
use cm_proto::{AlertState, HostSnapshot};

mod common;

use common::{agent_bin, ok, Agent, Setup};

const T: Duration = Duration::from_secs(10);

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

/// Every machine has memory: this rule fires at the first snapshot.
const ALWAYS: &str = r#"
[alerts.builtin]
enable = false
[[alerts.rules]]
name = "has-memory"
series = "memory.total_bytes"
warn = 1
"#;

/// Subscribes and waits for a snapshot that `done` accepts.
async fn wait_for(agent: &Agent, what: &str, done: impl Fn(&HostSnapshot) -> bool) -> HostSnapshot {
    common::snapshot_matching(agent, what, 3 * T, done).await
}

fn firing(s: &HostSnapshot, rule: &str) -> bool {
    s.alerts.iter().any(|a| a.rule == rule && a.state == AlertState::Firing)
}

#[tokio::test]
async fn an_alert_is_in_the_snapshot_and_its_events_are_stored_served_and_exported() {
    let setup = Setup::new("alert-served", 0.3, None, |_| {});
    setup.append(ALWAYS);
    let agent = setup.run();
    let snap = wait_for(&agent, "has-memory firing", |s| firing(s, "has-memory")).await;
    let alert = snap.alerts.iter().find(|a| a.rule == "has-memory").unwrap();
    assert_eq!(alert.instance, "memory.total_bytes");
    assert!(alert.reason.starts_with("memory.total_bytes = "), "{}", alert.reason);
    assert_eq!(snap.worst_alert().map(|a| a.rule.as_str()), Some("has-memory"), "it decides the host's status");
    let report = snap.collector("alerts").expect("an alerts entry");
    assert_eq!(report.error, None);

    // Read back over the wire: with no `for`, it fired at once.
    let endpoint = tls::client(&agent.identity("laptop")).unwrap();
    let session = cm_net::client::hello(&endpoint, agent.addr, "srv01", Role::Dashboard, T).await.unwrap();
    let conn = session.conn.clone();
    let req = HistoryRequest { from_ms: now_ms() - 600_000, to_ms: now_ms() + 1, events: true, ..Default::default() };
    let deadline = Instant::now() + T;
    let answer = loop {
        let a = history(&conn, &req, T).await.unwrap();
        if a.events.iter().any(|e| e.state == AlertState::Firing) || Instant::now() > deadline {
            break a;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let states: Vec<AlertState> = answer.events.iter().filter(|e| e.rule == "has-memory").map(|e| e.state).collect();
    assert_eq!(states, [AlertState::Firing], "{:?}", answer.end);
    assert_eq!(answer.end.events, 1);

    // And exported from the store, as CSV.
    let state = setup.dir.join("state");
    let csv = ok(agent_bin().args(["export", "--state-dir", state.to_str().unwrap(), "--events", "--since", "10m"]));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("ts,rule,instance,state,severity,value,reason"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.splitn(7, ',').collect()).collect();
    assert_eq!(rows.iter().map(|r| (r[1], r[3], r[4])).collect::<Vec<_>>(), [("has-memory", "firing", "warn")]);
}

#[tokio::test]
async fn a_restart_takes_up_what_was_firing_without_a_new_transition() {
    let setup = Setup::new("alert-restart", 0.3, None, |_| {});
    setup.append(ALWAYS);
    let mut agent = setup.run();
    let first = wait_for(&agent, "has-memory firing", |s| firing(s, "has-memory")).await;
    let fired_at = first.alerts[0].since_ms;
    agent.stop();
    let again = setup.run();
    let snap = wait_for(&again, "has-memory firing", |s| firing(s, "has-memory")).await;
    assert_eq!(snap.alerts[0].since_ms, fired_at, "firing since the first run, not a new episode");
    let reader = cm_history::Reader::open(&setup.dir.join("state")).unwrap();
    let (events, _) = reader.alert_events(0, now_ms() + 1, 100).unwrap();
    let states: Vec<AlertState> = events.iter().map(|e| e.state).collect();
    assert_eq!(states, [AlertState::Firing], "the restart added no transition");
}

#[test]
fn a_bad_rule_is_a_config_error_naming_the_rule_and_the_key() {
    let setup = Setup::new("alert-bad", 1.0, None, |_| {});
    setup.append("[[alerts.rules]]\nname = \"typo\"\nseries = \"fs./.used_pct\"\nwarn = 1\n");
    let out = agent_bin().args(["check-config", "--no-files"]).arg(&setup.config).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("alerts.rules[0] (typo): series = \"fs./.used_pct\": no series has this name"), "{err}");
}
