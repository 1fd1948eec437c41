//! What a notification says: one message per host per burst of alert
//! changes, its subject worst first, its text one paragraph per alert.
//! Pure: no clock, no I/O.

use std::fmt::Write as _;

use cm_proto::{AlertEvent, AlertState, Status};
use serde::{Deserialize, Serialize};

/// Why an alert is in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// It changed state.
    Alert,
    /// A reminder: it is still firing, past the route's `repeat`.
    Repeat,
    /// `cm-agent notify test`.
    Test,
}

/// One alert's part of a message; the outbox stores these as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub kind: Kind,
    pub event: AlertEvent,
}

/// A notification, ready for any transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The host the alerts are about.
    pub host: String,
    pub subject: String,
    pub text: String,
    /// Stable across retries, so a receiver can drop a duplicate.
    pub id: String,
    /// The worst severity among the alerts still active; `Ok` when all resolved.
    pub severity: Status,
    pub items: Vec<Item>,
}

/// The message for `items` about `host`, with id `id` (worst first).
pub fn compose(host: &str, items: &[Item], id: &str) -> Message {
    let mut items = items.to_vec();
    items.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then(b.event.severity.cmp(&a.event.severity)).then_with(|| {
            (&a.event.rule, &a.event.instance, a.event.ts_ms).cmp(&(&b.event.rule, &b.event.instance, b.event.ts_ms))
        })
    });
    let severity = items.iter().filter(|i| is_active(i)).map(|i| i.event.severity).max().unwrap_or(Status::Ok);
    let counts = counts(&items);
    let mut subject = format!("[cm] {host}: ");
    if counts.is_empty() {
        subject.push_str("no alerts");
    }
    for (n, (count, label)) in counts.iter().enumerate() {
        if n > 0 {
            subject.push_str(", ");
        }
        let _ = write!(subject, "{count} {label}");
        if n == 0 {
            subject.push_str(&worst(&items));
        }
    }
    let mut text = format!("{}\n", &subject["[cm] ".len()..]);
    for item in &items {
        text.push('\n');
        text.push_str(&paragraph(item));
    }
    Message { host: host.to_string(), subject, text, id: id.to_string(), severity, items }
}

/// The message `cm-agent notify test` sends on route `route`.
pub fn test_message(host: &str, route: &str, id: &str) -> Message {
    let subject = format!("[cm] {host}: test notification on route {route}");
    let text = format!(
        "{host}: test notification on route {route}\n\n\
         cm-agent notify test sent this to check that alerts on route {route} reach you.\n\
         Nothing is wrong on {host}.\n"
    );
    let event = AlertEvent {
        rule: "test".into(),
        state: AlertState::Firing,
        reason: format!("a test of route {route}"),
        ..Default::default()
    };
    Message {
        host: host.to_string(),
        subject,
        text,
        id: id.to_string(),
        severity: Status::Ok,
        items: vec![Item { kind: Kind::Test, event }],
    }
}

impl Message {
    /// The generic webhook's body: the message, and each alert as fields.
    pub fn to_json(&self) -> serde_json::Value {
        let alerts: Vec<serde_json::Value> = self
            .items
            .iter()
            .map(|i| {
                serde_json::json!({
                    "kind": i.kind,
                    "rule": i.event.rule,
                    "instance": i.event.instance,
                    "state": i.event.state,
                    "severity": i.event.severity,
                    "value": i.event.value,
                    "reason": i.event.reason,
                    "ts_ms": i.event.ts_ms,
                })
            })
            .collect();
        serde_json::json!({
            "host": self.host,
            "subject": self.subject,
            "text": self.text,
            "id": self.id,
            "severity": self.severity,
            "alerts": alerts,
        })
    }
}

fn is_active(item: &Item) -> bool {
    item.kind != Kind::Test && item.event.state != AlertState::Resolved
}

