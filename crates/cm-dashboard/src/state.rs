//! The fleet's state for scripts: what `--once --json` prints and, without
//! the snapshots, each line of `--json-lines`. The schema is
//! `docs/STATE.md`; additions keep `version`, a change that breaks a
//! reader raises it.

use serde::Serialize;

use cm_proto::{HostSnapshot, Status};

use crate::app::{App, Connection, HostEntry, Mode};

/// The schema's version.
pub const VERSION: u32 = 1;

/// The whole fleet (one host in local mode) at `time_ms`.
#[derive(Debug, Serialize)]
pub struct FleetState<'a> {
    pub version: u32,
    pub mode: Mode,
    pub time_ms: u64,
    pub hosts: Vec<HostState<'a>>,
}

/// One host.
#[derive(Debug, Serialize)]
pub struct HostState<'a> {
    /// The name the fleet configuration gives it (local mode: this machine's).
    pub name: &'a str,
    pub role: &'a str,
    pub connection: ConnectionState<'a>,
    /// Connected, but no snapshot for three intervals (at least 10 s).
    pub stale: bool,
    /// The dashboard's verdict: unreachable is critical, stale a warning
    /// at least, else the worst status in the snapshot; unknown until one came.
    pub status: Status,
    /// Why the status is not ok, as the overview says it; null when it is.
    pub reason: Option<String>,
    /// When `status` last changed, or when the dashboard started watching.
    pub status_since_ms: u64,
    /// The agent's collection interval, from its welcome.
    pub interval_ms: Option<u64>,
    /// When the latest snapshot arrived.
    pub snapshot_received_ms: Option<u64>,
    /// The latest snapshot's sequence number.
    pub seq: Option<u64>,
    /// The latest snapshot as the agent sent it (docs/PROTOCOL.md); left
    /// out of `--json-lines`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Option<&'a HostSnapshot>>,
}

/// How the dashboard reaches the host.
#[derive(Debug, Serialize)]
pub struct ConnectionState<'a> {
    /// `local`, `connecting`, `connected` or `unreachable`.
    pub state: &'static str,
    /// Why it is unreachable; null otherwise.
    pub reason: Option<&'a str>,
    /// When the state last changed, or when the dashboard started.
    pub since_ms: u64,
}

impl<'a> HostState<'a> {
    fn of(h: &'a HostEntry, now_ms: u64, with_snapshot: bool) -> Self {
        let state = match &h.connection {
            Connection::Local => "local",
            Connection::Connecting => "connecting",
            Connection::Connected => "connected",
            Connection::Unreachable { .. } => "unreachable",
        };
        HostState {
            name: &h.name,
            role: &h.role,
            connection: ConnectionState { state, reason: h.connection.reason(), since_ms: h.connection_since_ms },
            stale: h.is_stale(now_ms),
            status: h.status(now_ms),
            reason: h.headline(now_ms),
            status_since_ms: h.status_since_ms,
            interval_ms: h.interval_ms,
            snapshot_received_ms: h.received_ms,
            seq: h.snapshot.as_ref().map(|s| s.seq),
            snapshot: with_snapshot.then_some(h.snapshot.as_ref()),
        }
    }
}

impl<'a> FleetState<'a> {
    /// Every host with its latest snapshot: `--once --json`.
    pub fn with_snapshots(app: &'a App) -> Self {
        Self::of(app, true)
    }

    /// Every host without its snapshot: a line of `--json-lines`.
    pub fn without_snapshots(app: &'a App) -> Self {
        Self::of(app, false)
    }

    fn of(app: &'a App, with_snapshot: bool) -> Self {
        let now = app.now_ms;
        FleetState {
            version: VERSION,
            mode: app.mode,
            time_ms: now,
            hosts: app.hosts.iter().map(|h| HostState::of(h, now, with_snapshot)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Msg;

    #[test]
    fn the_state_says_connection_status_reason_and_since_for_each_host() {
        let hosts = vec![
            HostEntry::new("srv01", "server", Connection::Connecting),
            HostEntry::new("labbox", "lab", Connection::Connecting),
        ];
        let mut app = App::remote(hosts, 1_000);
        let cpu = cm_proto::Cpu { utilisation_percent: Some(5.0), ..Default::default() };
        let snap = HostSnapshot { host: "srv01".into(), seq: 9, cpu: Some(cpu), ..Default::default() };
        app.update(Msg::Connection { host: 0, connection: Connection::Connected, interval_ms: Some(2_000) });
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(snap), received_ms: 1_500 });
        app.update(Msg::Tick(4_000));
        let reason = "cannot reach 192.0.2.30:6130: timed out".to_string();
        app.update(Msg::Connection { host: 1, connection: Connection::Unreachable { reason }, interval_ms: None });
        let json = serde_json::to_value(FleetState::with_snapshots(&app)).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["mode"], "fleet");
        assert_eq!(json["time_ms"], 4_000);
        let srv = &json["hosts"][0];
        assert_eq!(srv["name"], "srv01");
        assert_eq!(srv["role"], "server");
        assert_eq!(srv["connection"]["state"], "connected");
        assert_eq!(srv["connection"]["reason"], serde_json::Value::Null);
        assert_eq!(srv["stale"], false);
        assert_eq!(srv["status"], "ok");
        assert_eq!(srv["status_since_ms"], 1_500, "it turned ok when its snapshot came");
        assert_eq!(srv["snapshot_received_ms"], 1_500);
        assert_eq!(srv["seq"], 9);
        assert_eq!(srv["snapshot"]["host"], "srv01");
        let lab = &json["hosts"][1];
        assert_eq!(lab["connection"]["state"], "unreachable");
        assert_eq!(lab["connection"]["reason"], "cannot reach 192.0.2.30:6130: timed out");
        assert_eq!(lab["connection"]["since_ms"], 4_000);
        assert_eq!(lab["status"], "critical");
        assert_eq!(lab["reason"], "unreachable: cannot reach 192.0.2.30:6130: timed out");
        assert_eq!(lab["snapshot"], serde_json::Value::Null);
        let line = serde_json::to_value(FleetState::without_snapshots(&app)).unwrap();
        assert!(line["hosts"][0].get("snapshot").is_none(), "the lines carry no snapshot");
        assert_eq!(line["hosts"][0]["seq"], 9);
        for key in ["selected", "view", "show_help", "filtering", "filter", "sort"] {
            assert!(json.get(key).is_none(), "{key}: the state is the fleet's, not the screen's");
        }
    }

    #[test]
    fn silence_on_a_live_connection_is_stale_and_a_warning() {
        let mut app = App::remote(vec![HostEntry::new("srv01", "server", Connection::Connecting)], 0);
        app.update(Msg::Connection { host: 0, connection: Connection::Connected, interval_ms: Some(2_000) });
        let cpu = cm_proto::Cpu { utilisation_percent: Some(5.0), ..Default::default() };
        let snap = HostSnapshot { cpu: Some(cpu), ..Default::default() };
        app.update(Msg::Snapshot { host: 0, snapshot: Box::new(snap), received_ms: 1_000 });
        app.update(Msg::Tick(12_000));
        let json = serde_json::to_value(FleetState::without_snapshots(&app)).unwrap();
        let h = &json["hosts"][0];
        assert_eq!((h["stale"].as_bool(), h["status"].as_str()), (Some(true), Some("warning")));
        assert_eq!(h["status_since_ms"], 12_000);
        assert!(h["reason"].as_str().unwrap().starts_with("stale: connected, but the last snapshot came 11 s ago"));
    }
}
