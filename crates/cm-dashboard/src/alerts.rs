//! The fleet's alerts as the alerts view lists them: each host's alert
//! transitions of the last day, asked of its store while the view is open
//! ([`AlertLog`]), and the rules that order and filter the lists
//! ([`active`], [`recent`], [`notifier_troubles`]).
//!
//! Pure, like `app.rs` and `history.rs`: answers and clocks come in as
//! arguments, fetches go out as values for the event loop to send.

use serde::Serialize;

use cm_proto::alert::{Alert, AlertEvent, AlertState};
use cm_proto::history::{Answer, HistoryRequest, Resolution};
use cm_proto::Status;

use crate::app::HostEntry;
use crate::format;
use crate::history::{Fetch, Source, FETCH_TIMEOUT_MS, RETRY_MS};

/// How far back the view's "recent" list reaches.
pub const RECENT_MS: u64 = 24 * 3_600_000;
/// How often an open view asks each host again.
pub const REFETCH_MS: u64 = 60_000;
/// The first protocol minor version whose agents answer with alert events.
pub const EVENTS_MINOR: u16 = 3;

/// The least severity the alerts view lists (`s` cycles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MinSeverity {
    #[default]
    All,
    Warning,
    Critical,
}

impl MinSeverity {
    pub fn next(self) -> Self {
        match self {
            MinSeverity::All => MinSeverity::Warning,
            MinSeverity::Warning => MinSeverity::Critical,
            MinSeverity::Critical => MinSeverity::All,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            MinSeverity::All => "all",
            MinSeverity::Warning => "warning and critical",
            MinSeverity::Critical => "critical",
        }
    }

    /// Whether an alert of `severity` is listed.
    pub fn admits(self, severity: Status) -> bool {
        match self {
            MinSeverity::All => true,
            MinSeverity::Warning => severity >= Status::Warning,
            MinSeverity::Critical => severity == Status::Critical,
        }
    }
}

/// One host's alert transitions of the last day, as its store last told them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AlertLog {
    /// Whether the host can answer with events: an agent of protocol 1.3
    /// or later, or the local store.
    pub source: Source,
    /// The last answer's events, oldest first.
    pub events: Vec<AlertEvent>,
    /// An answer has come since the source said it can give one.
    pub answered: bool,
    /// Why the last fetch failed; cleared by the next answer.
    pub error: Option<String>,
    /// The fetch in flight: its id and when it was sent (dashboard clock).
    pending: Option<(u64, u64)>,
    /// When to ask again (dashboard clock).
    next_fetch_ms: u64,
}

impl AlertLog {
    /// The source changed: a connection came up and said what it can do.
    pub fn set_source(&mut self, source: Source) {
        if source != self.source {
            self.answered = false;
            self.pending = None;
            self.next_fetch_ms = 0;
        }
        self.source = source;
    }

    /// Asks at the next chance, whatever the schedule (the view opened).
    pub fn ask_now(&mut self) {
        self.next_fetch_ms = 0;
    }

    /// Whether a fetch is in flight.
    pub fn is_loading(&self) -> bool {
        self.pending.is_some()
    }

    /// The fetch that is due at `now_ms`, if one is: the last
    /// [`RECENT_MS`] up to `to_ms` (exclusive), the host's clock or ours.
    pub fn plan(&mut self, host: usize, now_ms: u64, to_ms: u64, next_id: &mut u64) -> Option<Fetch> {
        if self.source != Source::Available {
            return None;
        }
        if let Some((_, sent)) = self.pending {
            if now_ms.saturating_sub(sent) <= FETCH_TIMEOUT_MS {
                return None;
            }
            self.pending = None; // lost: ask again
        }
        if now_ms < self.next_fetch_ms {
            return None;
        }
        *next_id += 1;
        self.pending = Some((*next_id, now_ms));
        let request = HistoryRequest {
            series: Vec::new(),
            from_ms: to_ms.saturating_sub(RECENT_MS) as i64,
            to_ms: to_ms as i64 + 1,
            resolution: Resolution::Raw,
            max_points: 0,
            events: true,
        };
        Some(Fetch { id: *next_id, host, request })
    }

    /// Takes the answer to fetch `id`, if it is the one awaited. Returns whether it was.
    pub fn answer(&mut self, id: u64, answer: &Result<Answer, String>, now_ms: u64) -> bool {
        if self.pending.is_none_or(|(p, _)| p != id) {
            return false;
        }
        self.pending = None;
        match answer {
            Ok(a) => {
                self.events = a.events.clone();
                self.events.sort_by_key(|e| e.ts_ms);
                self.answered = true;
                self.error = None;
                self.next_fetch_ms = now_ms + REFETCH_MS;
            }
            Err(why) => {
                self.error = Some(why.clone());
                self.next_fetch_ms = now_ms + RETRY_MS;
            }
        }
        true
    }
}