/// Order in a message: what needs someone now first.
fn rank(item: &Item) -> u8 {
    match (item.kind, item.event.state) {
        (Kind::Test, _) => 0,
        (Kind::Alert, AlertState::Firing) => 1,
        (_, AlertState::Flapping) => 2,
        (Kind::Repeat, _) => 3,
        (_, AlertState::Pending | AlertState::Unknown) => 4,
        (_, AlertState::Resolved) => 5,
    }
}

fn label(item: &Item) -> &'static str {
    match rank(item) {
        0 => "test",
        1 => "firing",
        2 => "flapping",
        3 => "still firing",
        4 => "pending",
        _ => "resolved",
    }
}

/// `(count, label)` for each kind of change present, in message order.
fn counts(items: &[Item]) -> Vec<(usize, &'static str)> {
    let mut out: Vec<(usize, &'static str)> = Vec::new();
    for item in items {
        match out.last_mut() {
            Some((n, l)) if *l == label(item) => *n += 1,
            _ => out.push((1, label(item))),
        }
    }
    out
}

/// ` (crit: fs-full /srv)` for the worst active alert, `+N` for others as bad.
fn worst(items: &[Item]) -> String {
    let Some(first) = items.first().filter(|i| is_active(i)) else { return String::new() };
    let same = items.iter().filter(|i| is_active(i) && i.event.severity == first.event.severity).count();
    let more = if same > 1 { format!(" +{}", same - 1) } else { String::new() };
    format!(" ({}: {}{more})", first.event.severity.label(), title(&first.event))
}

fn title(e: &AlertEvent) -> String {
    if e.instance.is_empty() {
        e.rule.clone()
    } else {
        format!("{} {}", e.rule, e.instance)
    }
}

fn time(ms: u64) -> String {
    cm_history::time::rfc3339(i64::try_from(ms).unwrap_or(i64::MAX))
}

fn severity_word(s: Status) -> &'static str {
    match s {
        Status::Ok => "ok",
        Status::Unknown => "unknown",
        Status::Warning => "warning",
        Status::Critical => "critical",
    }
}

/// `FIRING critical fs-full /srv` and the lines that explain it.
fn paragraph(item: &Item) -> String {
    let e = &item.event;
    let mut out = format!("{} {} {}\n", label(item).to_uppercase(), severity_word(e.severity), title(e));
    if !e.reason.is_empty() {
        let _ = writeln!(out, "  {}", e.reason);
    }
    if let Some(v) = e.value {
        let _ = writeln!(out, "  value {v}");
    }
    let when = time(e.ts_ms);
    let _ = match (item.kind, e.state) {
        (Kind::Test, _) => Ok(()),
        (Kind::Repeat, _) => writeln!(out, "  still firing since {when}"),
        (_, AlertState::Firing) => writeln!(out, "  firing since {when}"),
        (_, AlertState::Flapping) => writeln!(
            out,
            "  flapping since {when}: it changed state too often; this is the one notice until it settles"
        ),
        (_, AlertState::Resolved) => writeln!(out, "  resolved at {when}"),
        (_, AlertState::Pending | AlertState::Unknown) => writeln!(out, "  {} since {when}", e.state.label()),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-12-02T06:30:00Z
    const T: u64 = 1_796_193_000_000;

    fn item(kind: Kind, rule: &str, instance: &str, state: AlertState, severity: Status) -> Item {
        Item {
            kind,
            event: AlertEvent {
                ts_ms: T,
                rule: rule.into(),
                instance: instance.into(),
                state,
                severity,
                value: None,
                reason: String::new(),
            },
        }
    }

    #[test]
    fn subject_counts_each_change_worst_first() {
        let items = [
            item(Kind::Alert, "memory", "", AlertState::Resolved, Status::Warning),
            item(Kind::Alert, "load", "", AlertState::Firing, Status::Warning),
            item(Kind::Alert, "fs-full", "/srv", AlertState::Firing, Status::Critical),
        ];
        let m = compose("srv01", &items, "m1");
        assert_eq!(m.subject, "[cm] srv01: 2 firing (crit: fs-full /srv), 1 resolved");
        assert_eq!(m.severity, Status::Critical);
        assert_eq!(m.items[0].event.rule, "fs-full");
        assert_eq!(m.items[2].event.rule, "memory");
        assert_eq!(m.id, "m1");
    }

    #[test]
    fn several_alerts_as_bad_as_the_worst_are_counted_in_the_subject() {
        let items = [
            item(Kind::Alert, "fs-full", "/srv", AlertState::Firing, Status::Critical),
            item(Kind::Alert, "fs-full", "/", AlertState::Firing, Status::Critical),
        ];
        assert_eq!(compose("srv01", &items, "m").subject, "[cm] srv01: 2 firing (crit: fs-full / +1)");
    }

    #[test]
    fn a_message_of_resolved_alerts_is_ok_and_names_none_as_worst() {
        let items = [item(Kind::Alert, "memory", "", AlertState::Resolved, Status::Warning)];
        let m = compose("srv01", &items, "m");
        assert_eq!(m.subject, "[cm] srv01: 1 resolved");
        assert_eq!(m.severity, Status::Ok);
        assert!(m.text.contains("RESOLVED warning memory\n  resolved at 2026-12-02T06:30:00.000Z\n"), "{}", m.text);
    }

    #[test]
    fn text_explains_each_alert_on_its_own_lines() {
        let mut fs = item(Kind::Alert, "fs-full", "/srv", AlertState::Firing, Status::Critical);
        fs.event.reason = "used 92% (critical at 90%, clears below 40%)".into();
        fs.event.value = Some(92.5);
        let repeat = item(Kind::Repeat, "drive", "sda", AlertState::Firing, Status::Warning);
        let flap = item(Kind::Alert, "service", "nginx.service", AlertState::Flapping, Status::Critical);
        let m = compose("srv01", &[repeat, flap, fs], "m");
        assert_eq!(m.subject, "[cm] srv01: 1 firing (crit: fs-full /srv +1), 1 flapping, 1 still firing");
        assert_eq!(
            m.text,
            "srv01: 1 firing (crit: fs-full /srv +1), 1 flapping, 1 still firing\n\
             \n\
             FIRING critical fs-full /srv\n  used 92% (critical at 90%, clears below 40%)\n  value 92.5\n  firing since 2026-12-02T06:30:00.000Z\n\
             \n\
             FLAPPING critical service nginx.service\n  flapping since 2026-12-02T06:30:00.000Z: it changed state too often; this is the one notice until it settles\n\
             \n\
             STILL FIRING warning drive sda\n  still firing since 2026-12-02T06:30:00.000Z\n"
        );
    }

    #[test]
    fn test_message_says_nothing_is_wrong() {
        let m = test_message("srv01", "ops", "t1");
        assert_eq!(m.subject, "[cm] srv01: test notification on route ops");
        assert!(m.text.contains("Nothing is wrong on srv01."));
        assert_eq!((m.severity, m.items[0].kind), (Status::Ok, Kind::Test));
    }

    #[test]
    fn webhook_json_has_the_message_and_each_alert() {
        let mut fs = item(Kind::Alert, "fs-full", "/srv", AlertState::Firing, Status::Critical);
        fs.event.value = Some(92.5);
        let json = compose("srv01", &[fs], "m7").to_json();
        assert_eq!(json["host"], "srv01");
        assert_eq!(json["id"], "m7");
        assert_eq!(json["severity"], "critical");
        assert_eq!(
            json["alerts"][0],
            serde_json::json!({"kind": "alert", "rule": "fs-full", "instance": "/srv", "state": "firing",
                "severity": "critical", "value": 92.5, "reason": "", "ts_ms": T})
        );
    }

    #[test]
    fn items_round_trip_through_json_for_the_outbox() {
        let i = item(Kind::Repeat, "load", "", AlertState::Firing, Status::Warning);
        let text = serde_json::to_string(&i).unwrap();
        assert!(text.contains("\"kind\":\"repeat\""), "{text}");
        assert_eq!(serde_json::from_str::<Item>(&text).unwrap(), i);
    }
}