/// One row of the alerts view: an alert of the active list or a transition
/// of the recent one.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub host: String,
    pub severity: Status,
    /// The alert's state, or the state the transition entered.
    pub state: AlertState,
    /// Rule and instance ([`Alert::title`]).
    pub title: String,
    pub reason: String,
    /// When it entered the state, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Of a host not heard from (unreachable, or stale): as last seen.
    pub old: bool,
}

impl Row {
    fn of_alert(host: &str, a: &Alert, old: bool) -> Row {
        Row {
            host: host.to_owned(),
            severity: a.severity,
            state: a.state,
            title: a.title(),
            reason: a.reason.clone(),
            at_ms: a.since_ms,
            old,
        }
    }

    fn of_event(host: &str, e: &AlertEvent) -> Row {
        let title = if e.instance.is_empty() { e.rule.clone() } else { format!("{} {}", e.rule, e.instance) };
        Row {
            host: host.to_owned(),
            severity: e.severity,
            state: e.state,
            title,
            reason: e.reason.clone(),
            at_ms: e.ts_ms,
            old: false,
        }
    }
}

/// What narrows the lists: the text filter (matched against host, rule,
/// instance, and the two as a row shows them) and the least severity.
#[derive(Debug, Clone, Copy)]
pub struct Filter<'a> {
    pub text: &'a str,
    pub min: MinSeverity,
}

impl Filter<'_> {
    fn admits(&self, host: &str, rule: &str, instance: &str, severity: Status) -> bool {
        if !self.min.admits(severity) {
            return false;
        }
        if self.text.is_empty() {
            return true;
        }
        let needle = self.text.to_lowercase();
        let title = format!("{rule} {instance}");
        [host, title.as_str()].iter().any(|field| field.to_lowercase().contains(&needle))
    }
}

/// Whether an alert belongs in the active list: firing, flapping or pending.
fn is_listed_active(state: AlertState) -> bool {
    matches!(state, AlertState::Firing | AlertState::Flapping | AlertState::Pending)
}

/// The active alerts of every host that match `filter`: firing and flapping
/// ones, then pending ones; the worst severity first, then the oldest. Those
/// of a host not heard from at `now_ms` are as it last said, and marked old.
pub fn active(hosts: &[HostEntry], filter: Filter, now_ms: u64) -> Vec<Row> {
    let mut rows: Vec<Row> = hosts
        .iter()
        .filter_map(|h| Some((h, h.snapshot.as_ref()?, h.is_old(now_ms))))
        .flat_map(|(h, snap, old)| {
            snap.alerts
                .iter()
                .filter(|a| is_listed_active(a.state))
                .filter(|a| filter.admits(&h.name, &a.rule, &a.instance, a.severity))
                .map(move |a| Row::of_alert(&h.name, a, old))
        })
        .collect();
    rows.sort_by(|a, b| {
        let pending = |r: &Row| r.state == AlertState::Pending;
        pending(a)
            .cmp(&pending(b))
            .then(b.severity.cmp(&a.severity))
            .then(a.at_ms.cmp(&b.at_ms))
            .then_with(|| (&a.host, &a.title).cmp(&(&b.host, &b.title)))
    });
    rows
}

/// The alert transitions of the last [`RECENT_MS`] before `now_ms` that
/// match `filter`, newest first: what each host's store told, and the
/// resolved alerts its latest snapshot still carries (the store may not
/// have been asked since, or keep no events).
pub fn recent(hosts: &[HostEntry], filter: Filter, now_ms: u64) -> Vec<Row> {
    let since = now_ms.saturating_sub(RECENT_MS);
    let mut rows = Vec::new();
    for h in hosts {
        let stored = h.alerts.events.iter().filter(|e| e.ts_ms >= since);
        let resolved = h.snapshot.iter().flat_map(|s| &s.alerts).filter(|a| a.state == AlertState::Resolved);
        let unstored: Vec<AlertEvent> = resolved
            .map(AlertEvent::of)
            .filter(|e| e.ts_ms >= since)
            .filter(|e| {
                !h.alerts
                    .events
                    .iter()
                    .any(|o| o.ts_ms == e.ts_ms && o.rule == e.rule && o.instance == e.instance && o.state == e.state)
            })
            .collect();
        rows.extend(
            stored
                .chain(&unstored)
                .filter(|e| filter.admits(&h.name, &e.rule, &e.instance, e.severity))
                .map(|e| Row::of_event(&h.name, e)),
        );
    }
    rows.sort_by(|a, b| b.at_ms.cmp(&a.at_ms).then_with(|| (&a.host, &a.title).cmp(&(&b.host, &b.title))));
    rows
}

/// A line for each notification target that is failing:
/// `srv01 notify ops smtp://mail.example: timed out (retry in 40 s, 3 queued)`.
pub fn notifier_troubles(hosts: &[HostEntry], now_ms: u64) -> Vec<String> {
    let mut lines = Vec::new();
    // A host not heard from says nothing of its notifiers now ([`unheard`]).
    for h in hosts.iter().filter(|h| !h.is_old(now_ms)) {
        let Some(snap) = &h.snapshot else { continue };
        for n in &snap.notifiers {
            let Some(error) = &n.error else { continue };
            let mut after = Vec::new();
            if let Some(at) = n.retry_ms {
                after.push(match at.checked_sub(now_ms) {
                    Some(wait) if wait > 0 => format!("retry in {}", format::span(wait)),
                    _ => "retrying".to_string(),
                });
            }
            if n.queued > 0 {
                after.push(format!("{} queued", n.queued));
            }
            let after = if after.is_empty() { String::new() } else { format!(" ({})", after.join(", ")) };
            lines.push(format!("{} notify {} {}: {error}{after}", h.name, n.route, n.target));
        }
    }
    lines
}

/// A line for each host whose alerts are as it last said, not as they are:
/// `srv02 unreachable: connection refused; its alerts as of 5m ago`.
pub fn unheard(hosts: &[HostEntry], now_ms: u64) -> Vec<String> {
    hosts
        .iter()
        .filter(|h| h.is_old(now_ms))
        .map(|h| {
            let why = h.headline(now_ms).unwrap_or_else(|| "not connected".into());
            let when = h.received_ms.map(|at| format!(" of {}", format::age(now_ms.saturating_sub(at))));
            format!("{} {why}; its alerts as{}", h.name, when.unwrap_or_default())
        })
        .collect()
}

/// Why a host's recent transitions are missing or may be: each connected
/// host whose store cannot answer, failed, or has not answered yet.
pub fn notes(hosts: &[HostEntry]) -> Vec<String> {
    let mut notes = Vec::new();
    for h in hosts.iter().filter(|h| h.snapshot.is_some()) {
        let log = &h.alerts;
        match &log.source {
            Source::Unavailable(why) => notes.push(format!("{}: no alert history: {why}", h.name)),
            Source::Available if log.error.is_some() => {
                notes.push(format!("{}: alert history: {}", h.name, log.error.as_deref().unwrap_or_default()))
            }
            Source::Available if !log.answered => notes.push(format!("{}: loading the alert history…", h.name)),
            Source::Available | Source::Unknown => {}
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Connection;
    use cm_proto::alert::NotifierStatus;
    use cm_proto::HostSnapshot;

    const NOW: u64 = 1_764_000_000_000;
    const MIN: u64 = 60_000;

    fn alert(rule: &str, instance: &str, state: AlertState, severity: Status, ago_min: u64) -> Alert {
        Alert {
            rule: rule.into(),
            instance: instance.into(),
            state,
            severity,
            since_ms: NOW - ago_min * MIN,
            started_ms: NOW - ago_min * MIN,
            value: None,
            reason: format!("{rule} reason"),
        }
    }

    fn host(name: &str, alerts: Vec<Alert>) -> HostEntry {
        let mut h = HostEntry::new(name, "server", Connection::Connected);
        h.snapshot = Some(HostSnapshot { host: name.into(), alerts, ..Default::default() });
        h
    }

    const ALL: Filter = Filter { text: "", min: MinSeverity::All };

    #[test]
    fn active_alerts_are_firing_then_pending_worst_first_then_oldest() {
        use AlertState::*;
        let hosts = vec![
            host(
                "srv01",
                vec![
                    alert("load", "", Pending, Status::Critical, 1),
                    alert("fs-full", "/srv", Firing, Status::Warning, 30),
                    alert("gone", "", Resolved, Status::Critical, 5),
                ],
            ),
            host(
                "srv02",
                vec![
                    alert("fs-full", "/", Firing, Status::Critical, 3),
                    alert("temp", "cpu", Flapping, Status::Warning, 50),
                    alert("mem", "", Firing, Status::Critical, 10),
                ],
            ),
        ];
        let got: Vec<(String, String)> = active(&hosts, ALL, NOW).into_iter().map(|r| (r.host, r.title)).collect();
        let want = [
            ("srv02", "mem"),
            ("srv02", "fs-full /"),
            ("srv02", "temp cpu"),
            ("srv01", "fs-full /srv"),
            ("srv01", "load"),
        ];
        assert_eq!(got, want.map(|(h, t)| (h.to_string(), t.to_string())));
        let crit = Filter { text: "", min: MinSeverity::Critical };
        assert_eq!(active(&hosts, crit, NOW).len(), 3, "pending critical counts too");
        let text = Filter { text: "FS-", min: MinSeverity::All };
        assert_eq!(active(&hosts, text, NOW).len(), 2, "the rule matches, case aside");
        let inst = Filter { text: "/srv", min: MinSeverity::All };
        assert_eq!(active(&hosts, inst, NOW)[0].host, "srv01", "the instance matches");
        assert_eq!(
            active(&hosts, Filter { text: "srv02", min: MinSeverity::Warning }, NOW).len(),
            3,
            "the host matches"
        );
    }

    #[test]
    fn recent_merges_the_store_and_the_snapshot_newest_first_without_twins() {
        use AlertState::*;
        let mut h = host("srv01", vec![alert("gone", "", Resolved, Status::Critical, 5)]);
        h.alerts.events = vec![
            AlertEvent::of(&alert("gone", "", Firing, Status::Critical, 20)),
            AlertEvent::of(&alert("gone", "", Resolved, Status::Critical, 5)),
            AlertEvent::of(&alert("old", "", Firing, Status::Warning, 25 * 60)),
        ];
        let rows = recent(&[h], ALL, NOW);
        let got: Vec<(AlertState, u64)> = rows.iter().map(|r| (r.state, (NOW - r.at_ms) / MIN)).collect();
        assert_eq!(got, [(Resolved, 5), (Firing, 20)], "once each, the last 24 h only");
    }

    #[test]
    fn severity_cycles_all_warning_critical() {
        let mut m = MinSeverity::All;
        let mut seen = Vec::new();
        for _ in 0..3 {
            m = m.next();
            seen.push(m);
        }
        assert_eq!(seen, [MinSeverity::Warning, MinSeverity::Critical, MinSeverity::All]);
        assert!(MinSeverity::Warning.admits(Status::Critical) && !MinSeverity::Warning.admits(Status::Unknown));
    }

    #[test]
    fn a_failing_notifier_says_where_why_and_when_next() {
        let mut h = host("srv01", vec![]);
        let snap = h.snapshot.as_mut().unwrap();
        snap.notifiers = vec![
            NotifierStatus {
                route: "ops".into(),
                target: "smtp://mail.example".into(),
                queued: 3,
                error: Some("connection refused".into()),
                retry_ms: Some(NOW + 40_000),
                ..Default::default()
            },
            NotifierStatus { route: "fine".into(), target: "ntfy://x".into(), ..Default::default() },
        ];
        assert_eq!(
            notifier_troubles(&[h], NOW),
            ["srv01 notify ops smtp://mail.example: connection refused (retry in 40 s, 3 queued)"]
        );
    }

    #[test]
    fn the_log_asks_once_a_minute_and_not_an_agent_without_events() {
        let mut log = AlertLog::default();
        let mut id = 0;
        assert!(log.plan(0, NOW, NOW, &mut id).is_none(), "not before the source is known");
        log.set_source(Source::Available);
        let fetch = log.plan(0, NOW, NOW, &mut id).unwrap();
        assert!(fetch.request.events && fetch.request.series.is_empty());
        assert_eq!(fetch.request.to_ms - fetch.request.from_ms, RECENT_MS as i64 + 1);
        assert!(log.plan(0, NOW + 1, NOW, &mut id).is_none(), "one in flight");
        let events = vec![AlertEvent { ts_ms: NOW - MIN, rule: "x".into(), ..Default::default() }];
        let answer = Ok(Answer { events, ..Default::default() });
        assert!(!log.answer(99, &answer, NOW), "not the one asked");
        assert!(log.answer(fetch.id, &answer, NOW));
        assert_eq!((log.events.len(), log.answered), (1, true));
        assert!(log.plan(0, NOW + MIN - 1, NOW, &mut id).is_none());
        assert!(log.plan(0, NOW + MIN, NOW, &mut id).is_some(), "again after a minute");
        log.set_source(Source::Unavailable("agent 0.1.0 speaks protocol 1.2".into()));
        assert!(log.plan(0, NOW + 10 * MIN, NOW, &mut id).is_none());
    }
}
